"""The IG/PMI paper's claim put to the test, sampler by sampler (issue 22), on EfficientNet-Lite0.

    python bench/sampler.py canvas  [--samplers gaussian,learned] [--photos 4] [--budget 3000] [--canvases ...]
    python bench/sampler.py claim   [--samplers gaussian,learned] [--budget 3000]
    python bench/sampler.py dense   [--samplers gaussian,learned] [--count 3]
    python bench/sampler.py report  # markdown tables from the JSON results of the others

canvas: a held-out photo shrunk to a quarter of the image (112 x 112) in each quadrant of four
  224 x 224 canvases (flat grey 127; per-pixel noise 127 + 12 N(0, 1) per pixel and channel;
  scikit-image's `brick`; `gravel`): the share of the top-1 PMI map's positive mass on the photo
  (median over photos x quadrants, per canvas). On each empty canvas: the largest share of the
  positive mass in one quadrant (a map without evidence spreads it: 0.25 each), for each of
  --empty-seeds seeds (one map is noisy: the worst seed is what the target is checked against),
  and of the mean of those maps (one map at seeds x budget: where the estimate converges to),
  beside what the model itself says of each quadrant of the empty canvas: how much p(top-1) drops
  when the quadrant is blurred, and occlusion's share (`empty_canvas_evidence`).
Samplers: any name of onnxplain's, and "learned-independent" (the learned sampler drawing a pixel's
channels independently: the ablation of its channel coupling).
claim: Deletion AUC (pixels to grey, most important first, 5 % steps, area under p(top-1); lower
  is better) and MIF/LIF fidelity (LIF AUC - MIF AUC, 16 x 16 squares; higher is better) of PMI
  (top-1) and IG with each sampler, occlusion (window 32, stride 16: 169 evaluations; with
  --occlusion-stride 4, 2,401) and RISE (--budget masks) at --budget evaluations, on the held-out photos (square crops) and
  composites of them (photo at 0.55 scale in a corner of a grey canvas). Means with 95 %
  intervals over source photos, paired differences against the best method, and each method's
  wall time (sampler inference included; IG and PMI share one run per sampler, so one time).
dense: K = 8, N = 8, stride 2 top-1 PMI maps (11,881 patches, 95,048 evaluations each) on --count
  composites after the first --skip with each sampler, with their Deletion AUC and MIF/LIF fidelity.
  The Gaussian maps are the committed references of `bench/information.py reference` when today's
  sampler reproduces them (checked at their corners), else recomputed.
Held-out photos: chelsea, coffee, astronaut, rocket, stereo_motorcycle (none is in the learned
sampler's training set; tools/train_patch_sampler.py). Results: a table on stdout and JSON under
bench/results/sampler_<command>[_<tag>].json (gitignored); `report` prints the markdown tables of
all of them and updates bench/sampler_summary.json (committed; a section that no result file here
recomputes is kept as it was).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import onnxplain as ox
from onnxplain import fidelity

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REFERENCE = HERE / "information_reference"
SUMMARY = HERE / "sampler_summary.json"
sys.path.insert(0, str(HERE.parent / "tests"))
from helpers import EFFICIENTNET, photo_on_canvas  # noqa: E402
from information import deletion_auc  # noqa: E402  (bench/information.py: pixels to grey, 5 % steps)

HELD_OUT = ("chelsea", "coffee", "astronaut", "rocket", "stereo_motorcycle")
QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")
CANVASES = ("grey", "noise", "brick", "gravel")
DEFAULT_CANDIDATES = ("gaussian", "learned")  # the samplers sampler="auto" chooses between
SIZE = 224
BLUR_SIGMA = 3.0  # px: empty_canvas_evidence
# (y0, x0, y1, x1) of each quadrant, in QUADRANTS' order
QUADRANT_BOXES = [(y, x, y + SIZE // 2, x + SIZE // 2) for y in (0, SIZE // 2) for x in (0, SIZE // 2)]


def photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    return (image[0] if isinstance(image, tuple) else image)[..., :3]


def canvas(kind: str) -> np.ndarray:
    """A 224 x 224 x 3 float32 background, 0..255."""
    if kind == "grey":
        return np.full((SIZE, SIZE, 3), 127.0, np.float32)
    if kind == "noise":
        noise = np.random.default_rng(0).standard_normal((SIZE, SIZE, 3))
        return np.clip(127.0 + 12.0 * noise, 0, 255).astype(np.float32)
    import skimage.data

    texture = cv2.resize(getattr(skimage.data, kind)().astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return np.repeat(texture[..., None], 3, axis=2)


def on_canvas(background: np.ndarray, picture: np.ndarray, corner: str, scale: float = 0.5):
    """The picture (a square crop) resized to scale * 224 in one corner of the background; (image, box)."""
    _, box = photo_on_canvas(picture, size=SIZE, corner=corner, scale=scale)
    y0, x0, y1, x1 = box
    image = background.copy()
    image[y0:y1, x0:x1] = cv2.resize(square(picture).astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return np.clip(image, 0, 255), box


def square(picture: np.ndarray) -> np.ndarray:
    h, w = picture.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return picture[y0:y0 + side, x0:x0 + side]


def positive_share(attribution: np.ndarray, box) -> float:
    positive = np.clip(attribution, 0, None)
    total = float(positive.sum())
    y0, x0, y1, x1 = box
    return float(positive[y0:y1, x0:x1].sum()) / total if total > 0 else float("nan")


def sampler_of(name: str):
    """onnxplain's sampler argument for a bench sampler name."""
    return ox.LearnedSampler(couple_channels=False) if name == "learned-independent" else name


