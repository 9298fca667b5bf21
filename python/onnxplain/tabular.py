"""Every method on one row of a table: occlusion, RISE, IG/PMI, multiple causal explanations,
counterfactual attribution and fidelity, over the G features (columns, or `groups=`) of a row.

The data path is the images' (`docs/CONVENTIONS.md`): row -> `tables.TabularMasker` -> batches of
rows -> model -> scores -> `TabularExplanation`. A mask over the G features keeps the row's values
where 1; removed features take a background row's values, and the mask's score is the mean
probability over `n_background` background rows (default 16; the same rows for every mask).
Maps come back per column, (F,) float32 (a group's columns share its value).

- occlusion: drop_g = p(t|x) - mean_r p(t | x with group g from background row r).
- rise: sal_g = sum_i p(t|m_i) m_i[g] / (n p_keep), m_i[g] ~ Bernoulli(p_keep) from the core's
  generator keyed by (seed, mask i); each mask is filled from its own `n_background` background
  rows (default 1: the masks already average over fills), drawn with replacement.
- ig / pmi: the removed group is drawn given the others, `samples` times: its numeric columns from
  the Gaussian fitted on the background's numeric columns, conditioned on the row's other numeric
  columns; its categorical columns (string or int64 inputs) from one background row drawn
  uniformly (marginally). q = the mean probabilities over the draws; IG_g = KL(p(.|x) || q) nats,
  PMI_g,y = ln p(y|x) / q(y).
- multi: disjoint minimal sufficient feature sets: kept alone (everything else from the
  background) the criterion holds (top1: the target stays the top class; confidence: p(target) >=
  fraction x its clean value), and no single feature can be dropped. Each is the shortest prefix
  of the features in decreasing occlusion score that suffices, then pruned one feature at a time
  (the least important that can go); the next search excludes earlier explanations. When the
  background alone satisfies the criterion, the empty set is the answer (with a warning). The map gives
  each feature of an explanation of k features 1/k (its share), others 0.
- counterfactual: a real row x_r (class A) and x_c (class B: given, or the nearest background row
  the model puts in B); map_g = p(B | x_r with group g from x_c) - p(B | x_r) (d-occlusion); its
  mask-swap (DAC) score swaps the top-k features of any map for k = 0..G.
- fidelity: MIF/LIF, deletion and insertion in a map's feature order, removed features from the
  background as above; `evaluate` runs them for several methods over many rows.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from . import _core
from .counterfactual import MaskSwap, area, curve_from_points
from .errors import OnnxplainError, OnnxplainWarning
from .explainer import Target, check_fraction, check_seed, positive_int, resolve_targets
from .fidelity import Curves, interval
from .result import Explanation
from .tables import N_BACKGROUND, TabularMasker, TabularModel, progress_bar, read_row, read_rows
from .visualize import bar_chart

METHODS = ("occlusion", "rise", "ig", "pmi", "multi")
CRITERIA = ("top1", "confidence")


@dataclass
class TabularExplanation(Explanation):
    """An `Explanation` of one table row: maps are (F,) float32 per target, over `columns`;
    `features` the G features masked (columns or groups); `explanations`: multi's boolean (F,)
    minimal sufficient sets per target."""

    columns: list[str] = field(default_factory=list)
    features: dict = field(default_factory=dict, repr=False)
    explanations: dict[int, list[np.ndarray]] = field(default_factory=dict, repr=False)
    class_names: list[str] | None = None

    def record(self) -> dict:
        record = super().record()
        record.update(modality="tabular", features=self.columns, grouping=self.features,
                      class_names=self.class_names, row=_json_values(self.image))
        if self.explanations:
            record["explanations"] = {
                str(t): [{"file": f"{self.method}_{t}_explanation_{i}.npy",
                          "features": self.members(mask)}
                         for i, mask in enumerate(masks, 1)] for t, masks in self.explanations.items()}
        return record

    def members(self, mask: np.ndarray) -> list[str]:
        """The names of the features an explanation's boolean mask (the input's shape) keeps."""
        return [self.columns[j] for j in np.flatnonzero(mask)]

    def picture(self, target: int, original: np.ndarray | None = None) -> np.ndarray:
        """A horizontal bar chart of the strongest features of one target's map, values shown."""
        name = self.class_names[target] if self.class_names and target < len(self.class_names) else str(target)
        return bar_chart(self.columns, self.maps[target], f"{self.method}, class {name}")

    def input_picture(self, original: np.ndarray | None = None) -> None:
        return None  # a row is no picture: the report shows its values in result.json's "row"

    def save(self, out_dir: str | Path) -> list[Path]:
        """Writes <method>_<target>.npy ((F,) float32), <method>_<target>.png (`picture`), multi's
        <method>_<target>_explanation_<i>.npy ((F,) bool), result.json and report.html."""
        written = super().save(out_dir)
        for target, masks in self.explanations.items():
            for i, mask in enumerate(masks, 1):
                path = Path(out_dir) / f"{self.method}_{target}_explanation_{i}.npy"
                np.save(path, mask.astype(bool))
                written.append(path)
        return written

