"""IG / PMI benchmark (issue 3): budgeted mode against dense reference maps, and Deletion AUC.

    python bench/information.py reference [--model demo|efficientnet] [--stride S] [--samples N]
    python bench/information.py quality   [--model demo|efficientnet] [--budgets 0.025,0.05,0.1]
    python bench/information.py deletion  [--images 10] [--budget 1000]

reference: dense maps (IG and top-1 PMI, seed 0), written to bench/information_reference/ as
  <model>_<image>.npz (maps, evaluation count, seed, parameters), with <model>_ceiling.json: the
  Spearman of the maps from the two halves of each patch's samples, projected to the full count by
  Spearman-Brown (the ceiling any cheaper map can reach). Protocol: --model efficientnet --stride 2
  (three composites, N = 8) and --model demo (stride 1).
quality: budgeted maps at fractions of the reference's evaluations, against the reference:
  Spearman, top-10 % overlap and Spearman at the numerical resolution (|values| < 1e-6 nats tied)
  for IG and top-1 PMI, evaluations, seconds, inference seconds.
deletion: Deletion AUC (pixels removed to grey, most important first, in 5 % steps; area under
  p(top-1 class), lower is better) of PMI, IG (budgeted, --patch 16 by default), occlusion (window
  32, stride 16) and RISE (--budget masks) on EfficientNet-Lite0 over photo composites.
Results: a table on stdout and JSON under bench/results/ (gitignored).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

import onnxplain as ox
from onnxplain import demo

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "information_reference"
RESULTS = HERE / "results"
RESOLUTION = 1e-6  # nats: the tolerance of the IG >= 0 check; |values| below it are ties in `compare`
sys.path.insert(0, str(HERE.parent / "tests"))
from helpers import EFFICIENTNET, photo_on_canvas  # noqa: E402

# The three named composites of the protocol, then more for the Deletion AUC.
COMPOSITES = [("chelsea", "bottom-right"), ("coffee", "top-left"), ("astronaut", "top-right"),
              ("rocket", "bottom-left"), ("stereo_motorcycle", "top-left"), ("chelsea", "top-left"),
              ("coffee", "bottom-right"), ("astronaut", "bottom-left"), ("rocket", "top-right"),
              ("stereo_motorcycle", "bottom-right")]


def composite(index: int) -> tuple[str, np.ndarray]:
    import skimage.data

    name, corner = COMPOSITES[index]
    photo = getattr(skimage.data, name)()
    photo = photo[0] if isinstance(photo, tuple) else photo
    canvas, _ = photo_on_canvas(photo, corner=corner, scale=0.55)
    return f"{name}-{corner}", np.clip(canvas, 0, 255)  # area resampling can overshoot 255 by rounding


def setup(which: str, count: int):
    """The model and `count` named images of a benchmark."""
    if which == "demo":
        model = ox.Model(demo.demo_model_path(), preset="unit", progress=False)
        images = [(f"demo{c}", demo.make_demo_image(c, seed=100 + c)[0]) for c in range(3)][:count]
    else:
        model = ox.Model(EFFICIENTNET, preset="efficientnet-lite", progress=False)
        images = [composite(i) for i in range(count)]
    return model, images


def top_overlap(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    """Share of b's top `fraction` pixels that are also in a's."""
    k = max(1, int(round(fraction * a.size)))
    ta = set(np.argsort(-a.ravel(), kind="stable")[:k])
    tb = set(np.argsort(-b.ravel(), kind="stable")[:k])
    return len(ta & tb) / k


def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Spearman, top-10 % overlap, and Spearman with values below RESOLUTION in magnitude tied at 0
    (on a flat canvas IG and PMI sit at the float32 noise of the model's output, ~1e-7 nats, whose
    order carries no information)."""
    tie = lambda m: np.where(np.abs(m) < RESOLUTION, 0.0, m)  # noqa: E731
    return (float(spearmanr(a.ravel(), b.ravel())[0]), top_overlap(a, b),
            float(spearmanr(tie(a).ravel(), tie(b).ravel())[0]))


def maps_of(model, image, seed, **options):
    """(IG map, top-1 PMI map, record) from one shared run."""
    start_inference = model.inference_seconds
    ig, pmi = ox.information_maps(model, image, target="top", seed=seed, **options)
    top = pmi.targets[0]
    record = {"evaluations": ig.evaluations, "seconds": ig.seconds,
              "inference_seconds": model.inference_seconds - start_inference, "params": ig.params}
    return ig[top], pmi[top], record