def pmi_top1(model, image, sampler: str, budget: int, seed: int = 0):
    target = int(np.argmax(model.predict(image)))
    result = ox.PMI(model).attribute(image, target=target, sampler=sampler_of(sampler), budget=budget, seed=seed)
    return result[target], result


def empty_canvas_evidence(model, background: np.ndarray) -> dict:
    """What the model itself says about an empty canvas's quadrants, to read PMI's spread against:
    p(top-1) with each quadrant blurred (Gaussian, sigma BLUR_SIGMA px: the texture's detail gone,
    its tone kept), the share of the total drop per quadrant, and occlusion's (window 32, stride 16,
    grey) positive-mass share per quadrant."""
    p0 = model.predict(background)
    target = int(np.argmax(p0))
    blurred = cv2.GaussianBlur(background, (0, 0), BLUR_SIGMA)
    perturbed = []
    for y0, x0, y1, x1 in QUADRANT_BOXES:
        image = background.copy()
        image[y0:y1, x0:x1] = blurred[y0:y1, x0:x1]
        perturbed.append(image)
    p_blurred = model.predict(np.stack(perturbed))[:, target]
    drops = np.clip(p0[target] - p_blurred, 0, None)
    total = drops.sum()
    occlusion = ox.Occlusion(model).attribute(background, target=target, window=32, stride=16)[target]
    return {"target": target, "p_top1": float(p0[target]), "blur_sigma": BLUR_SIGMA,
            "p_top1_quadrant_blurred": [float(p) for p in p_blurred],
            "blur_drop_share": [float(d / total) if total > 0 else float("nan") for d in drops],
            "occlusion_share": [positive_share(occlusion, q) for q in QUADRANT_BOXES]}


