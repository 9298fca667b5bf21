"""The two reference explainers, occlusion and RISE: the baselines for the research methods."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _core
from ._core import PreparedInput
from .batches import Batches
from .errors import OnnxplainError
from .explainer import Explainer, Target, describe_baseline, positive_int
from .masking import Baseline, Features, as_features
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


def sliding_window_map(batches: Batches, prepared: PreparedInput, window: int | None, stride: int | None,
                       score: Callable[[np.ndarray], np.ndarray], kind: str = "probabilities",
                       features: Features | None = None) -> np.ndarray:
    """Replaces each window of the prepared input (or each feature, given `features`) by the
    replacement; score(scores (B, classes)) -> (B, T) values of each perturbed input. Returns
    (T, H, W) float64: per pixel, the mean over the windows covering it (its feature's value).
    window, stride: validated sizes (`window_geometry`); unused with `features`."""
    h, w = prepared.mask_shape
    threads = batches.model.threads
    if features is None:
        total = len(_core.window_positions(h, window, stride)) * len(_core.window_positions(w, window, stride))
        make_masks = lambda first, count: _core.occlusion_masks(h, w, window, stride, first, count, threads)  # noqa: E731
    else:
        total, make_masks = features.count, lambda first, count: features.occlusion_masks(first, count, threads)  # noqa: E731
    sums, counts = None, np.zeros((h, w))

    def consume(masks: np.ndarray, batch_scores: np.ndarray) -> None:
        nonlocal sums
        values = np.ascontiguousarray(score(batch_scores), np.float32)
        if sums is None:
            sums = np.zeros((values.shape[1], h, w))
        _core.accumulate(values, masks, sums, counts, True, threads)

    batches.masks(prepared, total, make_masks, consume, kind)
    return sums / counts


def check_rise(model: Model, n_masks: int, grid: int, p_keep: float) -> tuple[int, int, float]:
    h, w = model.input_size
    n_masks, grid = positive_int("n_masks", n_masks), positive_int("grid", grid)
    if grid > min(h, w):
        raise OnnxplainError(f"grid {grid} is finer than the image ({h} x {w})")
    if not 0 < p_keep <= 1:
        raise OnnxplainError(f"p_keep must be in (0, 1], got {p_keep}")
    return n_masks, grid, float(p_keep)


def rise_map(batches: Batches, prepared: PreparedInput, columns: list[int], n_masks: int, grid: int, p_keep: float,
             seed: int, kind: str = "probabilities", features: Features | None = None) -> np.ndarray:
    """RISE over masks m blending m * input + (1 - m) * replacement: (len(columns), H, W) float64,
    sum_i score_i[c] * m_i / (n_masks * p_keep) for each class c in `columns`. Masks are smooth
    grid masks, or, given `features`, each feature kept with probability p_keep."""
    h, w = prepared.mask_shape
    threads = batches.model.threads
    sums, counts = np.zeros((len(columns), h, w)), np.zeros((h, w))
    if features is None:
        make_masks = lambda first, count: _core.rise_masks(seed, first, count, h, w, grid, p_keep, threads)  # noqa: E731
    else:
        make_masks = lambda first, count: features.masks(  # noqa: E731
            _core.bernoulli_keep(seed, first, count, features.count, p_keep, threads), threads)

    def consume(masks: np.ndarray, batch_scores: np.ndarray) -> None:
        _core.accumulate(np.ascontiguousarray(batch_scores[:, columns]), masks, sums, counts, False, threads)

    batches.masks(prepared, n_masks, make_masks, consume, kind)
    return sums / (n_masks * p_keep)


class Occlusion(Explainer):
    """Sliding-window occlusion (Zeiler & Fergus 2014).

    Each window is replaced by the baseline; a pixel's attribution for class t is the mean,
    over the windows covering it, of p(t | image) - p(t | image with the window occluded).
    window: side in pixels (default H // 8); stride: default window // 2. With `features` (an
    H x W integer map: superpixels, patches), each feature is occluded in turn instead of windows
    and its pixels get its score drop.
    """

    method = "occlusion"

    def attribute(self, image: np.ndarray, target: Target = None, *, window: int | None = None,
                  stride: int | None = None, baseline: Baseline = "mean", scores: str = "probabilities",
                  features: Features | np.ndarray | None = None, seed: int = 0) -> Explanation:
        """Maps (H x W float32, one per target) in units of `scores` (probability by default)."""
        with self.run(image, target, scores) as run:
            groups = as_features(features, self.model.masker.mask_shape)
            prepared = run.prepare(baseline)
            targets, clean = run.targets, run.clean
            params: dict[str, Any]
            if groups is None:
                window, stride, total = window_geometry(self.model, window, stride)
                params = {"window": window, "stride": stride}
            else:
                total, params = groups.count, groups.record()
            drops = sliding_window_map(run.batches, prepared, window, stride, lambda s: clean[targets] - s[:, targets],
                                       scores, groups)
            maps = {t: drops[i].astype(np.float32) for i, t in enumerate(targets)}
            params.update(baseline=describe_baseline(baseline), scores=scores, perturbations=total)
            return run.finish(maps, params, seed)


class RISE(Explainer):
    """Randomized Input Sampling for Explanation (Petsiuk et al. 2018).

    saliency_t = sum_i p(t | masked_i) * mask_i / (n_masks * p_keep), masks from a grid x grid
    random binary grid, bilinearly upsampled with a random shift (the core's shared generator
    keyed by (seed, mask index)). With `features` (an H x W integer map), each feature is kept
    with probability p_keep instead (draw f of mask i decides feature f).
    """

    method = "rise"

    def attribute(self, image: np.ndarray, target: Target = None, *, n_masks: int = 2000, grid: int = 7,
                  p_keep: float = 0.5, baseline: Baseline = "mean", scores: str = "probabilities",
                  features: Features | np.ndarray | None = None, seed: int = 0) -> Explanation:
        """Maps (H x W float32, one per target): expected score when the pixel is shown."""
        with self.run(image, target, scores) as run:
            groups = as_features(features, self.model.masker.mask_shape)
            n_masks, grid, p_keep = check_rise(self.model, n_masks, grid, p_keep)
            saliency = rise_map(run.batches, run.prepare(baseline), run.targets, n_masks, grid, p_keep, int(seed),
                                scores, groups)
            maps = {t: saliency[i].astype(np.float32) for i, t in enumerate(run.targets)}
            params = {"n_masks": n_masks, "p_keep": p_keep, "baseline": describe_baseline(baseline), "scores": scores,
                      **({"grid": grid} if groups is None else groups.record())}
            return run.finish(maps, params, int(seed))
