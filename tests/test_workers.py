"""Dataset runs over executors: local worker processes, a real Dask cluster (2 worker processes on
loopback) with a worker SIGKILLed mid-run, poison and crashing images, run identity on resume, and
`onnxplain explain MODEL DIR`. Every run's records equal the sequential run's, timings aside."""
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

import onnxplain as ox
from onnxplain import demo, registry, workers
from onnxplain.evaluation import without_timings as untimed

MODEL = str(demo.demo_model_path())
METHODS = ["occlusion", "rise", "random"]
METRICS = ["mif-lif", "deletion"]
METHOD_OPTIONS = {"occlusion": {"window": 8, "stride": 4}, "rise": {"n_masks": 300}}
METRIC_OPTIONS = {"mif-lif": {"fractions": [0.0, 0.25, 0.5, 0.75]}}
CLI_OPTIONS = ["--preset", "unit", "--methods", ",".join(METHODS), "--metrics", ",".join(METRICS), "--window", "8",
               "--stride", "4", "--masks", "300", "--fractions", "0,0.25,0.5,0.75", "--quiet"]


def write_images(folder: Path, n: int, first: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + n):
        image, _ = demo.make_demo_image(i % 3, seed=40 + i)
        cv2.imwrite(str(folder / f"img{i:02d}.png"), cv2.cvtColor(image.round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    return folder


def model() -> ox.Model:
    return ox.Model(MODEL, preset="unit", progress=False)


def run(images: Path, out: Path, **kwargs) -> ox.evaluation.Report:
    return ox.evaluate(model(), images, METHODS, METRICS, out, method_options=METHOD_OPTIONS,
                       metric_options=METRIC_OPTIONS, progress=False, **kwargs)


def file_records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def keyed(records: list[dict]) -> dict:
    keys = [(r["image"], r["method"], r["metric"]) for r in records]
    assert len(keys) == len(set(keys)), "a record written twice"
    return dict(zip(keys, untimed(records)))


def assert_same_run(out: Path, reference: Path) -> None:
    """Same records (any line order) and summary as the reference run, timings aside."""
    assert keyed(file_records(out)) == keyed(file_records(reference))
    assert untimed(json.loads((out / "summary.json").read_text())) == \
        untimed(json.loads((reference / "summary.json").read_text()))


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """Six images and their sequential run (the reference)."""
    root = tmp_path_factory.mktemp("sequential")
    images = write_images(root / "images", 6)
    report = run(images, root / "run")
    assert len(report.records) == 6 * 3 * 2 and report.failed == []
    return images, root / "run"


def test_cli_local_workers_equal_the_sequential_run(sequential, tmp_path):
    images, reference = sequential
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "onnxplain.cli", "evaluate", MODEL, str(images), "--out", str(out),
                           "--workers", "2", *CLI_OPTIONS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "6 images" in done.stdout and "failed" not in done.stdout
    assert_same_run(out, reference)
    for name in ("occlusion", "rise", "random"):
        assert np.load(out / "maps" / "img03.png" / f"{name}.npy").tobytes() == \
            np.load(reference / "maps" / "img03.png" / f"{name}.npy").tobytes()
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["sha256"] == workers.file_sha256(MODEL)
    assert all(r["image_sha256"] == workers.file_sha256(images / r["image"]) for r in file_records(out))
    for bad, message in ((["--workers", "-1"], "--workers"), (["--workers", "2", "--scheduler", "tcp://x:1"], "exclude"),
                         (["--attempts", "0"], "--attempts")):
        failed = subprocess.run([sys.executable, "-m", "onnxplain.cli", "evaluate", MODEL, str(images), "--out",
                                 str(tmp_path / "bad"), *CLI_OPTIONS, *bad], capture_output=True, text=True, timeout=60)
        assert failed.returncode == 2 and message in failed.stderr and len(failed.stderr.splitlines()) == 1, failed.stderr


def test_dask_cluster_equals_sequential_and_survives_a_sigkilled_worker(sequential, tmp_path):
    distributed = pytest.importorskip("distributed")
    images, reference = sequential
    with pytest.raises(ox.OnnxplainError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9' \\(--scheduler\\)"):
        workers.dask_executor("tcp://127.0.0.1:9", timeout=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        executor = client.get_executor()
        assert workers.slots(executor) == 2
        run(images, tmp_path / "dask", executor=executor)
        assert_same_run(tmp_path / "dask", reference)

        out = tmp_path / "killed"
        thread = threading.Thread(target=run, args=(images, out), kwargs={"executor": executor})
        thread.start()
        pids = client.run(os.getpid)
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline:  # a worker busy with an image, after a first record
            busy = [w for w, keys in client.processing().items() if keys]
            if busy and (out / "records.jsonl").exists() and (out / "records.jsonl").read_text():
                victim = busy[0]
            time.sleep(0.005)
        assert victim is not None
        written = len(file_records(out))
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert written < 6 * 3 * 2, "the kill must land mid-run"
        assert_same_run(out, reference)  # every record exactly once, equal to the sequential run's
        assert pids[victim] not in client.run(os.getpid).values()  # the worker really died (and was replaced)

        done = subprocess.run([sys.executable, "-m", "onnxplain.cli", "evaluate", MODEL, str(images), "--out",
                               str(tmp_path / "cli"), "--scheduler", cluster.scheduler_address, *CLI_OPTIONS],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert_same_run(tmp_path / "cli", reference)


class Fragile:
    """A plug-in method (importable, so workers can receive it) whose worker process dies on an all-black image."""

    def __init__(self, model):
        self.explainer = ox.RandomMap(model)

    def attribute(self, image, target=None, seed=0):
        if image.max() == 0:
            os._exit(1)
        return self.explainer.attribute(image, target=target, seed=seed)


def test_poison_and_worker_killing_images_become_error_records_and_reruns_retry_them(tmp_path):
    images = write_images(tmp_path / "images", 3)
    (images / "bad.png").write_bytes(b"not an image")
    cv2.imwrite(str(images / "black.png"), np.zeros((64, 64, 3), np.uint8))
    registry.register_method("fragile", Fragile)
    try:
        with workers.local_pool(2) as pool:
            report = ox.evaluate(model(), images, ["fragile"], ["mif-lif"], tmp_path / "run", executor=pool,
                                 progress=False)
        assert sorted(r["image"] for r in report.records) == ["img00.png", "img01.png", "img02.png"]
        assert [(f["image"], f["attempts"]) for f in report.failed] == [("bad.png", 2), ("black.png", 2)]
        assert "cannot read image" in report.failed[0]["error"] and "died" in report.failed[1]["error"]
        assert "2 of 5 images failed" in report.table() and "bad.png" in report.table()
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["failed"] == report.failed and summary["rows"][0]["images"] == 3
        assert sum("error" in r for r in file_records(tmp_path / "run")) == 2

        (images / "black.png").unlink()  # the rerun retries the failed images, and only them
        write_images(images, 1, first=7)
        os.replace(images / "img07.png", images / "bad.png")
        again = ox.evaluate(model(), images, ["fragile"], ["mif-lif"], tmp_path / "run", progress=False)
        assert again.failed == [] and len(again.records) == 4
        lines = file_records(tmp_path / "run")
        assert len(lines) == 3 + 2 + 1 and sum(r["image"] == "bad.png" and "error" not in r for r in lines) == 1
    finally:
        registry.unregister_method("fragile")


def test_resume_recomputes_a_changed_image_and_refuses_another_model(tmp_path):
    images = write_images(tmp_path / "images", 2)
    out = tmp_path / "run"
    first = run(images, out)
    kept = {k: v for k, v in keyed(first.records).items() if k[0] == "img00.png"}
    write_images(images, 1, first=4)
    os.replace(images / "img04.png", images / "img01.png")  # same name, other pixels
    counting = model()
    again = ox.evaluate(counting, images, METHODS, METRICS, out, method_options=METHOD_OPTIONS,
                        metric_options=METRIC_OPTIONS, progress=False)
    fresh = run(images, tmp_path / "fresh")
    assert keyed(again.records) == keyed(fresh.records)  # img01 recomputed: records and maps
    assert {k: v for k, v in keyed(again.records).items() if k[0] == "img00.png"} == kept
    assert counting.evaluations == sum(r["evaluations"] + r["explain"]["evaluations"] * (r["metric"] == METRICS[0])
                                       for r in again.records if r["image"] == "img01.png") + 1  # + detection
    for name in METHODS:
        assert np.array_equal(np.load(out / "maps" / "img01.png" / f"{name}.npy"),
                              np.load(tmp_path / "fresh" / "maps" / "img01.png" / f"{name}.npy"))

    import onnx
    from onnx import numpy_helper

    graph = onnx.load(MODEL)
    weights = next(w for w in graph.graph.initializer if w.name == "fc.weight")
    weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights) * 1.5, weights.name))
    other = tmp_path / "other.onnx"
    onnx.save(graph, str(other))  # same inputs and outputs, other weights
    result = subprocess.run([sys.executable, "-m", "onnxplain.cli", "evaluate", str(other), str(images), "--out",
                             str(out), *CLI_OPTIONS], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "another model" in result.stderr and len(result.stderr.splitlines()) == 1

    config = json.loads((out / "config.json").read_text())
    del config["model"]["sha256"]  # a folder made before run identity
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ox.OnnxplainError, match="older onnxplain"):
        run(images, out)


def test_sequential_poison_image_and_unpicklable_methods(tmp_path):
    images = write_images(tmp_path / "images", 1)
    (images / "empty.png").write_bytes(b"")
    report = ox.evaluate(model(), images, ["random"], ["mif-lif"], tmp_path / "run", progress=False, attempts=1)
    assert [f["image"] for f in report.failed] == ["empty.png"] and len(report.records) == 1
    with ThreadPoolExecutor(2) as pool:  # any Executor: threads sharing one worker model
        threaded = ox.evaluate(model(), images, ["random"], ["mif-lif"], tmp_path / "threads", progress=False,
                               attempts=1, executor=pool)
        assert untimed(threaded.records) == untimed(report.records) and threaded.failed == report.failed
        arrays = tmp_path / "array.npy"  # a task carries an .npy image as its bytes too
        np.save(arrays, demo.make_demo_image(1, seed=3)[0])
        mixed = ox.evaluate(model(), [arrays, images / "img00.png"], ["random"], ["mif-lif"], tmp_path / "npy",
                            progress=False, executor=pool)
        assert mixed.failed == [] and [r["image"] for r in mixed.records] == ["array.npy", "img00.png"]
        callable_model = ox.Model(lambda batch: np.zeros((len(batch), 3), np.float32), input_size=(64, 64))
        with pytest.raises(ox.OnnxplainError, match="workers build their own model"):
            ox.evaluate(callable_model, images, ["random"], ["mif-lif"], tmp_path / "run4", executor=pool)

    class Local(Fragile):
        pass

    registry.register_method("local", Local)
    try:
        with ThreadPoolExecutor(2) as pool, pytest.raises(ox.OnnxplainError, match="cannot be sent to worker"):
            ox.evaluate(model(), images, ["local"], ["mif-lif"], tmp_path / "run2", executor=pool, progress=False)
    finally:
        registry.unregister_method("local")
    with ThreadPoolExecutor(2) as pool, pytest.raises(ox.OnnxplainError, match="attempts"):
        ox.evaluate(model(), images, ["random"], ["mif-lif"], tmp_path / "run3", executor=pool, attempts=0)


def test_explain_a_folder_with_workers(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    pictures = [demo.make_demo_image(k, seed=9)[0] for k in range(3)]
    for name, picture in zip(("a.png", "a.jpg", "b.png"), pictures):
        cv2.imwrite(str(images / name), cv2.cvtColor(picture.round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    (images / "c.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "onnxplain.cli", "explain", MODEL, str(images), "--preset", "unit",
                           "--method", "rise", "--masks", "200", "--workers", "2", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "wrote 3 of 4" in done.stdout  # the others done, the corrupt one reported
    assert done.stderr.splitlines() == ["onnxplain: error: c.png: cannot read image bytes (not an image, or an "
                                        "unsupported format) (2 attempts)"]
    assert not (out / "c.png").exists()
    local = model()
    for name in ("a.png", "a.jpg", "b.png"):
        record = json.loads((out / name / "result.json").read_text())
        target = record["targets"][0]
        expected = ox.RISE(local).attribute(ox.load_image(images / name, local.input_size), n_masks=200, seed=0)
        assert expected.targets == [target]
        np.testing.assert_array_equal(np.load(out / name / f"rise_{target}.npy"), expected[target])


def test_worker_model_is_built_once_from_a_picklable_spec_that_checks_the_file(tmp_path):
    with ThreadPoolExecutor(3) as pool:
        assert workers.slots(pool) == 3 and workers.threads_per_worker(pool) == max(1, (os.cpu_count() or 1) // 3)
    spec = workers.ModelSpec.of(model(), threads=1)
    assert spec.recipe["source"] == MODEL and spec.sha256 == workers.file_sha256(MODEL)
    assert pickle.loads(pickle.dumps(spec)).key == spec.key
    built = workers.worker_model(spec)
    assert workers.worker_model(spec) is built and built.threads == 1 and built.recipe == spec.recipe
    from_bytes = workers.ModelSpec.of(ox.Model(Path(MODEL).read_bytes(), preset="unit", progress=False), threads=1)
    assert from_bytes.sha256 == spec.sha256 and from_bytes.key == spec.key and from_bytes.build().num_classes == 3
    changed = tmp_path / "demo.onnx"
    changed.write_bytes(Path(MODEL).read_bytes() + b"\0")
    moved = workers.ModelSpec({**spec.recipe, "source": str(changed)}, spec.sha256, 1)
    with pytest.raises(ox.OnnxplainError, match="does not see the driver's model"):
        moved.build()
