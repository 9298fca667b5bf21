"""Exception-safe `parallel_for` (cpp/include/onnxplain/parallel.hpp) and the error translator.

Driven through the test-only bindings of cpp/bindings/register_testing.cpp:
`_test_parallel_throw` throws at one chosen item, `_test_parallel_throw_all` throws in every
chunk at once, `_test_parallel_chunks` shows the partition. An exception in any thread must
come out as `OnnxplainError` with the C++ message, and the process must live on.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import onnxplain
from onnxplain import _core as core
from onnxplain.errors import OnnxplainError

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

THREADS = (1, 2, 4, 8)
SIZES = (1, 2, 3, 5, 8, 9, 17, 64, 1000)


def partition(n: int, threads: int, grain: int = 1) -> list[tuple[int, int]]:
    """The documented static partition: ceil(n / workers)-sized chunks, workers <= max(1, n // grain)."""
    if n <= 0:
        return []
    workers = min(threads, n, max(1, n // max(grain, 1)))
    if workers <= 1:
        return [(0, n)]
    chunk = -(-n // workers)
    return [(b, min(n, b + chunk)) for b in range(0, n, chunk)]


def total(n: int) -> int:
    return n * (n - 1) // 2


def test_error_class_is_exported():
    assert onnxplain.OnnxplainError is OnnxplainError
    assert issubclass(OnnxplainError, ValueError)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", SIZES)
def test_no_throw_sums_every_item_once(n, threads):
    assert core._test_parallel_throw(n, threads, -1) == total(n)
    assert core._test_parallel_throw(n, threads, n) == total(n)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", SIZES)
def test_throw_in_callers_chunk(n, threads):
    # Item 0 always lies in the caller's own chunk [0, chunk).
    with pytest.raises(OnnxplainError, match=r"^item 0 failed$"):
        core._test_parallel_throw(n, threads, 0)
    assert core._test_parallel_throw(n, threads, -1) == total(n)  # the process lives on


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", SIZES)
def test_throw_in_a_workers_chunk(n, threads):
    chunks = partition(n, threads)
    for begin, end in chunks[1:] or chunks:  # the workers' chunks (the caller's when inline)
        for at in {begin, (begin + end) // 2, end - 1}:
            with pytest.raises(OnnxplainError, match=rf"^item {at} failed$"):
                core._test_parallel_throw(n, threads, at)
    assert core._test_parallel_throw(n, threads, -1) == total(n)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n", SIZES)
def test_throw_in_every_chunk_at_once(n, threads):
    chunks = partition(n, threads)
    for _ in range(5):
        with pytest.raises(OnnxplainError) as info:
            core._test_parallel_throw_all(n, threads)
        got = re.fullmatch(r"chunk (\d+)\.\.(\d+) failed", str(info.value))
        assert got is not None, str(info.value)
        assert (int(got[1]), int(got[2])) in chunks
    assert core._test_parallel_throw(n, threads, -1) == total(n)


def test_many_failures_in_a_row_keep_the_process_alive():
    for i in range(200):
        with pytest.raises(OnnxplainError):
            core._test_parallel_throw_all(64, 8)
        with pytest.raises(OnnxplainError):
            core._test_parallel_throw(64, 8, i % 64)
    assert core._test_parallel_throw(64, 8, -1) == total(64)


@settings(deadline=None, max_examples=300)
@given(n=st.integers(0, 300), threads=st.integers(0, 16), throw_at=st.integers(-3, 320),
       grain=st.integers(0, 50))
def test_property_exact_error_or_exact_sum(n, threads, throw_at, grain):
    if 0 <= throw_at < n:
        with pytest.raises(OnnxplainError, match=rf"^item {throw_at} failed$"):
            core._test_parallel_throw(n, threads, throw_at, grain)
    else:
        assert core._test_parallel_throw(n, threads, throw_at, grain) == total(n)


@settings(deadline=None, max_examples=300)
@given(n=st.integers(0, 300), threads=st.integers(1, 16), grain=st.integers(0, 50))
def test_property_partition_is_static_and_grained(n, threads, grain):
    chunks = core._test_parallel_chunks(n, threads, grain)
    assert chunks == partition(n, threads, grain)
    assert all(end - begin >= grain for begin, end in chunks[:-1])  # all but the last
    if n < 2 * grain:
        assert len(chunks) <= 1  # small work runs inline


def test_threads_zero_uses_the_default_and_covers_everything():
    chunks = core._test_parallel_chunks(1000, 0)
    assert chunks[0][0] == 0 and chunks[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))


@pytest.mark.parametrize("threads", THREADS)
def test_small_work_runs_inline(threads):
    # Fewer than 2 * grain items: one chunk, run by the calling thread, no thread started.
    assert core._test_parallel_chunks(15, threads, 8) == [(0, 15)]
    assert core._test_parallel_chunks(8, threads, 8) == [(0, 8)]
    assert core._test_parallel_chunks(1, threads) == [(0, 1)]
    assert core._test_parallel_chunks(0, threads) == []
    with pytest.raises(OnnxplainError, match=r"^item 14 failed$"):
        core._test_parallel_throw(15, threads, 14, 8)
    # Default grain 1: the partition existing kernels rely on is unchanged.
    assert core._test_parallel_chunks(10, threads) == partition(10, threads)


@pytest.mark.parametrize("threads", (1, 4))
def test_std_exception_kinds_become_onnxplain_error(threads):
    with pytest.raises(OnnxplainError, match=r"^item 40 failed$"):
        core._test_parallel_throw(64, threads, 40, kind="invalid_argument")
    with pytest.raises(OnnxplainError, match="bad_alloc"):
        core._test_parallel_throw(64, threads, 40, kind="bad_alloc")


@pytest.mark.parametrize("threads", (1, 4))
def test_pybind_exceptions_keep_their_python_types(threads):
    with pytest.raises(ValueError, match=r"^item 40 failed$") as info:
        core._test_parallel_throw(64, threads, 40, kind="value_error")
    assert type(info.value) is ValueError
    with pytest.raises(TypeError, match=r"^item 40 failed$") as info:
        core._test_parallel_throw(64, threads, 40, kind="type_error")
    assert type(info.value) is TypeError
    with pytest.raises(RuntimeError, match="unknown"):  # not a std::exception: pybind11's default
        core._test_parallel_throw(64, threads, 40, kind="unknown")
    with pytest.raises(ValueError, match="kind must be") as info:
        core._test_parallel_throw(64, threads, 40, kind="nope")
    assert type(info.value) is ValueError


def test_existing_binding_errors_keep_their_types():
    with pytest.raises(ValueError, match="window must be in 1..size") as info:
        core.window_positions(10, 20, 1)
    assert type(info.value) is ValueError
    masks = np.ones((1, 2, 2), np.float32)
    sums = np.zeros((1, 2, 2), np.float64)
    counts = np.zeros((2, 2), np.float64)
    with pytest.raises(TypeError, match="scores must have dtype float32") as info:
        core.accumulate(np.zeros((1, 1), np.int64), masks, sums, counts)
    assert type(info.value) is TypeError
    with pytest.raises(TypeError) as info:  # pybind11's own argument-conversion error
        core.window_positions("ten", 2, 1)
    assert type(info.value) is TypeError
