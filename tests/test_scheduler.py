"""Shared batching: threads on one model fill its batches together, each getting its own scores."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import onnxplain as ox
from onnxplain import demo
from onnxplain.scheduler import EXPLANATION, PREDICTION, Scheduler

from helpers import EFFICIENTNET, efficientnet_corner_chelsea, needs_efficientnet


class Recorder:
    """A fake model: row sums as one score column; records every batch; can hold the model busy
    until released, and fail on a batch holding a poisoned row (value -1)."""

    def __init__(self, hold: bool = False) -> None:
        self.batches: list[np.ndarray] = []
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.started = threading.Event()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.started.set()
        self.release.wait()
        self.batches.append(batch.copy())
        if (batch == -1).any():
            raise ValueError("poisoned row")
        return batch.reshape(len(batch), -1).sum(axis=1, keepdims=True)


def rows(n: int, value: float) -> np.ndarray:
    return np.full((n, 2), value, np.float32) + np.arange(n, dtype=np.float32)[:, None]


def waiting(scheduler: Scheduler, count: int) -> None:
    """Blocks until `count` requests wait in the scheduler."""
    deadline = time.monotonic() + 10
    while len(scheduler._waiting) < count:
        assert time.monotonic() < deadline, "requests never arrived"
        time.sleep(0.001)


def test_a_lone_caller_runs_its_own_batches_unchanged():
    model = Recorder()
    scheduler = Scheduler(model, lambda: 4)
    scores, seconds = scheduler.run(rows(3, 10))
    np.testing.assert_array_equal(scores[:, 0], rows(3, 10).sum(axis=1))
    assert len(model.batches) == 1 and scheduler.shared == 0 and seconds >= 0
    scores, _ = scheduler.run(rows(10, 0))  # larger than the batch: split 4 + 4 + 2, in order
    assert [len(b) for b in model.batches[1:]] == [4, 4, 2]
    np.testing.assert_array_equal(scores[:, 0], rows(10, 0).sum(axis=1))


def test_waiting_requests_share_batches_predictions_first():
    model = Recorder(hold=True)
    scheduler = Scheduler(model, lambda: 8)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(scheduler.run, rows(2, 100))  # runs alone, holding the model
        model.started.wait(10)
        explanations = [pool.submit(scheduler.run, rows(5, 200)), pool.submit(scheduler.run, rows(5, 300))]
        waiting(scheduler, 2)
        prediction = pool.submit(scheduler.run, rows(1, 400), PREDICTION)
        waiting(scheduler, 3)
        model.release.set()
        results = [f.result(10)[0] for f in [first, *explanations, prediction]]
    sizes = [len(b) for b in model.batches]
    assert sizes == [2, 8, 3]  # then the three waiting requests fill 8 + 3 rows
    assert model.batches[1][0, 0] == 400  # the prediction first, then the explanations in arrival order
    np.testing.assert_array_equal(model.batches[1][1:6], rows(5, 200))
    assert scheduler.shared == 1 and scheduler.batches == 3 and scheduler.rows == 13  # 3 rows left of one request
    for got, (n, value) in zip(results, [(2, 100), (5, 200), (5, 300), (1, 400)]):
        np.testing.assert_array_equal(got[:, 0], rows(n, value).sum(axis=1))


def test_a_failed_batch_fails_only_its_callers_and_the_scheduler_goes_on():
    model = Recorder(hold=True)
    scheduler = Scheduler(model, lambda: 4)
    with ThreadPoolExecutor(3) as pool:
        busy = pool.submit(scheduler.run, rows(4, 0))
        model.started.wait(10)
        poisoned = pool.submit(scheduler.run, np.full((2, 2), -1, np.float32))
        neighbour = pool.submit(scheduler.run, rows(2, 5))  # shares the poisoned batch
        waiting(scheduler, 2)
        model.release.set()
        busy.result(10)
        for failed in (poisoned, neighbour):
            with pytest.raises(ValueError, match="poisoned row"):
                failed.result(10)
    scores, _ = scheduler.run(rows(3, 1))
    np.testing.assert_array_equal(scores[:, 0], rows(3, 1).sum(axis=1))
    assert not scheduler._waiting and not scheduler._busy


def slow_demo_model(**options) -> ox.Model:
    """The demo model behind a callable that sleeps 5 ms a call, so concurrent requests queue up."""
    session = ox.Model(demo.demo_model_path(), preset="unit").session
    name = session.get_inputs()[0].name

    def run(batch):
        time.sleep(0.005)
        return session.run(None, {name: batch})[0]

    return ox.Model(run, preset="unit", output="logits", input_size=(64, 64), progress=False, **options)


def jobs():
    images = [demo.make_demo_image(i % 3, seed=80 + i)[0] for i in range(6)]
    options = [(ox.RISE, {"n_masks": 90 + 7 * i, "seed": i}) if i % 3 == 0 else
               (ox.Occlusion, {"window": 8, "stride": 3 + i % 2}) if i % 3 == 1 else
               (ox.PMI, {"patch": 8, "stride": 4, "budget": 120, "seed": i}) for i in range(6)]
    return [(explainer, image, kw) for (explainer, kw), image in zip(options, images)]


@pytest.mark.parametrize("shared_batching", [True, False])
def test_concurrent_explanations_equal_lone_ones(shared_batching):
    alone = slow_demo_model(batch_size=16)
    expected = [explainer(alone).attribute(image, **kw) for explainer, image, kw in jobs()]
    model = slow_demo_model(batch_size=16, shared_batching=shared_batching)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda job: job[0](model).attribute(job[1], **job[2]), jobs()))
    for got, want in zip(results, expected):
        assert got.targets == want.targets and got.evaluations == want.evaluations
        for t in want.targets:
            np.testing.assert_array_equal(got[t], want[t])
    assert model.evaluations == alone.evaluations
    if shared_batching:
        assert model.scheduler.shared > 0  # batches really were filled from several explanations
        assert model.scheduler.rows == model.evaluations
    else:
        assert model.scheduler is None


def test_predictions_on_a_model_busy_with_explanations():
    model = slow_demo_model(batch_size=8)
    image, _ = demo.make_demo_image(1, seed=3)
    alone = model.predict(image)
    with ThreadPoolExecutor(3) as pool:
        explanation = pool.submit(ox.RISE(model).attribute, image, n_masks=400, seed=0)
        predictions = [pool.submit(model.predict, image) for _ in range(20)]
        for p in predictions:
            np.testing.assert_array_equal(p.result(30), alone)
        assert explanation.result(60).complete


@pytest.mark.real_model
@needs_efficientnet
def test_efficientnet_rows_do_not_depend_on_their_batch_neighbours():
    """Shared batching keeps maps bit-identical for ordinary classifiers: EfficientNet-Lite0's
    scores of a row are the same whatever rows share its batch."""
    _, image, _, _ = efficientnet_corner_chelsea()
    model = ox.Model(EFFICIENTNET, preset="efficientnet-lite", batch_size=16, progress=False)
    alone = ox.RISE(model).attribute(image, n_masks=48, seed=2)
    other = np.ascontiguousarray(image[::-1])
    with ThreadPoolExecutor(2) as pool:
        shared = pool.submit(ox.RISE(model).attribute, image, n_masks=48, seed=2)
        pool.submit(ox.Occlusion(model).attribute, other, window=56, stride=28).result(120)
        shared = shared.result(120)
    np.testing.assert_array_equal(alone[alone.targets[0]], shared[shared.targets[0]])
