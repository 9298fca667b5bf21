"""Fidelity of occlusion, RISE, IG and PMI against a random map on EfficientNet-Lite0 (Brocki & Chung's
MIF/LIF finding, plus deletion and insertion), over images built from scikit-image's photos
(and scikit-learn's sample images when installed): square crops, flips, tight crops and
photo-on-canvas composites. Nothing is downloaded.

    python bench/fidelity.py [--model PATH] [--methods occlusion,rise,ig,pmi] [--masks 500]
                             [--window 32 --stride 16] [--info-budget 1000] [--step 896]
                             [--metrics mif-lif,deletion,insertion] [--limit N] [--keep]

Prints the table of `onnxplain evaluate` and the cost (wall time, model evaluations, pure model
inference time and the engine's share), writes the full summary to bench/results/fidelity.json
(gitignored) and a small one to --summary (default bench/fidelity_summary.json, committed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import cv2
import numpy as np

import onnxplain as ox

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT.parent / "shared" / "models" / "efficientnet_lite0.onnx"
SIZE = 224


def photos() -> dict[str, np.ndarray]:
    """Bundled natural photos as uint8 RGB."""
    from skimage import data

    out = {name: getattr(data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket", "camera", "clock")}
    out["motorcycle"] = data.stereo_motorcycle()[0]
    try:  # optional
        from sklearn.datasets import load_sample_images

        for k, image in enumerate(load_sample_images().images):
            out[f"sklearn{k}"] = image
    except ImportError:
        pass
    return {k: np.repeat(v[..., None], 3, axis=2) if v.ndim == 2 else v[..., :3] for k, v in out.items()}


def square(photo: np.ndarray, keep: float = 1.0) -> np.ndarray:
    """The centred square crop covering `keep` of the short side, resized to SIZE."""
    h, w = photo.shape[:2]
    side = int(min(h, w) * keep)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return cv2.resize(photo[y0:y0 + side, x0:x0 + side], (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def build_images(folder: Path) -> int:
    """Four variants per photo, 224 x 224: centred square crop, its mirror image, a tight crop (60 %
    of the short side), and the square crop shrunk to 60 % on a grey canvas (corner by photo index)."""
    folder.mkdir(parents=True, exist_ok=True)
    corners = ("top-left", "top-right", "bottom-left", "bottom-right")
    count = 0
    for k, (name, photo) in enumerate(sorted(photos().items())):
        full = square(photo)
        variants = {"crop": full, "flip": full[:, ::-1], "tight": square(photo, 0.6)}
        side = int(SIZE * 0.6)
        canvas = np.full((SIZE, SIZE, 3), 127, np.uint8)
        y0 = 0 if "top" in corners[k % 4] else SIZE - side
        x0 = 0 if "left" in corners[k % 4] else SIZE - side
        canvas[y0:y0 + side, x0:x0 + side] = cv2.resize(full, (side, side), interpolation=cv2.INTER_AREA)
        variants["canvas"] = canvas
        for variant, image in variants.items():
            cv2.imwrite(str(folder / f"{name}_{variant}.png"), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--masks", type=int, default=500, help="RISE masks")
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--methods", default="occlusion,rise,ig,pmi,random",
                        help="registered methods to compare (random is the floor and always included)")
    parser.add_argument("--info-budget", type=int, default=1000, help="IG/PMI budgeted-mode model evaluations")
    parser.add_argument("--metrics", default="mif-lif,deletion,insertion")
    parser.add_argument("--step", type=int, default=4 * SIZE, help="deletion/insertion pixels per step")
    parser.add_argument("--limit", type=int, help="use only the first N images (a quick check)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "results" / "fidelity_run")
    parser.add_argument("--keep", action="store_true", help="resume an existing run in --work (costs then undercount)")
    parser.add_argument("--summary", type=Path, default=ROOT / "bench" / "fidelity_summary.json")
    args = parser.parse_args()
    if not args.model.exists():
        raise SystemExit(f"model not found: {args.model}")
    if args.work.exists() and not args.keep:
        shutil.rmtree(args.work)
    images = args.work / "images"
    n_built = build_images(images)
    paths = sorted(images.glob("*.png"))[: args.limit]
    model = ox.Model(args.model, preset="efficientnet-lite", progress=False)
    methods = list(dict.fromkeys(args.methods.split(",") + ["random"]))
    metrics = args.metrics.split(",")
    options = {"occlusion": {"window": args.window, "stride": args.stride}, "rise": {"n_masks": args.masks},
               "ig": {"budget": args.info_budget}, "pmi": {"budget": args.info_budget}}
    options = {name: value for name, value in options.items() if name in methods}
    start = time.perf_counter()
    steps = {"deletion": {"step": args.step}, "insertion": {"step": args.step}}
    report = ox.evaluate(model, paths, methods, metrics, args.work / "run", method_options=options,
                         metric_options={k: v for k, v in steps.items() if k in metrics}, progress=True)
    wall = time.perf_counter() - start
    print(report.table())
    inference = model.inference_seconds
    cost = {"images": len(paths), "wall_seconds": round(wall, 1), "evaluations": model.evaluations,
            "inference_seconds": round(inference, 1),
            "engine_share": round((wall - inference) / wall, 4) if wall else None,
            "seconds_per_image": round(wall / len(paths), 2),
            "evaluations_per_image": round(model.evaluations / len(paths), 1)}
    print(f"\n{len(paths)} images (of {n_built} built), {model.evaluations} model evaluations, wall {wall:.0f} s, "
          f"pure model inference {inference:.0f} s; engine + metrics bookkeeping {wall - inference:.0f} s "
          f"({cost['engine_share']:.1%} of wall)")
    for row in report.summary:
        if row["method"] != "random" and "vs_random" in row:
            d = row["vs_random"]
            what = "fidelity" if "fidelity" in row else "AUC"
            print(f"{row['method']:<10} {row['metric']:<10} {what} - random: {d['mean']:+.3f}, 95 % interval "
                  f"[{d['mean'] - d['ci95']:+.3f}, {d['mean'] + d['ci95']:+.3f}] over {d['images']} paired images")
    setup = {"model": args.model.name, "preset": "efficientnet-lite", "methods": methods, "rise_masks": args.masks,
             "ig_pmi": f"budgeted, {args.info_budget} evaluations each, other parameters default",
             "occlusion": {"window": args.window, "stride": args.stride}, "metrics": metrics,
             "mif_lif": "pixels ranked (patch 1), perturbed to the mean (0 after preprocessing), fractions 0..0.95, "
                        "score p(c|x~)/p(c|x)",
             "deletion_insertion": f"{args.step} px per step; deletion to the mean, insertion from blur 11/5",
             "machine": f"{platform.machine()}, {os.cpu_count()} cores, onnxruntime CPU"}
    small = {"setup": setup, "cost": cost, "rows": [
        {k: row[k] for k in ("method", "metric", "images", "aucs", "fidelity", "vs_random", "explain_evaluations",
                             "explain_seconds", "metric_evaluations", "metric_seconds") if k in row}
        for row in report.summary]}
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "fidelity.json").write_text(json.dumps({**small, "summary": report.summary}, indent=2))
    args.summary.write_text(json.dumps(small, indent=2) + "\n")
    print(f"wrote {args.summary} and bench/results/fidelity.json; run directory {args.work / 'run'}")


if __name__ == "__main__":
    main()
