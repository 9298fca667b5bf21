"""`onnxplain.Model` (and image loading) against tiny analytic ONNX models built here.

The classifier used throughout computes, for each of the 3 model channels, the spatial mean
of the preprocessed input and maps those 3 numbers linearly to K logits (ReduceMean + Gemm),
optionally followed by a Softmax. Its output is therefore computable in NumPy from the
documented preprocessing contract

    model_input[c] = (pixel[src(c)] * scale - mean[c]) / std[c]

(src reverses the channels for channel_order="BGR"), independently of the package.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import onnxplain as ox  # noqa: E402
from onnxplain import OnnxplainError  # noqa: E402

H = W = 16
K = 5
OPSET = 17
RNG_SEED = 1234

# Weights far apart per channel, so a channel swap or a wrong mean/std changes the scores a lot.
WEIGHTS = np.array([[2.0, -1.0, 0.5, 0.0, 1.5],
                    [-0.5, 1.0, 3.0, -2.0, 0.25],
                    [1.0, 0.5, -1.5, 2.5, -1.0]], np.float32)  # (3, K)
BIAS = np.array([0.1, -0.2, 0.3, 0.0, -0.1], np.float32)


# ---- builders -------------------------------------------------------------------------------
def _input_dims(layout, batch, channels=3, h=H, w=W):
    return [batch, channels, h, w] if layout == "NCHW" else [batch, h, w, channels]


def classifier(layout="NCHW", batch="N", softmax=False, h=H, w=W, weights=WEIGHTS, bias=BIAS,
               extra_input=False, extra_output=False, input_type=TensorProto.FLOAT, channels=3,
               softmax_axis=1, flatten_after=False) -> bytes:
    """Serialized ONNX classifier: logits = mean_hw(x) @ weights + bias (then Softmax)."""
    k = weights.shape[1]
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    inputs = [helper.make_tensor_value_info("image", input_type, _input_dims(layout, batch, channels, h, w))]
    nodes = []
    x = "image"
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT))
        x = "image_f"
    nodes += [
        helper.make_node("ReduceMean", [x], ["means"], axes=axes, keepdims=0),
        helper.make_node("Gemm", ["means", "W", "B"], ["logits"]),
    ]
    final = "logits"
    if extra_input:
        inputs.append(helper.make_tensor_value_info("offset", TensorProto.FLOAT, [batch, k]))
        nodes.append(helper.make_node("Add", ["logits", "offset"], ["shifted"]))
        final = "shifted"
    outputs = []
    if softmax:
        nodes.append(helper.make_node("Softmax", [final], ["probs"], axis=softmax_axis))
        if flatten_after:
            nodes.append(helper.make_node("Flatten", ["probs"], ["probs_flat"], axis=1))
        out_name = "probs_flat" if flatten_after else "probs"
        outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [batch, k]))
    else:
        outputs.append(helper.make_tensor_value_info(final, TensorProto.FLOAT, [batch, k]))
    if extra_output:
        nodes.append(helper.make_node("Softmax", [final], ["probs2"], axis=1))
        outputs.append(helper.make_tensor_value_info("probs2", TensorProto.FLOAT, [batch, k]))
    graph = helper.make_graph(nodes, "tiny", inputs, outputs,
                              initializer=[numpy_helper.from_array(weights.astype(np.float32), "W"),
                                           numpy_helper.from_array(bias.astype(np.float32), "B")])
    return _serialize(graph)


def image_to_image(layout="NCHW") -> bytes:
    """A model whose output is the input image again (not a classifier)."""
    dims = _input_dims(layout, "N")
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "identity",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, dims)])
    return _serialize(graph)


def _serialize(graph) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# ---- NumPy references -----------------------------------------------------------------------
def np_preprocess(images: np.ndarray, pre: ox.Preprocess, layout: str) -> np.ndarray:
    """(N, H, W, 3) RGB 0..255 -> model input in `layout`, in float64."""
    pix = images.astype(np.float64)
    if pre.channel_order == "BGR":
        pix = pix[..., ::-1]
    x = (pix * pre.scale - np.asarray(pre.mean, np.float64)) / np.asarray(pre.std, np.float64)
    return x.transpose(0, 3, 1, 2) if layout == "NCHW" else x


def np_logits(images: np.ndarray, pre: ox.Preprocess, weights=WEIGHTS, bias=BIAS) -> np.ndarray:
    x = np_preprocess(images, pre, "NHWC")
    return x.mean(axis=(1, 2)) @ weights.astype(np.float64) + bias.astype(np.float64)


def np_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def random_images(n, seed=RNG_SEED, h=H, w=W) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(n, h, w, 3)).astype(np.float32)


def write(tmp_path: Path, data: bytes, name="model.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


CUSTOM_BGR = ox.Preprocess(2 / 255, (0.3, 1.1, 0.2), (0.5, 0.25, 2.0), channel_order="BGR")
PRESETS = {"imagenet": ox.PRESETS["imagenet"], "efficientnet-lite": ox.PRESETS["efficientnet-lite"],
           "unit": ox.PRESETS["unit"], "custom-bgr": CUSTOM_BGR}


def _preset_arg(name):
    return CUSTOM_BGR if name == "custom-bgr" else name


# ---- predictions ----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_predict_matches_numpy(layout, preset):
    model = ox.Model(classifier(layout), preset=_preset_arg(preset), progress=False)
    assert model.layout == layout and model.input_size == (H, W)
    assert model.input_shape == ((3, H, W) if layout == "NCHW" else (H, W, 3))
    images = random_images(3)
    expected = np_logits(images, PRESETS[preset])
    np.testing.assert_allclose(model.predict(images, kind="logits"), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.predict(images), np_softmax(expected), rtol=1e-4, atol=1e-6)
    # One image (H x W x 3) gives one row.
    np.testing.assert_allclose(model.predict(images[1], kind="logits"), expected[1], rtol=1e-4, atol=1e-4)
    assert model.output_kind == "logits"
    assert model.evaluations == 3 + 3 + 1


def test_bgr_swap_really_happens():
    """The same Preprocess with RGB or BGR order gives different scores, each matching NumPy."""
    images = random_images(2, seed=7)
    images[..., 0] = 250.0  # a strongly red image: a missing swap cannot go unnoticed
    images[..., 2] = 5.0
    rgb = ox.Preprocess(CUSTOM_BGR.scale, CUSTOM_BGR.mean, CUSTOM_BGR.std, channel_order="RGB")
    bgr_scores = ox.Model(classifier(), preset=CUSTOM_BGR).predict(images, kind="logits")
    rgb_scores = ox.Model(classifier(), preset=rgb).predict(images, kind="logits")
    np.testing.assert_allclose(bgr_scores, np_logits(images, CUSTOM_BGR), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rgb_scores, np_logits(images, rgb), rtol=1e-4, atol=1e-4)
    # BGR model input equals RGB model input of the channel-reversed image.
    np.testing.assert_allclose(bgr_scores, ox.Model(classifier(), preset=rgb).predict(
        np.ascontiguousarray(images[..., ::-1]), kind="logits"), rtol=1e-5, atol=1e-5)
    assert np.abs(bgr_scores - rgb_scores).max() > 1.0


def test_caffe_neutral_is_rgb_and_maps_to_zero():
    """The 'mean' baseline (Preprocess.neutral) preprocesses to exactly 0 in every channel."""
    for name in ("caffe", "imagenet", "efficientnet-lite"):
        pre = ox.PRESETS[name]
        neutral = np.broadcast_to(pre.neutral, (1, H, W, 3))
        x = np_preprocess(neutral, pre, "NHWC")
        np.testing.assert_allclose(x, 0, atol=1e-4)


def test_grey_image_is_accepted_and_converted():
    model = ox.Model(classifier(), preset="unit")
    grey = np.random.default_rng(3).uniform(0, 255, (H, W)).astype(np.float32)
    as_rgb = np.repeat(grey[:, :, None], 3, axis=2)
    expected = np_logits(as_rgb[None], ox.PRESETS["unit"])[0]
    np.testing.assert_allclose(model.check_image(grey), as_rgb)
    np.testing.assert_allclose(model.check_image(grey[:, :, None]), as_rgb)
    np.testing.assert_allclose(model.predict(grey, kind="logits"), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.predict(grey.astype(np.uint8), kind="logits"),
                               np_logits(np.repeat(grey.astype(np.uint8)[:, :, None], 3, 2)[None],
                                         ox.PRESETS["unit"])[0], rtol=1e-4, atol=1e-4)


# ---- batching -------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_fixed_and_dynamic_batch_agree_and_count(layout):
    images = random_images(10, seed=11)
    results = {}
    fed = {}
    for batch in (1, 4, "N"):
        chunks = []
        model = ox.Model(classifier(layout, batch=batch), preset="imagenet", batch_size=3)
        assert model.fixed_batch == (batch if isinstance(batch, int) else None)
        assert model.batch_size == (batch if isinstance(batch, int) else 3)
        inner = model._fn
        model._fn = lambda chunk, inner=inner, chunks=chunks: (chunks.append(chunk.copy()), inner(chunk))[1]
        results[batch] = model.predict(images, kind="logits")
        assert results[batch].shape == (10, K)
        assert model.evaluations == 10  # padding is not counted
        calls = [c.shape[0] for c in chunks]
        if batch == 1:
            assert calls == [1] * 10
        elif batch == 4:
            assert calls == [4, 4, 4]  # the last chunk of 2 padded to 4
        else:
            assert calls == [3, 3, 3, 1]  # at most batch_size rows per model call
        fed[batch] = np.concatenate(chunks)[:10]
    expected = np_logits(images, ox.PRESETS["imagenet"])
    np.testing.assert_allclose(results["N"], expected, rtol=1e-4, atol=1e-4)
    # The package feeds bitwise-identical inputs and keeps the right rows; onnxruntime itself
    # may reduce in a batch-dependent order (NHWC), hence a few ulps of tolerance on the scores.
    np.testing.assert_array_equal(fed[1], fed["N"])
    np.testing.assert_array_equal(fed[4], fed["N"])
    np.testing.assert_allclose(results[1], results["N"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[4], results["N"], rtol=1e-5, atol=1e-6)
    # Scores are not shuffled or taken from the padding: each row matches its own image alone.
    model = ox.Model(classifier(layout, batch=4), preset="imagenet")
    for i in (0, 8, 9):
        np.testing.assert_allclose(model.predict(images[i], kind="logits"), results["N"][i], rtol=1e-5, atol=1e-6)


def test_fixed_batch_evaluate_masks_counts_images_not_padding():
    model = ox.Model(classifier(batch=4), preset="unit", batch_size=64, progress=False)
    image = random_images(1, seed=2)[0]
    seen = []
    model.evaluate_masks(model.prepare(image, np.zeros_like(image)), 10,
                         lambda first, count: np.ones((count, H, W), np.float32),
                         lambda masks, scores: seen.append(scores.shape), kind="logits")
    assert seen == [(4, K), (4, K), (2, K)]
    assert model.evaluations == 10


# ---- output kinds ---------------------------------------------------------------------------
def test_softmax_model_is_probabilities_and_not_softmaxed_twice(tmp_path):
    data = classifier(softmax=True)
    path = write(tmp_path, data)
    images = random_images(4, seed=5)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    graph_out = sess.run(None, {"image": np_preprocess(images, ox.PRESETS["unit"], "NCHW").astype(np.float32)})[0]
    for source in (path, data):
        model = ox.Model(source, preset="unit")
        # The documented rule: "auto" looks for a final Softmax node (before any evaluation).
        assert model.output_kind == "probabilities"
        probs = model.predict(images, kind="probabilities")
        assert model.output_kind == "probabilities"
        np.testing.assert_allclose(probs, graph_out, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(probs, np_softmax(np_logits(images, ox.PRESETS["unit"])), rtol=1e-4, atol=1e-6)
        # Softmaxing twice would flatten the distribution towards uniform.
        assert not np.allclose(probs, np_softmax(probs.astype(np.float64)), atol=1e-3)
        np.testing.assert_allclose(model.predict(images, kind="logits"), np.log(graph_out), rtol=1e-4, atol=1e-4)
    # A session has no visible graph: the first batch decides, with the same result.
    model = ox.Model(sess, preset="unit")
    np.testing.assert_allclose(model.predict(images), graph_out, rtol=1e-5, atol=1e-7)
    assert model.output_kind == "probabilities"


def test_softmax_detection_follows_shape_ops_and_checks_the_axis():
    images = random_images(3, seed=15)
    through = ox.Model(classifier(softmax=True, flatten_after=True), preset="unit")
    assert through.output_kind == "probabilities"
    np.testing.assert_allclose(through.predict(images), np_softmax(np_logits(images, ox.PRESETS["unit"])),
                               rtol=1e-4, atol=1e-6)
    # A Softmax over the batch axis does not make class probabilities.
    over_batch = ox.Model(classifier(softmax=True, softmax_axis=0), preset="unit")
    assert over_batch.output_kind is None
    over_batch.predict(images)
    assert over_batch.output_kind == "logits"


def test_logits_model_is_logits_and_predict_softmaxes():
    model = ox.Model(classifier(), preset="unit")
    images = random_images(4, seed=6)
    logits = np_logits(images, ox.PRESETS["unit"])
    assert model.output_kind in (None, "logits")
    np.testing.assert_allclose(model.predict(images), np_softmax(logits), rtol=1e-4, atol=1e-6)
    assert model.output_kind == "logits"
    np.testing.assert_allclose(model.predict(images, kind="logits"), logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.predict(images, kind="raw"), logits, rtol=1e-4, atol=1e-4)
    with pytest.raises(OnnxplainError, match="score kind must be"):
        model.predict(images, kind="softmax")


def test_explicit_output_is_respected():
    images = random_images(3, seed=8)
    # Logits that happen to look like probabilities (non-negative, rows sum to 1): with
    # output="logits" they are still logits.
    flat = classifier(weights=np.zeros((3, K), np.float32), bias=np.full(K, 1 / K, np.float32))
    auto = ox.Model(flat, preset="unit")
    auto.predict(images)
    assert auto.output_kind == "probabilities"  # the documented first-batch heuristic
    forced = ox.Model(flat, preset="unit", output="logits")
    assert forced.output_kind == "logits"
    np.testing.assert_allclose(forced.predict(images), np.full((3, K), 1 / K), rtol=1e-5)
    assert forced.output_kind == "logits"
    # A Softmax model declared as logits is softmaxed (the user's word wins).
    declared = ox.Model(classifier(softmax=True), preset="unit", output="logits")
    assert declared.output_kind == "logits"
    probs = np_softmax(np_logits(images, ox.PRESETS["unit"]))
    np.testing.assert_allclose(declared.predict(images), np_softmax(probs), rtol=1e-4, atol=1e-6)
    with pytest.raises(OnnxplainError, match="output must be one of"):
        ox.Model(classifier(), output="scores")


# ---- sources --------------------------------------------------------------------------------
def test_path_bytes_and_session_sources_agree(tmp_path):
    data = classifier("NHWC")
    path = write(tmp_path, data)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    images = random_images(5, seed=9)
    out = []
    for source in (path, str(path), data, bytearray(data), sess):
        model = ox.Model(source, preset="efficientnet-lite")
        assert model.layout == "NHWC" and model.input_name == "image" and model.output_name == "logits"
        out.append(model.predict(images, kind="logits"))
        if source is sess:
            assert model.session is sess
    for o in out[1:]:
        np.testing.assert_array_equal(o, out[0])
    np.testing.assert_allclose(out[0], np_logits(images, ox.PRESETS["efficientnet-lite"]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_callable_receives_preprocessed_batch(layout):
    received = []
    pre = CUSTOM_BGR

    def fn(batch):
        received.append(batch.copy())
        nhwc = batch if layout == "NHWC" else batch.transpose(0, 2, 3, 1)
        return nhwc.mean(axis=(1, 2)) @ WEIGHTS + BIAS

    model = ox.Model(fn, input_size=(H, 12), layout=layout, preset=pre, progress=False)
    assert model.session is None and model.input_size == (H, 12) and model.layout == layout
    images = random_images(3, seed=10, w=12)
    scores = model.predict(images, kind="logits")
    assert len(received) == 1
    batch = received[0]
    assert batch.dtype == np.float32
    assert batch.shape == ((3, 3, H, 12) if layout == "NCHW" else (3, H, 12, 3))
    np.testing.assert_allclose(batch, np_preprocess(images, pre, layout), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, np_logits(images, pre), rtol=1e-4, atol=1e-4)
    assert model.evaluations == 3


def test_callable_layout_from_preset():
    pre = ox.Preprocess(1 / 255, layout="NHWC")
    shapes = []
    model = ox.Model(lambda b: (shapes.append(b.shape), np.zeros((b.shape[0], 2), np.float32))[1],
                     input_size=(H, W), preset=pre, output="logits")
    model.predict(random_images(2))
    assert model.layout == "NHWC" and shapes == [(2, H, W, 3)]
    with pytest.raises(OnnxplainError, match="needs input_size"):
        ox.Model(lambda b: b, preset="unit")
    with pytest.raises(OnnxplainError, match="layout must be"):
        ox.Model(lambda b: b, input_size=(H, W), layout="CHW")


# ---- streaming perturbations ----------------------------------------------------------------
@pytest.mark.parametrize("preset", ["imagenet", "custom-bgr"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_evaluate_masks_streams_exact_batches(layout, preset):
    received = []

    def fn(batch):
        received.append(batch.copy())
        nhwc = batch if layout == "NHWC" else batch.transpose(0, 2, 3, 1)
        return nhwc.mean(axis=(1, 2)) @ WEIGHTS + BIAS

    pre = PRESETS[preset]
    model = ox.Model(fn, input_size=(H, W), layout=layout, preset=pre, batch_size=3, progress=False)
    rng = np.random.default_rng(12)
    image = rng.uniform(0, 255, (H, W, 3)).astype(np.float32)
    baseline = rng.uniform(0, 255, (H, W, 3)).astype(np.float32)
    all_masks = rng.uniform(0, 1, (10, H, W)).astype(np.float32)
    all_masks[0] = 1.0
    all_masks[1] = 0.0
    calls, consumed = [], []

    def make_masks(first, count):
        calls.append((first, count))
        return np.ascontiguousarray(all_masks[first:first + count])

    model.evaluate_masks(model.prepare(image, baseline), 10, make_masks, lambda m, s: consumed.append((m.copy(), s.copy())),
                         kind="logits")
    assert calls == [(0, 3), (3, 3), (6, 3), (9, 1)]
    assert [b.shape[0] for b in received] == [3, 3, 3, 1]
    assert model.evaluations == 10
    perturbed = all_masks[..., None] * image + (1 - all_masks[..., None]) * baseline
    expected_input = np_preprocess(perturbed, pre, layout)
    np.testing.assert_allclose(np.concatenate(received), expected_input, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.concatenate(received)[0], np_preprocess(image[None], pre, layout)[0], atol=1e-5)
    np.testing.assert_allclose(np.concatenate(received)[1], np_preprocess(baseline[None], pre, layout)[0], atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([m for m, _ in consumed]), all_masks)
    np.testing.assert_allclose(np.concatenate([s for _, s in consumed]), np_logits(perturbed, pre),
                               rtol=1e-4, atol=1e-4)


# ---- bad models -----------------------------------------------------------------------------
def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(OnnxplainError, match="model file not found"):
        ox.Model(tmp_path / "nope.onnx")
    bad = write(tmp_path, np.random.default_rng(0).bytes(256), "x.onnx")
    with pytest.raises(OnnxplainError, match="cannot load ONNX model"):
        ox.Model(bad)
    with pytest.raises(OnnxplainError, match="cannot load ONNX model"):
        ox.Model(b"definitely not onnx")
    with pytest.raises(OnnxplainError, match="a model must be"):
        ox.Model(12345)
    assert issubclass(OnnxplainError, ValueError)


def test_two_inputs_need_input_name():
    data = classifier(extra_input=True)
    with pytest.raises(OnnxplainError, match=r"inputs \['offset'\] are not fed; give their values with constants="):
        ox.Model(data)
    offset = np.arange(K, dtype=np.float32)
    images = random_images(2, seed=14)
    for given in (offset, offset[None]):  # without or with the batch axis: repeated per batch
        model = ox.Model(data, constants={"offset": given}, output="logits")
        assert model.input_name == "image" and model.input_size == (H, W)
        np.testing.assert_allclose(model.predict(images, kind="logits"),
                                   np_logits(images, ox.PRESETS["imagenet"]) + offset, rtol=1e-4, atol=1e-4)
    with pytest.raises(OnnxplainError, match=r"constants name \['offst'\]"):
        ox.Model(data, constants={"offst": offset})
    with pytest.raises(OnnxplainError, match="no input named 'offset2'"):
        ox.Model(data, input_name="offset2")
    # Choosing the (N, K) input: not an image.
    with pytest.raises(OnnxplainError, match="4 dims"):
        ox.Model(data, input_name="offset", constants={"image": np.zeros((3, H, W), np.float32)})


def test_two_outputs_need_output_name():
    data = classifier(extra_output=True)
    with pytest.raises(OnnxplainError, match=r"several shaped like class scores.*output_name="):
        ox.Model(data)
    images = random_images(2, seed=13)
    logits = np_logits(images, ox.PRESETS["imagenet"])
    as_logits = ox.Model(data, output_name="logits")
    np.testing.assert_allclose(as_logits.predict(images, kind="logits"), logits, rtol=1e-4, atol=1e-4)
    as_probs = ox.Model(data, output_name="probs2")
    np.testing.assert_allclose(as_probs.predict(images, kind="raw"), np_softmax(logits), rtol=1e-4, atol=1e-6)
    assert as_probs.output_kind == "probabilities"
    with pytest.raises(OnnxplainError, match="no output named"):
        ox.Model(data, output_name="scores")


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_image_to_image_model_rejected(layout):
    with pytest.raises(OnnxplainError, match=r"classifier must output \(N, classes\)"):
        ox.Model(image_to_image(layout))


def test_one_output_column_is_a_binary_logit():
    model = ox.Model(classifier(weights=np.ones((3, 1), np.float32), bias=np.zeros(1, np.float32)), preset="unit")
    images = random_images(2, seed=4)
    logit = np_logits(images, ox.PRESETS["unit"], np.ones((3, 1), np.float32), np.zeros(1, np.float32))[:, 0]
    p = 1 / (1 + np.exp(-logit.astype(np.float64)))
    np.testing.assert_allclose(model.predict(images), np.stack([1 - p, p], axis=1), rtol=1e-5, atol=1e-6)
    assert model.binary == "logit" and model.num_classes == 2 and model.output_kind == "probabilities"


def test_grey_model_and_wrong_type():
    grey = classifier(channels=1, weights=WEIGHTS[:1])
    with pytest.raises(OnnxplainError, match=r"3 mean/std values but the model has 1 channel; pass preset=onnxplain"):
        ox.Model(grey)
    model = ox.Model(grey, preset="unit")
    assert model.channels == 1 and model.layout == "NCHW" and model.input_shape == (1, H, W)
    with pytest.raises(OnnxplainError, match=r"channels=3 contradicts"):
        ox.Model(grey, preset="unit", channels=3)
    with pytest.raises(OnnxplainError, match=r"tensor\(int64\); onnxplain feeds tensor\(float\)"):
        ox.Model(classifier(input_type=TensorProto.INT64))


def test_dynamic_resolution_needs_input_size():
    data = classifier(h="H", w="W")
    with pytest.raises(OnnxplainError, match="dynamic resolution; pass input_size"):
        ox.Model(data)
    model = ox.Model(data, input_size=(8, 12), preset="unit")
    assert model.input_size == (8, 12)
    images = random_images(2, h=8, w=12)
    np.testing.assert_allclose(model.predict(images, kind="logits"), np_logits(images, ox.PRESETS["unit"]),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(OnnxplainError, match="contradicts"):
        ox.Model(classifier(), input_size=(8, 8))


def test_bad_preset_and_batch_size():
    with pytest.raises(OnnxplainError, match="unknown preset 'imagenett'"):
        ox.Model(classifier(), preset="imagenett")
    for bad in (0, -1, 2.5, "8"):
        with pytest.raises(OnnxplainError, match="batch_size must be a positive integer"):
            ox.Model(classifier(), batch_size=bad)
    with pytest.raises(OnnxplainError, match="channel_order"):
        ox.Preprocess(channel_order="BRG")
    with pytest.raises(OnnxplainError, match="non-zero"):
        ox.Preprocess(std=(1.0, 0.0, 1.0))


def test_callable_returning_bad_scores():
    images = random_images(2)
    wrong = ox.Model(lambda b: np.zeros((b.shape[0] + 1, K), np.float32), input_size=(H, W), preset="unit")
    with pytest.raises(OnnxplainError, match="model returned shape"):
        wrong.predict(images)
    cube = ox.Model(lambda b: np.zeros((b.shape[0], K, 2), np.float32), input_size=(H, W), preset="unit")
    with pytest.raises(OnnxplainError, match="model returned shape"):
        cube.predict(images)
    nan = ox.Model(lambda b: np.full((b.shape[0], K), np.nan, np.float32), input_size=(H, W), preset="unit")
    with pytest.raises(OnnxplainError, match="NaN or infinite scores"):
        nan.predict(images)


# ---- bad images -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_model():
    return ox.Model(classifier(), preset="unit", progress=False)


def test_bad_images_rejected(small_model):
    good = random_images(1)[0]
    with pytest.raises(OnnxplainError, match=r"image is 32 x 32 but the model takes 16 x 16"):
        small_model.predict(random_images(1, h=32, w=32)[0])
    with pytest.raises(OnnxplainError, match="NaN or infinite"):
        small_model.predict(np.where(np.arange(3) == 1, np.nan, good).astype(np.float32))
    with pytest.raises(OnnxplainError, match="NaN or infinite"):
        small_model.predict(np.where(np.arange(3) == 1, np.inf, good).astype(np.float32))
    with pytest.raises(OnnxplainError, match=r"0\.\.255"):
        small_model.predict(good * 2)
    with pytest.raises(OnnxplainError, match=r"0\.\.255"):
        small_model.predict(good - 1)
    with pytest.raises(OnnxplainError, match="dtype"):
        small_model.predict(good.astype(object))
    with pytest.raises(OnnxplainError, match="dtype"):
        small_model.predict(good > 100)
    with pytest.raises(OnnxplainError, match=r"H x W x 3"):
        small_model.predict(np.zeros((H, W, 2), np.float32))
    assert small_model.evaluations == 0  # nothing reached the model


def test_load_image(tmp_path):
    with pytest.raises(OnnxplainError, match="image file not found"):
        ox.load_image(tmp_path / "missing.png")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"this is not a PNG file at all\n" * 4)
    with pytest.raises(OnnxplainError, match="cannot read image file"):
        ox.load_image(corrupt, (16, 16))
    with pytest.raises(OnnxplainError, match="file path or a numpy array"):
        ox.load_image([[1, 2, 3]])

    rng = np.random.default_rng(4)
    array = rng.integers(0, 256, (100, 80, 3), dtype=np.uint8)
    out = ox.load_image(array, (16, 16))
    assert out.shape == (16, 16, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    # Area downscaling: every output pixel is a weighted mean of its source block, so the
    # mean intensity is preserved and the output lies between the block extremes.
    np.testing.assert_allclose(out.mean(axis=(0, 1)), array.reshape(-1, 3).mean(axis=0), atol=1.0)
    constant = np.full((100, 80, 3), 77, np.uint8)
    np.testing.assert_allclose(ox.load_image(constant, (16, 16)), 77, atol=1e-3)
    # Files: a written PNG comes back RGB (not BGR).
    import cv2

    png = tmp_path / "img.png"
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # red
    assert cv2.imwrite(str(png), rgb[..., ::-1])
    loaded = ox.load_image(png)
    assert loaded.shape == (20, 30, 3)
    np.testing.assert_array_equal(loaded[0, 0], [200, 0, 0])
    grey = ox.load_image(np.full((10, 10), 9, np.uint8), (10, 10))
    assert grey.shape == (10, 10, 3) and np.all(grey == 9)
    rgba = ox.load_image(np.dstack([array, np.full((100, 80), 255, np.uint8)]))
    np.testing.assert_array_equal(rgba, array.astype(np.float32))


# ---- explainers: argument checks --------------------------------------------------------------
def test_occlusion_targets(small_model):
    image = random_images(1, seed=20)[0]
    occ = ox.Occlusion(small_model)
    for bad, msg in ((K, "not a class index"), (-1, "not a class index"), ([0, 99], "not a class index"),
                     ([], "target list is empty"), ("topx", "target must be"), ("top0", "target must be"),
                     (True, "not a class index")):
        with pytest.raises(OnnxplainError, match=msg):
            occ.attribute(image, target=bad, window=4, stride=4)
    result = occ.attribute(image, target="top2", window=4, stride=4)
    probs = small_model.predict(image)
    assert result.targets == [int(c) for c in np.argsort(-probs)[:2]]
    assert len(result.maps) == 2
    for m in result.maps.values():
        assert m.shape == (H, W) and m.dtype == np.float32
    assert result.evaluations == 1 + 16
    with pytest.raises(OnnxplainError, match="onnxplain.Model"):
        ox.Occlusion(lambda b: b)


def test_rise_parameters(small_model):
    image = random_images(1, seed=21)[0]
    rise = ox.RISE(small_model)
    with pytest.raises(OnnxplainError, match="grid must be a positive integer"):
        rise.attribute(image, grid=0, n_masks=4)
    with pytest.raises(OnnxplainError, match=r"p_keep must be a number in \(0, 1\]"):
        rise.attribute(image, p_keep=0, n_masks=4, grid=4)
    with pytest.raises(OnnxplainError, match="n_masks must be a positive integer"):
        rise.attribute(image, n_masks=0, grid=4)
    with pytest.raises(OnnxplainError, match="finer than the image"):
        rise.attribute(image, grid=H + 1, n_masks=4)
    result = rise.attribute(image, n_masks=8, grid=4, target=[1, 3])
    assert result.targets == [1, 3] and result.evaluations == 1 + 8


def test_image_range_rounding_is_clipped_and_real_overshoot_rejected():
    image = np.full((8, 8, 3), 100.0, np.float32)
    image[0, 0] = [255.001, 0.0, 3.0]
    image[0, 1] = [-0.001, 0.0, 3.0]  # what a float resize or blend can produce
    checked = ox.image.as_image(image)
    np.testing.assert_array_equal(checked[0, :2], [[255.0, 0.0, 3.0], [0.0, 0.0, 3.0]])
    image[0, 0, 0] = 256.0
    with pytest.raises(OnnxplainError, match=r"0\.\.255, got -0\.001\.\.256"):
        ox.image.as_image(image)


def test_image_files(tmp_path):
    with pytest.raises(OnnxplainError, match="image directory not found"):
        ox.image.image_files(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(OnnxplainError, match="no images"):
        ox.image.image_files(tmp_path)
    for name in ("b.PNG", "a.jpg", "c.webp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "d.png").mkdir()  # a folder named like an image is not an image
    assert [p.name for p in ox.image.image_files(tmp_path)] == ["a.jpg", "b.PNG", "c.webp"]


def test_masked_scores_are_every_perturbations_scores_in_order():
    small_model = ox.Model(classifier(), preset="unit", batch_size=4, progress=False)  # 10 masks: 3 batches
    image, baseline = random_images(2, seed=31)
    masks = np.random.default_rng(32).uniform(0, 1, (10,) + small_model.input_size).astype(np.float32)
    scores = small_model.masked_scores(small_model.prepare(image, baseline), 10, lambda first, count: masks[first:first + count])
    blended = masks[..., None] * image + (1 - masks[..., None]) * baseline
    np.testing.assert_allclose(scores, small_model.predict(blended), rtol=1e-5, atol=1e-6)
    assert small_model.masked_scores(small_model.prepare(image, baseline), 0, lambda first, count: masks[:0]).shape[0] == 0
