"""A hostile-input corpus: files, arrays, models, parameters, command lines and threads as a new
user might get them wrong. Each case is handled correctly, or refused with one line naming the
parameter (CLI: the flag) or the file and the fix: `OnnxplainError` in Python, exit 2 in the CLI
(exit 1 only for internal failures); a valid but weak answer carries a warning (stderr and
`result.json` in the CLI, `result.warnings` and an `OnnxplainWarning` in Python). CLI cases call
`cli.main(argv)` in-process. The fuzzing of the command line is at the end; the core's entry
points are fuzzed in test_core_fuzz.py.
"""
from __future__ import annotations

import io
import json
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import onnxplain as ox
from onnxplain import OnnxplainError, OnnxplainWarning, _core, cli, demo, evaluation
from onnxplain import fidelity as fd

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SIDE = 64  # the demo model's resolution


@pytest.fixture(scope="module")
def model() -> ox.Model:
    return ox.Model(demo.demo_model_path(), preset="unit", output="logits", progress=False)


@pytest.fixture(scope="module")
def image(model) -> np.ndarray:
    return ox.load_image(demo.demo_image_paths()[1], model.input_size)  # the green cross: class 1, black is 0


def refused(match: str, call, *args, **kwargs) -> str:
    """Asserts that call(*args, **kwargs) raises OnnxplainError whose one-line message matches."""
    with pytest.raises(OnnxplainError, match=match) as caught:
        call(*args, **kwargs)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def save(tmp_path: Path, name: str, array: np.ndarray, **options) -> Path:
    path = tmp_path / name
    Image.fromarray(array).save(path, **options)
    return path


def rgb(h: int = 40, w: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


class _no_warning:
    """Asserts that no OnnxplainWarning is issued inside."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self.caught = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        assert not [w for w in self.caught if issubclass(w.category, OnnxplainWarning)]


# ---- images ---------------------------------------------------------------------------------

def test_truncated_jpeg_is_an_error_not_a_grey_image(tmp_path):
    path = save(tmp_path, "cut.jpg", rgb(200, 200))
    path.write_bytes(path.read_bytes()[:1500])
    refused(r"cut\.jpg: truncated or corrupt", ox.load_image, path, (SIDE, SIDE))


def test_truncated_png_is_an_error(tmp_path):
    path = save(tmp_path, "cut.png", rgb(200, 200))
    path.write_bytes(path.read_bytes()[:2000])
    refused(r"cut\.png: truncated or corrupt", ox.load_image, path, (SIDE, SIDE))


def test_exif_orientation_is_applied(tmp_path):
    """A landscape JPEG tagged 'rotate 90 clockwise' (orientation 6) loads as the portrait it shows."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white: after a 90 degree clockwise turn, the top half
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(tmp_path, "turned.jpg", pixels, exif=exif, quality=95)
    loaded = ox.load_image(path)
    assert loaded.shape == (40, 20, 3)
    assert loaded[:20].mean() > 200 and loaded[20:].mean() < 50


def test_tiny_image_is_upscaled_with_a_warning(tmp_path):
    path = save(tmp_path, "dot.png", np.full((1, 1, 3), 90, np.uint8))
    with pytest.warns(OnnxplainWarning, match=r"1 x 1, enlarged more than 2x.*64 x 64"):
        loaded = ox.load_image(path, (SIDE, SIDE))
    assert loaded.shape == (SIDE, SIDE, 3) and np.all(loaded == 90)


def test_twofold_upscale_is_not_warned(tmp_path):
    path = save(tmp_path, "half.png", rgb(32, 32))
    with _no_warning():
        ox.load_image(path, (SIDE, SIDE))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming width x height RGB pixels, with a few bytes of pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_header_claiming_50000_squared_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(50000, 50000))
    refused(r"bomb\.png has more pixels than Pillow decodes safely.*downscale it", ox.load_image, path)


def test_header_above_the_pixel_limit_is_refused_before_decoding(tmp_path):
    path = tmp_path / "large.png"
    path.write_bytes(png_header_only(10000, 6000))
    refused(r"large\.png is 6000 x 10000 = 60,000,000 pixels, above the limit of 50,000,000; .*max_pixels=.*--max-pixels",
            ox.load_image, path)


def test_pixel_limit_is_adjustable(tmp_path):
    path = save(tmp_path, "big.png", rgb(100, 100))
    refused(r"100 x 100 = 10,000 pixels, above the limit of 5,000;", ox.load_image, path, max_pixels=5000)
    assert ox.load_image(path, max_pixels=10_000).shape == (100, 100, 3)


def test_pixel_limit_applies_to_npy_from_its_header(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.zeros((100, 100, 3), np.float32))
    refused(r"big\.npy is 100 x 100", ox.load_image, path, max_pixels=5000)


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "many"])
def test_pixel_limit_must_be_a_positive_integer(tmp_path, bad):
    refused(r"max_pixels must be a positive integer", ox.load_image, save(tmp_path, "a.png", rgb()), max_pixels=bad)


def test_directory_as_image_is_named_a_directory(tmp_path):
    refused(r"is a directory, not an image file", ox.load_image, tmp_path)


def test_missing_image_file(tmp_path):
    refused(r"image file not found: .*nope\.png", ox.load_image, tmp_path / "nope.png")


def test_text_file_named_png_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    refused(r"not an image.*notes\.png", ox.load_image, path)


def test_empty_file_is_not_an_image(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    refused(r"not an image.*empty\.jpg", ox.load_image, path)


def test_unreadable_file_is_called_unreadable_not_corrupt(tmp_path, monkeypatch):
    path = save(tmp_path, "locked.png", rgb())

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", denied)
    refused(r"cannot read .*locked\.png: permission denied; make the file readable", ox.load_image, path)


def test_sixteen_bit_png_is_scaled_to_0_255(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    loaded = ox.load_image(path, channels=1)
    np.testing.assert_allclose(loaded[0, :, 0], [0, 100, 255], atol=1e-3)


def test_palette_png_with_transparency_loses_its_alpha_for_rgb(tmp_path):
    palette = Image.new("P", (4, 4))
    palette.putpalette([10, 20, 30] + [200, 100, 50] * 255)
    palette.info["transparency"] = 0
    path = tmp_path / "pal.png"
    palette.save(path, transparency=0)
    loaded = ox.load_image(path)
    assert loaded.shape == (4, 4, 3) and np.all(loaded == [10, 20, 30])


def test_grey_with_alpha_becomes_rgb(tmp_path):
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([np.full((5, 5), 77, np.uint8), np.full((5, 5), 9, np.uint8)]), "LA").save(path)
    assert np.all(ox.load_image(path) == 77)


def test_one_bit_image_is_black_and_white(tmp_path):
    path = tmp_path / "bits.png"
    Image.fromarray(np.eye(4, dtype=bool)).save(path)
    loaded = ox.load_image(path, channels=1)[:, :, 0]
    np.testing.assert_array_equal(loaded, np.eye(4) * 255)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=100)  # pure red
    loaded = ox.load_image(path)
    assert loaded.shape == (8, 8, 3) and loaded[..., 0].mean() > 200 and loaded[..., 1:].mean() < 60


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), (255, 0, 0)), Image.new("RGB", (6, 6), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    loaded = ox.load_image(path)
    assert loaded[..., 0].mean() > 200 and loaded[..., 2].mean() < 50


def test_png_named_jpg_is_read_by_its_content(tmp_path):
    pixels = rgb(10, 10)
    path = save(tmp_path, "really_png.jpg", pixels, format="PNG")
    np.testing.assert_array_equal(ox.load_image(path), pixels.astype(np.float32))


def test_npy_with_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[None, 1]], dtype=object), allow_pickle=True)
    refused(r"cannot read image array .*objects\.npy", ox.load_image, path)


