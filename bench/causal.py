"""Multiple causal explanations: onnxplain's `Causal` against rex-xai 0.4.1 (MultiReX).

    python bench/causal.py [--rex /work/venv-rex/bin/ReX] [--images N] [--criteria top1,confidence]
                           [--model PATH] [--json OUT] [--summary OUT]

Same ONNX model (EfficientNet-Lite0), same 224 x 224 images (scikit-image photos and two-object
composites: a photo pasted twice, mirrored, in opposite corners of a grey canvas), same run.
Criteria: `top1` (onnxplain) against rex's default; `confidence` 0.5 against rex with
`--confidence 0.5` (rex's minimum_confidence_threshold: p >= 0.5 * p(whole image), the same rule).
Mask value 0 after normalisation for both (pixel 127: onnxplain's "mean" for this preset).

Every explanation of both tools is re-evaluated here by the same model under the same criterion
(alone, rest at the mask value); the disjoint count is the largest set of distinct, non-empty,
sufficient explanations with pairwise Dice 0 (`onnxplain.causal.select_disjoint`). Model calls:
onnxplain's counter; rex's are counted by wrapping onnxruntime's `InferenceSession.run` in its
process (images per call summed). Wall time: onnxplain's `attribute`; rex's whole process
(including its start-up); inference time of each too. Results are written after every image,
so an interrupted run keeps what it finished; with `--rex-work DIR` finished rex runs are
reused (rex is seeded), so a rerun only recomputes onnxplain.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import onnxplain as ox
from onnxplain.causal import select_disjoint

BENCH = Path(__file__).resolve().parent
DEFAULT_MODEL = BENCH.parents[1] / "shared/models/efficientnet_lite0.onnx"
REX_TOML = """[rex]
mask_value = 0
seed = 42
gpu = false
batch_size = 64

[rex.onnx]
norm = 1.0
means = [127.0, 127.0, 127.0]
stds = [128.0, 128.0, 128.0]

[causal]
iters = 20
"""
# Counts rex's model calls: patches InferenceSession.run inside the rex process.
SITECUSTOMIZE = """import atexit, json, os, time
import onnxruntime
_run = onnxruntime.InferenceSession.run
_stats = {"calls": 0, "images": 0, "seconds": 0.0}
def _counted(self, output_names, input_feed, *args, **kwargs):
    t0 = time.perf_counter()
    out = _run(self, output_names, input_feed, *args, **kwargs)
    _stats["seconds"] += time.perf_counter() - t0
    _stats["calls"] += 1
    _stats["images"] += int(next(iter(input_feed.values())).shape[0])
    return out
onnxruntime.InferenceSession.run = _counted
atexit.register(lambda: open(os.environ["REX_COUNT_FILE"], "w").write(json.dumps(_stats)))
"""
READ_DB = """import sys, numpy as np
from rex_xai.output.database import db_to_pandas
df = db_to_pandas(sys.argv[1])
masks = [np.asarray(m, dtype=bool) for m in df["sufficiency_mask"]]
np.savez(sys.argv[2], masks=np.stack(masks) if masks else np.zeros((0, 224, 224), bool),
         target=df["target"].to_numpy(), confidence=df["sufficiency_confidence"].to_numpy(float))
