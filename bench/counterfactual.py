"""DAC (mask-swap) scores of every discriminative attribution method on EfficientNet-Lite0 pairs.

    python bench/counterfactual.py [--model PATH] [--pairs 8] [--masks 1000] [--out bench/results]

Pairs are made by retrieval, as `onnxplain counterfactual --reference DIR` does: scenes are
scikit-image photos (and their mirror images) pasted onto smooth backgrounds (tint and gradient)
that differ from scene to scene; for each real scene the counterfactual is the nearest scene (32 x 32 image-space
distance) that the model gives another class with confidence. Nothing is blended, so blend-based
methods get no head start, and the backgrounds differ, so `residual` is not trivially perfect.
Prints a table (dataset DAC score per method, i.e. curves averaged over pairs then integrated; mean
evaluations and seconds per pair) and writes JSON (per pair and per method) to OUT/counterfactual.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import onnxplain as ox
from onnxplain import counterfactual as cf

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / "efficientnet_lite0.onnx"
PHOTOS = ("camera", "chelsea", "coffee", "coins", "page")  # classified confidently on a canvas
SIZE, PHOTO_SIDE = 224, 184


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


def scenes(seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Every photo, plain and mirrored, at two positions, each scene on its own smooth background: (name, 224 x 224 x 3 float32)."""
    import skimage.data

    rng = np.random.default_rng(seed)
    photos = {name: cv2.resize(_rgb(getattr(skimage.data, name)()).astype(np.float32), (PHOTO_SIDE, PHOTO_SIDE),
                               interpolation=cv2.INTER_AREA) for name in PHOTOS}
    out = []
    for variant in range(2):
        for flip in (False, True):
            for name, photo in photos.items():
                tint = rng.uniform(-15, 15, 3)
                ramp = np.linspace(-1, 1, SIZE)[:, None] * rng.uniform(-1, 1) + np.linspace(-1, 1, SIZE)[None, :] * rng.uniform(-1, 1)
                background = np.clip(127 + tint + 20 * ramp[..., None], 0, 255)
                scene = background.astype(np.float32)
                y0 = (SIZE - PHOTO_SIDE) // 2 + (10 if variant else -10)
                x0 = (SIZE - PHOTO_SIDE) // 2
                scene[y0:y0 + PHOTO_SIDE, x0:x0 + PHOTO_SIDE] = photo[:, ::-1] if flip else photo
                out.append((f"{name}{'-mirror' if flip else ''}-bg{variant}", scene))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--pairs", type=int, default=8, help="number of (real, counterfactual) pairs")
    parser.add_argument("--masks", type=int, default=1000, help="masks for D-RISE and RISE")
    parser.add_argument("--window", type=int, default=28)
    parser.add_argument("--stride", type=int, default=14)
    parser.add_argument("--thresholds", type=int, default=200)
    parser.add_argument("--min-confidence", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if not Path(args.model).is_file():
        print(f"model not found: {args.model}", file=sys.stderr)
        return 2
    model = ox.Model(args.model, preset="efficientnet-lite", progress=False)
    pool = scenes(args.seed)
    names = [n for n, _ in pool]
    images = [im for _, im in pool]
    pairs = []
    for i, (name, real) in enumerate(pool):
        if len(pairs) == args.pairs:
            break
        others = [j for j in range(len(pool)) if names[j].split("-")[0] != name.split("-")[0]]
        try:
            pair = cf.make_pair(model, real, references=[images[j] for j in others], min_confidence=args.min_confidence)
        except ox.OnnxplainError as exc:
            print(f"skip {name}: {exc}")
            continue
        pair.source["reference"] = names[others[int(pair.source["reference"][1:])]]
        pairs.append((name, pair))
    if not pairs:
        print("no pair passed the confidence filter", file=sys.stderr)
        return 1

    per_pair, swaps = [], {m: [] for m in cf.METHODS}
    cost = {m: {"evaluations": 0, "seconds": 0.0} for m in cf.METHODS}
    inference_before, wall_before = model.inference_seconds, time.perf_counter()
    for name, pair in pairs:
        entry = {"real": name, **pair.record(), "methods": {}}
        results = cf.explain_pair(model, pair, cf.METHODS, n_thresholds=args.thresholds, seed=args.seed,
                                  window=args.window, stride=args.stride, n_masks=args.masks)
        for method, (result, swap) in results.items():
            swaps[method].append(swap)
            evals, seconds = result.evaluations + swap.evaluations, result.seconds + swap.seconds
            cost[method]["evaluations"] += evals
            cost[method]["seconds"] += seconds
            entry["methods"][method] = {"dac": swap.score, "best": swap.best, "map_evaluations": result.evaluations,
                                        "swap_evaluations": swap.evaluations, "seconds": round(seconds, 3)}
        per_pair.append(entry)
        best = max(entry["methods"], key=lambda m: entry["methods"][m]["dac"])
        print(f"{name:<22} A={pair.class_a:>4} B={pair.class_b:>4} ({pair.source['reference']}) best: {best} "
              f"{entry['methods'][best]['dac']:.3f}")
    wall = time.perf_counter() - wall_before
    inference = model.inference_seconds - inference_before

    n = len(pairs)
    table = {m: {"dac": cf.dataset_score(swaps[m]), "mean_dac_per_pair": float(np.mean([s.score for s in swaps[m]])),
                 "evaluations_per_pair": cost[m]["evaluations"] / n, "seconds_per_pair": cost[m]["seconds"] / n}
             for m in cf.METHODS}
    print(f"\n{n} pairs, EfficientNet-Lite0, retrieval counterfactuals (p > {args.min_confidence})")
    print(f"{'method':<12} {'DAC':>6} {'mean':>6} {'evals/pair':>11} {'s/pair':>8}")
    for m, row in sorted(table.items(), key=lambda kv: -kv[1]["dac"]):
        print(f"{m:<12} {row['dac']:6.3f} {row['mean_dac_per_pair']:6.3f} {row['evaluations_per_pair']:11.0f} "
              f"{row['seconds_per_pair']:8.2f}")
    print(f"wall {wall:.1f} s, of which model inference {inference:.1f} s: engine overhead "
          f"{(wall - inference) / wall:.1%} of wall time")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": Path(args.model).name, "pairs": n, "args": vars(args), "table": table, "per_pair": per_pair,
              "wall_seconds": wall, "inference_seconds": inference, "machine": platform.platform()}
    (out / "counterfactual.json").write_text(json.dumps(report, indent=2))
    cv2.imwrite(str(out / "counterfactual_curves.png"),
                cv2.cvtColor(cf.plot_curves({m: np.mean([s.curve for s in swaps[m]], axis=0) for m in cf.METHODS}),
                             cv2.COLOR_RGB2BGR))
    print(f"wrote {out / 'counterfactual.json'} and counterfactual_curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