def test_float_tiff_beyond_255_is_refused(tmp_path):
    path = tmp_path / "hdr.tiff"
    Image.fromarray(np.full((4, 4), 1000.0, np.float32), "F").save(path)
    refused(r"image values must lie in 0\.\.255, got 1000", ox.load_image, path, channels=1)


# ---- arrays ---------------------------------------------------------------------------------

def test_float_array_in_unit_range_warns_naming_the_fix(model, image):
    with pytest.warns(OnnxplainWarning, match=r"image \* 255"):
        result = ox.Occlusion(model).attribute(image / 255, window=16)
    assert any("image * 255" in w for w in result.warnings)
    assert any("image * 255" in w for w in result.record()["warnings"])


def test_unit_range_warning_only_for_floats(model, image):
    with _no_warning():
        result = ox.Occlusion(model).attribute(image, window=16)
        ox.load_image(np.ones((SIDE, SIDE, 3), np.uint8))
    assert result.warnings == [] and result.record()["warnings"] == []


@pytest.mark.parametrize("value, match", [(np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"),
                                          (300.0, r"0\.\.255, got"), (-4.0, r"0\.\.255, got")])
def test_out_of_range_values_are_refused(model, image, value, match):
    bad = image.copy()
    bad[3, 4, 1] = value
    refused(match, ox.RISE(model).attribute, bad, n_masks=8)


@pytest.mark.parametrize("array, match", [
    (np.zeros((SIDE, SIDE, 3), bool), "dtype must be uint8 or float, got bool"),
    (np.zeros((SIDE, SIDE, 3), complex), "dtype must be uint8 or float, got complex"),
    (np.zeros((SIDE, SIDE, 3), object), "dtype must be uint8 or float, got object"),
    (np.zeros((1, SIDE, SIDE, 3), np.float32), r"H x W or H x W x C, got shape \(1, 64, 64, 3\)"),
    (np.zeros((0, SIDE, 3), np.float32), r"H x W or H x W x C, got shape \(0, 64, 3\)"),
    (np.zeros((SIDE, SIDE, 2), np.float32), r"2 channels but the model takes 3"),
    (np.zeros((32, 32, 3), np.float32), r"32 x 32 but the model takes 64 x 64; load it with onnxplain.load_image"),
])
def test_malformed_arrays_are_refused(model, array, match):
    refused(match, ox.Occlusion(model).attribute, array)


def test_a_list_is_not_an_image(model):
    refused(r"must be a numpy array, got list", ox.Occlusion(model).attribute, [[0.0]])


@pytest.mark.parametrize("layout", ["fortran", "reversed", "strided", "big-endian", "uint8", "grey"])
def test_unusual_layouts_give_the_same_map(model, image, layout):
    plain = ox.RISE(model).attribute(image, n_masks=32, seed=1)
    variant = {"fortran": lambda: np.asfortranarray(image),
               "reversed": lambda: image[::-1][::-1],
               "strided": lambda: np.repeat(image, 2, axis=1)[:, ::2],
               "big-endian": lambda: image.astype(">f4"),
               "uint8": lambda: image.astype(np.uint8),
               "grey": lambda: None}[layout]()
    if variant is None:  # a grey image is repeated into the three channels
        grey = image[:, :, 0]
        plain = ox.RISE(model).attribute(np.repeat(grey[:, :, None], 3, axis=2), n_masks=32, seed=1)
        variant = grey
    result = ox.RISE(model).attribute(variant, n_masks=32, seed=1)
    np.testing.assert_array_equal(result[result.targets[0]], plain[plain.targets[0]])


# ---- models ---------------------------------------------------------------------------------

def graph_model(nodes, inputs, outputs, initializers=(), opset=17) -> bytes:
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def pooled_classifier(extra_nodes=(), extra_inputs=(), output_shape=("N", 3), classes: int = 3, head: str = "pooled",
                      input_shape=("N", 3, 8, 8), input_type=TensorProto.FLOAT, outputs=None) -> bytes:
    """x (N, 3, 8, 8) -> mean over H, W -> (N, 3) -> `head` ... -> MatMul -> scores."""
    w = numpy_helper.from_array(np.eye(3, classes, dtype=np.float32), "w")
    axes = numpy_helper.from_array(np.array([2, 3], np.int64), "axes")
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["pooled"], keepdims=0), *extra_nodes,
             helper.make_node("MatMul", [head, "w"], ["scores"])]
    x = helper.make_tensor_value_info("x", input_type, list(input_shape))
    outs = outputs or [helper.make_tensor_value_info("scores", TensorProto.FLOAT, list(output_shape))]
    return graph_model(nodes, [x, *extra_inputs], outs, [w, axes], opset=18)


def test_directory_as_model_is_named_a_directory(tmp_path):
    refused(r"is a directory, not an \.onnx model file", ox.Model, tmp_path)


def test_missing_model_file(tmp_path):
    refused(r"model file not found", ox.Model, tmp_path / "none.onnx")


def test_corrupt_model_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00garbage" * 10)
    refused(r"cannot load ONNX model .*junk\.onnx", ox.Model, path)


def test_model_bytes_that_are_not_onnx():
    refused(r"cannot load ONNX model <bytes>", ox.Model, b"not a model")


def test_model_of_the_wrong_type():
    refused(r"a model must be an \.onnx path, bytes, an InferenceSession or a callable, got int", ox.Model, 42)


