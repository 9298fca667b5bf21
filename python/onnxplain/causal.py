"""Multiple causal explanations (the ReX / MultiReX family): a causal responsibility map from
random box trees, and several minimal sufficient pixel sets, each one verified by the model.

An explanation is a pixel set that, shown alone with every other pixel at the mask value,
satisfies the sufficiency criterion for the target class:
  "top1": the model's top-1 class is the target (ReX's default);
  "confidence": p(target) >= fraction * p(target | whole image).
The same criterion decides every mutant during the search and the final check.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np

from . import _core
from .errors import OnnxplainError
from ._core import PreparedInput
from .batches import Batches, Stopped
from .explainer import Explainer, Target, check_fraction, check_seed, describe_baseline, positive_int
from .masking import Baseline
from .result import Explanation
from .visualize import annotate, photo, resample

CRITERIA = ("top1", "confidence")
TREES_PER_ROUND = 64  # box trees descended together: their rounds share batches; memory bounded by this
_SPOTLIGHT_STREAM = 1 << 40  # spotlight draws use streams from here (box trees use 0..iterations-1)
_OUTLINE_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]


@dataclass
class SufficientSet:
    """One explanation: a pixel set sufficient alone for the target.

    mask: H x W bool at model resolution; probability: p(target) with only the mask shown
    (the rest at the mask value); evaluations: model calls spent finding and minimising it;
    source: "spotlight" (grown inside a disc) or "responsibility" (grown from the whole map).
    """

    mask: np.ndarray
    probability: float
    evaluations: int
    source: str

    @property
    def area(self) -> int:
        """Pixels in the set."""
        return int(self.mask.sum())

    def record(self) -> dict:
        ys, xs = np.nonzero(self.mask)
        return {"area": self.area, "fraction": round(self.area / self.mask.size, 6),
                "probability": self.probability, "evaluations": self.evaluations, "source": self.source,
                "box": [int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1]}


@dataclass
class CausalExplanation(Explanation):
    """An `Explanation` whose map is the causal responsibility of the target, with the
    minimal sufficient sets found (`explanations`, pairwise Dice <= max_overlap, smallest
    first)."""

    explanations: list[SufficientSet] = field(default_factory=list)

    @property
    def target(self) -> int:
        return self.targets[0]

    def file_names(self) -> dict:
        stem, n = f"{self.method}_{self.target}", len(self.explanations)
        return {"responsibility": f"{stem}.npy", "overlay": self.picture_name(self.target),
                "composite": self.picture_name(self.target, "_explanations"),
                "explanations": [f"{stem}_explanation_{i}.npy" for i in range(1, n + 1)],
                "pictures": [self.picture_name(self.target, f"_explanation_{i}") for i in range(1, n + 1)]}

    def record(self) -> dict:
        record = super().record()
        names = self.file_names()
        record["files"] = {k: v for k, v in names.items() if k not in ("explanations", "pictures")}
        record["explanations"] = [{"index": i + 1, "file": names["explanations"][i], "picture": names["pictures"][i],
                                   **e.record()} for i, e in enumerate(self.explanations)]
        return record

    def arrays(self) -> dict[str, np.ndarray]:
        """The responsibility map (<method>_<target>.npy, float32) and each explanation as a
        boolean H x W mask (<method>_<target>_explanation_<i>.npy, i from 1)."""
        names = self.file_names()
        return {names["responsibility"]: self.maps[self.target].astype(np.float32),
                **{npy: e.mask.astype(bool) for e, npy in zip(self.explanations, names["explanations"])}}

    def pictures(self, original: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The responsibility overlay, all explanations outlined in colour with a legend (area,
        p(target) shown alone), and each explanation with the rest greyed."""
        image = self.image if original is None else original
        names = self.file_names()
        legend = [(_OUTLINE_COLOURS[i % len(_OUTLINE_COLOURS)],
                   f"{i + 1}: {e.area} px ({e.area / e.mask.size:.1%}), p(class) alone {e.probability:.3f}") for i, e in enumerate(self.explanations)]
        title = self.title(self.target)
        composite = annotate(outlines(image, [e.mask for e in self.explanations]),
                             [title[0] + f": {len(self.explanations)} minimal sufficient sets"], [
                                 f"each set shown alone satisfies '{self.params.get('criterion', 'top1')}'"], legend)
        return {**super().pictures(original), names["composite"]: composite,
                **{png: annotate(greyed(image, e.mask), [f"{title[0]}: explanation {i + 1}"], [], legend[i:i + 1])
                   for i, (e, png) in enumerate(zip(self.explanations, names["pictures"]))}}


