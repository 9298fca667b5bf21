"""Every kind of exported image classifier: any channel count, input dtype and output form.

Ground truth: analytic ONNX detectors built here with onnx.helper (the demo model's design,
tools/build_demo_model.py). Per pixel, D detector channels relu(colour_w @ pixel + colour_b)
(1 x 1 convolution); per detector, a matched PATTERN x PATTERN square filter (the window
mean) + SHAPE_BIAS, relu, global max; logits = fc_w @ evidence + fc_b. The planted square is
the only evidence, so every method's map must find it. Variants: 1 channel (bright and dark
blobs), 4 channels (evidence only in channel 3, a near-infrared blob, with an RGB decoy),
uint8 / float16 inputs (the demo model with a Cast in front), one output column (sigmoid or
logit), multi-label sigmoids, several outputs, an extra constant input, dynamic H/W through
the CLI.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import onnxplain as ox  # noqa: E402
from onnxplain import OnnxplainError, _core, cli, demo  # noqa: E402
from onnxplain import fidelity as fd  # noqa: E402

SIZE, PATTERN, OPSET = 32, 8, 17
SHAPE_BIAS = -0.05
BOX_A = (5, 17, 13, 25)  # (y0, x0, y1, x1) exclusive, off the stride-4 grid
BOX_B = (19, 4, 27, 12)
CHANCE = PATTERN * PATTERN / SIZE ** 2  # a box's share of the image: 6.25 %

# Cheap options per method (32 x 32 images).
OPTIONS = {
    "occlusion": {"window": 8, "stride": 4},
    "rise": {"n_masks": 500, "grid": 4},
    "pmi": {"patch": 8, "stride": 4, "mode": "dense", "samples": 1, "sampler": "constant"},
    "ig": {"patch": 8, "stride": 4, "mode": "dense", "samples": 1, "sampler": "constant"},
    "multi": {"iterations": 2, "max_explanations": 1},
}
EXPLAINERS = {"occlusion": ox.Occlusion, "rise": ox.RISE, "pmi": ox.PMI, "ig": ox.IG, "multi": ox.Causal}
# How close each map's peak must be to the planted box (pixels), and the least share of its mass
# above the median inside the box (chance: CHANCE). Occlusion, PMI and IG average windows /
# patches of 8 covering a pixel, so their maps spread up to 7 px around the box; RISE's smooth
# masks (grid 4: 8 px cells) blur further and 500 masks leave sampling noise; the causal
# responsibility from only 2 random box trees credits whole boxes around the blob (measured
# shares: occlusion 0.44-0.51, RISE 0.32-0.36, PMI 0.50-0.59, IG 0.55-0.63, causal 0.23-0.27).
TOLERANCE = {"occlusion": (4, 0.3), "rise": (8, 0.2), "pmi": (4, 0.3), "ig": (4, 0.3), "multi": (4, 0.15)}


# ---- builders -------------------------------------------------------------------------------
class Graph:
    """Nodes and initializers of one ONNX graph under construction."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []

    def const(self, name: str, array, dtype=np.float32) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def serialize(self, inputs: list, outputs: list) -> bytes:
        graph = helper.make_graph(self.nodes, "analytic", inputs, outputs, initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model.SerializeToString()


def detector_head(g: Graph, x: str, colour_w, colour_b, fc_w, fc_b, *, head4: bool = False) -> str:
    """The detector on the NCHW float tensor x; returns the logits' name, (N, K) or (N, K, 1, 1)."""
    colour_w, fc_w = np.asarray(colour_w, np.float32), np.asarray(fc_w, np.float32)
    d, c = colour_w.shape
    k = fc_w.shape[0]
    g.node("Conv", [x, g.const("colour.w", colour_w.reshape(d, c, 1, 1)), g.const("colour.b", colour_b)], "c1",
           kernel_shape=[1, 1])
    g.node("Relu", ["c1"], "r1")
    g.node("Conv", ["r1", g.const("shape.w", np.full((d, 1, PATTERN, PATTERN), 1.0 / PATTERN ** 2)),
                    g.const("shape.b", np.full(d, SHAPE_BIAS))], "c2", kernel_shape=[PATTERN, PATTERN], group=d)
    g.node("Relu", ["c2"], "r2")
    g.node("GlobalMaxPool", ["r2"], "pooled")  # (N, D, 1, 1)
    if head4:
        return g.node("Conv", ["pooled", g.const("fc.w", fc_w.reshape(k, d, 1, 1)), g.const("fc.b", fc_b)], "logits",
                      kernel_shape=[1, 1])
    g.node("Flatten", ["pooled"], "evidence", axis=1)
    return g.node("Gemm", ["evidence", g.const("fc.w", fc_w), g.const("fc.b", fc_b)], "logits", transB=1)


def detector(colour_w, colour_b, fc_w, fc_b, *, final: str | None = None, dims=None, head4=False,
             features=False, twin=False, bias_input=False, spelled_sigmoid=False, nhwc=False) -> bytes:
    """Serialized detector model (module doc). final: "Sigmoid" or "Softmax" node at the end;
    dims: the image input's dims (default ["N", C, SIZE, SIZE]); head4: logits (N, K, 1, 1);
    features: a second output "features" (N, 16, 4, 4); twin: a second (N, K) output "twin"
    (the logits + 1); bias_input: an input "bias" (N, K) added to the logits; spelled_sigmoid:
    the sigmoid written as 1 / (1 + exp(-z)) (no Sigmoid node); nhwc: the input is NHWC."""
    c = np.asarray(colour_w).shape[1]
    k = np.asarray(fc_w).shape[0]
    dims = dims or (["N", SIZE, SIZE, c] if nhwc else ["N", c, SIZE, SIZE])
    g = Graph()
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)]
    x = g.node("Transpose", ["image"], "image_nchw", perm=[0, 3, 1, 2]) if nhwc else "image"
    z = detector_head(g, x, colour_w, colour_b, fc_w, fc_b, head4=head4)
    if bias_input:
        inputs.append(helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["N", k]))
        z = g.node("Add", [z, "bias"], "shifted")
    if final:
        z = g.node(final, [z], "scores", **({"axis": 1} if final == "Softmax" else {}))
    elif spelled_sigmoid:
        g.node("Neg", [z], "neg")
        g.node("Exp", ["neg"], "exp")
        g.node("Add", ["exp", g.const("one", 1.0)], "denominator")
        z = g.node("Reciprocal", ["denominator"], "scores")
    outputs = [helper.make_tensor_value_info(z, TensorProto.FLOAT, ["N", k, 1, 1] if head4 else ["N", k])]
    if features:
        g.node("Conv", [x, g.const("feat.w", np.linspace(-1, 1, 16 * c).reshape(16, c, 1, 1))], "feat_c",
               kernel_shape=[1, 1])
        g.node("MaxPool", ["feat_c"], "features", kernel_shape=[8, 8], strides=[8, 8])
        outputs.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 16, SIZE // 8, SIZE // 8]))
    if twin:
        g.node("Add", [z, g.const("plus_one", 1.0)], "twin")
        outputs.append(helper.make_tensor_value_info("twin", TensorProto.FLOAT, ["N", k]))
    return g.serialize(inputs, outputs)