def _json_values(values: np.ndarray) -> list:
    """An input (a row, a series, token ids) as JSON lists."""
    return values.tolist() if values.dtype.kind in "fiu" else [_json_value(v) for v in values]


def _json_value(value: Any) -> Any:
    return float(value) if isinstance(value, (float, np.floating, int, np.integer)) else str(value)


def _check_model(model: Any) -> None:
    if not isinstance(model, TabularModel):
        raise OnnxplainError(f"onnxplain.tabular explains tabular models; this one is {type(model).__name__} "
                             "(modality='tabular' / --modality tabular to force it)")


class FeatureRun:
    """One explanation over the G features of a masker (`tables.TabularMasker` or a subclass): the
    clean probabilities, the targets, and the result (`explanation`, a `TabularExplanation` class)."""

    def __init__(self, model: Any, method: str, masker: TabularMasker, target: Target, seed: int,
                 explanation: type = None, start: float | None = None) -> None:
        self.model, self.method, self.seed, self.masker = model, method, int(seed), masker
        self.explanation = explanation or TabularExplanation
        self.start = time.perf_counter() if start is None else start
        self.probabilities = masker.clean()
        self.targets = resolve_targets(target, self.probabilities)
        self.top_classes = [(int(c), float(self.probabilities[c]))
                            for c in np.argsort(-self.probabilities, kind="stable")[:5]]

    def finish(self, maps: dict[int, np.ndarray], params: dict, **extra) -> TabularExplanation:
        return self.explanation(
            method=self.method, maps={t: self.masker.spread(v).astype(np.float32) for t, v in maps.items()},
            params={**params, "n_background": self.masker.n_background}, seed=self.seed,
            evaluations=self.masker.evaluations, seconds=time.perf_counter() - self.start,
            top_classes=list(self.top_classes), image=self.masker.row,
            model={**self.model.describe(), "batch": self.model.batch_record()}, signed=self.method == "pmi" or None,
            columns=self.masker.columns, features=self.masker.record(), class_names=self.model.class_names, **extra)


def _Run(model: Any, method: str, row: Any, target: Target, background: Any, groups: dict | None,
         n_background: int, seed: int) -> FeatureRun:
    """A `FeatureRun` over one table row, removed features filled from background rows."""
    _check_model(model)
    start, seed = time.perf_counter(), check_seed(seed)
    masker = TabularMasker(model, row, background, groups=groups, n_background=n_background, seed=seed)
    return FeatureRun(model, method, masker, target, seed, start=start)


# ---- occlusion and RISE ------------------------------------------------------------------------

def occlusion(model: TabularModel, row: Any, target: Target = None, *, background: Any = None,
              groups: dict | None = None, n_background: int = N_BACKGROUND, seed: int = 0) -> TabularExplanation:
    """Feature ablation: per feature, p(t|x) minus the mean p(t) with it from the background rows."""
    return occlusion_map(_Run(model, "occlusion", row, target, background, groups, n_background, seed))