"""


def images() -> list[tuple[str, np.ndarray]]:
    """Composites and photos interleaved (so a partial run covers both kinds), 224 x 224 uint8."""
    import skimage.data

    sys.path.insert(0, str(BENCH.parent / "tests"))
    from helpers import photo_on_canvas

    photos = {"chelsea": skimage.data.chelsea(), "coffee": skimage.data.coffee(), "rocket": skimage.data.rocket(),
              "astronaut": skimage.data.astronaut(), "camera": skimage.data.camera(),
              "immunohistochemistry": skimage.data.immunohistochemistry()}
    out = []
    for name in ["chelsea", "coffee", "rocket", "astronaut"]:
        photo = ox.load_image(photos[name], (224, 224))
        canvas, _ = photo_on_canvas(photo, corner="top-left", scale=0.5)
        mirrored, box = photo_on_canvas(photo[:, ::-1], corner="bottom-right", scale=0.5)
        canvas[box[0]:box[2], box[1]:box[3]] = mirrored[box[0]:box[2], box[1]:box[3]]
        out.append((f"{name}_x2", canvas))
        out.append((name, photo))
    out += [(n, ox.load_image(photos[n], (224, 224))) for n in ("camera", "immunohistochemistry")]
    return [(n, np.clip(im, 0, 255).round().astype(np.uint8)) for n, im in out]


def verify(model: ox.Model, image: np.ndarray, masks: list[np.ndarray], target: int, criterion: str,
           clean: float) -> tuple[list[float], list[bool]]:
    """p(target) and the criterion for each mask shown alone (rest at the preset mean)."""
    if not masks:
        return [], []
    grey = np.broadcast_to(model.preprocess.neutral, image.shape).astype(np.float32)
    shown = np.stack([np.where(m[..., None], image, grey) for m in masks]).astype(np.float32)
    p = model.predict(shown)
    ok = p.argmax(axis=1) == target if criterion == "top1" else p[:, target] >= 0.5 * clean
    return [float(v) for v in p[:, target]], [bool(v) for v in ok]


def summarise(model, image, masks, target, criterion, clean) -> dict:
    p, ok = verify(model, image, masks, target, criterion, clean)
    sufficient = [m for m, good in zip(masks, ok) if good]
    chosen = [sufficient[i] for i in select_disjoint(sufficient, 0.0)]
    keep = [next(j for j, m in enumerate(masks) if m is c) for c in chosen]
    return {"returned": len(masks), "sufficient": int(sum(ok)), "disjoint": len(chosen),
            "areas": [int(masks[j].sum()) for j in keep], "probabilities": [round(p[j], 4) for j in keep],
            "all_areas": [int(m.sum()) for m in masks], "all_probabilities": [round(v, 4) for v in p]}


def run_ours(model: ox.Model, image: np.ndarray, criterion: str) -> dict:
    evals, inference = model.evaluations, model.inference_seconds
    t0 = time.perf_counter()
    result = ox.Causal(model).attribute(image.astype(np.float32), criterion=criterion, seed=0)
    wall = time.perf_counter() - t0
    return {"result": result, "calls": model.evaluations - evals, "seconds": round(wall, 2),
            "inference_seconds": round(model.inference_seconds - inference, 2),
            "map_calls": result.params["map_evaluations"]}


def load_rex(work: Path) -> dict:
    """A finished rex run of `work` (its masks, as H x W bool, and its record)."""
    data = np.load(work / "masks.npz")
    masks = [m.reshape(-1, *m.shape[-2:]).any(axis=0) if m.ndim > 2 else m for m in data["masks"]]
    return {"masks": masks, **json.loads((work / "rex.json").read_text())}


def run_rex(rex: str, model_path: Path, image: np.ndarray, criterion: str, work: Path) -> dict:
    """Runs ReX --multi in `work`, or reuses the finished run there (rex is deterministic: seed 42)."""
    if (work / "rex.json").exists() and (work / "image.png").exists() and np.array_equal(
            cv2.cvtColor(cv2.imread(str(work / "image.png")), cv2.COLOR_BGR2RGB), image):
        return {**load_rex(work), "cached": True}
    work.mkdir(parents=True, exist_ok=True)
    (work / "rex.toml").write_text(REX_TOML)
    (work / "sitecustomize.py").write_text(SITECUSTOMIZE)
    cv2.imwrite(str(work / "image.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    db, counts = work / "rex.db", work / "counts.json"
    db.unlink(missing_ok=True)
    command = [rex, "image.png", "--model", str(model_path), "--multi", "-db", str(db), "-q"]
    if criterion == "confidence":
        command += ["--confidence", "0.5"]
    env = {**os.environ, "PYTHONPATH": str(work), "REX_COUNT_FILE": str(counts)}
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not db.exists():
        return {"error": (proc.stderr or proc.stdout)[-500:], "seconds": round(wall, 2)}
    python = str(Path(rex).with_name("python"))
    subprocess.run([python, "-c", READ_DB, str(db), str(work / "masks.npz")], check=True, capture_output=True)
    stats = json.loads(counts.read_text())
    record = {"calls": stats["images"], "seconds": round(wall, 2), "inference_seconds": round(stats["seconds"], 2),
              "targets": sorted({int(t) for t in np.load(work / "masks.npz")["target"]})}
    (work / "rex.json").write_text(json.dumps(record))
    return load_rex(work)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rex", default="/work/venv-rex/bin/ReX", help="rex-xai's ReX command ('' to skip)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--names", help="comma-separated image names to run (default: the first --images)")
    parser.add_argument("--criteria", default="top1,confidence")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "causal.json")
    parser.add_argument("--summary", type=Path, default=BENCH / "causal_summary.json")
    parser.add_argument("--rex-work", type=Path, help="rex working folder; finished runs there are reused "
                                                       "(default: a new temporary folder)")
    args = parser.parse_args()
    model = ox.Model(args.model, preset="efficientnet-lite", progress=False)
    criteria = args.criteria.split(",")
    rows, work_root = [], args.rex_work or Path(tempfile.mkdtemp(prefix="bench-causal-"))
    print(f"{'image':<22}{'criterion':<11}{'tool':<10}{'disjoint':>9}{'returned':>9}{'calls':>7}{'wall s':>8}"
          f"{'infer s':>8}  areas (px) / p(target)")
    chosen = [(n, im) for n, im in images() if n in args.names.split(",")] if args.names else images()[: args.images]
    for name, image in chosen:
        probabilities = model.predict(image.astype(np.float32))
        target, clean = int(probabilities.argmax()), float(probabilities.max())
        for criterion in criteria:
            ours = run_ours(model, image, criterion)
            entry = {"image": name, "criterion": criterion, "target": target, "p_clean": round(clean, 4)}
            entry["onnxplain"] = {**summarise(model, image, [e.mask for e in ours["result"].explanations], target,
                                              criterion, clean),
                                  **{k: v for k, v in ours.items() if k != "result"}}
            if args.rex:
                rex = run_rex(args.rex, args.model, image, criterion, work_root / f"{name}_{criterion}")
                if "masks" in rex:
                    entry["rex"] = {**summarise(model, image, rex.pop("masks"), target, criterion, clean), **rex}
                else:
                    entry["rex"] = rex
            rows.append(entry)
            for tool in ("onnxplain", "rex"):
                r = entry.get(tool)
                if r is None:
                    continue
                if "error" in r:
                    print(f"{name:<22}{criterion:<11}{tool:<10} failed: {r['error'][-120:]!r}")
                    continue
                pairs = ", ".join(f"{a}/{p:.2f}" for a, p in zip(r["areas"], r["probabilities"]))
                print(f"{name:<22}{criterion:<11}{tool:<10}{r['disjoint']:>9}{r['returned']:>9}{r['calls']:>7}"
                      f"{r['seconds']:>8.1f}{r['inference_seconds']:>8.1f}  {pairs}", flush=True)
            write(args, rows, model)
    return 0


def smallest_areas(row: dict) -> tuple[int, int]:
    """Total area of our k smallest disjoint explanations and of rex's, k the smaller count."""
    k = min(len(row["onnxplain"]["areas"]), len(row["rex"]["areas"]))
    return sum(sorted(row["onnxplain"]["areas"])[:k]), sum(sorted(row["rex"]["areas"])[:k])


