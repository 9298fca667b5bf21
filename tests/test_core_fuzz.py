"""Fuzzing the C++ core's entry points (`onnxplain._core`, typed in `_core.pyi`): random shapes,
dtypes, strides and values, plausible (shapes drawn from one small pool, so that they often agree
and the kernels run) or hostile (wrong dtype, rank or layout; NaN, infinities, negative and
extreme indices; absurd sizes). Every call must return or raise TypeError, ValueError
(OnnxplainError), OverflowError or MemoryError: never crash, hang or corrupt memory. `.ci/run`
runs this module again on a core built with AddressSanitizer and UBSan.

Sizes are small (<= 8 per axis) or absurd (>= 2^40, so that any allocation they imply is refused
instead of filling memory).
"""
from __future__ import annotations

import numpy as np
import pytest

from onnxplain import _core as core

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

REFUSALS = (TypeError, ValueError, OverflowError, MemoryError)
FUZZ = settings(deadline=None, max_examples=60, suppress_health_check=list(HealthCheck))
ABSURD = (2**40, 2**40 + 7, 2**62, 2**63 - 1)

DTYPES = (np.float32, np.float64, np.int32, np.int64, np.uint8, np.uint64, np.bool_, np.float16)
F32, F64, I32, I64, U8, U64 = np.float32, np.float64, np.int32, np.int64, np.uint8, np.uint64


def _values(draw, dtype, shape) -> np.ndarray:
    """Values of `dtype`: mostly ordinary (small indices, 0..1 or 0..255), sometimes extreme."""
    n = int(np.prod(shape))
    if np.issubdtype(dtype, np.floating):
        special = st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 1e30, -1e30, 0.0, 1.0, 255.0, 0.5])
        element = st.one_of(st.floats(0, 1, width=32), st.floats(0, 255, width=32), special)
    elif dtype == np.bool_:
        element = st.booleans()
    else:
        info = np.iinfo(dtype)
        element = st.one_of(st.integers(max(info.min, -2), min(info.max, 9)), st.sampled_from([info.min, info.max]))
    drawn = min(n, 512)  # larger arrays repeat their first 512 values (hypothesis caps list sizes)
    values = draw(st.lists(element, min_size=drawn, max_size=drawn))
    values = (values * -(-n // drawn))[:n] if drawn else []
    with np.errstate(over="ignore", invalid="ignore"):
        return np.array(values, dtype=np.float64 if np.issubdtype(dtype, np.floating) else object).astype(dtype).reshape(shape)


@st.composite
def arrays(draw, dtype, ndim: int, pool: list[int]) -> np.ndarray:
    """An array meant as `dtype` with `ndim` axes (sizes mostly from `pool`), or a hostile variant."""
    kind = draw(st.sampled_from(["plain"] * 6 + ["dtype", "ndim", "strided", "fortran", "list"]))
    if kind == "dtype":
        dtype = draw(st.sampled_from(DTYPES))
    if kind == "ndim":
        ndim = draw(st.integers(0, 5))
    shape = tuple(draw(st.one_of(st.sampled_from(pool), st.integers(0, 8))) for _ in range(ndim))
    array = _values(draw, dtype, shape)
    if kind == "strided" and ndim:
        array = np.repeat(array, 2, axis=0)[::2]  # same values, every other row: not contiguous
    if kind == "fortran" and ndim > 1:
        array = np.asfortranarray(array)
    return array.tolist() if kind == "list" else array


def sizes():
    """Sizes and counts: small, zero or negative, or absurd."""
    return st.one_of(st.integers(-2, 8), st.sampled_from(ABSURD))


def indices():
    """Offsets and streams: small, negative, or at the end of the integer range."""
    return st.one_of(st.integers(-2, 9), st.sampled_from([2**63 - 1, 2**64 - 1, 2**64, -(2**63)]))


def seeds():
    return st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([-1, 2**64]))


def threads():
    return st.sampled_from([-1, 0, 1, 2, 3, 2**31])


def reals():
    return st.one_of(st.floats(-2, 300), st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0]))


def a(dtype, ndim):
    """An array argument, its sizes from the example's pool."""
    return lambda pool: arrays(dtype, ndim, pool)


def s(strategy):
    """A scalar argument."""
    return lambda pool: strategy()


