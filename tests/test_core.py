"""The C++ core (`onnxplain._core`) against independent pure-NumPy/Python references.

Every kernel is compared with a reference written here from the documented contract
(cpp/include/onnxplain/kernels.hpp, masking.hpp, rng.hpp, cpp/bindings/), never by calling the core,
except that the RISE reference takes its random draws from `_core.uniform`: the generator is
checked on its own (known-answer vectors and a pure-Python Philox) further up.

Comparisons with a reference allow a few float32 ulps (a compiler may contract a*b+c into a
fused multiply-add); comparisons of the core with itself (threads, batch splits, batch
sizes) are bitwise, because the contract promises exactly that.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _load_core():
    """`onnxplain._core`, even while the package's __init__ is being rewritten."""
    try:
        return importlib.import_module("onnxplain._core")
    except ImportError:
        spec = importlib.util.find_spec("onnxplain")  # locates the package without running it
        if spec is None or not spec.submodule_search_locations:
            raise
        for folder in spec.submodule_search_locations:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = Path(folder) / f"_core{suffix}"
                if path.exists():
                    loader = importlib.machinery.ExtensionFileLoader("onnxplain._core", str(path))
                    ext_spec = importlib.util.spec_from_loader("onnxplain._core", loader)
                    module = importlib.util.module_from_spec(ext_spec)
                    loader.exec_module(module)
                    return module
        raise


core = _load_core()

F32 = np.float32
M32 = 0xFFFFFFFF
THREADS = (1, 2, 7)
FEW = settings(deadline=None, max_examples=40)
SOME = settings(deadline=None, max_examples=80)
MANY = settings(deadline=None, max_examples=200)

u32 = st.integers(0, M32)
u64 = st.integers(0, 2**64 - 1)


# ---------------------------------------------------------------------------------------
# Random numbers: Philox-4x32-10 and uniform()
# ---------------------------------------------------------------------------------------


def philox_ref(c0, c1, c2, c3, k0, k1):
    """Philox-4x32-10 in pure Python (Salmon et al., SC'11; Random123's philox4x32_R(10))."""
    for _ in range(10):
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        hi0, lo0 = p0 >> 32, p0 & M32
        hi1, lo1 = p1 >> 32, p1 & M32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + 0x9E3779B9) & M32
        k1 = (k1 + 0xBB67AE85) & M32
    return (c0, c1, c2, c3)


def uniform_ref(seed, stream, counter):
    r = philox_ref(counter & M32, counter >> 32, stream & M32, stream >> 32, seed & M32, seed >> 32)
    return (r[0] >> 8) / 2.0**24


