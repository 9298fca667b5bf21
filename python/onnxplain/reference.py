"""The two reference explainers, occlusion and RISE: the baselines for the research methods."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _core
from .errors import OnnxplainError
from .explainer import Baseline, Explainer, Target, describe_baseline, make_baseline, positive_int
from .model import Model
from .result import Explanation


def window_geometry(model: Model, window: int | None, stride: int | None) -> tuple[int, int, int]:
    """Validated (window, stride, number of windows) for the model's resolution; defaults
    window = H // 8, stride = window // 2."""
    h, w = model.input_size
    window = positive_int("window", window if window is not None else max(1, min(h, w) // 8))
    stride = positive_int("stride", stride if stride is not None else max(1, window // 2))
    if window > min(h, w):
        raise OnnxplainError(f"window {window} is larger than the image ({h} x {w})")
    total = len(_core.window_positions(h, window, stride)) * len(_core.window_positions(w, window, stride))
    return window, stride, total


def sliding_window_map(model: Model, image: np.ndarray, baseline: np.ndarray, window: int, stride: int,
                       score: Callable[[np.ndarray], np.ndarray], kind: str = "probabilities",
                       description: str = "occlusion") -> np.ndarray:
    """Pastes `baseline` into each window of `image`; score(scores (B, classes)) -> (B, T) values
    of each pasted image. Returns (T, H, W) float64: per pixel, the mean over the windows covering it."""
    h, w = model.input_size
    total = window_geometry(model, window, stride)[2]
    sums, counts = None, np.zeros((h, w))

    def consume(masks: np.ndarray, batch_scores: np.ndarray) -> None:
        nonlocal sums
        values = np.ascontiguousarray(score(batch_scores), np.float32)
        if sums is None:
            sums = np.zeros((values.shape[1], h, w))
        _core.accumulate(values, masks, sums, counts, True, model.threads)

    model.evaluate_masks(
        image, baseline, total,
        lambda first, count: _core.occlusion_masks(h, w, window, stride, first, count, model.threads),
        consume, kind, description)
    return sums / counts


def check_rise(model: Model, n_masks: int, grid: int, p_keep: float) -> tuple[int, int, float]:
    h, w = model.input_size
    n_masks, grid = positive_int("n_masks", n_masks), positive_int("grid", grid)
    if grid > min(h, w):
        raise OnnxplainError(f"grid {grid} is finer than the image ({h} x {w})")
    if not 0 < p_keep <= 1:
        raise OnnxplainError(f"p_keep must be in (0, 1], got {p_keep}")
    return n_masks, grid, float(p_keep)


def rise_map(model: Model, image: np.ndarray, baseline: np.ndarray, columns: list[int], n_masks: int, grid: int,
             p_keep: float, seed: int, kind: str = "probabilities", description: str = "rise") -> np.ndarray:
    """RISE over masks m blending m * image + (1 - m) * baseline: (len(columns), H, W) float64,
    sum_i score_i[c] * m_i / (n_masks * p_keep) for each class c in `columns`."""
    h, w = model.input_size
    n_masks, grid, p_keep = check_rise(model, n_masks, grid, p_keep)
    sums, counts = np.zeros((len(columns), h, w)), np.zeros((h, w))

    def consume(masks: np.ndarray, batch_scores: np.ndarray) -> None:
        _core.accumulate(np.ascontiguousarray(batch_scores[:, columns]), masks, sums, counts, False, model.threads)

    model.evaluate_masks(
        image, baseline, n_masks,
        lambda first, count: _core.rise_masks(int(seed), first, count, h, w, grid, p_keep, model.threads),
        consume, kind, description)
    return sums / (n_masks * p_keep)


class Occlusion(Explainer):
    """Sliding-window occlusion (Zeiler & Fergus 2014).

    Each window is replaced by the baseline; a pixel's attribution for class t is the mean,
    over the windows covering it, of p(t | image) - p(t | image with the window occluded).
    window: side in pixels (default H // 8); stride: default window // 2.
    """

    method = "occlusion"

    def attribute(self, image: np.ndarray, target: Target = None, *, window: int | None = None,
                  stride: int | None = None, baseline: Baseline = "mean", scores: str = "probabilities",
                  seed: int = 0) -> Explanation:
        """Maps (H x W float32, one per target) in units of `scores` (probability by default)."""
        image, probabilities, clean, targets, evals, start = self._begin(image, target, scores)
        window, stride, total = window_geometry(self.model, window, stride)
        drops = sliding_window_map(self.model, image, make_baseline(image, baseline, self.model), window, stride,
                                   lambda s: clean[targets] - s[:, targets], scores)
        maps = {t: drops[i].astype(np.float32) for i, t in enumerate(targets)}
        params = {"window": window, "stride": stride, "baseline": describe_baseline(baseline), "scores": scores,
                  "perturbations": total}
        return self._finish(image, probabilities, maps, params, seed, evals, start)


class RISE(Explainer):
    """Randomized Input Sampling for Explanation (Petsiuk et al. 2018).

    saliency_t = sum_i p(t | masked_i) * mask_i / (n_masks * p_keep), masks from a grid x grid
    random binary grid, bilinearly upsampled with a random shift (the core's shared generator
    keyed by (seed, mask index)).
    """

    method = "rise"

    def attribute(self, image: np.ndarray, target: Target = None, *, n_masks: int = 2000, grid: int = 7,
                  p_keep: float = 0.5, baseline: Baseline = "mean", scores: str = "probabilities",
                  seed: int = 0) -> Explanation:
        """Maps (H x W float32, one per target): expected score when the pixel is shown."""
        image, probabilities, _, targets, evals, start = self._begin(image, target, scores)
        n_masks, grid, p_keep = check_rise(self.model, n_masks, grid, p_keep)
        saliency = rise_map(self.model, image, make_baseline(image, baseline, self.model), targets, n_masks, grid,
                            p_keep, int(seed), scores)
        maps = {t: saliency[i].astype(np.float32) for i, t in enumerate(targets)}
        params = {"n_masks": n_masks, "grid": grid, "p_keep": p_keep, "baseline": describe_baseline(baseline),
                  "scores": scores}
        return self._finish(image, probabilities, maps, params, int(seed), evals, start)
