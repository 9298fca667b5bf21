"""Every method on one series or one text: occlusion, RISE, IG/PMI, multiple causal explanations,
counterfactual attribution and fidelity, over segments (series) or tokens/words (text).

The methods are `onnxplain.tabular`'s, run on a `sequences.SeriesMasker` / `TextMasker` (masks
(B, G) over the G features -> model inputs -> probabilities). Maps come back in the input's shape:
(C, T) or (T, C) float32 for a series, (L,) for ids, a feature's positions sharing its value.

- occlusion: drop_g = p(t|x) - p(t | x with feature g replaced).
- rise: sal_g = sum_i p(t|m_i) m_i[g] / (n p_keep), masks from the core's generator.
- ig / pmi: feature g replaced by `samples` draws: a series segment from the conditional Gaussian
  given its neighbouring steps (`sequences.SegmentSampler`), a text's tokens from the background
  corpus (unigram); IG_g = KL(p(.|x) || q_g), PMI_g,y = ln p(y|x) / q_g(y), q_g the mean over draws.
- multi: disjoint minimal sufficient feature sets (kept alone, the rest replaced).
- counterfactual: d-occlusion p(B | x_r with feature g from x_c) - p(B | x_r), and its mask-swap
  score; texts of a pair have equal token length.
- fidelity: MIF/LIF, deletion and insertion in a map's feature order, removed features replaced.

Options shared by every function (`**features`): series `window`, `per_channel`, `replacement`
("mean" / "interpolate"); text `tokenizer` (a tokenizer.json path or `tokenizers.Tokenizer`),
`level` ("token" / "word"), `replacement` ("mask" / "delete"), `mask_token` (id or token string).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from . import tabular
from .errors import OnnxplainError
from .explainer import Target, check_seed, positive_int
from .fidelity import Curves
from .sequences import (MASK_NAMES, SegmentSampler, SeriesMasker, SeriesModel, TextMasker, TextModel, encode,
                        load_tokenizer, read_corpus, special_id)
from .tabular import FeatureRun, TabularExplanation, TabularPair
from .visualize import colorize

METHODS = ("occlusion", "rise", "ig", "pmi", "multi")
N_SAMPLES = 16


@dataclass
class SequenceExplanation(TabularExplanation):
    """An explanation of one series or text: maps in the input's shape per target; `columns` the
    feature names (time ranges, tokens or words); `feature_of` the feature of each input position."""

    feature_of: np.ndarray = field(default_factory=lambda: np.zeros(0, int), repr=False)

    @property
    def modality(self) -> str:
        return self.model.get("modality", "series")

    def record(self) -> dict:
        record = super().record()
        record.update(modality=self.modality, input=record.pop("row"))
        return record

    def members(self, mask: np.ndarray) -> list[str]:
        return [self.columns[g] for g in np.unique(self.feature_of[np.asarray(mask, bool)])]

    def picture(self, target: int, original: np.ndarray | None = None) -> np.ndarray:
        """The series with its segments shaded by the map, or the text with its tokens highlighted."""
        title = f"{self.method}, class {target}"
        if self.modality == "text":
            return text_picture(self.features["tokens"], self.maps[target], title, self.signed)
        axis = 0 if self.features["layout"] == "NCT" else 1
        series, values = (self.image, self.maps[target]) if axis == 0 else (self.image.T, self.maps[target].T)
        return series_picture(series, values, title, self.signed)


class SequenceRun(FeatureRun):
    """A `FeatureRun` whose result is a `SequenceExplanation`."""

    def __init__(self, model: Any, method: str, masker: Any, target: Target, seed: int) -> None:
        super().__init__(model, method, masker, target, seed, SequenceExplanation)

    def finish(self, maps: dict[int, np.ndarray], params: dict, **extra) -> SequenceExplanation:
        return super().finish(maps, params, feature_of=self.masker.group_of, **extra)


# ---- pictures -----------------------------------------------------------------------------------

def series_picture(series: np.ndarray, values: np.ndarray, title: str = "", signed: bool | None = None,
                   width: int = 720, strip: int = 90) -> np.ndarray:
    """RGB uint8: one strip per channel of a (C, T) series drawn as a line over its steps shaded by
    the map's (C, T) colours."""
    channels, length = series.shape
    colours = colorize(values, signed)  # (C, T, 3)
    img = np.full((30 + strip * channels, width, 3), 255, np.uint8)
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    cv2.putText(img, title, (10, 20), font, 0.5, black, 1, cv2.LINE_AA)
    left, right = 40, width - 10
    xs = left + np.arange(length + 1) * (right - left) / length
    for c in range(channels):
        top = 30 + strip * c
        for t in range(length):
            cv2.rectangle(img, (int(xs[t]), top + 4), (int(xs[t + 1]), top + strip - 4), _tint(colours[c, t]), -1)
        y = series[c]
        span = float(y.max() - y.min()) or 1.0
        ys = top + strip - 8 - (y - y.min()) / span * (strip - 16)
        points = np.stack([(xs[:-1] + xs[1:]) / 2, ys], axis=1).round().astype(np.int32)
        cv2.polylines(img, [points], False, black, 1, cv2.LINE_AA)
        cv2.putText(img, f"c{c}", (6, top + strip // 2), font, 0.45, black, 1, cv2.LINE_AA)
    return img


def _tint(colour: np.ndarray) -> list[int]:
    """A map colour lightened so that black lines and text stay readable on it."""
    return (0.45 * colour + 0.55 * 255).astype(np.uint8).tolist()


def text_picture(tokens: list[str], values: np.ndarray, title: str = "", signed: bool | None = None,
                 width: int = 720) -> np.ndarray:
    """RGB uint8: the tokens in reading order, each on a box coloured by its map value."""
    font, black, scale, line = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0), 0.5, 26
    colours = colorize(np.asarray(values, np.float64)[None], signed)[0]
    boxes, x, y = [], 10, 40
    for token in tokens:
        text = token.encode("ascii", "replace").decode()
        w = cv2.getTextSize(text, font, scale, 1)[0][0] + 8
        if x + w > width - 10 and x > 10:
            x, y = 10, y + line
        boxes.append((text, x, y, w))
        x += w + 4
    img = np.full((y + 16, width, 3), 255, np.uint8)
    cv2.putText(img, title, (10, 20), font, 0.5, black, 1, cv2.LINE_AA)
    for (text, x, y, w), colour in zip(boxes, colours):
        cv2.rectangle(img, (x, y - 16), (x + w, y + 6), _tint(colour), -1)
        cv2.putText(img, text, (x + 4, y), font, scale, black, 1, cv2.LINE_AA)
    return img


# ---- inputs and maskers --------------------------------------------------------------------------

def make_masker(model: Any, x: Any, *, tokenizer: Any = None, window: int | None = None, per_channel: bool = True,
                replacement: str | None = None, level: str = "token", mask_token: int | str | None = None
                ) -> SeriesMasker | TextMasker:
    """The masker of a series (an array in the model's layout) or a text (ids, or a string with
    `tokenizer`); see the module docstring for the options."""
    if isinstance(model, SeriesModel):
        return SeriesMasker(model, x, window=window, per_channel=per_channel, replacement=replacement or "mean")
    if not isinstance(model, TextModel):
        raise OnnxplainError(f"onnxplain.sequential explains series and text models; this one is "
                             f"{type(model).__name__} (modality='series' / 'text' to force it)")
    tokens = words = None
    tokenizer = load_tokenizer(tokenizer) if isinstance(tokenizer, (str, bytes)) or hasattr(tokenizer, "is_file") \
        else tokenizer
    if isinstance(x, str):
        if tokenizer is None:
            raise OnnxplainError("text needs a tokenizer: tokenizer='tokenizer.json' (--tokenizer), or give token ids")
        x, tokens, words = encode(x, tokenizer)
    elif tokenizer is not None:
        tokens = [tokenizer.id_to_token(int(i)) or f"#{i}" for i in np.asarray(x).ravel()]
    if level == "word" and words is None:
        raise OnnxplainError("level='word' needs the text and its tokenizer (to know the words), not ids")
    if isinstance(mask_token, str):
        if tokenizer is None or tokenizer.token_to_id(mask_token) is None:
            raise OnnxplainError(f"mask token {mask_token!r} is not in the tokenizer's vocabulary; give its id "
                                 "(--mask-token ID)")
        mask_token = tokenizer.token_to_id(mask_token)
    if mask_token is None and tokenizer is not None:
        mask_token = special_id(tokenizer, MASK_NAMES)
    return TextMasker(model, x, tokens=tokens, words=words, level=level, replacement=replacement or "mask",
                      mask_token=mask_token)


def _run(model: Any, method: str, x: Any, target: Target, seed: int, features: dict) -> SequenceRun:
    start, seed = time.perf_counter(), check_seed(seed)
    run = SequenceRun(model, method, make_masker(model, x, **features), target, seed)
    run.start = start
    return run


# ---- methods ---------------------------------------------------------------------------------------

def occlusion(model: Any, x: Any, target: Target = None, *, seed: int = 0, **features: Any) -> SequenceExplanation:
    """Per feature, p(t|x) minus p(t) with it replaced."""
    return tabular.occlusion_map(_run(model, "occlusion", x, target, seed, features))


def rise(model: Any, x: Any, target: Target = None, *, n_masks: int = 1000, p_keep: float = 0.5, seed: int = 0,
         **features: Any) -> SequenceExplanation:
    """RISE over features: the expected p(t) when the feature is kept (each kept with p_keep)."""
    return tabular.rise_map(_run(model, "rise", x, target, seed, features), n_masks, p_keep)


def information_maps(model: Any, x: Any, target: Target = "top3", *, samples: int = N_SAMPLES,
                     background: Any = None, frame: int | None = None, seed: int = 0, **features: Any
                     ) -> tuple[SequenceExplanation, SequenceExplanation]:
    """(IG, PMI) from the same evaluations: `samples` draws of each removed feature; a series'
    segments from the conditional Gaussian given `frame` neighbouring steps (default the window),
    a text's tokens from the `background` corpus (ids, a .npy, texts or a .txt; required)."""
    samples = positive_int("samples", samples)
    run = _run(model, "ig", x, target, seed, features)
    masker = run.masker
    if isinstance(masker, SeriesMasker):
        sampler = SegmentSampler(masker, samples, run.seed, frame)
        draw = sampler.draws
        params = {"samples": samples, "sampler": "conditional gaussian", "frame": sampler.frame}
    else:
        if background is None:
            raise OnnxplainError("text IG/PMI draw replacement tokens from a background corpus: background= "
                                 "(ids, a .npy of ids, texts or a .txt; CLI --background)")
        corpus = read_corpus(background, features.get("tokenizer"))
        masker.model.check_vocabulary(corpus, "the background corpus")
        draw = lambda features: masker.corpus_draws(corpus, features, samples, run.seed)  # noqa: E731
        params = {"samples": samples, "sampler": "background corpus (unigram)", "corpus_tokens": len(corpus)}
    return tabular.information_from(run, draw, samples, params)


def ig(model: Any, x: Any, target: Target = None, **options: Any) -> SequenceExplanation:
    """Information gain of each feature in nats (one map, keyed by the top class)."""
    return information_maps(model, x, target, **options)[0]


def pmi(model: Any, x: Any, target: Target = "top3", **options: Any) -> SequenceExplanation:
    """Pointwise mutual information of each feature with each target."""
    return information_maps(model, x, target, **options)[1]


def multi(model: Any, x: Any, target: Target = None, *, criterion: str = "top1", fraction: float = 0.5,
          max_explanations: int = 4, seed: int = 0, **features: Any) -> SequenceExplanation:
    """Disjoint minimal sufficient feature sets per target; `explanations` boolean in the input's shape."""
    return tabular.multi_sets(_run(model, "multi", x, target, seed, features), criterion, fraction, max_explanations)


def explain(model: Any, x: Any, method: str, target: Target = None, **options: Any) -> SequenceExplanation:
    """One of METHODS by name (the CLI's entry point)."""
    functions = {"occlusion": occlusion, "rise": rise, "ig": ig, "pmi": pmi, "multi": multi}
    if method not in functions:
        raise OnnxplainError(f"method {method!r} has no series/text form; methods: {', '.join(METHODS)}")
    return functions[method](model, x, target, **options)


# ---- fidelity ------------------------------------------------------------------------------------

def curves(model: Any, x: Any, attribution: Any, metric: str = "deletion", *, target: int | None = None,
           fractions=None, seed: int = 0, **features: Any) -> Curves:
    """"mif-lif", "deletion" or "insertion" of a map (the input's shape, or an explanation) for
    `target` (default the top class), removed features replaced as the masker does."""
    if metric not in tabular.METRICS:
        raise OnnxplainError(f"metric must be one of {', '.join(tabular.METRICS)}, got {metric!r}")
    return tabular.ranked_curves(_run(model, metric, x, target, seed, features), attribution, metric, fractions)


# ---- counterfactual attribution ---------------------------------------------------------------------

def make_pair(model: Any, real: Any, counterfactual: Any, **features: Any) -> tuple[TabularPair, Any]:
    """The pair (x_r of class A, x_c of class B = its top class) and x_r's masker; texts must have
    equal token length."""
    if isinstance(model, TextModel):
        features.setdefault("replacement", "delete")  # no mask token needed: x_c replaces
    masker = make_masker(model, real, **features)
    other = make_masker(model, counterfactual, **features).row
    if other.shape != masker.row.shape:
        raise OnnxplainError(f"the counterfactual has shape {other.shape}, the real input {masker.row.shape}; a "
                             "pair must match (texts: the same number of tokens)")
    p_r, p_c = (model.run(v[None])[0].astype(np.float64) for v in (masker.row, other))
    a, b = int(np.argmax(p_r)), int(np.argmax(p_c))
    if a == b:
        raise OnnxplainError(f"both inputs are classified as {a}; the counterfactual must be of another class")
    masker.fill = masker.background = other[None]
    masker.replacement = "counterfactual"
    return TabularPair(masker.row, other, a, b, p_r, p_c, "given"), masker


def counterfactual(model: Any, real: Any, counterfactual: Any, **features: Any
                   ) -> tuple[TabularPair, SequenceExplanation, tabular.MaskSwap]:
    """The pair, its d-occlusion map (p(B | x_r with feature g from x_c) - p(B | x_r), keyed by B)
    and the map's mask-swap score."""
    pair, masker = make_pair(model, real, counterfactual, **features)
    run = SequenceRun(model, "d-occlusion", masker, pair.class_b, 0)
    gains = masker.scores(None) - run.probabilities[None]
    result = run.finish({pair.class_b: gains[:, pair.class_b]}, {"pair": pair.source})
    return pair, result, tabular.swap_score(masker, pair, result[pair.class_b], "d-occlusion")


# ---- the command line ----------------------------------------------------------------------------

def explain_cli(args: Any, model: Any) -> int:
    """`onnxplain explain` on a series model (SERIES.npy) or a text model (IDS.npy, or --text with
    --tokenizer): writes the result's files into --out and prints the strongest features."""
    x = _cli_input(args, model)
    if args.method not in METHODS:
        raise OnnxplainError(f"--method {args.method} has no series/text form; use one of {', '.join(METHODS)}")
    if isinstance(model, SeriesModel):
        if args.replacement in ("mask", "delete") or args.level != "token" or args.tokenizer or args.text:
            raise OnnxplainError("--text, --tokenizer, --level and --replacement mask/delete are for text models; "
                                 "a series takes --window, --segments and --replacement mean/interpolate")
        options: dict = {"window": args.window, "per_channel": args.segments == "channel",
                         "replacement": args.replacement}
    else:
        if args.replacement in ("mean", "interpolate"):
            raise OnnxplainError("a text model's --replacement is mask or delete")
        mask = args.mask_token
        options = {"tokenizer": args.tokenizer, "level": args.level, "replacement": args.replacement,
                   "mask_token": int(mask) if mask is not None and mask.isdigit() else mask}
    options["seed"] = args.seed
    if args.method == "rise":
        options.update(n_masks=args.masks, p_keep=args.p_keep)
    elif args.method in ("ig", "pmi"):
        options.update(samples=args.samples if args.samples is not None else N_SAMPLES)
        if isinstance(model, TextModel):
            options["background"] = args.background
        elif args.frame is not None:
            options["frame"] = args.frame
    elif args.method == "multi":
        options.update(criterion=args.criterion, fraction=args.fraction, max_explanations=args.max_explanations)
    from .cli import _parse_target

    target = _parse_target(args.target) if args.target is not None else ("top3" if args.method == "pmi" else "top")
    result = explain(model, x, args.method, target, **options)
    written = result.save(args.out)
    print(f"{args.method}: targets {result.targets}, {result.evaluations} inputs evaluated, {result.seconds:.2f} s; "
          f"wrote {len(written)} files to {args.out}")
    for t in result.targets:
        values = np.array([result[t].ravel()[result.feature_of.ravel() == g][0] for g in range(len(result.columns))])
        strongest = np.argsort(-np.abs(values), kind="stable")[:5]
        print(f"  class {t}: " + ", ".join(f"{result.columns[g]} {values[g]:+.4g}" for g in strongest))
        for i, mask in enumerate(result.explanations.get(t, []), 1):
            print(f"  explanation {i}: {', '.join(result.members(mask))}")
    return 0


def _cli_input(args: Any, model: Any) -> Any:
    """The series / ids from the input .npy, or --text."""
    if args.text is not None:
        if not isinstance(model, TextModel):
            raise OnnxplainError("--text is for text models; this model takes a series (give SERIES.npy)")
        if args.image is not None:
            raise OnnxplainError("give either an ids .npy or --text, not both")
        return args.text
    if args.image is None:
        raise OnnxplainError("give the input .npy after the model (a series C x T / T x C, or token ids L), "
                             "or --text \"...\" --tokenizer tokenizer.json")
    return read_npy(args.image)


def read_npy(path: str) -> np.ndarray:
    """A series or token ids from a .npy file."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise OnnxplainError(f"cannot read {path} as .npy: {exc}") from None


__all__ = ["METHODS", "SequenceExplanation", "occlusion", "rise", "ig", "pmi", "information_maps", "multi",
           "explain", "explain_cli", "read_npy", "curves", "make_pair", "counterfactual", "make_masker", "series_picture", "text_picture"]