def occlusion_map(run: FeatureRun, params: dict | None = None) -> TabularExplanation:
    """Per feature, p(t|x) minus p(t) with it removed, for the run's targets."""
    drops = _occlusion_drops(run.masker, run.probabilities)
    return run.finish({t: drops[:, t] for t in run.targets}, params or {})


def _occlusion_drops(masker: TabularMasker, clean: np.ndarray) -> np.ndarray:
    """(G, K): clean probabilities minus those with each feature removed."""
    return clean[None, :] - masker.scores(None, description="occlusion")


def rise(model: TabularModel, row: Any, target: Target = None, *, background: Any = None, groups: dict | None = None,
         n_background: int = 1, n_masks: int = 2000, p_keep: float = 0.5, seed: int = 0) -> TabularExplanation:
    """RISE over features: the expected p(t) when the feature is kept (masks kept with p_keep). Each
    mask fills from its own `n_background` background rows (default 1), drawn with replacement:
    n_masks x n_background rows evaluated."""
    n_masks = positive_int("n_masks", n_masks)
    run = _Run(model, "rise", row, target, background, groups, n_background, seed)
    masker = run.masker
    picks = np.random.default_rng([int(seed), 1]).integers(len(masker.background), size=(n_masks, masker.n_background))
    return rise_map(run, n_masks, p_keep, lambda first, last: masker.background[picks[first:last]])


def rise_map(run: FeatureRun, n_masks: int, p_keep: float, fill=None, params: dict | None = None
             ) -> TabularExplanation:
    """RISE over the run's features: masks keep each feature with p_keep (the core's generator keyed
    by (seed, mask)); fill(first, last) gives masks first..last-1 their own fill rows (B, R, ...),
    None the masker's fill."""
    n_masks = positive_int("n_masks", n_masks)
    p_keep = check_fraction("p_keep", p_keep)
    masker = run.masker
    masks = _core.bernoulli_keep(run.seed, 0, n_masks, masker.count, float(p_keep), run.model.threads)
    scores = masker.scores(masks, fill=fill, description="rise")
    saliency = masks.T.astype(np.float64) @ scores / (n_masks * p_keep)  # (G, K)
    return run.finish({t: saliency[:, t] for t in run.targets},
                      {"n_masks": n_masks, "p_keep": float(p_keep), **(params or {})})


# ---- IG and PMI ------------------------------------------------------------------------------

class ConditionalSampler:
    """Draws a feature group given the row's other features: numeric columns from the Gaussian
    fitted on the background's numeric columns (mean, covariance + 1e-6 x its mean variance on the
    diagonal), conditioned on the row's other numeric columns; categorical columns from one
    uniformly drawn background row. Draws for group g use the generator seeded (seed, g)."""

    def __init__(self, masker: TabularMasker, categorical: np.ndarray) -> None:
        self.masker = masker
        self.numeric = np.flatnonzero(~categorical)
        self.categorical = categorical
        if len(self.numeric):
            data = np.asarray(masker.background[:, self.numeric], np.float64)
            finite = np.isfinite(data).all(axis=0)
            if not finite.all():
                j = int(self.numeric[np.argmin(finite)])
                raise OnnxplainError(f"background column {j} ({masker.columns[j]!r}) holds NaN or infinity: IG and PMI "
                                     "fit a Gaussian on the background's numeric columns; fill or drop those rows "
                                     "(background=; CLI: --background)")
            self.mean = data.mean(axis=0)
            cov = np.atleast_2d(np.cov(data, rowvar=False)) if len(data) > 1 else np.zeros((len(self.numeric),) * 2)
            self.cov = cov + np.eye(len(cov)) * 1e-6 * max(float(np.mean(np.diag(cov))), 1e-12)

    def draws(self, group: int, samples: int, seed: int) -> np.ndarray:
        """(samples, F) rows: the row's values, group `group` drawn given the rest."""
        masker = self.masker
        rng = np.random.default_rng([seed, group])
        cols = masker.groups[group]
        rows = np.repeat(masker.row[None], samples, axis=0)
        categorical = cols[self.categorical[cols]]
        if len(categorical):
            picks = rng.integers(len(masker.background), size=samples)
            rows[:, categorical] = masker.background[picks][:, categorical]
        numeric = np.flatnonzero(np.isin(self.numeric, cols))  # positions within self.numeric
        if len(numeric):
            others = np.setdiff1d(np.arange(len(self.numeric)), numeric)
            mean, cov = self.mean[numeric], self.cov[np.ix_(numeric, numeric)]
            if len(others):
                x_o = np.asarray(masker.row[self.numeric[others]], np.float64) - self.mean[others]
                gain = np.linalg.solve(self.cov[np.ix_(others, others)], self.cov[np.ix_(others, numeric)]).T
                mean = mean + gain @ x_o
                cov = cov - gain @ self.cov[np.ix_(others, numeric)]
            rows[:, self.numeric[numeric]] = rng.multivariate_normal(mean, (cov + cov.T) / 2, size=samples,
                                                                     method="eigh")
        return rows