def run_canvas(args) -> dict:
    model = ox.Model(EFFICIENTNET, preset="efficientnet-lite", progress=False, threads=args.threads)
    rows, empty, empty_mean, checks = [], [], [], {}
    for kind in args.canvases:
        checks[kind] = empty_canvas_evidence(model, canvas(kind))
        print(f"empty {kind}: top-1 {checks[kind]['target']} (p {checks[kind]['p_top1']:.3f}); share of p's drop "
              f"when a quadrant is blurred {np.round(checks[kind]['blur_drop_share'], 2).tolist()}; occlusion's "
              f"positive share {np.round(checks[kind]['occlusion_share'], 2).tolist()} ({', '.join(QUADRANTS)})")
    print(f"{'sampler':<9} {'canvas':<7} {'photo':<18} {'quadrant':<13} {'share':>6} {'s':>6}")
    for sampler in args.samplers:
        for kind in args.canvases:
            background = canvas(kind)
            seed_sum = np.zeros((SIZE, SIZE))
            for seed in range(args.empty_seeds):
                attribution, result = pmi_top1(model, background, sampler, args.budget, seed=seed)
                seed_sum += attribution
                shares = [positive_share(attribution, q) for q in QUADRANT_BOXES]
                empty.append({"sampler": sampler, "canvas": kind, "seed": seed, "quadrant_shares": shares,
                              "max_share": max(shares), "positive_mass": float(np.clip(attribution, 0, None).sum())})
                print(f"{sampler:<9} {kind:<7} {f'(empty, seed {seed})':<18} {'max quadrant':<13} {max(shares):>6.3f} "
                      f"{result.seconds:>6.1f}", flush=True)
            # the mean of the seeds' maps: one map at empty_seeds x budget, its sampling noise averaged down
            shares = [positive_share(seed_sum, q) for q in QUADRANT_BOXES]
            empty_mean.append({"sampler": sampler, "canvas": kind, "seeds": args.empty_seeds, "quadrant_shares": shares,
                               "max_share": max(shares)})
            print(f"{sampler:<9} {kind:<7} {'(empty, mean map)':<18} {'quadrants':<13} "
                  f"{' '.join(f'{v:.3f}' for v in shares)}", flush=True)
            for name in HELD_OUT[:args.photos]:
                for corner in QUADRANTS:
                    image, box = on_canvas(background, photo(name), corner)
                    attribution, result = pmi_top1(model, image, sampler, args.budget)
                    share = positive_share(attribution, box)
                    rows.append({"sampler": sampler, "canvas": kind, "photo": name, "quadrant": corner,
                                 "share": share, "positive_mass": float(np.clip(attribution, 0, None).sum()),
                                 "seconds": result.seconds, "evaluations": result.evaluations})
                    print(f"{sampler:<9} {kind:<7} {name:<18} {corner:<13} {share:>6.3f} {result.seconds:>6.1f}", flush=True)
    summary = {}
    print(f"\n{'sampler':<9} " + " ".join(f"{k:>8}" for k in args.canvases)
          + "   (median share on the photo; empty: max quadrant, worst seed)")
    for sampler in args.samplers:
        shares = {k: [r["share"] for r in rows if r["sampler"] == sampler and r["canvas"] == k] for k in args.canvases}
        medians = {k: float(np.median(v)) if v else float("nan") for k, v in shares.items()}
        worst = {k: max(e["max_share"] for e in empty if e["sampler"] == sampler and e["canvas"] == k)
                 for k in args.canvases}
        summary[sampler] = {"median_share": medians, "empty_max_quadrant": worst}
        print(f"{sampler:<9} " + " ".join(f"{medians[k]:>8.3f}" for k in args.canvases))
        print(f"{'  empty':<9} " + " ".join(f"{worst[k]:>8.3f}" for k in args.canvases))
    return {"rows": rows, "empty": empty, "empty_mean_map": empty_mean, "empty_evidence": checks, "summary": summary}


def claim_images() -> list[tuple[str, str, np.ndarray]]:
    """(source photo, name, image): each held-out photo's square crop and a composite of it."""
    corners = ("bottom-right", "top-left", "top-right", "bottom-left", "top-left")
    out = []
    for name, corner in zip(HELD_OUT, corners):
        picture = photo(name)
        out.append((name, f"{name}-square", cv2.resize(square(picture), (SIZE, SIZE),
                                                        interpolation=cv2.INTER_AREA).astype(np.float32)))
        composite, _ = photo_on_canvas(picture, corner=corner, scale=0.55)
        out.append((name, f"{name}-{corner}", np.clip(composite, 0, 255)))
    return out


