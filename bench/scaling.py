"""Dataset runs spread over workers: scaling with 1 and 2 local worker processes, the per-image
task overhead, and the scaling to expect on a cluster, worked out from them.

    python bench/scaling.py [--model PATH] [--images 4] [--masks 200] [--window 56] [--step 2240] [--tasks 30]
                            [--json OUT]

1. Scaling: `ox.evaluate` (occlusion with --window and stride window / 2, RISE with --masks,
   random; MIF/LIF and deletion with --step features per step) over N images in this
   process, then with 1 and with 2 local worker processes (`workers.local_pool`, spawned, one
   model each, onnxruntime threads = cores / workers); wall time (pool start and model builds
   included), images per second, and whether every record equals the sequential run's.
2. Task overhead per image, o: `workers.run_tasks` on 1 worker with a task that does no work but
   carries a real image's payload (its file and its three cached maps) and returns its real result
   (three maps, six records), which the driver writes as `evaluate` does (maps, fsync'ed records):
   wall / tasks. The driver's own share, d (payload read and pickled, result written), is timed
   apart. Against the per-image compute time T (the sequential run's wall / images): o / T,
   target <= 2 %. Then o again on a Dask LocalCluster (one worker process) when Dask is installed.
3. Cluster: W workers finish W / (T + o) images per second until the one driver saturates at
   1 / d, so the speedup over one process is S(W) = min(W * T / (T + o), T / d), with the driver
   saturating at W* = (T + o) / d. Printed for several W.

Default model: ../shared/models/efficientnet_lite0.onnx when present (images: scikit-image photos
at 224 x 224), else the demo model (its planted-pattern images). Writes --json (default
bench/results/scaling.json, gitignored); bench/scaling_reference.json is a committed copy.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import onnxplain as ox
from onnxplain import demo, evaluation, workers

ROOT = Path(__file__).resolve().parents[1]
EFFICIENTNET = ROOT.parent / "shared" / "models" / "efficientnet_lite0.onnx"
METHODS = ["occlusion", "rise", "random"]
METRICS = ["mif-lif", "deletion"]


def write_images(folder: Path, n: int, real: bool) -> None:
    """n images: photos (224 x 224 centre crops) for a real model, else demo images."""
    folder.mkdir(parents=True)
    if real:
        from skimage import data

        photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.immunohistochemistry()]
        for i in range(n):
            photo = photos[i % len(photos)]
            side = min(photo.shape[:2])
            y0, x0 = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
            crop = cv2.resize(photo[y0:y0 + side, x0:x0 + side, :3], (224, 224), interpolation=cv2.INTER_AREA)
            crop = crop[:, ::-1] if i >= len(photos) else crop
            cv2.imwrite(str(folder / f"img{i:02d}.png"), cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2BGR))
    else:
        for i in range(n):
            image, _ = demo.make_demo_image(i % 3, seed=70 + i)
            cv2.imwrite(str(folder / f"img{i:02d}.png"), cv2.cvtColor(image.round().astype(np.uint8), cv2.COLOR_RGB2BGR))


def echo(model: ox.Model, payload: dict) -> dict:
    """A task without work: returns the real result it carries."""
    return payload["result"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=EFFICIENTNET if EFFICIENTNET.is_file() else None)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--masks", type=int, default=200, help="RISE masks")
    parser.add_argument("--window", type=int, default=56, help="occlusion window (stride: half of it)")
    parser.add_argument("--step", type=int, default=2240, help="deletion: features per step (10 rows at 224)")
    parser.add_argument("--tasks", type=int, default=30, help="overhead: empty tasks timed")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "scaling.json")
    args = parser.parse_args()
    model_path = str(args.model or demo.demo_model_path())
    real = Path(model_path).resolve() != demo.demo_model_path().resolve()
    preset = "efficientnet-lite" if real else "unit"
    work = Path(tempfile.mkdtemp(prefix="onnxplain-scaling-"))
    try:
        images = work / "images"
        write_images(images, args.images, real)
        options = {"method_options": {"rise": {"n_masks": args.masks},
                                      "occlusion": {"window": args.window, "stride": args.window // 2}},
                   "metric_options": {"deletion": {"step": args.step}}, "progress": False}
        runs = {}
        for label, count in (("sequential", 0), ("1 worker", 1), ("2 workers", 2)):
            model = ox.Model(model_path, preset=preset, progress=False)
            start = time.perf_counter()
            if count:
                with workers.local_pool(count) as pool:
                    report = ox.evaluate(model, images, METHODS, METRICS, work / label, executor=pool, **options)
            else:
                report = ox.evaluate(model, images, METHODS, METRICS, work / label, **options)
            wall = time.perf_counter() - start
            same = evaluation.without_timings(report.records) == evaluation.without_timings(
                runs["sequential"]["records"]) if count else True
            runs[label] = {"workers": count, "wall_s": round(wall, 2), "images_per_s": round(args.images / wall, 3),
                           "same_records_as_sequential": same, "records": report.records}
            print(f"{label:<11} {wall:7.2f} s  {args.images / wall:6.3f} images/s  "
                  f"same records as sequential: {runs[label]['same_records_as_sequential']}")
        per_image = runs["sequential"]["wall_s"] / args.images

        # task overhead: empty tasks carrying a real payload and a real result, through run_tasks
        model = ox.Model(model_path, preset=preset, progress=False)
        path = sorted(images.iterdir())[0]
        folder = work / "sequential" / "maps" / path.name
        digest = workers.file_sha256(path)
        cached = {m: (np.load(folder / f"{m}.npy"), json.loads((folder / f"{m}.json").read_text())) for m in METHODS}
        result = {"maps": cached, "records": [r for r in runs["sequential"]["records"] if r["image"] == path.name]}
        out = work / "overhead"
        out.mkdir()
        driver = []

        def make() -> dict:
            start = time.perf_counter()
            payload = {"image": path.name, "data": path.read_bytes(), "sha256": digest,
                       "methods": {m: {"cached": cached[m]} for m in METHODS}, "result": result}
            pickle.dumps(payload)  # what submitting costs the driver
            driver.append(time.perf_counter() - start)
            return payload

        with open(out / "records.jsonl", "ab") as sink:
            def done(key: str, got: dict) -> None:
                start = time.perf_counter()
                for method, (attribution, info) in got["maps"].items():
                    evaluation._store_map(out / "maps" / key, method, attribution, info)
                evaluation._append(sink, got["records"])
                driver[-1] += time.perf_counter() - start

            def per_task(executor) -> float:
                """Seconds per empty task on a 1-slot executor, its model built first."""
                spec = workers.ModelSpec.of(model, threads=1)
                workers.run_tasks(executor, model, spec, echo, [("warm-up", make)], done, print)
                driver.clear()
                start = time.perf_counter()
                workers.run_tasks(executor, model, spec, echo, [(f"t{i}", make) for i in range(args.tasks)], done,
                                  print)
                return (time.perf_counter() - start) / args.tasks

            with workers.local_pool(1) as pool:
                overhead = per_task(pool)
            driver_s = float(np.median(driver))
            try:
                import distributed
            except ImportError:
                dask_overhead = None
            else:
                with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                              dashboard_address=None, silence_logs=50) as cluster, \
                        distributed.Client(cluster) as client:
                    dask_overhead = per_task(client.get_executor())
        share = overhead / per_image
        print(f"per image: compute T = {per_image:.3f} s (sequential), task overhead o = {overhead * 1e3:.1f} ms "
              f"({share:.2%} of T; target <= 2 %), driver's share d = {driver_s * 1e3:.1f} ms")
        if dask_overhead is not None:
            print(f"on a Dask LocalCluster (1 worker process): o = {dask_overhead * 1e3:.1f} ms "
                  f"({dask_overhead / per_image:.2%} of T)")
        saturation = (per_image + overhead) / driver_s
        cluster = {w: round(min(w * per_image / (per_image + overhead), per_image / driver_s), 1)
                   for w in (1, 2, 8, 32, 128, 512)}
        print(f"expected cluster speedup S(W) = min(W T / (T + o), T / d): {cluster}; driver saturates at "
              f"W* = {saturation:.0f} workers")
        summary = {
            "model": Path(model_path).name, "images": args.images, "methods": METHODS, "metrics": METRICS,
            "rise_masks": args.masks, "occlusion_window": args.window, "deletion_step": args.step,
            "cores": os.cpu_count(), "platform": platform.platform(),
            "runs": {k: {f: v for f, v in r.items() if f != "records"} for k, r in runs.items()},
            "per_image_compute_s": round(per_image, 4), "task_overhead_ms": round(overhead * 1e3, 2),
            "dask_task_overhead_ms": None if dask_overhead is None else round(dask_overhead * 1e3, 2),
            "overhead_share": round(share, 5), "driver_ms_per_image": round(driver_s * 1e3, 2),
            "expected_cluster_speedup": cluster, "driver_saturates_at_workers": round(saturation),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
        print(f"wrote {args.json}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
