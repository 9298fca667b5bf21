"""Discriminative attribution from counterfactuals (DAC): which regions make an image class B
rather than class A, and how well a map answers that (the mask-swap score).

    pair = make_pair(model, real, counterfactual)          # or generator=..., references=...
    result = discriminative_map(model, pair, "d-occlusion")  # an Explanation, map for class B
    swap = mask_swap(model, pair, result[pair.class_b])      # curve, DAC score, best mask/hybrid

Conventions (see docs/CONVENTIONS.md): images are float32 0..255, H x W x C (the model's channels)
at the model's resolution; every model evaluation goes through ``Batches`` (batches built by the
C++ core) or ``Model.predict``.

Counterfactual sources:
- given by the user (an image file or array);
- an image-to-image ONNX generator run on x_r. Contract: one input, NCHW float32 (N, C, H, W)
  at the classifier's resolution and channels, in the value range ``generator_range`` ("0..255" default,
  "0..1" or "-1..1", the usual CycleGAN range); one output of the same shape and range. An NHWC
  generator (last dimension C) is accepted too. The output is clipped to the range.
- retrieval: the reference image nearest to x_r (mean squared difference of 32 x 32 area-
  downscaled copies) among those the model classifies as B with p(B) > min_confidence
  (B = any class other than A when not given: each reference's own top-1).
Every pair is filtered (paper: 0.8, 0.8): p(A | x_r) > min_confidence[0] and
p(B | x_c) > min_confidence[1]; ``min_confidence=None`` disables the filter. A defaults to the
top-1 class of x_r, B to the top-1 class of x_c.

Maps (all for class B, seen from x_r; higher = pasting x_c there moves the model towards B):
- ``residual``: |x_r - x_c| summed over channels (no model evaluation).
- ``d-occlusion``: windows of x_c pasted into x_r; mean over covering windows of
  p(B | pasted) - p(B | x_r).
- ``d-pmi``: the same windows; mean over covering windows of ln(p(B | pasted) + eps) -
  ln(p(B | x_r) + eps), eps = 1e-6 by default: minus the PMI map of class B at x_r
  (``onnxplain.PMI``, dense) with x_c as its one-sample patch sampler.
- ``d-rise``: RISE masks m blending h = m * x_c + (1 - m) * x_r; map = sum_i p(B | h_i) m_i /
  (n_masks * p_keep) - p(B | x_r) (the expected p(B) when the pixel comes from x_c, minus the
  clean value).
- ``occlusion`` / ``rise``: the vanilla reference explainers (``onnxplain.Occlusion`` /
  ``onnxplain.RISE``) explaining x_r's own class A with a constant ("mean") or "blur" baseline,
  i.e. the usual "evidence for A" map; they never see x_c. This is what the D-versions are measured
  against.
- ``random``: |N(0, 1)| per pixel (NumPy's Philox bit generator keyed by the seed), Gaussian-
  smoothed with sigma = H / 16: the floor.

The mask-swap (DAC) score of a map a: scale a to [0, 1] ((a - min) / (max - min); a constant map
becomes 0); for each of ``n_thresholds`` (200) thresholds t evenly spaced on [0, 1], binarise
a > t, close it (``cv2.morphologyEx`` MORPH_CLOSE, 10 x 10 elliptical element) into the binary
mask, whose size m is its fraction of pixels; blur it (11 x 11 Gaussian, ``cv2.GaussianBlur``
sigma 0, i.e. 2.0) into the soft mask w; hybrid h = w * x_c + (1 - w) * x_r (core perturbation
with image = x_c, baseline = x_r, mask = w; identical masks are evaluated once);
delta = p(B | h) - p(B | x_r). The curve is the points (m, delta) plus the pinned ends (0, 0) and
(1, p(B | x_c) - p(B | x_r)), which override any threshold point of size exactly 0 or 1; where sizes
repeat the largest delta is kept; it is linearly interpolated onto 101 evenly spaced sizes and the
score is its trapezoid area. The dataset score averages the 101-point curves over pairs, then
integrates. The best threshold is the threshold point nearest (m, delta) = (0, 1) (first one on ties).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import registry
from .batches import Batches
from .errors import OnnxplainError, warn
from .explainer import check_seed, positive_int
from .fidelity import check_map
from .image import image_files, load_image
from .information import PMI, MarginalSampler
from .model import Model
from .reference import RISE, Occlusion, check_rise, rise_map, sliding_window_map, window_geometry
from .result import Explanation
from .visualize import Series, class_label, line_chart, map_figure, map_scale, save_png

# The maps discriminative_map computes, each registered as a pair method in registry.py; the
# front ends (explain_pair, `onnxplain counterfactual`) read the registry: `METHODS` below.
MAPS = ("residual", "d-occlusion", "d-rise", "d-pmi", "occlusion", "rise", "random")
D_METHODS = ("d-occlusion", "d-rise", "d-pmi")
GENERATOR_RANGES = {"0..255": (0.0, 255.0), "0..1": (0.0, 1.0), "-1..1": (-1.0, 1.0)}
RETRIEVAL_SIDE = 32
CURVE_POINTS = 101
MAX_THRESHOLDS = 10_000  # mask-swap thresholds: each is an H x W mask held at once


def __getattr__(name: str):
    if name == "METHODS":  # a live view of the registry: the pair methods, in registration order
        return tuple(registry.method_names("pair"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- pairs -------------------------------------------------------------------------------
@dataclass
class Pair:
    """A real image x_r (class A) and its counterfactual x_c (class B), both H x W x C float32.

    probabilities_real / probabilities_counterfactual: the model's class probabilities.
    source: how x_c was obtained ("given", "generator", "retrieval") with details.
    """

    real: np.ndarray = field(repr=False)
    counterfactual: np.ndarray = field(repr=False)
    class_a: int
    class_b: int
    probabilities_real: np.ndarray = field(repr=False)
    probabilities_counterfactual: np.ndarray = field(repr=False)
    source: dict = field(default_factory=dict)

    @property
    def p_a_real(self) -> float:
        return float(self.probabilities_real[self.class_a])

    @property
    def p_b_real(self) -> float:
        return float(self.probabilities_real[self.class_b])

    @property
    def p_b_counterfactual(self) -> float:
        return float(self.probabilities_counterfactual[self.class_b])

    @property
    def p_a_counterfactual(self) -> float:
        return float(self.probabilities_counterfactual[self.class_a])

    def record(self) -> dict:
        return {"class_a": self.class_a, "class_b": self.class_b, "p_a_real": self.p_a_real,
                "p_b_real": self.p_b_real, "p_a_counterfactual": self.p_a_counterfactual,
                "p_b_counterfactual": self.p_b_counterfactual, "source": self.source}


LOWER_CONFIDENCE = "lower min_confidence or pass min_confidence=None (CLI: --min-confidence, negative for none)"


def _confidences(min_confidence) -> tuple[float, float] | None:
    if min_confidence is None:
        return None
    values = (min_confidence, min_confidence) if np.isscalar(min_confidence) else tuple(min_confidence)
    if len(values) != 2 or not all(0 <= float(v) < 1 for v in values):
        raise OnnxplainError(f"min_confidence must be None, a number in [0, 1) or a pair of them, got {min_confidence!r} "
                             "(CLI: --min-confidence, negative for no filter)")
    return float(values[0]), float(values[1])


def _class(value, classes: int, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < classes:
        raise OnnxplainError(f"{name} {value!r} is not a class index in 0..{classes - 1} (CLI: --{name.replace('_', '-')})")
    return int(value)


def make_pair(model: Model, real, counterfactual=None, *, generator=None, references=None,
              class_a: int | None = None, class_b: int | None = None, min_confidence=0.8,
              generator_range: str = "0..255") -> Pair:
    """Builds and checks a (real, counterfactual) pair from exactly one source: `counterfactual`
    (image file or array), `generator` (ONNX path/bytes/InferenceSession or a callable on NCHW
    batches) or `references` (a directory or a list of image files/arrays)."""
    given = [s is not None for s in (counterfactual, generator, references)]
    if sum(given) != 1:
        raise OnnxplainError("give exactly one counterfactual source: an image, generator= or references= (CLI: the "
                             "COUNTERFACTUAL image, --generator or --reference)")
    thresholds = _confidences(min_confidence)
    real = load_image(real, model.input_size, model.channels) if isinstance(real, (str, Path)) else model.check_image(real)
    p_real = model.predict(real)
    classes = p_real.shape[0]
    class_a = _class(class_a, classes, "class_a")
    class_b = _class(class_b, classes, "class_b")
    if class_a is None:
        class_a = int(np.argmax(p_real))
    if thresholds is not None and p_real[class_a] <= thresholds[0]:
        raise OnnxplainError(
            f"the real image is not confidently class A={class_a}: p(A|x_r) = {p_real[class_a]:.3f} <= "
            f"{thresholds[0]}; to keep the pair, {LOWER_CONFIDENCE}")
    if counterfactual is not None:
        x_c = load_image(counterfactual, model.input_size, model.channels) if isinstance(counterfactual, (str, Path)) \
            else model.check_image(counterfactual)
        source = {"kind": "given"}
    elif generator is not None:
        x_c = run_generator(generator, real, generator_range)
        source = {"kind": "generator", "range": generator_range,
                  "generator": str(generator) if isinstance(generator, (str, Path)) else type(generator).__name__}
    else:
        x_c, source = _retrieve(model, real, references, class_a, class_b, thresholds)
    p_cf = model.predict(x_c)
    if class_b is None:
        class_b = int(np.argmax(p_cf))
    if class_b == class_a:
        raise OnnxplainError(
            f"the counterfactual is classified as the same class as the real image ({class_a}, p = "
            f"{p_cf[class_a]:.3f}); a counterfactual must change the decision (or pass class_b=, CLI: --class-b)")
    if thresholds is not None and p_cf[class_b] <= thresholds[1]:
        raise OnnxplainError(
            f"pair rejected by the filter: p(B|x_c) = {p_cf[class_b]:.3f} <= {thresholds[1]} for B={class_b} "
            f"(p(A|x_r) = {p_real[class_a]:.3f} for A={class_a}); to keep it, {LOWER_CONFIDENCE}")
    return Pair(real, x_c, class_a, class_b, p_real, p_cf, source)


def run_generator(generator, image: np.ndarray, value_range: str = "0..255") -> np.ndarray:
    """x_c = G(x_r) for an image-to-image generator (see the module docstring for the contract)."""
    if value_range not in GENERATOR_RANGES:
        raise OnnxplainError(f"generator_range must be one of {sorted(GENERATOR_RANGES)}, got {value_range!r}")
    low, high = GENERATOR_RANGES[value_range]
    x = (image.astype(np.float32) / 255.0 * (high - low) + low).transpose(2, 0, 1)[None].copy()
    if callable(generator) and not hasattr(generator, "get_inputs"):
        run, nhwc = generator, False
    else:
        from .model import _open_session

        session = _open_session(generator, None)
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1:
            raise OnnxplainError(f"the generator must have one input, it has {[i.name for i in inputs]}")
        shape = list(inputs[0].shape)
        channels = image.shape[2]
        nhwc = len(shape) == 4 and shape[3] == channels and shape[1] != channels
        name, out_name = inputs[0].name, outputs[0].name

        def run(batch):
            return session.run([out_name], {name: batch})[0]
    try:
        y = np.asarray(run(x.transpose(0, 2, 3, 1).copy() if nhwc else x), np.float32)
    except OnnxplainError:
        raise
    except Exception as exc:
        raise OnnxplainError(f"the generator failed on a {list(x.shape)} input: {str(exc).splitlines()[0][:300]}") from None
    if nhwc and y.ndim == 4:
        y = y.transpose(0, 3, 1, 2)
    if y.shape != x.shape:
        raise OnnxplainError(
            f"the generator returned shape {list(y.shape)} for input {list(x.shape)}; it must return an image of "
            f"the same shape (N, C, H, W)")
    if not np.all(np.isfinite(y)):
        raise OnnxplainError("the generator returned NaN or infinite values")
    y = (np.clip(y[0], low, high) - low) / (high - low) * 255.0
    return np.ascontiguousarray(y.transpose(1, 2, 0), np.float32)


def _reference_list(references) -> list[tuple[str, Any]]:
    if isinstance(references, (str, Path)):
        return [(str(p), p) for p in image_files(references)]
    items = list(references)
    if not items:
        raise OnnxplainError("the reference set is empty")
    return [(str(r) if isinstance(r, (str, Path)) else f"#{i}", r) for i, r in enumerate(items)]


def _small(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (RETRIEVAL_SIDE, RETRIEVAL_SIDE), interpolation=cv2.INTER_AREA).astype(np.float64)


def _retrieve(model, real, references, class_a, class_b, thresholds):
    items = _reference_list(references)
    images = np.stack([load_image(src, model.input_size, model.channels) for _, src in items])
    probabilities = np.concatenate([model.predict(images[i:i + model.batch_size])
                                    for i in range(0, len(images), model.batch_size)])
    threshold = thresholds[1] if thresholds is not None else 0.0
    target = probabilities.argmax(axis=1) if class_b is None else np.full(len(images), class_b)
    p_target = probabilities[np.arange(len(images)), target]
    ok = (target != class_a) & (p_target > threshold)
    if not ok.any():
        wanted = f"class B={class_b}" if class_b is not None else f"a class other than A={class_a}"
        raise OnnxplainError(
            f"no reference image of {len(images)} is classified as {wanted} with p > {threshold}; "
            f"add references or lower min_confidence (CLI: --min-confidence)")
    small_real = _small(real)
    distances = np.array([np.mean((_small(im) - small_real) ** 2) if keep else np.inf
                          for im, keep in zip(images, ok)])
    best = int(np.argmin(distances))
    return images[best], {"kind": "retrieval", "reference": items[best][0], "distance": float(distances[best]),
                          "candidates": int(ok.sum()), "references": len(images)}


# ---- maps --------------------------------------------------------------------------------
def discriminative_map(model: Model, pair: Pair, method: str, *, window: int | None = None,
                       stride: int | None = None, n_masks: int = 2000, grid: int = 7, p_keep: float = 0.5,
                       epsilon: float = 1e-6, baseline: str | float = "mean", seed: int = 0) -> Explanation:
    """One map (H x W float32) for class B (key pair.class_b) of the given method; see the module
    docstring. window/stride: D-occlusion, D-PMI and vanilla occlusion (default H // 8 and window // 2);
    n_masks/grid/p_keep: D-RISE and vanilla RISE; baseline: vanilla methods only."""
    if method not in MAPS:
        raise OnnxplainError(f"method must be one of {list(MAPS)}, got {method!r}")
    seed = check_seed(seed)
    h, w = model.input_size
    x_r, x_c, b = pair.real, pair.counterfactual, pair.class_b
    if method in ("occlusion", "rise"):
        explainer = (Occlusion if method == "occlusion" else RISE)(model, fidelity=None)  # scored by mask swap
        kwargs = {"window": window, "stride": stride} if method == "occlusion" else \
            {"n_masks": n_masks, "grid": grid, "p_keep": p_keep}
        result = explainer.attribute(x_r, target=pair.class_a, baseline=baseline, seed=seed, **kwargs)
        result.maps = {b: result.maps[pair.class_a]}
        result.params.update(explained_class=pair.class_a, note="vanilla: evidence for class A in x_r")
        return result
    start, evaluations = time.perf_counter(), 0
    p_clean = float(pair.probabilities_real[b])
    params: dict = {"class_a": pair.class_a, "class_b": b}
    if method == "residual":
        attribution = np.abs(x_r.astype(np.float64) - x_c).sum(axis=2)
    elif method == "random":
        rng = np.random.Generator(np.random.Philox(int(seed)))
        noise = np.abs(rng.standard_normal((h, w))).astype(np.float32)
        attribution = cv2.GaussianBlur(noise, (0, 0), sigmaX=h / 16)
        params["sigma"] = h / 16
    elif method == "d-occlusion":
        window, stride, total = window_geometry(model, window, stride)
        # occlusion masks are 0 in the window: masks * x_r + (1 - masks) * x_c pastes x_c's window
        with Batches(model, method) as batches:
            attribution = sliding_window_map(batches, model.prepare(x_r, x_c), window, stride,
                                             lambda s: s[:, b:b + 1] - p_clean, 1)[0][0]
        evaluations = batches.evaluations
        params.update(window=window, stride=stride, perturbations=total)
    elif method == "d-pmi":
        # PMI of class B at x_r with the counterfactual as the (one-sample) patch sampler, negated:
        # ln p(B | x_r with patch i from x_c) - ln p(B | x_r).
        window, stride, total = window_geometry(model, window, stride)
        if not epsilon > 0:
            raise OnnxplainError(f"epsilon must be > 0, got {epsilon}")
        pmi = PMI(model, fidelity=None).attribute(x_r, target=b, patch=window, stride=stride, samples=1, mode="dense",
                                   sampler=MarginalSampler([x_c]), eps=epsilon, seed=seed)
        attribution, evaluations = -pmi[b], pmi.evaluations
        params.update(window=window, stride=stride, perturbations=total, epsilon=epsilon)
    else:  # d-rise; image = x_c, baseline = x_r: h = m * x_c + (1 - m) * x_r
        n_masks, grid, p_keep = check_rise(model, n_masks, grid, p_keep)
        with Batches(model, method) as batches:
            attribution = rise_map(batches, model.prepare(x_c, x_r), [b], n_masks, grid, p_keep, int(seed))[0][0] - p_clean
        evaluations = batches.evaluations
        params.update(n_masks=n_masks, grid=grid, p_keep=p_keep)
    top = np.argsort(-pair.probabilities_real, kind="stable")[:5]
    return Explanation(method=method, maps={b: np.asarray(attribution, np.float32)}, params=params, seed=int(seed),
                       evaluations=evaluations, seconds=time.perf_counter() - start,
                       top_classes=[(int(c), float(pair.probabilities_real[c])) for c in top], image=x_r,
                       model=model.describe())


# ---- the mask-swap (DAC) score -----------------------------------------------------------
def curve_from_points(sizes, deltas, full_delta: float, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The DAC curve on `points` evenly spaced sizes in [0, 1] from threshold points (m, delta):
    pinned at (0, 0) and (1, full_delta), largest delta kept where sizes repeat, linear
    interpolation. Returns (sizes grid, curve)."""
    sizes = np.asarray(sizes, np.float64).ravel()
    deltas = np.asarray(deltas, np.float64).ravel()
    if sizes.shape != deltas.shape or np.any((sizes < 0) | (sizes > 1)) or not np.all(np.isfinite(deltas)):
        raise OnnxplainError("sizes and deltas must be equal-length finite arrays, sizes in [0, 1]")
    inner = (sizes > 0) & (sizes < 1)
    m = np.concatenate([[0.0], sizes[inner], [1.0]])
    d = np.concatenate([[0.0], deltas[inner], [float(full_delta)]])
    unique, inverse = np.unique(m, return_inverse=True)
    best = np.full(unique.shape, -np.inf)
    np.maximum.at(best, inverse, d)
    grid = np.linspace(0.0, 1.0, points)
    return grid, np.interp(grid, unique, best)


def area(grid: np.ndarray, curve: np.ndarray) -> float:
    """Trapezoid area under curve(grid)."""
    grid, curve = np.asarray(grid, np.float64), np.asarray(curve, np.float64)
    return float(np.sum((curve[1:] + curve[:-1]) * np.diff(grid)) / 2)


@dataclass
class MaskSwap:
    """A map's mask-swap sweep and DAC score for one pair.

    thresholds, sizes (m), deltas, probabilities_b: per threshold; grid, curve: the 101-point
    curve; score: its area; full_delta: p(B|x_c) - p(B|x_r); best: the threshold point nearest
    (0, 1), with best_mask (closed binary H x W bool), best_hybrid (H x W x C float32) and
    best_probabilities (all classes).
    """

    method: str
    thresholds: np.ndarray = field(repr=False)
    sizes: np.ndarray = field(repr=False)
    deltas: np.ndarray = field(repr=False)
    grid: np.ndarray = field(repr=False)
    curve: np.ndarray = field(repr=False)
    score: float
    full_delta: float
    best_index: int
    best_mask: np.ndarray = field(repr=False)
    best_hybrid: np.ndarray = field(repr=False)
    best_probabilities: np.ndarray = field(repr=False)
    class_a: int
    class_b: int
    evaluations: int
    seconds: float

    @property
    def best(self) -> dict:
        i = self.best_index
        return {"threshold": float(self.thresholds[i]), "size": float(self.sizes[i]), "delta": float(self.deltas[i]),
                "p_b": float(self.best_probabilities[self.class_b]), "p_a": float(self.best_probabilities[self.class_a])}

    def record(self) -> dict:
        return {"method": self.method, "dac_score": self.score, "full_swap_delta": self.full_delta,
                "best": self.best, "evaluations": self.evaluations, "seconds": round(self.seconds, 4),
                "curve": [round(float(v), 6) for v in self.curve]}


def _closed_masks(attribution: np.ndarray, thresholds: np.ndarray, closing: int) -> np.ndarray:
    a = attribution.astype(np.float64)
    span = a.max() - a.min()
    scaled = (a - a.min()) / span if span > 0 else np.zeros_like(a)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (closing, closing))
    out = np.empty((len(thresholds),) + a.shape, np.uint8)
    for i, t in enumerate(thresholds):
        out[i] = cv2.morphologyEx((scaled > t).astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    return out


def mask_swap(model: Model, pair: Pair, attribution: np.ndarray, *, method: str = "", n_thresholds: int = 200,
              closing: int = 10, blur: int = 11, points: int = CURVE_POINTS) -> MaskSwap:
    """The mask-swap sweep of one map (H x W) for a pair; see the module docstring."""
    start = time.perf_counter()
    if isinstance(attribution, Explanation):
        raise OnnxplainError(f"mask_swap takes one map: pass the explanation's map of class B, result[{pair.class_b}]")
    attribution = check_map(attribution)
    side = min(model.input_size)
    if attribution.shape != tuple(model.input_size):
        raise OnnxplainError(f"the map is {attribution.shape}, the model's resolution is {tuple(model.input_size)}")
    n_thresholds = positive_int("n_thresholds", n_thresholds)
    if n_thresholds > MAX_THRESHOLDS:
        raise OnnxplainError(f"n_thresholds must be at most {MAX_THRESHOLDS} (CLI: --thresholds), got {n_thresholds}")
    closing = positive_int("closing", closing)
    if closing > side:
        raise OnnxplainError(f"closing must be at most the image's side ({side} px), got {closing}")
    if positive_int("blur", blur) % 2 == 0:
        raise OnnxplainError(f"blur must be an odd kernel size, got {blur}")
    if positive_int("points", points) < 2:
        raise OnnxplainError(f"points must be at least 2 (the curve's sizes 0 and 1), got {points}")
    if attribution.max() == attribution.min():
        warn("the map is constant: its thresholds cannot order the pixels, so the sweep swaps nothing or everything")
    if pair.p_b_counterfactual <= pair.p_b_real:
        warn(f"the counterfactual does not raise p(B={pair.class_b}) ({pair.p_b_counterfactual:.3f} against "
             f"{pair.p_b_real:.3f} on the real image), so every swap score is 0 or below; pick another pair")
    thresholds = np.linspace(0.0, 1.0, n_thresholds)
    closed = _closed_masks(attribution, thresholds, closing)
    sizes = closed.reshape(len(thresholds), -1).mean(axis=1)
    keys = {}
    index = np.empty(len(thresholds), np.int64)
    for i, mask in enumerate(closed):
        index[i] = keys.setdefault(mask.tobytes(), len(keys))
    first_of = np.zeros(len(keys), np.int64)
    for i in range(len(thresholds) - 1, -1, -1):
        first_of[index[i]] = i
    soft = np.stack([cv2.GaussianBlur(closed[i].astype(np.float32), (blur, blur), 0) for i in first_of])
    probabilities = model.masked_scores(model.prepare(pair.counterfactual, pair.real), len(keys),
                                        lambda first, count: np.ascontiguousarray(soft[first:first + count]),
                                        "probabilities", "mask swap")
    b = pair.class_b
    deltas = probabilities[index, b].astype(np.float64) - pair.p_b_real
    full_delta = pair.p_b_counterfactual - pair.p_b_real
    grid, curve = curve_from_points(sizes, deltas, full_delta, points)
    best = int(np.argmin(sizes ** 2 + (1 - deltas) ** 2))
    w = soft[index[best]][..., None]
    hybrid = (w * pair.counterfactual + (1 - w) * pair.real).astype(np.float32)
    return MaskSwap(method=method, thresholds=thresholds, sizes=sizes, deltas=deltas, grid=grid, curve=curve,
                    score=area(grid, curve), full_delta=float(full_delta), best_index=best,
                    best_mask=closed[best].astype(bool), best_hybrid=hybrid,
                    best_probabilities=probabilities[index[best]].copy(), class_a=pair.class_a, class_b=b,
                    evaluations=len(keys), seconds=time.perf_counter() - start)


def dataset_score(swaps: list[MaskSwap] | list[np.ndarray]) -> float:
    """Dataset DAC score: the 101-point curves (MaskSwap results or arrays) averaged over pairs,
    then integrated."""
    curves = [s.curve if isinstance(s, MaskSwap) else np.asarray(s, np.float64) for s in swaps]
    if not curves:
        raise OnnxplainError("no curves to average")
    mean = np.mean(np.stack(curves), axis=0)
    return area(np.linspace(0.0, 1.0, len(mean)), mean)


def explain_pair(model: Model, pair: Pair, methods=None, *, n_thresholds: int = 200, seed: int = 0,
                 **options) -> dict[str, tuple[Explanation, MaskSwap]]:
    """Every requested registered pair method's map and its mask swap: {method: (Explanation,
    MaskSwap)}; methods: names (default: every registered pair method). options go over each
    method's registered defaults to its factory, those it accepts (the built-ins: all of
    discriminative_map's: window, stride, n_masks, grid, p_keep, epsilon, baseline)."""
    names = list(registry.method_names("pair") if methods is None else methods)
    specs = [registry.get_method(name, "pair") for name in names]  # unknown names fail before any work
    out = {}
    for spec in specs:
        result = spec.factory(model, pair, seed=seed, **registry.accepted({**spec.defaults, **options}, spec.factory))
        if not isinstance(result, Explanation) or pair.class_b not in result.maps:
            raise OnnxplainError(f"pair method {spec.name!r} must return an Explanation with a map for class "
                                 f"B={pair.class_b}")
        out[spec.name] = (result, mask_swap(model, pair, result[pair.class_b], method=spec.name,
                                            n_thresholds=n_thresholds))
    return out


def save_results(out_dir: str | Path, pair: Pair, results: dict[str, tuple[Explanation, MaskSwap]],
                 names: list[str] | None = None, record: dict | None = None) -> dict:
    """Writes `explain_pair`'s results into out_dir: per method `<method>_<B>.npy` (the map),
    `<method>_<B>.png` (its picture), `<method>_best_mask.npy` (bool), `<method>_best_hybrid.png`,
    `<method>_curve.png`; `real.png`, `counterfactual.png`, `dac_curves.png`, `result.json` (the
    pair, every score, `record`'s entries) and `report.html`. Returns the result.json record."""
    from .report import counterfactual_body, page

    out, b = Path(out_dir), pair.class_b
    out.mkdir(parents=True, exist_ok=True)
    save_png(out / "real.png", pair.real)
    save_png(out / "counterfactual.png", pair.counterfactual)
    a_label, b_label = class_label(pair.class_a, names), class_label(b, names)
    record = {"pair": pair.record(), **(record or {}), "methods": {}}
    for method, (result, swap) in results.items():
        np.save(out / f"{method}_{b}.npy", result[b].astype(np.float32))
        save_png(out / f"{method}_{b}.png", map_figure(pair.real, result[b], map_scale(method, result[b], result.signed),
                                                       [f"{method}: why {b_label} and not {a_label}"]))
        np.save(out / f"{method}_best_mask.npy", swap.best_mask)
        save_png(out / f"{method}_best_hybrid.png", swap.best_hybrid)
        save_png(out / f"{method}_curve.png", plot_curves({method: swap.curve}))
        record["methods"][method] = {
            **swap.record(), "params": result.params, "map_evaluations": result.evaluations,
            "map_seconds": round(result.seconds, 4),
            "files": {"map": f"{method}_{b}.npy", "best_mask": f"{method}_best_mask.npy",
                      "best_hybrid": f"{method}_best_hybrid.png", "curve": f"{method}_curve.png"}}
    save_png(out / "dac_curves.png", plot_curves({m: s.curve for m, (_, s) in results.items()}))
    (out / "result.json").write_text(json.dumps(record, indent=2))
    (out / "report.html").write_text(page(f"onnxplain counterfactual: {b_label} rather than {a_label}",
                                          counterfactual_body(pair, results, names, out)))
    return record


# ---- pictures ----------------------------------------------------------------------------
def plot_curves(curves: dict[str, np.ndarray], size: int = 480) -> np.ndarray:
    """An RGB uint8 plot (OpenCV) of DAC curves {label: 101-point curve}: delta (y, -1..1) against
    mask size (x, 0..1), with a legend giving each score."""
    series = []
    for k, (label, curve) in enumerate(curves.items()):
        grid = np.linspace(0, 1, len(curve))
        series.append(Series(grid, np.asarray(curve), k, f"{label}: DAC {area(grid, curve):.3f}"))
    return line_chart(series, "mask size m", "delta p(B)", (-1.0, 1.0), size)