def information_maps(model: TabularModel, row: Any, target: Target = "top3", *, background: Any = None,
                     groups: dict | None = None, samples: int = N_BACKGROUND, seed: int = 0
                     ) -> tuple[TabularExplanation, TabularExplanation]:
    """(IG, PMI) from the same evaluations: `samples` conditional draws of each removed group."""
    samples = positive_int("samples", samples)
    run = _Run(model, "ig", row, target, background, groups, samples, seed)
    sampler = ConditionalSampler(run.masker, model.categorical)
    params = {"samples": samples, "sampler": "conditional gaussian (numeric), background (categorical)"}
    return information_from(run, lambda features: np.concatenate([sampler.draws(g, samples, run.seed)
                                                                  for g in features]), samples, params)


def information_from(run: FeatureRun, draw, samples: int, params: dict
                     ) -> tuple[TabularExplanation, TabularExplanation]:
    """(IG, PMI) of the run's features; draw(features) gives `samples` model inputs per feature g of
    `features` (a range), (len(features) * samples, ...): the input with g drawn, the rest as is;
    called for a model batch of features at a time (memory bounded by one batch)."""
    masker = run.masker
    count, chunk = masker.count, max(1, run.model.batch_size // samples)
    parts = []
    with progress_bar(count, "ig/pmi", "feature", run.model.progress is not False and count >= 4 * chunk) as bar:
        for first in range(0, count, chunk):
            features = range(first, min(first + chunk, count))
            parts.append(run.model.run(draw(features)))  # (len(features) * samples, K)
            bar.update(len(features))
    masker.evaluations += count * samples
    removed = np.concatenate(parts).astype(np.float64).reshape(count, samples, -1).mean(axis=1)  # (G, K)
    p = np.clip(run.probabilities, 1e-12, 1.0)
    q = np.clip(removed, 1e-12, 1.0)
    ig = np.sum(p[None] * (np.log(p[None]) - np.log(q)), axis=1)
    top = run.targets[0]
    ig_result = run.finish({top: ig}, params)
    run.method = "pmi"
    pmi_result = run.finish({t: np.log(p[t]) - np.log(q[:, t]) for t in run.targets}, params)
    return ig_result, pmi_result


def ig(model: TabularModel, row: Any, target: Target = None, **options: Any) -> TabularExplanation:
    """Information gain of each feature, KL(p(Y|x) || p(Y|x without it)) in nats (one map, keyed
    by the top class)."""
    return information_maps(model, row, target, **options)[0]


def pmi(model: TabularModel, row: Any, target: Target = "top3", **options: Any) -> TabularExplanation:
    """Pointwise mutual information of each feature with each target, ln p(y|x) / p(y|x without it)."""
    return information_maps(model, row, target, **options)[1]


# ---- multiple causal explanations ---------------------------------------------------------------

def multi(model: TabularModel, row: Any, target: Target = None, *, background: Any = None, groups: dict | None = None,
          n_background: int = N_BACKGROUND, criterion: str = "top1", fraction: float = 0.5,
          max_explanations: int = 4, seed: int = 0) -> TabularExplanation:
    """Disjoint minimal sufficient feature sets for each target (see the module docstring)."""
    _check_multi(criterion, fraction, max_explanations)
    return multi_sets(_Run(model, "multi", row, target, background, groups, n_background, seed),
                      criterion, fraction, max_explanations)


def _check_multi(criterion: str, fraction: float, max_explanations: int) -> None:
    if criterion not in CRITERIA:
        raise OnnxplainError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    check_fraction("fraction", fraction)
    positive_int("max_explanations", max_explanations)


def multi_sets(run: FeatureRun, criterion: str = "top1", fraction: float = 0.5, max_explanations: int = 4
               ) -> TabularExplanation:
    """Disjoint minimal sufficient sets of the run's features, each kept alone with the rest removed
    (module docstring, multi); explanations as boolean masks of the input's positions."""
    _check_multi(criterion, fraction, max_explanations)
    masker = run.masker
    drops = _occlusion_drops(masker, run.probabilities)
    maps, explanations = {}, {}
    for t in run.targets:
        def sufficient(masks: np.ndarray) -> np.ndarray:
            scores = masker.scores(masks)
            if criterion == "top1":
                return scores.argmax(axis=1) == t
            return scores[:, t] >= fraction * run.probabilities[t]

        if sufficient(np.zeros((1, masker.count)))[0]:
            warnings.warn(f"the background alone satisfies the {criterion} criterion for class {t}, so the empty set "
                          "is the one minimal sufficient set; try criterion='confidence' with a larger fraction",
                          OnnxplainWarning, stacklevel=3)
            found = []
        else:
            found = _sufficient_sets(masker.count, drops[:, t], sufficient, max_explanations)
        share = np.zeros(masker.count)
        for members in found:
            share[members] = 1.0 / len(members)
        maps[t] = share
        explanations[t] = [masker.columns_of(_keep(masker.count, members)[None])[0] for members in found]
    params = {"criterion": criterion, "fraction": float(fraction), "max_explanations": max_explanations}
    return run.finish(maps, params, explanations=explanations)


def _keep(count: int, members: np.ndarray) -> np.ndarray:
    keep = np.zeros(count)
    keep[members] = 1
    return keep


def _sufficient_sets(count: int, importance: np.ndarray, sufficient, limit: int) -> list[np.ndarray]:
    """Up to `limit` disjoint minimal sufficient sets of feature indices (see `multi`)."""
    available = np.ones(count, bool)
    found: list[np.ndarray] = []
    while len(found) < limit and available.any():
        order = np.flatnonzero(available)[np.argsort(-importance[available], kind="stable")]
        prefixes = np.array([_keep(count, order[:k]) for k in range(1, len(order) + 1)])
        ok = np.flatnonzero(sufficient(prefixes))
        if not len(ok):
            break
        members = order[:ok[0] + 1]
        while len(members) > 1:  # prune: drop the least important feature that can go, until none can
            without = np.array([_keep(count, np.delete(members, i)) for i in range(len(members))])
            can_go = np.flatnonzero(sufficient(without))
            if not len(can_go):
                break
            members = np.delete(members, can_go[np.argmin(importance[members[can_go]])])
        found.append(np.sort(members))
        available[members] = False
    return found


# ---- counterfactual attribution ------------------------------------------------------------------

@dataclass
class TabularPair:
    """A real row (class A) and a counterfactual row (class B), with their probabilities."""

    real: np.ndarray
    counterfactual: np.ndarray
    class_a: int
    class_b: int
    probabilities_real: np.ndarray
    probabilities_counterfactual: np.ndarray
    source: str  # "given" or "nearest background row <index>"

    def record(self) -> dict:
        return {"class_a": self.class_a, "class_b": self.class_b,
                "p_a_real": float(self.probabilities_real[self.class_a]),
                "p_b_counterfactual": float(self.probabilities_counterfactual[self.class_b]), "source": self.source,
                "real": _json_values(self.real), "counterfactual": _json_values(self.counterfactual)}


def make_pair(model: TabularModel, real: Any, counterfactual: Any = None, *, background: Any = None,
              class_b: int | None = None) -> TabularPair:
    """The pair: x_c given, or the background row nearest to x_r (numeric columns scaled by the
    background's standard deviation, categorical ones counting 1 when they differ) whose top class
    is B (default: any class other than A)."""
    _check_model(model)
    x_r = read_row(model, real, "real")[0]
    p_r = model.run(x_r[None])[0]
    a = int(np.argmax(p_r))
    if class_b is not None and (isinstance(class_b, bool) or not isinstance(class_b, (int, np.integer))
                                or not 0 <= class_b < len(p_r)):
        raise OnnxplainError(f"class_b must be a class index in 0..{len(p_r) - 1}, got {class_b!r}")
    if counterfactual is not None:
        x_c = read_row(model, counterfactual, "counterfactual")[0]
        source = "given"
    else:
        if background is None:
            raise OnnxplainError("without a counterfactual row, pass background= to find the nearest row of class B")
        table = read_rows(model, background, "background")[0]
        top = model.run(table).argmax(axis=1)
        wanted = top == class_b if class_b is not None else top != a
        if not wanted.any():
            wanted_class = class_b if class_b is not None else f"another class than {a}"
            raise OnnxplainError(f"no background row is classified as {wanted_class}; give the counterfactual row, "
                                 "or another class_b=")
        distance = _distances(x_r, table, model.categorical)
        index = int(np.flatnonzero(wanted)[np.argmin(distance[wanted])])
        x_c, source = table[index], f"nearest background row {index}"
    p_c = model.run(x_c[None])[0]
    b = int(np.argmax(p_c)) if class_b is None else int(class_b)
    if b == a:
        raise OnnxplainError(f"the counterfactual row is classified as {a}, like the real one; give a row of another class")
    return TabularPair(x_r, x_c, a, b, p_r.astype(np.float64), p_c.astype(np.float64), source)


def _distances(row: np.ndarray, table: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    numeric = np.flatnonzero(~categorical)
    values = np.asarray(table[:, numeric], np.float64)
    scale = values.std(axis=0)
    scale[scale == 0] = 1
    d = np.sum(((values - np.asarray(row[numeric], np.float64)) / scale) ** 2, axis=1)
    cats = np.flatnonzero(categorical)
    return d + np.sum(table[:, cats].astype(str) != row[cats].astype(str), axis=1)


def discriminative_map(model: TabularModel, pair: TabularPair, *, groups: dict | None = None) -> TabularExplanation:
    """d-occlusion: per feature, p(B | x_r with it from x_c) - p(B | x_r) (map keyed by B)."""
    run = _Run(model, "d-occlusion", pair.real, pair.class_b, pair.counterfactual[None], groups, 1, 0)
    gains = run.masker.scores(None) - run.probabilities[None]
    return run.finish({pair.class_b: gains[:, pair.class_b]}, {"pair": pair.source})


def mask_swap(model: TabularModel, pair: TabularPair, attribution: np.ndarray, *, groups: dict | None = None,
              method: str = "") -> MaskSwap:
    """The mask-swap (DAC) score of a map (F,): x_r with its k most important features from x_c,
    k = 0..G; sizes k / G, deltas p(B|hybrid) - p(B|x_r)."""
    start = time.perf_counter()
    masker = TabularMasker(model, pair.real, pair.counterfactual[None], groups=groups, n_background=1)
    return swap_score(masker, pair, attribution, method, start)


def swap_score(masker: TabularMasker, pair: TabularPair, attribution: np.ndarray, method: str = "",
               start: float | None = None) -> MaskSwap:
    """The mask-swap (DAC) score of a map over the masker's features (the masker's row x_r, its
    fill x_c), as `mask_swap`."""
    start = time.perf_counter() if start is None else start
    order = _order(masker, attribution, 0)
    keep = np.ones((masker.count + 1, masker.count))
    for k in range(1, masker.count + 1):
        keep[k:, order[k - 1]] = 0
    probabilities = masker.scores(keep)
    b = pair.class_b
    deltas = probabilities[:, b] - pair.probabilities_real[b]
    sizes = np.arange(masker.count + 1) / masker.count
    full = pair.probabilities_counterfactual[b] - pair.probabilities_real[b]
    grid, curve = curve_from_points(sizes, deltas, full)
    best = int(np.argmin(sizes ** 2 + (1 - deltas) ** 2))
    swapped = ~masker.columns_of(keep[best][None])[0]
    return MaskSwap(method=method, thresholds=sizes, sizes=sizes, deltas=deltas, grid=grid, curve=curve,
                    score=area(grid, curve), full_delta=float(full), best_index=best, best_mask=swapped,
                    best_hybrid=np.where(swapped, pair.counterfactual, pair.real), best_probabilities=probabilities[best],
                    class_a=pair.class_a, class_b=b, evaluations=masker.evaluations,
                    seconds=time.perf_counter() - start)


# ---- fidelity ---------------------------------------------------------------------------------

def _order(masker: TabularMasker, attribution: Any, seed: int) -> np.ndarray:
    """Feature indices, most important first: a map shaped like the input ((F,) for a row; an array
    or an explanation's first map) averaged over each feature's positions, ties broken by seeded noise."""
    values = attribution[attribution.targets[0]] if isinstance(attribution, Explanation) else attribution
    values = np.asarray(values, np.float64)
    if values.shape != masker.row.shape or not np.all(np.isfinite(values)):
        raise OnnxplainError(f"the map must be {' x '.join(map(str, masker.row.shape))} finite values (one per "
                             "input position), got shape "
                             f"{np.shape(values)}")
    groups = masker.group_of.ravel()
    per_group = np.bincount(groups, values.ravel(), masker.count) / np.bincount(groups, minlength=masker.count)
    noise = np.random.default_rng(seed).random(masker.count)
    return np.lexsort((noise, -per_group))


def mif_lif(model: TabularModel, row: Any, attribution: Any, *, background: Any = None, target: int | None = None,
            groups: dict | None = None, n_background: int = N_BACKGROUND, fractions=None, seed: int = 0) -> Curves:
    """Most/Least-Important-First curves: ratio p(c|x, a fraction of the features removed in the
    map's order (or reversed)) / p(c|x); fidelity = AUC(LIF) - AUC(MIF)."""
    return _ranked_curves(model, row, attribution, background, target, groups, n_background, fractions, seed,
                          "mif-lif")


def deletion(model: TabularModel, row: Any, attribution: Any, **options: Any) -> Curves:
    """p(c) as features are removed (filled from the background) most important first, one at a time."""
    return _ranked_curves(model, row, attribution, metric="deletion", **_curve_options(options))


def insertion(model: TabularModel, row: Any, attribution: Any, **options: Any) -> Curves:
    """p(c) as features are inserted into background rows most important first, one at a time."""
    return _ranked_curves(model, row, attribution, metric="insertion", **_curve_options(options))


def _curve_options(options: dict) -> dict:
    allowed = {"background", "target", "groups", "n_background", "seed"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise OnnxplainError(f"unexpected options {unknown}; deletion/insertion take {sorted(allowed)}")
    return {"background": None, "target": None, "groups": None, "n_background": N_BACKGROUND, "seed": 0,
            "fractions": None, **options}


def _ranked_curves(model, row, attribution, background, target, groups, n_background, fractions, seed,
                   metric: str) -> Curves:
    return ranked_curves(_Run(model, metric, row, target, background, groups, n_background, seed), attribution,
                         metric, fractions)


def ranked_curves(run: FeatureRun, attribution: Any, metric: str, fractions=None) -> Curves:
    """`metric` ("mif-lif", "deletion" or "insertion") of a map over the run's features, for its
    first target; removed features take the masker's fill."""
    masker, c = run.masker, run.targets[0]
    order = _order(masker, attribution, run.seed)
    g = masker.count
    if metric == "mif-lif":
        x = np.arange(0, 1, 0.05) if fractions is None else np.asarray(fractions, np.float64)
        if x.ndim != 1 or not len(x) or np.any((x < 0) | (x >= 1)):
            raise OnnxplainError("fractions must be a non-empty list of values in [0, 1)")
        counts = np.round(x * g).astype(int)
        orders = {"mif": order, "lif": order[::-1]}
    else:
        counts = np.arange(g + 1)
        x = counts / g
        orders = {metric: order}
    curves, agree = {}, {}
    for name, ranked in orders.items():
        removed = np.array([_keep(g, ranked[:k]) for k in counts])
        keep = removed if metric == "insertion" else 1 - removed  # insertion keeps the k most important
        scores = masker.scores(keep)
        curves[name] = scores[:, c] / max(run.probabilities[c], 1e-12) if metric == "mif-lif" else scores[:, c]
        agree[name] = scores.argmax(axis=1) == c
    return Curves(metric=metric, target=c, x=x, curves=curves, agree=agree,
                  params={"n_background": masker.n_background, "features": masker.count},
                  evaluations=masker.evaluations, seconds=time.perf_counter() - run.start, reference=c,
                  clean_score=float(run.probabilities[c]))


METRICS = {"mif-lif": (mif_lif, "fidelity"), "deletion": (deletion, "deletion"), "insertion": (insertion, "insertion")}


def evaluate(model: TabularModel, rows: Any, methods: Sequence[str] = ("occlusion", "rise"),
             metrics: Sequence[str] = tuple(METRICS), *, background: Any = None, seed: int = 0,
             method_options: dict[str, dict] | None = None) -> dict:
    """Fidelity of methods over rows (a CSV path, an array (N, F) or a DataFrame), each row's map
    for its top class: {"methods": {method: {metric: {"mean", "ci95", "values"}}}, "rows": N}, where
    the value is fidelity (AUC(LIF) - AUC(MIF), larger is better) for mif-lif and the AUC for
    deletion (lower is better) and insertion (larger is better); ci95 the half-width of the 95 %
    interval over rows (`fidelity.interval`)."""
    methods, metrics = ([m] if isinstance(m, str) else list(m) for m in (methods, metrics))  # one name, or several
    unknown = [m for m in metrics if m not in METRICS] + [m for m in methods if m not in METHODS]
    if unknown:
        raise OnnxplainError(f"unknown {unknown}; methods: {', '.join(METHODS)}; metrics: {', '.join(METRICS)}")
    table, names = read_rows(model, rows, "rows")
    values: dict = {m: {k: [] for k in metrics} for m in methods}
    for values_of_row in tqdm(table, desc="evaluate", unit="row", disable=model.progress is False or len(table) < 4):
        row = dict(zip(names, values_of_row)) if names else values_of_row
        for method in methods:
            result = explain(model, row, method, None, background=background, seed=seed,
                             **(method_options or {}).get(method, {}))
            for metric in metrics:
                function, key = METRICS[metric]
                curves = function(model, row, result, background=background, seed=seed)
                values[method][metric].append(curves.fidelity if key == "fidelity" else curves.aucs[key])
    summary = {}
    for method, per_metric in values.items():
        summary[method] = {}
        for metric, v in per_metric.items():
            mean, half = interval(v)
            summary[method][metric] = {"mean": mean, "ci95": half, "values": v}
    return {"methods": summary, "rows": len(table)}


def explain(model: TabularModel, row: Any, method: str, target: Target = None, **options: Any) -> TabularExplanation:
    """One of METHODS by name (the CLI's entry point)."""
    functions = {"occlusion": occlusion, "rise": rise, "ig": ig, "pmi": pmi, "multi": multi}
    if method not in functions:
        raise OnnxplainError(f"method {method!r} has no tabular form; tabular methods: {', '.join(METHODS)}")
    return functions[method](model, row, target, **options)


__all__ = ["METHODS", "TabularExplanation", "TabularPair", "ConditionalSampler", "occlusion", "rise", "ig", "pmi",
           "information_maps", "multi", "make_pair", "discriminative_map", "mask_swap", "mif_lif", "deletion",
           "insertion", "evaluate", "explain"]
