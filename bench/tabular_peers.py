"""The peers' side of bench/tabular.py, run in their own venv (dianna 1.8.1 with shap and lime):

    /work/venv-dianna/bin/python bench/tabular_peers.py MODEL.onnx INPUTS.npz OUT.npz EVALUATIONS

INPUTS.npz: rows (N, F) float32, targets (N,), background (M, F). Each tool gets the same predict
function over one reused onnxruntime session (its probability output: DIANNA's own ONNX runner
reads the first output, the label, of skl2onnx/onnxmltools models). Every tool is given
EVALUATIONS model rows per explained row: DIANNA RISE n_masks = E (imputation "mean"); DIANNA LIME
num_samples = E; shap's KernelExplainer nsamples = E / k over a k = 16 row k-means summary of the
background (it scores nsamples x k rows). DIANNA's KernelSHAP drops an nsamples argument (it
filters keywords by shap_values' signature), so it runs shap's default, 2F + 2048 samples, over
the same summary: many more rows than E (recorded). Writes per tool
the maps (N, F) for the target, the rows each tool really ran, its wall and inference seconds.
"""
import sys
import time
import warnings

import numpy as np
import onnxruntime as ort

warnings.filterwarnings("ignore")
KMEANS = 16


def main(model_path: str, inputs: str, out: str, evaluations: int) -> None:
    import dianna
    import shap

    data = np.load(inputs)
    rows, targets, background = data["rows"], data["targets"], data["background"]
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    output = next(o.name for o in session.get_outputs() if o.type == "tensor(float)")
    counter = {"rows": 0, "seconds": 0.0}

    def predict(x):
        start = time.perf_counter()
        p = session.run([output], {name: np.asarray(x, np.float32).reshape(-1, rows.shape[1])})[0]
        counter["seconds"] += time.perf_counter() - start
        counter["rows"] += len(p)
        return p

    summary = shap.kmeans(background, KMEANS)
    tools = {
        "dianna-rise": lambda row, t: dianna.explain_tabular(
            predict, row, method="RISE", labels=[t], training_data=background, n_masks=evaluations,
            mask_type="mean", batch_size=256)[0],
        "dianna-lime": lambda row, t: dianna.explain_tabular(
            predict, row, method="LIME", labels=[t], training_data=background, num_samples=evaluations,
            feature_names=[f"x{j}" for j in range(rows.shape[1])])[t],
        "dianna-kernelshap": lambda row, t: dianna.explain_tabular(
            predict, row, method="KernelSHAP", training_data=background, training_data_kmeans=KMEANS)[t],
        "shap-kernel": lambda row, t: np.asarray(shap.KernelExplainer(predict, summary).shap_values(
            row, nsamples=max(1, evaluations // KMEANS), silent=True))[:, t],
    }
    result = {}
    for tool, explain in tools.items():
        result.update(timed(tool, lambda item: np.reshape(explain(item[0], int(item[1])), -1),
                            list(zip(rows, targets)), counter, "rows"))
    np.savez(out, **result)


def timed(tool: str, explain, inputs: list, counter: dict, count: str) -> dict[str, np.ndarray]:
    """Runs explain on each input, with counter {count: model rows, "seconds": inference} reset
    before each: {"<tool>/maps", "/seconds" (wall), "/inference", "/<count>"} arrays."""
    maps, seconds, inference, evaluated = [], [], [], []
    for item in inputs:
        counter.update({count: 0, "seconds": 0.0})
        start = time.perf_counter()
        maps.append(np.asarray(explain(item), np.float64))
        seconds.append(time.perf_counter() - start)
        inference.append(counter["seconds"])
        evaluated.append(counter[count])
    print(f"{tool}: {np.mean(seconds):.3f} s per input, {np.mean(evaluated):.0f} {count}", file=sys.stderr)
    return {f"{tool}/maps": np.stack(maps), f"{tool}/seconds": np.array(seconds),
            f"{tool}/inference": np.array(inference), f"{tool}/{count}": np.array(evaluated)}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