def greyed(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image (any size, 0..255) with the pixels outside the mask (model resolution, resampled)
    faded to light grey, uint8 RGB at `display_size`."""
    rgb = photo(image).astype(np.float64)
    mask = resample(mask.astype(bool), rgb.shape[:2], nearest=True)
    faded = np.repeat((0.3 * (rgb @ np.array([0.299, 0.587, 0.114])) + 0.7 * 200.0)[..., None], 3, axis=2)
    return np.clip(np.where(mask[..., None], rgb, faded), 0, 255).round().astype(np.uint8)


def outlines(image: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """The image (any size) with the outline of each mask (model resolution, resampled) in its own
    colour, uint8 RGB at `display_size`."""
    canvas = np.ascontiguousarray(photo(image))
    thickness = max(2, min(canvas.shape[:2]) // 150)
    for i, mask in enumerate(masks):
        big = resample(mask.astype(bool), canvas.shape[:2], nearest=True).astype(np.uint8) * 255
        contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, _OUTLINE_COLOURS[i % len(_OUTLINE_COLOURS)], thickness)
    return canvas


def _real(value: Any) -> bool:
    """Whether `value` is a real number (not a bool, not NaN)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and value == value


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2 |a & b| / (|a| + |b|) of two boolean masks (0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / total if total else 0.0


def select_disjoint(masks: list[np.ndarray], max_overlap: float) -> list[int]:
    """Indices of the largest set of non-empty, distinct masks whose pairwise Dice is at most
    max_overlap; among equally large sets the smallest total area wins. Exact for up to 12
    distinct masks, greedy by area beyond."""
    seen, keep = set(), []
    for i, m in enumerate(masks):
        key = np.packbits(m).tobytes()
        if m.any() and key not in seen:
            seen.add(key)
            keep.append(i)
    n = len(keep)
    ok = np.array([[i == j or dice(masks[keep[i]], masks[keep[j]]) <= max_overlap for j in range(n)]
                   for i in range(n)], bool).reshape(n, n)
    areas = [int(masks[i].sum()) for i in keep]
    if n <= 12:
        best, best_key = [], (0, 0)
        for bits in range(1, 1 << n):
            members = [i for i in range(n) if bits >> i & 1]
            if all(ok[a, b] for a in members for b in members):
                key = (len(members), -sum(areas[i] for i in members))
                if key > best_key:
                    best, best_key = members, key
    else:
        best = []
        for i in sorted(range(n), key=lambda i: areas[i]):
            if all(ok[i, j] for j in best):
                best.append(i)
    return sorted((keep[i] for i in best), key=lambda i: (int(masks[i].sum()), i))


class _Search:
    """One image's search state: the model, the masked evaluation and the criterion."""

    def __init__(self, batches: Batches, prepared: PreparedInput, target: int, criterion: str, fraction: float,
                 clean: float) -> None:
        self.batches, self.prepared, self.model, self.target = batches, prepared, batches.model, target
        self.criterion, self.fraction, self.clean = criterion, fraction, clean
        self.h, self.w = prepared.mask_shape
        self.stopped: str | None = None  # the stage a deadline or cancellation stopped, if any

    def passes(self, probabilities: np.ndarray) -> np.ndarray:
        """The criterion on (N, classes) probabilities: bool (N,). "top1" on a multi-label model
        (independent p_c): p(target) >= 0.5."""
        if self.criterion == "top1":
            if self.model.output_kind == "sigmoid":
                return probabilities[:, self.target] >= 0.5
            return np.argmax(probabilities, axis=1) == self.target
        return probabilities[:, self.target] >= self.fraction * self.clean

    def evaluate(self, count: int, make_masks: Callable[[int, int], np.ndarray]):
        """Runs `count` masks (make_masks(first, n) -> (n, H, W) float32) in batches. Returns
        (passes bool (count,), p(target) float (count,))."""
        if not count:
            return np.zeros(0, bool), np.zeros(0)
        scores = self.batches.scores(self.prepared, count, make_masks, "probabilities")
        return self.passes(scores), scores[:, self.target].astype(np.float64)

    def evaluate_stack(self, masks: np.ndarray):
        """`evaluate` for masks already built: (N, H, W) float32."""
        return self.evaluate(len(masks), lambda first, n: masks[first:first + n])

    # ---- the responsibility map -------------------------------------------------------
    def responsibility(self, seed: int, iterations: int, refinements: int, min_area: int, max_depth: int) -> np.ndarray:
        """Mean over `iterations` random box trees of the summed sibling responsibility of
        the boxes met during a greedy descent (see `Causal`), TREES_PER_ROUND trees at a time
        (memory bounded whatever `iterations`). H x W float32; when the batches stop early, the
        mean over the trees reached."""
        total = np.zeros((self.h, self.w))
        for first in range(0, iterations, TREES_PER_ROUND):
            trees = min(TREES_PER_ROUND, iterations - first)
            if not self._descend(seed, range(first, first + trees), refinements, min_area, max_depth, total):
                self.stopped = "responsibility"
                break
        return (total / (first + trees)).astype(np.float32)

    def _descend(self, seed: int, trees: range, refinements: int, min_area: int, max_depth: int,
                 total: np.ndarray) -> bool:
        """The greedy descents of `trees` (tree indices, which key their random splits), one box
        per tree per round, their credit added to `total`. False when the batches stopped (the
        rounds finished so far are credited)."""
        whole = (0, 0, self.h, self.w)
        visible = {i: [whole] for i in trees}  # a sufficient set of disjoint boxes per tree
        queues = {i: deque([(whole, 0)]) for i in trees}
        done = dict.fromkeys(trees, 0)
        while True:
            active = []  # (tree, box, depth): one box per tree per round
            for i in trees:
                while queues[i] and done[i] < refinements:
                    box, depth = queues[i].popleft()
                    bh, bw = box[2] - box[0], box[3] - box[1]  # the core's `splittable` rule
                    if depth < max_depth and bh >= 2 and bw >= 2 and bh * bw >= min_area:
                        active.append((i, box, depth))
                        break
            if not active:
                return True
            n = len(active)
            children = _core.causal_split_boxes(
                seed, np.array([a[0] for a in active], np.int64), np.array([2 * done[a[0]] for a in active], np.int64),
                np.array([a[1] for a in active], np.int32), min_area)
            rows, groups = [], []
            for a, (i, box, _) in enumerate(active):
                context = [b for b in visible[i] if b != box]
                for s in range(15):  # subsets of the 4 children; 15 (all) passes by construction
                    shown = context + [tuple(children[a, j]) for j in range(4) if s >> j & 1]
                    rows += shown
                    groups += [15 * a + s] * len(shown)
            rows_arr = np.array(rows, np.int32).reshape(-1, 4)
            groups_arr = np.array(groups, np.int64)
            try:
                passed, _ = self.evaluate(15 * n, lambda first, count: self._box_masks(rows_arr, groups_arr, first,
                                                                                       count))
            except Stopped:  # a deadline or cancellation: the rounds finished so far make the map
                return False
            outcome = np.ones((n, 16), np.uint8)
            outcome[:, :15] = passed.reshape(n, 15)
            sides = children[:, :, 2:] - children[:, :, :2]
            resp, chosen = _core.causal_sibling_responsibility(outcome, np.ascontiguousarray(
                sides[:, :, 0].astype(np.int64) * sides[:, :, 1]))
            _core.causal_credit_boxes(np.ascontiguousarray(children.reshape(-1, 4)), resp.reshape(-1), total)
            for a, (i, box, depth) in enumerate(active):
                keep = [tuple(children[a, j]) for j in range(4) if chosen[a] >> j & 1]
                visible[i] = [b for b in visible[i] if b != box] + keep
                queues[i].extend((c, depth + 1) for c in keep)
                done[i] += 1

    def _box_masks(self, rows: np.ndarray, groups: np.ndarray, first: int, count: int) -> np.ndarray:
        lo, hi = np.searchsorted(groups, [first, first + count])
        return _core.causal_box_masks(rows[lo:hi], groups[lo:hi] - first, count, self.h, self.w, self.model.threads)

    # ---- one minimal sufficient set -----------------------------------------------------
    def grow(self, region: np.ndarray, order_key: np.ndarray, cuts: int) -> np.ndarray:
        """The shortest prefix of region's pixels, in decreasing order_key, that satisfies the
        criterion (region itself must): k-ary search, `cuts` candidates per batched round."""
        pixels = np.flatnonzero(region)
        order = pixels[np.argsort(-order_key.ravel()[pixels], kind="stable")]
        rank = np.full(self.h * self.w, np.iinfo(np.int32).max, np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        rank = rank.reshape(self.h, self.w)
        lo, hi = 0, len(order)  # showing lo pixels fails (nothing shown), hi passes
        while hi - lo > 1:
            k = min(cuts, hi - lo - 1)
            trial = np.unique(lo + (hi - lo) * np.arange(1, k + 1, dtype=np.int64) // (k + 1))
            trial = trial[(trial > lo) & (trial < hi)]
            passed, _ = self.evaluate(len(trial), lambda first, n: _core.causal_rank_masks(
                rank, np.ascontiguousarray(trial[first:first + n]), self.model.threads))
            if passed.any():
                new_hi = int(trial[passed].min())
                failing = trial[~passed & (trial < new_hi)]
                lo, hi = (int(failing.max()) if failing.size else lo), new_hi
            else:
                lo = int(trial.max())
        return rank < hi

    def prune(self, mask: np.ndarray, cell: int, max_parts: int, cuts: int, rounds: int) -> np.ndarray:
        """Drops connected parts (4-connected within cell x cell tiles) whose removal keeps the
        set sufficient. The cell starts at `cell`, doubled until the set has at most max_parts
        parts, then halved after each pass down to 1 pixel while it still has at most max_parts.
        A pass has up to `rounds` rounds: every part dropped alone (one batch), then the longest
        removable prefix among `cuts` lengths (most probable target first, one batch)."""
        labels, parts = _core.causal_mask_parts(np.ascontiguousarray(mask, np.uint8), cell)
        while parts > max_parts:
            cell *= 2
            labels, parts = _core.causal_mask_parts(np.ascontiguousarray(mask, np.uint8), cell)
        while True:
            dead = np.zeros(parts + 1, bool)
            dead[0] = True
            for _ in range(rounds):
                alive = np.flatnonzero(~dead)
                if len(alive) <= 1:
                    break
                drop = np.repeat(dead[None], len(alive), axis=0).astype(np.uint8)
                drop[np.arange(len(alive)), alive] = 1
                passed, p_target = self._drop(labels, drop)
                removable = [alive[i] for i in np.argsort(-p_target, kind="stable") if passed[i]]
                if not removable:
                    break
                longest = min(len(removable), len(alive) - 1)  # never drop every part
                lengths = np.unique(np.linspace(1, longest, min(cuts, longest) + 1).round().astype(int)[1:])
                lengths = lengths[lengths > 1]
                take = 1
                if lengths.size:
                    drop = np.repeat(dead[None], len(lengths), axis=0).astype(np.uint8)
                    for row, m in enumerate(lengths):
                        drop[row, removable[:m]] = 1
                    passed, _ = self._drop(labels, drop)
                    if passed.any():
                        take = int(lengths[passed].max())
                dead[removable[:take]] = True
            mask = ~dead[labels]
            cell //= 2
            if cell < 1:
                return mask
            labels, parts = _core.causal_mask_parts(np.ascontiguousarray(mask, np.uint8), cell)
            if parts > max_parts:
                return mask

    def _drop(self, labels: np.ndarray, drop: np.ndarray):
        return self.evaluate(len(drop), lambda first, n: _core.causal_drop_masks(
            labels, np.ascontiguousarray(drop[first:first + n]), self.model.threads))


class Causal(Explainer):
    """Causal responsibility and multiple minimal sufficient explanations (after ReX and
    MultiReX, Chockler et al.), searched in the C++ core with every round batched.

    Responsibility: `iterations` random box trees. In each, a greedy descent refines one box
    per round: the box is split at a random point into 4 children and the 15 mutants showing
    each subset of them (with the rest of the current sufficient set; everything else at the
    mask value) are evaluated; child j gets 1 / (1 + k), the largest over passing subsets s
    containing j whose s - {j} fails, with k the siblings hidden in s (the Halpern-Pearl
    responsibility restricted to siblings), added over its box; the passing subset of smallest
    area replaces the box (all 4 when none passes) and its children are refined later (breadth
    first, up to `refinements` boxes per tree, boxes of at least `min_area` pixels, depth
    `max_depth`). The map is the mean over trees. The rounds of all trees form one batch.

    Explanations: each is grown in decreasing responsibility inside a region (the cut found
    by batched k-ary search), then pruned by dropping connected parts. The region: the smallest
    of `spotlights` discs shown alone that passes (random centres moved towards responsibility;
    radius `radius`, grown `growth` x up to `grow_steps` times, all in one batch), excluding
    every pixel of earlier explanations. After a batch where no disc passes the discs keep
    growing; after `retries` + 1 such batches in a row the search stops (for the first
    explanation: grows it from the whole image instead), as it does at `max_explanations`.
    Returned: the largest set with pairwise Dice <= max_overlap, each re-verified.
    """

    method = "multi"

    def attribute(self, image: np.ndarray, target: Target = None, *, criterion: str = "top1",
                  fraction: float = 0.5, mask_value: Baseline = "mean", iterations: int = 12,
                  refinements: int = 6, min_area: int | None = None, max_depth: int = 10,
                  max_explanations: int = 4, max_overlap: float = 0.0, spotlights: int = 8,
                  radius: float | None = None, growth: float = 1.2, grow_steps: int = 4, cuts: int = 7,
                  part_size: int | None = None, max_parts: int = 48, prune_rounds: int = 6, retries: int = 2,
                  deadline: float | None = None, cancel: threading.Event | None = None,
                  seed: int = 0) -> CausalExplanation:
        """Responsibility map (H x W float32) of one target and its minimal sufficient sets.

        criterion: "top1" or "confidence" (p(target) >= fraction * p(target | image)).
        mask_value: what hidden pixels show: "mean" (the preset's mean), "blur", a pixel value
        0..255 or an image. min_area: smallest box split, pixels (default (side / 56)^2, 16 at
        224); radius: first spotlight radius, pixels (default 25 * side / 224); part_size:
        first pruning tile side, pixels (default side / 16), halved while a set has at most
        max_parts parts.
        """
        if criterion not in CRITERIA:
            raise OnnxplainError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
        fraction = check_fraction("fraction", fraction)
        for name, value in (("iterations", iterations), ("refinements", refinements), ("max_depth", max_depth),
                            ("max_explanations", max_explanations), ("spotlights", spotlights), ("cuts", cuts),
                            ("max_parts", max_parts), ("prune_rounds", prune_rounds)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise OnnxplainError(f"{name} must be a positive integer, got {value!r}")
        if iterations >= _SPOTLIGHT_STREAM:
            raise OnnxplainError(f"iterations must be below 2^40 (the box trees' random streams), got {iterations}")
        for name, value in (("grow_steps", grow_steps), ("retries", retries)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise OnnxplainError(f"{name} must be a non-negative integer, got {value!r}")
        if not (_real(max_overlap) and 0 <= max_overlap <= 1):
            raise OnnxplainError(f"max_overlap is a Dice coefficient in [0, 1], got {max_overlap!r}")
        if not (_real(growth) and 1 <= growth < np.inf):
            raise OnnxplainError(f"growth must be a finite number >= 1, got {growth!r}")
        if min_area is not None and not (isinstance(min_area, (int, np.integer)) and not isinstance(min_area, bool)
                                         and min_area >= 4):
            raise OnnxplainError(f"min_area must be an integer >= 4 pixels, got {min_area!r}")
        if radius is not None and not (_real(radius) and 0 < radius < np.inf):
            raise OnnxplainError(f"radius must be a finite number of pixels > 0, got {radius!r}")
        if part_size is not None:
            positive_int("part_size", part_size)
        seed = check_seed(seed)
        with self.run(image, target, deadline=deadline, cancel=cancel) as run:
            image, probabilities, targets = run.image, run.probabilities, run.targets
            if len(targets) != 1:
                raise OnnxplainError(f"multi explains one target at a time, got {targets}")
            t = targets[0]
            h, w = self.model.input_size
            side = min(h, w)
            min_area = int(min_area if min_area is not None else max(4, round((side / 56) ** 2)))
            radius = float(radius if radius is not None else 25.0 * side / 224)
            part_size = int(part_size if part_size is not None else max(2, side // 16))
            search = _Search(run.batches, run.prepare(mask_value), t, criterion, fraction, float(probabilities[t]))
            if criterion == "top1" and not search.passes(probabilities[None])[0]:
                what = "has p < 0.5" if self.model.output_kind == "sigmoid" else "is not the top class"
                raise OnnxplainError(f"class {t} {what} on the whole image, so nothing is sufficient for it under "
                                     f"criterion 'top1'; use criterion='confidence'")
            responsibility = search.responsibility(seed, int(iterations), int(refinements), min_area, int(max_depth))
            map_evaluations = run.evaluations - 1
            # order: responsibility, ties broken by a blurred copy (regions before isolated pixels)
            key = responsibility.astype(np.float64) + 1e-6 * cv2.GaussianBlur(
                responsibility, (0, 0), sigmaX=max(1.0, side / 32)).astype(np.float64) / max(float(responsibility.max()), 1e-12)

            def minimal(region: np.ndarray) -> np.ndarray:
                return search.prune(search.grow(region, key, int(cuts)), part_size, int(max_parts), int(cuts), int(prune_rounds))

            found: list[tuple[np.ndarray, str, int]] = []
            used = np.zeros((h, w), bool)
            radii = radius * float(growth) ** np.arange(int(grow_steps) + 1)
            spot, misses, before = 0, 0, run.evaluations
            try:
                while len(found) < max_explanations and search.stopped is None:
                    allowed = np.ascontiguousarray(~used, np.uint8)
                    grown = radii * float(growth) ** (len(radii) * misses)  # each miss keeps growing the discs
                    centres = _core.causal_spotlight_centres(seed, _SPOTLIGHT_STREAM + spot, int(spotlights),
                                                             responsibility, allowed, float(grown[0]), 3,
                                                             self.model.threads)
                    spot += int(spotlights)
                    discs = _core.causal_disc_masks(np.ascontiguousarray(np.repeat(centres, len(grown), axis=0)),
                                                    np.tile(grown, len(centres)).astype(np.float32), allowed,
                                                    self.model.threads)
                    passed, _ = search.evaluate_stack(discs)
                    areas = discs.reshape(len(discs), -1).sum(axis=1)
                    candidates = [i for i in range(len(discs)) if passed[i] and areas[i] > 0]
                    if candidates:
                        region, source = discs[min(candidates, key=lambda i: (areas[i], i))] > 0, "spotlight"
                    elif misses < retries:
                        misses += 1
                        continue
                    elif not found:  # no disc suffices: grow the first one from the whole map
                        region, source = np.ones((h, w), bool), "responsibility"
                    else:
                        break
                    mask = minimal(region)
                    found.append((mask, source, run.evaluations - before))
                    used |= mask
                    misses, before = 0, run.evaluations
            except Stopped:  # a deadline or cancellation: keep the explanations found so far
                search.stopped = "search"
            chosen = select_disjoint([m for m, _, _ in found], float(max_overlap))
            run.batches.stop = None  # the found sets are verified even past a deadline (one small batch),
            # with the image at the mask value alone last: if that passes too, the criterion is vacuous
            passed, p_alone = search.evaluate_stack(np.array([found[i][0] for i in chosen] + [np.zeros((h, w))],
                                                             np.float32))
            if passed[-1]:
                run.warn(f"class {t} passes criterion {criterion!r} with every pixel at the mask value, so any "
                         f"pixel set is sufficient and the explanations say nothing; choose another mask_value "
                         f"(CLI: --baseline)")
            passed, p_alone = passed[:-1], p_alone[:-1]
            explanations = [SufficientSet(found[i][0], float(p), found[i][2], found[i][1])
                            for i, ok, p in zip(chosen, passed, p_alone) if ok]
            params = {"criterion": criterion, "fraction": fraction if criterion == "confidence" else None,
                      "mask_value": describe_baseline(mask_value),
                      "iterations": int(iterations), "refinements": int(refinements), "min_area": min_area,
                      "max_depth": int(max_depth), "max_explanations": int(max_explanations),
                      "max_overlap": float(max_overlap), "spotlights": int(spotlights), "radius": radius,
                      "growth": float(growth), "grow_steps": int(grow_steps), "cuts": int(cuts), "part_size": part_size,
                      "max_parts": int(max_parts), "prune_rounds": int(prune_rounds),
                      "retries": int(retries),
                      "map_evaluations": map_evaluations, "candidates": len(found)}
            convergence = None if deadline is None and cancel is None else \
                {"stopped_in": search.stopped, "explanations": len(explanations)}
            return run.finish({t: responsibility}, params, seed, CausalExplanation, explanations=explanations,
                              complete=search.stopped is None, convergence=convergence)
