"""Running one task per image over any `concurrent.futures.Executor`: local processes
(`local_pool`), a Dask cluster (`dask_executor`), threads, or none (in this process).

Each worker process builds its model once, from a picklable `ModelSpec`, and keeps it for every
later task. The driver (the caller of `run_tasks`) receives every result and alone writes files.
Failures: an image whose task raises, or whose worker dies, is tried again, up to `attempts` times
in all, and then reported as failed. A dead worker breaks a standard-library process pool, which
is replaced by a fresh one; the images that were in flight are tried again one at a time, and a
death counts against an image only when it ran alone. Dask reschedules a dead worker's tasks itself
(its `KilledWorker` counts as one failure).
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OnnxplainError
from .model import Model

Task = Callable[[Model, Any], Any]  # (the worker's model, a payload) -> a result, both picklable


def file_sha256(data: bytes | str | Path) -> str:
    """The SHA-256 (hex) of bytes or of a file's content, read in 1 MiB blocks."""
    if isinstance(data, (bytes, bytearray)):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with open(data, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to build the model: `Model(**recipe, threads=threads)`, with the content
    hash of its file (a worker that finds another file at the path refuses it). A model made from
    bytes carries them in every task: give large models as a path the workers can read."""

    recipe: dict
    sha256: str
    threads: int

    @classmethod
    def of(cls, model: Model, threads: int) -> ModelSpec:
        """The spec of a model made from a path or bytes (`Model.recipe`)."""
        if model.recipe is None:
            raise OnnxplainError("workers build their own model from a file: make the Model from an .onnx path or "
                                 "bytes, not a session or a callable (executor=None runs it in this process)")
        source = model.recipe["source"]
        recipe = {**model.recipe, "source": str(source) if isinstance(source, (str, Path)) else bytes(source)}
        return cls(recipe, file_sha256(recipe["source"]), threads)

    @property
    def key(self) -> str:
        """Identifies the built model within a worker process."""
        options = {k: v for k, v in self.recipe.items() if k != "source"}
        return hashlib.sha256(pickle.dumps((self.sha256, self.threads, options))).hexdigest()

    def build(self) -> Model:
        source = self.recipe["source"]
        if isinstance(source, str) and (not Path(source).is_file() or file_sha256(source) != self.sha256):
            raise OnnxplainError(f"this worker does not see the driver's model at {source} (missing or different "
                                 "content); give workers the same file, or a Model made from bytes")
        return Model(**self.recipe, threads=self.threads, progress=False)


_models: dict[str, Model] = {}  # this process's models, by ModelSpec.key
_models_lock = threading.Lock()


def worker_model(spec: ModelSpec) -> Model:
    """This process's model for `spec`, built on first use."""
    with _models_lock:
        if spec.key not in _models:
            _models.clear()  # one model per worker process
            _models[spec.key] = spec.build()
        return _models[spec.key]


def run_task(spec: ModelSpec, task: Task, payload: Any) -> Any:
    """What a worker runs: `task` on this process's model."""
    return task(worker_model(spec), payload)


def local_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` fresh processes (spawned: no state inherited from the driver's threads)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise OnnxplainError(f"workers must be a positive integer (--workers), got {workers!r}")
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def dask_executor(address: str, timeout: float = 10):
    """A `concurrent.futures.Executor` over the Dask scheduler at `address` (tcp://host:8786), and
    its client (close it when done); `timeout`: seconds to wait for the scheduler."""
    try:
        from distributed import Client
    except ImportError:
        raise OnnxplainError("--scheduler needs Dask: pip install 'onnxplain[dask]'") from None
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise OnnxplainError(f"cannot reach the Dask scheduler at {address!r} (--scheduler): {exc}") from None
    return client.get_executor(), client


def slots(executor: Executor | None) -> int:
    """How many tasks the executor runs at once: a pool's workers, a Dask cluster's threads, else
    the cores here (None: 1, in this process)."""
    if executor is None:
        return 1
    client = getattr(executor, "_client", None)  # distributed.cfexecutor.ClientExecutor
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    return getattr(executor, "_max_workers", None) or os.cpu_count() or 1


def threads_per_worker(executor: Executor | None) -> int:
    """The default threads of each worker's model: this machine's cores shared by the workers on
    it. A Dask cluster's threads are spread over its hosts, taken to have this machine's cores
    (set `Model(threads=...)` when they differ)."""
    cores = os.cpu_count() or 1
    client = getattr(executor, "_client", None)
    if client is not None:
        hosts = {address.split("://")[-1].rsplit(":", 1)[0] for address in client.nthreads()}
        return max(1, cores * len(hosts) // slots(executor))
    return max(1, cores // slots(executor))


def run_tasks(executor: Executor | None, model: Model, spec: ModelSpec | None, task: Task,
              payloads: Iterable[tuple[str, Callable[[], Any]]], done: Callable[[str, Any], None],
              failed: Callable[[str, str, int], None], attempts: int = 2) -> None:
    """Runs `task` once per (key, make_payload) and hands each result to `done(key, result)`, in
    this thread, as tasks finish (in any order). A task that raises, or whose worker dies, is tried
    again, up to `attempts` times; then `failed(key, message, attempts)` (module docstring).

    executor None: in this process, on `model`. Otherwise on the workers' models (`spec`), with
    at most `slots(executor)` tasks in flight, payloads made just before they are submitted.
    """
    if executor is None:
        for key, make in payloads:
            payload = make()
            for attempt in range(1, attempts + 1):
                try:
                    result = task(model, payload)
                except Exception as exc:  # any failure of one image: retried, then reported
                    if attempt == attempts:
                        failed(key, describe_failure(exc), attempts)
                    continue
                done(key, result)
                break
        return
    queue = deque(payloads)
    tries: dict[str, int] = {}
    suspects: set[str] = set()  # in flight when a pool broke: each tried again alone, so a death is its own
    running: dict[Future, tuple[str, Callable[[], Any], Executor]] = {}
    replacement: Executor | None = None  # the pool that replaced a broken one: ours to shut down
    capacity = slots(executor)

    def may_submit() -> bool:
        if not queue or any(key in suspects for key, _, _ in running.values()):
            return False
        return not running if queue[0][0] in suspects else len(running) < capacity

    try:
        while queue or running:
            while may_submit():
                key, make = queue.popleft()
                running[executor.submit(run_task, spec, task, make())] = (key, make, executor)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key, make, pool = running.pop(future)
                try:
                    result = future.result()
                except Exception as exc:
                    died = isinstance(exc, BrokenProcessPool)
                    if died and pool is executor:
                        executor.shutdown(wait=False, cancel_futures=True)
                        executor = replacement = ProcessPoolExecutor(max_workers=capacity,
                                                                     mp_context=getattr(pool, "_mp_context", None))
                    if died and key not in suspects:  # maybe another image's death: not counted
                        suspects.add(key)
                        queue.appendleft((key, make))
                        continue
                    tries[key] = tries.get(key, 0) + 1
                    if tries[key] < attempts:
                        queue.appendleft((key, make))
                    else:
                        failed(key, describe_failure(exc), attempts)
                    continue
                suspects.discard(key)
                done(key, result)
    finally:
        for future in running:
            future.cancel()
        if replacement is not None:
            replacement.shutdown(wait=True, cancel_futures=True)


def describe_failure(exc: BaseException) -> str:
    """One line for an error record."""
    if isinstance(exc, BrokenProcessPool):
        return "its worker process died (killed, or out of memory)"
    if type(exc).__name__ == "KilledWorker":  # Dask: every worker that ran it died
        return f"its Dask workers died ({exc})".splitlines()[0]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, OnnxplainError) else f"{type(exc).__name__}: {text}"


def worker_spec(executor: Executor | None, model: Model, methods: dict[str, Any]) -> ModelSpec | None:
    """The workers' `ModelSpec` (threads: `model.threads`, else `threads_per_worker`), None without
    an executor; first refuses, in one line, a method (name -> what its tasks carry: factory,
    options) that cannot be sent to worker processes."""
    if executor is None:
        return None
    for name, carried in methods.items():
        try:
            pickle.dumps(carried)
        except Exception as exc:
            raise OnnxplainError(f"method {name!r} cannot be sent to worker processes ({type(exc).__name__}: "
                                 f"{str(exc)[:200]}); define it and its options at module level, or run without "
                                 "workers") from None
    return ModelSpec.of(model, model.threads or threads_per_worker(executor))