# 1 channel, preprocessed x = pixel / 255 - 0.5 (so the 'mean' baseline is mid grey 127.5):
# detector 0 = relu(x - 0.2) (bright, pixel > 178), detector 1 = relu(-x - 0.2) (dark, < 77);
# classes: bright blob, dark blob, background (constant logit 1.5). A full blob of 245 (or 10)
# gives the logit 20 * (0.26 - 0.05) = 4.2: p = 0.92.
GREY_PRESET = ox.Preprocess(1 / 255, 0.5)
GREY = dict(colour_w=[[1.0], [-1.0]], colour_b=[-0.2, -0.2], fc_w=[[20.0, 0.0], [0.0, 20.0], [0.0, 0.0]],
            fc_b=[0.0, 0.0, 1.5])
# 4 channels (R, G, B, near infrared), per-channel means: only channel 3 is evidence.
NIR_PRESET = ox.Preprocess(1 / 255, (0.5, 0.5, 0.5, 0.5), 1.0)
NIR = dict(colour_w=[[0.0, 0.0, 0.0, 1.0]], colour_b=[-0.2], fc_w=[[20.0], [0.0]], fc_b=[0.0, 1.5])
# RGB colour opponents as in the demo model (preset 'unit', black is neutral): red, green, blue.
OPPONENT = [[1.0, -0.5, -0.5], [-0.5, 1.0, -0.5], [-0.5, -0.5, 1.0]]
RED, GREEN, BLUE = (230.0, 25.0, 25.0), (25.0, 210.0, 25.0), (25.0, 40.0, 235.0)
RGB3 = dict(colour_w=OPPONENT, colour_b=[-0.3] * 3, fc_w=12 * np.eye(3), fc_b=[0.0, 0.0, 0.0])
# Multi-label: independent sigmoids, red p = s(12 * 0.45 - 1.5) = 0.98, blue 0.97, green absent 0.12.
MULTI = dict(colour_w=OPPONENT, colour_b=[-0.3] * 3, fc_w=12 * np.eye(3), fc_b=[-1.5, -2.0, -2.0])
# One output column: the red detector's logit 12 * evidence - 2 (p = 0.97 with a red square).
BINARY = dict(colour_w=[OPPONENT[0]], colour_b=[-0.3], fc_w=[[12.0]], fc_b=[-2.0])


