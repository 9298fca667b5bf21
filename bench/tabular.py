"""Tabular explanations: onnxplain against DIANNA's explain_tabular (RISE, LIME, KernelSHAP) and
shap's KernelExplainer, on the same ONNX models and rows.

    python bench/tabular.py [--peers /work/venv-dianna/bin/python] [--rows 20] [--evaluations 2000]
                            [--json bench/tabular_summary.json]

Models (trained here, exported to ONNX): a random forest (skl2onnx) and XGBoost (onnxmltools) on
10 normal columns whose class is x1 > 0 and x6 > 0. Each tool explains the same rows (class
predicted by the model) at about the same number of model rows per explained row, E: onnxplain's
RISE n_masks = E (one background row per mask) and PMI samples = E / F; its occlusion always costs
F x 16 + 1.
The peers run in their own venv (`bench/tabular_peers.py`). Every map is scored by one deletion
curve: `onnxplain.tabular.deletion` with 64 background rows drawn with another seed than the
explainers' (so no tool is scored on its own draws); lower AUC = more faithful. Reported per
model and tool: mean deletion AUC with its 95 % interval, the paired 95 % interval of each of
ours minus the best peer at equal evaluations (rows within 10 % of E), rows evaluated, and engine microseconds per evaluated row ((wall time
- inference time) / rows).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import onnxplain as ox
from onnxplain import tabular
from onnxplain.fidelity import interval, paired_difference

BENCH = Path(__file__).resolve().parent
SCORING_BACKGROUND, SCORING_SEED = 64, 12345


def dataset(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).normal(size=(n, 10)).astype(np.float32)
    return X, ((X[:, 1] > 0) & (X[:, 6] > 0)).astype(np.int64)


def models(X: np.ndarray, y: np.ndarray) -> dict[str, bytes]:
    import onnxmltools
    import skl2onnx
    import xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0).fit(X, y)
    boosted = xgboost.XGBClassifier(n_estimators=100, max_depth=4, random_state=0).fit(X, y)
    return {
        "random-forest": skl2onnx.to_onnx(forest, X[:1], options={id(forest): {"zipmap": False}},
                                          target_opset=17).SerializeToString(),
        "xgboost": onnxmltools.convert_xgboost(boosted, initial_types=[("input", FloatTensorType([None, 10]))],
                                               target_opset=15).SerializeToString(),
    }


def ours(model, rows, targets, background, evaluations: int) -> dict[str, dict]:
    """onnxplain's maps, rows evaluated and engine seconds per row explained."""
    budgets = {"occlusion": {}, "rise": {"n_masks": evaluations},
               "pmi": {"samples": max(1, evaluations // rows.shape[1])}}
    out = {}
    for method, options in budgets.items():
        maps, engine, evaluated = [], [], []
        for row, t in zip(rows, targets):
            inference = model.inference_seconds
            result = tabular.explain(model, row, method, int(t), background=background, seed=0, **options)
            maps.append(result[int(t)].astype(np.float64))
            engine.append(result.seconds - (model.inference_seconds - inference))
            evaluated.append(result.evaluations)
        out[f"onnxplain-{method}"] = {"maps": np.stack(maps), "engine": np.array(engine), "rows": np.array(evaluated)}
    return out


def peers(python: str, model_path: Path, rows, targets, background, evaluations: int, work: Path) -> dict[str, dict]:
    inputs, output = work / "inputs.npz", work / "peers.npz"
    np.savez(inputs, rows=rows, targets=targets, background=background)
    subprocess.run([python, str(BENCH / "tabular_peers.py"), str(model_path), str(inputs), str(output),
                    str(evaluations)], check=True)
    data = np.load(output)
    tools = sorted({key.split("/")[0] for key in data.files})
    return {tool: {"maps": data[f"{tool}/maps"], "engine": data[f"{tool}/seconds"] - data[f"{tool}/inference"],
                   "rows": data[f"{tool}/rows"]} for tool in tools}


def deletion_aucs(model, rows, targets, background, maps: np.ndarray) -> np.ndarray:
    return np.array([tabular.deletion(model, row, m, background=background, target=int(t),
                                      n_background=SCORING_BACKGROUND, seed=SCORING_SEED).aucs["deletion"]
                     for row, t, m in zip(rows, targets, maps)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="/work/venv-dianna/bin/python", help="python of the peers' venv")
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--evaluations", type=int, default=2000)
    parser.add_argument("--json", default=str(BENCH / "tabular_summary.json"))
    args = parser.parse_args()
    X, y = dataset(2000, seed=0)
    background = dataset(200, seed=1)[0]
    rows = dataset(args.rows, seed=2)[0]
    summary = {"command": " ".join(["python", "bench/tabular.py", *sys.argv[1:]]), "rows": args.rows,
               "evaluations_per_row": args.evaluations, "scoring": {"n_background": SCORING_BACKGROUND,
                                                                  "seed": SCORING_SEED}, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, onnx_bytes in models(X, y).items():
            model_path = work / f"{name}.onnx"
            model_path.write_bytes(onnx_bytes)
            model = ox.Model(onnx_bytes, progress=False)
            targets = model.predict(rows).argmax(axis=1)
            start = time.perf_counter()
            tools = {**ours(model, rows, targets, background, args.evaluations),
                     **peers(args.peers, model_path, rows, targets, background, args.evaluations, work)}
            aucs = {tool: deletion_aucs(model, rows, targets, background, r["maps"]) for tool, r in tools.items()}
            peer_names = [t for t in tools if not t.startswith("onnxplain")  # at equal evaluations only
                          and tools[t]["rows"].mean() <= 1.1 * args.evaluations]
            best_peer = min(peer_names, key=lambda t: aucs[t].mean())
            fastest_peer = min(peer_names, key=lambda t: (tools[t]["engine"] / tools[t]["rows"]).mean())
            report = {"classes": np.bincount(targets, minlength=2).tolist(), "best_peer": best_peer, "tools": {}}
            for tool, r in tools.items():
                mean, half = interval(aucs[tool])
                entry = {"deletion_auc": round(mean, 4), "ci95": round(half, 4),
                         "rows_per_explanation": float(r["rows"].mean()),
                         "engine_us_per_row": round(float((r["engine"] / r["rows"]).mean() * 1e6), 2)}
                if tool.startswith("onnxplain"):
                    diff, diff_half = paired_difference(aucs[tool], aucs[best_peer])
                    entry["minus_best_peer"] = [round(diff, 4), round(diff_half, 4)]
                    entry["engine_vs_fastest_peer"] = round(entry["engine_us_per_row"] / float(
                        (tools[fastest_peer]["engine"] / tools[fastest_peer]["rows"]).mean() * 1e6), 3)
                report["tools"][tool] = entry
                print(f"{name:<14} {tool:<20} deletion AUC {mean:.4f} +- {half:.4f}  rows {entry['rows_per_explanation']:7.0f}"
                      f"  engine {entry['engine_us_per_row']:8.2f} us/row" +
                      (f"  minus {best_peer}: {entry['minus_best_peer'][0]:+.4f} +- {entry['minus_best_peer'][1]:.4f}"
                       if "minus_best_peer" in entry else ""))
            report["seconds"] = round(time.perf_counter() - start, 1)
            summary["models"][name] = report
    Path(args.json).write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
