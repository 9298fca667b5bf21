"""What every explainer shares: targets, baselines, seeds and the result record."""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

from ._core import PreparedInput
from .batches import Batches, Stop
from .errors import OnnxplainError, warn
from .image import unit_range_message
from .masking import Baseline
from .model import Model
from .result import Explanation

Target = int | str | Sequence[int] | None
FIDELITY_SHARE = 0.05  # default: an explanation's fidelity figure spends at most 5 % of its evaluations


def positive_int(name: str, value) -> int:
    """`value` as an int >= 1, or an error naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise OnnxplainError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_fraction(name: str, value) -> float:
    """`value` as a float in (0, 1], or an error naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 < value <= 1:
        raise OnnxplainError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


def check_frame(frame) -> int:
    """frame: context around a patch or segment (pixels or steps), an integer >= 0."""
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)) or frame < 0:
        raise OnnxplainError(f"frame must be an integer >= 0, got {frame!r}")
    return int(frame)


SEED_LIMIT = 2**64  # seeds key the core's generator: integers in 0..2^64-1


def check_seed(seed) -> int:
    """`seed` as an int in 0..2^64-1, or an error naming the parameter."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < SEED_LIMIT:
        raise OnnxplainError(f"seed must be an integer in 0..2^64-1, got {seed!r}")
    return int(seed)


def resolve_targets(target: Target, probabilities: np.ndarray) -> list[int]:
    """None or "top": the top-1 class; "topK" (e.g. "top3"): the K best; an int or a list of ints."""
    classes = probabilities.shape[0]
    order = np.argsort(-probabilities, kind="stable")
    if target is None or target == "top":
        return [int(order[0])]
    if isinstance(target, str):
        if target.startswith("top") and target[3:].isdigit() and int(target[3:]) >= 1:
            return [int(c) for c in order[: int(target[3:])]]
        raise OnnxplainError(f"target must be a class index, a list of them, 'top' or 'topK', got {target!r}")
    wanted = [target] if np.isscalar(target) else list(target)
    if not wanted:
        raise OnnxplainError("target list is empty")
    for t in wanted:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < classes:
            raise OnnxplainError(f"target {t!r} is not a class index in 0..{classes - 1}")
    return list(dict.fromkeys(int(t) for t in wanted))


def describe_baseline(baseline: Baseline):
    """A baseline as recorded in result parameters: its name or value, or "image" for an array."""
    return "image" if isinstance(baseline, np.ndarray) else baseline


class Run:
    """One explanation call, around its batches: checks the input, evaluates it clean, resolves the
    targets, streams every perturbation through one `Batches`, counts evaluations and time, and
    builds the result. A context manager (closing ends the batch pipeline).

    image: the checked input; probabilities: its class probabilities (classes,); clean: its scores
    of the kind asked for; targets: the resolved target classes; warnings: what makes the answer
    weak (`warn`), recorded in the result.
    """

    def __init__(self, explainer: Explainer, image: np.ndarray, target: Target, scores: str = "probabilities",
                 deadline: float | None = None, cancel: threading.Event | None = None) -> None:
        if scores not in ("probabilities", "logits"):
            raise OnnxplainError(f"scores must be 'probabilities' or 'logits', got {scores!r}")
        stop = None if deadline is None and cancel is None else Stop(deadline, cancel)
        self.model, self.method = explainer.model, explainer.method
        self.warnings: list[str] = []
        if (message := unit_range_message(image)) is not None:
            self.warn(message)
        self.image = self.model.masker.check(image)
        self._start = time.perf_counter()
        raw = self.model.predict(self.image, "raw")
        self.probabilities = self.model.convert(raw[None], "probabilities")[0]
        self.clean = self.model.convert(raw[None], scores)[0]
        self.targets = resolve_targets(target, self.probabilities)
        self.batches = Batches(self.model, self.method, stop=stop)
        self.fidelity_share, self.stopping = explainer.fidelity, stop is not None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.batches.close()

    @property
    def evaluations(self) -> int:
        """This run's own model evaluations (the clean input included), whatever else shares the model."""
        return 1 + self.batches.evaluations

    def warn(self, message: str) -> None:
        """Records a warning about this result (valid but weak) and issues it as an OnnxplainWarning."""
        self.warnings.append(warn(message))

    def prepare(self, replacement: Baseline, blur_sigma: float | None = None) -> PreparedInput:
        """The input and its replacement (a baseline: "mean", "blur", a value or an image) prepared once."""
        return self.model.masker.prepare(self.image, replacement, blur_sigma)

    def finish(self, maps: dict[int, np.ndarray], params: dict, seed: int, result: type[Explanation] = Explanation,
               **extra) -> Explanation:
        """The result: maps (target -> map at model resolution), params and seed as recorded, with the
        evaluations and wall time since the run began; extra fields of a result subclass in `extra`."""
        self.batches.close()
        top = np.argsort(-self.probabilities, kind="stable")[:5]
        explanation = result(
            method=self.method, maps=maps, params=params, seed=seed,
            evaluations=self.evaluations, seconds=time.perf_counter() - self._start,
            top_classes=[(int(c), float(self.probabilities[c])) for c in top], image=self.image,
            model={**self.model.describe(), "batch": self.model.batch_record()}, warnings=list(self.warnings),
            **extra)
        if self.fidelity_share:  # the fidelity figure, its evaluations counted apart
            from .fidelity import fidelity_figure
            explanation.fidelity = fidelity_figure(self.model, explanation, self.fidelity_share,
                                                   self.stopping)
        return explanation


class Explainer:
    """Base class: subclasses set `method` and implement `attribute` over a `Run`.

    fidelity: the share of each explanation's model evaluations its fidelity figure may spend
    (`fidelity.fidelity_figure`; default FIDELITY_SHARE), None or 0 for none."""

    method = ""

    def __init__(self, model: Model, fidelity: float | None = FIDELITY_SHARE) -> None:
        if not isinstance(model, Model):
            raise OnnxplainError(f"explainers take an onnxplain.Model, got {type(model).__name__}")
        if model.modality == "tabular":
            raise OnnxplainError(f"{type(self).__name__} explains images; for a tabular model use "
                                 f"onnxplain.tabular.explain(model, row, {self.method!r}, background=...)")
        if fidelity is not None and not (isinstance(fidelity, (int, float)) and 0 <= fidelity <= 1):
            raise OnnxplainError(f"fidelity must be a share of the evaluations in 0..1 or None, got {fidelity!r}")
        self.model, self.fidelity = model, fidelity

    def run(self, image: np.ndarray, target: Target, scores: str = "probabilities", deadline: float | None = None,
            cancel: threading.Event | None = None) -> Run:
        """A `Run` of this explainer on one input (stopping early at `deadline` seconds or `cancel`)."""
        return Run(self, image, target, scores, deadline, cancel)
