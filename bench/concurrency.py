"""Many explanations at once on one model: shared batching against each thread on its own.

    python bench/concurrency.py [--model PATH] [--threads 1,2,4,8] [--reps 3] [--quick] [--json OUT]

On EfficientNet-Lite0, N threads (1, 2, 4, 8) each explain one image at once (alternately RISE
with 500 masks and occlusion with window 32, stride 16: 169 windows) on one shared `Model`, with
shared batching on (the default: one scheduler fills every model call from all waiting batches)
and off (every thread calls the session itself). The batch size is the one "auto" chooses on a
warm-up run, then fixed for both. Per rep, interleaved: pure inference (session.run on full
batches of that size, the same number of images), then on, then off. Reported per N and setting:
throughput (evaluations / wall) over pure inference's (target >= 0.9 at 4 and 8 threads with
shared batching), the share of model batches filled from several requests, and each request's
latency (median and max over requests and reps). Writes a table and JSON (default
bench/results/concurrency.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from limit import DEFAULT_MODEL, PRESET, test_image  # noqa: E402

DEFAULT_JSON = BENCH / "results" / "concurrency.json"
IMAGES = ("chelsea", "coffee", "astronaut", "rocket")


def request(model, image, index: int, n_masks: int):
    """One explanation, timed: (evaluations, latency in seconds)."""
    import onnxplain as ox

    start = time.perf_counter()
    if index % 2 == 0:
        result = ox.RISE(model).attribute(image, n_masks=n_masks, seed=index)
    else:
        result = ox.Occlusion(model).attribute(image, window=32, stride=16)
    return result.evaluations, time.perf_counter() - start


def concurrent(model, images, threads: int, n_masks: int) -> dict:
    """`threads` explanations at once: wall, evaluations, latencies, shared-batch share."""
    scheduler = model.scheduler
    before = (scheduler.batches, scheduler.shared) if scheduler else (0, 0)
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(lambda i: request(model, images[i % len(images)], i, n_masks), range(threads)))
    wall = time.perf_counter() - start
    record = {"wall": wall, "evaluations": sum(e for e, _ in done), "latencies": [t for _, t in done]}
    if scheduler:
        batches, shared = scheduler.batches - before[0], scheduler.shared - before[1]
        record["shared_batches"] = shared / max(batches, 1)
    return record


def pure(model, images, evaluations: int) -> float:
    """images/s of session.run alone on full batches of the model's batch size."""
    size = model.batch_size
    batch = np.empty((size,) + model.input_shape, np.float32)
    model.preprocessor.apply(np.stack([images[i % len(images)] for i in range(size)]), batch)
    run, names, feed = model.session.run, [model.output_name], model.input_name
    calls = max(1, -(-evaluations // size))
    start = time.perf_counter()
    for _ in range(calls):
        run(names, {feed: batch})
    return calls * size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--threads", default="1,2,4,8")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="RISE 100 masks, threads 1,4, one rep")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(f"model {args.model} not found (pass --model)", file=sys.stderr)
        return 2
    import onnxplain as ox

    threads = [1, 4] if args.quick else [int(t) for t in args.threads.split(",")]
    reps, n_masks = (1, 100) if args.quick else (args.reps, 500)
    tuner = ox.Model(args.model, preset=PRESET, progress=False)
    images = [test_image(name, tuner.input_size) for name in IMAGES]
    request(tuner, images[0], 0, n_masks)  # tunes batch_size="auto"
    size = tuner.batch_size
    models = {setting: ox.Model(args.model, preset=PRESET, batch_size=size, progress=False,
                                shared_batching=setting == "shared") for setting in ("shared", "own")}
    for model in models.values():
        concurrent(model, images, 2, n_masks)  # warm every shape
    runs = {(n, s): [] for n in threads for s in ("pure", *models)}
    for rep in range(reps):
        for n in threads:
            timed = {s: concurrent(m, images, n, n_masks) for s, m in models.items()}
            runs[(n, "pure")].append(pure(models["shared"], images, timed["shared"]["evaluations"]))
            for s, record in timed.items():
                runs[(n, s)].append(record)
            print(f"rep {rep + 1}/{reps}, {n} threads done", file=sys.stderr, flush=True)
    rows = []
    for n in threads:
        pure_rate = statistics.median(runs[(n, "pure")])
        for s in models:
            records = runs[(n, s)]
            ratios = [r["evaluations"] / r["wall"] / p for r, p in zip(records, runs[(n, "pure")])]
            latencies = [t for r in records for t in r["latencies"]]
            rows.append({"threads": n, "batching": s, "throughput_over_pure": round(statistics.median(ratios), 3),
                         "ratios": [round(r, 3) for r in ratios], "images_per_second": round(
                             statistics.median(r["evaluations"] / r["wall"] for r in records), 1),
                         "pure_images_per_second": round(pure_rate, 1),
                         "latency_median": round(statistics.median(latencies), 2),
                         "latency_max": round(max(latencies), 2),
                         "shared_batches": round(statistics.median(r["shared_batches"] for r in records), 3)
                         if s == "shared" else None})
    print(f"\nbatch size {size} (auto), {os.cpu_count()} cores; RISE {n_masks} masks / occlusion 169 windows "
          "alternating; median over reps")
    print(f"{'threads':>7} {'batching':>8} {'img/s':>7} {'pure':>7} {'x pure':>7} {'latency p50':>11} "
          f"{'max':>6} {'shared batches':>14}")
    for r in rows:
        shared = "" if r["shared_batches"] is None else f"{r['shared_batches']:.0%}"
        print(f"{r['threads']:>7} {r['batching']:>8} {r['images_per_second']:>7} {r['pure_images_per_second']:>7} "
              f"{r['throughput_over_pure']:>7.3f} {r['latency_median']:>10.2f}s {r['latency_max']:>5.1f}s {shared:>14}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"batch_size": size, "n_masks": n_masks, "reps": reps, "cores": os.cpu_count(),
                                     "rows": rows}, indent=1))
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