def test_second_input_not_fed_names_constants():
    scale = helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1])
    data = pooled_classifier([helper.make_node("Mul", ["pooled", "scale"], ["scaled"])], [scale], head="scaled")
    refused(r"\['scale'\] are not fed; give their values with constants=", ox.Model, data, preset="unit")
    fed = ox.Model(data, preset="unit", constants={"scale": np.array([2.0], np.float32)}, progress=False)
    scores = fed.predict(np.full((8, 8, 3), 51.0, np.float32), "raw")
    np.testing.assert_allclose(scores, [0.4, 0.4, 0.4], rtol=1e-6)


def test_model_failing_at_run_time_is_one_error():
    index = numpy_helper.from_array(np.array([7], np.int64), "index")  # column 7 of 3: fails when run
    data = pooled_classifier([helper.make_node("Gather", ["pooled", "index"], ["picked"], axis=1),
                              helper.make_node("Concat", ["picked", "picked", "picked"], ["head"], axis=1)],
                             head="head")
    model_proto = onnx.load_from_string(data)
    model_proto.graph.initializer.append(index)
    broken = ox.Model(model_proto.SerializeToString(), preset="unit", output="logits", progress=False)
    refused(r"the model failed on a batch of shape \[1, 3, 8, 8\]", broken.predict, np.zeros((8, 8, 3), np.float32))


def test_model_emitting_nan_is_refused():
    zero = numpy_helper.from_array(np.zeros(1, np.float32), "zero")
    data = pooled_classifier([helper.make_node("Div", ["zero", "zero"], ["nan"]),
                              helper.make_node("Add", ["pooled", "nan"], ["poisoned"])], head="poisoned")
    proto = onnx.load_from_string(data)
    proto.graph.initializer.append(zero)
    nan_model = ox.Model(proto.SerializeToString(), preset="unit", output="logits", progress=False)
    refused(r"NaN or infinite scores", nan_model.predict, np.zeros((8, 8, 3), np.float32))


def test_rank_two_input_is_a_table_not_an_image_classifier():
    w = numpy_helper.from_array(np.ones((12, 3), np.float32), "w")
    data = graph_model([helper.make_node("MatMul", ["x", "w"], ["scores"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12])],
                       [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])], [w])
    assert ox.Model(data).modality == "tabular"  # read as a table of 12 columns
    refused(r"model has inputs \[\('x', \['N', 12\]\)\]; name the image input with input_name=",
            lambda source: ox.Model(source, modality="image"), data)


def test_string_input_is_refused():
    data = graph_model([helper.make_node("Identity", ["x"], ["y"]),
                        helper.make_node("Constant", [], ["scores"], value=numpy_helper.from_array(
                            np.zeros((1, 3), np.float32)))],
                       [helper.make_tensor_value_info("x", TensorProto.STRING, [1, 3, 8, 8])],
                       [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3]),
                        helper.make_tensor_value_info("y", TensorProto.STRING, [1, 3, 8, 8])])
    refused(r"has type tensor\(string\)", ox.Model, data)


def test_output_that_is_not_class_scores_is_refused():
    axis = numpy_helper.from_array(np.array([2], np.int64), "axis")
    data = pooled_classifier([helper.make_node("Unsqueeze", ["logits", "axis"], ["column"]),
                              helper.make_node("Concat", ["column", "column"], ["pairs"], axis=2)],
                             outputs=[helper.make_tensor_value_info("pairs", TensorProto.FLOAT, ["N", 3, 2])])
    proto = onnx.load_from_string(data)
    proto.graph.node[-1].output[0] = "logits"  # MatMul -> logits -> (N, 3, 1) -> (N, 3, 2)
    proto.graph.node.insert(len(proto.graph.node), proto.graph.node.pop(1))
    proto.graph.initializer.append(axis)
    refused(r"model output 'pairs' has shape \['N', 3, 2\]; a classifier must output", ox.Model,
            proto.SerializeToString())


def test_two_score_outputs_need_output_name():
    outs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["N", 3])]
    refused(r"output_name=", ox.Model, pooled_classifier(outputs=outs), preset="unit")


def test_callable_returning_the_wrong_row_count_is_refused(image):
    model = ox.Model(lambda batch: np.zeros((1, 3), np.float32), input_size=(SIDE, SIDE), layout="NHWC",
                     preset="unit", output="logits", progress=False)
    refused(r"rows|batch", ox.RISE(model).attribute, image, n_masks=16)


def test_dynamic_resolution_needs_input_size():
    refused(r"dynamic resolution; pass input_size=\(H, W\)", ox.Model,
            pooled_classifier(input_shape=("N", 3, "H", "W")), preset="unit")


# ---- parameters -----------------------------------------------------------------------------

SEEDED = {
    "rise": lambda m, x, seed: ox.RISE(m).attribute(x, n_masks=8, seed=seed),
    "occlusion": lambda m, x, seed: ox.Occlusion(m).attribute(x, window=32, seed=seed),
    "multi": lambda m, x, seed: ox.Causal(m).attribute(x, iterations=1, seed=seed),
    "random": lambda m, x, seed: ox.RandomMap(m).attribute(x, seed=seed),
    "ig": lambda m, x, seed: ox.IG(m).attribute(x, patch=16, stride=16, seed=seed),
    "mif_lif": lambda m, x, seed: fd.mif_lif(m, x, np.zeros((SIDE, SIDE), np.float32), fractions=[0, 0.5], seed=seed),
    "deletion": lambda m, x, seed: fd.deletion(m, x, np.zeros((SIDE, SIDE), np.float32), step=2048, seed=seed),
}


@pytest.mark.parametrize("method", sorted(SEEDED))
@pytest.mark.parametrize("seed", [2**64, -1, 1.5, True, "7"])
def test_bad_seed_is_refused_by_every_method(model, image, method, seed):
    refused(r"seed must be an integer in 0\.\.2\^64-1", SEEDED[method], model, image, seed)


@pytest.mark.parametrize("method", ["rise", "random", "ig"])
def test_largest_seed_works(model, image, method):
    assert SEEDED[method](model, image, 2**64 - 1).seed == 2**64 - 1


def test_counterfactual_seed_is_checked(model, image):
    from onnxplain import counterfactual as cf

    probabilities = model.predict(image)
    pair = cf.Pair(image, image[::-1].copy(), 0, 1, probabilities, probabilities)
    refused(r"seed must be an integer", cf.discriminative_map, model, pair, "random", seed=-3)


@pytest.mark.parametrize("method", [ox.IG, ox.PMI])
def test_weak_information_budget_warns(model, image, method):
    with pytest.warns(OnnxplainWarning, match=r"budget 150 evaluates under 1/16 of the 3249 patch positions.*--budget"):
        result = method(model).attribute(image, patch=8, stride=1, budget=150)
    assert result.evaluations <= 151 and "budget 150" in result.record()["warnings"][0]


