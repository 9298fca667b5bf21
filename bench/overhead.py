"""Engine overhead and core-kernel throughput benchmark.

    python bench/overhead.py [--model PATH] [--quick] [--json OUT] [--reps N] [--update-reference]

1. Engine overhead: wall time of Occlusion / RISE `attribute` vs. pure `session.run` over the
   IDENTICAL preprocessed batches (same session, same batch boundaries, clean image included),
   interleaved rep by rep; overhead = engine wall - pure inference (medians). Target <= 2 %.
2. Perturbation kernel bandwidth (`PreparedInput.blend`, NCHW, gain/bias, B=64 at 224x224) vs. a plain
   `np.copyto` of the output-sized buffer. Target >= 50 % of the copy's GB/s.
3. Per-batch times of `_core.accumulate`, `_core.rise_masks`, `_core.occlusion_masks`.

Writes a table to stdout and JSON (default bench/results/overhead.json); `--update-reference`
also writes bench/overhead_reference.json (the committed reference of a full run).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DEFAULT_MODEL = Path(__file__).resolve().parents[1].parent / "shared/models/efficientnet_lite0.onnx"
DEFAULT_JSON = BENCH / "results" / "overhead.json"
REFERENCE_JSON = BENCH / "overhead_reference.json"
PRESET = "efficientnet-lite"

FULL = {"occlusion": {"window": 32, "stride": 16}, "rise": {"n_masks": 256}, "reps": 3, "kernel_reps": 10}
QUICK = {"occlusion": {"window": 56, "stride": 56}, "rise": {"n_masks": 64}, "reps": 3, "kernel_reps": 3}
KERNEL_BATCH, KERNEL_HW = 64, (224, 224)


# ---------------------------------------------------------------------------------------------
def load_test_image(size):
    import onnxplain as ox

    try:
        from skimage import data

        arr, source = data.chelsea(), "skimage.data.chelsea"
    except Exception:  # scikit-image missing (or its data): a seeded random image
        arr, source = np.random.default_rng(0).integers(0, 256, (300, 451, 3), dtype=np.uint8), "random(seed=0)"
    return ox.load_image(arr, size), source


class Recorder:
    """Wraps model._fn during one (untimed) engine run and keeps a copy of every batch it sees."""

    def __init__(self, model):
        self.model, self.inner, self.batches = model, model._fn, []

    def __call__(self, batch):
        self.batches.append(np.array(batch, dtype=np.float32, order="C", copy=True))
        return self.inner(batch)

    def __enter__(self):
        self.model._fn = self
        return self

    def __exit__(self, *exc):
        self.model._fn = self.inner


def rebuild_batches(model, image, method, params):
    """Independent rebuild of the engine's batches from _core masks + PreparedInput.blend (clean image first)."""
    from onnxplain import _core

    h, w = model.input_size
    clean = np.empty((1,) + model.input_shape, np.float32)
    model.preprocessor.apply(image[None], clean)
    batches = [clean]
    prepared = model.prepare(image, "mean")
    if method == "occlusion":
        win, stride = params["window"], params["stride"]
        total = len(_core.window_positions(h, win, stride)) * len(_core.window_positions(w, win, stride))
        make = lambda first, count: _core.occlusion_masks(h, w, win, stride, first, count, model.threads)  # noqa: E731
    else:
        total = params["n_masks"]
        make = lambda first, count: _core.rise_masks(0, first, count, h, w, 7, 0.5, model.threads)  # noqa: E731
    for first in range(0, total, model.batch_size):
        count = min(model.batch_size, total - first)
        out = np.empty((count,) + model.input_shape, np.float32)
        prepared.blend(make(first, count), out)
        batches.append(out)
    return batches, total


def pure_inference(model, batches) -> float:
    """Wall time of session.run alone over pre-built batches (same session, same feeds)."""
    run, names, feed_name = model.session.run, [model.output_name], model.input_name
    t0 = time.perf_counter()
    for b in batches:
        run(names, {feed_name: b})
    return time.perf_counter() - t0