def split_half_reference(model, image, stride: int, samples: int, seed: int = 0):
    """Dense maps (IG, top-1 PMI) at patch 8 with `samples` per patch, plus the same maps from the
    first and from the second half of each patch's samples (independent draws), all from one
    streamed pass: (ig, pmi, ig halves, pmi halves, evaluations, seconds, model seconds)."""
    from onnxplain import _core
    from onnxplain.information import EPS, make_sampler, perturbation_sums, pixel_maps, scores_of

    start, start_inference, start_evals = time.perf_counter(), model.inference_seconds, model.evaluations
    clean = model.predict(image).astype(np.float64)
    targets = [int(np.argmax(clean))]
    sampler = make_sampler("gaussian", frame=2)
    sampler.prepare(model, image, 8)
    h, w = model.input_size
    yy, xx = np.meshgrid(_core.window_positions(h, 8, stride), _core.window_positions(w, 8, stride), indexing="ij")
    yy, xx = yy.ravel().astype(np.int64), xx.ravel().astype(np.int64)
    patches = np.repeat(np.arange(yy.size), samples)
    ns = np.tile(np.arange(samples, dtype=np.int64), yy.size)
    rows = 2 * patches + (ns >= samples // 2)  # each patch's sums split by half, in sample order
    sums = np.zeros((2 * yy.size, clean.shape[0]))
    perturbation_sums(model, image, sampler, yy[patches], xx[patches], ns, rows, sums, seed)
    half = samples // 2
    fields = [scores_of(sums[0::2] + sums[1::2], np.full(yy.size, float(samples)), clean, targets, EPS),
              scores_of(sums[0::2], np.full(yy.size, float(half)), clean, targets, EPS),
              scores_of(sums[1::2], np.full(yy.size, float(samples - half)), clean, targets, EPS)]
    (ig, pmi), first, second = [pixel_maps(f, yy, xx, 8, (h, w)).astype(np.float32) for f in fields]
    return (ig, pmi, (first[0], second[0]), (first[1], second[1]), model.evaluations - start_evals,
            time.perf_counter() - start, model.inference_seconds - start_inference)


def spearman_brown(rho: float) -> float:
    """Reliability of a map from twice the samples, from the correlation of two half-sample maps."""
    return 2 * rho / (1 + rho)


def run_reference(args) -> dict:
    """One dense seed-0 run per image; its two halves of samples give the ceiling (split-half
    Spearman, projected to the full sample count by Spearman-Brown)."""
    model, images = setup(args.model, args.count)
    REFERENCE.mkdir(exist_ok=True)
    rows = []
    for name, image in images:
        ig, pmi, ig_halves, pmi_halves, evaluations, seconds, inference = split_half_reference(
            model, image, args.stride, args.samples)
        if args.model == "demo":  # the split pass must reproduce the library's dense maps
            dense_ig, dense_pmi, _ = maps_of(model, image, 0, patch=8, stride=args.stride, samples=args.samples,
                                             mode="dense")
            assert np.allclose(ig, dense_ig, atol=1e-6) and np.allclose(pmi, dense_pmi, atol=1e-6), name
        params = {"patch": 8, "stride": args.stride, "samples": args.samples, "sampler": "gaussian", "frame": 2,
                  "mode": "dense"}
        np.savez_compressed(REFERENCE / f"{args.model}_{name}.npz", ig=ig, pmi=pmi, evaluations=evaluations, seed=0,
                            params=json.dumps(params))
        half_ig, half_pmi = compare(*ig_halves), compare(*pmi_halves)
        row = {"image": name, "evaluations": evaluations, "seconds": round(seconds, 2),
               "inference_seconds": round(inference, 2), "split_half_ig": half_ig, "split_half_pmi": half_pmi,
               "ceiling_ig": [spearman_brown(v) for v in half_ig],
               "ceiling_pmi": [spearman_brown(v) for v in half_pmi], "params": params}
        rows.append(row)
        print(f"{name:<28} {evaluations:>7} evals {seconds:>8.1f} s (model {inference:.1f} s)"
              f"  ceiling IG rho {row['ceiling_ig'][0]:.3f} (@res {row['ceiling_ig'][2]:.3f})"
              f"  PMI rho {row['ceiling_pmi'][0]:.3f} (@res {row['ceiling_pmi'][2]:.3f})"
              f"  [split-half rho IG {half_ig[0]:.3f}, PMI {half_pmi[0]:.3f}]", flush=True)
        (REFERENCE / f"{args.model}_ceiling.json").write_text(json.dumps(rows, indent=2))
    return {"reference": rows}


def run_quality(args) -> dict:
    model, images = setup(args.model, args.count)
    ceilings = {row["image"]: row for row in json.loads((REFERENCE / f"{args.model}_ceiling.json").read_text())}
    rows = []
    print(f"{'image':<28} {'budget':>7} {'evals':>6} {'s':>6} {'model s':>7}  IG rho  top10 rho@res  PMI rho  top10 "
          "rho@res  (ceiling IG rho, rho@res, PMI rho, rho@res)")
    for name, image in images:
        ref = np.load(REFERENCE / f"{args.model}_{name}.npz")
        cig, cpmi = ceilings[name]["ceiling_ig"], ceilings[name]["ceiling_pmi"]
        for fraction in (float(f) for f in args.budgets.split(",")):
            budget = int(fraction * int(ref["evaluations"]))
            ig, pmi, record = maps_of(model, image, 2, patch=8, stride=json.loads(str(ref["params"]))["stride"],
                                      budget=budget, budget_samples=args.budget_samples)
            row = {"image": name, "fraction": fraction, "budget": budget, "evaluations": record["evaluations"],
                   "seconds": round(record["seconds"], 2), "inference_seconds": round(record["inference_seconds"], 2),
                   "ig": compare(ig, ref["ig"]), "pmi": compare(pmi, ref["pmi"]), "ceiling": [cig, cpmi],
                   "levels": record["params"].get("levels"), "extra_samples": record["params"].get("extra_samples")}
            rows.append(row)
            print(f"{name:<28} {fraction:>7.3f} {row['evaluations']:>6} {row['seconds']:>6.1f} "
                  f"{row['inference_seconds']:>7.1f}  {row['ig'][0]:.3f}  {row['ig'][1]:.2f}  {row['ig'][2]:.3f}    "
                  f"{row['pmi'][0]:.3f}  {row['pmi'][1]:.2f}  {row['pmi'][2]:.3f}    "
                  f"({cig[0]:.3f}, {cig[2]:.3f}, {cpmi[0]:.3f}, {cpmi[2]:.3f})", flush=True)
    return {"quality": rows}


def deletion_auc(model, image, attribution, target, steps: int = 20) -> float:
    """Area under p(target) as the most important pixels go to grey (model's neutral value)."""
    order = np.argsort(-attribution.ravel(), kind="stable")
    grey = np.broadcast_to(model.preprocess.neutral, image.shape)
    batch = []
    for step in range(steps + 1):
        keep = np.ones(image.shape[0] * image.shape[1], np.float32)
        keep[order[: int(round(step / steps * keep.size))]] = 0
        mask = keep.reshape(image.shape[:2])[..., None]
        batch.append(mask * image + (1 - mask) * grey)
    curve = model.predict(np.stack(batch))[:, target]
    return float(np.trapezoid(curve, dx=1.0 / steps))


def run_deletion(args) -> dict:
    model, images = setup("efficientnet", args.images)
    rows = []
    print(f"{'image':<28} {'method':<10} {'evals':>6} {'s':>6} {'model s':>7}  deletion AUC  (IG and PMI share one run)")
    for name, image in images:
        target = int(np.argmax(model.predict(image)))
        ig, pmi, record = maps_of(model, image, 0, patch=args.patch, budget=args.budget)
        shared = (record["evaluations"], record["seconds"], record["inference_seconds"])
        maps = {"pmi": (pmi, *shared), "ig": (ig, *shared)}
        for method, explainer, kwargs in (("occlusion", ox.Occlusion(model), {"window": 32, "stride": 16}),
                                          ("rise", ox.RISE(model), {"n_masks": args.budget, "seed": 0})):
            before = model.inference_seconds
            result = explainer.attribute(image, target=target, **kwargs)
            maps[method] = (result[target], result.evaluations, result.seconds, model.inference_seconds - before)
        for method, (attribution, evaluations, seconds, inference) in maps.items():
            auc = deletion_auc(model, image, attribution, target)
            rows.append({"image": name, "method": method, "evaluations": evaluations, "seconds": round(seconds, 2),
                         "inference_seconds": round(inference, 2), "deletion_auc": auc})
            print(f"{name:<28} {method:<10} {evaluations:>6} {seconds:>6.1f} {inference:>7.1f}  {auc:.4f}", flush=True)
    summary = {m: float(np.mean([r["deletion_auc"] for r in rows if r["method"] == m]))
               for m in ("pmi", "ig", "occlusion", "rise")}
    print("mean deletion AUC (lower is better): " + ", ".join(f"{m} {v:.4f}" for m, v in summary.items()))
    return {"deletion": rows, "mean_deletion_auc": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["reference", "quality", "deletion"])
    parser.add_argument("--model", choices=["demo", "efficientnet"], default="demo")
    parser.add_argument("--count", type=int, default=3, help="images (reference, quality)")
    parser.add_argument("--stride", type=int, default=1, help="reference grid stride")
    parser.add_argument("--samples", type=int, default=8, help="reference samples per patch")
    parser.add_argument("--budgets", default="0.025,0.05,0.1,0.2", help="budgets as fractions of the reference's evaluations")
    parser.add_argument("--budget-samples", type=int, default=1)
    parser.add_argument("--images", type=int, default=10, help="composites (deletion)")
    parser.add_argument("--budget", type=int, default=1000, help="IG/PMI evaluations and RISE masks (deletion)")
    parser.add_argument("--patch", type=int, default=16, help="IG/PMI patch side (deletion)")
    args = parser.parse_args()
    start = time.perf_counter()
    result = {"run_reference": run_reference, "quality": run_quality, "deletion": run_deletion}[
        "run_reference" if args.command == "reference" else args.command](args)
    result.update(args=vars(args), wall_seconds=round(time.perf_counter() - start, 1),
                  peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    print(f"wall {result['wall_seconds']} s, peak RSS {result['peak_rss_mib']} MiB")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"information_{args.command}_{args.model if args.command != 'deletion' else 'efficientnet'}.json"
    out.write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
