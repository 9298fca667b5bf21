"""The two reference explainers, occlusion and RISE: the baselines for the research methods."""
from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import numpy as np

from . import _core
from ._core import PreparedInput
from .batches import Batches, Stopped
from .errors import OnnxplainError
from .explainer import Explainer, Target, check_fraction, check_seed, describe_baseline, positive_int
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
    if stride > window:
        raise OnnxplainError(f"stride {stride} is larger than the window {window}: the pixels between windows would "
                             f"never be occluded; pass stride <= window")
    total = len(_core.window_positions(h, window, stride)) * len(_core.window_positions(w, window, stride))
    return window, stride, total


def sliding_window_map(batches: Batches, prepared: PreparedInput, window: int | None, stride: int | None,
                       score: Callable[[np.ndarray], np.ndarray], columns: int, kind: str = "probabilities",
                       features: Features | None = None) -> tuple[np.ndarray, int]:
    """Replaces each window of the prepared input (or each feature, given `features`) by the
    replacement; score(scores (B, classes)) -> (B, columns) values of each perturbed input.
    Returns ((columns, H, W) float64: per pixel, the mean over the windows covering it (its
    feature's value), windows evaluated). window, stride: validated sizes (`window_geometry`);
    unused with `features`.

    When `batches` may stop early, windows are visited coarse to fine (every prefix covers the
    image evenly) and accumulated in index order once stopped or done, so a complete run gives the
    same map; pixels no visited window covers get 0."""
    h, w = prepared.mask_shape
    threads = batches.model.threads
    if features is None:
        ny, nx = len(_core.window_positions(h, window, stride)), len(_core.window_positions(w, window, stride))
        total = ny * nx
        make_masks = lambda first, count: _core.occlusion_masks(h, w, window, stride, first, count, threads)  # noqa: E731
    else:
        ny, nx = 1, features.count
        total, make_masks = features.count, lambda first, count: features.occlusion_masks(first, count, threads)  # noqa: E731
    sums, counts = np.zeros((columns, h, w)), np.zeros((h, w))

    def accumulate(masks: np.ndarray, batch_scores: np.ndarray) -> None:
        _core.accumulate(np.ascontiguousarray(score(batch_scores), np.float32), masks, sums, counts, True, threads)

    if batches.stop is None:
        batches.masks(prepared, total, make_masks, accumulate, kind)
        return sums / counts, total
    order = coarse_to_fine(ny, nx) if features is None else np.arange(total)
    values, done = np.zeros((total, columns), np.float32), 0

    def keep(_masks: np.ndarray, batch_scores: np.ndarray) -> None:
        nonlocal done
        values[order[done:done + len(batch_scores)]] = score(batch_scores)
        done += len(batch_scores)

    def windows(indices: np.ndarray) -> np.ndarray:
        return np.concatenate([make_masks(int(k), 1) for k in indices])

    with suppress(Stopped):
        batches.masks(prepared, total, lambda first, count: windows(order[first:first + count]), keep, kind)
    visited = np.sort(order[:done])
    for chunk in np.array_split(visited, -(-len(visited) // batches.model.batch_size) or 1):
        if len(chunk):
            _core.accumulate(values[chunk], windows(chunk), sums, counts, True, threads)
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0), done


def coarse_to_fine(ny: int, nx: int) -> np.ndarray:
    """Window indices of an ny x nx grid, the coarsest lattices first: windows whose row and column
    are both multiples of 2^k come before those of 2^(k-1), index order within a level."""
    iy, ix = np.divmod(np.arange(ny * nx), nx)
    g = np.gcd(iy, ix)
    level = np.where(g == 0, ny * nx + 1, g & -g)  # the largest power of two dividing both
    return np.lexsort((np.arange(ny * nx), -level))


def check_rise(model: Model, n_masks: int, grid: int, p_keep: float) -> tuple[int, int, float]:
    h, w = model.input_size
    n_masks, grid = positive_int("n_masks", n_masks), positive_int("grid", grid)
    if grid > min(h, w):
        raise OnnxplainError(f"grid {grid} is finer than the image ({h} x {w})")
    return n_masks, grid, check_fraction("p_keep", p_keep)


def rise_map(batches: Batches, prepared: PreparedInput, columns: list[int], n_masks: int, grid: int, p_keep: float,
             seed: int, kind: str = "probabilities", features: Features | None = None
             ) -> tuple[np.ndarray, int, dict | None]:
    """RISE over masks m blending m * input + (1 - m) * replacement: ((len(columns), H, W) float64,
    sum_i score_i[c] * m_i / (n * p_keep) for each class c in `columns` over the n masks evaluated,
    n, convergence). Masks are smooth grid masks, or, given `features`, each feature kept with
    probability p_keep. When `batches` may stop early, the even-numbered masks are also summed
    apart: convergence is the correlation of the maps of the two halves (mean over classes)."""
    h, w = prepared.mask_shape
    threads = batches.model.threads
    sums, counts = np.zeros((len(columns), h, w)), np.zeros((h, w))
    halves = batches.stop is not None
    even, even_counts = (np.zeros_like(sums), np.zeros((h, w))) if halves else (None, None)
    if features is None:
        make_masks = lambda first, count: _core.rise_masks(seed, first, count, h, w, grid, p_keep, threads)  # noqa: E731
    else:
        make_masks = lambda first, count: features.masks(  # noqa: E731
            _core.bernoulli_keep(seed, first, count, features.count, p_keep, threads), threads)
    done = 0

    def consume(masks: np.ndarray, batch_scores: np.ndarray) -> None:
        nonlocal done
        values = np.ascontiguousarray(batch_scores[:, columns])
        _core.accumulate(values, masks, sums, counts, False, threads)
        if halves:  # this batch's even-numbered masks start at position done % 2
            first_even = done % 2
            _core.accumulate(np.ascontiguousarray(values[first_even::2]), np.ascontiguousarray(masks[first_even::2]),
                             even, even_counts, False, threads)
        done += len(masks)

    with suppress(Stopped):
        batches.masks(prepared, n_masks, make_masks, consume, kind)
    convergence = None
    if halves:
        n_even, n_odd = (done + 1) // 2, done // 2
        agreement = None
        if n_odd:
            a, b = even / (n_even * p_keep), (sums - even) / (n_odd * p_keep)
            agreement = float(np.mean([np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(a, b)
                                       if x.std() > 0 and y.std() > 0] or [np.nan]))
        convergence = {"masks": done, "of": n_masks, "halves_correlation": agreement}
    return sums / (max(done, 1) * p_keep), done, convergence


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
                  features: Features | np.ndarray | None = None, deadline: float | None = None,
                  cancel: threading.Event | None = None, seed: int = 0) -> Explanation:
        """Maps (H x W float32, one per target) in units of `scores` (probability by default).
        deadline (seconds) / cancel (an Event): stop early with the windows visited so far (coarse
        to fine), `complete` False and `convergence` the share of windows and pixels covered."""
        groups = as_features(features, self.model.masker.mask_shape)  # bad input fails before any evaluation
        seed = check_seed(seed)
        with self.run(image, target, scores, deadline, cancel) as run:
            prepared = run.prepare(baseline)
            targets, clean = run.targets, run.clean
            params: dict[str, Any]
            if groups is None:
                window, stride, total = window_geometry(self.model, window, stride)
                params = {"window": window, "stride": stride}
            else:
                total, params = groups.count, groups.record()
            drops, done = sliding_window_map(run.batches, prepared, window, stride,
                                             lambda s: clean[targets] - s[:, targets], len(targets), scores, groups)
            maps = {t: drops[i].astype(np.float32) for i, t in enumerate(targets)}
            params.update(baseline=describe_baseline(baseline), scores=scores, perturbations=total)
            convergence = None if run.batches.stop is None else {"windows": done, "of": total}
            return run.finish(maps, params, seed, complete=done == total, convergence=convergence)


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
                  features: Features | np.ndarray | None = None, deadline: float | None = None,
                  cancel: threading.Event | None = None, seed: int = 0) -> Explanation:
        """Maps (H x W float32, one per target): expected score when the pixel is shown.
        deadline (seconds) / cancel (an Event): stop early with the masks evaluated so far,
        `complete` False and `convergence` the agreement of the maps of the two halves of them."""
        groups = as_features(features, self.model.masker.mask_shape)  # bad input fails before any evaluation
        n_masks, grid, p_keep = check_rise(self.model, n_masks, grid, p_keep)
        seed = check_seed(seed)
        with self.run(image, target, scores, deadline, cancel) as run:
            saliency, done, convergence = rise_map(run.batches, run.prepare(baseline), run.targets, n_masks, grid,
                                                   p_keep, seed, scores, groups)
            maps = {t: saliency[i].astype(np.float32) for i, t in enumerate(run.targets)}
            params = {"n_masks": n_masks, "p_keep": p_keep, "baseline": describe_baseline(baseline), "scores": scores,
                      **({"grid": grid} if groups is None else groups.record())}
            return run.finish(maps, params, seed, complete=done == n_masks, convergence=convergence)