def bench_engine(model, image, cfg, reps):
    import onnxplain as ox

    methods = {
        "occlusion": (lambda: ox.Occlusion(model).attribute(image, **cfg["occlusion"]), cfg["occlusion"]),
        "rise": (lambda: ox.RISE(model).attribute(image, **cfg["rise"]), cfg["rise"]),
    }
    prepared = {}
    for name, (call, params) in methods.items():
        call()  # untimed: tunes batch_size="auto" on the first run
        with Recorder(model) as rec:  # untimed warm-up run that records the exact batches
            call()
        rebuilt, total = rebuild_batches(model, image, name, params)
        identical = len(rebuilt) == len(rec.batches) and all(
            a.shape == b.shape and np.array_equal(a, b) for a, b in zip(rec.batches, rebuilt))
        pure_inference(model, rec.batches)  # warm-up of the pure path too
        prepared[name] = {"call": call, "batches": rec.batches, "params": params, "total": total,
                          "identical_to_rebuild": identical, "engine": [], "pure": [], "inference_delta": [],
                          "evaluations": None}

    for _ in range(reps):  # interleaved: engine, pure, engine, pure, ...
        for name, p in prepared.items():
            inf0 = model.inference_seconds
            t0 = time.perf_counter()
            result = p["call"]()
            wall = time.perf_counter() - t0
            p["engine"].append(wall)
            p["inference_delta"].append(model.inference_seconds - inf0)
            p["evaluations"] = result.evaluations
            p["pure"].append(pure_inference(model, p["batches"]))

    for name, p in prepared.items():  # one extra, instrumented run: where the non-inference time goes
        p["breakdown"] = instrumented_run(model, p["call"])

    out = {}
    for name, p in prepared.items():
        engine, pure = statistics.median(p["engine"]), statistics.median(p["pure"])
        inf = statistics.median(p["inference_delta"])
        paired = statistics.median(e - q for e, q in zip(p["engine"], p["pure"]))
        in_run = statistics.median(e - i for e, i in zip(p["engine"], p["inference_delta"]))
        out[name] = {
            "params": p["params"], "perturbations": p["total"], "evaluations": p["evaluations"],
            "session_runs": len(p["batches"]), "batch_size": model.batch_size,
            "batches_identical_to_rebuild": p["identical_to_rebuild"],
            "engine_wall_s": p["engine"], "pure_inference_s": p["pure"], "inference_seconds_delta_s": p["inference_delta"],
            "engine_wall_median_s": engine, "pure_inference_median_s": pure,
            "overhead_s": engine - pure, "overhead_pct": 100.0 * (engine - pure) / engine,
            "overhead_paired_median_s": paired, "overhead_paired_pct": 100.0 * paired / engine,
            "inference_seconds_delta_median_s": inf,
            "overhead_vs_inference_seconds_s": in_run, "overhead_vs_inference_seconds_pct": 100.0 * in_run / engine,
            "target_pct": 2.0, "meets_target": (engine - pure) / engine <= 0.02,
            "breakdown_one_run_s": p["breakdown"],
        }
    return out


def instrumented_run(model, call) -> dict:
    """Times every _core call and the model's inference during one engine run (wrappers add ~us)."""
    from onnxplain import _core

    owners = {"PreparedInput.blend": (_core.PreparedInput, "blend"), "rise_masks": (_core, "rise_masks"),
              "occlusion_masks": (_core, "occlusion_masks"), "accumulate": (_core, "accumulate")}
    names = tuple(owners)
    spent = {n: 0.0 for n in names}
    originals = {n: getattr(*owners[n]) for n in names}

    def timed(n):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return originals[n](*a, **k)
            finally:
                spent[n] += time.perf_counter() - t0
        return wrapper

    inf0 = model.inference_seconds
    try:
        for n in names:
            setattr(*owners[n], timed(n))
        t0 = time.perf_counter()
        call()
        wall = time.perf_counter() - t0
    finally:
        for n, f in originals.items():
            setattr(*owners[n], f)
    inference = model.inference_seconds - inf0
    known = sum(spent.values())
    return {"wall": wall, "inference": inference, **{f"_core.{n}": v for n, v in spent.items() if v},
            "other_python": wall - inference - known}


