"""The two reference explainers, occlusion and RISE: the baselines for the research methods."""
from __future__ import annotations

import numpy as np

from . import _core
from .errors import OnnxplainError
from .explainer import Baseline, Explainer, Target, make_baseline
from .result import Explanation


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise OnnxplainError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


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
        h, w = self.model.input_size
        window = _positive_int("window", window if window is not None else max(1, min(h, w) // 8))
        stride = _positive_int("stride", stride if stride is not None else max(1, window // 2))
        if window > min(h, w):
            raise OnnxplainError(f"window {window} is larger than the image ({h} x {w})")
        total = len(_core.window_positions(h, window, stride)) * len(_core.window_positions(w, window, stride))
        sums = np.zeros((len(targets), h, w))
        counts = np.zeros((h, w))

        def consume(masks: np.ndarray, batch_scores: np.ndarray) -> None:
            drop = (clean[targets] - batch_scores[:, targets]).astype(np.float32)
            _core.accumulate(np.ascontiguousarray(drop), masks, sums, counts, True, self.model.threads)

        self.model.evaluate_masks(
            image, make_baseline(image, baseline, self.model), total,
            lambda first, count: _core.occlusion_masks(h, w, window, stride, first, count, self.model.threads),
            consume, scores, "occlusion")
        maps = {t: (sums[i] / counts).astype(np.float32) for i, t in enumerate(targets)}
        params = {"window": window, "stride": stride, "baseline": _describe(baseline), "scores": scores,
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
        h, w = self.model.input_size
        n_masks = _positive_int("n_masks", n_masks)
        grid = _positive_int("grid", grid)
        if grid > min(h, w):
            raise OnnxplainError(f"grid {grid} is finer than the image ({h} x {w})")
        if not 0 < p_keep <= 1:
            raise OnnxplainError(f"p_keep must be in (0, 1], got {p_keep}")
        seed = int(seed)
        sums = np.zeros((len(targets), h, w))
        counts = np.zeros((h, w))

        def consume(masks: np.ndarray, batch_scores: np.ndarray) -> None:
            _core.accumulate(np.ascontiguousarray(batch_scores[:, targets]), masks, sums, counts, False,
                             self.model.threads)

        self.model.evaluate_masks(
            image, make_baseline(image, baseline, self.model), n_masks,
            lambda first, count: _core.rise_masks(seed, first, count, h, w, grid, p_keep, self.model.threads),
            consume, scores, "rise")
        maps = {t: (sums[i] / (n_masks * p_keep)).astype(np.float32) for i, t in enumerate(targets)}
        params = {"n_masks": n_masks, "grid": grid, "p_keep": p_keep, "baseline": _describe(baseline),
                  "scores": scores}
        return self._finish(image, probabilities, maps, params, seed, evals, start)


def _describe(baseline: Baseline):
    return "image" if isinstance(baseline, np.ndarray) else baseline
