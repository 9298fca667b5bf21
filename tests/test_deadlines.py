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
    same_masks = ox.RISE(model).attribute(image, n_masks=masks, seed=1)  # the map of the masks it reached
    np.testing.assert_allclose(saliency, same_masks[2], rtol=1e-5, atol=1e-7)
    if masks >= 1000:  # enough masks for a settled map (always, on an idle machine)
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
    from onnxplain.reference import coarse_to_fine

    order = coarse_to_fine(31, 31)
    assert sorted(order) == list(range(31 * 31))
    first = np.divmod(order[:9], 31)  # (0,0), (0,16), (16,0), (16,16), then the step-8 lattice
    assert set(zip(*first)) >= {(0, 0), (0, 16), (16, 0), (16, 16)}
    assert max(first[0]) >= 16 and max(first[1]) >= 16
    image, _ = demo.make_demo_image(0, seed=11)
    cancel, calls = threading.Event(), []
    original = model.run

    def cancel_after_two(batch, *priority):
        calls.append(len(batch))
        if len(calls) == 2:
            cancel.set()
        return original(batch, *priority)

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

    def run(batch, *priority):
        seen.append(len(batch))
        if len(seen) == calls:
            cancel.set()
        return original(batch, *priority)

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


@pytest.mark.parametrize("mode", ["budgeted", "dense"])
def test_information_unreached_deadline_changes_nothing(model, mode):
    """With a deadline that never comes, IG/PMI maps are bit-identical to a plain run (dense mode
    then visits the grid coarse to fine, level by level: the same draws, summed in the same order)."""
    image, _ = demo.make_demo_image(1, seed=14)
    options = dict(patch=8, stride=4, samples=2, mode=mode, budget=150, seed=3)
    plain_ig, plain_pmi = ox.information_maps(model, image, **options)
    ig, pmi = ox.information_maps(model, image, deadline=1000.0, **options)
    assert ig.complete and pmi.complete and plain_ig.convergence is None
    assert ig.convergence == pmi.convergence and ig.convergence["of"] == 15 * 15
    assert ig.convergence["evaluations"] == ig.evaluations - 1 == plain_ig.evaluations - 1
    assert ig.convergence["positions"] == (225 if mode == "dense" else ig.convergence["positions"])
    assert -1 <= ig.convergence["levels_spearman"] <= 1
    for a, b in ((plain_ig, ig), (plain_pmi, pmi)):
        assert a.targets == b.targets
        for t in a.targets:
            np.testing.assert_array_equal(a[t], b[t])


@pytest.mark.parametrize("mode", ["budgeted", "dense"])
def test_information_stopped_returns_a_whole_map_from_the_positions_reached(model, mode):
    image, box = demo.make_demo_image(2, seed=15)
    options = dict(patch=8, stride=2, samples=1, mode=mode, budget=500, seed=5)
    full = ox.PMI(model).attribute(image, target=2, **options)
    cancel = threading.Event()
    seen = cancelling_after(model, 3, cancel)  # the clean image, then two batches of 64
    try:
        partial = ox.PMI(model).attribute(image, target=2, cancel=cancel, **options)
    finally:
        del model.run
    assert not partial.complete and partial.record()["complete"] is False
    reached = partial.convergence["evaluations"]
    assert reached == sum(seen[1:]) == partial.evaluations - 1 and reached < full.evaluations - 1
    assert 0 < partial.convergence["positions"] < partial.convergence["of"] == 29 * 29
    saliency = partial[2]
    assert saliency.shape == (64, 64) and np.all(np.isfinite(saliency))
    assert np.corrcoef(saliency.ravel(), full[2].ravel())[0, 1] > 0.9  # part of the first lattice, spread out
    assert demo.evidence_share(np.maximum(saliency, 0), box) > 0.2


def test_information_cancelled_before_any_patch_gives_zero_maps(model):
    image, _ = demo.make_demo_image(0, seed=16)
    cancel = threading.Event()
    cancel.set()
    ig, pmi = ox.information_maps(model, image, target="top2", patch=8, stride=4, cancel=cancel)
    assert not ig.complete and ig.convergence["positions"] == 0 and ig.evaluations == 1
    assert len(pmi.targets) == 2 and all(not pmi[t].any() and pmi[t].shape == (64, 64) for t in pmi.targets)
    assert not ig[ig.targets[0]].any()


def test_causal_huge_iterations_stop_at_the_deadline_in_bounded_memory(model):
    import tracemalloc

    image, _ = demo.make_demo_image(2, seed=13)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        partial = ox.Causal(model, fidelity=None).attribute(image, iterations=10**9, deadline=1.0, seed=0)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 10 and peak < 256 * 2**20, (seconds, peak / 2**20)  # the whole tree lists took GiB before
    assert not partial.complete and partial.convergence["stopped_in"] == "responsibility"
    assert np.all(np.isfinite(partial[2])) and partial[2].max() > 0  # the mean over the trees reached
