"""Fidelity of any attribution map: MIF/LIF curves (Brocki & Chung), deletion and insertion
(Petsiuk et al., RISE), ROAD's noisy linear imputation (Rong et al.), a random floor.

A map ranks the image's features (pixels, or patch x patch squares scored by their mean); the
core builds the masks of the cumulative perturbation in that order, batch by batch, and the
model scores them through `Batches`. Curves are functions of the fraction of
features perturbed; areas use the trapezoid rule over that fraction.
"""
from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from . import _core
from .errors import OnnxplainError, warn
from .batches import Batches
from .explainer import Explainer, Target, check_seed, positive_int
from .masking import Features, as_features
from .model import Model
from .result import Explanation

FRACTIONS = tuple(round(0.05 * i, 2) for i in range(20))  # 0, 0.05, ..., 0.95
PERTURBATIONS = ("mean", "blur", "noise", "road")
SCORES = ("ratio", "probability", "logit")
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0  # the RISE paper's insertion blur
ROAD_NOISE = 0.01  # std of ROAD's imputation noise on [0, 1] images
NOISE_SIGMA = 0.2  # std of the "noise" perturbation on [0, 1] images, around the mean colour


@dataclass
class Curves:
    """One metric on one image.

    x: fraction of features perturbed (S,); curves: name ("mif"/"lif", "deletion", "insertion")
    -> score per step (S,); agree: name -> whether the top-1 class equals the reference (the
    clean top-1, or the label; multi-label models: whether p(reference) >= 0.5) per step (S,) bool. evaluations: model evaluations (images);
    seconds: wall time.
    """

    metric: str
    target: int
    x: np.ndarray
    curves: dict[str, np.ndarray]
    agree: dict[str, np.ndarray]
    params: dict
    evaluations: int
    seconds: float
    reference: int = -1  # the class top-1 agreement is measured against
    clean_score: float = field(default=float("nan"))

    @property
    def aucs(self) -> dict[str, float]:
        """Area under each curve (trapezoid rule over x)."""
        return {name: trapezoid(curve, self.x) for name, curve in self.curves.items()}

    @property
    def fidelity(self) -> float | None:
        """AUC(LIF) - AUC(MIF) for two-order metrics (mif-lif, road), else None."""
        aucs = self.aucs
        return aucs["lif"] - aucs["mif"] if "lif" in aucs and "mif" in aucs else None

    def record(self) -> dict:
        """JSON-ready description."""
        return {
            "metric": self.metric, "target": self.target, "reference": self.reference,
            "clean_score": self.clean_score, "x": [float(v) for v in self.x],
            "curves": {k: [float(v) for v in c] for k, c in self.curves.items()},
            "agree": {k: [bool(v) for v in a] for k, a in self.agree.items()},
            "aucs": self.aucs, "fidelity": self.fidelity, "params": self.params,
            "evaluations": self.evaluations, "seconds": round(self.seconds, 4),
        }


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoid-rule area under y(x), both (S,)."""
    y, x = np.asarray(y, np.float64), np.asarray(x, np.float64)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2) if len(x) > 1 else 0.0


def interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % interval, 1.96 * std / sqrt(n) (std with n - 1; 0
    for a single value)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        raise OnnxplainError("no values to summarise")
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0
    return float(v.mean()), float(half)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean of a - b over paired items (e.g. per-image fidelities of two methods on the same
    images) and the half-width of its 95 % interval."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise OnnxplainError(f"paired values need equal lengths, got {a.shape} and {b.shape}")
    return interval(a - b)


def check_map(attribution: Any) -> np.ndarray:
    """An attribution map as float32 H x W, or an error: real, two-dimensional, finite."""
    dtype = np.asarray(attribution).dtype
    if dtype.kind not in "iuf":
        raise OnnxplainError(f"an attribution map must hold real numbers (int or float), got dtype {dtype}")
    attribution = np.ascontiguousarray(attribution, np.float32)
    if attribution.ndim != 2:
        raise OnnxplainError(f"an attribution map must be H x W, got shape {attribution.shape}")
    if not np.all(np.isfinite(attribution)):
        raise OnnxplainError("attribution map contains NaN or infinite values")
    return attribution


def rank(attribution: np.ndarray, patch: int = 1, seed: int = 0, features: Features | None = None) -> np.ndarray:
    """Per-pixel rank (H x W int32) of its feature, 0 = most important. Features are patch x patch
    squares, or the groups of `features`, scored by the mean of the map; ties are broken by the
    shared generator's seeded draws."""
    attribution = check_map(attribution)
    if features is not None:
        if features.labels.shape != attribution.shape:
            raise OnnxplainError(f"features have shape {features.labels.shape}, the map {attribution.shape}")
        return _core.rank_labels(attribution, features.labels, features.count, int(seed))
    _check_patch(patch, attribution.shape)
    return _core.rank_features(attribution, int(patch), int(seed))


