"""The series and text modalities: time-series and text classifiers, their inputs and maskers.

A *series* model takes one float tensor of rank 3, (N, C, T) or (N, T, C) (`layout` "NCT" /
"NTC", read from the graph: a dynamic axis is time, else the smaller fixed one is channels). A
series is held in the model's layout without the batch axis, (C, T) or (T, C); its features are
segments of `window` steps, one per channel (`per_channel=True`) or across all channels.

A *text* model takes int64/int32 token ids (N, L), with optional `attention_mask` and
`token_type_ids` inputs (fed consistently: 1 / 0 on every present token). A text is (L,) token ids
(a .npy, or a string encoded by a `tokenizer.json` through the `tokenizers` package); its
features are tokens, or words (the word pieces of one word merged). Inside the masker an id of -1
marks an absent position (deleted): it is fed as `pad_token` with attention 0, shifted to the end.

The masker classes subclass `tables.TabularMasker` (masks (B, G) over G features -> model inputs ->
mean probabilities), so every method of `onnxplain.tabular` runs on them (`onnxplain.sequential`).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from .errors import OnnxplainError, warn
from .explainer import check_frame
from .tables import TabularMasker, TabularModel

FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}
INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
SERIES_LAYOUTS = ("NCT", "NTC")
SERIES_REPLACEMENTS = ("mean", "interpolate")
TEXT_REPLACEMENTS = ("mask", "delete")
DEFAULT_BATCH = 64  # inputs per model call for batch_size="auto" (one batch's memory stays bounded)
ABSENT = -1  # a deleted token position inside the masker
MASK_NAMES = ("[MASK]", "<mask>", "[UNK]", "<unk>")
PAD_NAMES = ("[PAD]", "<pad>")


def detect_modality(session, input_name: str | None = None) -> str | None:
    """"series" for a main input of rank 3 and float type; "text" for int64/int32 ids (N, L) named
    like token ids, or next to an `attention_mask`; None otherwise."""
    inputs = session.get_inputs()
    if any(len(i.shape) == 4 for i in inputs):
        return None
    main = [i for i in inputs if i.name == input_name] or inputs
    if len(main) == 1 and len(main[0].shape) == 3 and main[0].type in FLOAT_TYPES:
        return "series"
    names = [i.name.lower() for i in inputs]
    ids = [i for i in main if len(i.shape) == 2 and i.type in INT_TYPES]
    if ids and (any("mask" in n for n in names) or any("ids" in i.name.lower() or "token" in i.name.lower()
                                                         for i in ids)):
        return "text"
    return None


# ---- models -------------------------------------------------------------------------------------

class SeriesModel(TabularModel):
    """A time-series classifier (what `Model(...)` returns for a rank-3 float input, or with
    modality="series"). layout: "NCT" / "NTC" (default: read from the graph). `run` takes series
    (N, *series_shape) in the model's layout; probabilities (N, K) float32."""

    modality = "series"
    default_batch = DEFAULT_BATCH

    def __init__(self, source: Any, *args: Any, layout: str | None = None, **options: Any) -> None:
        if layout is not None and layout not in SERIES_LAYOUTS:
            raise OnnxplainError(f"a series model's layout is one of {SERIES_LAYOUTS}, got {layout!r} (--layout)")
        self.layout = layout
        options.pop("modality", None)
        super().__init__(source, *args, modality="series", **options)

    def _read_inputs(self, inputs: list, node) -> None:
        if len(inputs) != 1 or len(node.shape) != 3 or node.type not in FLOAT_TYPES:
            raise OnnxplainError(f"a series model takes one float (N, C, T) or (N, T, C) input; this one has "
                                 f"{[(i.name, i.type, list(i.shape)) for i in inputs]}")
        a, b = (d if isinstance(d, int) else None for d in node.shape[1:])
        if self.layout is None:
            if a is not None and (b is None or a <= b):
                self.layout = "NCT"
            elif b is not None:
                self.layout = "NTC"
            else:
                raise OnnxplainError(f"input {node.name!r} {list(node.shape)}: both axes are dynamic; say which "
                                     "is time with layout='NCT' or 'NTC' (--layout)")
        self.channel_axis = 0 if self.layout == "NCT" else 1  # within one series
        self.channels, self.length = (a, b) if self.layout == "NCT" else (b, a)
        self.inputs = [(node.name, np.dtype(FLOAT_TYPES[node.type]))]
        self.per_column, self.feature_names, self.categorical = False, [], np.zeros(0, bool)

    def check_series(self, series: Any) -> np.ndarray:
        """The series as float64 in the model's layout, or an error naming the fix."""
        values = _array(series, "a series")
        if values.ndim == 3 and values.shape[0] == 1:
            values = values[0]
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
            raise OnnxplainError(f"a series is numeric ({'C, T' if self.layout == 'NCT' else 'T, C'}) for this "
                                 f"{self.layout} model, got shape {values.shape} dtype {values.dtype}")
        channels, length = values.shape[self.channel_axis], values.shape[1 - self.channel_axis]
        if self.channels is not None and channels != self.channels:
            hint = " (transposed? the model's layout is " + self.layout + ")" if length == self.channels else ""
            raise OnnxplainError(f"the series has {channels} channels, the model takes {self.channels}{hint}")
        if self.length is not None and length != self.length:
            raise OnnxplainError(f"the series has {length} steps, the model takes exactly {self.length}")
        if not np.all(np.isfinite(values)):
            raise OnnxplainError("the series holds NaN or infinite values")
        return values.astype(np.float64)

    def describe(self) -> dict:
        return {**super().describe(), "modality": "series", "layout": self.layout, "channels": self.channels,
                "length": self.length}


