"""What every explainer shares: targets, baselines, seeds and the result record."""
from __future__ import annotations

import time
from collections.abc import Sequence

import cv2
import numpy as np

from .errors import OnnxplainError
from .image import as_image
from .model import Model
from .result import Explanation

Target = int | str | Sequence[int] | None
Baseline = str | float | np.ndarray


def positive_int(name: str, value) -> int:
    """`value` as an int >= 1, or an error naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise OnnxplainError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


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


def make_baseline(image: np.ndarray, baseline: Baseline, model: Model, blur_sigma: float | None = None) -> np.ndarray:
    """The H x W x 3 image that replaces removed pixels.

    "mean": the value the preprocessing maps to 0; "blur": a Gaussian-blurred copy (sigma
    default H / 16); a number: that constant pixel value; an array: any image of the same size.
    """
    if isinstance(baseline, str):
        if baseline == "mean":
            return np.ascontiguousarray(np.broadcast_to(model.preprocess.neutral, image.shape), np.float32)
        if baseline == "blur":
            sigma = blur_sigma or image.shape[0] / 16
            return np.ascontiguousarray(cv2.GaussianBlur(image, (0, 0), sigmaX=sigma), np.float32)
        raise OnnxplainError(f"baseline must be 'mean', 'blur', a pixel value or an image, got {baseline!r}")
    if isinstance(baseline, (int, float, np.floating, np.integer)) and not isinstance(baseline, bool):
        if not 0 <= baseline <= 255:
            raise OnnxplainError(f"a constant baseline is a pixel value in 0..255, got {baseline}")
        return np.full(image.shape, baseline, np.float32)
    if isinstance(baseline, np.ndarray):
        baseline = as_image(baseline)
        if baseline.shape != image.shape:
            raise OnnxplainError(f"baseline image has shape {baseline.shape}, the image {image.shape}")
        return baseline
    raise OnnxplainError(f"baseline must be 'mean', 'blur', a pixel value or an image, got {type(baseline).__name__}")


def describe_baseline(baseline: Baseline):
    """A baseline as recorded in result parameters: its name or value, or "image" for an array."""
    return "image" if isinstance(baseline, np.ndarray) else baseline


class Explainer:
    """Base class: subclasses implement `_maps` and set `method`."""

    method = ""

    def __init__(self, model: Model) -> None:
        if not isinstance(model, Model):
            raise OnnxplainError(f"explainers take an onnxplain.Model, got {type(model).__name__}")
        self.model = model

    def _begin(self, image: np.ndarray, target: Target, scores: str = "probabilities"):
        """Checks the image, evaluates it clean, resolves targets. Returns the image, its class
        probabilities, its scores of kind `scores`, the targets, and the start counters."""
        if scores not in ("probabilities", "logits"):
            raise OnnxplainError(f"scores must be 'probabilities' or 'logits', got {scores!r}")
        image = self.model.check_image(image)
        start_evals, start = self.model.evaluations, time.perf_counter()
        raw = self.model.predict(image, "raw")
        probabilities = self.model.convert(raw[None], "probabilities")[0]
        clean = self.model.convert(raw[None], scores)[0]
        return image, probabilities, clean, resolve_targets(target, probabilities), start_evals, start

    def _finish(self, image, probabilities, maps, params, seed, start_evals, start) -> Explanation:
        top = np.argsort(-probabilities, kind="stable")[:5]
        return Explanation(
            method=self.method, maps=maps, params=params, seed=seed,
            evaluations=self.model.evaluations - start_evals, seconds=time.perf_counter() - start,
            top_classes=[(int(c), float(probabilities[c])) for c in top], image=image, model=self.model.describe())