ENTRY_POINTS = {
    "accumulate": [a(F32, 2), a(F32, 3), a(F64, 3), a(F64, 2), s(st.booleans), s(threads)],
    "bank_patch_samples": [a(F32, 4), a(I64, 1), a(I64, 1), a(U64, 1), s(seeds), s(sizes), s(reals), s(threads)],
    "bernoulli_keep": [s(seeds), s(indices), s(sizes), s(sizes), s(reals), s(threads)],
    "categorical_patches": [a(F32, 3), a(I64, 1), a(U64, 1), s(seeds), s(threads), a(F32, 3)],
    "causal_box_masks": [a(I32, 2), a(I64, 1), s(sizes), s(sizes), s(sizes), s(threads)],
    "causal_credit_boxes": [a(I32, 2), a(F64, 1), a(F64, 2)],
    "causal_disc_masks": [a(F32, 2), a(F32, 1), a(U8, 2), s(threads)],
    "causal_drop_masks": [a(I32, 2), a(U8, 2), s(threads)],
    "causal_mask_parts": [a(U8, 2), s(sizes)],
    "causal_rank_masks": [a(I32, 2), a(I64, 1), s(threads)],
    "causal_sibling_responsibility": [a(U8, 2), a(I64, 2)],
    "causal_split_boxes": [s(seeds), a(I64, 1), a(I64, 1), a(I32, 2), s(sizes)],
    "causal_spotlight_centres": [s(seeds), s(indices), s(sizes), a(F32, 2), a(U8, 2), s(reals), s(sizes), s(threads)],
    "feature_count": [s(sizes), s(sizes), s(sizes)],
    "feature_masks": [a(I32, 2), a(F32, 2), s(threads)],
    "gaussian": [s(seeds), s(indices), s(sizes), s(threads)],
    "gaussian_conditionals": [a(F64, 2), a(I64, 1), a(U8, 2), s(threads)],
    "gaussian_patch_samples": [a(F32, 3), a(I64, 1), a(I64, 1), a(I64, 1), a(U64, 1), s(seeds), s(sizes), s(sizes),
                               a(F32, 1), a(F32, 1), a(F32, 3), a(F32, 3), s(reals), s(threads)],
    "imputation_system": [a(F32, 2), a(F32, 3)],
    "logistic_mixture_patches": [a(F32, 3), a(I64, 1), a(U64, 1), s(seeds), s(threads), a(F32, 3)],
    "noisy_patches": [a(F32, 4), a(U64, 1), s(seeds), s(reals), s(threads)],
    "normal": [s(seeds), s(indices), s(indices)],
    "occlusion_masks": [s(sizes), s(sizes), s(sizes), s(sizes), s(indices), s(sizes), s(threads)],
    "philox4x32": [s(indices)] * 6,
    "random_map": [s(seeds), s(sizes), s(sizes)],
    "rank_features": [a(F32, 2), s(sizes), s(seeds)],
    "rank_labels": [a(F32, 2), a(I32, 2), s(sizes), s(seeds)],
    "ranked_masks": [a(I32, 2), a(I64, 1), s(st.booleans), s(threads)],
    "rise_masks": [s(seeds), s(indices), s(sizes), s(sizes), s(sizes), s(sizes), s(reals), s(threads)],
    "uniform": [s(seeds), s(indices), s(indices)],
    "window_positions": [s(sizes), s(sizes), s(sizes)],
}


def test_every_entry_point_is_fuzzed():
    """Each exported function that takes host data is listed (CUDA and test-only ones aside)."""
    exported = {name for name in dir(core) if callable(getattr(core, name)) and not name.startswith("_")
                and not name.startswith("cuda_") and name not in ("Preprocessor", "PreparedInput")}
    assert exported == set(ENTRY_POINTS)


def _call(function, arguments) -> None:
    try:
        function(*arguments)
    except REFUSALS:
        pass


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
@FUZZ
@given(data=st.data())
def test_entry_point_survives_hostile_arguments(name, data):
    pool = data.draw(st.lists(st.integers(0, 6), min_size=3, max_size=3), label="pool")
    arguments = [data.draw(make(pool), label=f"argument {i}") for i, make in enumerate(ENTRY_POINTS[name])]
    _call(getattr(core, name), arguments)


@FUZZ
@given(data=st.data())
def test_preprocessor_and_prepared_input_survive_hostile_arguments(data):
    """Preprocessor construction, apply, prepare, and the PreparedInput's blend and paste."""
    pool = data.draw(st.lists(st.integers(0, 5), min_size=3, max_size=3), label="pool")
    rank = data.draw(st.integers(1, 3), label="positions rank")
    shape = [data.draw(st.one_of(st.sampled_from(pool), st.integers(-1, 6))) for _ in range(rank)] + \
        [data.draw(st.integers(-1, 5), label="channels")]
    channels = max(shape[-1], 0)
    per_channel = st.lists(st.one_of(st.floats(-3, 3), st.sampled_from([np.nan, np.inf, 0.0])),
                           min_size=max(channels - 1, 0), max_size=channels + 1)
    sources = st.lists(st.integers(-1, channels + 1), min_size=max(channels - 1, 0), max_size=channels + 1)
    try:
        pre = core.Preprocessor(shape, data.draw(per_channel), data.draw(per_channel), data.draw(sources),
                                data.draw(st.booleans()), data.draw(threads()))
    except REFUSALS:
        return
    held = list(pre.shape)
    batch = data.draw(st.integers(0, 3))
    _call(pre.apply, [data.draw(arrays(F32, len(held) + 1, [batch, *held])),
                      data.draw(arrays(F32, len(pre.model_shape) + 1, [batch, *pre.model_shape]))])
    try:
        prepared = pre.prepare(data.draw(arrays(F32, len(held), held)), data.draw(arrays(F32, len(held), held)))
    except REFUSALS:
        return
    out = data.draw(arrays(F32, len(pre.model_shape) + 1, [batch, *pre.model_shape]))
    _call(prepared.blend, [data.draw(arrays(F32, len(pre.mask_shape) + 1, [batch, *pre.mask_shape])), out])
    k = data.draw(st.integers(-1, 4))
    _call(prepared.paste, [data.draw(arrays(F32, 4, [batch, k, held[-1]])), data.draw(arrays(I64, 1, [batch])),
                           data.draw(arrays(I64, 1, [batch])), out])
