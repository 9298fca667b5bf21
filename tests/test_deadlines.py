"""Deadlines and cancellation: the best result so far, flagged incomplete, with its convergence."""
import threading
import time

import numpy as np
import pytest

import onnxplain as ox
from onnxplain import demo


@pytest.fixture(scope="module")
def model():
    return ox.Model(demo.demo_model_path(), preset="unit", batch_size=64, progress=False)


def test_rise_deadline_returns_a_valid_partial_map_quickly(model):
    image, box = demo.make_demo_image(2, seed=8)
    start = time.perf_counter()
    partial = ox.RISE(model).attribute(image, n_masks=10**6, deadline=0.5, seed=1)
    assert time.perf_counter() - start < 5
    assert not partial.complete and partial.record()["complete"] is False
    masks = partial.convergence["masks"]
    assert 0 < masks < 10**6 and partial.convergence["of"] == 10**6
    assert partial.evaluations == 1 + masks
    saliency = partial[2]
    assert saliency.shape == (64, 64) and np.all(np.isfinite(saliency))
    full = ox.RISE(model).attribute(image, n_masks=3000, seed=1)
    assert np.corrcoef(saliency.ravel(), full[2].ravel())[0, 1] > 0.8
    assert partial.convergence["halves_correlation"] > 0.5  # two independent halves agree
    assert demo.evidence_share(saliency, box) > 0.2


def test_cancel_from_another_thread(model):
    image, _ = demo.make_demo_image(0, seed=9)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.perf_counter()
    partial = ox.RISE(model).attribute(image, n_masks=10**6, cancel=cancel, seed=0)
    assert time.perf_counter() - start < 5 and not partial.complete and np.all(np.isfinite(partial[0]))
    already = threading.Event()
    already.set()  # cancelled before the first batch: a zero map, still the right shape
    empty = ox.Occlusion(model).attribute(image, window=8, stride=4, cancel=already)
    assert not empty.complete and empty.convergence == {"windows": 0, "of": 225}
    assert empty[0].shape == (64, 64) and not empty[0].any()


@pytest.mark.parametrize("method", ["occlusion", "rise"])
def test_an_unreached_deadline_changes_nothing(model, method):
    image, _ = demo.make_demo_image(1, seed=10)
    explainer = ox.Occlusion(model) if method == "occlusion" else ox.RISE(model)
    options = {"window": 8, "stride": 4} if method == "occlusion" else {"n_masks": 300, "seed": 4}
    plain = explainer.attribute(image, **options)
    timed = explainer.attribute(image, deadline=1000.0, **options)
    assert plain.complete and timed.complete and plain.convergence is None
    np.testing.assert_array_equal(plain[1], timed[1])
    assert timed.evaluations == plain.evaluations


def test_occlusion_visits_windows_coarse_to_fine(model):
    """The visiting order starts with the coarsest lattice of windows (spread over the whole grid),
    is a permutation, and a run stopped after a few batches has only those windows' values."""
    from onnxplain.reference import _coarse_to_fine

    order = _coarse_to_fine(31, 31)
    assert sorted(order) == list(range(31 * 31))
    first = np.divmod(order[:9], 31)  # (0,0), (0,16), (16,0), (16,16), then the step-8 lattice
    assert set(zip(*first)) >= {(0, 0), (0, 16), (16, 0), (16, 16)}
    assert max(first[0]) >= 16 and max(first[1]) >= 16
    image, _ = demo.make_demo_image(0, seed=11)
    cancel, calls = threading.Event(), []
    original = model.run

    def cancel_after_two(batch):
        calls.append(len(batch))
        if len(calls) == 2:
            cancel.set()
        return original(batch)

    model.run = cancel_after_two
    try:
        partial = ox.Occlusion(model).attribute(image, window=8, stride=2, cancel=cancel)
    finally:
        del model.run
    assert partial.convergence == {"windows": calls[1], "of": 29 * 29} and not partial.complete
    assert np.all(np.isfinite(partial[0]))


def test_bad_deadline_and_cancel_are_refused(model):
    image, _ = demo.make_demo_image(0, seed=1)
    for bad in (0, -1, "2", True):
        with pytest.raises(ox.OnnxplainError, match="deadline must be a positive number"):
            ox.RISE(model).attribute(image, deadline=bad)
    with pytest.raises(ox.OnnxplainError, match="cancel must be a threading.Event"):
        ox.Occlusion(model).attribute(image, cancel=True)


def cancelling_after(model, calls: int, cancel: threading.Event) -> list[int]:
    """Wraps model.run to set `cancel` after `calls` model calls (the clean evaluation included);
    returns the list of batch sizes it sees."""
    seen, original = [], model.run

    def run(batch):
        seen.append(len(batch))
        if len(seen) == calls:
            cancel.set()
        return original(batch)

    model.run = run
    return seen


@pytest.mark.parametrize("stage", ["responsibility", "search"])
def test_causal_stopped_keeps_what_it_found_verified(model, stage):
    image, box = demo.make_demo_image(1, seed=12)
    seen = cancelling_after(model, -1, threading.Event())  # count the calls of a whole run
    try:
        ox.Causal(model, fidelity=None).attribute(image, iterations=3, max_explanations=3, seed=0)  # calls: search only
    finally:
        del model.run
    whole = len(seen)
    cancel = threading.Event()
    cancelling_after(model, 2 if stage == "responsibility" else whole - 3, cancel)
    try:
        partial = ox.Causal(model, fidelity=None).attribute(image, iterations=3, max_explanations=3, cancel=cancel,
                                                            seed=0)
    finally:
        del model.run
    assert not partial.complete and partial.convergence["stopped_in"] == stage
    assert partial.convergence["explanations"] == len(partial.explanations)
    assert (len(partial.explanations) >= 1) == (stage == "search")  # the search had found one by then
    assert np.all(np.isfinite(partial[1])) and partial[1].shape == (64, 64)
    grey = model.preprocess.neutral
    for e in partial.explanations:  # each one verified: shown alone, the target stays the top class
        shown = np.where(e.mask[..., None], image, grey).astype(np.float32)
        assert np.argmax(model.predict(shown)) == 1


def test_causal_unreached_deadline_changes_nothing(model):
    image, _ = demo.make_demo_image(2, seed=13)
    plain = ox.Causal(model).attribute(image, iterations=2, max_explanations=2, seed=0)
    timed = ox.Causal(model).attribute(image, iterations=2, max_explanations=2, seed=0, deadline=1000.0)
    assert timed.complete and timed.convergence == {"stopped_in": None, "explanations": len(plain.explanations)}
    np.testing.assert_array_equal(plain[2], timed[2])
    assert [e.area for e in plain.explanations] == [e.area for e in timed.explanations]