def scores_of(model, image, attribution, target) -> dict:
    curves = fidelity.mif_lif(model, image, attribution, target=target, patch=16)
    return {"deletion_auc": deletion_auc(model, image, attribution, target), "fidelity": curves.fidelity}


def method_maps(model, image, target, args) -> dict:
    """name -> (map, evaluations, seconds) of the methods in args.methods: PMI (target) and IG from
    one run per sampler ("information"), occlusion (window 32, --occlusion-stride), RISE."""
    out = {}
    if "information" in args.methods:
        for sampler in args.samplers:
            start = time.perf_counter()
            ig, pmi = ox.information_maps(model, image, target=[target], sampler=sampler_of(sampler), budget=args.budget,
                                          seed=0)
            seconds = time.perf_counter() - start
            out[f"pmi-{sampler}"] = (pmi[target], pmi.evaluations, seconds)
            out[f"ig-{sampler}"] = (next(iter(ig.maps.values())), ig.evaluations, seconds)
    if "occlusion" in args.methods:
        start = time.perf_counter()
        result = ox.Occlusion(model).attribute(image, target=target, window=32, stride=args.occlusion_stride)
        name = "occlusion" if args.occlusion_stride == 16 else f"occlusion-s{args.occlusion_stride}"
        out[name] = (result[target], result.evaluations, time.perf_counter() - start)
    if "rise" in args.methods:
        start = time.perf_counter()
        result = ox.RISE(model).attribute(image, target=target, n_masks=args.budget, seed=0)
        out["rise"] = (result[target], result.evaluations, time.perf_counter() - start)
    return out


def summarise(rows, methods, key, lower_better: bool) -> dict:
    """Per method: mean over images, 95 % interval over source photos (t), paired difference to the best."""
    sources = sorted({r["source"] for r in rows})

    def per_source(method):
        return np.array([np.mean([r[key] for r in rows if r["method"] == method and r["source"] == s]) for s in sources])

    means = {m: float(np.mean([r[key] for r in rows if r["method"] == m])) for m in methods}
    best = (min if lower_better else max)(means, key=means.get)
    out = {}
    for m in methods:
        _, half = fidelity.interval(per_source(m))
        difference, difference_half = fidelity.paired_difference(per_source(m), per_source(best))
        out[m] = {"mean": means[m], "interval": [means[m] - half, means[m] + half], "vs_best": best,
                  "paired_difference": [difference - difference_half, difference + difference_half]}
    return out


def run_claim(args) -> dict:
    model = ox.Model(EFFICIENTNET, preset="efficientnet-lite", progress=False, threads=args.threads)
    rows = []
    print(f"{'image':<30} {'method':<14} {'evals':>6} {'s':>6} {'deletion':>9} {'fidelity':>9}")
    for source, name, image in claim_images()[:args.images]:
        target = int(np.argmax(model.predict(image)))
        for method, (attribution, evaluations, seconds) in method_maps(model, image, target, args).items():
            scores = scores_of(model, image, attribution, target)
            rows.append({"source": source, "image": name, "method": method, "evaluations": evaluations,
                         "seconds": seconds, **scores})
            print(f"{name:<30} {method:<14} {evaluations:>6} {seconds:>6.1f} {scores['deletion_auc']:>9.4f} "
                  f"{scores['fidelity']:>9.3f}", flush=True)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    deletion = summarise(rows, methods, "deletion_auc", lower_better=True)
    fid = summarise(rows, methods, "fidelity", lower_better=False)
    seconds = {m: float(np.mean([r["seconds"] for r in rows if r["method"] == m])) for m in methods}
    print(f"\n{'method':<14} {'deletion AUC (95 % CI)':<26} {'vs best':<22} {'fidelity (95 % CI)':<26} {'s/map':>6}")
    for m in methods:
        d, f = deletion[m], fid[m]
        print(f"{m:<14} {d['mean']:.4f} [{d['interval'][0]:.4f}, {d['interval'][1]:.4f}]  "
              f"{d['paired_difference'][0]:+.4f}..{d['paired_difference'][1]:+.4f}  "
              f"{f['mean']:+.3f} [{f['interval'][0]:+.3f}, {f['interval'][1]:+.3f}]    {seconds[m]:>6.1f}")
    return {"rows": rows, "deletion_auc": deletion, "fidelity": fid, "seconds_per_map": seconds}


