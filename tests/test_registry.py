"""The one method registry: every front end (explain, evaluate, counterfactual) reads it; each
entry says whether it explains one input or a pair; `multi` runs under evaluate; unknown names
fail in one line naming the kind and the available names."""
import json
import shutil

import numpy as np
import pytest

import onnxplain as ox
from onnxplain import cli, demo, registry
from onnxplain import counterfactual as cf
from onnxplain import evaluation as ev

INPUT = ["occlusion", "rise", "ig", "pmi", "multi", "random"]
PAIR = ["residual", "d-occlusion", "d-rise", "d-pmi", "occlusion", "rise", "random"]
MODEL = str(demo.demo_model_path())


@pytest.fixture(autouse=True)
def clean_registry():
    """Whatever a test registers is gone afterwards."""
    saved = dict(registry.METHODS)
    yield
    registry.METHODS.clear()
    registry.METHODS.update(saved)


@pytest.fixture
def images(tmp_path):
    """The shipped green-cross and blue-ring demo images (the model's top-1 is their class)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for path in demo.demo_image_paths()[1:]:
        shutil.copy(path, folder / path.name)
    return folder


def ramp(shape, slope: float) -> np.ndarray:
    h, w = shape
    return (slope * np.tile(np.arange(w, dtype=np.float32), (h, 1))).astype(np.float32)


class Ramp:
    """A plug-in input method: a left-to-right ramp (valid, and known in advance)."""

    def __init__(self, model):
        self.floor = ox.RandomMap(model)

    def attribute(self, image, target=None, *, seed=0, slope=1.0):  # no `baseline`: must not be passed
        result = self.floor.attribute(image, target=target, seed=seed)
        result.maps = {t: ramp(m.shape, slope) for t, m in result.maps.items()}
        result.method, result.params = "ramp", {"slope": slope}
        return result


def test_built_ins_and_their_kinds():
    assert registry.method_names("input") == INPUT
    assert registry.method_names("pair") == PAIR
    for kind, names in (("input", INPUT), ("pair", PAIR)):
        for name in names:
            spec = registry.get_method(name, kind)
            assert spec.name == name and spec.explains == kind and spec.description and callable(spec.factory)
    assert registry.get_method("multi", "input").factory is ox.Causal
    assert registry.get_method("random", "input").factory is ox.RandomMap
    assert registry.get_method("d-rise").explains == "pair"  # one kind has the name: no need to say which
    # the public names are the registry's
    assert ox.register_method is ev.register_method is registry.register_method
    assert cf.METHODS == tuple(PAIR)


def test_unknown_or_wrong_kind_is_one_line_naming_kind_and_names():
    with pytest.raises(ox.OnnxplainError) as info:
        registry.get_method("d-rise", explains="input")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unknown method 'd-rise' for explaining one input")
    assert "'d-rise' explains a pair" in message and "available: " + ", ".join(INPUT) in message
    with pytest.raises(ox.OnnxplainError, match="unknown method 'lime' for explaining a pair .*available: residual, d-occ"):
        registry.get_method("lime", "pair")
    with pytest.raises(ox.OnnxplainError, match="'occlusion' is registered for one input and for a pair"):
        registry.get_method("occlusion")
    with pytest.raises(ox.OnnxplainError, match="explains must be one of"):
        registry.register_method("triple", Ramp, explains="triple")
    with pytest.raises(ox.OnnxplainError, match="method name"):
        registry.register_method("a,b", Ramp)
    model = ox.Model(MODEL, preset="unit", progress=False)
    with pytest.raises(ox.OnnxplainError, match="unknown method 'd-rise' for explaining one input"):
        ox.evaluate(model, demo.demo_image_paths(), ["d-rise"], ["mif-lif"], "unused", progress=False)


def test_cli_unknown_method_exits_2(tmp_path, capsys):
    # evaluate: checked against the registry before the model is even opened
    assert cli.main(["evaluate", str(tmp_path / "missing.onnx"), str(tmp_path), "--methods", "random,lime"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("onnxplain: error: unknown method 'lime' for explaining one input")
    assert ", ".join(INPUT) in err[0]
    # explain / counterfactual: argparse choices are the registered names of the kind
    for argv, names in ((["explain", MODEL, "x.png", "--method", "d-rise"], INPUT),
                        (["counterfactual", MODEL, "x.png", "y.png", "--method", "multi"], PAIR)):
        assert cli.main(argv) == 2  # argparse's exit, returned as the code
        err = capsys.readouterr().err
        assert "error: argument --method: invalid choice" in err and ", ".join(map(repr, names)) in err


def test_registered_input_method_reaches_explain_and_evaluate(tmp_path, images, capsys):
    registry.register_method("ramp", Ramp, description="test ramp", slope=2.0)
    assert "ramp" in registry.method_names("input") and "ramp" not in registry.method_names("pair")
    assert cli.main(["explain", "--help"]) == 0
    assert "ramp: test ramp" in " ".join(capsys.readouterr().out.split())
    # onnxplain explain --method ramp: registered defaults used, --baseline not passed to it
    image = demo.demo_image_paths()[1]
    assert cli.main(["explain", MODEL, str(image), "--method", "ramp", "--preset", "unit",
                     "--out", str(tmp_path / "x"), "--quiet"]) == 0
    record = json.loads((tmp_path / "x" / "result.json").read_text())
    assert record["method"] == "ramp" and record["params"] == {"slope": 2.0}
    np.testing.assert_array_equal(np.load(tmp_path / "x" / "ramp_1.npy"), ramp((64, 64), 2.0))
    # ox.evaluate: the registered defaults, the map cached
    model = ox.Model(MODEL, preset="unit", progress=False)
    report = ox.evaluate(model, images, ["ramp"], ["mif-lif"], tmp_path / "run",
                         metric_options={"mif-lif": {"patch": 8}}, progress=False)
    assert len(report.records) == 2 and {r["method"] for r in report.records} == {"ramp"}
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "maps" / "demo_blue_ring.png" / "ramp.npy"),
                                  ramp((64, 64), 2.0))
    # onnxplain evaluate --methods ramp, with an option over the default
    out = tmp_path / "cli-run"
    assert cli.main(["evaluate", MODEL, str(images), "--preset", "unit", "--methods", "ramp,random",
                     "--option", "ramp.slope=3", "--patch", "8", "--out", str(out), "--quiet"]) == 0
    assert "ramp" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["methods"] == {"ramp": {"slope": 3}, "random": {}}
    np.testing.assert_array_equal(np.load(out / "maps" / "demo_green_cross.png" / "ramp.npy"), ramp((64, 64), 3.0))
    assert len((out / "records.jsonl").read_text().splitlines()) == 2 * 2


def test_registered_pair_method_reaches_counterfactual(tmp_path, capsys):
    calls = []

    def d_test(model, pair, *, seed=0, window=None, gain=1.0):  # no **kwargs: gets only what it takes
        calls.append({"seed": seed, "window": window, "gain": gain})
        result = ox.RandomMap(model).attribute(pair.real, target=pair.class_b, seed=seed)
        difference = np.abs(pair.counterfactual - pair.real).max(axis=2)
        result.maps = {pair.class_b: (gain * difference).astype(np.float32)}
        result.method = "d-test"
        return result

    registry.register_method("d-test", d_test, explains="pair", description="test pair map", gain=2.0)
    assert "d-test" in cf.METHODS and "d-test" not in registry.method_names("input")
    real, counter = demo.demo_image_paths()[1:]
    out = tmp_path / "out"
    assert cli.main(["counterfactual", MODEL, str(real), str(counter), "--preset", "unit", "--min-confidence", "-1",
                     "--method", "d-test", "--method", "residual", "--window", "8", "--seed", "3",
                     "--out", str(out), "--quiet"]) == 0
    assert calls == [{"seed": 3, "window": 8, "gain": 2.0}]
    record = json.loads((out / "result.json").read_text())
    assert set(record["methods"]) == {"d-test", "residual"}
    b = record["pair"]["class_b"]
    model = ox.Model(MODEL, preset="unit", progress=False)
    expected = 2.0 * np.abs(ox.load_image(counter, model.input_size) - ox.load_image(real, model.input_size)).max(axis=2)
    np.testing.assert_allclose(np.load(out / f"d-test_{b}.npy"), expected, rtol=1e-6)
    assert "d-test" in capsys.readouterr().out
    # the library front end reads the same registry; unknown names fail before any work
    pair = cf.make_pair(model, real, counter, min_confidence=None)
    assert list(cf.explain_pair(model, pair, ["d-test"], n_thresholds=10, gain=0.5)) == ["d-test"]
    assert calls[-1]["gain"] == 0.5
    with pytest.raises(ox.OnnxplainError, match="unknown method 'ramp' for explaining a pair"):
        cf.explain_pair(model, pair, ["d-test", "ramp"])
    assert len(calls) == 2


def test_evaluate_multi_stores_the_responsibility_map(tmp_path, images, capsys):
    out = tmp_path / "run"
    assert cli.main(["evaluate", MODEL, str(images), "--preset", "unit", "--methods", "multi,random",
                     "--metrics", "mif-lif", "--option", "multi.iterations=2", "--option", "multi.max_explanations=1",
                     "--patch", "4", "--out", str(out), "--quiet"]) == 0
    assert "multi" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["methods"]["multi"] == {"iterations": 2, "max_explanations": 1}
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 2 and sum(r["method"] == "multi" for r in records) == 2
    model = ox.Model(MODEL, preset="unit", progress=False)
    for path in sorted(images.iterdir()):
        cached = np.load(out / "maps" / path.name / "multi.npy")
        info = json.loads((out / "maps" / path.name / "multi.json").read_text())
        assert cached.dtype == np.float32 and cached.shape == (64, 64) and cached.max() > 0
        assert info["params"]["iterations"] == 2 and info["params"]["max_explanations"] == 1
        result = ox.Causal(model).attribute(ox.load_image(path, model.input_size), target="top", iterations=2,
                                            max_explanations=1)
        assert info["target"] == result.target
        np.testing.assert_array_equal(cached, result[result.target])  # the responsibility map, as float32
    summary = {(s["method"], s["metric"]): s for s in json.loads((out / "summary.json").read_text())["rows"]}
    assert summary[("multi", "mif-lif")]["images"] == 2 and "vs_random" in summary[("multi", "mif-lif")]
