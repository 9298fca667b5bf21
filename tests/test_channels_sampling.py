"""Images of any channel count C (1 grey, 3 RGB, 4, 5) in the IG/PMI patch samplers and ROAD's
imputation: the core kernels against references written here from the documented contract
(cpp/include/onnxplain/sampling.hpp, fidelity.hpp: value (pixel * C + channel) takes draw
(pixel * C + channel), so C = 3 keeps the RGB numbering), invariants of the Python samplers, and
IG/PMI end to end on a 1-channel model.

References replay the kernels' float32 operations in their order, so they agree to a few ulps
(a compiler may fuse a*b + c); comparisons of the core with itself are bitwise.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import onnxplain as ox
from onnxplain import _core
from onnxplain import fidelity as fd
from onnxplain.information import (BlurSampler, ConstantSampler, GaussianSampler, InpaintSampler, MarginalSampler,
                                   OnnxSampler, _load_references)

CHANNELS = (1, 3, 4, 5)


def close(got: np.ndarray, want: np.ndarray) -> None:
    """Equal to a few float32 ulps of 0..255 values."""
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-4)


def normals(seed: int, stream: int, first: int, count: int) -> np.ndarray:
    return np.array([_core.normal(seed, stream, first + j) for j in range(count)], np.float32)


# ---- kernels -------------------------------------------------------------------------------

def bank_reference(bank, ys, xs, streams, seed, k, sigma):
    r_count = np.float32(len(bank))
    out = []
    for y, x, s in zip(ys, xs, streams):
        r = min(int(np.float32(_core.uniform(seed, int(s), 0)) * r_count), len(bank) - 1)
        patch = bank[r, y:y + k, x:x + k].copy()
        if sigma > 0:
            z = normals(seed, int(s), 2, patch.size).reshape(patch.shape)
            patch = np.clip(patch + np.float32(sigma) * z, 0, 255)
        out.append(patch)
    return np.stack(out)


@pytest.mark.parametrize("c", CHANNELS)
def test_bank_patch_samples_copy_the_bank_at_their_position_plus_noise(c):
    rng = np.random.default_rng(c)
    h, w, k, n = 9, 11, 3, 40
    bank = rng.uniform(0, 255, (3, h, w, c)).astype(np.float32)
    ys, xs = rng.integers(0, h - k + 1, n).astype(np.int64), rng.integers(0, w - k + 1, n).astype(np.int64)
    streams = rng.integers(0, 2**40, n).astype(np.uint64)
    copies = _core.bank_patch_samples(bank, ys, xs, streams, 5, k, 0.0, 2)
    assert copies.shape == (n, k, k, c)
    np.testing.assert_array_equal(copies, bank_reference(bank, ys, xs, streams, 5, k, 0.0))  # exact copies
    noisy = _core.bank_patch_samples(bank, ys, xs, streams, 5, k, 30.0, 3)
    close(noisy, bank_reference(bank, ys, xs, streams, 5, k, 30.0))
    assert 0 <= noisy.min() and noisy.max() <= 255 and np.abs(noisy - copies).std() > 15
    for threads in (1, 0):  # the core with itself: bitwise, any threads or subset
        np.testing.assert_array_equal(_core.bank_patch_samples(bank, ys, xs, streams, 5, k, 30.0, threads), noisy)
    np.testing.assert_array_equal(_core.bank_patch_samples(bank, ys[7:9], xs[7:9], streams[7:9], 5, k, 30.0), noisy[7:9])


@pytest.mark.parametrize("c", CHANNELS)
def test_noisy_patches_stay_in_range_and_are_deterministic_per_stream(c):
    rng = np.random.default_rng(10 + c)
    k, n = 4, 30
    patches = rng.uniform(0, 255, (n, k, k, c)).astype(np.float32)
    patches[:, 0] = 0.0  # the clip at both ends is exercised
    patches[:, 1] = 255.0
    streams = rng.integers(0, 2**40, n).astype(np.uint64)
    out = patches.copy()
    _core.noisy_patches(out, streams, 9, 40.0, 2)
    assert 0 <= out.min() and out.max() <= 255 and (out == 0).any() and (out == 255).any()
    want = np.stack([np.clip(p + np.float32(40.0) * normals(9, int(s), 2, p.size).reshape(p.shape), 0, 255)
                     for p, s in zip(patches, streams)])
    close(out, want)
    reversed_ = patches[::-1].copy()  # a patch's noise depends on its stream only
    _core.noisy_patches(reversed_, streams[::-1].copy(), 9, 40.0, 1)
    np.testing.assert_array_equal(reversed_[::-1], out)
    # the flat rule: K x K x C values take draws 2 .. 2 + C K^2 - 1 in row-major, channel-last order
    flat = patches.reshape(n, 1, 1, -1).copy()
    _core.noisy_patches(flat, streams, 9, 40.0)
    np.testing.assert_array_equal(flat.reshape(out.shape), out)


def gaussian_reference(image, ys, xs, configs, streams, seed, k, f, patch_mean, window_mean, regress, chol, spread_ref):
    """gaussian_patch_samples in its own float32 operation order (sampling.hpp)."""
    h, w, c = image.shape
    side = k + 2 * f
    d, p = c * side * side, c * k * k
    out = np.empty((len(ys), k, k, c), np.float32)
    for b in range(len(ys)):
        centred = np.zeros(d, np.float32)
        total, squares, seen = [0.0] * c, [0.0] * c, 0
        for wy in range(side):
            for wx in range(side):
                y, x = ys[b] - f + wy, xs[b] - f + wx
                if not (0 <= y < h and 0 <= x < w):
                    continue
                frame = not (f <= wy < f + k and f <= wx < f + k)
                seen += frame
                for ch in range(c):
                    v = image[y, x, ch]
                    centred[(wy * side + wx) * c + ch] = v - window_mean[(wy * side + wx) * c + ch]
                    if frame:
                        total[ch] += float(v)
                        squares[ch] += float(v) * float(v)
        scale = 1.0
        if spread_ref > 0 and seen > 0:
            spread = 0.0
            for ch in range(c):
                m = total[ch] / seen
                spread += max(0.0, squares[ch] / seen - m * m) / c
            scale = math.sqrt(spread / float(np.float32(spread_ref)))
        mean = patch_mean.copy()
        for i in range(d):
            if centred[i] != 0:
                mean += regress[configs[b], i] * centred[i]
        z = normals(seed, int(streams[b]), 0, p)
        noise = np.zeros(p, np.float32)
        for j in range(p):
            noise[j:] += chol[configs[b], j, j:] * z[j]
        out[b] = np.clip(mean + np.float32(scale) * noise, 0, 255).reshape(k, k, c)
    return out


@pytest.mark.parametrize("c", CHANNELS)
@pytest.mark.parametrize("spread", [0.0, 500.0])
def test_gaussian_patch_samples_match_the_reference(c, spread):
    rng = np.random.default_rng(20 + c)
    h, w, k, f, n = 10, 12, 2, 1, 12
    side = k + 2 * f
    d, p = c * side * side, c * k * k
    image = rng.uniform(0, 255, (h, w, c)).astype(np.float32)
    ys, xs = rng.integers(0, h - k + 1, n).astype(np.int64), rng.integers(0, w - k + 1, n).astype(np.int64)
    ys[:2], xs[:2] = 0, w - k  # a corner: part of the frame is outside
    ys[4:7], xs[4:7] = 3, 5  # a run of one position (the mean computed once)
    configs = rng.integers(0, 2, n).astype(np.int64)
    configs[4:7] = 1
    streams = rng.integers(0, 2**40, n).astype(np.uint64)
    patch_mean, window_mean = rng.uniform(60, 200, p).astype(np.float32), rng.uniform(60, 200, d).astype(np.float32)
    regress = (rng.normal(0, 0.05, (2, d, p))).astype(np.float32)
    chol = np.triu(rng.normal(0, 8, (2, p, p))).astype(np.float32)
    got = _core.gaussian_patch_samples(image, ys, xs, configs, streams, 3, k, f, patch_mean, window_mean, regress,
                                       chol, spread, 2)
    assert got.shape == (n, k, k, c)
    close(got, gaussian_reference(image, ys, xs, configs, streams, 3, k, f, patch_mean, window_mean, regress, chol,
                                  spread))
    np.testing.assert_array_equal(got, _core.gaussian_patch_samples(
        image, ys, xs, configs, streams, 3, k, f, patch_mean, window_mean, regress, chol, spread, 1))


@pytest.mark.parametrize("c", CHANNELS)
def test_gaussian_samples_of_a_constant_image_with_zero_covariance_are_that_constant(c):
    h, k, f = 8, 3, 1
    side = k + 2 * f
    d, p = c * side * side, c * k * k
    level = np.linspace(40, 220, c).astype(np.float32)  # one constant per channel
    image = np.ascontiguousarray(np.broadcast_to(level, (h, h, c)), np.float32)
    window_mean = np.tile(level, side * side)
    regress = np.random.default_rng(0).normal(0, 1, (1, d, p)).astype(np.float32)  # no deviation to regress on
    chol = np.zeros((1, p, p), np.float32)
    ys = xs = np.array([0, 2, 5], np.int64)
    got = _core.gaussian_patch_samples(image, ys, xs, np.zeros(3, np.int64), np.arange(3, dtype=np.uint64), 0, k, f,
                                       np.tile(level, k * k), window_mean, regress, chol, 100.0)
    np.testing.assert_array_equal(got, np.broadcast_to(level, got.shape))


def imputation_reference(mask, image):
    """imputation_system's rhs (n, C) in float64, in its neighbour order."""
    h, w, c = image.shape
    offsets = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    removed = mask < 0.5
    rhs = []
    for y, x in zip(*np.nonzero(removed)):
        b = [0.0] * c
        for dy, dx in offsets:
            ny, nx = y + dy, x + dx
            if 0 <= ny < h and 0 <= nx < w and not removed[ny, nx]:
                weight = 1 / 6 if dy == 0 or dx == 0 else 1 / 12
                for ch in range(c):
                    b[ch] -= weight * float(image[ny, nx, ch])
        rhs.append(b)
    return np.array(rhs, np.float64).reshape(-1, c)