def textured(seed: int, channels: int, size: int = SIZE) -> np.ndarray:
    """Smooth mid-grey texture (about 105..150, alike in every channel, +-3 per channel): no
    detector fires on it."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(110.0, 145.0, (5, 5)).astype(np.float32)
    base = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR)
    image = base[..., None] + rng.uniform(-4, 4, (size, size, 1)) + rng.uniform(-3, 3, (size, size, channels))
    return np.clip(image, 0, 255).astype(np.float32)


def planted(seed: int, channels: int, *plants) -> np.ndarray:
    """A textured image with each (box, value) of plants painted in (value: scalar or per channel)."""
    image = textured(seed, channels)
    for (y0, x0, y1, x1), value in plants:
        image[y0:y1, x0:x1] = value
    return image


def dilate(box, by: int, size: int = SIZE):
    y0, x0, y1, x1 = box
    return max(0, y0 - by), max(0, x0 - by), min(size, y1 + by), min(size, x1 + by)


def assert_finds(attribution: np.ndarray, box, margin: int, min_share: float, what: str = "") -> None:
    """The map's peak lies in the box dilated by margin, and >= min_share of its mass above the
    median lies in the box."""
    assert attribution.shape == (SIZE, SIZE) and np.all(np.isfinite(attribution)), what
    y0, x0, y1, x1 = dilate(box, margin)
    peak = np.unravel_index(np.argmax(attribution), attribution.shape)
    assert y0 <= peak[0] < y1 and x0 <= peak[1] < x1, (what, peak, box)
    share = demo.evidence_share(attribution, box)
    assert share >= min_share, (what, share)


def explain(model: ox.Model, method: str, image: np.ndarray, target: int, **extra):
    options = {**OPTIONS[method], **extra}
    return EXPLAINERS[method](model).attribute(image, target=target, seed=0, **options)


def check_every_method(model: ox.Model, image: np.ndarray, target: int, box) -> dict:
    """Runs every method for target and checks each map finds box; returns the results."""
    results = {}
    for method in EXPLAINERS:
        result = explain(model, method, image, target)
        results[method] = result
        attribution = next(iter(result.maps.values())) if method == "ig" else result[target]
        margin, share = TOLERANCE[method]
        assert_finds(attribution, box, margin, share, method)
        if method == "ig":
            assert attribution.min() >= -1e-9  # a KL divergence
        if method == "multi":
            assert len(result.explanations) == 1
            e = result.explanations[0]
            y0, x0, y1, x1 = dilate(box, 2)
            assert e.mask[y0:y1, x0:x1].sum() >= 0.9 * e.area, (e.area, e.record())
    return results


# ---- 1. one channel -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grey_model():
    return ox.Model(detector(**GREY), preset=GREY_PRESET, progress=False)


@pytest.mark.parametrize("target,value", [(0, 245.0), (1, 10.0)], ids=["bright", "dark"])
def test_grey_detector_every_method_finds_the_blob(grey_model, target, value):
    assert grey_model.channels == 1 and grey_model.input_shape == (1, SIZE, SIZE)
    image = planted(1 + target, 1, (BOX_A, value))
    assert image.shape == (SIZE, SIZE, 1)
    p = grey_model.predict(image)
    assert int(np.argmax(p)) == target and p[target] > 0.9
    assert np.argmax(grey_model.predict(textured(1 + target, 1))) == 2  # no blob: background
    check_every_method(grey_model, image, target, BOX_A)
    # the true evidence ranks first: removing it first kills the class, removing it last keeps it
    curves = fd.mif_lif(grey_model, image, explain(grey_model, "occlusion", image, target)[target],
                        fractions=[0, 0.05, 0.1, 0.2, 0.5, 0.8, 0.9, 0.95, 1.0])
    assert curves.fidelity > 0.5, curves.curves
    assert curves.agree["lif"][:6].all() and not curves.agree["mif"][3]


def test_grey_images_from_rgb_and_files(grey_model, tmp_path):
    """An RGB (or RGBA) image becomes grey by luma for a 1-channel model; a grey PNG loads as H x W x 1."""
    image = planted(5, 1, (BOX_B, 240.0))
    np.testing.assert_allclose(grey_model.predict(np.repeat(image, 3, axis=2)), grey_model.predict(image), atol=1e-5)
    rgba = np.concatenate([np.repeat(image, 3, axis=2), np.full((SIZE, SIZE, 1), 255, np.float32)], axis=2)
    np.testing.assert_allclose(grey_model.predict(rgba), grey_model.predict(image), atol=1e-5)
    path = tmp_path / "grey.png"
    assert cv2.imwrite(str(path), image[..., 0].round().astype(np.uint8))
    loaded = ox.load_image(path, (SIZE, SIZE), grey_model.channels)
    assert loaded.shape == (SIZE, SIZE, 1)
    np.testing.assert_array_equal(loaded, image.round())


# ---- 2. four channels -----------------------------------------------------------------------
def nir_image(seed: int = 3) -> np.ndarray:
    """Near-infrared blob in channel 3 at BOX_B; a white RGB decoy (channel 3 plain) at BOX_A."""
    image = textured(seed, 4)
    y0, x0, y1, x1 = BOX_B
    image[y0:y1, x0:x1, 3] = 245.0
    y0, x0, y1, x1 = BOX_A
    image[y0:y1, x0:x1, :3] = 245.0
    return image


def test_four_channel_detector_finds_the_infrared_blob_and_saves(tmp_path):
    model = ox.Model(detector(**NIR), preset=NIR_PRESET, progress=False)
    assert model.channels == 4 and model.input_shape == (4, SIZE, SIZE)
    np.testing.assert_allclose(model.preprocess.neutral, 127.5)
    image = nir_image()
    p = model.predict(image)
    assert int(np.argmax(p)) == 0 and p[0] > 0.9
    decoy_only = image.copy()
    decoy_only[..., 3] = textured(3, 4)[..., 3]
    assert int(np.argmax(model.predict(decoy_only))) == 1  # the RGB decoy is no evidence
    results = check_every_method(model, image, 0, BOX_B)
    # the default sampler (a Gaussian over the 4-channel windows) as well
    pmi = explain(model, "pmi", image, 0, sampler="gaussian", samples=2)
    assert_finds(pmi[0], BOX_B, *TOLERANCE["pmi"], "pmi gaussian")
    results["pmi-gaussian"] = pmi
    for name, result in results.items():
        written = result.save(tmp_path / name)
        pngs = [p for p in written if p.suffix == ".png"]
        assert pngs and all(p.stat().st_size > 0 for p in pngs), name
        picture = cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED)
        assert picture.ndim == 3 and picture.shape[2] == 3
        assert json.loads((tmp_path / name / "result.json").read_text())["method"] == result.method
    curves = fd.mif_lif(model, image, results["rise"], fractions=[0, 0.1, 0.3, 0.6, 1.0])
    assert np.all(np.isfinite(curves.curves["mif"])) and curves.fidelity > 0.3


# ---- 3. integer and half-precision inputs -----------------------------------------------------
def demo_variant(dtype: str) -> bytes:
    """The demo model with an input of another dtype: uint8 pixels (Cast, then Mul 1/255 inside
    the graph), or float16 pixel / 255 (Cast in, and the logits Cast out to float16)."""
    proto = onnx.load(str(demo.demo_model_path()))
    graph = proto.graph
    (old,) = graph.input
    dims = [d.dim_param or d.dim_value for d in old.type.tensor_type.shape.dim]
    if dtype == "uint8":
        scale = numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255")
        prefix = [helper.make_node("Cast", ["pixels"], ["pixels_f"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", ["pixels_f", "inv255"], ["image"])]
        new_input = helper.make_tensor_value_info("pixels", TensorProto.UINT8, dims)
        inits, suffix, outputs = [scale], [], list(graph.output)
    else:
        prefix = [helper.make_node("Cast", ["image_f16"], ["image"], to=TensorProto.FLOAT)]
        new_input = helper.make_tensor_value_info("image_f16", TensorProto.FLOAT16, dims)
        suffix = [helper.make_node("Cast", ["logits"], ["logits_f16"], to=TensorProto.FLOAT16)]
        inits = []
        outputs = [helper.make_tensor_value_info("logits_f16", TensorProto.FLOAT16, ["N", 3])]
    new = helper.make_graph(prefix + list(graph.node) + suffix, "demo_" + dtype, [new_input], outputs,
                            initializer=list(graph.initializer) + inits)
    model = helper.make_model(new, opset_imports=list(proto.opset_import))
    model.ir_version = proto.ir_version
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="module")
def demo_float():
    return ox.Model(demo.demo_model_path(), preset="unit", progress=False)


# Tolerances against the float32 model (maps in probability units; PMI and IG in nats):
# - uint8 with hard masks and a whole-number replacement (occlusion with baseline 128, PMI and IG
#   with the constant sampler's black): every perturbed pixel is a whole number, fed exactly, and
#   the graph's Mul by float32(1/255) equals the preprocessor's gain, so the maps are equal
#   (measured: bitwise); 1e-6.
# - uint8, RISE: soft masks blend to fractional pixels, rounded to whole numbers: at most 0.5 grey
#   level (0.002 of the unit range) per pixel, independent from pixel to pixel. A colour opponent
#   (weights 1, -0.5, -0.5) moves by ~1.4e-3 rms; the 10 x 10 shape filter (+-1/n, n = 36..100)
#   averages 100 of those: ~2e-4; times the logit scale 12: ~3e-3 in the logits, <= 7e-4 in a
#   probability, and the map averages those over the masks / p_keep. 2e-3 (measured 2.2e-4,
#   maps ranging over ~0.15).
# - float16: inputs in 0..1 round to within 2^-12 (2.4e-4), logits (|z| <= 16) to within 2^-8
#   (3.9e-3) on the way out: a probability within |dz| / 2 = 2e-3, an occlusion or RISE map
#   within 2e-3 (measured 1.7e-4), a log-ratio (PMI, IG) within 2 dz = 1e-2 (measured 1.3e-3).
DTYPE_TOLERANCE = {
    "uint8": {"predict": 1e-6, "occlusion": 1e-6, "pmi": 1e-6, "ig": 1e-6, "rise": 2e-3},
    "float16": {"predict": 2e-3, "occlusion": 2e-3, "pmi": 1e-2, "ig": 1e-2, "rise": 2e-3},
}


@pytest.mark.parametrize("dtype", ["uint8", "float16"])
def test_integer_and_half_inputs_match_the_float_model(demo_float, dtype):
    preset = "raw" if dtype == "uint8" else "unit"
    model = ox.Model(demo_variant(dtype), preset=preset, progress=False)
    assert model.input_dtype == np.dtype(dtype) and model.input_size == (64, 64) and model.channels == 3
    image = ox.load_image(demo.demo_image_paths()[1], (64, 64))  # whole numbers (a PNG)
    assert np.array_equal(image, image.round())
    box = json.loads((demo.demo_model_path().parent / "demo_images.json").read_text())["images"][1]["box"]
    tolerance = DTYPE_TOLERANCE[dtype]
    np.testing.assert_allclose(model.predict(image), demo_float.predict(image), atol=tolerance["predict"])
    assert int(np.argmax(model.predict(image))) == 1
    for method, options in (("occlusion", {"window": 8, "stride": 4, "baseline": 128.0}), ("pmi", OPTIONS["pmi"]),
                            ("ig", OPTIONS["ig"]), ("rise", {"n_masks": 400, "grid": 8})):
        ours = EXPLAINERS[method](model).attribute(image, target=[1, 2], seed=0, **options)
        reference = EXPLAINERS[method](demo_float).attribute(image, target=[1, 2], seed=0, **options)
        assert ours.targets == reference.targets
        for t in ours.targets:
            np.testing.assert_allclose(ours[t], reference[t], atol=tolerance[method], err_msg=f"{method} class {t}")
        peak = np.unravel_index(np.argmax(ours[1]), (64, 64))
        y0, x0, y1, x1 = dilate(box, 8, 64)
        assert y0 <= peak[0] < y1 and x0 <= peak[1] < x1, (method, peak, box)


@pytest.mark.parametrize("dtype", [TensorProto.UINT8, TensorProto.INT8], ids=["uint8", "int8"])
def test_integer_input_needs_whole_number_preprocessing(dtype):
    g = Graph()
    g.node("Cast", ["image"], "image_f", to=TensorProto.FLOAT)
    detector_head(g, "image_f", **RGB3)
    data = g.serialize([helper.make_tensor_value_info("image", dtype, ["N", 3, SIZE, SIZE])],
                       [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])])
    for preset in ("unit", "imagenet", "efficientnet-lite"):
        with pytest.raises(OnnxplainError, match=r"preset='raw'"):
            ox.Model(data, preset=preset)
    model = ox.Model(data, preset="raw", progress=False)
    assert model.input_dtype == (np.uint8 if dtype == TensorProto.UINT8 else np.int8)
    image = planted(4, 3, (BOX_A, (230.4, 25.6, 24.5)), (BOX_B, (200.0, 0.0, 0.0)))  # fractional values too
    info = np.iinfo(model.input_dtype)
    fed = np.clip(np.rint(image), info.min, info.max).astype(model.input_dtype)  # rounded and clipped, never wrapped
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": fed.transpose(2, 0, 1)[None]})[0][0]
    np.testing.assert_allclose(model.predict(image, kind="logits"), expected, rtol=1e-6)
    assert int(np.argmax(expected)) == 0 and expected[0] > 12  # raw pixels: a huge red opponent


# ---- 4. one output column ------------------------------------------------------------------
@pytest.fixture(scope="module")
def binary_models():
    logit = ox.Model(detector(**BINARY), preset="unit", progress=False)
    sigmoid = ox.Model(detector(**BINARY, final="Sigmoid"), preset="unit", progress=False)
    return logit, sigmoid


def test_binary_models_give_two_classes_and_the_same_maps(binary_models):
    logit_model, sigmoid_model = binary_models
    image = planted(6, 3, (BOX_B, RED))
    session = ort.InferenceSession(detector(**BINARY), providers=["CPUExecutionProvider"])
    z = session.run(None, {"image": (image / 255).transpose(2, 0, 1)[None].astype(np.float32)})[0][0, 0]
    p = 1 / (1 + np.exp(-float(z)))
    assert p > 0.95
    for model in binary_models:
        np.testing.assert_allclose(model.predict(image), [1 - p, p], rtol=1e-5, atol=1e-6)
        blank = model.predict(textured(6, 3))
        np.testing.assert_allclose(blank, [1 - 1 / (1 + np.exp(2.0)), 1 / (1 + np.exp(2.0))], atol=1e-5)
        assert model.num_classes == 2 and model.output_kind == "probabilities"
    assert logit_model.binary == "logit" and sigmoid_model.binary == "probability"
    results = {}
    for model in binary_models:
        results[model.binary] = check_every_method(model, image, 1, BOX_B)
    # the sigmoid model is sigmoid(logit model): identical maps (float32 Sigmoid in onnxruntime
    # against float64 in the package: 1e-5)
    for method, result in results["probability"].items():
        other = results["logit"][method]
        for t in result.maps:
            np.testing.assert_allclose(result[t], other[t], atol=1e-5, err_msg=method)


# ---- 5. multi-label ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def multi_model():
    return ox.Model(detector(**MULTI, final="Sigmoid"), preset="unit", progress=False)


def multi_image() -> np.ndarray:
    return planted(7, 3, (BOX_A, RED), (BOX_B, BLUE))


def test_multilabel_scores_are_the_sigmoids_themselves(multi_model):
    assert multi_model.output_kind == "sigmoid" and multi_model.num_classes == 3
    images = np.stack([multi_image(), planted(8, 3, (BOX_A, BLUE)), textured(9, 3)])
    data = detector(**MULTI, final="Sigmoid")
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    raw = session.run(None, {"image": (images / 255).transpose(0, 3, 1, 2).astype(np.float32)})[0]
    np.testing.assert_allclose(multi_model.predict(images), raw, rtol=1e-6, atol=1e-7)  # never softmaxed
    p = raw[0]
    assert p[0] > 0.95 and p[2] > 0.95 and p[1] < 0.2 and p.sum() > 1.5
    np.testing.assert_allclose(multi_model.predict(images, kind="logits"), np.log(raw / (1 - raw)), atol=1e-4)
    # without a graph to read, rows in 0..1 that do not sum to 1 are refused unless output="sigmoid"
    with pytest.raises(OnnxplainError, match=r"output='sigmoid'"):
        ox.Model(session, preset="unit").predict(images)
    declared = ox.Model(session, preset="unit", output="sigmoid")
    np.testing.assert_allclose(declared.predict(images), raw, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("target,box", [(0, BOX_A), (2, BOX_B)], ids=["red", "blue"])
def test_multilabel_each_class_finds_its_own_pattern(multi_model, target, box):
    image = multi_image()
    other = BOX_B if box == BOX_A else BOX_A
    for method in ("occlusion", "rise", "pmi"):
        attribution = explain(multi_model, method, image, target)[target]
        assert_finds(attribution, box, *TOLERANCE[method], f"{method} class {target}")
        # the other class's pattern is no evidence for this one
        assert demo.evidence_share(attribution, other) < 0.1, method
    result = ox.Causal(multi_model).attribute(image, target=target, criterion="top1", seed=0, **OPTIONS["multi"])
    assert len(result.explanations) == 1, f"no explanation for class {target}"
    e = result.explanations[0]
    y0, x0, y1, x1 = dilate(box, 2)
    assert e.mask[y0:y1, x0:x1].sum() >= 0.9 * e.area
    shown = np.where(e.mask[..., None], image, multi_model.preprocess.neutral)
    assert multi_model.predict(shown)[target] >= 0.5  # sufficient: p_c >= 0.5 alone


def test_multilabel_information_is_bernoulli(multi_model):
    """IG = sum_c KL(Bern(p_c(x)) || Bern(p_c(x without i))), PMI_c = ln p_c(x) / p_c(x without i),
    checked against the patches replaced by hand (constant sampler: one exact sample)."""
    image = multi_image()
    ig = explain(multi_model, "ig", image, None)
    pmi = explain(multi_model, "pmi", image, [0, 2])
    ig_map = next(iter(ig.maps.values()))
    assert np.all(np.isfinite(ig_map)) and ig_map.min() >= -1e-9
    p = multi_model.predict(image).astype(np.float64)
    grid = _core.window_positions(SIZE, PATTERN, 4)
    ig_sum, pmi_sum, cover = np.zeros((SIZE, SIZE)), np.zeros((2, SIZE, SIZE)), np.zeros((SIZE, SIZE))
    for y in grid:
        for x in grid:
            hidden = image.copy()
            hidden[y:y + PATTERN, x:x + PATTERN] = multi_model.preprocess.neutral
            q = multi_model.predict(hidden).astype(np.float64)
            kl = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
            ig_sum[y:y + PATTERN, x:x + PATTERN] += kl.sum()
            pmi_sum[:, y:y + PATTERN, x:x + PATTERN] += np.log(p / q)[[0, 2], None, None]
            cover[y:y + PATTERN, x:x + PATTERN] += 1
    np.testing.assert_allclose(ig_map, ig_sum / cover, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pmi[0], pmi_sum[0] / cover, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pmi[2], pmi_sum[1] / cover, rtol=1e-4, atol=1e-6)
    # both patterns are informative, nothing else is
    assert demo.evidence_share(ig_map, BOX_A) + demo.evidence_share(ig_map, BOX_B) > 0.4


def test_multilabel_fidelity_agreement_is_presence(multi_model):
    """Agreement under a multi-label model: the reference class still has p >= 0.5 (not top-1)."""
    image = multi_image()
    attribution = explain(multi_model, "occlusion", image, 0)[0]
    curves = fd.mif_lif(multi_model, image, attribution, target=0, fractions=[0, 0.1, 0.2, 0.5, 0.9, 1.0])
    assert curves.reference == 0
    assert curves.agree["mif"][0] and curves.agree["lif"][0]
    # everything hidden: every class is at its bias, red at p = 0.18 < 0.5 (though it would still
    # be the top-1 class)
    assert not curves.agree["mif"][-1] and not curves.agree["lif"][-1]
    assert not curves.agree["mif"][2] and curves.agree["lif"][:5].all()
    assert curves.fidelity > 0.5


# ---- 6. several outputs ---------------------------------------------------------------------
@pytest.mark.parametrize("head4", [False, True], ids=["NK", "NK11"])
def test_scores_output_is_chosen_beside_a_feature_map(head4):
    data = detector(**RGB3, head4=head4, features=True)
    model = ox.Model(data, preset="unit", progress=False)
    assert model.output_name == "logits" and model.num_classes == 3
    image = planted(10, 3, (BOX_A, GREEN))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    logits, features = session.run(None, {"image": (image / 255).transpose(2, 0, 1)[None].astype(np.float32)})
    assert features.shape == (1, 16, 4, 4) and logits.shape == ((1, 3, 1, 1) if head4 else (1, 3))
    np.testing.assert_allclose(model.predict(image, kind="logits"), logits.reshape(3), rtol=1e-5, atol=1e-5)
    assert int(np.argmax(model.predict(image))) == 1
    assert_finds(explain(model, "occlusion", image, 1)[1], BOX_A, *TOLERANCE["occlusion"])


def test_two_score_outputs_need_output_name():
    data = detector(**RGB3, twin=True)
    with pytest.raises(OnnxplainError, match=r"output_name="):
        ox.Model(data, preset="unit")
    image = planted(11, 3, (BOX_B, BLUE))
    first = ox.Model(data, preset="unit", output_name="logits", progress=False).predict(image, kind="logits")
    second = ox.Model(data, preset="unit", output_name="twin", progress=False).predict(image, kind="logits")
    np.testing.assert_allclose(second, first + 1, rtol=1e-5, atol=1e-5)
    # with a feature output too: still two candidates
    with pytest.raises(OnnxplainError, match=r"output_name="):
        ox.Model(detector(**RGB3, twin=True, features=True), preset="unit")


# ---- 7. an extra constant input -----------------------------------------------------------------
def test_constant_input_is_fed_to_every_batch():
    data = detector(**RGB3, bias_input=True)
    with pytest.raises(OnnxplainError, match=r"constants="):
        ox.Model(data, preset="unit")
    bias = np.array([0.0, 0.0, 3.0], np.float32)  # blue needs 3 logits less evidence
    image = planted(12, 3, (BOX_A, RED))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = (image / 255).transpose(2, 0, 1)[None].astype(np.float32)
    expected = session.run(None, {"image": x, "bias": bias[None]})[0][0]
    maps = []
    for given, batch_size in ((bias, 64), (bias[None], 5)):  # without / with the batch axis; odd batches
        model = ox.Model(data, preset="unit", constants={"bias": given}, batch_size=batch_size, progress=False)
        assert model.input_name == "image"
        np.testing.assert_allclose(model.predict(image, kind="logits"), expected, rtol=1e-5, atol=1e-5)
        maps.append(explain(model, "occlusion", image, 0)[0])
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-6)
    assert_finds(maps[0], BOX_A, *TOLERANCE["occlusion"])
    # the constant matters: without it the red square wins by far more
    no_bias = ox.Model(data, preset="unit", constants={"bias": np.zeros(3, np.float32)}, progress=False)
    assert no_bias.predict(image)[0] > ox.Model(data, preset="unit", constants={"bias": bias}).predict(image)[0]


# ---- 8. the command line ---------------------------------------------------------------------
def run_main(argv) -> int:
    """cli.main's exit code (argparse's SystemExit included: a flag it does not know)."""
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exc:
        return int(exc.code)


def test_cli_dynamic_resolution_needs_input_size(tmp_path, capsys):
    model_path = tmp_path / "dynamic.onnx"
    model_path.write_bytes(detector(**RGB3, dims=["N", 3, "H", "W"]))
    image = planted(13, 3, (BOX_B, RED))
    image_path = tmp_path / "image.png"
    assert cv2.imwrite(str(image_path), cv2.cvtColor(image.round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    common = ["explain", model_path, image_path, "--preset", "unit", "--method", "occlusion", "--window", "8",
              "--stride", "4", "--target", "0", "--quiet"]
    capsys.readouterr()
    assert run_main(common + ["--out", tmp_path / "none"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("onnxplain: error:") and "--input-size" in lines[0], lines
    out = tmp_path / "out"
    code = run_main(common + ["--input-size", "32,32", "--out", out])
    assert code == 0, capsys.readouterr().err
    attribution = np.load(out / "occlusion_0.npy")
    assert attribution.shape == (SIZE, SIZE) and attribution.dtype == np.float32
    assert_finds(attribution, BOX_B, *TOLERANCE["occlusion"])
    model = ox.Model(model_path, preset="unit", input_size=(SIZE, SIZE), progress=False)
    expected = explain(model, "occlusion", ox.load_image(image_path, (SIZE, SIZE)), 0)[0]
    np.testing.assert_allclose(attribution, expected, atol=1e-6)


def nhwc_multilabel(tmp_path):
    """A 4-channel NHWC model with every dimension but the batch's dynamic, a constant input, two
    (N, K) outputs and a sigmoid spelled out (no Sigmoid node): every model flag is needed."""
    nir_multi = dict(colour_w=[[1.0, -0.5, -0.5, 0.0], [0.0, 0.0, 0.0, 1.0]], colour_b=[-0.3, -0.6],
                     fc_w=np.diag([12.0, 16.0]), fc_b=[-2.0, -2.0])
    path = tmp_path / "nhwc.onnx"
    path.write_bytes(detector(**nir_multi, nhwc=True, dims=["N", "H", "W", "C"], bias_input=True,
                              spelled_sigmoid=True, twin=True))
    bias = tmp_path / "bias.npy"
    np.save(bias, np.array([0.5, 0.0], np.float32))
    image = textured(14, 4)
    y0, x0, y1, x1 = BOX_A
    image[y0:y1, x0:x1, :3] = RED
    y0, x0, y1, x1 = BOX_B
    image[y0:y1, x0:x1, 3] = 245.0
    image_path = tmp_path / "image.npy"
    np.save(image_path, image)
    return path, bias, image, image_path


@pytest.mark.parametrize("method", ["occlusion", "pmi"])
def test_cli_every_model_flag(tmp_path, capsys, method):
    path, bias, image, image_path = nhwc_multilabel(tmp_path)
    flags = ["--input-size", "32,32", "--layout", "NHWC", "--channels", "4", "--constant", f"bias={bias}",
             "--output-name", "scores", "--output", "sigmoid", "--preset", "unit"]
    options = (["--window", "8", "--stride", "4"] if method == "occlusion" else
               ["--patch", "8", "--stride", "4", "--mode", "dense", "--samples", "1", "--sampler", "constant"])
    out = tmp_path / "out"
    code = run_main(["explain", path, image_path, "--method", method, "--target", "0,1", "--out", out, "--quiet"]
                    + flags + options)
    assert code == 0, capsys.readouterr().err
    model = ox.Model(path, preset="unit", output="sigmoid", input_size=(SIZE, SIZE), layout="NHWC", channels=4,
                     output_name="scores", constants={"bias": np.load(bias)}, progress=False)
    assert model.output_kind == "sigmoid"
    p = model.predict(image)
    assert p[0] > 0.9 and p[1] > 0.9
    for target, box in ((0, BOX_A), (1, BOX_B)):
        attribution = np.load(out / f"{method}_{target}.npy")
        expected = explain(model, method, image, [0, 1])[target]
        np.testing.assert_allclose(attribution, expected, atol=1e-6)
        assert_finds(attribution, box, *TOLERANCE[method], f"{method} {target}")
    # one flag missing at a time: a one-line error naming it
    for flag, value in (("--input-size", "32,32"), ("--layout", "NHWC"), ("--channels", "4"),
                        ("--constant", f"bias={bias}"), ("--output-name", "scores")):
        i = flags.index(flag)
        capsys.readouterr()
        assert run_main(["explain", path, image_path, "--out", tmp_path / "x", "--quiet"] + flags[:i] + flags[i + 2:]
                        + options) == 2, flag
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("onnxplain: error:"), (flag, lines)
        name = {"--constant": "constant", "--output-name": "output-name"}.get(flag, flag.lstrip("-"))
        assert name in lines[0], (flag, lines[0])


def test_cli_evaluate_takes_the_model_flags(tmp_path, capsys):
    model_path = tmp_path / "dynamic.onnx"
    model_path.write_bytes(detector(**RGB3, dims=["N", 3, "H", "W"]))
    folder = tmp_path / "images"
    folder.mkdir()
    for i, box in enumerate((BOX_A, BOX_B)):
        image = planted(20 + i, 3, (box, RED))
        assert cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(image.round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    out = tmp_path / "eval"
    code = run_main(["evaluate", model_path, folder, "--methods", "occlusion", "--metrics", "mif-lif",
                     "--fractions", "0,0.2,0.5,1", "--window", "8", "--stride", "4", "--preset", "unit",
                     "--input-size", "32,32", "--out", out, "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert (out / "summary.json").is_file()


def test_cli_dynamic_channels_error_names_the_flag(tmp_path, capsys):
    """Like every other model-discovery error, the dynamic-channel one names its CLI flag."""
    path, bias, image, image_path = nhwc_multilabel(tmp_path)
    capsys.readouterr()
    assert run_main(["explain", path, image_path, "--input-size", "32,32", "--layout", "NHWC", "--constant",
                     f"bias={bias}", "--output-name", "scores", "--preset", "unit", "--quiet",
                     "--out", tmp_path / "o"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "dynamic channel count" in line and "--channels" in line, line


def test_binary_is_known_right_after_construction():
    """`model.binary` is documented as "probability" or "logit" for one output column."""
    sigmoid = ox.Model(detector(**BINARY, final="Sigmoid"), preset="unit")
    logit = ox.Model(detector(**BINARY), preset="unit")
    assert sigmoid.binary == "probability" and logit.binary == "logit"


# ---- 9. bad input -------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["imagenet", "caffe", ox.Preprocess(1 / 255, (0.4, 0.5, 0.6), (0.2, 0.2, 0.2))],
                         ids=["imagenet", "caffe", "custom3"])
def test_three_value_preset_on_one_channel_is_refused(preset):
    data = detector(**GREY)
    with pytest.raises(OnnxplainError, match=r"Preprocess\("):
        ox.Model(data, preset=preset)
    for fine in ("unit", "raw", "efficientnet-lite", GREY_PRESET, ox.Preprocess(1 / 255, (0.5,), (0.25,))):
        assert ox.Model(data, preset=fine).channels == 1


def test_a_model_failing_at_run_time_gives_one_clear_error():
    """A graph that loads but fails when run (a Reshape to an impossible shape) is an OnnxplainError."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["image", "shape"], ["scores"])], "broken",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 5])],
        initializer=[numpy_helper.from_array(np.array([-1, 5], np.int64), "shape")])
    model = ox.Model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
                     preset="unit", output="logits")
    with pytest.raises(OnnxplainError, match=r"the model failed on a batch of shape \[1, 3, 8, 8\]"):
        model.predict(np.zeros((8, 8, 3), np.float32))
