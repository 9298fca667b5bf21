"""IG and PMI maps (issue 3): exactness against NumPy, planted evidence, the Gaussian sampler's
statistics, determinism, the real model."""
from __future__ import annotations

import json

import numpy as np
import pytest

import onnxplain as ox
from onnxplain import _core
from onnxplain.cli import main
from onnxplain.information import SAMPLE_SLOTS, EPS, PatchEstimates, budgeted_scores, pixel_maps

from helpers import efficientnet_corner_chelsea, needs_efficientnet

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _serialise(nodes, inits, size, classes) -> bytes:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def linear_model(size: int = 16, classes: int = 4, seed: int = 0) -> tuple[bytes, np.ndarray, np.ndarray]:
    """logits = flatten(x) @ w + b on NCHW input: an analytic classifier NumPy can evaluate."""
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=(3 * size * size, classes)) * 0.05).astype(np.float32)
    b = rng.normal(size=classes).astype(np.float32)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["logits"])]
    return _serialise(nodes, {"w": w, "b": b}, size, classes), w, b


def numpy_probabilities(images: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The linear model in NumPy on images N x H x W x 3 (unit preset)."""
    x = (images / 255.0).transpose(0, 3, 1, 2).reshape(len(images), -1)
    z = x.astype(np.float64) @ w.astype(np.float64) + b
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def brute_force(image, w, b, patch, stride, draw, samples, targets):
    """IG and PMI per-pixel maps straight from the formulas; draw(y, x, n) gives sample n."""
    h = image.shape[0]
    p = numpy_probabilities(image[None], w, b)[0]
    starts = list(range(0, h - patch + 1, stride))
    if starts[-1] != h - patch:
        starts.append(h - patch)
    total = np.zeros((1 + len(targets), h, h))
    cover = np.zeros((h, h))
    for y in starts:
        for x in starts:
            filled = []
            for n in range(samples):
                im = image.copy()
                im[y:y + patch, x:x + patch] = draw(y, x, n)
                filled.append(im)
            q = numpy_probabilities(np.stack(filled), w, b).mean(axis=0)
            pmi = np.log((p + EPS) / (q + EPS))
            scores = [float(p @ pmi)] + [float(pmi[t]) for t in targets]
            for i, s in enumerate(scores):
                total[i, y:y + patch, x:x + patch] += s
            cover[y:y + patch, x:x + patch] += 1
    return total / cover


@pytest.mark.parametrize("stride", [1, 3])
def test_dense_maps_equal_numpy_formulas_constant_sampler(stride):
    data, w, b = linear_model()
    model = ox.Model(data, preset="unit", progress=False, batch_size=13)
    image = np.random.default_rng(1).uniform(0, 255, (16, 16, 3)).astype(np.float32)
    ig, pmi = ox.information_maps(model, image, target=[0, 2], patch=4, stride=stride, samples=1, mode="dense",
                                  sampler=ox.information.ConstantSampler(60.0))
    expected = brute_force(image, w, b, 4, stride, lambda y, x, n: 60.0, 1, [0, 2])
    top = int(np.argmax(numpy_probabilities(image[None], w, b)[0]))
    assert ig.targets == [top] and pmi.targets == [0, 2]
    np.testing.assert_allclose(ig[top], expected[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pmi[0], expected[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pmi[2], expected[2], rtol=1e-4, atol=1e-5)
    positions = len(_core.window_positions(16, 4, stride)) ** 2
    assert ig.evaluations == 1 + positions and ig.params["patches"] == positions


def test_dense_maps_equal_numpy_formulas_random_bank_sampler():
    """Several samples per patch from a random reference image: the documented draw rule."""
    data, w, b = linear_model(seed=3)
    model = ox.Model(data, preset="unit", progress=False, batch_size=7)
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (16, 16, 3)).astype(np.float32)
    refs = [rng.uniform(0, 255, (16, 16, 3)).astype(np.float32) for _ in range(3)]
    seed, samples = 11, 3
    pmi = ox.PMI(model).attribute(image, target=[1], patch=4, stride=3, samples=samples, mode="dense",
                                  sampler="marginal", references=refs, seed=seed)

    def draw(y, x, n):
        r = int(_core.uniform(seed, (y * 16 + x) * SAMPLE_SLOTS + n, 0) * 3)
        return refs[r][y:y + 4, x:x + 4]

    expected = brute_force(image, w, b, 4, 3, draw, samples, [1])
    np.testing.assert_allclose(pmi[1], expected[1], rtol=1e-4, atol=1e-5)


def test_pixel_maps_average_covering_patches():
    ys, xs = np.array([0, 0, 2], np.int64), np.array([0, 1, 2], np.int64)
    maps = pixel_maps(np.array([[1.0], [3.0], [5.0]]), ys, xs, 2, (4, 4))[0]
    assert maps[0, 0] == 1.0 and maps[0, 1] == 2.0 and maps[0, 2] == 3.0 and maps[3, 3] == 5.0
    assert np.isnan(maps[3, 0])  # no patch covers it


def detector_model(size: int = 32) -> bytes:
    """Class 1 fires when a 4 x 4 window is red (sum of R - G over it large): Conv, global max pool,
    then logits [0, 2 (response - 6)] on unit-scaled input."""
    kernel = np.zeros((1, 3, 4, 4), np.float32)
    kernel[0, 0], kernel[0, 1] = 1.0, -1.0
    nodes = [helper.make_node("Conv", ["x", "k"], ["c"]), helper.make_node("GlobalMaxPool", ["c"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["logits"])]
    inits = {"k": kernel, "w": np.array([[0.0, 2.0]], np.float32), "b": np.array([0.0, -12.0], np.float32)}
    return _serialise(nodes, inits, size, 2)


def planted(seed: int = 0) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    image = np.clip(128 + rng.normal(0, 6, (32, 32, 1)) + rng.normal(0, 2, (32, 32, 3)), 0, 255).astype(np.float32)
    image[18:22, 9:13] = [230.0, 25.0, 25.0]
    return image, (18, 9, 22, 13)


@pytest.mark.parametrize("sampler", ["gaussian", "inpaint", "blur"])
def test_detector_pmi_peaks_on_planted_pattern(sampler):
    model = ox.Model(detector_model(), preset="unit", progress=False)
    image, (y0, x0, y1, x1) = planted()
    assert np.argmax(model.predict(image)) == 1
    ig, pmi = ox.information_maps(model, image, target=[1], patch=4, stride=1, samples=4, mode="dense",
                                  sampler=sampler, seed=3)
    peak = np.unravel_index(np.argmax(pmi[1]), pmi[1].shape)
    assert y0 <= peak[0] < y1 and x0 <= peak[1] < x1, peak
    assert ig[1].min() >= -1e-6
    outside = np.ones(ig[1].shape, bool)
    outside[max(0, y0 - 3):y1 + 3, max(0, x0 - 3):x1 + 3] = False
    for a in (ig[1], pmi[1]):
        assert a[y0:y1, x0:x1].mean() > 0.1  # removing the pattern costs evidence (nats)
        assert np.abs(a[outside]).max() < 0.05 * a.max()


def test_budgeted_mode_is_close_to_dense_and_cheaper():
    model = ox.Model(detector_model(), preset="unit", progress=False)
    image, (y0, x0, y1, x1) = planted(1)
    dense_ig, dense_pmi = ox.information_maps(model, image, target=[1], patch=4, samples=2, mode="dense", seed=0)
    ig, pmi = ox.information_maps(model, image, target=[1], patch=4, samples=2, budget=300, budget_samples=2,
                                  seed=0)
    assert ig.params["mode"] == "budgeted" and ig.evaluations <= 301 < dense_ig.evaluations
    assert pmi.signed is True and ig.signed is None  # PMI overlays: diverging colours centred on 0
    assert ig.params["levels"][0]["spacing"] > 1
    for cheap, full in ((ig[1], dense_ig[1]), (pmi[1], dense_pmi[1])):
        assert np.corrcoef(cheap.ravel(), full.ravel())[0, 1] > 0.9
        peak = np.unravel_index(np.argmax(cheap), cheap.shape)
        assert y0 - 1 <= peak[0] <= y1 and x0 - 1 <= peak[1] <= x1, peak


def test_budget_covering_the_grid_gives_the_dense_answer():
    model = ox.Model(detector_model(), preset="unit", progress=False)
    image, _ = planted(2)
    a = ox.IG(model).attribute(image, patch=4, stride=4, samples=2, mode="dense", seed=4)
    b = ox.IG(model).attribute(image, patch=4, stride=4, samples=2, budget=10_000, seed=4)
    assert b.params["mode"] == "dense (within budget)"
    np.testing.assert_array_equal(a[1], b[1])


def test_adaptive_samples_go_where_the_estimate_moves():
    """Once every patch has a sample, extra samples go to the patches whose estimate is unstable:
    here every score is 1, the bottom half of an 8 x 8 grid draws +-1 noise, the top half none."""
    noisy = np.arange(64) >= 32

    def draw(patches, ns, sums, rows):
        np.add.at(sums[:, 0], rows, 1.0 + noisy[patches] * np.where(ns % 2 == 0, 1.0, -1.0) * (1 + patches % 3))
        return len(patches)

    estimates = PatchEstimates(64, 1, draw, lambda sums, counts: sums / counts[:, None])
    field, record, _ = budgeted_scores(estimates, 8, 8, 64 + 120, samples=1, max_samples=4)
    assert record["evaluated"] == 64 + 120 == estimates.counts.sum()
    assert sum(record["extra_samples"]) == 120
    assert (estimates.counts[~noisy] == 2).all()  # one extra sample shows they are stable
    assert (estimates.counts[noisy] >= 3).all() and estimates.counts.max() == 4
    np.testing.assert_allclose(field[:, 0], estimates.sums[:, 0] / estimates.counts)


def test_adaptive_budget_is_spent_exactly_and_sample_zero_is_the_dense_draw():
    model = ox.Model(detector_model(), preset="unit", progress=False)
    image, (y0, x0, y1, x1) = planted(5)
    grid = 15 * 15  # patch 4, stride 2 on 32 x 32
    ig = ox.IG(model).attribute(image, patch=4, stride=2, samples=3, budget=grid + 100, seed=2)
    assert ig.evaluations == grid + 100 + 1  # + the clean image
    assert ig.params["mode"] == "budgeted" and sum(ig.params["extra_samples"]) == 100
    one = ox.IG(model).attribute(image, patch=4, stride=2, samples=1, mode="dense", seed=2)
    # Sample 0 of every patch is the dense one's draw: far from the planted pattern nothing moves
    # the estimate, so the map is the dense 1-sample map there, value for value; on the pattern
    # the extra samples went in and changed it.
    far = np.zeros(image.shape[:2], bool)
    far[:8, :] = True
    np.testing.assert_array_equal(ig[1][far], one[1][far])
    assert not np.array_equal(ig[1][y0:y1, x0:x1], one[1][y0:y1, x0:x1])


def _conditional(mean, cov, patch_idx, observed, values):
    s_oo = cov[np.ix_(observed, observed)]
    s_po = cov[np.ix_(patch_idx, observed)]
    a = s_po @ np.linalg.inv(s_oo)
    return mean[patch_idx] + a @ (values - mean[observed]), cov[np.ix_(patch_idx, patch_idx)] - a @ s_po.T


def test_gaussian_sampler_reproduces_known_conditional_and_uses_only_existing_frame():
    k, f, size = 2, 1, 8
    side = k + 2 * f
    d = 3 * side * side
    rng = np.random.default_rng(5)
    root = rng.normal(size=(d, d)) / np.sqrt(d)
    cov = 60.0 * (root @ root.T + 0.3 * np.eye(d))
    mean = 128.0 + rng.normal(0, 5, d)
    sampler = ox.GaussianSampler.from_moments(k, f, mean, cov)
    model = ox.Model(linear_model(size)[0], preset="unit", progress=False)
    image = np.clip(128 + rng.normal(0, 10, (size, size, 3)), 0, 255).astype(np.float32)
    sampler.prepare(model, image, k)
    index = np.arange(d).reshape(side, side, 3)
    inner = np.zeros((side, side), bool)
    inner[f:f + k, f:f + k] = True
    patch_idx = index[inner]
    n = 40_000
    for y, x in ((3, 2), (0, 0), (size - k, 3)):
        window = np.zeros((side, side, 3))
        present = np.zeros((side, side), bool)
        for wy in range(side):
            for wx in range(side):
                if 0 <= y - f + wy < size and 0 <= x - f + wx < size:
                    window[wy, wx] = image[y - f + wy, x - f + wx]
                    present[wy, wx] = True
        frame = present & ~inner
        observed = index[frame].ravel()
        want_mean, want_cov = _conditional(mean, cov, patch_idx.ravel(), observed, window[frame].ravel())
        streams = np.arange(n, dtype=np.uint64) + np.uint64(1000 * y + x)
        drawn = sampler.sample(np.full(n, y, np.int64), np.full(n, x, np.int64), streams, 7).reshape(n, -1)
        se = np.sqrt(np.diag(want_cov) / n)
        assert np.all(np.abs(drawn.mean(axis=0) - want_mean) < 5 * se + 1e-3), (y, x)
        got_cov = np.cov(drawn, rowvar=False)
        assert np.abs(got_cov - want_cov).max() < 0.06 * np.abs(want_cov).max(), (y, x)
        np.testing.assert_allclose(sampler.conditional(y, x)[0].ravel(), want_mean, rtol=1e-4)
        if not frame[~inner].all():  # border: conditioning on zero padding would be a different law
            padded = index[~inner].ravel()
            pad_mean, _ = _conditional(mean, cov, patch_idx.ravel(), padded, window[~inner].ravel())
            assert np.abs(pad_mean - want_mean).max() > 10 * se.max()


def test_gaussian_fit_and_local_scale():
    """Fitted on textured references, the sampler is quiet in a flat region and noisy in texture."""
    rng = np.random.default_rng(8)
    refs = [np.clip(128 + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype(np.float32) for _ in range(2)]
    model = ox.Model(detector_model(), preset="unit", progress=False)
    image = np.full((32, 32, 3), 100.0, np.float32)
    image[:, 16:] = refs[0][:, 16:]
    sampler = ox.GaussianSampler(references=refs)
    sampler.prepare(model, image, 4)
    assert sampler.mean.shape == (3 * 64,) and abs(sampler.mean.mean() - 128) < 3
    streams = np.arange(200, dtype=np.uint64)
    flat = sampler.sample(np.full(200, 4, np.int64), np.full(200, 4, np.int64), streams, 0)
    busy = sampler.sample(np.full(200, 20, np.int64), np.full(200, 22, np.int64), streams, 0)
    assert flat.std(axis=0).mean() < 1.0 < 15.0 < busy.std(axis=0).mean()


@pytest.mark.parametrize("mode, budget", [("dense", 120), ("budgeted", 120), ("budgeted", 400)])
def test_same_seed_same_maps_for_any_batch_size(mode, budget):
    image, _ = planted(4)
    results = []
    for batch_size, threads in ((1, 1), (7, 2), (64, 0)):
        model = ox.Model(detector_model(), preset="unit", batch_size=batch_size, threads=threads, progress=False)
        ig, pmi = ox.information_maps(model, image, target="top", patch=4, stride=2, samples=3, mode=mode,
                                      budget=budget, seed=9)
        results.append((ig[1], pmi[1], ig.evaluations))
    for other in results[1:]:
        np.testing.assert_allclose(other[0], results[0][0], rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(other[1], results[0][1], rtol=1e-5, atol=1e-7)
        assert other[2] == results[0][2]
    model = ox.Model(detector_model(), preset="unit", progress=False)
    changed = ox.PMI(model).attribute(image, target="top", patch=4, stride=2, samples=3, mode=mode, budget=budget,
                                      seed=10)
    assert not np.array_equal(changed[1], results[0][1])


def test_bad_input_is_reported():
    model = ox.Model(detector_model(), preset="unit", progress=False)
    image, _ = planted()
    with pytest.raises(ox.OnnxplainError, match="sampler must be one of"):
        ox.PMI(model).attribute(image, sampler="magic")
    with pytest.raises(ox.OnnxplainError, match="needs reference images"):
        ox.PMI(model).attribute(image, sampler="marginal")
    with pytest.raises(ox.OnnxplainError, match="larger than the image"):
        ox.IG(model).attribute(image, patch=64)
    with pytest.raises(ox.OnnxplainError, match="mode must be"):
        ox.IG(model).attribute(image, mode="fast")
    with pytest.raises(ox.OnnxplainError, match="budget must be"):
        ox.IG(model).attribute(image, budget=0)
    with pytest.raises(ox.OnnxplainError, match="below the coarsest lattice"):
        ox.IG(model).attribute(image, patch=4, budget=5)
    with pytest.raises(ox.OnnxplainError, match="eps must be"):
        ox.PMI(model).attribute(image, eps=0.0)


def test_cli_ig_and_pmi(tmp_path):
    import cv2

    model_path = tmp_path / "detector.onnx"
    model_path.write_bytes(detector_model())
    image, _ = planted()
    cv2.imwrite(str(tmp_path / "img.png"), cv2.cvtColor(image.round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    for method, target in (("ig", "top"), ("pmi", "top2")):
        out = tmp_path / method
        code = main(["explain", str(model_path), str(tmp_path / "img.png"), "--method", method, "--preset", "unit",
                     "--target", target, "--patch", "4", "--budget", "200", "--out", str(out), "--quiet"])
        assert code == 0
        record = json.loads((out / "result.json").read_text())
        assert record["method"] == method and record["evaluations"] <= 201
        for t in record["targets"]:
            assert np.load(out / f"{method}_{t}.npy").shape == (32, 32)
        assert len(record["targets"]) == (1 if method == "ig" else 2)
    code = main(["explain", str(model_path), str(tmp_path / "img.png"), "--method", "pmi", "--preset", "unit",
                 "--sampler", "marginal", "--out", str(tmp_path / "bad"), "--quiet"])
    assert code == 2
    code = main(["explain", str(model_path), str(tmp_path / "img.png"), "--method", "ig", "--preset", "unit",
                 "--sampler", "onnx", "--out", str(tmp_path / "bad"), "--quiet"])
    assert code == 2


@needs_efficientnet
def test_efficientnet_corner_photo_ig_and_pmi_peak_inside_photo():
    model, canvas, (y0, x0, y1, x1), top = efficientnet_corner_chelsea()
    ig, pmi = ox.information_maps(model, canvas, target="top", patch=16, stride=16, samples=1, mode="dense",
                                  sampler=ox.GaussianSampler(frame=1, max_windows=3000))
    assert ig.targets == pmi.targets == [top]
    for result in (ig, pmi):
        peak = np.unravel_index(np.argmax(result[top]), result[top].shape)
        assert y0 <= peak[0] < y1 and x0 <= peak[1] < x1, (result.method, peak)
    assert ig[top].min() >= -1e-6


def onnx_sampler(k: int, logits: np.ndarray | None = None, values: np.ndarray | None = None) -> bytes:
    """A learned-sampler stand-in: slices the (zeroed) centre of its 4 x 3K x 3K input and adds
    constants: pixel values (1, 3, K, K) in 0..1, or logits (1, 3, K, K, 256)."""
    nodes = [helper.make_node("Slice", ["w", "starts", "ends", "axes"], ["centre"])]
    inits = {"starts": np.array([0, k, k], np.int64), "ends": np.array([3, 2 * k, 2 * k], np.int64),
             "axes": np.array([1, 2, 3], np.int64)}
    if logits is not None:
        nodes += [helper.make_node("Unsqueeze", ["centre", "last"], ["u"]), helper.make_node("Add", ["u", "c"], ["out"])]
        inits.update(last=np.array([4], np.int64), c=logits.astype(np.float32))
        shape = ["N", 3, k, k, 256]
    else:
        nodes += [helper.make_node("Add", ["centre", "c"], ["out"])]
        inits["c"] = values.astype(np.float32)
        shape = ["N", 3, k, k]
    graph = helper.make_graph(nodes, "sampler", [helper.make_tensor_value_info("w", TensorProto.FLOAT, ["N", 4, 3 * k, 3 * k])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def test_onnx_sampler_values_and_distributions():
    k = 4
    model = ox.Model(detector_model(), preset="unit", progress=False)
    image, _ = planted()
    values = np.random.default_rng(0).uniform(0, 1, (1, 3, k, k))
    sampler = ox.OnnxSampler(onnx_sampler(k, values=values))
    sampler.prepare(model, image, k)
    n = 6
    got = sampler.sample(np.array([0, 0, 10, 10, 28, 28], np.int64), np.array([0, 0, 5, 5, 28, 28], np.int64),
                         np.arange(n, dtype=np.uint64), 0)
    np.testing.assert_allclose(got, np.broadcast_to(values[0].transpose(1, 2, 0) * 255, (n, k, k, 3)), rtol=1e-5)
    logits = np.full((1, 3, k, k, 256), -1e4)
    logits[..., 10], logits[..., 200] = np.log(0.25), np.log(0.75)
    sampler = ox.OnnxSampler(onnx_sampler(k, logits=logits))
    sampler.prepare(model, image, k)
    n = 500
    drawn = sampler.sample(np.full(n, 3, np.int64), np.full(n, 7, np.int64), np.arange(n, dtype=np.uint64), 5)
    assert set(np.unique(drawn)) == {10.0, 200.0}
    share = (drawn == 200).mean()
    assert abs(share - 0.75) < 4 * np.sqrt(0.75 * 0.25 / drawn.size)
    windows = sampler._windows([(0, 0)])  # a corner window: the image mirrored outside it, unknown at the centre
    unknown = np.zeros((3 * k, 3 * k), bool)
    unknown[k:2 * k, k:2 * k] = True
    np.testing.assert_array_equal(windows[0, 3], unknown)
    assert not windows[0, :3, k:2 * k, k:2 * k].any()
    np.testing.assert_allclose(windows[0, :3, 2 * k:, 2 * k:], image[k:2 * k, k:2 * k].transpose(2, 0, 1) / 255)
    np.testing.assert_allclose(windows[0, :3, :k, :k], image[k - 1::-1, k - 1::-1].transpose(2, 0, 1) / 255)
    pmi = ox.PMI(model).attribute(image, target=[1], patch=k, stride=2, samples=2, mode="dense", sampler=sampler)
    assert np.isfinite(pmi[1]).all()