class TextModel(TabularModel):
    """A text classifier over token ids (what `Model(...)` returns for int ids (N, L), or with
    modality="text"). pad_token: the id fed at absent positions (attention 0). `run` takes ids
    (N, L) int64 (-1: absent); probabilities (N, K) float32."""

    modality = "text"
    default_batch = DEFAULT_BATCH

    def __init__(self, source: Any, *args: Any, pad_token: int = 0, **options: Any) -> None:
        if isinstance(pad_token, bool) or not isinstance(pad_token, (int, np.integer)) or pad_token < 0:
            raise OnnxplainError(f"pad_token must be a token id >= 0, got {pad_token!r}")
        self.pad_token = int(pad_token)
        options.pop("modality", None)
        super().__init__(source, *args, modality="text", **options)
        self.check_vocabulary(np.array([self.pad_token]), "pad_token")

    def _read_graph_facts(self, graph) -> None:
        """The class labels, and the vocabulary: token ids must be below it (None: unknown)."""
        super()._read_graph_facts(graph)
        self.vocabulary = _vocabulary(graph, self.roles["ids"])

    def check_vocabulary(self, ids: np.ndarray, what: str) -> None:
        """An error when `ids` (any integers >= 0) reach past the model's embedding table."""
        if self.vocabulary is not None and len(ids) and int(ids.max()) >= self.vocabulary:
            raise OnnxplainError(f"{what} holds token id {int(ids.max())}, outside the model's vocabulary "
                                 f"0..{self.vocabulary - 1} (its embedding table's rows)")

    def _read_inputs(self, inputs: list, node) -> None:
        def role(i) -> str:
            name = i.name.lower()
            return "attention" if "mask" in name else "types" if "type" in name else "ids"

        for i in inputs:
            if i.type not in INT_TYPES or len(i.shape) != 2:
                raise OnnxplainError(f"a text model's inputs are int64/int32 (N, L); {i.name!r} is {i.type} "
                                     f"{list(i.shape)}")
        node = node if role(node) == "ids" else next((i for i in inputs if role(i) == "ids"), node)
        roles = {"ids": node.name}
        for i in inputs:
            if i is not node:
                if role(i) in roles:
                    raise OnnxplainError(f"inputs {roles[role(i)]!r} and {i.name!r} both look like {role(i)}; name "
                                         "the token ids with input_name= (--input-name)")
                roles[role(i)] = i.name
        self.roles = roles
        self.inputs = [(i.name, np.dtype(INT_TYPES[i.type])) for i in inputs]
        width = node.shape[1]
        self.length = width if isinstance(width, int) else None
        self.per_column, self.feature_names, self.categorical = False, [], np.zeros(0, bool)

    def feeds(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Feeds for ids (N, L): absent (-1) positions as pad with attention 0; padded with absent
        positions to a fixed model length."""
        ids = np.asarray(ids, np.int64)
        if self.length is not None and ids.shape[1] < self.length:
            ids = np.pad(ids, ((0, 0), (0, self.length - ids.shape[1])), constant_values=ABSENT)
        present = ids != ABSENT
        values = {"ids": np.where(present, ids, self.pad_token), "attention": present.astype(np.int64),
                  "types": np.zeros_like(ids)}
        return {name: values[role].astype(dict(self.inputs)[name]) for role, name in self.roles.items()}

    def check_ids(self, ids: Any) -> np.ndarray:
        values = np.asarray(ids)
        if values.ndim == 2 and values.shape[0] == 1:
            values = values[0]
        if values.ndim != 1 or not len(values) or not np.issubdtype(values.dtype, np.integer):
            raise OnnxplainError(f"token ids are integers (L,), got shape {values.shape} dtype {values.dtype}; "
                                 "for text give a string and tokenizer= (--text ... --tokenizer tokenizer.json)")
        if self.length is not None and len(values) > self.length:
            raise OnnxplainError(f"{len(values)} tokens, the model takes at most {self.length}")
        if values.min() < 0 or values.max() > np.iinfo(np.int64).max:
            raise OnnxplainError(f"token ids must be in 0..2^63-1, got {values.min() if values.min() < 0 else values.max()}")
        self.check_vocabulary(values, "the text")
        return values.astype(np.int64)

    def describe(self) -> dict:
        return {**super().describe(), "modality": "text", "roles": self.roles, "length": self.length,
                "pad_token": self.pad_token}


def _vocabulary(graph, ids_name: str) -> int | None:
    """How many token ids the model embeds: the rows of the initializer a Gather (axis 0) indexes
    with the ids (through Casts); None when the graph has none or there is no graph (`read_graph`)."""
    if graph is None:
        return None
    tables = {t.name: list(t.dims) for t in graph.graph.initializer}
    ids = {ids_name}
    for node in graph.graph.node:  # in topological order
        if node.op_type in ("Cast", "Identity") and node.input and node.input[0] in ids:
            ids.update(node.output)
        elif node.op_type == "Gather" and len(node.input) == 2 and node.input[1] in ids and node.input[0] in tables \
                and next((a.i for a in node.attribute if a.name == "axis"), 0) == 0 and tables[node.input[0]]:
            return int(tables[node.input[0]][0])
    return None


# ---- text input -----------------------------------------------------------------------------------

def load_tokenizer(path: str | Path):
    """A `tokenizers.Tokenizer` from a tokenizer.json (the `onnxplain[text]` extra)."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise OnnxplainError("text needs the `tokenizers` package: pip install 'onnxplain[text]'") from None
    if not Path(path).is_file():
        raise OnnxplainError(f"tokenizer file not found: {path} (tokenizer= / --tokenizer tokenizer.json)")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust library raises its own exception type
        raise OnnxplainError(f"cannot read tokenizer {path}: {str(exc).splitlines()[0][:200]}") from None


def encode(text: str, tokenizer: Any) -> tuple[np.ndarray, list[str], list[int | None]]:
    """(ids (L,) int64, token strings, word index per token (None for special tokens))."""
    tokenizer = load_tokenizer(tokenizer) if isinstance(tokenizer, (str, Path)) else tokenizer
    try:
        encoding = tokenizer.encode(text)
    except Exception as exc:  # the tokenizers library raises plain Exceptions (e.g. a vocabulary without [UNK])
        raise OnnxplainError(f"the tokenizer cannot encode {text[:40]!r}: {str(exc)[:200]} (--tokenizer)") from None
    if not encoding.ids:
        raise OnnxplainError(f"the tokenizer gives no tokens for {text[:40]!r}")
    return np.array(encoding.ids, np.int64), list(encoding.tokens), list(encoding.word_ids)


def special_id(tokenizer: Any, names: tuple[str, ...]) -> int | None:
    """The id of the first of `names` the tokenizer knows."""
    for name in names:
        token = tokenizer.token_to_id(name)
        if token is not None:
            return int(token)
    return None


def read_corpus(source: Any, tokenizer: Any = None) -> np.ndarray:
    """Token ids of a background corpus, flattened: an array of ids, a .npy of ids, a list of texts
    or a .txt file (one text a line, needs `tokenizer`)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise OnnxplainError(f"background corpus not found: {path}")
        if path.suffix == ".npy":
            source = np.load(path, allow_pickle=False)
        else:
            try:
                source = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            except UnicodeDecodeError as exc:
                raise OnnxplainError(f"background corpus {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                     "give a UTF-8 .txt, one text a line, or a .npy of token ids") from None
    if isinstance(source, (list, tuple)) and source and isinstance(source[0], str):
        if tokenizer is None:
            raise OnnxplainError("a corpus of texts needs tokenizer= (--tokenizer tokenizer.json)")
        return np.concatenate([encode(text, tokenizer)[0] for text in source])
    ids = _array(source, "the background corpus").ravel()
    if not np.issubdtype(ids.dtype, np.integer) or not np.any(ids >= 0):
        raise OnnxplainError("the background corpus must be token ids (integers, some >= 0) or texts")
    return ids[ids >= 0].astype(np.int64)


def _array(values: Any, what: str) -> np.ndarray:
    """np.asarray of a user's nested lists, or an error naming `what` (a ragged list)."""
    try:
        return np.asarray(values)
    except ValueError:
        raise OnnxplainError(f"{what} must be a rectangular array, got nested lists of different lengths") from None


# ---- maskers ----------------------------------------------------------------------------------------

def positions(group_of: np.ndarray, count: int) -> list[np.ndarray]:
    """The flat positions of each of `count` features, ascending, from the feature of each position."""
    flat = group_of.ravel()
    order, ends = np.argsort(flat, kind="stable"), np.cumsum(np.bincount(flat, minlength=count)).tolist()
    return [order[start:end] for start, end in zip([0] + ends, ends)]


@functools.lru_cache(maxsize=64)
def segments(channels: int, length: int, window: int, per_channel: bool, channel_axis: int
             ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[np.ndarray, ...]]:
    """The features of a series of this shape (read-only, shared by its maskers): the segments' first
    steps (S,), the feature of each position (the series' shape), the names and each feature's flat
    positions. Per channel, feature c * S + s is channel c's segment s; else segment s spans all."""
    starts = np.arange(0, length, window)
    grid = np.arange(length)[None] // window + np.arange(channels)[:, None] * (len(starts) if per_channel else 0)
    group_of = grid if channel_axis == 0 else np.ascontiguousarray(grid.T)
    spans = [f"t{s}-{min(s + window, length) - 1}" for s in starts]
    names = tuple(f"c{c} {span}" for c in range(channels) for span in spans) if per_channel else tuple(spans)
    groups = positions(group_of, len(names))
    for values in (starts, group_of, *groups):
        values.flags.writeable = False
    return starts, group_of, names, tuple(groups)


class SeriesMasker(TabularMasker):
    """Masks over the segments of one series. window: steps per segment (default T // 16, at least
    1); per_channel: one feature per channel and segment, else one per segment across channels;
    replacement: "mean" (each channel's mean) or "interpolate" (a line across each segment between
    its neighbouring steps, per channel). Feature names "c<ch> t<a>-<b>" or "t<a>-<b>"."""

    def __init__(self, model: SeriesModel, series: Any, *, window: int | None = None, per_channel: bool = True,
                 replacement: str = "mean") -> None:
        if replacement not in SERIES_REPLACEMENTS:
            raise OnnxplainError(f"replacement must be one of {SERIES_REPLACEMENTS} for a series, got {replacement!r}")
        self.model, self.row = model, model.check_series(series)
        self.axis = model.channel_axis
        channels, length = self.row.shape[self.axis], self.row.shape[1 - self.axis]
        if window is not None and (isinstance(window, bool) or not isinstance(window, (int, np.integer))
                                   or not 1 <= window <= length):
            raise OnnxplainError(f"window must be an integer 1..{length} (steps), got {window!r} (--window)")
        self.window = max(1, length // 16) if window is None else int(window)
        self.per_channel, self.replacement = bool(per_channel), replacement
        self.starts, self.group_of, names, groups = segments(channels, length, self.window, self.per_channel,
                                                             self.axis)
        self.names = self.columns = list(names)
        self.groups = list(groups)
        self.fill = self.replace()[None]
        self.background, self.n_background, self.evaluations = self.fill, 1, 0

    def channel_major(self, values: np.ndarray) -> np.ndarray:
        """(C, T) view of a series-shaped array."""
        return values if self.axis == 0 else values.T

    def segment(self, group: int) -> tuple[range, int, int]:
        """Feature `group`'s channels and its steps start..end-1."""
        n, channels, length = len(self.starts), self.row.shape[self.axis], self.row.shape[1 - self.axis]
        start = int(self.starts[group % n])
        return (range(group // n, group // n + 1) if self.per_channel else range(channels),
                start, min(start + self.window, length))

    def replace(self) -> np.ndarray:
        """The replacement series, in the model's layout."""
        x = self.channel_major(self.row)
        if self.replacement == "mean":
            return self.channel_major(np.repeat(x.mean(axis=1, keepdims=True), x.shape[1], axis=1))
        fill = x.copy()
        length = x.shape[1]
        for start in self.starts:
            end = min(start + self.window, length)
            left = x[:, start - 1] if start > 0 else None
            right = x[:, end] if end < length else None
            left, right = (left if left is not None else right), (right if right is not None else left)
            if left is None:  # one segment covers the series: its mean
                fill[:, start:end] = x.mean(axis=1, keepdims=True)
                continue
            t = (np.arange(start, end) - (start - 1)) / (end - start + 1)
            fill[:, start:end] = left[:, None] + (right - left)[:, None] * t[None]
        return self.channel_major(fill)

    def record(self) -> dict:
        return {"features": self.names, "window": self.window, "per_channel": self.per_channel,
                "replacement": self.replacement, "layout": self.model.layout}


class TextMasker(TabularMasker):
    """Masks over the tokens (or words) of one text. ids: (L,); tokens: their strings (for names;
    default "#<id>"); words: word index per token (None: its own feature), for level="word";
    replacement: "mask" (`mask_token` id at removed tokens) or "delete" (removed tokens dropped,
    the rest shifted left, the attention mask following)."""

    def __init__(self, model: TextModel, ids: Any, *, tokens: list[str] | None = None,
                 words: list[int | None] | None = None, level: str = "token", replacement: str = "mask",
                 mask_token: int | None = None) -> None:
        if replacement not in TEXT_REPLACEMENTS:
            raise OnnxplainError(f"replacement must be one of {TEXT_REPLACEMENTS} for text, got {replacement!r}")
        if level not in ("token", "word"):
            raise OnnxplainError(f"level must be 'token' or 'word', got {level!r}")
        self.model, self.row = model, model.check_ids(ids)
        tokens = list(tokens) if tokens is not None else [f"#{i}" for i in self.row]
        if len(tokens) != len(self.row):
            raise OnnxplainError(f"{len(tokens)} token strings for {len(self.row)} ids")
        if mask_token is not None and (isinstance(mask_token, bool) or not isinstance(mask_token, (int, np.integer))
                                       or mask_token < 0):
            raise OnnxplainError(f"mask_token must be a token id >= 0 (or a token string with a tokenizer), got "
                                 f"{mask_token!r} (--mask-token)")
        if replacement == "mask" and mask_token is None:
            raise OnnxplainError("mask replacement needs the mask token's id: mask_token= (--mask-token ID), or "
                                 "a tokenizer that has [MASK]/[UNK]; or replacement='delete'")
        if replacement == "mask":
            model.check_vocabulary(np.array([mask_token]), "mask_token (--mask-token)")
        self.mask_token, self.replacement, self.level, self.tokens = mask_token, replacement, level, tokens
        self.group_of, self.names = self._features(tokens, words if level == "word" else None)
        self.columns = self.names
        self.groups = positions(self.group_of, len(self.names))
        self.fill = np.full((1, len(self.row)), mask_token if replacement == "mask" else ABSENT, np.int64)
        self.background, self.n_background, self.evaluations = self.fill, 1, 0

    @staticmethod
    def _features(tokens: list[str], words: list[int | None] | None) -> tuple[np.ndarray, list[str]]:
        """Feature per token and the feature names: each token, or runs of tokens of one word."""
        if words is None:
            return np.arange(len(tokens)), list(tokens)
        group_of, names, previous = [], [], object()
        for token, word in zip(tokens, words):
            if word is None or word != previous:
                names.append(token)
            else:
                names[-1] += token[2:] if token.startswith("##") else token
            group_of.append(len(names) - 1)
            previous = word
        return np.array(group_of), names

    def tables(self, masks: np.ndarray, fill: np.ndarray | None = None, row: np.ndarray | None = None) -> np.ndarray:
        """Ids (B * R, L): masked tokens replaced from `fill`; deletion moves the kept tokens left."""
        if self.replacement != "delete" or fill is not None:
            return super().tables(masks, fill, row)
        row = self.row if row is None else row
        keep = self.columns_of(masks)
        order = np.argsort(~keep, axis=1, kind="stable")  # kept positions first, in order
        shifted = row[order]
        shifted[np.arange(row.shape[0])[None] >= keep.sum(axis=1, keepdims=True)] = ABSENT
        return shifted

    def removed(self, first: int, last: int, fill: np.ndarray | None = None, row: np.ndarray | None = None
                ) -> np.ndarray:
        if self.replacement != "delete" or fill is not None:
            return super().removed(first, last, fill, row)
        return self.tables(1 - np.eye(self.count)[first:last], row=row)  # deletion shifts the kept tokens

    def corpus_draws(self, corpus: np.ndarray, groups: range, samples: int, seed: int) -> np.ndarray:
        """(len(groups) * samples, L): for each feature g of `groups`, `samples` copies of the text with
        g's tokens drawn from the corpus' tokens (uniformly over its positions: the unigram
        distribution), generator seeded (seed, g)."""
        draws = np.repeat(self.row[None], len(groups) * samples, axis=0)
        for i, group in enumerate(groups):
            positions = self.groups[group]
            rng = np.random.default_rng([seed, group])
            draws[i * samples:(i + 1) * samples, positions] = corpus[rng.integers(len(corpus),
                                                                                  size=(samples, len(positions)))]
        return draws

    def record(self) -> dict:
        return {"features": self.names, "level": self.level, "replacement": self.replacement,
                "mask_token": self.mask_token, "tokens": self.tokens, "ids": [int(i) for i in self.row]}


# ---- the conditional Gaussian sampler of series segments -------------------------------------------

class SegmentSampler:
    """`samples` draws of every segment of a series, each given the `frame` steps on each side: the
    Gaussian over (frame + window + frame) consecutive steps fitted on every such stretch of the
    series' channels (each channel standardised), conditioned on the neighbours that exist, then
    rescaled to the channel. Drawn up front (feature g's generator seeded (seed, g); samples x one
    series of values in all), pasted into copies of the series a batch of features at a time."""

    def __init__(self, masker: SeriesMasker, samples: int, seed: int, frame: int | None = None) -> None:
        self.masker, self.samples = masker, samples
        w = masker.window
        self.frame = w if frame is None else check_frame(frame)
        x = masker.channel_major(masker.row)
        self.scale = x.std(axis=1) + 1e-12
        self.center = x.mean(axis=1)
        z = (x - self.center[:, None]) / self.scale[:, None]
        span = 2 * self.frame + w
        if z.shape[1] < span + 2:
            raise OnnxplainError(f"the series ({z.shape[1]} steps) is too short to fit segments of {w} steps with "
                                 f"{self.frame}-step frames; use a smaller window or frame=")
        stretches = np.lib.stride_tricks.sliding_window_view(z, span, axis=1).reshape(-1, span)
        self.z = z  # (C, T) standardised
        self.mean = stretches.mean(axis=0)
        cov = np.cov(stretches, rowvar=False)
        variance = float(np.mean(np.diag(cov)))
        if variance == 0:  # every channel constant: each draw is the series itself, the maps zero
            warn("the series is constant, so every segment's draws equal it and IG/PMI are zero; use occlusion or "
                 "rise (replacement=) to see what the model reads from it")
        self.cov = cov + np.eye(span) * 1e-3 * (variance or 1.0)
        self._conditionals: dict[tuple[int, int, int], tuple] = {}
        self.values = self._draw_all(seed)  # (samples, channels, steps) per feature

    def _draw_all(self, seed: int) -> list[np.ndarray]:
        """(samples, channels, steps) per feature: its segment drawn given its neighbours; features
        whose stretches have one shape (the interior ones) share their conditional and are drawn
        together, each from its own generator."""
        masker, f, samples = self.masker, self.frame, self.samples
        segments = [masker.segment(g) for g in range(masker.count)]
        alike: dict[tuple[int, int, int], list[int]] = {}
        for g, (_, start, end) in enumerate(segments):
            alike.setdefault(self._stretch(start, end), []).append(g)
        values: list[np.ndarray] = [np.empty(0)] * masker.count
        for stretch, features in alike.items():
            known, gain, factor = self._conditional(*stretch)
            channels = np.array([list(segments[g][0]) for g in features])  # (n, channels)
            starts = np.array([segments[g][1] for g in features])
            noise = np.empty((len(features), samples, channels.shape[1], factor.shape[1]))
            for i, g in enumerate(features):
                np.random.default_rng([seed, g]).standard_normal(out=noise[i])
            # the known steps, standardised and centred: (n, channels, known)
            z = self.z[channels[:, :, None], starts[:, None, None] - f + known] - self.mean[known]
            mean = self.mean[f:f + stretch[2]] + (gain @ z[..., None])[..., 0]  # (n, channels, steps)
            drawn = (self.center[channels][:, None, :, None]
                     + self.scale[channels][:, None, :, None] * (mean[:, None] + noise @ factor.T))
            for i, g in enumerate(features):
                values[g] = drawn[i]
        return values

    def draws(self, groups: range) -> np.ndarray:
        """(len(groups) * samples, *series shape): for each feature g of `groups`, the series with g
        replaced by each of its draws."""
        masker, samples = self.masker, self.samples
        out = np.repeat(masker.row[None], len(groups) * samples, axis=0)
        by_channel = out if masker.axis == 0 else out.transpose(0, 2, 1)  # (N, C, T) view
        for i, group in enumerate(groups):
            channels, start, end = masker.segment(group)
            by_channel[i * samples:(i + 1) * samples, channels.start:channels.stop, start:end] = self.values[group]
        return out

    def _stretch(self, start: int, end: int) -> tuple[int, int, int]:
        """The shape of the stretch around steps start..end-1: its offsets (from start - frame) first..stop-1
        inside the series, and the segment's width."""
        first, stop = max(0, self.frame - start), min(len(self.mean), self.z.shape[1] - start + self.frame)
        return first, stop, end - start

    def _conditional(self, first: int, stop: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For a stretch's shape (`_stretch`): its known offsets (inside the series, outside the
        segment), the gain on them and a factor F of the conditional covariance (F F^T); computed
        once per shape (interior segments share one)."""
        f, span = self.frame, len(self.mean)
        if (first, stop, width) not in self._conditionals:
            offsets = np.arange(span)
            known = offsets[(offsets >= first) & (offsets < stop) & ((offsets < f) | (offsets >= f + width))]
            inside = np.arange(f, f + width)
            gain = np.linalg.solve(self.cov[np.ix_(known, known)], self.cov[np.ix_(known, inside)]).T
            cov = self.cov[np.ix_(inside, inside)] - gain @ self.cov[np.ix_(known, inside)]
            values, vectors = np.linalg.eigh((cov + cov.T) / 2)
            self._conditionals[first, stop, width] = known, gain, vectors * np.sqrt(np.clip(values, 0, None))[None]
        return self._conditionals[first, stop, width]
