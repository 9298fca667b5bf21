"""Information-theoretic maps (IG and PMI): how informative is each patch, and how much does it
support each class.

For each K x K patch i on a grid of stride S (positions fully inside the image, the last one
flush with the far border), the patch is marginalised: replaced by N samples drawn from a
distribution of the patch given its context, and the model's probabilities averaged,
    q_i(y) = p(y | x without i) = (1/N) sum_n p(y | x with patch i := sample n).
Then, with a small eps (default 1e-12, ``eps=``),
    PMI_i(y) = ln((p(y|x) + eps) / (q_i(y) + eps))    (signed, > 0 where patch i supports y)
    IG_i     = sum_y p(y|x) PMI_i(y) = KL(p(Y|x) || q_i)  (>= 0 up to eps).
A pixel's map is the mean of the scores of all patches covering it.

Modes:
- ``dense``: every grid position, N samples each: N * ((H-K)/S + 1)^2 evaluations.
- ``budgeted`` (default): coarse-to-fine within ``budget`` evaluations. The grid is evaluated at a
  coarse spacing (``budget_samples`` samples per patch), then the spacing is halved level by level;
  at each level the budget goes to the new positions where the interpolated scores are largest or
  vary most between their evaluated neighbours (only those above a floor at the coarser levels,
  so the finest level keeps most of the budget), the rest are interpolated (bilinear over grid
  indices). Once every position is evaluated, what is left buys extra samples (adaptive N, up to
  N per patch) for the patches whose estimate is least stable: the largest scores first, then
  those whose last sample moved the estimate most. The finished score field on the full grid is
  aggregated like the dense one. When the dense grid fits in the budget (N samples per patch),
  the dense answer is computed. Sample n of a patch is the same draw in every mode (streams keyed
  by position and n), and a patch's samples are summed in sample order, so a patch with n samples
  holds exactly the dense n-sample estimate.

Samplers (sampling runs in the C++ core, ``sampling.hpp``; draws keyed by (seed, stream),
stream = (y * W + x) * 2^20 + n):
Images have the model's C channels (H x W x C, 0..255: 1 grey, 3 RGB, any C); patches are
K x K x C.
- ``auto`` (default): ``learned`` for RGB images at its patch size (8) without references,
  ``gaussian`` otherwise (the learned sampler gave the lower Deletion AUC in bench/sampler.py).
- ``gaussian``: a conditional multivariate Gaussian of the patch given the frame of F
  pixels around it, fitted on (K + 2F)^2 windows of the reference images (the image itself when
  none are given; D = C (K + 2F)^2 values per window), jointly over channels or per channel, with
  shrinkage towards a scaled identity. Border patches condition on the part of the frame inside the image only (the
  Gaussian marginal over the absent entries, never padding). The regression matrix and the
  Cholesky factor of the conditional covariance are computed once per frame configuration.
- ``learned``: the CNN trained in this repository (``LearnedSampler``; RGB, K = 8): a 256-level
  distribution per pixel and channel given the 3K x 3K window; pixels are drawn independently,
  the channels of a pixel together, with their correlation in the context (see ``OnnxSampler``).
- ``marginal``: the patch of a reference image at the same location (needs references).
- ``inpaint``: OpenCV inpainting (Telea) of the patch from a window of 3K x 3K around it, plus
  optional Gaussian noise (OpenCV inpaints 1- or 3-channel images only).
- ``constant`` (the "mean" baseline or a pixel value) and ``blur`` (a Gaussian-blurred copy of
  the image): deterministic, for comparison with occlusion.
- ``OnnxSampler(model)``: a learned sampler as an ONNX model (contract in its doc), e.g. a network
  like the authors' PatchSampler with 256-way outputs.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.stats import spearmanr

from . import _core
from .errors import OnnxplainError, warn
from ._core import PreparedInput
from .batches import Batches, Stopped
from .explainer import Explainer, Run, Target, check_frame, check_seed, positive_int
from .image import image_files, load_image
from .model import Model
from .reference import coarse_to_fine
from .result import Explanation

EPS = 1e-12
SAMPLE_SLOTS = 1 << 20  # samples per patch the stream numbering leaves room for
SAMPLERS = ("auto", "gaussian", "learned", "marginal", "inpaint", "constant", "blur")  # by name; OnnxSampler by instance
MODES = ("budgeted", "dense")
COARSE_SHARE = 0.5  # budgeted mode: the first lattice is the finest one costing at most this share
FIT_CHUNK_VALUES = 2**20  # Gaussian fit: window values per chunk (8 MiB of float64)
WEAK_BUDGET_SHARE = 16  # budgeted mode warns when the budget is below 1/16 of the grid positions
REFINE_FLOOR = 1e-3  # budgeted mode: new positions below this priority are interpolated at coarse levels
MAX_FIT_VALUES = 10_000_000  # window values a Gaussian fit reads at most (memory and time bound)
DEFAULT_FRAME = 2  # pixels of context around a patch, the Gaussian sampler's
MAX_GAUSSIAN_VALUES = 2048  # values of a Gaussian window, C (K + 2F)^2: RGB patch 22 at frame 2 fits in under a
#                             minute on 2 cores (patch 16: 6 s); the fit grows as the cube of this


def _load_references(references, size: tuple[int, int], channels: int = 3) -> list[np.ndarray]:
    """Reference images (paths, a directory, arrays) as float32 H x W x C at the model size, C =
    `channels` (the model's; converted as `load_image` does)."""
    if references is None:
        return []
    if isinstance(references, (str, Path)) and Path(references).is_dir():
        references = image_files(references)
    elif isinstance(references, (str, Path, np.ndarray)):
        references = [references]
    return [load_image(r, size, channels) for r in references]


# ---- samplers --------------------------------------------------------------------------

class PatchSampler:
    """Draws replacements of K x K patches. `prepare` binds the sampler to one image (H x W x C,
    the model's C channels); `sample` returns (count, K, K, C) float32 in 0..255 for patches at
    (ys, xs) (int64) with draws keyed by (seed, streams) (uint64)."""

    name = ""

    def prepare(self, model: Model, image: np.ndarray, patch: int) -> None:
        self.image, self.patch, self.threads = image, patch, model.threads

    def sample(self, ys: np.ndarray, xs: np.ndarray, streams: np.ndarray, seed: int) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name}