# Random123 kat_vectors, "philox4x32 10": counter, key, expected output.
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32, M32, M32, M32), (M32, M32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("counter,key,expected", PHILOX_KAT)
def test_philox_known_answers(counter, key, expected):
    assert tuple(core.philox4x32(*counter, *key)) == expected
    assert philox_ref(*counter, *key) == expected  # the reference itself is right


@MANY
@given(u32, u32, u32, u32, u32, u32)
def test_philox_matches_reference(c0, c1, c2, c3, k0, k1):
    assert tuple(core.philox4x32(c0, c1, c2, c3, k0, k1)) == philox_ref(c0, c1, c2, c3, k0, k1)


@MANY
@given(u64, u64, u64)
def test_uniform_matches_reference(seed, stream, counter):
    u = core.uniform(seed, stream, counter)
    expected = (core.philox4x32(counter & M32, counter >> 32, stream & M32, stream >> 32,
                                seed & M32, seed >> 32)[0] >> 8) / 2.0**24
    assert u == expected
    assert u == uniform_ref(seed, stream, counter)
    assert 0.0 <= u < 1.0
    assert float(F32(u)) == u  # a float32 value ...
    assert (u * 2**24).is_integer()  # ... with 24 random bits


def test_uniform_uses_the_high_words():
    # seed, stream and counter are 64-bit: the high words must change the draw.
    base = core.uniform(1, 2, 3)
    assert core.uniform(1, 2, 3 + 2**32) != base
    assert core.uniform(1, 2 + 2**32, 3) != base
    assert core.uniform(1 + 2**32, 2, 3) != base
    assert core.uniform(2**64 - 1, 2**64 - 1, 2**64 - 1) == uniform_ref(2**64 - 1, 2**64 - 1, 2**64 - 1)


def test_uniform_is_uniform():
    draws = np.array([core.uniform(seed, s, k) for seed in (0, 12345) for s in range(64) for k in range(256)])
    assert draws.min() >= 0.0 and draws.max() < 1.0
    n, bins = draws.size, 32
    observed = np.bincount((draws * bins).astype(np.int64), minlength=bins)
    expected = n / bins
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 70.0, chi2  # df = 31: P(chi2 > 70) < 1e-4
    assert abs(draws.mean() - 0.5) < 0.01
    assert abs(draws.var() - 1 / 12) < 0.005
    # neighbouring counters and neighbouring streams are uncorrelated
    grid = draws[: 64 * 256].reshape(64, 256)
    assert abs(np.corrcoef(grid[:, :-1].ravel(), grid[:, 1:].ravel())[0, 1]) < 0.03
    assert abs(np.corrcoef(grid[:-1].ravel(), grid[1:].ravel())[0, 1]) < 0.03
    # bytes of the 24 bits are uniform too (low bits are not stuck)
    low = np.bincount((draws * 2**24).astype(np.int64) & 0xF, minlength=16)
    chi2_low = float(((low - n / 16) ** 2 / (n / 16)).sum())
    assert chi2_low < 50.0, chi2_low  # df = 15


# ---------------------------------------------------------------------------------------
# window_positions and occlusion masks
# ---------------------------------------------------------------------------------------


def positions_ref(size, window, stride):
    pos = list(range(0, size - window + 1, stride))
    if pos[-1] != size - window:
        pos.append(size - window)
    return pos


@st.composite
def axis(draw):
    size = draw(st.integers(1, 60))
    window = draw(st.integers(1, size))
    stride = draw(st.integers(1, size + 3))
    return size, window, stride


@MANY
@given(axis())
def test_window_positions(args):
    size, window, stride = args
    got = core.window_positions(size, window, stride)
    assert got.dtype == np.int64 and got.ndim == 1
    assert got.tolist() == positions_ref(size, window, stride)
    assert got[0] == 0 and got[-1] == size - window  # first flush left, last flush right
    assert np.all(np.diff(got) > 0)  # sorted, unique
    assert np.all(np.diff(got) <= stride)  # no gap wider than the stride
    covered = np.zeros(size, bool)
    for p in got:
        covered[p : p + window] = True
    if stride <= window:  # windows overlap or touch: every pixel is covered
        assert covered.all()
    else:  # a stride past the window leaves gaps by design, but both borders are covered
        assert covered[0] and covered[-1]


def occlusion_ref(h, w, window, stride, first, count):
    ys, xs = positions_ref(h, window, stride), positions_ref(w, window, stride)
    out = np.ones((count, h, w), F32)
    for b in range(count):
        k = first + b
        y0, x0 = ys[k // len(xs)], xs[k % len(xs)]
        out[b, y0 : y0 + window, x0 : x0 + window] = 0.0
    return out


@st.composite
def occlusion_args(draw):
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    window = draw(st.integers(1, min(h, w)))
    stride = draw(st.integers(1, window + 2))
    total = len(positions_ref(h, window, stride)) * len(positions_ref(w, window, stride))
    first = draw(st.integers(0, total))
    count = draw(st.integers(0, total - first))
    return h, w, window, stride, first, count


@SOME
@given(occlusion_args())
def test_occlusion_masks(args):
    h, w, window, stride, first, count = args
    ref = occlusion_ref(h, w, window, stride, first, count)
    for threads in (0,) + THREADS:
        got = core.occlusion_masks(h, w, window, stride, first, count, threads=threads)
        assert got.dtype == np.float32 and got.shape == (count, h, w)
        np.testing.assert_array_equal(got, ref)
    # every mask hides exactly one window x window square
    assert np.all((ref == 0).sum(axis=(1, 2)) == window * window)


def test_occlusion_masks_cover_the_image_and_split_into_batches():
    h, w, window, stride = 23, 17, 5, 4
    total = len(positions_ref(h, window, stride)) * len(positions_ref(w, window, stride))
    whole = core.occlusion_masks(h, w, window, stride, 0, total)
    assert whole.shape == (total, h, w)
    assert np.all((whole == 0).any(axis=0))  # every pixel is occluded by some window
    parts = [core.occlusion_masks(h, w, window, stride, f, min(7, total - f), threads=3) for f in range(0, total, 7)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


# ---------------------------------------------------------------------------------------
# RISE masks
# ---------------------------------------------------------------------------------------


def _taps_ref(size, cell, shift, grid):
    src = (np.arange(size, dtype=np.int64) + shift).astype(F32)
    src = (src + F32(0.5)) / F32(cell) - F32(0.5)
    src = np.clip(src, F32(0.0), F32(grid)).astype(F32)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, grid)
    return lo, hi, (src - lo.astype(F32)).astype(F32)


def rise_ref(seed, first, count, h, w, grid, p_keep):
    """The documented RISE mask: bilinear upsampling of a Bernoulli lattice, randomly shifted."""
    cell_h, cell_w = -(-h // grid), -(-w // grid)
    nodes = (grid + 1) ** 2
    out = np.empty((count, h, w), F32)
    for b in range(count):
        stream = first + b
        u = np.array([core.uniform(seed, stream, k) for k in range(nodes + 2)], F32)
        lattice = (u[:nodes] < F32(p_keep)).astype(F32).reshape(grid + 1, grid + 1)
        dy, dx = int(u[nodes] * F32(cell_h)), int(u[nodes + 1] * F32(cell_w))
        assert 0 <= dy < cell_h and 0 <= dx < cell_w
        ylo, yhi, yw = _taps_ref(h, cell_h, dy, grid)
        xlo, xhi, xw = _taps_ref(w, cell_w, dx, grid)
        r0, r1 = lattice[ylo], lattice[yhi]  # (h, grid + 1)
        top = r0[:, xlo] + xw * (r0[:, xhi] - r0[:, xlo])
        bottom = r1[:, xlo] + xw * (r1[:, xhi] - r1[:, xlo])
        out[b] = top + yw[:, None] * (bottom - top)
    return out


@st.composite
def rise_args(draw):
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    grid = draw(st.integers(1, min(h, w, 8)))
    p_keep = draw(st.sampled_from([0.1, 0.25, 0.5, 0.7, 1.0]) | st.floats(0.01, 1.0))
    return draw(u64), draw(st.integers(0, 2**40)), draw(st.integers(0, 4)), h, w, grid, p_keep


@SOME
@given(rise_args())
def test_rise_masks_match_reference(args):
    seed, first, count, h, w, grid, p_keep = args
    got = core.rise_masks(seed, first, count, h, w, grid, p_keep)
    assert got.dtype == np.float32 and got.shape == (count, h, w)
    assert np.all(got >= 0.0) and np.all(got <= 1.0)
    np.testing.assert_allclose(got, rise_ref(seed, first, count, h, w, grid, p_keep), rtol=0, atol=2e-6)


@FEW
@given(u64, st.integers(0, 2**32), st.integers(1, 9), st.sampled_from([(16, 16, 4), (13, 29, 5), (7, 7, 7), (30, 11, 2)]))
def test_rise_masks_batch_and_thread_independent(seed, first, n, shape):
    h, w, grid = shape
    batch = core.rise_masks(seed, first, n, h, w, grid, 0.5, threads=1)
    for threads in (0, 2, 7):
        np.testing.assert_array_equal(core.rise_masks(seed, first, n, h, w, grid, 0.5, threads=threads), batch)
    for k in range(n):  # mask k of a batch is mask first + k generated alone
        np.testing.assert_array_equal(core.rise_masks(seed, first + k, 1, h, w, grid, 0.5, threads=3)[0], batch[k])
    if n >= 3:  # and any split of the batch gives the same masks
        parts = [core.rise_masks(seed, first, 2, h, w, grid, 0.5), core.rise_masks(seed, first + 2, n - 2, h, w, grid, 0.5)]
        np.testing.assert_array_equal(np.concatenate(parts), batch)


@pytest.mark.parametrize("p_keep", [0.1, 0.5, 0.8])
def test_rise_mask_mean_is_p_keep(p_keep):
    masks = core.rise_masks(2024, 0, 400, 32, 32, 4, p_keep)
    assert abs(float(masks.mean()) - p_keep) < 0.02
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    assert masks.std() > 0.1  # not a constant field
    # the lattice is binary: RISE masks reach (or come near) 0 and 1 somewhere
    assert masks.max() == 1.0 and masks.min() < 0.05


def test_rise_masks_seeds_and_streams_differ():
    a = core.rise_masks(1, 0, 4, 20, 20, 5, 0.5)
    b = core.rise_masks(2, 0, 4, 20, 20, 5, 0.5)
    assert not np.array_equal(a, b)
    assert len({a[k].tobytes() for k in range(4)}) == 4  # streams differ from each other
    np.testing.assert_array_equal(core.rise_masks(1, 0, 4, 20, 20, 5, 0.5), a)  # deterministic


def test_rise_masks_p_keep_one_keeps_everything_and_empty_batch():
    np.testing.assert_array_equal(core.rise_masks(9, 0, 3, 11, 13, 3, 1.0), np.ones((3, 11, 13), F32))
    assert core.rise_masks(9, 5, 0, 11, 13, 3, 0.5).shape == (0, 11, 13)


def test_rise_masks_are_smooth():
    # bilinear interpolation over cells of 8 px: neighbouring pixels differ by at most 1/8
    masks = core.rise_masks(3, 0, 20, 32, 32, 4, 0.5)
    assert np.abs(np.diff(masks, axis=1)).max() <= 1 / 8 + 1e-6
    assert np.abs(np.diff(masks, axis=2)).max() <= 1 / 8 + 1e-6


# ---------------------------------------------------------------------------------------
# perturb: Preprocessor((h, w, 3), ...).prepare(image, baseline).blend(masks, out)
# ---------------------------------------------------------------------------------------

RGB, BGR = [0, 1, 2], [2, 1, 0]


def perturb(image, baseline, masks, out, gain, bias, bgr=False, layout="NCHW", threads=0, shape=None):
    """The former `_core.perturb(image, baseline, masks, out, gain, bias, bgr, layout, threads)` on the
    masking core: an (h, w, 3) Preprocessor, image and baseline prepared once, the masks blended.
    `shape` defaults to image.shape (the bad-shape tests pass it apart from a wrong image)."""
    shape = np.shape(image) if shape is None else shape
    pre = core.Preprocessor(shape, gain, bias, BGR if bgr else RGB, layout == "NCHW", threads=threads)
    return pre.prepare(image, baseline).blend(masks, out)


def preprocess_ref(v, gain, bias, bgr):
    """float32 P(v) = v[..., source] * gain + bias, channels last."""
    r = v[..., BGR if bgr else RGB] * np.asarray(gain, F32) + np.asarray(bias, F32)
    assert r.dtype == F32
    return r


def perturb_ref(image, baseline, masks, gain, bias, bgr, layout):
    """float32, the documented formula in the core's operation order: m * P(x) + (1 - m) * P(z)."""
    x, z = preprocess_ref(image, gain, bias, bgr), preprocess_ref(baseline, gain, bias, bgr)
    wgt = masks[..., None]
    v = wgt * x + (F32(1) - wgt) * z
    assert v.dtype == F32
    return v.transpose(0, 3, 1, 2) if layout == "NCHW" else v


def perturb_ref64(image, baseline, masks, gain, bias, bgr, layout):
    """float64, P(masks * image + (1 - masks) * baseline): equal to the blend of P(x) and P(z) as P is affine."""
    src = BGR if bgr else RGB
    x, z = image[..., src].astype(np.float64), baseline[..., src].astype(np.float64)
    m = masks[..., None].astype(np.float64)
    v = (m * x + (1 - m) * z) * np.asarray(gain, F32).astype(np.float64) + np.asarray(bias, F32).astype(np.float64)
    return v.transpose(0, 3, 1, 2) if layout == "NCHW" else v


def _out_shape(rows, h, w, layout):
    return (rows, 3, h, w) if layout == "NCHW" else (rows, h, w, 3)


def assert_near32(got, ref, scale, ulps=4):
    """|got - ref| <= ulps float32 epsilons of `scale` (the magnitude of the terms summed), elementwise."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    tol = ulps * float(np.finfo(F32).eps) * np.asarray(scale, np.float64)
    bad = ~(np.abs(got - ref) <= tol)
    assert not bad.any(), f"{int(bad.sum())} of {bad.size} differ, e.g. got {got[bad][:3]} want {ref[bad][:3]}"


SENTINEL = F32(-12345.5)
gains = st.lists(st.floats(-3.0, 3.0, width=32), min_size=3, max_size=3)
biases = st.lists(st.floats(-200.0, 200.0, width=32), min_size=3, max_size=3)


@MANY
@given(
    st.integers(0, 4), st.integers(1, 7), st.integers(1, 7), st.integers(0, 3),
    st.booleans(), st.sampled_from(["NCHW", "NHWC"]), gains, biases, st.integers(0, 2**32 - 1),
)
def test_perturb_matches_reference(batch, h, w, extra, bgr, layout, gain, bias, seed):
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 255, (h, w, 3)).astype(F32)
    baseline = rng.uniform(0, 255, (h, w, 3)).astype(F32)
    masks = rng.uniform(0, 1, (batch, h, w)).astype(F32)
    if batch:
        masks[0] = rng.integers(0, 2, (h, w))  # a hard mask too
    image_copy, baseline_copy, masks_copy = image.copy(), baseline.copy(), masks.copy()
    out = np.full(_out_shape(batch + extra, h, w, layout), SENTINEL, F32)
    assert perturb(image, baseline, masks, out, gain, bias, bgr=bgr, layout=layout) is None
    ref = perturb_ref(image, baseline, masks, gain, bias, bgr, layout)
    # each term within a few ulps of its own magnitude (the compiler may contract a*b+c into an FMA)
    px = np.abs(preprocess_ref(image, gain, bias, bgr)) + np.abs(np.asarray(bias, F32))
    pz = np.abs(preprocess_ref(baseline, gain, bias, bgr)) + np.abs(np.asarray(bias, F32))
    m = masks[..., None]
    scale = m * px + (1 - m) * pz
    scale = scale.transpose(0, 3, 1, 2) if layout == "NCHW" else scale
    assert_near32(out[:batch], ref, scale)
    np.testing.assert_allclose(out[:batch], perturb_ref64(image, baseline, masks, gain, bias, bgr, layout), rtol=1e-5, atol=2e-3)
    assert np.all(out[batch:] == SENTINEL)  # rows past the batch are left alone
    # inputs are not modified
    np.testing.assert_array_equal(image, image_copy)
    np.testing.assert_array_equal(baseline, baseline_copy)
    np.testing.assert_array_equal(masks, masks_copy)


def test_perturb_hard_masks_pick_image_or_baseline():
    # pixel values as they come from an 8-bit image (the documented input is RGB 0..255)
    rng = np.random.default_rng(0)
    h, w = 6, 5
    image = rng.integers(0, 256, (h, w, 3)).astype(F32)
    baseline = rng.integers(0, 256, (h, w, 3)).astype(F32)
    masks = np.stack([np.ones((h, w), F32), np.zeros((h, w), F32)])
    out = np.empty((2, h, w, 3), F32)
    perturb(image, baseline, masks, out, [1, 1, 1], [0, 0, 0], layout="NHWC")
    np.testing.assert_array_equal(out[0], image)
    np.testing.assert_array_equal(out[1], baseline)
    out_bgr = np.empty((2, 3, h, w), F32)
    perturb(image, baseline, masks, out_bgr, [1, 1, 1], [0, 0, 0], bgr=True)  # NCHW default
    np.testing.assert_array_equal(out_bgr[0], image[..., ::-1].transpose(2, 0, 1))
    np.testing.assert_array_equal(out_bgr[1], baseline[..., ::-1].transpose(2, 0, 1))


def test_perturb_hard_masks_exact_for_non_integer_pixels():
    rng = np.random.default_rng(0)
    h, w = 6, 5
    image = rng.uniform(0, 255, (h, w, 3)).astype(F32)
    baseline = rng.uniform(0, 255, (h, w, 3)).astype(F32)
    masks = np.stack([np.ones((h, w), F32), np.zeros((h, w), F32)])
    out = np.empty((2, h, w, 3), F32)
    perturb(image, baseline, masks, out, [1, 1, 1], [0, 0, 0], layout="NHWC")
    np.testing.assert_allclose(out[0], image, rtol=0, atol=3e-5)  # within an ulp of 255
    np.testing.assert_array_equal(out[1], baseline)
    np.testing.assert_array_equal(out[0], image)
    # with a real gain and bias a hard mask gives P(image) or P(baseline) exactly: 1 * a + 0 * b == a
    gain, bias = [1 / 58.4, 1 / 57.1, 1 / 57.4], [-2.1, -2.0, -1.8]
    for layout in ("NCHW", "NHWC"):
        out = np.empty(_out_shape(2, h, w, layout), F32)
        perturb(image, baseline, masks, out, gain, bias, bgr=True, layout=layout)
        pre = core.Preprocessor((h, w, 3), gain, bias, BGR, layout == "NCHW")
        alone = np.empty_like(out)
        pre.apply(np.stack([image, baseline]), alone)
        np.testing.assert_array_equal(out, alone)


@pytest.mark.parametrize("h,w", [(19, 23), (71, 67)])  # 71 x 67 > 4096 positions: blocks within an image
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("bgr", [False, True])
def test_perturb_thread_independent(layout, bgr, h, w):
    rng = np.random.default_rng(7)
    b = 5
    image = rng.uniform(0, 255, (h, w, 3)).astype(F32)
    baseline = rng.uniform(0, 255, (h, w, 3)).astype(F32)
    masks = rng.uniform(0, 1, (b, h, w)).astype(F32)
    gain, bias = [1 / 58.4, 1 / 57.1, 1 / 57.4], [-2.1, -2.0, -1.8]
    results = []
    for threads in (0, 1, 2, 3, 8):
        out = np.full(_out_shape(b + 2, h, w, layout), SENTINEL, F32)
        perturb(image, baseline, masks, out, gain, bias, bgr=bgr, layout=layout, threads=threads)
        results.append(out)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    assert np.all(results[0][b:] == SENTINEL)
    np.testing.assert_allclose(results[0][:b], perturb_ref(image, baseline, masks, gain, bias, bgr, layout), rtol=2e-6, atol=1e-5)
    # one prepared input, blended batch by batch, gives the batch's rows
    pre = core.Preprocessor((h, w, 3), gain, bias, BGR if bgr else RGB, layout == "NCHW", threads=3)
    prepared = pre.prepare(image, baseline)
    for lo, hi in [(0, 2), (2, 3), (3, b)]:
        out = np.full(_out_shape(hi - lo, h, w, layout), SENTINEL, F32)
        prepared.blend(masks[lo:hi], out)
        np.testing.assert_array_equal(out, results[0][lo:hi])

# ---------------------------------------------------------------------------------------
# accumulate
# ---------------------------------------------------------------------------------------


def accumulate_ref(scores, masks, sums, counts, complement):
    sums, counts = sums.copy(), counts.copy()
    for b in range(masks.shape[0]):
        wgt = masks[b].astype(np.float64)
        if complement:
            wgt = 1.0 - wgt
        counts += wgt
        for t in range(scores.shape[1]):
            sums[t] += np.float64(scores[b, t]) * wgt
    return sums, counts


@SOME
@given(st.integers(0, 5), st.integers(0, 3), st.integers(1, 9), st.integers(1, 9), st.booleans(), st.integers(0, 2**32 - 1))
def test_accumulate_matches_reference(batch, targets, h, w, complement, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(batch, targets)).astype(F32)
    masks = rng.uniform(0, 1, (batch, h, w)).astype(F32)
    sums = rng.normal(size=(targets, h, w))  # start from a non-zero state: updates are in place
    counts = rng.uniform(0, 3, (h, w))
    ref_sums, ref_counts = accumulate_ref(scores, masks, sums, counts, complement)
    assert core.accumulate(scores, masks, sums, counts, complement=complement) is None
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(counts, ref_counts, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("complement", [False, True])
def test_accumulate_split_and_thread_independent(complement):
    # more than one 1024-pixel block so that threads really share the work
    rng = np.random.default_rng(11)
    b, t, h, w = 9, 3, 41, 59
    scores = rng.normal(size=(b, t)).astype(F32)
    masks = rng.uniform(0, 1, (b, h, w)).astype(F32)

    def run(parts, threads):
        sums, counts = np.zeros((t, h, w)), np.zeros((h, w))
        for lo, hi in parts:
            core.accumulate(scores[lo:hi], masks[lo:hi], sums, counts, complement=complement, threads=threads)
        return sums, counts

    one_sums, one_counts = run([(0, b)], 1)
    ref_sums, ref_counts = accumulate_ref(scores, masks, np.zeros((t, h, w)), np.zeros((h, w)), complement)
    np.testing.assert_allclose(one_sums, ref_sums, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(one_counts, ref_counts, rtol=1e-12, atol=1e-12)
    for parts in ([(0, b)], [(0, 4), (4, b)], [(0, 1), (1, 1), (1, 7), (7, b)]):
        for threads in (0,) + THREADS:
            sums, counts = run(parts, threads)
            np.testing.assert_array_equal(sums, one_sums)  # bitwise: same addition order
            np.testing.assert_array_equal(counts, one_counts)


def test_accumulate_complement_adds_up_to_batch():
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(6, 2)).astype(F32)
    masks = rng.uniform(0, 1, (6, 4, 5)).astype(F32)
    s1, c1 = np.zeros((2, 4, 5)), np.zeros((4, 5))
    s2, c2 = np.zeros((2, 4, 5)), np.zeros((4, 5))
    core.accumulate(scores, masks, s1, c1)
    core.accumulate(scores, masks, s2, c2, complement=True)
    np.testing.assert_allclose(c1 + c2, 6.0, rtol=1e-12)
    np.testing.assert_allclose(s1 + s2, scores.astype(np.float64).sum(0)[:, None, None] * np.ones((2, 4, 5)), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------
# boundary validation: clear Python exceptions, never a crash
# ---------------------------------------------------------------------------------------


def _perturb_args(b=2, h=4, w=5, layout="NCHW"):
    return dict(
        image=np.zeros((h, w, 3), F32),
        baseline=np.zeros((h, w, 3), F32),
        masks=np.ones((b, h, w), F32),
        out=np.zeros(_out_shape(b, h, w, layout), F32),
        gain=[1.0, 1.0, 1.0],
        bias=[0.0, 0.0, 0.0],
        layout=layout,
        shape=(h, w, 3),
    )


def _accumulate_args(b=2, t=3, h=4, w=5):
    return dict(
        scores=np.zeros((b, t), F32),
        masks=np.ones((b, h, w), F32),
        sums=np.zeros((t, h, w)),
        counts=np.zeros((h, w)),
    )


# the prepare/blend argument names of perturb's image and baseline
ARG_NAME = {"image": "input", "baseline": "replacement", "masks": "masks", "out": "out"}


def test_valid_calls_pass():
    perturb(**_perturb_args())
    perturb(**_perturb_args(layout="NHWC"))
    perturb(**_perturb_args(b=0))
    perturb(**_perturb_args(h=1, w=1))
    core.accumulate(**_accumulate_args())
    core.accumulate(**_accumulate_args(b=0))
    core.accumulate(**_accumulate_args(t=0))


@pytest.mark.parametrize(
    "name,value",
    [
        ("image", np.zeros((4, 5, 3), np.float64)),
        ("baseline", np.zeros((4, 5, 3), np.uint8)),
        ("masks", np.ones((2, 4, 5), np.int32)),
        ("masks", np.ones((2, 4, 5), bool)),
        ("out", np.zeros((2, 3, 4, 5), np.float64)),
        ("image", np.zeros((4, 5, 3), np.dtype(">f4"))),  # non-native byte order
        ("image", [[[0.0, 0.0, 0.0]]]),  # not an array at all
    ],
)
def test_perturb_wrong_dtype(name, value):
    args = _perturb_args()
    args[name] = value
    with pytest.raises(TypeError, match=ARG_NAME[name]):
        perturb(**args)


@pytest.mark.parametrize(
    "name,value",
    [
        ("scores", np.zeros((2, 3), np.float64)),
        ("masks", np.ones((2, 4, 5), np.int64)),
        ("sums", np.zeros((3, 4, 5), F32)),
        ("counts", np.zeros((4, 5), F32)),
    ],
)
def test_accumulate_wrong_dtype(name, value):
    args = _accumulate_args()
    args[name] = value
    with pytest.raises(TypeError, match=name):
        core.accumulate(**args)


@pytest.mark.parametrize("name", ["image", "baseline", "masks", "out"])
def test_perturb_non_contiguous(name):
    args = _perturb_args(b=2, h=6, w=6)
    arr = args[name]
    args[name] = np.asfortranarray(arr) if name != "masks" else np.ones((2, 6, 12), F32)[:, :, ::2]
    assert not args[name].flags.c_contiguous
    with pytest.raises(ValueError, match=f"{ARG_NAME[name]} must be C-contiguous"):
        perturb(**args)


@pytest.mark.parametrize("name", ["scores", "masks", "sums", "counts"])
def test_accumulate_non_contiguous(name):
    args = _accumulate_args()
    args[name] = np.asfortranarray(args[name])
    assert not args[name].flags.c_contiguous
    with pytest.raises(ValueError, match="C-contiguous"):
        core.accumulate(**args)


def test_transposed_view_rejected_not_misread():
    # a transposed view has the right shape but the wrong memory order
    args = _perturb_args(h=5, w=5)
    args["masks"] = np.ones((5, 5, 2), F32).transpose(2, 0, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        perturb(**args)
    args = _perturb_args(h=5, w=5)
    args["image"] = np.zeros((3, 5, 5), F32).transpose(1, 2, 0)  # an HWC view of a CHW image
    with pytest.raises(ValueError, match="input must be C-contiguous"):
        perturb(**args)


@pytest.mark.parametrize(
    "name,value,match",
    [
        ("image", np.zeros((4, 5), F32), "input.*dimensions"),
        ("masks", np.ones((4, 5), F32), "masks.*dimensions"),
        ("out", np.zeros((2, 3, 20), F32), "out.*dimensions"),
        ("image", np.zeros((4, 5, 4), F32), "input"),
        ("baseline", np.zeros((4, 6, 3), F32), "replacement"),
        ("baseline", np.zeros((4, 5, 1), F32), "replacement"),
        ("masks", np.ones((2, 5, 4), F32), "masks"),
        ("out", np.zeros((1, 3, 4, 5), F32), "out must have at least 2 rows"),  # too small for the batch
        ("out", np.zeros((2, 4, 5, 3), F32), "out"),  # NHWC buffer for an NCHW call
        ("out", np.zeros((2, 3, 5, 4), F32), "out"),
    ],
)
def test_perturb_bad_shapes(name, value, match):
    args = _perturb_args()
    args[name] = value
    with pytest.raises(ValueError, match=match):
        perturb(**args)


def test_perturb_nchw_buffer_for_an_nhwc_call():
    args = _perturb_args(layout="NHWC")
    args["out"] = np.zeros((2, 3, 4, 5), F32)
    with pytest.raises(ValueError, match="out"):
        perturb(**args)


def test_perturb_read_only_out():
    args = _perturb_args()
    args["out"].setflags(write=False)
    with pytest.raises(ValueError, match="writeable"):
        perturb(**args)


@pytest.mark.parametrize("name,value", [("gain", [1.0, 1.0]), ("gain", [1.0] * 4), ("bias", [0.0, 0.0]), ("bias", [])])
def test_perturb_bad_gain_length(name, value):
    args = _perturb_args()
    args[name] = value
    with pytest.raises(ValueError, match="one value per channel"):
        perturb(**args)


def _preprocessor_args(**kwargs):
    args = dict(shape=(4, 5, 3), gain=[1.0, 1.0, 1.0], bias=[0.0, 0.0, 0.0], source=[0, 1, 2], channels_first=True)
    args.update(kwargs)
    return args


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(source=[0, 1, 3]), "source"),
        (dict(source=[-1, 1, 2]), "source"),
        (dict(source=[2, 1, 0, 0]), "one value per channel"),
        (dict(source=[0, 1]), "one value per channel"),
        (dict(gain=[1.0, 1.0]), "one value per channel"),
        (dict(bias=[0.0] * 4), "one value per channel"),
        (dict(shape=(4, 5, 1)), "one value per channel"),  # C = 1 with three values
        (dict(shape=(0, 5, 3)), ">= 1"),
        (dict(shape=(4, 0, 3)), ">= 1"),
        (dict(shape=(4, 5, 0)), ">= 1"),
        (dict(shape=(4, -5, 3)), ">= 1"),
        (dict(shape=(3,)), "shape"),
        (dict(shape=()), "shape"),
    ],
)
def test_preprocessor_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        core.Preprocessor(**_preprocessor_args(**kwargs))


def test_preprocessor_bad_argument_types():
    with pytest.raises(TypeError):
        core.Preprocessor(**_preprocessor_args(gain=["a", "b", "c"]))
    with pytest.raises(TypeError):
        core.Preprocessor(**_preprocessor_args(source=[0.0, 1.0, 2.0]))
    with pytest.raises(TypeError):
        core.Preprocessor(**_preprocessor_args(shape=4))


@pytest.mark.parametrize(
    "name,value,match",
    [
        ("scores", np.zeros((3, 3), F32), "scores"),
        ("scores", np.zeros(2, F32), "scores.*dimensions"),
        ("masks", np.ones((2, 20), F32), "masks.*dimensions"),
        ("sums", np.zeros((2, 4, 5)), "sums"),
        ("sums", np.zeros((3, 5, 4)), "sums"),
        ("counts", np.zeros((5, 4)), "counts"),
        ("counts", np.zeros(20), "counts.*dimensions"),
    ],
)
def test_accumulate_bad_shapes(name, value, match):
    args = _accumulate_args()
    args[name] = value
    with pytest.raises(ValueError, match=match):
        core.accumulate(**args)


def test_accumulate_read_only():
    args = _accumulate_args()
    args["counts"].setflags(write=False)
    with pytest.raises(ValueError, match="writeable"):
        core.accumulate(**args)


@pytest.mark.parametrize(
    "size,window,stride,match",
    [(5, 6, 1, "window"), (5, 0, 1, "window"), (0, 1, 1, "window"), (5, 2, 0, "stride"), (5, 2, -1, "stride")],
)
def test_window_positions_invalid(size, window, stride, match):
    with pytest.raises(ValueError, match=match):
        core.window_positions(size, window, stride)


@pytest.mark.parametrize(
    "h,w,window,stride,first,count,match",
    [
        (8, 8, 9, 1, 0, 1, "window"),
        (8, 4, 5, 1, 0, 1, "window"),
        (8, 8, 0, 1, 0, 1, "window"),
        (8, 8, 2, 0, 0, 1, "stride"),
        (0, 8, 1, 1, 0, 1, "height"),
        (8, 8, 4, 4, 0, 5, "exceed the 4 windows"),
        (8, 8, 4, 4, 4, 1, "exceed"),
        (8, 8, 4, 4, 3, 2, "exceed"),
        (8, 8, 4, 4, -1, 1, "exceed"),
        (8, 8, 4, 4, 0, -1, "exceed"),
    ],
)
def test_occlusion_masks_invalid(h, w, window, stride, first, count, match):
    with pytest.raises(ValueError, match=match):
        core.occlusion_masks(h, w, window, stride, first, count)


def test_occlusion_masks_boundary_counts_valid():
    assert core.occlusion_masks(8, 8, 4, 4, 4, 0).shape == (0, 8, 8)
    assert core.occlusion_masks(8, 8, 4, 4, 3, 1).shape == (1, 8, 8)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(p_keep=0.0), "p_keep"),
        (dict(p_keep=-0.5), "p_keep"),
        (dict(p_keep=1.5), "p_keep"),
        (dict(p_keep=float("nan")), "p_keep"),
        (dict(grid=0), "grid"),
        (dict(grid=9), "grid"),
        (dict(height=0), "height"),
        (dict(first=-1), "first"),
        (dict(count=-1), "count"),
    ],
)
def test_rise_masks_invalid(kwargs, match):
    args = dict(seed=0, first=0, count=2, height=8, width=8, grid=4, p_keep=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        core.rise_masks(**args)


def test_rng_rejects_out_of_range_integers():
    with pytest.raises(TypeError):
        core.uniform(-1, 0, 0)
    with pytest.raises(TypeError):
        core.uniform(2**64, 0, 0)
    with pytest.raises(TypeError):
        core.philox4x32(2**32, 0, 0, 0, 0, 0)


# ---------------------------------------------------------------------------------------
# equivalent float32 dtype objects
# ---------------------------------------------------------------------------------------


def _equivalent_float32_arrays(shape):
    """float32 arrays whose dtype object is equal to, but not the same object as, np.float32's."""
    base = np.arange(math.prod(shape), dtype=F32).reshape(shape) / F32(100)
    yield "unpickled", pickle.loads(pickle.dumps(base))
    yield "newbyteorder('=')", base.astype(np.dtype(F32).newbyteorder("="))


def test_equivalent_float32_dtype_accepted():
    for label, masks in _equivalent_float32_arrays((2, 4, 5)):
        assert masks.dtype == np.float32, label
        args = _accumulate_args()
        args["masks"] = masks
        core.accumulate(**args)
        np.testing.assert_allclose(args["counts"], masks.astype(np.float64).sum(0), err_msg=label)


# ---------------------------------------------------------------------------------------
# 64-bit overflow at the boundary. These run the core in a child process: today they make
# it write out of bounds or crash, which must not take the test run down with it.
# ---------------------------------------------------------------------------------------

_CHILD_PRELUDE = """
import importlib.machinery, importlib.util, numpy as np
loader = importlib.machinery.ExtensionFileLoader("onnxplain._core", {path!r})
spec = importlib.util.spec_from_loader("onnxplain._core", loader)
core = importlib.util.module_from_spec(spec)
loader.exec_module(core)
"""


def _run_child(body: str):
    import subprocess
    import sys

    code = _CHILD_PRELUDE.format(path=core.__file__) + body
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_child_process_harness():
    proc = _run_child("print(core.window_positions(10, 3, 4).tolist())")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0, 4, 7]"


@pytest.mark.parametrize("window,stride", [(1, 2**63 - 1), (3, 2**63 - 2), (5, 2**63 - 4)])
def test_window_positions_huge_stride(window, stride):
    proc = _run_child(f"print(core.window_positions(10, {window}, {stride}).tolist())")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"[0, {10 - window}]"


def test_occlusion_masks_huge_stride():
    proc = _run_child(
        "r = core.occlusion_masks(10, 10, 1, 2**63 - 1, 0, 4, threads=1)\n"
        "print(r.shape, [int((m == 0).sum()) for m in r])"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(4, 10, 10) [1, 1, 1, 1]"


@pytest.mark.parametrize("first,count", [(2**63 - 1, 1), (2**63 - 4, 8), (1, 2**63 - 1)])
def test_occlusion_masks_first_overflow(first, count):
    proc = _run_child(
        "try:\n"
        f"    core.occlusion_masks(64, 64, 4, 4, {first}, {count})\n"
        "    print('accepted')\n"
        "except ValueError as e:\n"
        "    print('ValueError', e)\n"
    )
    assert proc.returncode == 0, f"child died with {proc.returncode}: {proc.stderr[-500:]}"
    assert proc.stdout.startswith("ValueError") and "exceed" in proc.stdout
