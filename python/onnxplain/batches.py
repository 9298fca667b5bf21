"""Batches: the stage between the masker and the model.

`Batches` streams model inputs through the model in batches of `model.batch_size`. On a CPU the
core builds each batch while the model is idle, with every core (building never slows
inference); with the model on an accelerator the next batch is filled in one builder thread
(core calls release the GIL) while the model runs the current one, in two alternating buffers.
Memory is bounded by two batches. One `Batches` serves every stream of an explanation (the
causal search makes hundreds of small ones): its buffers, builder thread and progress bar are
made once. With batch_size="auto" each batch asks the model its size: the first batches time
the candidate sizes, timed again when the chosen size slows down.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from .errors import OnnxplainError

if TYPE_CHECKING:
    from . import _core
    from .model import Model

MaskMaker = Callable[[int, int], np.ndarray]  # (first, count) -> masks (count, *mask_shape) float32


class Stopped(Exception):
    """Raised between batches when a stream's deadline passed or it was cancelled."""


class Stop:
    """When to stop an explanation early: `deadline` seconds from now, or when `cancel` (a
    threading.Event) is set. Either may be None."""

    def __init__(self, deadline: float | None = None, cancel: threading.Event | None = None) -> None:
        if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                     or not deadline > 0):
            raise OnnxplainError(f"deadline must be a positive number of seconds, got {deadline!r}")
        if cancel is not None and not callable(getattr(cancel, "is_set", None)):
            raise OnnxplainError(f"cancel must be a threading.Event, got {type(cancel).__name__}")
        self.until = None if deadline is None else time.perf_counter() + float(deadline)
        self.cancel = cancel

    def expired(self) -> bool:
        return (self.until is not None and time.perf_counter() >= self.until) or \
            (self.cancel is not None and self.cancel.is_set())
PROGRESS_MIN_BATCHES = 4  # with progress=None, a bar appears once a run has this many batches of work