def impute(image: np.ndarray, mask: np.ndarray, noise: float = ROAD_NOISE, seed: int = 0,
           stream: int = 0) -> np.ndarray:
    """ROAD's noisy linear imputation: pixels with mask < 0.5 of an H x W x C image (0..255, any
    C) are replaced by the solution of the sparse system "each equals the weighted mean of its
    in-image 8 neighbours (1/6 direct, 1/12 diagonal)", one right-hand side per channel, plus
    N(0, noise^2) on the [0, 1] scale (the shared generator, perturbation `stream`: draw
    (k * C + channel) for the k-th removed pixel). Returns float32 H x W x C, clipped to 0..255."""
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import spsolve

    image = np.ascontiguousarray(image, np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    mask = np.ascontiguousarray(mask, np.float32)
    variable, rows, cols, values, rhs = _core.imputation_system(mask, image)
    n, c = rhs.shape
    out = image.copy()
    if n == 0:
        return out
    if n == mask.size:
        raise OnnxplainError("noisy linear imputation needs at least one kept pixel; use fractions below 1")
    solution = spsolve(csc_matrix((values, (rows, cols)), shape=(n, n)), rhs).reshape(n, c)
    if noise:
        solution = solution + 255.0 * noise * _core.gaussian(seed, stream, c * n).reshape(n, c)
    out[variable >= 0] = np.clip(solution, 0, 255)
    return out


def perturbation_image(image: np.ndarray, perturbation: str, model: Model, seed: int = 0,
                       noise_sigma: float = NOISE_SIGMA) -> np.ndarray:
    """The H x W x C replacement values (any C) for "mean" (maps to 0 after preprocessing),
    "blur" (Gaussian, kernel 11, sigma 5, each channel alike) or "noise" (the mean value of each
    channel + N(0, noise_sigma^2) on [0, 1], clipped; draw (pixel * C + channel))."""
    if perturbation == "mean":
        return model.masker.replacement(image, "mean")
    if perturbation == "blur":
        if image.shape[2] <= 4:  # OpenCV's multi-channel blur (grey comes back H x W)
            blurred = cv2.GaussianBlur(image, (BLUR_KERNEL, BLUR_KERNEL), BLUR_SIGMA)
        else:
            blurred = np.stack([cv2.GaussianBlur(np.ascontiguousarray(image[:, :, c]), (BLUR_KERNEL, BLUR_KERNEL),
                                                 BLUR_SIGMA) for c in range(image.shape[2])], axis=2)
        return np.ascontiguousarray(blurred, np.float32).reshape(image.shape)
    if perturbation == "noise":
        z = _core.gaussian(seed, _core.NOISE_STREAM, image.size).reshape(image.shape)
        neutral = np.asarray(model.preprocess.neutral, np.float32).reshape(-1)  # C values (or one for all)
        return np.clip(neutral + 255.0 * noise_sigma * z, 0, 255).astype(np.float32)
    raise OnnxplainError(f"perturbation must be one of {PERTURBATIONS}, got {perturbation!r}")


def mif_lif(model: Model, image: np.ndarray, attribution: np.ndarray | Explanation, *, target: int | None = None,
            fractions: Sequence[float] = FRACTIONS, perturbation: str = "mean", patch: int = 1,
            features: Features | np.ndarray | None = None, score: str = "ratio", label: int | None = None,
            seed: int = 0, noise_sigma: float = NOISE_SIGMA, metric: str = "mif-lif") -> Curves:
    """Most- and Least-Important-First curves: the features ranked by the map are perturbed
    cumulatively at each fraction, in both orders.

    score: "ratio" p(c | perturbed) / p(c | clean) (default), "probability" or "logit"
    (unnormalised), for c = target (default: the clean top-1). perturbation: "mean", "blur",
    "noise" or "road" (noisy linear imputation, one sparse solve per step). Features: patch x patch
    squares, or the groups of a `features` map (H x W integers: superpixels). Curves "mif", "lif";
    fidelity = AUC(lif) - AUC(mif).
    """
    fractions, seed = _check_fractions(fractions), check_seed(seed)
    _check_perturbation(perturbation, noise_sigma)
    params = {"fractions": [float(f) for f in fractions], "perturbation": perturbation, "score": score,
              "seed": seed}
    if perturbation == "noise":
        params["noise_sigma"] = float(noise_sigma)
    if perturbation == "road":
        params["road_noise"] = ROAD_NOISE
    return _ranked(model, image, attribution, target, label, score, patch, features, seed, metric, params,
                   fractions, {"mif": False, "lif": True}, perturbation, noise_sigma)


def road(model: Model, image: np.ndarray, attribution: np.ndarray | Explanation, **options) -> Curves:
    """ROAD (Rong et al. 2022): MoRF ("mif") and LeRF ("lif") curves with noisy linear imputation;
    the same options as `mif_lif`."""
    if options.pop("perturbation", "road") != "road":
        raise OnnxplainError("road always perturbs by noisy linear imputation; use mif_lif for other values")
    return mif_lif(model, image, attribution, perturbation="road", metric="road", **options)


def deletion(model: Model, image: np.ndarray, attribution: np.ndarray | Explanation, *, target: int | None = None,
             step: int | None = None, patch: int = 1, features: Features | np.ndarray | None = None,
             score: str = "probability", label: int | None = None, seed: int = 0) -> Curves:
    """Deletion (RISE paper): features removed most important first, `step` features at a time
    (default: one image row's worth), towards the mean (0 after preprocessing); curve "deletion"
    of p(c) over the fraction removed, 0..1."""
    return _steps(model, image, attribution, target, step, patch, features, score, label, seed, "deletion")


def insertion(model: Model, image: np.ndarray, attribution: np.ndarray | Explanation, *, target: int | None = None,
              step: int | None = None, patch: int = 1, features: Features | np.ndarray | None = None,
              score: str = "probability", label: int | None = None, seed: int = 0) -> Curves:
    """Insertion (RISE paper): from a blurred copy (kernel 11, sigma 5), features inserted most
    important first, `step` at a time; curve "insertion" of p(c) over the fraction shown, 0..1."""
    return _steps(model, image, attribution, target, step, patch, features, score, label, seed, "insertion")


METRICS = {"mif-lif": mif_lif, "deletion": deletion, "insertion": insertion, "road": road}
RUN_SETS = ("target", "label", "seed")  # the keywords a dataset run passes each metric itself


def check_metric(model: Model, name: str, options: dict) -> None:
    """Checks a metric's options, as far as they can be without an image, before a dataset run
    evaluates anything: an error names the keyword (unknown ones, and those the run sets itself)."""
    if name not in METRICS:
        raise OnnxplainError(f"unknown metric {name!r}; available: {', '.join(METRICS)}")
    signature = inspect.signature(mif_lif if name == "road" else METRICS[name]).parameters
    taken = [k for k, p in signature.items() if p.kind == p.KEYWORD_ONLY and k not in RUN_SETS + ("metric",)]
    unknown = sorted(set(options) - set(taken))
    if unknown:
        raise OnnxplainError(f"metric {name!r} has no option {', '.join(map(repr, unknown))} (the run sets target, "
                             f"label and seed itself); its options are {', '.join(taken)}")
    given = {k: p.default for k, p in signature.items() if k in taken} | options
    _feature_count(model, given["patch"], as_features(given["features"], model.input_size))
    _check_score(given["score"])
    if name in ("deletion", "insertion"):
        _check_step(given["step"])
        return
    _check_fractions(given["fractions"])
    if name == "road":
        if options.get("perturbation", "road") != "road":
            raise OnnxplainError("road always perturbs by noisy linear imputation; use mif_lif for other values")
        given["perturbation"] = "road"
    _check_perturbation(given["perturbation"], given["noise_sigma"])


FIGURE_MAX_STEPS = 10  # fractions 0.095, 0.19, ..., 0.95 at most
FIGURE_MIN_STEPS = 2


def figure_steps(evaluations: int, share: float) -> int:
    """MIF/LIF steps a fidelity figure can afford within share x evaluations (each step costs
    two model evaluations, plus one for the clean image), at most FIGURE_MAX_STEPS."""
    return min(FIGURE_MAX_STEPS, (int(share * evaluations) - 1) // 2)


def quick_fidelity(model: Model, image: np.ndarray, attribution: np.ndarray | Explanation, steps: int, *,
                   target: int | None = None, seed: int = 0) -> tuple[float, Curves]:
    """A cheap estimate of `mif_lif`'s fidelity: pixels perturbed to the mean at `steps` fractions
    0.95 k / steps (k = 1..steps), the clean point (0, 1) added to both ratio curves, AUC(LIF) -
    AUC(MIF) over 0..0.95. Costs 2 x steps + 1 model evaluations. Returns (estimate, curves)."""
    steps = positive_int("steps", steps)
    fractions = [0.95 * k / steps for k in range(1, steps + 1)]
    curves = mif_lif(model, image, attribution, target=target, fractions=fractions, seed=seed)
    x = np.concatenate([[0.0], curves.x])
    estimate = trapezoid(np.concatenate([[1.0], curves.curves["lif"]]), x) - \
        trapezoid(np.concatenate([[1.0], curves.curves["mif"]]), x)
    return estimate, curves


def fidelity_figure(model: Model, result: Explanation, share: float, stopping: bool) -> dict:
    """The fidelity figure recorded on an explanation (`Explanation.fidelity`): `quick_fidelity` of
    its first target's map within share x its evaluations, counted apart from them
    ("evaluations"); {"skipped": reason} under a deadline or cancel, or when the budget affords
    fewer than FIGURE_MIN_STEPS steps."""
    if stopping:
        return {"skipped": "a deadline or cancel was set"}
    steps = figure_steps(result.evaluations, share)
    if steps < FIGURE_MIN_STEPS:
        return {"skipped": f"{share:.0%} of {result.evaluations} evaluations affords fewer than "
                           f"{FIGURE_MIN_STEPS} steps ({2 * FIGURE_MIN_STEPS + 1} evaluations)"}
    target = result.targets[0]
    estimate, curves = quick_fidelity(model, result.image, result[target], steps, target=target, seed=result.seed)
    return {"estimate": estimate, "class": target, "fractions": [round(f, 4) for f in curves.x.tolist()],
            "mif": curves.curves["mif"].tolist(), "lif": curves.curves["lif"].tolist(),
            "evaluations": curves.evaluations, "seconds": round(curves.seconds, 4), "share": share}


class RandomMap(Explainer):
    """The floor: a map of independent uniform draws from the shared generator (seeded)."""

    method = "random"

    def attribute(self, image: np.ndarray, target: Target = None, *, seed: int = 0) -> Explanation:
        """Maps (H x W float32 in [0, 1), the same for every target)."""
        seed = check_seed(seed)
        with self.run(image, target) as run:
            noise = _core.random_map(seed, *self.model.input_size)
            return run.finish({t: noise.copy() for t in run.targets}, {}, seed)


# ---- internals ------------------------------------------------------------------------

def _feature_record(patch: int, features: Features | None) -> dict:
    """How features were formed, for result parameters."""
    return {"patch": int(patch)} if features is None else features.record()


def _check_patch(patch, shape) -> None:
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or not 1 <= patch <= max(shape):
        raise OnnxplainError(f"patch must be an integer in 1..{max(shape)}, got {patch!r}")


def _check_score(score) -> None:
    if score not in SCORES:
        raise OnnxplainError(f"score must be one of {SCORES}, got {score!r}")


def _check_step(step) -> None:
    """step: None (one row of features) or a positive integer."""
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1):
        raise OnnxplainError(f"step must be a positive integer, got {step!r}")


def _check_perturbation(perturbation, noise_sigma) -> None:
    if perturbation not in PERTURBATIONS:
        raise OnnxplainError(f"perturbation must be one of {PERTURBATIONS}, got {perturbation!r}")
    if isinstance(noise_sigma, bool) or not isinstance(noise_sigma, (int, float, np.number)) \
            or not (math.isfinite(noise_sigma) and noise_sigma >= 0):
        raise OnnxplainError(f"noise_sigma must be a finite number >= 0 (on the 0..1 scale), got {noise_sigma!r}")


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    try:
        f = np.asarray(fractions, np.float64)
    except (TypeError, ValueError):
        f = np.zeros(0)  # not numbers: refused below
    if f.ndim != 1 or f.size < 2 or not np.all(np.isfinite(f)) or f.min() < 0 or f.max() > 1 or np.any(np.diff(f) <= 0):
        raise OnnxplainError(f"fractions must be at least two increasing values in [0, 1], got {fractions!r}")
    return f


def _map_and_target(model: Model, attribution, target, probabilities: np.ndarray):
    if isinstance(attribution, Explanation):
        target = attribution.targets[0] if target is None else target
        if target not in attribution.maps:
            raise OnnxplainError(f"the explanation has no map for class {target}; it has {attribution.targets}")
        attribution = attribution[target]
    attribution = np.asarray(attribution)
    if attribution.shape != model.input_size:
        raise OnnxplainError(f"attribution map has shape {attribution.shape}; the model takes {model.input_size}")
    if target is None:
        target = int(np.argmax(probabilities))
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < probabilities.size:
        raise OnnxplainError(f"target must be a class index in 0..{probabilities.size - 1}, got {target!r}")
    return attribution, int(target)


def _ranked(model, image, attribution, target, label, score, patch, features, seed, metric, params, fractions,
            orders: dict[str, bool], perturbation: str, noise_sigma: float = NOISE_SIGMA, insert: bool = False,
            removed: np.ndarray | None = None) -> Curves:
    """Evaluates the cumulative ranked perturbation for each order (name -> reversed), returns
    the curves. removed: feature counts per step (default round(fraction * features))."""
    if not isinstance(model, Model):
        raise OnnxplainError(f"metrics take an onnxplain.Model, got {type(model).__name__}")
    features = as_features(features, model.input_size)
    params = {**_feature_record(patch, features), **params}
    _check_score(score)
    image = model.check_image(image)
    start = time.perf_counter()
    raw = model.predict(image, "raw")
    probabilities = model.convert(raw[None], "probabilities")[0]
    attribution, target = _map_and_target(model, attribution, target, probabilities)
    if label is not None and not (isinstance(label, (int, np.integer)) and 0 <= label < probabilities.size):
        raise OnnxplainError(f"label must be a class index in 0..{probabilities.size - 1}, got {label!r}")
    reference = int(np.argmax(probabilities)) if label is None else int(label)
    kind = "logits" if score == "logit" else "probabilities"
    clean = float(model.convert(raw[None], kind)[0, target])
    ranks = rank(attribution, patch, seed, features)
    n_features = _feature_count(model, patch, features)
    if removed is None:
        removed = np.round(fractions * n_features).astype(np.int64)
    steps = len(removed)
    names = list(orders)
    rank_of = {name: (n_features - 1 - ranks).astype(np.int32) if rev else ranks for name, rev in orders.items()}
    baseline = None if perturbation == "road" else perturbation_image(image, perturbation, model, seed, noise_sigma)
    prepared = None if baseline is None else model.preprocessor.prepare(image, baseline)
    values = np.empty(steps * len(names))
    agrees = np.empty(steps * len(names), bool)
    multilabel = model.output_kind == "sigmoid"  # agreement: the reference class still present
    present = 0.5 if kind == "probabilities" else 0.0  # p >= 0.5, or its logit >= 0

    def fill(first: int, count: int, out: np.ndarray) -> int:
        i = first
        while i < first + count:  # one core call per run of consecutive steps of one order
            order, step = divmod(i, steps)
            run = min(steps - step, first + count - i)
            masks = _core.ranked_masks(rank_of[names[order]], removed[step:step + run], insert, model.threads)
            dst = out[i - first:i - first + run]
            if prepared is not None:
                prepared.blend(masks, dst)
            else:  # ROAD: a fresh imputation per step, noise keyed by the perturbation index
                for j in range(run):
                    imputed = impute(image, masks[j], ROAD_NOISE, seed, stream=i + j)
                    model.preprocessor.prepare(image, imputed).blend(masks[j:j + 1], dst[j:j + 1])
            i += run
        return first

    def consume(first: int, scores: np.ndarray) -> None:
        values[first:first + len(scores)] = scores[:, target]
        agrees[first:first + len(scores)] = (scores[:, reference] >= present if multilabel
                                             else np.argmax(scores, axis=1) == reference)

    with Batches(model, metric) as batches:
        batches.stream(steps * len(names), fill, consume, kind)
    if score == "ratio":
        if clean <= 0:
            raise OnnxplainError(f"p(class {target} | clean image) is 0; use score='probability' or 'logit'")
        values /= clean
    curves = {name: values[k * steps:(k + 1) * steps].copy() for k, name in enumerate(names)}
    agree = {name: agrees[k * steps:(k + 1) * steps] for k, name in enumerate(names)}
    x = fractions if metric in ("mif-lif", "road") else removed / n_features
    return Curves(metric=metric, target=target, x=np.asarray(x, np.float64), curves=curves, agree=agree,
                  params=params, evaluations=1 + batches.evaluations, seconds=time.perf_counter() - start,
                  reference=reference, clean_score=clean)


def _feature_count(model: Model, patch: int, features: Features | None) -> int:
    """Number of features: the groups of `features`, or the model's patch x patch squares."""
    if features is not None:
        return features.count
    _check_patch(patch, model.input_size)
    return _core.feature_count(*model.input_size, int(patch))


def _steps(model, image, attribution, target, step, patch, features, score, label, seed, metric) -> Curves:
    if not isinstance(model, Model):
        raise OnnxplainError(f"metrics take an onnxplain.Model, got {type(model).__name__}")
    features = as_features(features, model.input_size)
    n_features = _feature_count(model, patch, features)
    _check_step(step)
    if step is None:  # one row of features
        step = -(-model.input_size[1] // int(patch)) if features is None else max(1, round(features.count ** 0.5))
    elif step >= n_features:
        warn(f"step {step} removes all {n_features} features at once: the {metric} curve has one step (pass a "
             "smaller step, CLI: --step)")
    removed = np.minimum(np.arange(0, n_features + step, step), n_features).astype(np.int64)
    removed = np.unique(removed)
    seed = check_seed(seed)
    params = {"step": int(step), "score": score, "seed": seed,
              "perturbation": "mean" if metric == "deletion" else "blur"}
    return _ranked(model, image, attribution, target, label, score, patch, features, seed, metric, params,
                   removed / n_features, {metric: False}, params["perturbation"], insert=metric == "insertion",
                   removed=removed)
