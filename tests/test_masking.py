"""The masking core (`_core.Preprocessor`, `PreparedInput`, `feature_masks`, `bernoulli_keep`) and the
feature ranking (`rank_labels`, `rank_features`) against NumPy references written from the documented
contract (cpp/include/onnxplain/masking.hpp, fidelity.hpp, cpp/bindings/register_masking.cpp).

Like test_core.py: a reference comparison allows a few float32 ulps of the terms' magnitude (a
compiler may contract a*b+c into an FMA); comparisons of the core with itself (threads, blend against
apply, paste against apply of the pasted input) are bitwise.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from test_core import SENTINEL, assert_near32, core  # noqa: E402  (tests/ is on sys.path under pytest)

F32 = np.float32
TIE_STREAM = 2**64 - 1
FEW = settings(deadline=None, max_examples=40)
SOME = settings(deadline=None, max_examples=60)
u64 = st.integers(0, 2**64 - 1)


# ---------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------


def model_layout(v, channels_first):
    """(N, *positions, C) -> (N, C, *positions) when channels_first, else as is."""
    return np.moveaxis(v, -1, 1) if channels_first else v


def preprocess_ref(inputs, gain, bias, source, channels_first):
    """float32 model inputs of inputs (N, *positions, C): inputs[..., source[c]] * gain[c] + bias[c]."""
    v = inputs[..., list(source)] * np.asarray(gain, F32) + np.asarray(bias, F32)
    assert v.dtype == F32
    return model_layout(v, channels_first)


def preprocess_scale(inputs, gain, bias, source, channels_first):
    """Magnitude of the terms of preprocess_ref, for the ulp tolerance."""
    v = np.abs(inputs[..., list(source)] * np.asarray(gain, F32)) + np.abs(np.asarray(bias, F32))
    return model_layout(v, channels_first)


def blend_ref(x, z, masks, gain, bias, source, channels_first):
    """out[b] = m * P(x) + (1 - m) * P(z) in float32, with its ulp scale."""
    px = preprocess_ref(x[None], gain, bias, source, channels_first)
    pz = preprocess_ref(z[None], gain, bias, source, channels_first)
    m = model_layout(masks[..., None], channels_first)  # broadcast over channels
    out = m * px + (F32(1) - m) * pz
    sx = preprocess_scale(x[None], gain, bias, source, channels_first)
    sz = preprocess_scale(z[None], gain, bias, source, channels_first)
    return out, np.abs(m) * sx + np.abs(1 - m) * sz + 2 * (np.abs(m * px) + np.abs((1 - m) * pz))


def paste_ref(x, samples, ys, xs):
    """The pasted inputs (n, H, W, C) in input space."""
    out = np.repeat(x[None], len(ys), axis=0)
    k = samples.shape[1]
    for b, (y, xx) in enumerate(zip(ys, xs)):
        out[b, y:y + k, xx:xx + k] = samples[b]
    return out


def rank_labels_ref(map_, labels, features, seed):
    """Rank of each position's feature: by mean map value (highest first), ties by the seed's draw."""
    sums = np.zeros(features)
    areas = np.zeros(features)
    for v, f in zip(map_.ravel().astype(np.float64), labels.ravel()):
        sums[f] += v
        areas[f] += 1
    means = sums / areas
    ties = [core.uniform(seed, TIE_STREAM, f) for f in range(features)]
    order = sorted(range(features), key=lambda f: (-means[f], ties[f], f))
    rank = np.empty(features, np.int32)
    rank[order] = np.arange(features)
    return rank[labels]


def patch_labels(h, w, patch):
    fw = -(-w // patch)
    y, x = np.mgrid[0:h, 0:w]
    return ((y // patch) * fw + x // patch).astype(np.int32), -(-h // patch) * fw


# ---------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------


@st.composite
def preprocessings(draw, channels=st.integers(1, 4), ranks=st.integers(2, 4), max_side=6):
    """(shape, gain, bias, source, channels_first) of any rank >= 2 and channel count."""
    c = draw(channels)
    rank = draw(ranks)
    positions = draw(st.lists(st.integers(1, max_side), min_size=rank - 1, max_size=rank - 1))
    shape = (*positions, c)
    gain = draw(st.lists(st.floats(-3.0, 3.0, width=32), min_size=c, max_size=c))
    bias = draw(st.lists(st.floats(-200.0, 200.0, width=32), min_size=c, max_size=c))
    identity = list(range(c))
    source = draw(st.sampled_from([identity, identity[::-1]])
                  | st.lists(st.integers(0, c - 1), min_size=c, max_size=c))
    return shape, gain, bias, source, draw(st.booleans())


# ---------------------------------------------------------------------------------------
# Preprocessor: shapes and apply
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,channels_first,model_shape",
    [
        ((4, 5, 3), True, (3, 4, 5)),
        ((4, 5, 3), False, (4, 5, 3)),
        ((7, 1), True, (1, 7)),
        ((7, 1), False, (7, 1)),
        ((2, 3, 4, 2), True, (2, 2, 3, 4)),
        ((6, 4), False, (6, 4)),
    ],
)
def test_preprocessor_shapes(shape, channels_first, model_shape):
    c = shape[-1]
    pre = core.Preprocessor(shape, [1.0] * c, [0.0] * c, list(range(c)), channels_first)
    assert tuple(pre.shape) == shape
    assert tuple(pre.model_shape) == model_shape
    assert tuple(pre.mask_shape) == shape[:-1]
    prepared = pre.prepare(np.zeros(shape, F32), np.zeros(shape, F32))
    assert tuple(prepared.model_shape) == model_shape
    assert tuple(prepared.mask_shape) == shape[:-1]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("channels_first", [True, False])
def test_apply_matches_reference(channels, channels_first):
    rng = np.random.default_rng(channels)
    shape = (5, 7, channels)
    gain = rng.uniform(-2, 2, channels).astype(F32).tolist()
    bias = rng.uniform(-3, 3, channels).astype(F32).tolist()
    for source in (list(range(channels)), list(range(channels))[::-1], rng.integers(0, channels, channels).tolist()):
        pre = core.Preprocessor(shape, gain, bias, source, channels_first)
        inputs = rng.uniform(0, 255, (3, *shape)).astype(F32)
        out = np.full((5, *pre.model_shape), SENTINEL, F32)
        assert pre.apply(inputs, out) is None
        assert_near32(out[:3], preprocess_ref(inputs, gain, bias, source, channels_first),
                      preprocess_scale(inputs, gain, bias, source, channels_first))
        assert np.all(out[3:] == SENTINEL)  # rows past N are left alone
        # apply is blend with all-ones masks, bit for bit, whatever the replacement
        anything = rng.uniform(-1000, 1000, shape).astype(F32)
        for n in range(3):
            blended = np.full((2, *pre.model_shape), SENTINEL, F32)
            pre.prepare(inputs[n], anything).blend(np.ones((1, *shape[:-1]), F32), blended)
            np.testing.assert_array_equal(blended[0], out[n])
            assert np.all(blended[1] == SENTINEL)


@SOME
@given(preprocessings(), st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_apply_any_shape_matches_reference(prep, n, seed):
    shape, gain, bias, source, channels_first = prep
    rng = np.random.default_rng(seed)
    pre = core.Preprocessor(shape, gain, bias, source, channels_first)
    inputs = rng.uniform(-255, 255, (n, *shape)).astype(F32)
    out = np.full((n + 1, *pre.model_shape), SENTINEL, F32)
    pre.apply(inputs, out)
    assert_near32(out[:n], preprocess_ref(inputs, gain, bias, source, channels_first),
                  preprocess_scale(inputs, gain, bias, source, channels_first))
    assert np.all(out[n] == SENTINEL)


def test_apply_thread_independent():
    rng = np.random.default_rng(3)
    shape = (33, 41, 4)
    inputs = rng.uniform(0, 255, (9, *shape)).astype(F32)
    gain, bias, source = [0.5, -1.5, 2.0, 0.25], [1.0, -2.0, 0.5, 3.0], [3, 1, 0, 0]
    results = []
    for threads in (0, 1, 2, 3, 8):
        for channels_first in (True, False):
            pre = core.Preprocessor(shape, gain, bias, source, channels_first, threads=threads)
            out = np.empty((9, *pre.model_shape), F32)
            pre.apply(inputs, out)
            results.append(out)
    for k in range(2, len(results)):
        np.testing.assert_array_equal(results[k], results[k % 2])


def test_apply_errors():
    pre = core.Preprocessor((4, 5, 2), [1, 1], [0, 0], [1, 0], True)
    out = np.zeros((2, 2, 4, 5), F32)
    with pytest.raises(ValueError, match="inputs must be N x"):
        pre.apply(np.zeros((2, 5, 4, 2), F32), out)
    with pytest.raises(ValueError, match="inputs must have 4 dimensions"):
        pre.apply(np.zeros((4, 5, 2), F32), out)
    with pytest.raises(ValueError, match="out must have at least 3 rows"):
        pre.apply(np.zeros((3, 4, 5, 2), F32), out)
    with pytest.raises(ValueError, match="out must be N x"):
        pre.apply(np.zeros((2, 4, 5, 2), F32), np.zeros((2, 4, 5, 2), F32))  # channels-last buffer
    with pytest.raises(TypeError, match="inputs"):
        pre.apply(np.zeros((2, 4, 5, 2)), out)
    with pytest.raises(TypeError, match="out"):
        pre.apply(np.zeros((2, 4, 5, 2), F32), out.astype(np.float16))
    out.setflags(write=False)
    with pytest.raises(ValueError, match="writeable"):
        pre.apply(np.zeros((2, 4, 5, 2), F32), out)


# ---------------------------------------------------------------------------------------
# PreparedInput.blend beyond RGB images: any channel count, tables (rank 2)
# ---------------------------------------------------------------------------------------


@SOME
@given(preprocessings(), st.integers(0, 4), st.integers(0, 2), st.integers(0, 2**32 - 1))
def test_blend_any_shape_matches_reference(prep, batch, extra, seed):
    shape, gain, bias, source, channels_first = prep
    rng = np.random.default_rng(seed)
    x = rng.uniform(-255, 255, shape).astype(F32)
    z = rng.uniform(-255, 255, shape).astype(F32)
    masks = rng.uniform(0, 1, (batch, *shape[:-1])).astype(F32)
    if batch:
        masks[0] = rng.integers(0, 2, shape[:-1])  # a hard mask too
    pre = core.Preprocessor(shape, gain, bias, source, channels_first)
    out = np.full((batch + extra, *pre.model_shape), SENTINEL, F32)
    assert pre.prepare(x, z).blend(masks, out) is None
    ref, scale = blend_ref(x, z, masks, gain, bias, source, channels_first)
    assert_near32(out[:batch], ref, scale)
    assert np.all(out[batch:] == SENTINEL)
    if batch:  # the hard mask picks P(x) or P(z) exactly
        both = np.empty((2, *pre.model_shape), F32)
        pre.apply(np.stack([x, z]), both)
        hard = model_layout(masks[0][None, ..., None], channels_first)[0] == 1
        np.testing.assert_array_equal(out[0], np.where(hard, both[0], both[1]))


@pytest.mark.parametrize("channels_first", [True, False])
def test_blend_table_rows(channels_first):
    # a table row: F features of one channel, masks over the features
    f = 6
    x = np.arange(1, f + 1, dtype=F32)[:, None] * F32(10)  # (F, 1)
    z = np.full((f, 1), -1.0, F32)
    pre = core.Preprocessor((f, 1), [0.5], [2.0], [0], channels_first)
    assert tuple(pre.mask_shape) == (f,)
    assert tuple(pre.model_shape) == ((1, f) if channels_first else (f, 1))
    masks = np.array([[1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0], [0.5, 0.25, 1, 1, 0, 0.75]], F32)
    out = np.full((4, *pre.model_shape), SENTINEL, F32)
    pre.prepare(x, z).blend(masks, out)
    px, pz = x[:, 0] * F32(0.5) + F32(2), z[:, 0] * F32(0.5) + F32(2)  # 7, 12, ..., 32 and 1.5
    expected = masks * px + (1 - masks) * pz
    np.testing.assert_allclose(out[:3].reshape(3, f), expected, rtol=1e-6)
    np.testing.assert_array_equal(out[0].reshape(f), [7, 1.5, 17, 1.5, 27, 1.5])  # hand-checked
    np.testing.assert_array_equal(out[1].reshape(f), np.full(f, 1.5))
    assert np.all(out[3] == SENTINEL)
    with pytest.raises(ValueError, match="masks must be B x"):
        pre.prepare(x, z).blend(np.ones((1, f + 1), F32), out)
    with pytest.raises(ValueError, match="masks must have 2 dimensions"):
        pre.prepare(x, z).blend(np.ones((1, f, 1), F32), out)
    with pytest.raises(ValueError, match="input must be"):
        pre.prepare(np.zeros((f + 1, 1), F32), z)
    with pytest.raises(ValueError, match="replacement must have 2 dimensions"):
        pre.prepare(x, np.zeros(f, F32))


def test_blend_thread_independent_any_channels():
    rng = np.random.default_rng(4)
    shape = (70, 61, 2)  # more than one 4096-position block per mask
    x = rng.uniform(0, 1, shape).astype(F32)
    z = rng.uniform(0, 1, shape).astype(F32)
    masks = rng.uniform(0, 1, (7, *shape[:-1])).astype(F32)
    for channels_first in (True, False):
        results = []
        for threads in (0, 1, 2, 3, 8):
            pre = core.Preprocessor(shape, [2.0, -1.0], [0.5, 0.25], [1, 0], channels_first, threads=threads)
            out = np.empty((7, *pre.model_shape), F32)
            pre.prepare(x, z).blend(masks, out)
            results.append(out)
        for r in results[1:]:
            np.testing.assert_array_equal(r, results[0])


def test_prepared_input_is_a_snapshot_and_outlives_its_preprocessor():
    rng = np.random.default_rng(5)
    shape = (4, 6, 3)
    x = rng.uniform(0, 255, shape).astype(F32)
    z = rng.uniform(0, 255, shape).astype(F32)
    masks = rng.uniform(0, 1, (3, 4, 6)).astype(F32)
    prepared = core.Preprocessor(shape, [1, 2, 3], [0, 1, 2], [2, 1, 0], False).prepare(x, z)
    gc.collect()  # the Preprocessor object is gone; the prepared input keeps what it needs
    first = np.empty((3, 4, 6, 3), F32)
    prepared.blend(masks, first)
    x[:] = 0  # preprocessed once: later changes to the arrays do not reach the prepared input
    z[:] = 0
    again = np.empty_like(first)
    prepared.blend(masks, again)
    np.testing.assert_array_equal(again, first)
    assert np.any(first != 0)


# ---------------------------------------------------------------------------------------
# PreparedInput.paste
# ---------------------------------------------------------------------------------------


@st.composite
def paste_args(draw):
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    k = draw(st.integers(1, min(h, w)))
    c = draw(st.integers(1, 4))
    n = draw(st.integers(0, 4))
    ys = draw(st.lists(st.integers(0, h - k), min_size=n, max_size=n))
    xs = draw(st.lists(st.integers(0, w - k), min_size=n, max_size=n))
    identity = list(range(c))
    source = draw(st.sampled_from([identity, identity[::-1]]) | st.lists(st.integers(0, c - 1), min_size=c, max_size=c))
    gain = draw(st.lists(st.floats(-3.0, 3.0, width=32), min_size=c, max_size=c))
    bias = draw(st.lists(st.floats(-200.0, 200.0, width=32), min_size=c, max_size=c))
    return h, w, k, c, ys, xs, source, gain, bias, draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


@SOME
@given(paste_args(), st.integers(0, 2))
def test_paste_matches_reference(args, extra):
    h, w, k, c, ys, xs, source, gain, bias, channels_first, seed = args
    rng = np.random.default_rng(seed)
    n = len(ys)
    x = rng.uniform(0, 255, (h, w, c)).astype(F32)
    z = rng.uniform(0, 255, (h, w, c)).astype(F32)  # the replacement plays no part in paste
    samples = rng.uniform(-255, 255, (n, k, k, c)).astype(F32)
    pre = core.Preprocessor((h, w, c), gain, bias, source, channels_first, threads=2)
    out = np.full((n + extra, *pre.model_shape), SENTINEL, F32)
    ys_a, xs_a = np.array(ys, np.int64), np.array(xs, np.int64)
    assert pre.prepare(x, z).paste(samples, ys_a, xs_a, out) is None
    pasted = paste_ref(x, samples, ys, xs)
    assert_near32(out[:n], preprocess_ref(pasted, gain, bias, source, channels_first),
                  preprocess_scale(pasted, gain, bias, source, channels_first))
    assert np.all(out[n:] == SENTINEL)
    applied = np.empty((n, *pre.model_shape), F32)  # the core with itself: bit for bit
    pre.apply(pasted, applied)
    np.testing.assert_array_equal(out[:n], applied)


def test_paste_hand_checked_and_thread_independent():
    # a 3 x 4 RGB image, a BGR model, channels first; one 2 x 2 patch at (1, 2)
    x = np.arange(36, dtype=F32).reshape(3, 4, 3)
    samples = np.full((1, 2, 2, 3), -1.0, F32)
    samples[0, ..., 0] = 100  # R of the patch
    pre = core.Preprocessor((3, 4, 3), [1, 1, 1], [0, 0, 0], [2, 1, 0], True)
    out = np.empty((1, 3, 3, 4), F32)
    pre.prepare(x, np.zeros_like(x)).paste(samples, np.array([1], np.int64), np.array([2], np.int64), out)
    b_channel = x[..., 2].copy()
    b_channel[1:3, 2:4] = -1
    r_channel = x[..., 0].copy()
    r_channel[1:3, 2:4] = 100
    np.testing.assert_array_equal(out[0, 0], b_channel)  # model channel 0 reads input channel 2
    np.testing.assert_array_equal(out[0, 2], r_channel)
    # threads
    rng = np.random.default_rng(6)
    big = rng.uniform(0, 255, (40, 50, 3)).astype(F32)
    samples = rng.uniform(0, 255, (11, 8, 8, 3)).astype(F32)
    ys, xs = rng.integers(0, 33, 11), rng.integers(0, 43, 11)
    results = []
    for threads in (0, 1, 2, 3, 8):
        pre = core.Preprocessor((40, 50, 3), [0.5, 1, 2], [1, 2, 3], [2, 1, 0], False, threads=threads)
        out = np.empty((11, 40, 50, 3), F32)
        pre.prepare(big, big).paste(samples, ys, xs, out)
        results.append(out)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def _paste_args(**kwargs):
    args = dict(samples=np.zeros((2, 3, 3, 3), F32), ys=np.array([0, 2], np.int64), xs=np.array([0, 3], np.int64),
                out=np.zeros((2, 3, 5, 6), F32))
    args.update(kwargs)
    return args


def _prepared_5x6():
    pre = core.Preprocessor((5, 6, 3), [1, 1, 1], [0, 0, 0], [0, 1, 2], True)
    return pre.prepare(np.zeros((5, 6, 3), F32), np.zeros((5, 6, 3), F32))


def test_paste_valid_edges_pass():
    prepared = _prepared_5x6()
    prepared.paste(**_paste_args())  # the last patch flush with the bottom-right corner
    prepared.paste(**_paste_args(samples=np.zeros((0, 3, 3, 3), F32), ys=np.zeros(0, np.int64), xs=np.zeros(0, np.int64),
                                 out=np.zeros((0, 3, 5, 6), F32)))
    prepared.paste(**_paste_args(samples=np.zeros((1, 5, 5, 3), F32), ys=np.array([0], np.int64), xs=np.array([1], np.int64)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(ys=np.array([0, 3], np.int64)), r"patch 1 at \(3, 3\) is not inside the 5 x 6 image"),
        (dict(xs=np.array([0, 4], np.int64)), "patch 1 .* not inside"),
        (dict(ys=np.array([-1, 0], np.int64)), "patch 0 .* not inside"),
        (dict(xs=np.array([-1, 0], np.int64)), "patch 0 .* not inside"),
        (dict(ys=np.array([2**62, 0], np.int64)), "not inside"),
        (dict(ys=np.array([0], np.int64)), "same length"),
        (dict(samples=np.zeros((2, 6, 6, 3), F32), ys=np.zeros(2, np.int64), xs=np.zeros(2, np.int64)), "patch must be"),
        (dict(samples=np.zeros((2, 3, 3, 4), F32)), "samples must be"),
        (dict(samples=np.zeros((2, 3, 2, 3), F32)), "samples must be"),
        (dict(samples=np.zeros((3, 3, 3, 3), F32)), "samples must be"),
        (dict(samples=np.zeros((2, 3, 3), F32)), "samples must have 4 dimensions"),
        (dict(out=np.zeros((1, 3, 5, 6), F32)), "out must have at least 2 rows"),
        (dict(out=np.zeros((2, 5, 6, 3), F32)), "out must be N x"),
    ],
)
def test_paste_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _prepared_5x6().paste(**_paste_args(**kwargs))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(ys=np.array([0, 2], np.int32)), "ys"),
        (dict(xs=[0, 3]), "xs"),
        (dict(samples=np.zeros((2, 3, 3, 3))), "samples"),
    ],
)
def test_paste_wrong_dtype(kwargs, match):
    with pytest.raises(TypeError, match=match):
        _prepared_5x6().paste(**_paste_args(**kwargs))


@pytest.mark.parametrize("shape", [(6, 1), (6, 3), (2, 3, 4, 1)])
def test_paste_needs_an_image(shape):
    c = shape[-1]
    pre = core.Preprocessor(shape, [1.0] * c, [0.0] * c, list(range(c)), True)
    prepared = pre.prepare(np.zeros(shape, F32), np.zeros(shape, F32))
    with pytest.raises(ValueError, match="paste needs an H x W x C input"):
        prepared.paste(np.zeros((1, 1, 1, c), F32), np.zeros(1, np.int64), np.zeros(1, np.int64),
                       np.zeros((1, *pre.model_shape), F32))


# ---------------------------------------------------------------------------------------
# feature_masks
# ---------------------------------------------------------------------------------------


@SOME
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 12), st.integers(0, 5), st.integers(0, 2**32 - 1))
def test_feature_masks_match_fancy_indexing(h, w, features, batch, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, features, (h, w)).astype(np.int32)
    keep = rng.uniform(0, 1, (batch, features)).astype(F32)
    keep[:, ::2] = rng.integers(0, 2, (batch, (features + 1) // 2))
    got = core.feature_masks(labels, keep)
    assert got.dtype == F32 and got.shape == (batch, h, w)
    np.testing.assert_array_equal(got, keep[:, labels])
    for threads in (1, 2, 3, 8):
        np.testing.assert_array_equal(core.feature_masks(labels, keep, threads=threads), got)


def test_feature_masks_hand_checked():
    labels = np.array([[0, 0, 1], [2, 1, 1]], np.int32)
    keep = np.array([[1, 0, 0.5], [0, 1, 1]], F32)
    np.testing.assert_array_equal(core.feature_masks(labels, keep),
                                  [[[1, 1, 0], [0.5, 0, 0]], [[0, 0, 1], [1, 1, 1]]])


@pytest.mark.parametrize("bad", [3, -1, 2**31 - 1, -(2**31)])
def test_feature_masks_label_range(bad):
    labels = np.array([[0, 1], [2, 0]], np.int32)
    labels[1, 1] = bad
    with pytest.raises(ValueError, match="labels must lie in 0..features-1"):
        core.feature_masks(labels, np.ones((2, 3), F32))
    with pytest.raises(ValueError, match="labels must lie"):
        core.feature_masks(np.zeros((2, 2), np.int32), np.ones((2, 0), F32))  # no features at all


def test_feature_masks_argument_errors():
    with pytest.raises(TypeError, match="labels"):
        core.feature_masks(np.zeros((2, 2), np.int64), np.ones((1, 1), F32))
    with pytest.raises(TypeError, match="keep"):
        core.feature_masks(np.zeros((2, 2), np.int32), np.ones((1, 1)))
    with pytest.raises(ValueError, match="labels must have 2 dimensions"):
        core.feature_masks(np.zeros(4, np.int32), np.ones((1, 1), F32))
    with pytest.raises(ValueError, match="C-contiguous"):
        core.feature_masks(np.zeros((4, 4), np.int32)[:, ::2], np.ones((1, 1), F32))


# ---------------------------------------------------------------------------------------
# bernoulli_keep
# ---------------------------------------------------------------------------------------


def bernoulli_ref(seed, first, count, features, p_keep):
    p = float(F32(p_keep))  # the core compares float32 draws with a float32 p_keep
    return np.array([[1.0 if core.uniform(seed, first + b, f) < p else 0.0 for f in range(features)]
                     for b in range(count)], F32).reshape(count, features)


@SOME
@given(u64, st.integers(0, 2**62), st.integers(0, 5), st.integers(1, 20),
       st.sampled_from([1.0, 0.5, 0.1]) | st.floats(1e-3, 1.0))
def test_bernoulli_keep_matches_uniform_draws(seed, first, count, features, p_keep):
    got = core.bernoulli_keep(seed, first, count, features, p_keep)
    assert got.dtype == F32 and got.shape == (count, features)
    np.testing.assert_array_equal(got, bernoulli_ref(seed, first, count, features, p_keep))


@FEW
@given(u64, st.integers(0, 2**40), st.integers(1, 40))
def test_bernoulli_keep_thread_and_split_independent(seed, first, count):
    whole = core.bernoulli_keep(seed, first, count, 13, 0.5, threads=1)
    for threads in (0, 2, 3, 8):
        np.testing.assert_array_equal(core.bernoulli_keep(seed, first, count, 13, 0.5, threads=threads), whole)
    half = count // 2  # perturbation first + b is row b whatever the batch it comes in
    parts = [core.bernoulli_keep(seed, first, half, 13, 0.5, threads=3),
             core.bernoulli_keep(seed, first + half, count - half, 13, 0.5, threads=2)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_bernoulli_keep_rate_and_p_keep_one():
    keep = core.bernoulli_keep(11, 0, 500, 64, 0.3)
    assert abs(float(keep.mean()) - 0.3) < 0.01
    assert set(np.unique(keep).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(core.bernoulli_keep(11, 0, 3, 5, 1.0), np.ones((3, 5), F32))
    assert core.bernoulli_keep(11, 7, 0, 5, 0.5).shape == (0, 5)
    assert not np.array_equal(core.bernoulli_keep(1, 0, 8, 16, 0.5), core.bernoulli_keep(2, 0, 8, 16, 0.5))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(p_keep=0.0), "p_keep"),
        (dict(p_keep=-0.5), "p_keep"),
        (dict(p_keep=1.5), "p_keep"),
        (dict(p_keep=float("nan")), "p_keep"),
        (dict(first=-1), "first"),
        (dict(count=-1), "count"),
        (dict(features=0), "features"),
    ],
)
def test_bernoulli_keep_invalid(kwargs, match):
    args = dict(seed=0, first=0, count=2, features=4, p_keep=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        core.bernoulli_keep(**args)


# ---------------------------------------------------------------------------------------
# rank_labels and rank_features
# ---------------------------------------------------------------------------------------


@SOME
@given(st.integers(1, 10), st.integers(1, 10), st.data(), u64)
def test_rank_features_is_rank_labels_on_patch_labels(h, w, data, seed):
    patch = data.draw(st.integers(1, max(h, w)))
    rng = np.random.default_rng(seed % 2**32)
    map_ = (rng.integers(0, 4, (h, w)) / 4).astype(F32)  # few values: ties are common
    labels, features = patch_labels(h, w, patch)
    by_patch = core.rank_features(map_, patch, seed)
    assert by_patch.dtype == np.int32 and by_patch.shape == (h, w)
    np.testing.assert_array_equal(core.rank_labels(map_, labels, features, seed), by_patch)
    np.testing.assert_array_equal(by_patch, rank_labels_ref(map_, labels, features, seed))


@SOME
@given(st.integers(1, 8), st.integers(1, 8), st.data(), u64)
def test_rank_labels_matches_reference(h, w, data, seed):
    features = data.draw(st.integers(1, h * w))
    rng = np.random.default_rng(seed % 2**32)
    labels = np.concatenate([np.arange(features), rng.integers(0, features, h * w - features)])  # all features used
    labels = rng.permutation(labels).reshape(h, w).astype(np.int32)
    map_ = (rng.integers(-3, 4, (h, w)) / 8).astype(F32)
    got = core.rank_labels(map_, labels, features, seed)
    np.testing.assert_array_equal(got, rank_labels_ref(map_, labels, features, seed))
    ranks = np.unique(got)
    np.testing.assert_array_equal(ranks, np.arange(features))  # one rank per feature, 0..F-1


def _tie_order(seed):
    """True when the seed puts feature 0 before feature 1 among tied features."""
    return core.uniform(seed, TIE_STREAM, 0) < core.uniform(seed, TIE_STREAM, 1)


def test_rank_labels_hand_checked_ties_by_seed():
    # feature 0: mean (1 + 3) / 2 = 2; feature 1: mean (2 + 2) / 2 = 2 (tied); feature 2: mean 5
    labels = np.array([[0, 0, 1], [2, 2, 1]], np.int32)
    map_ = np.array([[1, 3, 2], [5, 5, 2]], F32)
    f0_first = np.array([[1, 1, 2], [0, 0, 2]], np.int32)
    f1_first = np.array([[2, 2, 1], [0, 0, 1]], np.int32)
    seeds = {_tie_order(s): s for s in range(20)}
    assert set(seeds) == {True, False}  # seeds 0..19 order the tie both ways
    for order, seed in seeds.items():
        got = core.rank_labels(map_, labels, 3, seed)
        np.testing.assert_array_equal(got, f0_first if order else f1_first)
        np.testing.assert_array_equal(core.rank_labels(map_, labels, 3, seed), got)  # same seed, same ranks
    assert not np.array_equal(core.rank_labels(map_, labels, 3, seeds[True]),
                              core.rank_labels(map_, labels, 3, seeds[False]))
    # no tie: the seed does not matter
    map_[0, 0] = 1.5
    for seed in seeds.values():
        np.testing.assert_array_equal(core.rank_labels(map_, labels, 3, seed), f0_first)


@pytest.mark.parametrize(
    "labels,features,match",
    [
        ([[0, 1], [2, 3]], 3, "labels must lie in 0..features-1"),
        ([[0, 1], [-1, 2]], 3, "labels must lie"),
        ([[0, 1], [1, 0]], 3, "every feature 0..features-1 needs at least one position"),
        ([[0, 2], [2, 0]], 3, "every feature"),
        ([[0, 0], [0, 0]], 0, "features must be in 1"),
        ([[0, 1, 2]], 3, "labels must match the map"),
    ],
)
def test_rank_labels_errors(labels, features, match):
    map_ = np.arange(4, dtype=F32).reshape(2, 2)
    with pytest.raises(ValueError, match=match):
        core.rank_labels(map_, np.array(labels, np.int32), features, 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rank_labels_and_features_reject_non_finite_maps(bad):
    map_ = np.zeros((2, 2), F32)
    map_[1, 0] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        core.rank_labels(map_, np.array([[0, 1], [1, 0]], np.int32), 2, 0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        core.rank_features(map_, 1, 0)


def test_rank_features_errors():
    with pytest.raises(ValueError, match="patch"):
        core.rank_features(np.zeros((3, 4), F32), 5, 0)
    with pytest.raises(ValueError, match="patch"):
        core.rank_features(np.zeros((3, 4), F32), 0, 0)
    with pytest.raises(TypeError, match="map"):
        core.rank_labels(np.zeros((2, 2)), np.zeros((2, 2), np.int32), 1, 0)
    with pytest.raises(TypeError, match="labels"):
        core.rank_labels(np.zeros((2, 2), F32), np.zeros((2, 2), np.int64), 1, 0)


def test_huge_counts_are_refused_before_any_allocation():
    labels = np.zeros((2, 2), np.int32)
    with pytest.raises(ValueError, match="features must be in 1..H\\*W"):
        core.rank_labels(np.zeros((2, 2), np.float32), labels, 2**40, 0)
    with pytest.raises(ValueError, match="must fit in int64"):
        core.bernoulli_keep(0, 2**63 - 1, 2, 3, 0.5)