class Batches:
    """A reusable batch pipeline over one model; a context manager (closing joins its thread).

    description: the progress bar's label; progress: True/False, or None to follow the model's
    `progress` setting (None there: show once the streamed work reaches PROGRESS_MIN_BATCHES batches).
    stop: a `Stop`; when it expires, the next batch raises `Stopped` instead of running.
    """

    def __init__(self, model: Model, description: str = "evaluating", progress: bool | None = None,
                 stop: Stop | None = None) -> None:
        self.model = model
        self.stop = stop
        self.description = description
        self.progress = model.progress if progress is None else progress
        self._buffers: np.ndarray | None = None
        self._builder: ThreadPoolExecutor | None = None
        self._bar: tqdm | None = None
        self._streamed = 0  # perturbations streamed so far
        self.stopped = False  # whether the stop condition cut this pipeline's work short
        self.evaluations = 0  # inputs this pipeline ran through the model (its own: the model may be shared)

    def __enter__(self) -> Batches:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Joins the builder thread, closes the progress bar and frees the batch buffers (a later
        stream makes new ones)."""
        self._buffers = None
        if self._builder is not None:
            self._builder.shutdown(wait=True)
            self._builder = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ---- streams -----------------------------------------------------------------------------
    def stream(self, total: int, fill: Callable[[int, int, np.ndarray], Any], consume: Callable[[Any, np.ndarray], None],
               kind: str = "probabilities") -> None:
        """Streams `total` model inputs through the model.

        fill(first, count, out) writes inputs first..first+count-1, already preprocessed, into
        out[:count] (out: batch_size x model input shape, float32) and returns a context;
        consume(context, scores) receives each batch in order with its scores (count, classes) of
        the requested kind ("probabilities", "logits" or "raw"). On a CPU each batch is built while
        the model is idle (with every core), its size asked of the model each time (batch_size="auto"
        times the sizes and may time them again); on an accelerator, once the size is chosen, the
        rest is built overlapped with inference.
        """
        if total <= 0:
            return
        self._advance_total(total)
        first = 0
        while first < total:
            size = self.model.tuning_batch()
            if size is None and self.model.overlap:
                self._overlapped(first, total, fill, consume, kind)
                return
            size = size or self.model.batch_size
            count = min(size, total - first)
            buffer = self._buffers_for_use(size)[0]
            start = time.perf_counter()  # the whole cycle: building, inference, accumulation
            self._consume(consume, fill(first, count, buffer), self._run(buffer[:count]), kind)
            if count == size:
                self.model.record_timing(size, time.perf_counter() - start)
            first += count

    def _overlapped(self, first: int, total: int, fill, consume, kind: str) -> None:
        """Builds the next batch in the builder thread while the model runs the current one (a model
        on an accelerator), in two alternating buffers."""
        size = self.model.batch_size
        buffers = self._buffers_for_use(size)
        starts = list(range(first, total, size))

        def prepare(index: int) -> tuple[int, Any]:
            count = min(size, total - starts[index])
            return count, fill(starts[index], count, buffers[index % 2])

        if len(starts) == 1:  # one batch: nothing to overlap, run inline
            count, context = prepare(0)
            self._consume(consume, context, self._run(buffers[0, :count]), kind)
            return
        if self._builder is None:
            self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnxplain-batches")
        pending = self._builder.submit(prepare, 0)
        try:
            for index in range(len(starts)):
                count, context = pending.result()
                if index + 1 < len(starts):
                    pending = self._builder.submit(prepare, index + 1)
                self._consume(consume, context, self._run(buffers[index % 2, :count]), kind)
        except BaseException:
            wait([pending])  # the builder must be done with its buffer before anything reuses it
            raise

    def masks(self, prepared: _core.PreparedInput, total: int, make_masks: MaskMaker,
              consume: Callable[[np.ndarray, np.ndarray], None], kind: str = "probabilities") -> None:
        """Streams `total` perturbations masks * input + (1 - masks) * replacement of a prepared input.

        make_masks(first, count) gives masks (count, *mask_shape) float32 in [0, 1]; consume(masks,
        scores) receives each batch in order with its scores (count, classes) of the requested kind.
        """
        def fill(first: int, count: int, out: np.ndarray) -> np.ndarray:
            masks = make_masks(first, count)
            prepared.blend(masks, out)
            return masks

        self.stream(total, fill, consume, kind)

    def scores(self, prepared: _core.PreparedInput, total: int, make_masks: MaskMaker,
               kind: str = "probabilities") -> np.ndarray:
        """Scores (total, classes) float32, in order, of the perturbations of `masks` (for callers
        that need every score rather than a running sum)."""
        parts: list[np.ndarray] = []
        self.masks(prepared, total, make_masks, lambda _masks, scores: parts.append(scores), kind)
        return np.concatenate(parts) if parts else np.zeros((0, self.model.num_classes or 0), np.float32)

    # ---- internals ----------------------------------------------------------------------------
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """The model's class scores for a batch, counted as this pipeline's; `Stopped` once the
        stop condition holds."""
        if self.stop is not None and self.stop.expired():
            self.stopped = True
            raise Stopped
        scores = self.model.run(batch)
        self.evaluations += len(batch)
        return scores

    def _buffers_for_use(self, rows: int) -> np.ndarray:
        """The batch buffers, each of at least `rows` rows (and of the model's batch size): two when
        building overlaps inference, else one."""
        shape = (2 if self.model.overlap else 1, max(rows, self.model.batch_size)) + self.model.input_shape
        if self._buffers is None or self._buffers.shape != shape:
            self._buffers = np.empty(shape, np.float32)
        return self._buffers

    def _consume(self, consume, context, scores: np.ndarray, kind: str) -> None:
        consume(context, self.model.convert(scores, kind))
        if self._bar is not None:
            self._bar.update(len(scores))

    def _advance_total(self, total: int) -> None:
        self._streamed += total
        show = self.progress if self.progress is not None else \
            self._streamed >= PROGRESS_MIN_BATCHES * self.model.batch_size
        if not show:
            return
        if self._bar is None:
            self._bar = tqdm(total=self._streamed, initial=self._streamed - total, desc=self.description, unit="img",
                             leave=False)
        else:
            self._bar.total = self._streamed
            self._bar.refresh()
