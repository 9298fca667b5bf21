"""Shared batching: one model, many callers, full batches.

Threads sharing a `Model` (concurrent explanations, predictions) hand their batches to the model's
`Scheduler`, which runs the model on one batch at a time, filled from every waiting request up to
the model's batch size: predictions first, then explanations in arrival order, a request larger
than the room left split across batches. Whichever waiting thread finds the model idle runs the
next batch for everyone (no scheduler thread), so a lone caller runs its own batches directly,
with no hand-off. Each caller gets the scores of its own rows, in order; for a model whose rows do
not depend on what else is in the batch (true of ordinary classifiers) they are exactly the scores
it would get alone.
"""
from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable

import numpy as np

PREDICTION, EXPLANATION = 0, 1  # request priorities: lower runs first


class _Request:
    """Rows (n, *input_shape) waiting for their scores; `taken` rows are in a batch already."""

    __slots__ = ("rows", "order", "taken", "pieces", "received", "error", "seconds")

    def __init__(self, rows: np.ndarray, order: tuple[int, int]) -> None:
        self.rows, self.order = rows, order
        self.taken = self.received = 0
        self.pieces: list[np.ndarray] = []
        self.error: BaseException | None = None
        self.seconds = 0.0  # this request's share of the model time of the batches it was in

    @property
    def done(self) -> bool:
        return self.error is not None or self.received == len(self.rows)

    def __lt__(self, other: _Request) -> bool:
        return self.order < other.order


class Scheduler:
    """Runs `run(batch) -> scores (N, classes)` for many threads at once in shared batches of at
    most `batch_size()` rows. Counters: `batches` run, `shared` (batches holding rows of more than
    one request), `rows`."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], batch_size: Callable[[], int]) -> None:
        self._run, self._batch_size = run, batch_size
        self._waiting: list[_Request] = []  # sorted by (priority, arrival)
        self._arrivals = itertools.count()
        self._condition = threading.Condition()
        self._busy = False  # a thread is running the model
        self._merge: np.ndarray | None = None  # reused input buffer for batches of several requests
        self.batches = self.shared = self.rows = 0

    def run(self, rows: np.ndarray, priority: int = EXPLANATION) -> tuple[np.ndarray, float]:
        """Scores (len(rows), classes) of `rows` (N, *input_shape) float32 and this call's share of
        the model's seconds; blocks until they are computed, running batches for every waiting caller
        whenever the model is free. An error of the model reaches every caller whose rows were in the
        failed batch."""
        request = _Request(rows, (priority, next(self._arrivals)))
        with self._condition:
            bisect.insort(self._waiting, request)
            try:
                while not request.done:
                    if self._busy:
                        self._condition.wait()
                        continue
                    self._busy = True
                    parts = self._take()
                    self._condition.release()
                    try:
                        self._serve(parts)
                    finally:
                        self._condition.acquire()
                        self._busy = False
                        self._condition.notify_all()
            except BaseException:  # interrupted (KeyboardInterrupt): this request's rows must not run
                self._drop(request)
                raise
        if request.error is not None:
            raise request.error
        scores = request.pieces[0] if len(request.pieces) == 1 else np.concatenate(request.pieces)
        return scores, request.seconds

    def _take(self) -> list[tuple[_Request, int, int]]:
        """The next batch, as (request, first row, end row) parts, in waiting order (lock held)."""
        room, parts = self._batch_size(), []
        while room and self._waiting:
            request = self._waiting[0]
            count = min(room, len(request.rows) - request.taken)
            parts.append((request, request.taken, request.taken + count))
            request.taken += count
            room -= count
            if request.taken == len(request.rows):
                self._waiting.pop(0)
        return parts

    def _serve(self, parts: list[tuple[_Request, int, int]]) -> None:
        """Runs one batch and hands each part its scores (or the error)."""
        if len(parts) == 1:
            request, first, end = parts[0]
            batch = request.rows[first:end]
        else:
            n = sum(end - first for _, first, end in parts)
            shape = (self._batch_size(),) + parts[0][0].rows.shape[1:]
            if self._merge is None or self._merge.shape[0] < n or self._merge.shape[1:] != shape[1:]:
                self._merge = np.empty((max(n, shape[0]),) + shape[1:], np.float32)
            batch = self._merge[:n]
            np.concatenate([request.rows[first:end] for request, first, end in parts], out=batch)
        start = time.perf_counter()
        try:
            scores = self._run(batch)
        except BaseException as error:
            with self._condition:
                for request, _, _ in parts:
                    request.error = error
                    self._drop(request)
            if not isinstance(error, Exception):
                raise
            return
        seconds = time.perf_counter() - start
        self.batches += 1
        self.shared += len(parts) > 1
        self.rows += len(batch)
        offset = 0
        for request, first, end in parts:
            request.pieces.append(scores[offset:offset + end - first])
            request.received += end - first
            request.seconds += seconds * (end - first) / len(batch)
            offset += end - first

    def _drop(self, request: _Request) -> None:
        """Removes a request from the waiting list, its remaining rows never to run (lock held)."""
        if request in self._waiting:
            self._waiting.remove(request)