def test_sufficient_information_budget_does_not_warn(model, image):
    with _no_warning():
        result = ox.IG(model).attribute(image, patch=8, stride=1, budget=400)  # above 3249 / 16
    assert result.warnings == []


def test_vacuous_causal_criterion_warns(model):
    """The red square is class 0, and so is the black mask value alone: every pixel set is 'sufficient'."""
    red = ox.load_image(demo.demo_image_paths()[0], model.input_size)
    assert np.argmax(model.predict(red)) == np.argmax(model.predict(np.zeros_like(red))) == 0
    with pytest.warns(OnnxplainWarning, match=r"passes criterion 'top1' with every pixel at the mask value.*--baseline"):
        result = ox.Causal(model).attribute(red, iterations=2, max_explanations=1)
    assert result.record()["warnings"]


def test_meaningful_causal_criterion_does_not_warn(model, image):
    with _no_warning():
        result = ox.Causal(model).attribute(image, iterations=2, max_explanations=1)
    assert result.warnings == []


@pytest.mark.parametrize("call, match", [
    (lambda m, x: ox.IG(m).attribute(x, budget=0), r"budget must be a positive integer"),
    (lambda m, x: ox.IG(m).attribute(x, patch=65), r"patch 65 is larger than the image"),
    (lambda m, x: ox.IG(m).attribute(x, patch=4, stride=5), r"stride 5 is larger than the patch 4"),
    (lambda m, x: ox.IG(m).attribute(x, mode="fast"), r"mode must be one of"),
    (lambda m, x: ox.IG(m).attribute(x, sampler="magic"), r"magic"),
    (lambda m, x: ox.information_maps(m, x, windowsize=3), r"unknown options \['windowsize'\]"),
    (lambda m, x: ox.RISE(m).attribute(x, n_masks=0), r"n_masks"),
    (lambda m, x: ox.RISE(m).attribute(x, p_keep=1.5), r"p_keep"),
    (lambda m, x: ox.RISE(m).attribute(x, p_keep=float("nan")), r"p_keep"),
    (lambda m, x: ox.RISE(m).attribute(x, grid=0), r"grid"),
    (lambda m, x: ox.Occlusion(m).attribute(x, window=0), r"window"),
    (lambda m, x: ox.Occlusion(m).attribute(x, window=500), r"window"),
    (lambda m, x: ox.Occlusion(m).attribute(x, baseline="foo"), r"baseline must be 'mean', 'blur'"),
    (lambda m, x: ox.Occlusion(m).attribute(x, baseline=300), r"constant baseline is a pixel value in 0\.\.255"),
    (lambda m, x: ox.Occlusion(m).attribute(x, target=99), r"target 99 is not a class index in 0\.\.2"),
    (lambda m, x: ox.Occlusion(m).attribute(x, target="top0"), r"'top' or 'topK'"),
    (lambda m, x: ox.Occlusion(m).attribute(x, target=[]), r"target list is empty"),
    (lambda m, x: ox.Occlusion(m).attribute(x, deadline=-1), r"deadline must be a positive number"),
    (lambda m, x: ox.Occlusion(m).attribute(x, features=np.zeros((3, 3), int)), r"features|shape"),
    (lambda m, x: ox.Causal(m).attribute(x, criterion="best"), r"criterion must be one of"),
    (lambda m, x: ox.Causal(m).attribute(x, fraction=0), r"fraction must be a number in \(0, 1\]"),
    (lambda m, x: ox.Causal(m).attribute(x, max_overlap=2), r"max_overlap is a Dice coefficient"),
    (lambda m, x: ox.Causal(m).attribute(x, target=[0, 1]), r"multi explains one target at a time"),
    (lambda m, x: fd.mif_lif(m, x, np.zeros((SIDE, SIDE)), fractions=[0.5, 2]), r"fraction"),
    (lambda m, x: fd.mif_lif(m, x, np.zeros((3, 3))), r"shape|64"),
    (lambda m, x: fd.mif_lif(m, x, np.zeros((SIDE, SIDE), complex)), r"real numbers .* got dtype complex128"),
    (lambda m, x: fd.mif_lif(m, x, np.zeros((SIDE, SIDE), bool)), r"real numbers .* got dtype bool"),
    (lambda m, x: ox.Model(demo.demo_model_path(), batch_size=0), r"batch_size must be a positive integer"),
    # found by a hostile-input sweep (2026-12-01): each was a NaN map, a raw numpy/OS error or a long hang
    (lambda m, x: ox.Occlusion(m).attribute(x, window=8, stride=9), r"stride 9 is larger than the window 8.*stride <= window"),
    (lambda m, x: ox.IG(m).attribute(x, patch=23, budget=50), r"windows of 3 x 27 x 27 values.*limit of 2048.*smaller patch"),
    (lambda m, x: ox.PMI(m).attribute(x, patch=63, budget=50), r"limit of 2048"),
    (lambda m, x: ox.IG(m).attribute(x, sampler="gaussian", frame=1000, budget=50), r"frame 1000\), over its limit"),
    (lambda m, x: ox.Model(demo.demo_model_path(), batch_size=10**9), r"batch_size 1000000000 .* above batch_memory"),
    (lambda m, x: ox.Model(demo.demo_model_path(), batch_memory=0), r"batch_memory must be a positive number"),
    (lambda m, x: ox.Model(lambda b: b[:, :2, 0, 0], input_size=(30000, 30000)), r"one input .* above batch_memory"),
    (lambda m, x: ox.Model(lambda b: b[:, :2, 0, 0], input_size="64"), r"input_size must be \(H, W\), two integers"),
    (lambda m, x: ox.Model(lambda b: b[:, :2, 0, 0], input_size=(16.7, 16)), r"input_size must be \(H, W\)"),
    (lambda m, x: ox.Model(lambda b: b[:, :0, 0, 0], input_size=(8, 8)).predict(x[:8, :8]), r"no class to explain"),
    (lambda m, x: ox.Model(lambda b: b[:, :2, 0, 0] - 0.5, input_size=(8, 8), output="probabilities").predict(x[:8, :8]),
     r"output='probabilities' was given, but the model's scores hold values in -0\.5.*outside 0\.\.1.*output='logits'"),
    (lambda m, x: ox.load_image(x, (0, 0)), r"size must be positive"),
    (lambda m, x: ox.load_image(x, 64), r"size must be \(H, W\)"),
    (lambda m, x: ox.load_image(x, (64.5, 64)), r"size must be \(H, W\)"),
    (lambda m, x: ox.load_image(x, (10**6, 10**6)), r"more than 50,000,000 pixels"),
    (lambda m, x: ox.Model(demo.demo_model_path(), layout="NHWC", preset="imagenet"),
     r"layout='NHWC' reads input shape .*3, 64, 64\] as 64 channels of 3 x 64 pixels; the shape looks NCHW: pass "
     r"layout='NCHW'"),
])
def test_bad_parameters_are_refused_naming_them(model, image, call, match):
    refused(match, call, model, image)