# ---------------------------------------------------------------------------------------------
def best_of(fn, reps: int) -> float:
    fn()  # warm-up (page faults, thread start)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_kernels(model, image, reps):
    from onnxplain import _core

    b, (h, w) = KERNEL_BATCH, KERNEL_HW
    if (h, w) != tuple(model.input_size):
        image = np.ascontiguousarray(np.random.default_rng(1).uniform(0, 255, (h, w, 3)), np.float32)
    pp = model.preprocess
    baseline = np.ascontiguousarray(np.broadcast_to(pp.neutral, image.shape), np.float32) if (h, w) != tuple(
        model.input_size) else model.masker.replacement(image, "mean")
    masks = _core.rise_masks(0, 0, b, h, w, 7, 0.5, 0)
    out = np.empty((b, 3, h, w), np.float32)
    out.fill(0)  # touch pages once
    src = np.random.default_rng(2).random(out.shape, dtype=np.float32)
    dst = np.empty_like(src)
    dst.fill(0)

    perturb_bytes = masks.nbytes + out.nbytes + image.nbytes + baseline.nbytes
    copy_bytes = 2 * src.nbytes
    res = {"batch": b, "height": h, "width": w, "layout": "NCHW", "reps": reps,
           "perturb_bytes": perturb_bytes, "copy_bytes": copy_bytes, "default_threads": os.cpu_count()}
    t_copy = best_of(lambda: np.copyto(dst, src), reps)
    res["memcpy"] = {"seconds": t_copy, "gb_s": copy_bytes / t_copy / 1e9}
    prepared = {threads: _core.Preprocessor((h, w, 3), pp.gain, pp.bias, pp.source_channels, True, threads).prepare(
        image, baseline) for threads in (0, 1)}
    for threads in (0, 1):
        t = best_of(lambda: prepared[threads].blend(masks, out), reps)
        gbs = perturb_bytes / t / 1e9
        res[f"perturb_threads{threads}"] = {"seconds": t, "gb_s": gbs, "ratio_to_memcpy": gbs / res["memcpy"]["gb_s"],
                                            "meets_target": gbs / res["memcpy"]["gb_s"] >= 0.5}
    # evaluate_masks allocates its output buffer per attribute() call: first touch pays page faults
    cold = []
    for _ in range(reps):
        fresh = np.empty_like(out)
        t0 = time.perf_counter()
        prepared[0].blend(masks, fresh)
        cold.append(time.perf_counter() - t0)
        del fresh
    res["perturb_cold_buffer_threads0"] = {"seconds_median": statistics.median(cold), "seconds_all": cold}
    # the minimum possible traffic cost of perturb at memcpy speed, for reference
    res["perturb_at_memcpy_speed_s"] = perturb_bytes / (res["memcpy"]["gb_s"] * 1e9)

    table = {}
    for threads in (0, 1):
        for targets in (1, 5):
            scores = np.random.default_rng(3).random((b, targets), dtype=np.float32)
            sums, counts = np.zeros((targets, h, w)), np.zeros((h, w))
            table[f"accumulate T={targets} threads={threads}"] = best_of(
                lambda: _core.accumulate(scores, masks, sums, counts, False, threads), reps)
        table[f"rise_masks grid=7 threads={threads}"] = best_of(
            lambda: _core.rise_masks(0, 0, b, h, w, 7, 0.5, threads), reps)
        table[f"occlusion_masks w=32 s=16 threads={threads}"] = best_of(
            lambda: _core.occlusion_masks(h, w, 32, 16, 0, b, threads), reps)
        table[f"perturb NCHW threads={threads}"] = res[f"perturb_threads{threads}"]["seconds"]
    table["perturb NCHW threads=0, fresh out (median)"] = res["perturb_cold_buffer_threads0"]["seconds_median"]
    res["per_batch_seconds"] = table
    return res