@pytest.mark.parametrize("c", CHANNELS)
def test_imputation_system_has_one_right_hand_side_per_channel(c):
    rng = np.random.default_rng(30 + c)
    image = rng.uniform(0, 255, (7, 9, c)).astype(np.float32)
    mask = (rng.random((7, 9)) > 0.5).astype(np.float32)
    variable, rows, cols, values, rhs = _core.imputation_system(mask, image)
    assert rhs.shape == ((mask < 0.5).sum(), c)
    np.testing.assert_array_equal(rhs, imputation_reference(mask, image))  # float64 sums in the same order
    for ch in range(c):  # the matrix is the grey one, each channel's rhs the grey rhs of that channel
        grey = _core.imputation_system(mask, np.ascontiguousarray(image[:, :, ch:ch + 1]))
        for a, b in zip((variable, rows, cols, values), grey[:4]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(rhs[:, ch], grey[4][:, 0])


@pytest.mark.parametrize("c", [1, 4, 5])
def test_road_imputation_reproduces_a_linear_ramp_in_every_channel(c):
    h, w = 16, 20
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = np.stack([30 + (3 + i) * y + (4 - i) * x for i in range(c)], axis=2).astype(np.float32)
    mask = np.ones((h, w), np.float32)
    mask[3:12, 4:15] = 0.0
    mask[1:-1, 1:-1][np.random.default_rng(c).random((h - 2, w - 2)) < 0.3] = 0.0
    removed = mask == 0
    imputed = fd.impute(ramp, mask, noise=0.0)
    assert imputed.shape == ramp.shape
    np.testing.assert_allclose(imputed[removed], ramp[removed], atol=1e-3)
    np.testing.assert_array_equal(imputed[~removed], ramp[~removed])
    noisy = fd.impute(ramp, mask, seed=4)
    np.testing.assert_array_equal(noisy, fd.impute(ramp, mask, seed=4))
    residual = (noisy - imputed)[removed]  # N(0, 2.55^2), draw k * C + channel for removed pixel k
    want = 255.0 * fd.ROAD_NOISE * _core.gaussian(4, 0, residual.size).reshape(residual.shape)
    np.testing.assert_allclose(residual, want, atol=2e-3)


def test_kernels_reject_bad_shapes_clearly():
    ys = xs = np.zeros(1, np.int64)
    streams = np.zeros(1, np.uint64)
    with pytest.raises(ValueError, match="R x H x W x C"):
        _core.bank_patch_samples(np.zeros((0, 4, 4, 2), np.float32), ys, xs, streams, 0, 2)
    with pytest.raises(ValueError, match="4 dimensions"):
        _core.bank_patch_samples(np.zeros((4, 4, 2), np.float32), ys, xs, streams, 0, 2)
    with pytest.raises(ValueError, match="count x K x K x C"):
        _core.noisy_patches(np.zeros((1, 2, 3, 1), np.float32), streams, 0, 1.0)
    with pytest.raises(ValueError, match="H x W x C"):
        _core.imputation_system(np.zeros((4, 4), np.float32), np.zeros((4, 5, 2), np.float32))
    image = np.zeros((6, 6, 2), np.float32)  # C = 2, K = 2, F = 1: P = 8, D = 32
    args = dict(configs=np.zeros(1, np.int64), streams=streams, seed=0, patch=2, frame=1,
                window_mean=np.zeros(32, np.float32), regress=np.zeros((1, 32, 8), np.float32),
                chol=np.zeros((1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"patch_mean must have C K\^2 = 2 x 2\^2 = 8"):
        _core.gaussian_patch_samples(image, ys, xs, patch_mean=np.zeros(12, np.float32), **args)
    args["window_mean"] = np.zeros(48, np.float32)
    with pytest.raises(ValueError, match=r"window_mean must have C \(K \+ 2F\)\^2 = 2 x 4\^2 = 32"):
        _core.gaussian_patch_samples(image, ys, xs, patch_mean=np.zeros(8, np.float32), **args)


# ---- Python samplers -----------------------------------------------------------------------

def grey_model(size: int = 32, channels: int = 1) -> ox.Model:
    """A C-channel detector: class 1's logit rises with the brightest 4 x 4 window of channel 0."""

    def fn(x: np.ndarray) -> np.ndarray:
        windows = np.lib.stride_tricks.sliding_window_view(x[:, 0], (4, 4), axis=(1, 2)).mean(axis=(3, 4))
        response = windows.reshape(len(x), -1).max(axis=1)
        return np.stack([np.zeros_like(response), 30.0 * (response - 0.7)], axis=1)

    return ox.Model(fn, input_size=(size, size), channels=channels, layout="NCHW", preset=ox.Preprocess(1 / 255),
                    progress=False)


def blob_image(channels: int = 1, seed: int = 0) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    image = np.clip(100 + rng.normal(0, 8, (32, 32, channels)), 0, 255).astype(np.float32)
    image[18:22, 9:13, 0] = 235.0
    return image, (18, 9, 22, 13)


@pytest.mark.parametrize("c", [1, 4])
def test_gaussian_sampler_fits_c_channel_windows(c):
    model = grey_model(channels=c)
    image, _ = blob_image(c)
    k, f = 3, 1
    sampler = GaussianSampler(frame=f, per_channel=True)
    sampler.prepare(model, image, k)
    d = c * (k + 2 * f) ** 2
    assert sampler.mean.shape == (d,) and sampler.cov.shape == (d, d)
    channel = np.arange(d) % c
    assert not sampler.cov[channel[:, None] != channel[None, :]].any()  # per channel: block diagonal
    drawn = sampler.sample(np.full(400, 5, np.int64), np.full(400, 7, np.int64), np.arange(400, dtype=np.uint64), 1)
    assert drawn.shape == (400, k, k, c)
    mean, cov = sampler.conditional(5, 7)
    assert mean.shape == (k, k, c) and cov.shape == (c * k * k,) * 2
    se = np.sqrt(np.diag(cov) / 400).reshape(k, k, c)
    assert (np.abs(drawn.mean(axis=0) - mean) < 5 * se + 0.5).all()
    # known moments: a near-zero covariance draws the window mean (the constant image's value)
    level = np.linspace(50, 200, c)
    fixed = GaussianSampler.from_moments(k, f, np.tile(level, (k + 2 * f) ** 2), 1e-6 * np.eye(d), channels=c)
    flat = np.ascontiguousarray(np.broadcast_to(level, (32, 32, c)), np.float32)
    fixed.prepare(model, flat, k)
    np.testing.assert_allclose(fixed.sample(np.array([0, 9], np.int64), np.array([29, 4], np.int64),
                                            np.arange(2, dtype=np.uint64), 0),
                               np.broadcast_to(level, (2, k, k, c)), atol=0.02)
    with pytest.raises(ox.OnnxplainError, match="channels"):
        GaussianSampler.from_moments(k, f, np.zeros(d), np.eye(d), channels=c + 1)
    wrong = GaussianSampler.from_moments(k, f, np.zeros(3 * d), np.eye(3 * d), channels=3 * c)
    with pytest.raises(ox.OnnxplainError, match=f"moments are for {3 * c} channels; the image has {c}"):
        wrong.prepare(model, image, k)


def test_bank_samplers_and_references_take_the_model_channels(tmp_path):
    rng = np.random.default_rng(3)
    rgb = [rng.uniform(0, 255, (32, 32, 3)).astype(np.float32) for _ in range(2)]
    for i, im in enumerate(rgb):
        cv2.imwrite(str(tmp_path / f"{i}.png"), cv2.cvtColor(im.round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    refs = _load_references(tmp_path, (32, 32), 1)  # RGB files as grey for a 1-channel model
    assert [r.shape for r in refs] == [(32, 32, 1)] * 2
    refs4 = _load_references([rng.uniform(0, 255, (32, 32, 4)).astype(np.float32)], (32, 32), 4)
    assert refs4[0].shape == (32, 32, 4)
    model = grey_model()
    image, _ = blob_image()
    ys, xs, streams = np.array([0, 5, 28], np.int64), np.array([3, 5, 28], np.int64), np.arange(3, dtype=np.uint64)
    marginal = MarginalSampler(tmp_path)
    marginal.prepare(model, image, 4)
    got = marginal.sample(ys, xs, streams, 2)
    assert got.shape == (3, 4, 4, 1)
    for g, y, x in zip(got, ys, xs):
        assert any(np.array_equal(g, r[y:y + 4, x:x + 4]) for r in refs)
    constant = ConstantSampler(77.0)
    constant.prepare(model, image, 4)
    np.testing.assert_array_equal(constant.sample(ys, xs, streams, 0), np.full((3, 4, 4, 1), 77.0, np.float32))
    gaussian = GaussianSampler(frame=1, references=tmp_path)
    gaussian.prepare(model, image, 4)
    assert gaussian.mean.shape == (36,)


@pytest.mark.parametrize("c", [1, 3, 5])
def test_blur_sampler_blurs_every_channel_alike(c):
    image = np.random.default_rng(c).uniform(0, 255, (32, 32, c)).astype(np.float32)
    sampler = BlurSampler(sigma=2.0)
    sampler.prepare(grey_model(channels=c), image, 4)
    got = sampler.sample(np.array([6], np.int64), np.array([9], np.int64), np.zeros(1, np.uint64), 0)[0]
    for ch in range(c):
        want = cv2.GaussianBlur(np.ascontiguousarray(image[:, :, ch]), (0, 0), sigmaX=2.0)[6:10, 9:13]
        np.testing.assert_allclose(got[:, :, ch], want, atol=1e-3)


def test_inpaint_sampler_takes_grey_and_refuses_other_channel_counts():
    image, _ = blob_image(1)
    sampler = InpaintSampler(noise=2.0)
    sampler.prepare(grey_model(), image, 4)
    got = sampler.sample(np.array([10, 10], np.int64), np.array([12, 12], np.int64), np.arange(2, dtype=np.uint64), 1)
    assert got.shape == (2, 4, 4, 1) and not np.array_equal(got[0], got[1])
    mask = np.zeros((12, 12), np.uint8)
    mask[4:8, 4:8] = 255
    grey = np.clip(image[6:18, 8:20, 0], 0, 255).round().astype(np.uint8)
    want = cv2.inpaint(grey, mask, 3.0, cv2.INPAINT_TELEA)[4:8, 4:8].astype(np.float32)
    np.testing.assert_allclose(sampler._inpainted(10, 12)[:, :, 0], want)
    four, _ = blob_image(4)
    with pytest.raises(ox.OnnxplainError, match="sampler='inpaint'.*4 channels.*sampler='gaussian'") as info:
        ox.PMI(grey_model(channels=4)).attribute(four, patch=4, sampler="inpaint")
    assert "\n" not in str(info.value)


def onnx_sampler(k: int, channels: int, logits: np.ndarray | None = None, values: np.ndarray | None = None) -> bytes:
    """A learned-sampler stand-in for C channels: slices the (zeroed) centre of its (C + 1) x 3K x 3K
    input and adds constants: values (1, C, K, K) in 0..1, or logits (1, C, K, K, 256) or logistic
    mixture parameters (1, C, K, K, 3M) as `logits`."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Slice", ["w", "starts", "ends", "axes"], ["centre"])]
    inits = {"starts": np.array([0, k, k], np.int64), "ends": np.array([channels, 2 * k, 2 * k], np.int64),
             "axes": np.array([1, 2, 3], np.int64)}
    if logits is not None:
        nodes += [helper.make_node("Unsqueeze", ["centre", "last"], ["u"]), helper.make_node("Add", ["u", "c"], ["out"])]
        inits.update(last=np.array([4], np.int64), c=logits.astype(np.float32))
        shape = ["N", channels, k, k, logits.shape[-1]]
    else:
        nodes += [helper.make_node("Add", ["centre", "c"], ["out"])]
        inits["c"] = values.astype(np.float32)
        shape = ["N", channels, k, k]
    graph = helper.make_graph(
        nodes, "sampler", [helper.make_tensor_value_info("w", TensorProto.FLOAT, ["N", channels + 1, 3 * k, 3 * k])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.mark.parametrize("c", [1, 4])
def test_onnx_sampler_takes_c_plus_one_input_channels(c):
    pytest.importorskip("onnx")
    k = 4
    model = grey_model(channels=c)
    image, _ = blob_image(c)
    values = np.random.default_rng(c).uniform(0, 1, (1, c, k, k))
    sampler = OnnxSampler(onnx_sampler(k, c, values=values))
    sampler.prepare(model, image, k)
    got = sampler.sample(np.array([0, 10], np.int64), np.array([0, 5], np.int64), np.arange(2, dtype=np.uint64), 0)
    np.testing.assert_allclose(got, np.broadcast_to(values[0].transpose(1, 2, 0) * 255, (2, k, k, c)), rtol=1e-5)
    windows = sampler._windows([(0, 0)])
    assert windows.shape == (1, c + 1, 3 * k, 3 * k)
    assert windows[0, c, k:2 * k, k:2 * k].all() and windows[0, c].sum() == k * k  # unknown: the centre only
    np.testing.assert_allclose(windows[0, :c, 2 * k:, 2 * k:], image[k:2 * k, k:2 * k].transpose(2, 0, 1) / 255)
    np.testing.assert_allclose(windows[0, :c, :k, :k], image[k - 1::-1, k - 1::-1].transpose(2, 0, 1) / 255)
    logits = np.full((1, c, k, k, 256), -1e4)
    logits[..., 10], logits[..., 200] = np.log(0.25), np.log(0.75)
    sampler = OnnxSampler(onnx_sampler(k, c, logits=logits))
    sampler.prepare(model, image, k)
    drawn = sampler.sample(np.full(200, 3, np.int64), np.full(200, 7, np.int64), np.arange(200, dtype=np.uint64), 5)
    assert drawn.shape == (200, k, k, c) and set(np.unique(drawn)) == {10.0, 200.0}
    other = 3 if c != 3 else 1
    with pytest.raises(ox.OnnxplainError, match=f"takes {c + 1} input channels"):
        sampler.prepare(grey_model(channels=other), blob_image(other)[0], k)


def mixture_probabilities(params: np.ndarray) -> np.ndarray:
    """The 256 level probabilities (..., 256) float64 of discretised logistic mixtures (..., 3M)."""
    from scipy.special import expit

    m = params.shape[-1] // 3
    weights = np.exp(params[..., :m] - params[..., :m].max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    edges = np.arange(256) + 0.5  # cdf at v + 0.5; the last level takes the upper tail
    z = (edges[:, None] - params[..., None, m:2 * m]) * np.exp(-params[..., None, 2 * m:])
    cdf = (weights[..., None, :] * expit(z)).sum(-1)
    cdf[..., -1] = 1.0
    return np.diff(cdf, prepend=0.0, axis=-1)


def test_logistic_mixture_draws_are_the_draws_of_their_256_probabilities():
    rng = np.random.default_rng(0)
    params = np.concatenate([rng.normal(0, 1, (5, 12, 3)), rng.uniform(-20, 275, (5, 12, 3)),
                             rng.uniform(-2, 4, (5, 12, 3))], axis=2).astype(np.float32)
    rows = rng.integers(0, 5, 300).astype(np.int64)
    streams = np.arange(300, dtype=np.uint64) * 7
    mixture = _core.logistic_mixture_patches(params, rows, streams, 11)
    categorical = _core.categorical_patches(mixture_probabilities(params.astype(np.float64)).astype(np.float32), rows,
                                            streams, 11)
    assert mixture.shape == (300, 12) and set(np.unique(mixture)) <= set(range(256))
    differ = mixture != categorical
    assert differ.mean() < 0.002 and np.abs(mixture - categorical).max() <= 1  # float rounding at a boundary only
    np.testing.assert_array_equal(mixture, _core.logistic_mixture_patches(params, rows, streams, 11, threads=3))
    with pytest.raises(ValueError, match="3M"):
        _core.logistic_mixture_patches(np.ascontiguousarray(params[..., :4]), rows, streams, 0)


@pytest.mark.parametrize("c", [2, 3])
def test_coupled_channels_are_drawn_through_a_gaussian_copula(c):
    """coupling A (A A^T the channels' correlation): rank one draws a pixel's channels at one
    quantile (equal where their distributions are), the identity independently, and a correlation
    of 0.8 gives Spearman's 6 / pi asin(0.4) = 0.79; every value keeps its own distribution."""
    rng = np.random.default_rng(c)
    pixels, n = 4, 1000
    params = np.concatenate([rng.normal(0, 1, (2, pixels, 1, 3)), rng.uniform(60, 195, (2, pixels, 1, 3)),
                             rng.uniform(2, 3.5, (2, pixels, 1, 3))], axis=3)
    params = np.repeat(params, c, axis=2).reshape(2, pixels * c, 9).astype(np.float32)  # j = pixel * C + channel
    rows = np.tile(np.arange(2, dtype=np.int64), n // 2)
    streams = np.arange(n, dtype=np.uint64)

    def drawn(coupling):
        coupling = np.ascontiguousarray(np.broadcast_to(coupling, (2, c, c)), np.float32)
        return _core.logistic_mixture_patches(params, rows, streams, 3, coupling=coupling).reshape(n, pixels, c)

    together = drawn(np.full((c, c), 1 / np.sqrt(c)))
    assert (together == together[..., :1]).all()
    apart = drawn(np.eye(c))
    assert (apart != apart[..., :1]).any(axis=2).mean() > 0.5
    correlation = np.full((c, c), 0.8) + 0.2 * np.eye(c)
    values, vectors = np.linalg.eigh(correlation)
    partial = drawn(vectors * np.sqrt(values) @ vectors.T)
    ranks = [np.argsort(np.argsort(partial[:, :, i].reshape(-1) + 1e-3 * rng.random(n * pixels))) for i in (0, 1)]
    assert abs(np.corrcoef(*ranks)[0, 1] - 6 / np.pi * np.arcsin(0.4)) < 0.06
    independent = _core.logistic_mixture_patches(params, rows, streams, 3).reshape(n, pixels, c)
    for sample in (together, apart, partial):  # the marginals do not change
        assert abs(sample.mean() - independent.mean()) < 4 * independent.std() / np.sqrt(n * pixels / 2)
    probabilities = mixture_probabilities(params.astype(np.float64)).astype(np.float32)
    coupling = np.ascontiguousarray(np.broadcast_to(np.full((c, c), 1 / np.sqrt(c)), (2, c, c)), np.float32)
    categorical = _core.categorical_patches(probabilities, rows, streams, 3, coupling=coupling).reshape(n, pixels, c)
    assert (categorical == categorical[..., :1]).all() and (categorical != together).mean() < 0.002
    with pytest.raises(ValueError, match="coupling must be positions x C x C"):
        _core.logistic_mixture_patches(params, rows, streams, 3, coupling=np.zeros((2, 5, 5), np.float32))
    with pytest.raises(ValueError, match="coupling must be positions x C x C"):
        _core.categorical_patches(probabilities, rows, streams, 3, coupling=np.zeros((3, c, c), np.float32))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=6, max_size=6), st.integers(0, 2**64 - 1))
def test_logistic_mixture_draws_stay_levels_for_any_parameters(values, seed):
    params = np.array(values, np.float32).reshape(1, 1, 6)
    drawn = _core.logistic_mixture_patches(params, np.zeros(50, np.int64), np.arange(50, dtype=np.uint64), seed)
    assert np.isfinite(drawn).all() and (drawn >= 0).all() and (drawn <= 255).all() and (drawn == np.round(drawn)).all()


def test_onnx_sampler_draws_from_mixture_parameters():
    k, c = 4, 3
    model = grey_model(channels=c)
    image, _ = blob_image(c)
    params = np.zeros((1, c, k, k, 6), np.float32)  # two components: weight 3:1 at 60 and 190, scales e^1, e^2
    params[..., 0], params[..., 1] = np.log(3.0), 0.0
    params[..., 2], params[..., 3], params[..., 4], params[..., 5] = 60.0, 190.0, 1.0, 2.0
    sampler = OnnxSampler(onnx_sampler(k, c, logits=params))
    sampler.prepare(model, image, k)
    drawn = sampler.sample(np.full(400, 3, np.int64), np.full(400, 7, np.int64), np.arange(400, dtype=np.uint64), 5)
    low = drawn < 125
    assert abs(low.mean() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / drawn.size)
    assert abs(drawn[low].mean() - 60) < 0.5 and abs(drawn[~low].mean() - 190) < 1.5
    assert abs(drawn[low].std() - np.e * np.pi / np.sqrt(3)) < 0.4  # a logistic's std is s pi / sqrt(3)


# ---- fidelity perturbations and IG/PMI end to end ----------------------------------------------

@pytest.mark.parametrize("c", [1, 4, 5])
def test_perturbation_images_for_c_channels(c):
    model = ox.Model(lambda x: x.reshape(len(x), -1)[:, :2], input_size=(48, 48), channels=c, layout="NCHW",
                     preset=ox.Preprocess(1 / 255, mean=tuple(np.linspace(0.2, 0.7, c))), progress=False)
    image = np.random.default_rng(c).uniform(0, 255, (48, 48, c)).astype(np.float32)
    noise = fd.perturbation_image(image, "noise", model, seed=1)
    assert noise.shape == image.shape and 0 <= noise.min() and noise.max() <= 255
    # around each channel's neutral value (the median: the clip at 0 lifts the mean)
    np.testing.assert_allclose(np.median(noise.reshape(-1, c), axis=0), np.linspace(0.2, 0.7, c) * 255, atol=4)
    blur = fd.perturbation_image(image, "blur", model)
    assert blur.shape == image.shape and blur.dtype == np.float32
    for ch in range(c):
        want = cv2.GaussianBlur(np.ascontiguousarray(image[:, :, ch]), (fd.BLUR_KERNEL, fd.BLUR_KERNEL), fd.BLUR_SIGMA)
        np.testing.assert_allclose(blur[:, :, ch], want, atol=1e-3)


@pytest.mark.parametrize("sampler", ["gaussian", "inpaint", "blur"])
def test_one_channel_detector_pmi_peaks_on_the_planted_blob(sampler):
    model = grey_model()
    image, (y0, x0, y1, x1) = blob_image()
    assert model.channels == 1 and np.argmax(model.predict(image)) == 1
    ig, pmi = ox.information_maps(model, image, target=[1], patch=4, stride=2, samples=3, mode="dense",
                                  sampler=sampler, seed=2)
    peak = np.unravel_index(np.argmax(pmi[1]), pmi[1].shape)
    assert y0 <= peak[0] < y1 and x0 <= peak[1] < x1, peak
    assert ig[1].min() >= -1e-6 and pmi[1][y0:y1, x0:x1].mean() > 0.2  # removing the blob costs evidence (nats)
    outside = np.ones(pmi[1].shape, bool)
    outside[y0 - 4:y1 + 4, x0 - 4:x1 + 4] = False
    assert np.abs(pmi[1][outside]).max() < 0.05 * pmi[1].max()


def test_four_channel_budgeted_maps_are_reproducible():
    model = grey_model(channels=4)
    image, (y0, x0, y1, x1) = blob_image(4, seed=1)
    a = ox.PMI(model).attribute(image, target=[1], patch=4, samples=2, budget=150, seed=3)
    b = ox.PMI(model).attribute(image, target=[1], patch=4, samples=2, budget=150, seed=3)
    np.testing.assert_array_equal(a[1], b[1])
    peak = np.unravel_index(np.argmax(a[1]), a[1].shape)
    assert y0 - 1 <= peak[0] <= y1 and x0 - 1 <= peak[1] <= x1, peak