def committed_gaussian(model, name: str, image: np.ndarray, target: int) -> tuple[np.ndarray, int] | None:
    """The committed dense Gaussian top-1 PMI map of a composite (`bench/information.py reference`,
    same K, N, stride and seed) and its evaluations, if today's sampler reproduces it: each corner
    pixel is covered by one patch only, whose score a stride-8 dense run (6,272 evaluations)
    recomputes with the same draws."""
    path = REFERENCE / f"efficientnet_{name}.npz"
    if not path.exists():
        return None
    stored = np.load(path)
    check = ox.PMI(model).attribute(image, target=target, sampler="gaussian", mode="dense", patch=8, samples=8,
                                    stride=8, seed=0)[target]
    corners = [(0, 0), (0, SIZE - 1), (SIZE - 1, 0), (SIZE - 1, SIZE - 1)]
    same = np.allclose([check[c] for c in corners], [stored["pmi"][c] for c in corners], rtol=1e-4, atol=1e-7)
    print(f"{name}: committed dense Gaussian map {'reproduced' if same else 'NOT reproduced'} at its corners")
    return (stored["pmi"], int(stored["evaluations"])) if same else None


def run_dense(args) -> dict:
    model = ox.Model(EFFICIENTNET, preset="efficientnet-lite", progress=False, threads=args.threads)
    rows = []
    print(f"{'image':<30} {'sampler':<9} {'evals':>6} {'s':>7} {'deletion':>9} {'fidelity':>9}")
    composites = [x for x in claim_images() if not x[1].endswith("square")]
    for source, name, image in composites[args.skip:args.skip + args.count]:
        target = int(np.argmax(model.predict(image)))
        for sampler in args.samplers:
            start = time.perf_counter()
            committed = committed_gaussian(model, name, image, target) if sampler == "gaussian" else None
            if committed is not None:
                attribution, evaluations, seconds = *committed, float("nan")
            else:
                result = ox.PMI(model).attribute(image, target=target, sampler=sampler, mode="dense", patch=8,
                                                 samples=8, stride=2, seed=0)
                attribution, evaluations, seconds = result[target], result.evaluations, time.perf_counter() - start
            scores = scores_of(model, image, attribution, target)
            rows.append({"source": source, "image": name, "sampler": sampler, "evaluations": evaluations,
                         "seconds": seconds, "committed": committed is not None, **scores})
            print(f"{name:<30} {sampler:<9} {evaluations:>6} {seconds:>7.1f} {scores['deletion_auc']:>9.4f} "
                  f"{scores['fidelity']:>9.3f}", flush=True)
            RESULTS.mkdir(exist_ok=True)
            np.save(RESULTS / f"dense_map_{name}_{sampler}.npy", attribution)
            (RESULTS / "dense_partial.json").write_text(json.dumps(rows, indent=2, default=float))  # if stopped
    for sampler in args.samplers:
        mine = [r for r in rows if r["sampler"] == sampler]
        print(f"{sampler:<9} mean deletion AUC {np.mean([r['deletion_auc'] for r in mine]):.4f}, "
              f"fidelity {np.mean([r['fidelity'] for r in mine]):+.3f}")
    return {"rows": rows}