# ---------------------------------------------------------------------------------------------
def print_report(meta, engine, kern) -> None:
    line = "-" * 98
    print(f"onnxplain overhead benchmark  {meta['date']}  ({'quick' if meta['quick'] else 'full'} run)")
    print(f"model {meta['model']}  ({meta['preset']}, batch {meta['batch_size']})")
    print(f"machine: {meta['cpu_count']} CPUs, {meta['platform']}; onnxruntime {meta['onnxruntime']}, "
          f"numpy {meta['numpy']}; image {meta['image']}")
    print()
    print("1. Engine overhead (median of %d interleaved reps; overhead = engine wall - pure session.run)" % meta["reps"])
    print(line)
    print(f"{'method':<10}{'params':<22}{'evals':>6}{'runs':>5}{'engine s':>10}{'pure s':>9}{'overhead s':>11}"
          f"{'% wall':>8}{'paired %':>9}{'inf.s %':>8}{'<=2%':>6}{'same':>5}")
    for name, r in engine.items():
        params = ",".join(f"{k}={v}" for k, v in r["params"].items())
        print(f"{name:<10}{params:<22}{r['evaluations']:>6}{r['session_runs']:>5}{r['engine_wall_median_s']:>10.3f}"
              f"{r['pure_inference_median_s']:>9.3f}{r['overhead_s']:>11.4f}{r['overhead_pct']:>7.2f}%"
              f"{r['overhead_paired_pct']:>8.2f}%{r['overhead_vs_inference_seconds_pct']:>7.2f}%"
              f"{'yes' if r['meets_target'] else 'NO':>6}{'yes' if r['batches_identical_to_rebuild'] else 'NO':>5}")
    print("  paired % = median over reps of (engine_i - pure_i); inf.s % = engine - model.inference_seconds delta;")
    print("  same = recorded engine batches are bit-identical to an independent _core rebuild.")
    for name, r in engine.items():
        print(f"  {name}: engine {', '.join(f'{x:.3f}' for x in r['engine_wall_s'])} | pure "
              f"{', '.join(f'{x:.3f}' for x in r['pure_inference_s'])} | inference_seconds "
              f"{', '.join(f'{x:.3f}' for x in r['inference_seconds_delta_s'])}")
    for name, r in engine.items():
        bd = r["breakdown_one_run_s"]
        parts = ", ".join(f"{k} {v * 1e3:.0f} ms ({100 * v / bd['wall']:.1f}%)" for k, v in bd.items()
                          if k not in ("wall", "inference"))
        print(f"  {name} instrumented run: wall {bd['wall']:.3f} s, inference {bd['inference']:.3f} s; {parts}")
    print()
    print(f"2. Perturbation bandwidth: B={kern['batch']} x 3 x {kern['height']} x {kern['width']} NCHW, "
          f"best of {kern['reps']}")
    print(line)
    print(f"{'kernel':<28}{'MB moved':>10}{'ms':>10}{'GB/s':>9}{'% of copy':>11}{'>=50%':>7}")
    mc = kern["memcpy"]
    print(f"{'np.copyto (1 thread)':<28}{kern['copy_bytes'] / 1e6:>10.1f}{mc['seconds'] * 1e3:>10.2f}"
          f"{mc['gb_s']:>9.2f}{100.0:>10.1f}%{'':>7}")
    for threads in (0, 1):
        p = kern[f"perturb_threads{threads}"]
        label = f"PreparedInput.blend thr={threads}"
        print(f"{label:<28}{kern['perturb_bytes'] / 1e6:>10.1f}{p['seconds'] * 1e3:>10.2f}{p['gb_s']:>9.2f}"
              f"{100 * p['ratio_to_memcpy']:>10.1f}%{'yes' if p['meets_target'] else 'NO':>7}")
    print()
    print(f"3. Core kernels, per batch of {kern['batch']} at {kern['height']} x {kern['width']} (best of {kern['reps']})")
    print(line)
    print(f"{'kernel':<40}{'ms':>10}{'us / image':>12}")
    for name, t in kern["per_batch_seconds"].items():
        print(f"{name:<40}{t * 1e3:>10.2f}{t * 1e6 / kern['batch']:>12.1f}")
    print()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"ONNX model (default {DEFAULT_MODEL})")
    ap.add_argument("--preset", default=PRESET)
    ap.add_argument("--quick", action="store_true", help="small sizes, < 1 minute smoke run")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    ap.add_argument("--reps", type=int, default=None, help="interleaved engine/pure repetitions (default 3)")
    ap.add_argument("--update-reference", action="store_true", help=f"also write {REFERENCE_JSON}")
    args = ap.parse_args(argv)

    if not args.model.is_file():
        print(f"overhead.py: model not found: {args.model}\n  pass --model PATH to an ONNX image classifier "
              f"(default expects {DEFAULT_MODEL})", file=sys.stderr)
        return 2
    import onnxruntime as ort

    import onnxplain as ox

    cfg = dict(QUICK if args.quick else FULL)
    reps = args.reps or cfg["reps"]
    started = time.perf_counter()
    model = ox.Model(str(args.model), preset=args.preset, progress=False)  # no tqdm bar in the timings
    image, image_source = load_test_image(model.input_size)

    engine = bench_engine(model, image, cfg, reps)
    kern = bench_kernels(model, image, cfg["kernel_reps"])

    so = model.session.get_session_options()
    meta = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": args.quick, "reps": reps, "model": str(args.model), "preset": args.preset,
        "batch_size": model.batch_size, "input_size": list(model.input_size), "layout": model.layout,
        "image": image_source, "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "processor": platform.processor(), "python": platform.python_version(),
        "onnxruntime": ort.__version__, "numpy": np.__version__, "onnxplain": ox.__version__,
        "providers": model.session.get_providers(), "ort_intra_op_threads": so.intra_op_num_threads,
        "core_threads": model.threads,
    }
    print_report(meta, engine, kern)
    meta["total_seconds"] = time.perf_counter() - started
    print(f"total benchmark time {meta['total_seconds']:.1f} s")
    results = {"meta": meta, "engine_overhead": engine, "kernels": kern}
    targets = [args.json] + ([REFERENCE_JSON] if args.update_reference else [])
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