def write(args, rows: list[dict], model: ox.Model) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": str(args.model.name), "rows": rows}, indent=1))
    summary = {"model": args.model.name, "images": sorted({r["image"] for r in rows}), "by_criterion": {}}
    for criterion in sorted({r["criterion"] for r in rows}):
        part = [r for r in rows if r["criterion"] == criterion]
        both = [r for r in part if "rex" in r and "error" not in r["rex"]]
        agg = {"images": len(part), "images_with_rex": len(both)}
        subset = both or part  # compare on the images both tools finished
        for tool in ("onnxplain", "rex"):
            got = [r[tool] for r in subset if tool in r and "error" not in r[tool]]
            if not got:
                continue
            areas = [a for g in got for a in g["areas"]]
            agg[tool] = {"disjoint_total": sum(g["disjoint"] for g in got),
                         "calls_total": sum(g["calls"] for g in got),
                         "seconds_total": round(sum(g["seconds"] for g in got), 1),
                         "inference_seconds_total": round(sum(g["inference_seconds"] for g in got), 1),
                         "median_area": float(np.median(areas)) if areas else None,
                         "composites_with_2plus": sum(r[tool]["disjoint"] >= 2 for r in subset
                                                      if r["image"].endswith("_x2") and tool in r),
                         "composites": sum(r["image"].endswith("_x2") for r in subset)}
        # sizes: per image, our k smallest against rex's k smallest, k the smaller disjoint count
        paired = [smallest_areas(r) for r in both if r["onnxplain"].get("areas") and r["rex"].get("areas")]
        agg["k_smallest_area_total"] = {"onnxplain": sum(o for o, _ in paired), "rex": sum(x for _, x in paired)}
        agg["images_no_larger"] = sum(o <= x for o, x in paired)
        agg["images_compared"] = len(paired)
        summary["by_criterion"][criterion] = agg
    summary["rows"] = [{"image": r["image"], "criterion": r["criterion"], "target": r["target"],
                        **{tool: {k: r[tool][k] for k in ("disjoint", "areas", "probabilities", "calls", "seconds")
                                  if k in r[tool]} for tool in ("onnxplain", "rex") if tool in r}} for r in rows]
    args.summary.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    sys.exit(main())