def run_report(args) -> dict:
    """Markdown tables from the JSON results of the other commands (any tags), and the default's rule:
    the sampler with the lowest paired mean Deletion AUC of its IG and PMI maps at the claim's budget."""
    loaded = {path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("sampler_*.json"))
              if not path.stem.startswith("sampler_report")}
    canvas_rows = [r for name, v in loaded.items() if name.startswith("sampler_canvas") for r in v["rows"]]
    empty = [e for name, v in loaded.items() if name.startswith("sampler_canvas") for e in v["empty"]]
    claim_rows = [r for name, v in loaded.items() if name.startswith("sampler_claim") and "timing" not in name
                  for r in v["rows"]]
    timing_rows = [r for name, v in loaded.items() if name.startswith("sampler_claim") and "timing" in name
                   for r in v["rows"]]
    dense_rows = [r for name, v in loaded.items() if name.startswith("sampler_dense") for r in v["rows"]]
    evidence = {kind: check for name, v in loaded.items() if name.startswith("sampler_canvas")
                for kind, check in v.get("empty_evidence", {}).items()}
    out: dict = {}
    samplers = list(dict.fromkeys(r["sampler"] for r in canvas_rows))
    if canvas_rows:
        print("| sampler | " + " | ".join(CANVASES) + " |\n|---|" + "---|" * len(CANVASES))
        for sampler in samplers:
            cells = []
            for kind in CANVASES:
                shares = [r["share"] for r in canvas_rows if r["sampler"] == sampler and r["canvas"] == kind]
                worst = [float(np.nan_to_num(e["max_share"])) for e in empty
                         if e["sampler"] == sampler and e["canvas"] == kind]
                cells.append(f"{np.median(shares):.2f} ({len(shares)}; empty {max(worst):.2f}"
                             f"{f' worst of {len(worst)} seeds' if len(worst) > 1 else ''})" if shares and worst else "-")
                out.setdefault("canvas", {}).setdefault(sampler, {})[kind] = {
                    "median_share": float(np.median(shares)) if shares else None, "maps": len(shares),
                    "empty_max_quadrant": max(worst) if worst else None, "empty_max_quadrant_per_seed": worst}
            print(f"| {sampler} | " + " | ".join(cells) + " |")
    if evidence:
        print("\n| empty canvas | top-1 (p) | share of p's drop, quadrant blurred | occlusion's positive share |"
              "\n|---|---|---|---|")
        for kind, check in evidence.items():
            print(f"| {kind} | {check['target']} ({check['p_top1']:.3f}) | "
                  f"{' / '.join(f'{v:.2f}' for v in check['blur_drop_share'])} | "
                  f"{' / '.join(f'{v:.2f}' for v in check['occlusion_share'])} |")
        print(f"(quadrants {', '.join(QUADRANTS)})")
        out["empty_evidence"] = evidence
    if claim_rows:
        images = sorted({r["image"] for r in claim_rows})
        methods = [m for m in dict.fromkeys(r["method"] for r in claim_rows)
                   if all(any(r["image"] == i and r["method"] == m for r in claim_rows) for i in images)]
        rows = [r for r in claim_rows if r["method"] in methods]
        deletion = summarise(rows, methods, "deletion_auc", lower_better=True)
        fid = summarise(rows, methods, "fidelity", lower_better=False)
        print("\n| method | evaluations | s per map | deletion AUC (95 %) | minus best, paired | MIF/LIF fidelity (95 %) |")
        print("|---|---|---|---|---|---|")
        for m in methods:
            mine = [r for r in rows if r["method"] == m]
            d, f = deletion[m], fid[m]
            print(f"| {m} | {np.mean([r['evaluations'] for r in mine]):.0f} | {np.mean([r['seconds'] for r in mine]):.1f} | "
                  f"{d['mean']:.4f} [{d['interval'][0]:.4f}, {d['interval'][1]:.4f}] | "
                  f"{np.mean(d['paired_difference']):+.4f} ± {(d['paired_difference'][1] - d['paired_difference'][0]) / 2:.4f} | "
                  f"{f['mean']:+.3f} [{f['interval'][0]:+.3f}, {f['interval'][1]:+.3f}] |")
        per_sampler = {}
        sources = sorted({r["source"] for r in rows})
        for sampler in DEFAULT_CANDIDATES:
            if f"pmi-{sampler}" in methods:
                per_sampler[sampler] = [np.mean([r["deletion_auc"] for r in rows if r["source"] == source and
                                                 r["method"] in (f"pmi-{sampler}", f"ig-{sampler}")]) for source in sources]
        if len(per_sampler) == 2:
            (a, va), (b, vb) = per_sampler.items()
            difference, half = fidelity.paired_difference(va, vb)
            winner = a if difference < 0 else b
            print(f"\ndefault rule: mean deletion AUC of IG and PMI, {a} - {b} = {difference:+.4f} ± {half:.4f} "
                  f"(95 %, paired over {len(sources)} source photos, {len(images)} images): {winner} is lower")
            out["default_rule"] = {"difference": difference, "half_width": half, "pair": [a, b], "lower": winner}
        out["deletion_auc"], out["fidelity"] = deletion, fid
    if timing_rows:  # a run alone on the machine: the time of IG + PMI per sampler, sampler inference included
        out["seconds_alone"] = {m: float(np.mean([r["seconds"] for r in timing_rows if r["method"] == m]))
                                for m in dict.fromkeys(r["method"] for r in timing_rows) if m.startswith("pmi-")}
        print("\nseconds per IG + PMI run, alone on the machine: " +
              ", ".join(f"{m[4:]} {v:.1f}" for m, v in out["seconds_alone"].items()))
    if dense_rows:
        print("\n| image | sampler | evaluations | deletion AUC | MIF/LIF fidelity |\n|---|---|---|---|---|")
        for r in dense_rows:
            print(f"| {r['image']} | {r['sampler']} | {r['evaluations']} | {r['deletion_auc']:.4f} | {r['fidelity']:+.3f} |")
        out["dense"] = dense_rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["canvas", "claim", "dense", "report"])
    parser.add_argument("--samplers", default="gaussian,learned", type=lambda s: s.split(","))
    parser.add_argument("--photos", type=int, default=4, help="held-out photos per canvas (canvas)")
    parser.add_argument("--canvases", default=",".join(CANVASES), type=lambda s: s.split(","), help="canvas: which")
    parser.add_argument("--empty-seeds", type=int, default=3, help="canvas: seeds of each empty canvas's map")
    parser.add_argument("--budget", type=int, default=3000, help="evaluations per map (canvas, claim)")
    parser.add_argument("--count", type=int, default=3, help="composites (dense)")
    parser.add_argument("--skip", type=int, default=0, help="dense: leave out the first N composites")
    parser.add_argument("--methods", default="information,occlusion,rise", type=lambda s: s.split(","),
                        help="claim: information (IG and PMI per sampler), occlusion, rise")
    parser.add_argument("--images", type=int, default=10, help="claim: the first N of its 10 images")
    parser.add_argument("--occlusion-stride", type=int, default=16, help="claim: occlusion stride (window 32)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime and core threads (0: all cores)")
    parser.add_argument("--tag", default="", help="suffix of the JSON names")
    args = parser.parse_args()
    if args.command != "report" and not EFFICIENTNET.exists():
        sys.exit(f"needs {EFFICIENTNET}")
    start = time.perf_counter()
    result = {"canvas": run_canvas, "claim": run_claim, "dense": run_dense, "report": run_report}[args.command](args)
    result.update(args=vars(args), wall_seconds=round(time.perf_counter() - start, 1))
    print(f"wall {result['wall_seconds']} s")
    RESULTS.mkdir(exist_ok=True)
    name = f"sampler_{args.command}{'_' + args.tag if args.tag else ''}"
    if args.command == "report":
        kept = json.loads(SUMMARY.read_text()) if SUMMARY.exists() else {}  # sections no result here recomputes
        SUMMARY.write_text(json.dumps({**kept, **result}, indent=2, default=float))
        print(f"wrote {SUMMARY}")
    else:
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=float))
        print(f"wrote {RESULTS / (name + '.json')}; `python bench/sampler.py report` summarises every run")


if __name__ == "__main__":
    main()
