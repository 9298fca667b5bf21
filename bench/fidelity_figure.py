"""Does the fidelity figure every explanation carries earn its place? Compares it with the full
20-step MIF/LIF fidelity on the fidelity bench's images (bench/fidelity.py: 28 images built from
scikit-image's photos) on EfficientNet-Lite0.

    python bench/fidelity_figure.py [--model PATH] [--methods occlusion,rise] [--masks 500]
                                    [--window 32 --stride 16] [--info-budget 1000] [--limit N]

Each method explains each image with the default fidelity figure (at most 5 % of its
evaluations); the random map (which costs one evaluation, so affords no figure of its own) gets
the figure at occlusion's step count. Reports the Spearman correlation of figure and full fidelity
over every (image, method) map and within each method, and how often the figure ranks the random
map below occlusion (the full fidelity's own rate alongside). Writes --out (default
bench/fidelity_figure.json).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

import onnxplain as ox
from onnxplain import fidelity as fd

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("fidelity_bench", ROOT / "bench" / "fidelity.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=bench.DEFAULT_MODEL)
    parser.add_argument("--methods", default="occlusion,rise")
    parser.add_argument("--masks", type=int, default=500)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--info-budget", type=int, default=1000)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "results" / "fidelity_figure_images")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "fidelity_figure.json")
    args = parser.parse_args()
    if not args.model.exists():
        raise SystemExit(f"model not found: {args.model}")
    bench.build_images(args.work)
    paths = sorted(args.work.glob("*.png"))[: args.limit]
    model = ox.Model(args.model, preset="efficientnet-lite", progress=False)
    methods = args.methods.split(",")
    options = {"occlusion": {"window": args.window, "stride": args.stride}, "rise": {"n_masks": args.masks},
               "ig": {"budget": args.info_budget}, "pmi": {"budget": args.info_budget}}
    rows = []
    start = time.perf_counter()
    for path in paths:
        image = ox.load_image(path, model.input_size)
        steps = None
        for method in methods + ["random"]:
            if method == "random":
                result = ox.RandomMap(model).attribute(image, seed=0)
                figure, curves = fd.quick_fidelity(model, image, result, steps, seed=0)
                cost = curves.evaluations
            else:
                result = ox.get_method(method, "input").factory(model).attribute(image, seed=0, **options.get(method, {}))
                figure, cost = result.fidelity["estimate"], result.fidelity["evaluations"]
                steps = len(result.fidelity["fractions"]) if method == "occlusion" or steps is None else steps
            full = fd.mif_lif(model, image, result, seed=0)
            rows.append({"image": path.name, "method": method, "figure": figure, "full": full.fidelity,
                         "figure_evaluations": cost, "explanation_evaluations": result.evaluations,
                         "full_evaluations": full.evaluations})
            print(f"{path.name:<28} {method:<10} figure {figure:+.3f} ({cost} evals)  full {full.fidelity:+.3f}",
                  flush=True)
    figure = np.array([r["figure"] for r in rows])
    full = np.array([r["full"] for r in rows])
    by = {m: [r for r in rows if r["method"] == m] for m in methods + ["random"]}
    below = [(b["figure"] < o["figure"], b["full"] < o["full"]) for b, o in zip(by["random"], by.get("occlusion", []))]
    summary = {
        "command": "python bench/fidelity_figure.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in
                                                                  vars(args).items() if k in ("methods", "limit") and v),
        "model": args.model.name, "images": len(paths), "methods": methods, "options": options,
        "spearman_all_maps": float(spearmanr(figure, full).statistic),
        "spearman_within_method": {m: float(spearmanr([r["figure"] for r in g], [r["full"] for r in g]).statistic)
                                   for m, g in by.items() if len(g) > 2},
        "random_below_occlusion": {"figure": float(np.mean([f for f, _ in below])) if below else None,
                                   "full": float(np.mean([f for _, f in below])) if below else None},
        "figure_share_of_explanation": {m: float(np.mean([r["figure_evaluations"] / r["explanation_evaluations"]
                                                          for r in g])) for m, g in by.items() if m != "random"},
        "wall_seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
    }
    args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