class GaussianSampler(PatchSampler):
    """Conditional Gaussian of the patch given a frame of `frame` pixels (see the module doc).

    references: images (or a directory) to fit on; None fits on the explained image.
    per_channel: fit the C channels independently (block-diagonal covariance) instead of
    jointly. shrinkage: weight of the identity (scaled to the mean variance) in the covariance.
    local_scale: scale the conditional noise by the frame's local contrast relative to the fitted
    windows' average (a Gaussian scale mixture, so flat context gives quiet samples; the plain
    homoscedastic Gaussian pastes texture-level noise into flat regions); needs frame >= 1.
    max_windows: windows used for the fit (taken on a regular stride), at most MAX_FIT_VALUES
    values in all (10^7: 23,000 windows at K = 8, F = 2 for RGB; 8,300 at K = 16). The window has
    D = C (K + 2F)^2 values, so the tables grow as C^2.
    """

    name = "gaussian"

    def __init__(self, frame: int = DEFAULT_FRAME, references=None, per_channel: bool = False, shrinkage: float = 0.05,
                 local_scale: bool = True, max_windows: int = 20000) -> None:
        check_frame(frame)
        if not 0 <= shrinkage <= 1:
            raise OnnxplainError(f"shrinkage must be in [0, 1], got {shrinkage}")
        self.frame, self.references, self.per_channel = int(frame), references, bool(per_channel)
        self.shrinkage, self.max_windows = float(shrinkage), positive_int("max_windows", max_windows)
        self.local_scale = bool(local_scale) and self.frame >= 1
        self.spread = 0.0  # mean local contrast of the fitted windows' frames (0: no local scaling)
        self._fixed_patch: int | None = None  # set by from_moments: nothing to fit
        self.mean: np.ndarray | None = None  # fitted window mean (D,), float64
        self.cov: np.ndarray | None = None   # fitted window covariance (D, D), float64

    @classmethod
    def from_moments(cls, patch: int, frame: int, mean: np.ndarray, cov: np.ndarray,
                     channels: int = 3) -> GaussianSampler:
        """A sampler with a given window mean (D,) and covariance (D x D), D = C (K + 2F)^2 in the
        window's row-major, channel-last order, C = `channels` (the model's); nothing is fitted."""
        sampler = cls(frame=frame, shrinkage=0.0, local_scale=False)
        channels = positive_int("channels", channels)
        d = channels * (patch + 2 * frame) ** 2
        mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
        if mean.shape != (d,) or cov.shape != (d, d):
            raise OnnxplainError(f"mean and cov must be ({d},) and ({d}, {d}) for patch {patch}, frame {frame}, "
                                 f"{channels} channel{'s' * (channels != 1)}; got {mean.shape} and {cov.shape}")
        sampler.mean, sampler.cov, sampler._fixed_patch = mean, cov, patch
        return sampler

    def fit(self, images: Sequence[np.ndarray], patch: int) -> None:
        """Window mean and shrunk covariance from all (K + 2F)^2 windows of `images` (H x W x C, one
        C for all; on a stride that keeps at most max_windows of them)."""
        side = patch + 2 * self.frame
        channels = {im.shape[2] for im in images}
        if len(channels) != 1:
            raise OnnxplainError(f"the Gaussian sampler's images must share one channel count, got {sorted(channels)}")
        c = channels.pop()
        counts = [max(0, im.shape[0] - side + 1) * max(0, im.shape[1] - side + 1) for im in images]
        if min(counts) < 1:
            raise OnnxplainError(f"reference images must be at least {side} x {side} for patch {patch}, frame {self.frame}; "
                                 "pass a smaller patch or frame")
        limit = min(self.max_windows, max(2, MAX_FIT_VALUES // (c * side * side)))
        step = max(1, int(np.ceil(np.sqrt(sum(counts) / limit))))
        d = c * side * side
        ring = np.ones((side, side), bool)
        ring[self.frame:self.frame + patch, self.frame:self.frame + patch] = False
        n, total, outer, spread = 0, np.zeros(d), np.zeros((d, d)), 0.0
        for im in images:  # streamed in chunks of window rows: memory stays at one chunk
            view = np.lib.stride_tricks.sliding_window_view(im, (side, side, c))[::step, ::step, 0]
            rows_per_chunk = max(1, FIT_CHUNK_VALUES // (d * view.shape[1]))
            for i in range(0, view.shape[0], rows_per_chunk):
                x = view[i:i + rows_per_chunk].reshape(-1, d).astype(np.float64)
                n += len(x)
                total += x.sum(axis=0)
                outer += x.T @ x
                if self.local_scale:
                    spread += float(x.reshape(-1, side, side, c)[:, ring].var(axis=1).sum())
        if n < 2:
            raise OnnxplainError("too few reference windows to fit the Gaussian sampler")
        self.mean = total / n
        if self.local_scale:
            self.spread = spread / (n * c)  # mean over windows and channels of the frame's variance
        cov = (outer - n * np.outer(self.mean, self.mean)) / (n - 1)
        if self.per_channel:
            channel = np.arange(cov.shape[0]) % c
            cov = np.where(channel[:, None] == channel[None, :], cov, 0.0)
        self.cov = cov

    def prepare(self, model: Model, image: np.ndarray, patch: int) -> None:
        super().prepare(model, image, patch)
        side = patch + 2 * self.frame
        if image.shape[2] * side * side > MAX_GAUSSIAN_VALUES:
            raise OnnxplainError(
                f"the Gaussian sampler would model windows of {image.shape[2]} x {side} x {side} values (patch {patch}, "
                f"frame {self.frame}), over its limit of {MAX_GAUSSIAN_VALUES}: fitting it would take minutes; pass a "
                "smaller patch or frame, or sampler='blur' or 'inpaint'")
        if self._fixed_patch is not None:
            if self._fixed_patch != patch:
                raise OnnxplainError(f"this Gaussian sampler was built for patch {self._fixed_patch}, not {patch}")
        else:
            refs = _load_references(self.references, model.input_size, image.shape[2]) or [image]
            self.fit(refs, patch)
        d = self.cov.shape[0]
        if d != image.shape[2] * side * side:
            raise OnnxplainError(f"this Gaussian sampler's moments are for {d // (side * side)} channels; the image has "
                                 f"{image.shape[2]}")
        level = np.trace(self.cov) / d
        self._cov = (1 - self.shrinkage) * self.cov + self.shrinkage * level * np.eye(d)
        index = np.arange(d).reshape(side, side, image.shape[2])
        inner = np.zeros((side, side), bool)
        inner[self.frame:self.frame + patch, self.frame:self.frame + patch] = True
        self._patch_index = index[inner].reshape(-1)
        # Every frame configuration a patch of this image can have, factorised once in the core
        # (one configuration per thread).
        h, w = image.shape[:2]
        rows = sorted({self._config(y, 0)[:2] for y in range(h - patch + 1)})
        cols = sorted({self._config(0, x)[2:] for x in range(w - patch + 1)})
        configs = [(top, bottom, left, right) for top, bottom in rows for left, right in cols]
        observed = np.zeros((len(configs), d), np.uint8)
        for i, (top, bottom, left, right) in enumerate(configs):
            present = np.zeros((side, side), bool)
            present[top:side - bottom, left:side - right] = True
            present[inner] = False
            observed[i, index[present].reshape(-1)] = 1
        try:
            regress, chol = _core.gaussian_conditionals(np.ascontiguousarray(self._cov), self._patch_index, observed,
                                                        self.threads)
        except ValueError as exc:
            raise OnnxplainError(f"Gaussian sampler: {exc}") from None
        self._tables = {config: i for i, config in enumerate(configs)}
        self._arrays = (regress, chol, self.mean[self._patch_index].astype(np.float32), self.mean.astype(np.float32))

    def _config(self, y: int, x: int) -> tuple[int, int, int, int]:
        """Frame rows/columns missing above, below, left, right of a patch at (y, x)."""
        h, w = self.image.shape[:2]
        f, k = self.frame, self.patch
        return (max(0, f - y), max(0, y + k + f - h), max(0, f - x), max(0, x + k + f - w))

    def conditional(self, y: int, x: int) -> tuple[np.ndarray, np.ndarray]:
        """The conditional mean (K x K x C) and covariance (P x P, P = C K^2) of the patch at (y, x)
        given the image's frame pixels inside the image, as the sampler uses them (float64; with
        local_scale the samples' covariance is this one times the frame's contrast ratio)."""
        t = self._tables[self._config(y, x)]
        side, f = self.patch + 2 * self.frame, self.frame
        h, w, c = self.image.shape
        window = np.zeros((side, side, c))
        y0, x0 = y - f, x - f
        sy, sx = slice(max(0, y0), min(h, y0 + side)), slice(max(0, x0), min(w, x0 + side))
        window[sy.start - y0:sy.stop - y0, sx.start - x0:sx.stop - x0] = self.image[sy, sx]
        centred = window.reshape(-1) - self.mean
        regress = self._arrays[0][t].astype(np.float64)  # D x P, zero rows where not observed
        mean = self.mean[self._patch_index] + centred @ regress
        upper = self._arrays[1][t].astype(np.float64)
        return mean.reshape(self.patch, self.patch, c), upper.T @ upper

    def noise_scale(self, y: int, x: int) -> float:
        """The factor on the conditional noise's standard deviation of the patch at (y, x): with
        local_scale, sqrt(frame variance / fitted windows' mean frame variance) (as the core
        computes it); else 1."""
        if not (self.local_scale and self.spread > 0):
            return 1.0
        h, w = self.image.shape[:2]
        f, k = self.frame, self.patch
        window = self.image[max(0, y - f):min(h, y + k + f), max(0, x - f):min(w, x + k + f)].astype(np.float64)
        frame = np.ones(window.shape[:2], bool)
        frame[y - max(0, y - f):y - max(0, y - f) + k, x - max(0, x - f):x - max(0, x - f) + k] = False
        values = window[frame]
        return float(np.sqrt(values.var(axis=0).mean() / self.spread)) if values.size else 1.0

    def sample(self, ys, xs, streams, seed):
        configs = np.array([self._tables[self._config(int(y), int(x))] for y, x in zip(ys, xs)], np.int64)
        regress, chol, patch_mean, window_mean = self._arrays
        return _core.gaussian_patch_samples(self.image, ys, xs, configs, streams, seed, self.patch, self.frame,
                                            patch_mean, window_mean, regress, chol,
                                            self.spread if self.local_scale else 0.0, self.threads)

    def describe(self) -> dict:
        return {"name": self.name, "frame": self.frame, "per_channel": self.per_channel, "shrinkage": self.shrinkage,
                "local_scale": self.local_scale, "fitted_on": "references" if self.references is not None else "image"}


class _BankSampler(PatchSampler):
    """Patches read from a bank of images at their own position, plus optional noise."""

    noise = 0.0

    def _bank(self, model: Model, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, model, image, patch):
        super().prepare(model, image, patch)
        self._images = np.ascontiguousarray(self._bank(model, image), np.float32)  # (R, H, W, C)
        if self._images.shape[1:] != image.shape:
            raise OnnxplainError(f"the {self.name} sampler's images are {self._images.shape[1:]}, the image {image.shape}")

    def sample(self, ys, xs, streams, seed):
        return _core.bank_patch_samples(self._images, ys, xs, streams, seed, self.patch, self.noise, self.threads)


class MarginalSampler(_BankSampler):
    """The patch of a uniformly drawn reference image at the same location (plus noise)."""

    name = "marginal"

    def __init__(self, references, noise: float = 0.0) -> None:
        if references is None:
            raise OnnxplainError("the marginal sampler needs reference images (references=...)")
        self.references, self.noise = references, float(noise)

    def _bank(self, model, image):
        return np.stack(_load_references(self.references, model.input_size, image.shape[2]))

    def describe(self):
        return {"name": self.name, "references": len(self._images) if hasattr(self, "_images") else None,
                "noise": self.noise}


class ConstantSampler(_BankSampler):
    """The patch of a baseline image: "mean" (what preprocessing maps to 0) or a pixel value."""

    name = "constant"

    def __init__(self, value: str | float = "mean") -> None:
        self.value = value

    def _bank(self, model, image):
        return model.masker.replacement(image, self.value)[None]

    def describe(self):
        return {"name": self.name, "value": self.value}


class BlurSampler(_BankSampler):
    """The patch of a Gaussian-blurred copy of the image (sigma default H / 16; each channel
    blurred alike)."""

    name = "blur"

    def __init__(self, sigma: float | None = None) -> None:
        self.sigma = sigma

    def _bank(self, model, image):
        if image.shape[2] <= 4:  # OpenCV's multi-channel blur
            return model.masker.replacement(image, "blur", self.sigma)[None]
        sigma = self.sigma or image.shape[0] / 16
        return np.stack([cv2.GaussianBlur(np.ascontiguousarray(image[:, :, c]), (0, 0), sigmaX=sigma)
                         for c in range(image.shape[2])], axis=2)[None]

    def describe(self):
        return {"name": self.name, "sigma": self.sigma}


class InpaintSampler(PatchSampler):
    """OpenCV inpainting (Telea, `radius`) of the patch from the 3K x 3K window around it, plus
    N(0, noise^2) per pixel and channel. OpenCV inpaints 1- or 3-channel images only; other
    channel counts are refused (use another sampler)."""

    name = "inpaint"

    def __init__(self, radius: float = 3.0, noise: float = 0.0) -> None:
        if radius <= 0 or noise < 0:
            raise OnnxplainError(f"inpaint needs radius > 0 and noise >= 0, got {radius}, {noise}")
        self.radius, self.noise = float(radius), float(noise)

    def prepare(self, model, image, patch):
        if image.shape[2] not in (1, 3):
            raise OnnxplainError(f"sampler='inpaint' (OpenCV inpainting) needs a 1- or 3-channel image, this one has "
                                 f"{image.shape[2]} channels; use sampler='gaussian', 'marginal', 'blur' or 'constant'")
        super().prepare(model, image, patch)
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        self._uint8 = np.clip(image, 0, 255).round().astype(np.uint8)

    def _inpainted(self, y: int, x: int) -> np.ndarray:
        if (y, x) not in self._cache:
            h, w = self.image.shape[:2]
            k = self.patch
            y0, x0, y1, x1 = max(0, y - k), max(0, x - k), min(h, y + 2 * k), min(w, x + 2 * k)
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            mask[y - y0:y - y0 + k, x - x0:x - x0 + k] = 255
            filled = cv2.inpaint(self._uint8[y0:y1, x0:x1], mask, self.radius, cv2.INPAINT_TELEA)
            filled = filled.reshape(y1 - y0, x1 - x0, self.image.shape[2])  # grey comes back H x W
            self._cache[(y, x)] = filled[y - y0:y - y0 + k, x - x0:x - x0 + k].astype(np.float32)
        return self._cache[(y, x)]

    def sample(self, ys, xs, streams, seed):
        out = np.ascontiguousarray(np.stack([self._inpainted(int(y), int(x)) for y, x in zip(ys, xs)]))
        if self.noise > 0:
            _core.noisy_patches(out, streams, seed, self.noise, self.threads)
        return out

    def describe(self):
        return {"name": self.name, "radius": self.radius, "noise": self.noise}


def _detail_moment_sums(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed-area tables of an image's fine detail r = image - its 3 x 3 box mean (reflected at
    the border): of r, (H + 1, W + 1, C), and of r r^T, (H + 1, W + 1, C, C); float64."""
    h, w, c = image.shape
    padded = np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="reflect")
    detail = image - sum(padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9.0

    def table(values: np.ndarray) -> np.ndarray:
        out = np.zeros((h + 1, w + 1, *values.shape[2:]))
        out[1:, 1:] = values.cumsum(0).cumsum(1)
        return out

    return table(detail), table(detail[..., :, None] * detail[..., None, :])


class OnnxSampler(PatchSampler):
    """A learned sampler given as an ONNX model (path, bytes or session).

    Contract, for an image of C channels (the model's; C = 3 for RGB). Input: one float32 tensor
    (N, C + 1, 3K, 3K), the 3K x 3K window centred on the patch: channels 0..C-1 the pixels / 255
    (RGB: channels 0..2 R, G, B), channel C a mask that is 1 on the unknown K x K centre, where
    channels 0..C-1 are 0; outside the image the window holds the image mirrored at its border (flat
    context stays flat at the border, where a blanked outside made the shipped sampler draw darker,
    noisier patches). Output: one float32 tensor, either (N, C, K, K) pixel values / 255 (used as
    they are: the sampler is then deterministic), or (N, C, K, K, 256) logits of a 256-level
    distribution per pixel and channel, or (N, C, K, K, 3M), M < 86, the parameters of a discretised
    logistic mixture per pixel and channel (M weight logits, M means on the 0..255 scale, M
    natural-log scales; level v has the mass of [v - 0.5, v + 0.5), the end levels take the tails).
    The core draws by inverse CDF over the shared generator (the same draw for a mixture as for its
    256 logits), pixels independently. couple_channels (default) draws the C channels of a pixel
    together, through a Gaussian copula whose correlation is that of the channels' fine detail (the
    image minus its 3 x 3 mean) in the known part of the window: a grey context gives grey samples
    and channel-independent noise stays independent, where independent draws paint colour noise
    into grey texture that the explained model reacts to (bench/README.md, "Samplers"); False draws
    every value independently. The network runs once per distinct patch position in a batch.
    """

    name = "onnx"

    def __init__(self, source, providers: Sequence[str] | None = None, couple_channels: bool = True) -> None:
        from .model import _open_session

        self.couple_channels = bool(couple_channels)
        self.session = _open_session(source, providers, spinning=False)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise OnnxplainError(f"an ONNX sampler needs one input and one output, got {len(inputs)} and {len(outputs)}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        shape = inputs[0].shape
        self._input_channels = shape[1] if len(shape) == 4 and isinstance(shape[1], int) else None

    def prepare(self, model, image, patch):
        c = image.shape[2]
        if self._input_channels is not None and self._input_channels != c + 1:
            raise OnnxplainError(f"the ONNX sampler takes {self._input_channels} input channels; a {c}-channel image "
                                 f"needs (N, {c + 1}, 3K, 3K): {c} pixel channel{'s' * (c != 1)} and the mask")
        super().prepare(model, image, patch)
        self._detail_sums = _detail_moment_sums(image) if self.couple_channels and c > 1 else None
        self._mirrored = None  # the image mirrored at its border, / 255, (C, H + 2K, W + 2K): built on first use

    def _coupling(self, positions: list[tuple[int, int]]) -> np.ndarray | None:
        """(positions, C, C) float32 for the core's Gaussian copula, per patch position a square root
        A (rows of unit norm) of the correlation of the channels' fine detail over the known part of
        its 3K x 3K window; None draws every value independently (not coupled, or C = 1)."""
        if self._detail_sums is None:
            return None
        h, w, c = self.image.shape
        k = self.patch
        ys, xs = np.array(positions, np.int64).reshape(-1, 2).T
        first, second = self._detail_sums

        def box(table, y0, y1, x0, x1):  # sums over [y0, y1) x [x0, x1) per position
            return table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]

        y0, y1 = np.maximum(ys - k, 0), np.minimum(ys + 2 * k, h)
        x0, x1 = np.maximum(xs - k, 0), np.minimum(xs + 2 * k, w)
        known = np.maximum((y1 - y0) * (x1 - x0) - k * k, 1).astype(np.float64)[:, None]  # 0 for a K x K image
        mean = (box(first, y0, y1, x0, x1) - box(first, ys, ys + k, xs, xs + k)) / known
        moment = (box(second, y0, y1, x0, x1) - box(second, ys, ys + k, xs, xs + k)) / known[:, :, None]
        cov = moment - mean[:, :, None] * mean[:, None, :]
        std = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 0, None))
        scale = std[:, :, None] * std[:, None, :]
        corr = np.where(scale > 1e-6, cov / np.where(scale > 1e-6, scale, 1.0), 0.0)
        corr[:, np.arange(c), np.arange(c)] = 1.0
        values, vectors = np.linalg.eigh(corr)
        root = (vectors * np.sqrt(np.clip(values, 0, None))[:, None, :]) @ vectors.transpose(0, 2, 1)
        root /= np.maximum(np.linalg.norm(root, axis=2, keepdims=True), 1e-12)
        return np.ascontiguousarray(root, np.float32)

    def describe(self) -> dict:
        return {"name": self.name, "couple_channels": self.couple_channels}

    def _windows(self, positions: list[tuple[int, int]]) -> np.ndarray:
        """(positions, C + 1, 3K, 3K) float32 network inputs: the image mirrored at its border
        (np.pad "symmetric"), the patch blanked and flagged in the mask channel."""
        c, k = self.image.shape[2], self.patch
        if self._mirrored is None:
            self._mirrored = np.pad(self.image, ((k, k), (k, k), (0, 0)), mode="symmetric").transpose(2, 0, 1) / 255.0
        batch = np.zeros((len(positions), c + 1, 3 * k, 3 * k), np.float32)
        for i, (y, x) in enumerate(positions):  # window rows y - K .. y + 2K are padded rows y .. y + 3K
            batch[i, :c] = self._mirrored[:, y:y + 3 * k, x:x + 3 * k]
        batch[:, :c, k:2 * k, k:2 * k] = 0.0
        batch[:, c, k:2 * k, k:2 * k] = 1.0
        return batch

    def sample(self, ys, xs, streams, seed):
        k, c = self.patch, self.image.shape[2]
        row_of: dict[tuple[int, int], int] = {}
        rows = np.array([row_of.setdefault(p, len(row_of)) for p in zip(ys.tolist(), xs.tolist())], np.int64)
        positions = list(row_of)
        out = np.asarray(self.session.run([self.output_name], {self.input_name: self._windows(positions)})[0])
        if out.shape == (len(positions), c, k, k):
            values = np.clip(out.transpose(0, 2, 3, 1) * 255.0, 0, 255).astype(np.float32)
            return np.ascontiguousarray(values[rows])
        if out.shape == (len(positions), c, k, k, 256):
            logits = out.transpose(0, 2, 3, 1, 4).reshape(len(positions), c * k * k, 256).astype(np.float32)
            logits -= logits.max(axis=2, keepdims=True)
            probabilities = np.exp(logits)
            probabilities /= probabilities.sum(axis=2, keepdims=True)
            drawn = _core.categorical_patches(probabilities, rows, streams, seed, self.threads,
                                              self._coupling(positions))
            return drawn.reshape(len(ys), k, k, c)
        if out.ndim == 5 and out.shape[:4] == (len(positions), c, k, k) and out.shape[4] % 3 == 0:
            params = out.transpose(0, 2, 3, 1, 4).reshape(len(positions), c * k * k, out.shape[4])
            drawn = _core.logistic_mixture_patches(np.ascontiguousarray(params, np.float32), rows, streams, seed,
                                                   self.threads, self._coupling(positions))
            return drawn.reshape(len(ys), k, k, c)
        raise OnnxplainError(f"the ONNX sampler returned shape {out.shape}; expected (N, {c}, {k}, {k}), "
                             f"(N, {c}, {k}, {k}, 256) or (N, {c}, {k}, {k}, 3M) for N = {len(positions)} windows "
                             f"of a {c}-channel image")


LEARNED_SAMPLER = Path(__file__).resolve().parent / "data" / "patch_sampler.onnx"


@lru_cache(maxsize=4)
def _learned_session(providers: tuple[str, ...] | None, threads: int = 0):
    from .model import _open_session

    return _open_session(LEARNED_SAMPLER, providers, threads, spinning=False)


class LearnedSampler(OnnxSampler):
    """The patch sampler trained in this repository (``tools/train_patch_sampler.py``; its held-out
    bits per subpixel against the Gaussian's and its effect on the maps: bench/README.md): a CNN that gives each pixel
    and channel of a K x K patch a 256-level distribution (a mixture of discretised logistics,
    output as its parameters) from the 3K x 3K window around it, the centre blanked, like the
    authors' PatchSampler; drawn as ``OnnxSampler`` draws (couple_channels). For RGB images and
    the patch size it was trained for (8)."""

    name = "learned"

    def __init__(self, providers: Sequence[str] | None = None, couple_channels: bool = True) -> None:
        self.providers = tuple(providers) if providers else None
        super().__init__(_learned_session(self.providers), couple_channels=couple_channels)
        self.trained_patch = int(self.session.get_modelmeta().custom_metadata_map.get("onnxplain.patch", "8"))

    def prepare(self, model, image, patch):
        if image.shape[2] != 3:
            raise OnnxplainError(f"sampler='learned' is trained on RGB patches; this model takes {image.shape[2]} "
                                 f"channel{'s' * (image.shape[2] != 1)}: use sampler='gaussian' (CLI: --sampler gaussian)")
        if patch != self.trained_patch:
            raise OnnxplainError(f"sampler='learned' is trained for patch {self.trained_patch}, not {patch}: use "
                                 f"patch={self.trained_patch} (CLI: --patch {self.trained_patch}) or sampler='gaussian'")
        super().prepare(model, image, patch)
        self.session = _learned_session(self.providers, model.threads)  # the model's thread budget

    def describe(self) -> dict:
        return {**super().describe(), "patch": self.trained_patch, "file": LEARNED_SAMPLER.name}


def make_sampler(sampler: str | PatchSampler, *, frame: int = DEFAULT_FRAME, references=None, noise: float = 0.0,
                 value: str | float = "mean", channels: int = 3, patch: int = 8) -> PatchSampler:
    """A sampler from its name (see SAMPLERS) or the instance itself. "auto": the learned sampler
    where it applies (RGB, its patch size, no references= to fit on), else the Gaussian."""
    if isinstance(sampler, PatchSampler):
        return sampler
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise OnnxplainError(f"sampler must be one of {SAMPLERS} or a PatchSampler, got {sampler!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.floating)) or not 0 <= noise < np.inf:
        raise OnnxplainError(f"noise must be a finite number >= 0, got {noise!r}")
    check_frame(frame)
    chosen: PatchSampler | None = None
    if sampler == "auto":
        if references is None and channels == 3:  # only then is the learned sampler's file opened
            learned = LearnedSampler()
            chosen = learned if patch == learned.trained_patch else None
        sampler = "learned" if chosen else "gaussian"
    if sampler == "gaussian":
        return GaussianSampler(frame=frame, references=references)
    if frame != DEFAULT_FRAME:
        warn(f"frame={frame} (CLI: --frame) is the gaussian sampler's; the {sampler} sampler ignores it "
             "(pass sampler='gaussian' to use it)")
    if sampler == "learned":
        return chosen or LearnedSampler()
    if sampler == "marginal":
        return MarginalSampler(references, noise)
    if sampler == "inpaint":
        return InpaintSampler(noise=noise)
    if sampler == "constant":
        return ConstantSampler(value)
    return BlurSampler()


# ---- the estimator ---------------------------------------------------------------------

def perturbation_sums(batches: Batches, prepared: PreparedInput, sampler: PatchSampler, ys: np.ndarray,
                      xs: np.ndarray, ns: np.ndarray, rows: np.ndarray, sums: np.ndarray, seed: int) -> int:
    """Adds the model's probabilities for perturbations (ys, xs, ns) (int64: patch offsets and sample
    index n) of the prepared image to sums[rows] ((patches, classes) float64, in place), in
    perturbation order. Returns how many were added: all of them, or fewer when the batches stopped
    (a deadline or cancellation; the first ones, in order)."""
    width = prepared.mask_shape[1]
    done = 0

    def fill(first: int, count: int, out: np.ndarray) -> np.ndarray:
        index = np.arange(first, first + count)
        by, bx = np.ascontiguousarray(ys[index]), np.ascontiguousarray(xs[index])
        streams = ((by * width + bx) * SAMPLE_SLOTS + ns[index]).astype(np.uint64)
        prepared.paste(sampler.sample(by, bx, streams, seed), by, bx, out)
        return rows[index]

    def consume(patch: np.ndarray, probabilities: np.ndarray) -> None:
        nonlocal done
        values = probabilities.astype(np.float64)
        for i, p in enumerate(patch):
            sums[p] += values[i]
        done += len(patch)

    with suppress(Stopped):
        batches.stream(len(ys), fill, consume, "probabilities")
    return done


def scores_of(sums: np.ndarray, counts: np.ndarray, clean: np.ndarray, targets: list[int], eps: float = EPS,
              multilabel: bool = False) -> np.ndarray:
    """Scores from probability sums (count, classes) over counts (count,) samples: (count, 1 + T)
    float64, column 0 IG, columns 1.. PMI of each target. IG is KL(p(Y|x) || p(Y|x without the
    patch)); for a multi-label model (independent p_c) it is sum_c KL(Bern(p_c(x)) || Bern(q_c))."""
    p = clean.astype(np.float64)
    q = sums / counts[:, None]
    log_ratio = np.log(p + eps)[None, :] - np.log(q + eps)
    ig = log_ratio @ p
    if multilabel:  # the "absent" outcome of each class: (1 - p_c) ln((1 - p_c) / (1 - q_c))
        ig += (np.log(1 - p + eps)[None, :] - np.log(1 - q + eps)) @ (1 - p)
    return np.concatenate([ig[:, None], log_ratio[:, targets]], axis=1)


def patch_scores(batches: Batches, prepared: PreparedInput, sampler: PatchSampler, ys: np.ndarray, xs: np.ndarray,
                 samples: int, seed: int, clean: np.ndarray, targets: list[int], eps: float = EPS,
                 multilabel: bool = False) -> np.ndarray:
    """Scores of patches at (ys, xs) (int64, already prepared sampler) with samples 0..samples-1
    each: (count, 1 + T) float64 (see `scores_of`). Streams the count * samples perturbations
    (patch-major) through the model; sample sums run in sample order in float64."""
    rows = np.repeat(np.arange(len(ys)), samples)
    ns = np.tile(np.arange(samples, dtype=np.int64), len(ys))
    sums = np.zeros((len(ys), clean.shape[0]))
    perturbation_sums(batches, prepared, sampler, ys[rows], xs[rows], ns, rows, sums, seed)
    return scores_of(sums, np.full(len(ys), float(samples)), clean, targets, eps, multilabel)


class PatchEstimates:
    """Running estimates of the scores of every patch of a grid (flat indices), one sample at a
    time: sample n of a patch is always the same draw, and its probabilities are summed in sample
    order, so a patch with n samples has exactly the dense n-sample estimate. Probability sums are
    kept only for the patches evaluated so far (one row each, in order of first evaluation).

    draw(patches, ns, sums, rows) -> added: adds the probabilities of sample ns[j] of patch
    patches[j] to sums[rows[j]] for the first `added` j (all of them unless stopped);
    score(sums, counts) -> (count, C) scores. capacity: the most patches that will be evaluated,
    when known (rows are then allocated once, without the copies of geometric growth)."""

    def __init__(self, size: int, classes: int, draw: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], int],
                 score: Callable[[np.ndarray, np.ndarray], np.ndarray], capacity: int = 0) -> None:
        self.counts = np.zeros(size, np.int64)
        self.rows = np.full(size, -1, np.int64)  # patch -> its row of _sums (-1: never given one)
        self._sums = np.zeros((min(size, capacity), classes))
        self.scores: np.ndarray | None = None  # (size, C) once the first patch is scored
        self.change = np.full(size, -1.0)  # normalised change of the estimate at its last sample (-1: unknown)
        self._draw, self._score = draw, score

    @property
    def sums(self) -> np.ndarray:
        """Probability sums (size, classes) float64 of every patch (0 where never evaluated)."""
        full = np.zeros((len(self.counts), self._sums.shape[1]))
        seen = self.rows >= 0
        full[seen] = self._sums[self.rows[seen]]
        return full

    @property
    def evaluations(self) -> int:
        """Samples drawn so far, over every patch."""
        return int(self.counts.sum())

    @property
    def columns(self) -> int:
        """The number of scores per patch, C."""
        return self._score(np.zeros((0, self._sums.shape[1])), np.zeros(0)).shape[1]

    def _rows_of(self, indices: np.ndarray) -> np.ndarray:
        """The sum rows of patches (distinct), new rows for patches never given one."""
        new = indices[self.rows[indices] < 0]
        used = int((self.rows >= 0).sum())
        if used + len(new) > len(self._sums):  # grow geometrically
            grown = np.zeros((max(used + len(new), 2 * len(self._sums)), self._sums.shape[1]))
            grown[:used] = self._sums[:used]
            self._sums = grown
        self.rows[new] = np.arange(used, used + len(new))
        return self.rows[indices]

    def add(self, indices: np.ndarray, samples: int = 1) -> None:
        """One more sample (`samples` more) for each of `indices` (distinct), patch by patch; their
        scores are then in `scores[indices]`. Raises `Stopped` when the batches stopped first: the
        patches reached keep the samples they got (each still an exact n-sample estimate)."""
        indices = np.asarray(indices, np.int64)
        rows = self._rows_of(indices)
        patches = np.repeat(indices, samples)
        ns = (self.counts[patches] + np.tile(np.arange(samples), len(indices))).astype(np.int64)
        added = self._draw(patches, ns, self._sums, np.repeat(rows, samples))
        got = np.clip(added - samples * np.arange(len(indices)), 0, samples)  # samples each patch received
        reached = got > 0
        indices, rows, got = indices[reached], rows[reached], got[reached]
        if indices.size:
            before = self.scores[indices] if self.scores is not None else None
            self.counts[indices] += got
            scores = self._score(self._sums[rows], self.counts[indices].astype(np.float64))
            if self.scores is None:
                self.scores = np.zeros((len(self.counts), scores.shape[1]))
            self.scores[indices] = scores
            if before is not None:
                grown = self.counts[indices] > got
                scale = np.maximum(np.abs(self.scores).max(axis=0), 1e-300)
                self.change[indices] = np.where(grown, (np.abs(scores - before) / scale).max(axis=1)
                                                * self.counts[indices], -1.0)
        if added < len(patches):
            raise Stopped


def pixel_maps(scores: np.ndarray, ys: np.ndarray, xs: np.ndarray, patch: int, size: tuple[int, int]) -> np.ndarray:
    """Per-pixel mean of the scores (count, C) of the K x K patches at (ys, xs) covering each pixel:
    (C, H, W) float64 (NaN where no patch covers a pixel)."""
    h, w = size
    total = np.zeros((scores.shape[1], h + 1, w + 1))
    cover = np.zeros((h + 1, w + 1))
    for dy, dx, sign in ((0, 0, 1), (patch, 0, -1), (0, patch, -1), (patch, patch, 1)):
        np.add.at(total, (slice(None), ys + dy, xs + dx), sign * scores.T)
        np.add.at(cover, (ys + dy, xs + dx), sign)
    total = total.cumsum(axis=1).cumsum(axis=2)[:, :h, :w]
    cover = np.rint(cover.cumsum(axis=0).cumsum(axis=1)[:h, :w])
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / cover


def _weights(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(len(target), len(source)) linear interpolation weights from sorted coordinates `source`
    to `target` (inside their range)."""
    hi = np.clip(np.searchsorted(source, target, side="right"), 1, len(source) - 1)
    lo = hi - 1
    span = (source[hi] - source[lo]).astype(np.float64)
    t = np.clip((target - source[lo]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    weights = np.zeros((len(target), len(source)))
    rows = np.arange(len(target))
    np.add.at(weights, (rows, lo), 1 - t)
    np.add.at(weights, (rows, hi), t)
    return weights


def _interpolate(values: np.ndarray, iy: np.ndarray, ix: np.ndarray, ty: np.ndarray, tx: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of lattice values (C, len(iy), len(ix)) onto the lattice (ty, tx),
    coordinates in grid indices: (C, len(ty), len(tx))."""
    if len(iy) == 1 or len(ix) == 1:
        raise OnnxplainError("the coarse lattice needs at least 2 x 2 positions")
    return _weights(iy, ty) @ values @ _weights(ix, tx).T


def _lattice(n: int, spacing: int) -> np.ndarray:
    return np.unique(np.r_[np.arange(0, n, spacing), n - 1])


def _normalised(values: np.ndarray) -> np.ndarray:
    """|v - median| / max |v - median| per channel of (C, ...) values."""
    centred = np.abs(values - np.median(values.reshape(len(values), -1), axis=1).reshape((-1,) + (1,) * (values.ndim - 1)))
    scale = centred.reshape(len(values), -1).max(axis=1)
    return centred / np.where(scale > 0, scale, 1.0).reshape((-1,) + (1,) * (values.ndim - 1))


def budgeted_scores(estimates: PatchEstimates, ny: int, nx: int, budget: int, samples: int,
                    max_samples: int, every_position: bool = False) -> tuple[np.ndarray, dict, dict]:
    """Coarse-to-fine estimate of the score field on an ny x nx grid, then adaptive N.

    estimates: the grid's running estimates (flat row-major indices). Returns the field
    (ny * nx, C), a record of the levels and the convergence (see below). The first lattice takes
    the smallest power-of-two spacing whose evaluation (`samples` per patch) fits in COARSE_SHARE
    of the budget. Each finer level evaluates the new positions whose priority (normalised
    interpolated score plus the spread of the evaluated neighbours) exceeds REFINE_FLOOR, at most
    twice an equal share of what is left; the finest level spends what is left in priority order;
    the rest is interpolated. The first lattice is itself visited coarse to fine. When every
    position is evaluated, the remaining budget goes to extra samples (adaptive N, at most
    max_samples per patch) in rounds, each to the half of the patches whose estimate is least
    stable (see `_instability`). every_position: evaluate every position
    of every level, no extra samples (the dense answer, visited coarse to fine).

    When the estimates' batches stop (a deadline or cancellation), the positions reached keep their
    estimates and the rest is interpolated from the last lattice (nearest evaluated position on the
    first one). Convergence: positions evaluated (`positions` of `of`), evaluations, and the
    Spearman correlation between the fields of the last two levels (mean over scores; None before
    the second level).
    """
    spacing = 1
    while (spacing * 2 < max(ny, nx)
           and len(_lattice(ny, spacing)) * len(_lattice(nx, spacing)) * samples > COARSE_SHARE * budget):
        spacing *= 2
    iy, ix = _lattice(ny, spacing), _lattice(nx, spacing)
    if iy.size * ix.size * samples > budget:
        raise OnnxplainError(f"budget {budget} is below the coarsest lattice's {iy.size * ix.size * samples} evaluations; "
                             f"raise it or lower budget_samples")
    yy, xx = np.meshgrid(iy, ix, indexing="ij")
    stopped = not _added(estimates, (yy * nx + xx).ravel()[coarse_to_fine(*yy.shape)], samples)
    values = _nearest_evaluated(estimates, yy * nx + xx)
    measured = estimates.counts[yy * nx + xx] > 0
    levels = [{"spacing": spacing, "patches": int(measured.sum())}]
    last_levels = None  # (interpolated, refined) fields of the last level that evaluated positions
    while spacing > 1:
        spacing //= 2
        ty, tx = _lattice(ny, spacing), _lattice(nx, spacing)
        fine = _interpolate(values, iy, ix, ty, tx)
        known = np.zeros((len(ty), len(tx)), bool)
        known[np.ix_(np.searchsorted(ty, iy), np.searchsorted(tx, ix))] = measured
        candidates = np.flatnonzero(~known.ravel())
        if stopped:
            chosen = candidates[:0]
        elif every_position:
            chosen = candidates
        else:
            # spread of the parent values around each fine point: where interpolation is least sure
            spread = _interpolate(_dilate_max(values) + _dilate_max(-values), iy, ix, ty, tx)
            spread /= np.maximum((values.max(axis=(1, 2)) - values.min(axis=(1, 2)))[:, None, None], 1e-30)
            priority = (_normalised(fine) + spread).max(axis=0).ravel()
            share = (budget - estimates.evaluations) // samples
            if spacing > 1:
                share = min(int((priority[candidates] > REFINE_FLOOR).sum()), 2 * share // (int(np.log2(spacing)) + 1))
            chosen = candidates[np.argsort(-priority[candidates], kind="stable")[:max(0, share)]]
        if chosen.size:
            cy, cx = np.unravel_index(chosen, known.shape)
            flat = ty[cy] * nx + tx[cx]
            stopped = not _added(estimates, flat, samples)
            reached = estimates.counts[flat] > 0
            cy, cx = cy[reached], cx[reached]
            interpolated = fine.copy()
            fine[:, cy, cx] = estimates.scores[flat[reached]].T
            known[cy, cx] = True
            last_levels = (interpolated, fine.copy())
        levels.append({"spacing": spacing, "patches": int(known.sum() - measured.sum())})
        values, measured, iy, ix = fine, known, ty, tx
    extra = []
    while not (stopped or every_position) and measured.all() and estimates.evaluations < budget:
        open_ = np.flatnonzero(estimates.counts < max_samples)
        if not open_.size:
            break
        share = min(budget - estimates.evaluations, max(1, (open_.size + 1) // 2))
        chosen = np.sort(open_[np.argsort(-_instability(estimates)[open_], kind="stable")[:share]])
        before = estimates.evaluations
        stopped = not _added(estimates, chosen)
        values[:, chosen // nx, chosen % nx] = estimates.scores[chosen].T
        extra.append(estimates.evaluations - before)
    record = {"levels": levels, "evaluated": estimates.evaluations}
    if extra:
        record["extra_samples"] = extra
    convergence = {"positions": int((estimates.counts > 0).sum()), "of": ny * nx,
                   "evaluations": estimates.evaluations,
                   "levels_spearman": None if last_levels is None else _spearman(*last_levels)}
    return values.reshape(len(values), -1).T, record, convergence


def _added(estimates: PatchEstimates, indices: np.ndarray, samples: int = 1) -> bool:
    """`estimates.add`: False when the batches stopped before every sample was drawn."""
    try:
        estimates.add(indices, samples)
    except Stopped:
        return False
    return True


def _nearest_evaluated(estimates: PatchEstimates, lattice: np.ndarray) -> np.ndarray:
    """Scores (C, *lattice.shape) at the flat grid indices `lattice`: each position's estimate, or
    that of the nearest evaluated position of the lattice (0 when none is)."""
    evaluated = estimates.counts[lattice] > 0
    if not evaluated.any():
        return np.zeros((estimates.columns,) + lattice.shape)
    if not evaluated.all():
        _, nearest = distance_transform_edt(~evaluated, return_indices=True)
        lattice = lattice[tuple(nearest)]
    return np.moveaxis(estimates.scores[lattice], -1, 0)


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean over channels of the Spearman correlation of (C, ...) fields a and b (None if constant)."""
    rhos = [spearmanr(x.ravel(), y.ravel())[0] for x, y in zip(a, b) if np.ptp(x) > 0 and np.ptp(y) > 0]
    return float(np.mean(rhos)) if rhos else None


def _instability(estimates: PatchEstimates) -> np.ndarray:
    """Priority of a patch for one more sample, (patches,): for patches sampled one at a time
    already, how much their last sample moved the estimate (times the count, normalised per score
    by its largest magnitude: a deviation of that sample, so it shrinks as the estimate settles);
    for the others (no spread known yet), the normalised magnitude of the score."""
    magnitude = (np.abs(estimates.scores) / np.maximum(np.abs(estimates.scores).max(axis=0), 1e-300)).max(axis=1)
    return np.where(estimates.change < 0, magnitude, estimates.change)


def _dilate_max(values: np.ndarray) -> np.ndarray:
    """3 x 3 maximum filter of each channel of (C, h, w)."""
    return np.stack([cv2.dilate(v.astype(np.float64), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
                     for v in values])


# ---- explainers ------------------------------------------------------------------------

class _Information(Explainer):
    """Shared engine of IG and PMI (see the module doc)."""

    default_target: Target = None

    def _compute(self, run: Run, patch, stride, samples, mode, budget, budget_samples, sampler, frame, references,
                 noise, seed, eps) -> tuple[np.ndarray, dict, int, dict | None]:
        """(maps (1 + T, H, W) float32: IG then PMI of each target, params, seed, convergence: None
        unless the run may stop early) of one run."""
        image, probabilities, targets = run.image, run.probabilities, run.targets
        multilabel = self.model.output_kind == "sigmoid"
        h, w = self.model.input_size
        patch = positive_int("patch", patch)
        stride = positive_int("stride", stride)
        samples = positive_int("samples", samples)
        if patch > min(h, w):
            raise OnnxplainError(f"patch {patch} is larger than the image ({h} x {w})")
        if stride > patch:
            raise OnnxplainError(f"stride {stride} is larger than the patch {patch}: pixels would be left uncovered")
        if mode not in MODES:
            raise OnnxplainError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "budgeted":
            budget = positive_int("budget", budget)
            budget_samples = positive_int("budget_samples", budget_samples)
        if max(samples, budget_samples if mode == "budgeted" else 1) > SAMPLE_SLOTS:
            raise OnnxplainError(f"at most {SAMPLE_SLOTS} samples per patch")
        seed = check_seed(seed)
        if not (isinstance(eps, (int, float)) and 0 < eps < 1):
            raise OnnxplainError(f"eps must be a number in (0, 1), got {eps!r}")
        chosen = make_sampler(sampler, frame=frame, references=references, noise=noise, channels=image.shape[2],
                              patch=patch)
        chosen.prepare(self.model, image, patch)
        prepared = run.prepare(image)  # patches are pasted into the image itself
        gy, gx = _core.window_positions(h, patch, stride), _core.window_positions(w, patch, stride)

        yy, xx = np.meshgrid(gy, gx, indexing="ij")
        yy, xx = yy.ravel(), xx.ravel()
        params = {"patch": patch, "stride": stride, "mode": mode, "sampler": chosen.describe(), "eps": eps}
        if mode == "budgeted":
            if yy.size * samples <= budget or min(len(gy), len(gx)) < 2:  # the exact answer is affordable
                mode = "dense"
                params.update(budget=budget, mode="dense (within budget)")
        convergence = None
        if mode == "dense" and run.batches.stop is None:
            field = patch_scores(run.batches, prepared, chosen, yy.astype(np.int64), xx.astype(np.int64), samples, seed,
                                 probabilities, targets, eps, multilabel)
        else:  # budgeted, or dense visited coarse to fine so that a stop leaves a whole map
            if mode == "budgeted" and budget * WEAK_BUDGET_SHARE < yy.size:
                run.warn(f"budget {budget} evaluates under 1/{WEAK_BUDGET_SHARE} of the {yy.size} patch positions: most of "
                         f"the map is interpolated; raise budget (CLI: --budget) or stride (--stride)")

            def draw(patches, ns, sums, rows):
                return perturbation_sums(run.batches, prepared, chosen, yy[patches].astype(np.int64),
                                         xx[patches].astype(np.int64), ns, rows, sums, seed)

            dense = mode == "dense"
            estimates = PatchEstimates(yy.size, probabilities.shape[0], draw,
                                       lambda sums, counts: scores_of(sums, counts, probabilities, targets, eps, multilabel),
                                       capacity=0 if dense else -(-budget // budget_samples))
            field, record, convergence = budgeted_scores(
                estimates, len(gy), len(gx), yy.size * samples if dense else budget,
                samples if dense else budget_samples, max(samples, 1 if dense else budget_samples), every_position=dense)
            if not dense:
                params.update(budget=budget, samples=budget_samples, max_samples=max(samples, budget_samples), **record)
            if run.batches.stop is None:
                convergence = None
        if mode == "dense":
            params.update(samples=samples, patches=int(yy.size))
        maps = pixel_maps(field, yy, xx, patch, (h, w)).astype(np.float32)
        return maps, params, seed, convergence

    def attribute(self, image: np.ndarray, target: Target = "default", *, patch: int = 8, stride: int = 1,
                  samples: int = 8, mode: str = "budgeted", budget: int = 3000, budget_samples: int = 1,
                  sampler: str | PatchSampler = "auto", frame: int = DEFAULT_FRAME, references=None, noise: float = 0.0,
                  eps: float = EPS, deadline: float | None = None, cancel: threading.Event | None = None,
                  seed: int = 0) -> Explanation:
        """Maps (H x W float32) at model resolution; see the class doc for what they hold.

        patch, stride: K and S in pixels; samples: N per patch in dense mode; mode: "budgeted"
        (at most `budget` evaluations, `budget_samples` per evaluated patch) or "dense" (exact:
        N * ((H-K)/S + 1)^2 evaluations); sampler: a name from SAMPLERS or a PatchSampler; frame:
        the Gaussian sampler's frame F; references: images or a directory for the gaussian
        (fit) and marginal samplers; noise: pixel noise of the marginal and inpaint samplers;
        eps: added to both probabilities in the PMI ratio. deadline (seconds) / cancel (an Event):
        stop early with the positions evaluated so far (coarse to fine; the rest interpolated),
        `complete` False and `convergence` the share of grid positions evaluated and the Spearman
        correlation between the last two levels.
        """
        if isinstance(target, str) and target == "default":
            target = self.default_target
        with self.run(image, target, deadline=deadline, cancel=cancel) as run:
            computed = self._compute(run, patch, stride, samples, mode, budget, budget_samples, sampler,
                                     frame, references, noise, seed, eps)
            return self._result(run, *computed)

    def _result(self, run: Run, maps: np.ndarray, params: dict, seed: int, convergence: dict | None) -> Explanation:
        result = run.finish(self._select(maps, run.targets, run.probabilities), params, seed,
                            complete=not run.batches.stopped, convergence=convergence)
        result.method = self.method  # information_maps: one run, two results
        result.signed = True if self.method == "pmi" else None  # PMI: diverging colours centred on 0
        return result

    def _select(self, maps, targets, probabilities) -> dict[int, np.ndarray]:
        raise NotImplementedError


class PMI(_Information):
    """Pointwise mutual information maps (Information-theoretic saliency, PMI_i(y)): one signed
    map per target class (default the top 3), in nats; > 0 where the patch supports the class."""

    method = "pmi"
    default_target = "top3"

    def _select(self, maps, targets, probabilities):
        return {t: maps[1 + i] for i, t in enumerate(targets)}


class IG(_Information):
    """Information gain map: KL(p(Y|x) || p(Y|x without the patch)) in nats, >= 0; one map,
    independent of the class, keyed by the top-1 class."""

    method = "ig"

    def _select(self, maps, targets, probabilities):
        return {int(np.argmax(probabilities)): maps[0]}


def information_maps(model: Model, image: np.ndarray, target: Target = "top3", **options) -> tuple[Explanation, Explanation]:
    """IG and PMI from one shared set of evaluations: (ig_result, pmi_result); options as in
    `PMI.attribute`. Both records carry the shared evaluation count and time."""
    arguments = (options.pop("patch", 8), options.pop("stride", 1), options.pop("samples", 8),
                 options.pop("mode", "budgeted"), options.pop("budget", 3000), options.pop("budget_samples", 1),
                 options.pop("sampler", "auto"), options.pop("frame", DEFAULT_FRAME), options.pop("references", None),
                 options.pop("noise", 0.0), options.pop("seed", 0), options.pop("eps", EPS))
    deadline, cancel = options.pop("deadline", None), options.pop("cancel", None)
    if options:
        raise OnnxplainError(f"unknown options {sorted(options)}")
    engine = PMI(model)
    with engine.run(image, target, deadline=deadline, cancel=cancel) as run:
        computed = engine._compute(run, *arguments)
        return IG(model)._result(run, *computed), engine._result(run, *computed)


__all__ = ["IG", "PMI", "PatchSampler", "GaussianSampler", "MarginalSampler", "InpaintSampler", "ConstantSampler",
           "BlurSampler", "OnnxSampler", "LearnedSampler", "SAMPLERS", "information_maps", "make_sampler", "patch_scores", "pixel_maps"]
