"""Dataset runs: resume after kill -9 with nothing lost or repeated, the explanation cache, the
method registry, the summary, errors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import onnxplain as ox
from onnxplain import demo
from onnxplain import evaluation as ev
from onnxplain import registry

DEMO_ARGS = ["--preset", "unit", "--methods", "occlusion,rise,random", "--metrics", "mif-lif,deletion,insertion",
             "--masks", "400", "--window", "8", "--stride", "4", "--quiet"]


def write_demo_images(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, _ = demo.make_demo_image(i % 3, seed=20 + i)
        cv2.imwrite(str(folder / f"img{i:02d}.png"), cv2.cvtColor(image.round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    return folder


def cli(out: Path, images: Path) -> list[str]:
    return [sys.executable, "-m", "onnxplain.cli", "evaluate", str(demo.demo_model_path()), str(images),
            "--out", str(out), *DEMO_ARGS]


def comparable(records: list[dict]) -> dict:
    """Records keyed by (image, method, metric), wall times removed (they differ run to run)."""
    out = {}
    for r in records:
        r = json.loads(json.dumps(r))
        r.pop("seconds")
        r["explain"].pop("seconds")
        out[(r["image"], r["method"], r["metric"])] = r
    return out


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_killed_run_resumes_without_loss_or_repetition(tmp_path):
    images = write_demo_images(tmp_path / "images", 8)
    total = 8 * 3 * 3
    full = tmp_path / "full"
    subprocess.run(cli(full, images), check=True, capture_output=True, timeout=120)
    reference = lines(full / "records.jsonl")
    assert len(reference) == total

    broken = tmp_path / "broken"
    records = broken / "records.jsonl"

    def interrupt(at_least: int, sig: int) -> subprocess.Popen:
        # SIGINT restored: a shell's background job (nohup ... &) starts with it ignored, and so would the run
        process = subprocess.Popen(cli(broken, images), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (records.exists() and records.read_text().count("\n") >= at_least):
            time.sleep(0.01)
        os.kill(process.pid, sig)
        process.wait(timeout=60)
        written = records.read_text().count("\n")
        assert at_least <= written < total, "the run must be stopped mid-way"
        return process

    ctrl_c = interrupt(3, signal.SIGINT)  # Ctrl-C: a clean exit saying how to resume
    assert ctrl_c.returncode == 130 and "resume" in ctrl_c.stderr.read()
    interrupt(records.read_text().count("\n") + 3, signal.SIGKILL)
    with open(records, "ab") as f:  # a write torn by the kill
        f.write(b'{"image": "img07.png", "method": "ri')
    resumed = subprocess.run(cli(broken, images), check=True, capture_output=True, text=True, timeout=120)
    assert "fidelity" in resumed.stdout and "rise" in resumed.stdout
    again = lines(records)  # every line parses: the torn one was cut off
    keys = [(r["image"], r["method"], r["metric"]) for r in again]
    assert len(keys) == len(set(keys)) == total
    assert comparable(again) == comparable(reference)
    # the maps computed before the kill were reused, not recomputed: same files, same bytes
    for name in ("occlusion", "rise"):
        assert np.array_equal(np.load(broken / "maps" / "img00.png" / f"{name}.npy"),
                              np.load(full / "maps" / "img00.png" / f"{name}.npy"))
    summary = json.loads((broken / "summary.json").read_text())
    assert summary["images"] == 8 and summary["failed"] == []
    assert {(s["method"], s["metric"]) for s in summary["rows"]} == {(a, k) for a in ("occlusion", "rise", "random")
                                                             for k in ("mif-lif", "deletion", "insertion")}
    assert (broken / "curves_mif-lif.png").stat().st_size > 1000


def test_python_run_registry_cache_and_summary(tmp_path):
    images = write_demo_images(tmp_path / "images", 4)
    model = ox.Model(demo.demo_model_path(), preset="unit", progress=False)
    calls = []

    class Planted:
        """A plug-in method: the planted box of the demo image, found by its saturated colour."""

        def __init__(self, model):
            self.explainer = ox.RandomMap(model)

        def attribute(self, image, target=None, seed=0, blur=1.0):
            calls.append(seed)
            result = self.explainer.attribute(image, target=target, seed=seed)
            chroma = image.max(axis=2) - image.min(axis=2)
            result.maps = {t: cv2.GaussianBlur(chroma, (0, 0), blur).astype(np.float32) for t in result.targets}
            result.method = "planted"
            return result

    ev.register_method("planted", Planted, blur=1.5)
    try:
        report = ox.evaluate(model, images, ["planted", "random"], ["mif-lif", "deletion"], tmp_path / "run",
                             metric_options={"mif-lif": {"patch": 2}}, progress=False)
        assert len(calls) == 4 and len(report.records) == 4 * 2 * 2
        rows = {(r["method"], r["metric"]): r for r in report.summary}
        planted, floor = rows[("planted", "mif-lif")], rows[("random", "mif-lif")]
        assert planted["images"] == 4 and planted["fidelity"]["mean"] > floor["fidelity"]["mean"]
        assert planted["vs_random"]["mean"] - planted["vs_random"]["ci95"] > 0
        assert rows[("planted", "deletion")]["vs_random"]["mean"] < 0  # deletes evidence faster
        assert len(planted["mean_curves"]["mif"]) == 20 and planted["agreement"]["mif"][0] == 1.0
        assert "planted" in report.table() and "+-" in report.table()
        # a second run finds everything recorded: nothing explained or evaluated again
        before = model.evaluations
        again = ox.evaluate(model, images, ["planted", "random"], ["mif-lif", "deletion"], tmp_path / "run",
                            metric_options={"mif-lif": {"patch": 2}}, progress=False)
        assert model.evaluations == before and len(calls) == 4
        assert again.summary == report.summary
        # adding a metric reuses the cached maps (no new explanation), evaluates only the new metric
        third = ox.evaluate(model, images, ["planted"], ["mif-lif", "insertion"], tmp_path / "run",
                            metric_options={"mif-lif": {"patch": 2}}, progress=False)
        assert len(calls) == 4 and {r["metric"] for r in third.records} == {"mif-lif", "insertion"}
        # changing an option of a recorded method is refused
        with pytest.raises(ox.OnnxplainError, match="options"):
            ox.evaluate(model, images, ["planted"], ["mif-lif"], tmp_path / "run",
                        method_options={"planted": {"blur": 3.0}}, metric_options={"mif-lif": {"patch": 2}},
                        progress=False)
    finally:
        registry.unregister_method("planted")


def test_read_records_tolerates_only_a_torn_last_line(tmp_path):
    path = tmp_path / "records.jsonl"
    shape = {"x": [0.0, 1.0], "curves": {"deletion": [1.0, 0.5]}, "aucs": {"deletion": 0.75},
             "agree": {"deletion": [True, False]}}
    good = [{"image": "a.png", "method": "rise", "metric": "deletion", **shape},
            {"image": "b.png", "method": "rise", "metric": "deletion", **shape}]
    path.write_text("".join(json.dumps(r) + "\n" for r in good) + '{"image": "c.png", "me')
    assert ev.read_records(path) == good
    assert path.read_text().endswith("\n") and path.read_text().count("\n") == 2  # torn tail cut off
    path.write_text(json.dumps(good[0]) + "\nnot json\n" + json.dumps(good[1]) + "\n")
    with pytest.raises(ox.OnnxplainError, match="line 2"):
        ev.read_records(path)
    for alien in (1, {"method": "rise"}, {**good[0], "curves": {"deletion": "x"}}, {**good[0], "aucs": {}}):
        path.write_text(json.dumps(good[0]) + "\n" + json.dumps(alien) + "\n")
        with pytest.raises(ox.OnnxplainError, match="line 2 is not a record onnxplain writes; the file is damaged"):
            ev.read_records(path)


def test_evaluate_errors(tmp_path):
    model = ox.Model(demo.demo_model_path(), preset="unit", progress=False)
    images = write_demo_images(tmp_path / "images", 1)
    with pytest.raises(ox.OnnxplainError, match="unknown method 'lime'"):
        ox.evaluate(model, images, ["lime"], ["mif-lif"], tmp_path / "o")
    with pytest.raises(ox.OnnxplainError, match="unknown metric 'roar'"):
        ox.evaluate(model, images, ["random"], ["roar"], tmp_path / "o")
    with pytest.raises(ox.OnnxplainError, match="not found"):
        ox.evaluate(model, tmp_path / "missing", ["random"], ["mif-lif"], tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ox.OnnxplainError, match="no images"):
        ox.evaluate(model, tmp_path / "empty", ["random"], ["mif-lif"], tmp_path / "o")
    ox.evaluate(model, images, ["random"], ["mif-lif"], tmp_path / "o", seed=1, progress=False)
    with pytest.raises(ox.OnnxplainError, match="different seed"):
        ox.evaluate(model, images, ["random"], ["mif-lif"], tmp_path / "o", seed=2, progress=False)
    result = subprocess.run([sys.executable, "-m", "onnxplain.cli", "evaluate", str(demo.demo_model_path()),
                             str(images), "--methods", "lime", "--out", str(tmp_path / "c")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown method 'lime'" in result.stderr


def test_cli_options_reach_methods_and_metrics(tmp_path):
    images = write_demo_images(tmp_path / "images", 1)
    out = tmp_path / "run"
    base = [sys.executable, "-m", "onnxplain.cli", "evaluate", str(demo.demo_model_path()), str(images), "--preset",
            "unit", "--quiet", "--out", str(out)]
    done = subprocess.run(base + ["--methods", "rise,random", "--metrics", "mif-lif,road", "--option",
                                  "rise.n_masks=50", "--grid", "4", "--fractions", "0,0.25,0.5", "--patch", "4",
                                  "--score", "logit"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["methods"]["rise"] == {"n_masks": 50, "grid": 4}
    assert config["metrics"]["mif-lif"] == {"patch": 4, "fractions": [0.0, 0.25, 0.5], "score": "logit"}
    records = lines(out / "records.jsonl")
    assert len(records) == 4 and all(r["x"] == [0.0, 0.25, 0.5] for r in records)
    assert {r["explain"]["evaluations"] for r in records if r["method"] == "rise"} == {51}
    assert all(r["params"]["patch"] == 4 and r["params"]["score"] == "logit" for r in records)
    for bad in (["--option", "rise:n_masks=5"], ["--fractions", "0,a"]):
        result = subprocess.run(base + ["--methods", "random"] + bad, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and "error" in result.stderr


def test_research_methods_are_registered_and_beat_random(tmp_path):
    """IG and PMI run through the dataset runner by name; on the demo model their maps find the
    planted pattern, so their MIF/LIF fidelity beats the random floor on every image."""
    images = write_demo_images(tmp_path / "images", 3)
    model = ox.Model(demo.demo_model_path(), preset="unit", progress=False)
    options = {"patch": 8, "stride": 4, "samples": 2, "mode": "dense", "sampler": "blur"}
    report = ox.evaluate(model, images, ["ig", "pmi", "random"], ["mif-lif"], tmp_path / "run",
                         method_options={"ig": options, "pmi": options}, metric_options={"mif-lif": {"patch": 4}},
                         progress=False)
    rows = {r["method"]: r for r in report.summary}
    for method in ("ig", "pmi"):
        assert rows[method]["images"] == 3
        assert rows[method]["fidelity"]["mean"] > rows["random"]["fidelity"]["mean"]


def test_a_damaged_run_folder_is_named_or_healed(tmp_path):
    model = ox.Model(demo.demo_model_path(), preset="unit", progress=False)
    images = write_demo_images(tmp_path / "images", 2)
    out = tmp_path / "run"
    run = lambda **kw: ox.evaluate(model, images, ["occlusion"], ["deletion"], out, progress=False,  # noqa: E731
                                   method_options={"occlusion": {"window": 16, "stride": 16}}, **kw)
    first = run()
    cached = out / "maps" / "img00.png" / "occlusion.npy"
    np.save(cached, np.zeros((5, 5), np.float32))  # a damaged cache entry is recomputed, not failed forever
    (out / "records.jsonl").write_text("")  # so that the image is evaluated again
    again = run()
    assert not again.failed and np.load(cached).shape == (64, 64)
    assert ev.without_timings(again.summary) == ev.without_timings(first.summary)
    for damage in ("not json{", "[]", json.dumps({"model": {}, "seed": 0})):
        (out / "config.json").write_text(damage)
        with pytest.raises(ox.OnnxplainError, match=r"config\.json is damaged .*choose another --out"):
            run()
    for name, kind in (("maps", "a file, where the run keeps its maps"), ("records.jsonl", "a folder, where the run")):
        broken = tmp_path / f"broken_{name}"
        broken.mkdir()
        (broken / name).mkdir() if name.endswith(".jsonl") else (broken / name).write_text("x")
        with pytest.raises(ox.OnnxplainError, match=kind):
            ox.evaluate(model, images, ["occlusion"], ["deletion"], broken, progress=False)


def test_evaluate_checks_seed_and_labels_before_any_image(tmp_path):
    model = ox.Model(demo.demo_model_path(), preset="unit", progress=False)
    images = write_demo_images(tmp_path / "images", 1)
    for options, match in (({"seed": -1}, r"seed must be an integer in 0\.\.2\^64-1"),
                           ({"labels": [1, 2]}, r"labels must be a dict image file name -> class id"),
                           ({"labels": {"img00.png": 9}}, r"labels \{'img00\.png': 9\} are not class ids in 0\.\.2")):
        evaluations = model.evaluations
        with pytest.raises(ox.OnnxplainError, match=match):
            ox.evaluate(model, images, ["occlusion"], ["deletion"], tmp_path / "run", progress=False, **options)
        assert model.evaluations - evaluations <= 1  # at most the probe that reads the class count
        assert not (tmp_path / "run" / "config.json").exists()