def test_unknown_evaluate_option_is_refused_before_the_run_folder_records_it(model, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(rgb(SIDE, SIDE)).save(folder / "a.png")
    out = tmp_path / "run"
    refused(r"method 'rise' has no option 'masks'; its options are .*n_masks", evaluation.evaluate, model, folder,
            ["rise"], ["mif-lif"], out, method_options={"rise": {"masks": 8}}, progress=False)
    assert not (out / "config.json").exists()
    refused(r"method_options name 'occlusion', which are not among the methods", evaluation.evaluate, model, folder,
            ["rise"], ["mif-lif"], out, method_options={"occlusion": {"window": 8}}, progress=False)



@pytest.mark.parametrize("metric, options, match", [
    ("deletion", {"step": 0}, r"step must be a positive integer, got 0"),
    ("insertion", {"patch": 0}, r"patch must be an integer in 1\.\."),
    ("mif-lif", {"fractions": [0.5, 0.2]}, r"fractions must be at least two increasing values"),
    ("mif-lif", {"perturbation": "zero"}, r"perturbation must be one of"),
    ("mif-lif", {"perturbation": "noise", "noise_sigma": float("nan")}, r"noise_sigma must be a finite number >= 0"),
    ("road", {"perturbation": "blur"}, r"road always perturbs by noisy linear imputation"),
    ("road", {"score": "odds"}, r"score must be one of"),
    ("deletion", {"fractions": [0, 1]}, r"metric 'deletion' has no option 'fractions'.*its options are step, patch"),
    ("mif-lif", {"seed": 3}, r"has no option 'seed' \(the run sets target, label and seed itself\)"),
])
def test_bad_metric_options_are_refused_before_any_image_is_evaluated(model, tmp_path, metric, options, match):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(rgb(SIDE, SIDE)).save(folder / "a.png")
    out = tmp_path / "run"
    evaluations = model.evaluations
    refused(match, evaluation.evaluate, model, folder, ["random"], [metric], out,
            metric_options={metric: options}, progress=False)
    assert model.evaluations == evaluations and not out.exists()


def test_metric_options_for_a_metric_not_run_are_refused(model, tmp_path):
    refused(r"metric_options name 'road', which are not among the metrics \['deletion'\]", evaluation.evaluate,
            model, tmp_path, ["random"], ["deletion"], tmp_path / "run", metric_options={"road": {"patch": 2}})


# ---- command line ---------------------------------------------------------------------------

def run(argv, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def explain_argv(out, *extra, image=None):
    return ["explain", demo.demo_model_path(), image or demo.demo_image_paths()[0], "--preset", "unit",
            "--out", out, "--quiet", *extra]


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # argparse's errors too: no usage block
    return lines[0]


@pytest.mark.parametrize("extra, match", [
    (["--seed", str(2**64)], r"argument --seed: expected an integer in 0\.\.2\^64-1"),
    (["--seed", "-1"], r"argument --seed: expected an integer in 0\.\.2\^64-1"),
    (["--baseline", "foo"], r"argument --baseline: expected 'mean', 'blur' or a pixel value 0\.\.255, got 'foo'"),
    (["--baseline", "300"], r"argument --baseline: expected 'mean', 'blur' or a pixel value"),
    (["--baseline", "nan"], r"argument --baseline: expected 'mean', 'blur' or a pixel value"),
    (["--max-pixels", "0"], r"argument --max-pixels: expected a positive integer"),
    (["--max-pixels", "100"], r"64 x 64 = 4,096 pixels, above the limit of 100; .*--max-pixels"),
    (["--target", "abc"], r"--target must be 'top', 'topK' or class ids"),
    (["--target", "9"], r"target 9 is not a class index"),
    (["--method", "gradcam"], r"argument --method: invalid choice: 'gradcam'"),
    (["--constant", "nofile"], r"--constant must look like NAME=FILE\.npy"),
    (["--constant", "a=/no/such.npy"], r"--constant a: cannot read /no/such\.npy"),
    (["--input-size", "abc"], r"argument --input-size: expected H,W"),
    (["--batch-size", "0"], r"batch_size must be a positive integer"),
    (["--method", "ig", "--sampler", "onnx"], r"--sampler onnx needs --sampler-model PATH"),
    (["--labels", "/no/such/names.json"], r"cannot read class names from /no/such/names\.json"),
    (["--window", "0"], r"window"),
    (["--window", "8", "--stride", "16"], r"stride 16 is larger than the window 8"),
    (["--method", "rise", "--masks", "0"], r"n_masks must be a positive integer, got 0 \(--masks\)$"),
    (["--method", "rise", "--p-keep", "2"], r"p_keep must be a number in \(0, 1\], got 2\.0 \(--p-keep\)$"),
    (["--method", "multi", "--max-explanations", "0"], r"max_explanations must .* \(--max-explanations\)$"),
])
def test_cli_bad_flags_exit_2_with_one_line(tmp_path, capsys, extra, match):
    code, out, err = run(explain_argv(tmp_path / "out", *extra), capsys)
    assert code == 2
    assert __import__("re").search(match, one_error_line(err)), err


def test_cli_out_that_is_a_file_is_refused_before_loading_anything(tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    code, _, err = run(["explain", tmp_path / "missing.onnx", "x.png", "--out", blocker], capsys)
    assert code == 2 and "--out" in err and "is a file, not a folder; choose another --out" in err


def test_cli_out_that_cannot_be_created_is_refused(tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    code, _, err = run(explain_argv(blocker / "sub"), capsys)
    assert code == 2 and "--out" in one_error_line(err) and "cannot be written" in err


@pytest.mark.parametrize("command", ["counterfactual", "evaluate", "demo"])
def test_every_command_checks_its_out_first(tmp_path, capsys, command):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    argv = {"counterfactual": ["counterfactual", demo.demo_model_path(), demo.demo_image_paths()[0]],
            "evaluate": ["evaluate", demo.demo_model_path(), tmp_path],
            "demo": ["demo"]}[command]
    code, _, err = run([*argv, "--out", blocker], capsys)
    assert code == 2 and "choose another --out" in err


def test_cli_unreadable_labels_are_found_before_the_work(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "names.json"
    bad.write_text("{not json")
    monkeypatch.setattr(ox.Model, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    code, _, err = run(explain_argv(tmp_path / "out", "--labels", bad), capsys)
    assert code == 2 and "cannot read class names from" in err


def test_cli_labels_that_are_not_a_list(tmp_path, capsys):
    names = tmp_path / "names.json"
    names.write_text('{"a": 1}')
    code, _, err = run(explain_argv(tmp_path / "out", "--labels", names), capsys)
    assert code == 2 and "must hold a JSON list of class names" in err


def evaluate_argv(tmp_path, *extra):
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    for i in range(2):
        Image.fromarray(rgb(SIDE, SIDE, seed=i)).save(folder / f"{i}.png")
    return ["evaluate", demo.demo_model_path(), folder, "--preset", "unit", "--methods", "rise",
            "--metrics", "deletion", "--step", "2048", "--masks", "8", "--out", tmp_path / "run", "--quiet", *extra]


def test_cli_unknown_option_key_then_the_corrected_command_runs(tmp_path, capsys):
    code, _, err = run(evaluate_argv(tmp_path, "--option", "rise.p_keeps=0.3"), capsys)
    assert code == 2 and "has no option 'p_keeps'" in err and "--option rise.KEY=VALUE" in err
    code, out, err = run(evaluate_argv(tmp_path, "--option", "rise.p_keep=0.3"), capsys)
    assert code == 0, err
    assert "2 images" in out


@pytest.mark.parametrize("option, match", [("rise", r"--option must look like METHOD\.KEY=VALUE"),
                                           ("occlusion.window=8", r"not among the methods")])
def test_cli_malformed_or_stray_options(tmp_path, capsys, option, match):
    code, _, err = run(evaluate_argv(tmp_path, "--option", option), capsys)
    assert code == 2 and __import__("re").search(match, err)


def test_cli_evaluate_bad_step_fails_before_any_image(tmp_path, capsys):
    code, _, err = run(evaluate_argv(tmp_path, "--step", "0"), capsys)
    assert code == 2 and err.strip() == "onnxplain: error: step must be a positive integer, got 0 (--step)"
    assert not (tmp_path / "run" / "records.jsonl").exists()

def test_cli_evaluate_label_map_not_an_object(tmp_path, capsys):
    labels = tmp_path / "labels.json"
    labels.write_text("[1, 2]")
    code, _, err = run(evaluate_argv(tmp_path, "--label-map", labels), capsys)
    assert code == 2 and "--label-map must be a JSON object image name -> class id" in err


def test_cli_evaluate_empty_folder(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(["evaluate", demo.demo_model_path(), empty, "--out", tmp_path / "run"], capsys)
    assert code == 2 and "no images" in err


def test_cli_model_directory(tmp_path, capsys):
    code, _, err = run(["explain", tmp_path, demo.demo_image_paths()[0], "--out", tmp_path / "o"], capsys)
    assert code == 2 and "is a directory, not an .onnx model file" in err


def test_cli_internal_failure_exits_1_with_a_short_message(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("index arithmetic went wrong\nsecond line")

    monkeypatch.setattr(cli, "load_image", broken)  # a ValueError that is not bad input is a bug: exit 1
    code, _, err = run(explain_argv(tmp_path / "out"), capsys)
    assert code == 1
    assert one_error_line(err) == ("onnxplain: internal error: ValueError: index arithmetic went wrong "
                                   "(please report it with the command)")


def test_cli_interrupt_exits_130(tmp_path, capsys, monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ox.Occlusion, "attribute", interrupted)
    code, _, err = run(explain_argv(tmp_path / "out"), capsys)
    assert code == 130 and "interrupted" in err


def test_cli_help_exits_0(capsys):
    assert run(["explain", "--help"], capsys)[0] == 0


def test_cli_tiny_image_warns_on_stderr_and_in_result_json(tmp_path, capsys):
    dot = save(tmp_path, "dot.png", np.full((2, 2, 3), 120, np.uint8))
    code, out, err = run(explain_argv(tmp_path / "out", "--window", "32", image=dot), capsys)
    assert code == 0, err
    assert err.count("onnxplain: warning:") == 1 and "2 x 2, enlarged more than 2x" in err
    record = json.loads((tmp_path / "out" / "result.json").read_text())
    assert len(record["warnings"]) == 1 and "enlarged" in record["warnings"][0]


def test_cli_weak_budget_warns_on_stderr_and_in_result_json(tmp_path, capsys):
    code, _, err = run(explain_argv(tmp_path / "out", "--method", "ig", "--patch", "8", "--budget", "150"), capsys)
    assert code == 0, err
    assert "onnxplain: warning: budget 150 evaluates under 1/16" in err
    assert json.loads((tmp_path / "out" / "result.json").read_text())["warnings"][0].startswith("budget 150")


def test_cli_float_npy_in_unit_range_warns_once(tmp_path, capsys):
    path = tmp_path / "unit.npy"
    np.save(path, ox.load_image(demo.demo_image_paths()[0]) / 255)
    code, _, err = run(explain_argv(tmp_path / "out", "--window", "32", image=path), capsys)
    assert code == 0 and err.count("image * 255") == 1
    assert json.loads((tmp_path / "out" / "result.json").read_text())["warnings"] == [
        "image values all lie in 0..1 but images are 0..255: if it was scaled to 0..1, pass image * 255"]


def test_cli_truncated_image_exits_2(tmp_path, capsys):
    path = save(tmp_path, "cut.jpg", rgb(200, 200))
    path.write_bytes(path.read_bytes()[:1500])
    code, _, err = run(explain_argv(tmp_path / "out", image=path), capsys)
    assert code == 2 and "truncated or corrupt" in one_error_line(err)


# ---- threads and the core -------------------------------------------------------------------

def test_threads_sharing_a_model_get_the_serial_answers(model, image):
    seeds = [0, 1, 2, 3]
    serial = {s: ox.RISE(model).attribute(image, n_masks=64, seed=s) for s in seeds}
    results: dict[int, ox.Explanation] = {}

    def work(s):
        results[s] = ox.RISE(model).attribute(image, n_masks=64, seed=s)

    threads = [threading.Thread(target=work, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in seeds:
        t = serial[s].targets[0]
        np.testing.assert_array_equal(results[s][t], serial[s][t])
        assert results[s].evaluations == serial[s].evaluations == 65


def test_core_window_positions_of_an_absurd_axis_is_instant():
    """Counted, not walked: 2^40 positions are refused as memory, not looped over."""
    with pytest.raises(MemoryError):
        _core.window_positions(2**40, 1, 1)
    np.testing.assert_array_equal(_core.window_positions(10, 4, 3), [0, 3, 6])
    np.testing.assert_array_equal(_core.window_positions(11, 4, 3), [0, 3, 6, 7])


def test_core_occlusion_window_count_overflow_is_refused():
    with pytest.raises(ValueError, match="overflows int64"):
        _core.occlusion_masks(2**62, 2**62, 1, 1, 0, 0)


def test_core_feature_count_overflow_is_refused():
    with pytest.raises(ValueError, match="overflows int64"):
        _core.feature_count(2**62, 2**62, 1)
    assert _core.feature_count(2**63 - 1, 1, 2**62) == 2


def test_core_error_in_a_worker_thread_is_an_onnxplain_error():
    with pytest.raises(OnnxplainError, match="item 5 failed"):
        _core._test_parallel_throw(64, 4, 5)


def test_core_refuses_wrong_dtypes_and_layouts():
    with pytest.raises(TypeError, match="must have dtype float32"):
        _core.accumulate(np.zeros((1, 1)), np.zeros((1, 2, 2), np.float32), np.zeros((1, 2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.feature_masks(np.zeros((4, 4), np.int32)[:, ::2], np.zeros((1, 1), np.float32))


def test_core_refuses_labels_out_of_range():
    with pytest.raises(ValueError):
        _core.feature_masks(np.full((2, 2), 5, np.int32), np.zeros((1, 2), np.float32))


# ---- fuzzing the command line ---------------------------------------------------------------

FLAG_VALUES = {
    "--method": st.sampled_from(["occlusion", "rise", "random", "ig", "pmi", "multi", "nope"]),
    "--target": st.sampled_from(["top", "top2", "top0", "1", "0,2", "7", "-1", "x", ""]),
    "--seed": st.sampled_from(["0", "5", str(2**64 - 1), str(2**64), "-3", "1e3", "s"]),
    "--baseline": st.sampled_from(["mean", "blur", "0", "255", "256", "-1", "nan", "inf", "foo"]),
    "--window": st.sampled_from(["16", "32", "0", "-4", "65", "x"]),
    "--stride": st.sampled_from(["8", "16", "0", "-1", "100"]),
    "--masks": st.sampled_from(["8", "16", "0", "-5"]),
    "--grid": st.sampled_from(["2", "4", "0", "65"]),
    "--p-keep": st.sampled_from(["0.5", "0", "1", "1.5", "nan", "-0.1"]),
    "--patch": st.sampled_from(["8", "16", "0", "65"]),
    "--budget": st.sampled_from(["10", "40", "0", "-1"]),
    "--samples": st.sampled_from(["1", "2", "0", "-3"]),
    "--mode": st.sampled_from(["budgeted", "dense", "fast"]),
    "--sampler": st.sampled_from(["gaussian", "constant", "blur", "onnx", "x"]),
    "--criterion": st.sampled_from(["top1", "confidence", "any"]),
    "--fraction": st.sampled_from(["0.5", "0", "1", "2", "nan"]),
    "--iterations": st.sampled_from(["1", "2", "0"]),
    "--max-explanations": st.sampled_from(["1", "0"]),
    "--max-overlap": st.sampled_from(["0", "0.5", "2", "nan"]),
    "--preset": st.sampled_from(["unit", "imagenet", "caffe", "raw", "nope"]),
    "--output": st.sampled_from(["auto", "logits", "probabilities", "sigmoid", "x"]),
    "--input-size": st.sampled_from(["64,64", "32,32", "0,0", "a,b"]),
    "--layout": st.sampled_from(["NCHW", "NHWC", "CHW"]),
    "--channels": st.sampled_from(["3", "1", "0", "-2"]),
    "--batch-size": st.sampled_from(["auto", "1", "3", "0", "x"]),
    "--max-pixels": st.sampled_from(["100", "5000", "0", "x"]),
}


@settings(deadline=None, max_examples=30, suppress_health_check=list(HealthCheck))
@given(flags=st.dictionaries(st.sampled_from(sorted(FLAG_VALUES)), st.just(None), max_size=5), data=st.data())
def test_fuzzed_explain_flags_never_crash(tmp_path_factory, capsys, flags, data):
    """Any mix of flags and values exits 0, or 2 with one line naming the problem: never 1, never
    a traceback. Sizes are kept small so that every run is fast on the demo model."""
    argv = explain_argv(tmp_path_factory.mktemp("fuzz"), "--masks", "8", "--budget", "30", "--iterations", "1",
                        "--max-explanations", "1", "--samples", "1", "--patch", "16", "--stride", "16")
    for flag in flags:
        argv += [flag, data.draw(FLAG_VALUES[flag], label=flag)]
    code, _, err = run(argv, capsys)
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        line = one_error_line(err)
        assert line.startswith("onnxplain: error:") or "error: argument" in line, err


def test_saving_into_a_file_is_refused_naming_the_keyword(model, image, tmp_path):
    result = ox.Occlusion(model).attribute(image, window=16, stride=16)
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    refused(r"out_dir .*taken is a file, not a folder", result.save, blocker)
    refused(r"out_dir .*cannot be written", result.save, blocker / "sub")


def test_evaluate_exits_2_when_images_fail(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(rgb(SIDE, SIDE)).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"not a png")
    code, out, err = run(["evaluate", demo.demo_model_path(), folder, "--preset", "unit", "--methods", "occlusion",
                          "--metrics", "deletion", "--window", "16", "--stride", "16", "--attempts", "1",
                          "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 2 and "broken.png" in out + err and "1 failed" in out


def test_labels_of_another_length_warn(tmp_path, capsys):
    (tmp_path / "names.json").write_text(json.dumps(["a", "b"]))
    code, _, err = run(explain_argv(tmp_path / "out", "--labels", tmp_path / "names.json", "--method", "occlusion"),
                       capsys)
    assert code == 0 and "--labels has 2 names but the model has 3 classes: classes past the list go unnamed" in err


def test_changing_class_count_and_other_hostile_api_inputs_are_refused(model, image, tmp_path):
    calls = iter([3, 4])
    shifting = ox.Model(lambda b: np.zeros((len(b), next(calls)), np.float32), input_size=(8, 8), output="logits")
    shifting.predict(image[:8, :8])
    refused(r"returned 4 class columns after 3 before", shifting.predict, image[:8, :8])
    refused(r"noise must be a finite number >= 0", ox.IG(model).attribute, image, sampler="inpaint", noise=float("nan"))
    refused(r"got str; read a file with onnxplain.load_image", ox.RISE(model).attribute, "image.png")
    refused(r"out_dir is empty", ox.Occlusion(model).attribute(image, window=16, stride=16).save, "")
    with _no_warning():  # an all-black float image is black, not "scaled to 0..1"
        ox.Occlusion(model).attribute(np.zeros((SIDE, SIDE, 3), np.float32), window=16, stride=16)
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(rgb(SIDE, SIDE)).save(folder / "a.png")
    report = evaluation.evaluate(model, folder, "occlusion", "deletion", tmp_path / "run", progress=False,
                                 method_options={"occlusion": {"window": 16, "stride": 16}})
    assert [row["method"] for row in report.summary] == ["occlusion"]


def test_side_input_with_a_fixed_first_axis_is_fed_as_declared():
    """A side input declared (1, 3) is fed as given at every batch size (it used to be repeated to the
    batch, which onnxruntime refuses); a constant of the wrong shape is refused at load, naming constants=."""
    bias = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3])
    data = pooled_classifier(extra_nodes=[helper.make_node("Add", ["pooled", "b"], ["shifted"])], extra_inputs=[bias],
                             head="shifted")
    offset = np.float32([[0.0, 1.0, 2.0]])
    model = ox.Model(data, preset="unit", output="logits", batch_size=4, constants={"b": offset}, progress=False)
    images = np.random.default_rng(3).uniform(0, 255, (5, 8, 8, 3)).astype(np.float32)
    expected = images.mean(axis=(1, 2)) / 255.0 + offset
    np.testing.assert_allclose(model.predict(images, kind="logits"), expected, rtol=1e-5, atol=1e-5)
    refused(r"constants\['b'\] has shape \(5, 5\); the input takes \[1, 3\]", ox.Model, data, preset="unit",
            constants={"b": np.zeros((5, 5), np.float32)})


@pytest.mark.parametrize("sampler", ["learned", "blur", "inpaint"])
def test_a_frame_the_sampler_ignores_warns_and_a_bad_frame_is_refused_whatever_the_sampler(sampler):
    from onnxplain.information import make_sampler

    with pytest.warns(OnnxplainWarning, match=rf"frame=1000 \(CLI: --frame\) is the gaussian sampler's; the {sampler} "
                                              r"sampler ignores it"):
        make_sampler(sampler, frame=1000)
    refused(r"frame must be an integer >= 0, got -1", make_sampler, sampler, frame=-1)
    refused(r"sampler must be one of", make_sampler, "gausian", frame=1000)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_sampler(sampler)  # the default frame: nothing to say
        make_sampler("gaussian", frame=3)


def test_threads_providers_and_causal_options_are_checked_naming_them(model, image):
    for options, match in (({"threads": 10**5}, r"threads must be an integer in 0\.\.\d+ \(0: all cores\), got 100000"),
                           ({"threads": 1.5}, r"threads must be an integer"),
                           ({"providers": 5}, r"providers must be a list of onnxruntime provider names"),
                           ({"providers": ["NopeProvider"]}, r"\['NopeProvider'\] are not onnxruntime providers")):
        refused(match, ox.Model, demo.demo_model_path(), **options)
    assert ox.Model(demo.demo_model_path(), providers="CPUExecutionProvider").session.get_providers() == \
        ["CPUExecutionProvider"]  # one name is a list of one
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():  # a CPU build: dropped with a warning
        with pytest.warns(OnnxplainWarning, match=r"\['CUDAExecutionProvider'\] are not available"):
            ox.Model(demo.demo_model_path(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    for options, match in (({"min_area": 4.9}, r"min_area must be an integer >= 4 pixels, got 4\.9"),
                           ({"radius": float("nan")}, r"radius must be a finite number of pixels > 0, got nan"),
                           ({"part_size": "x"}, r"part_size must be a positive integer, got 'x'"),
                           ({"growth": "2"}, r"growth must be a finite number >= 1, got '2'"),
                           ({"max_overlap": "0"}, r"max_overlap is a Dice coefficient in \[0, 1\], got '0'")):
        evaluations = model.evaluations
        refused(match, ox.Causal(model).attribute, image, **options)
        assert model.evaluations == evaluations  # refused before any model call


def test_metrics_and_pairs_warn_about_an_image_scaled_to_0_1(model, image):
    from onnxplain import counterfactual as cf

    attribution = np.random.default_rng(0).random(model.input_size).astype(np.float32)
    with pytest.warns(OnnxplainWarning, match=r"image values all lie in 0\.\.1"):
        fd.deletion(model, image / 255, attribution)
    with pytest.warns(OnnxplainWarning, match=r"image values all lie in 0\.\.1"):
        cf.make_pair(model, image / 255, image[::-1] / 255, class_a=0, class_b=1, min_confidence=None)


def test_callable_models_that_return_non_numbers_are_named(image):
    for output, kind in ((lambda b: np.array([["a", "b"]] * len(b)), "<U1"), (lambda b: b[:, :2, 0, 0] * 1j, "complex")):
        refused(rf"model returned {kind}\w* values; a classifier returns real numbers",
                ox.Model(output, input_size=(8, 8)).predict, image[:8, :8])


def test_explanation_names_and_missing_targets_are_refused_clearly(model, image):
    result = ox.Occlusion(model).attribute(image, window=16, stride=16)
    for names in ("abc", [1, 2, 3], {"0": "a"}):
        with pytest.raises(OnnxplainError, match=r"names must be a list of class-name strings"):
            result.names = names
    result.names = ["a", "b", "c"]
    refused(r"the explanation has no map for class 7; it has \[1\]", result.__getitem__, 7)


@pytest.mark.parametrize("fractions", ["0,0.5", 0.5, [0, "a"]])
def test_fractions_that_are_not_a_list_of_numbers_are_refused(model, image, fractions):
    refused(r"fractions must be at least two increasing values in \[0, 1\]", fd.mif_lif, model, image,
            np.zeros(model.input_size, np.float32), fractions=fractions)


def test_constants_save_paths_and_whole_image_steps_are_named(model, image):
    refused(r"constants must be a dict \{input name: array\}, got list", ox.Model, demo.demo_model_path(),
            constants=[1, 2])
    image_input = model.input_name
    refused(rf"'{image_input}' is the image input; leave it out of constants", ox.Model, demo.demo_model_path(),
            input_name=image_input, constants={image_input: np.zeros(3, np.float32)})
    result = ox.Occlusion(model).attribute(image, window=16, stride=16)
    refused(r"out_dir must be a folder path, got NoneType", result.save, None)
    with pytest.warns(OnnxplainWarning, match=r"step 5000 removes all 4096 features at once"):
        fd.deletion(model, image, np.zeros(model.input_size, np.float32), step=5000)
