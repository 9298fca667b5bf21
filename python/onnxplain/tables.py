"""The tabular modality: tabular classifiers, their rows, and the masker that fills removed features.

A tabular model takes one numeric tensor (N, F) (scikit-learn, XGBoost, LightGBM exported to ONNX)
or one input per column, each (N, 1), float, int64 or string (skl2onnx with named inputs;
int64 and string columns are categorical). Its probabilities are the output that holds them: a
(N, K) tensor, or a ZipMap sequence of {class: probability} maps, never the label output; class
names come from the graph's `classlabels_*` attributes when present.

Rows are (F,) values: a NumPy array, a CSV row (the header names the features), a pandas row or
DataFrame. A *table* here is (N, F): float64 when every column is numeric, else object.
"""
from __future__ import annotations

import csv
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .errors import OnnxplainError, OnnxplainWarning, warn
from .model import Model, _detect_kind, _open_session, read_graph, softmax

TENSOR_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                 "tensor(int32)": np.int32}
COLUMN_DTYPES = {**TENSOR_DTYPES, "tensor(string)": np.str_}
DEFAULT_BATCH_ROWS = 4096  # rows per model call
N_BACKGROUND = 16


def detect_modality(session, input_name: str | None = None) -> str:
    """"tabular" when the model's main input is rank 2 numeric, or when every input is one column
    ((N, 1) or (N,)); "image" when any input has rank 4, or otherwise."""
    inputs = session.get_inputs()
    if any(len(i.shape) == 4 for i in inputs):
        return "image"
    main = [i for i in inputs if i.name == input_name] or inputs
    if len(main) == 1 and len(main[0].shape) == 2 and main[0].type in TENSOR_DTYPES and main[0].shape[1] != 1:
        return "tabular"
    if len(inputs) > 1 and all(_is_column(i) for i in inputs):
        return "tabular"
    if len(inputs) == 1 and _is_column(inputs[0]):
        return "tabular"
    return "image"


def _is_column(node) -> bool:
    shape = list(node.shape)
    return node.type in COLUMN_DTYPES and (len(shape) == 1 or (len(shape) == 2 and shape[1] in (1, None, "None")))


# ---- data -----------------------------------------------------------------------------------

def read_table(source: Any, name: str = "data") -> tuple[np.ndarray, list[str] | None]:
    """A table (N, F) and its column names (None when the source has none) from a CSV path (header
    = names), a .npy path, a NumPy array ((F,) is one row), a dict {name: value} (one row) or a
    pandas DataFrame/Series."""
    if isinstance(source, dict):  # one row {feature name: value}
        return _numeric_if_possible(np.array([list(source.values())], dtype=object)), [str(k) for k in source]
    if hasattr(source, "to_numpy") and hasattr(source, "index"):  # pandas, without importing it
        names = [str(c) for c in (source.columns if hasattr(source, "columns") else source.index)]
        values = source.to_numpy()
        return _numeric_if_possible(values.reshape(-1, len(names))), names
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise OnnxplainError(f"{name} file not found: {path}")
        if path.suffix == ".npy":
            try:
                values = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise OnnxplainError(f"cannot read {name} from {path}: {exc}") from None
            return read_table(values, name)
        return _read_csv(path, name)
    if isinstance(source, (np.ndarray, list, tuple)):
        values = np.asarray(source)
        if values.ndim == 1:
            values = values[None]
        if values.ndim != 2 or values.size == 0:
            raise OnnxplainError(f"{name} must be one row (F,) or a table (N, F), got shape {values.shape}")
        return _numeric_if_possible(values), None
    raise OnnxplainError(f"{name} must be a CSV or .npy path, an array or a pandas DataFrame, got "
                         f"{type(source).__name__}")


def _read_csv(path: Path, name: str) -> tuple[np.ndarray, list[str]]:
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise OnnxplainError(f"cannot read {name} from {path}: {exc}") from None
    if len(rows) < 2:
        raise OnnxplainError(f"{path} must hold a header row (the feature names) and at least one data row")
    header, body = rows[0], [r for r in rows[1:] if r]
    if not body:
        raise OnnxplainError(f"{path} has a header but no data rows")
    if len(header) == 1 and ";" in header[0]:
        raise OnnxplainError(f"{path} looks separated by semicolons; onnxplain reads comma-separated CSV: convert it")
    if all(_is_number(h) for h in header):
        warn(f"{path}'s first line is all numbers: it is read as the header (the feature names), not as data row 0; "
             "add a header line")
    bad = next((i for i, r in enumerate(body, 2) if len(r) != len(header)), None)
    if bad is not None:
        raise OnnxplainError(f"{path} line {bad} has {len(body[bad - 2])} fields, the header {len(header)}")
    return _numeric_if_possible(np.array(body, dtype=object)), [h.strip() for h in header]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numeric_if_possible(values: np.ndarray) -> np.ndarray:
    """float64 when every value converts, else object with numeric columns converted column-wise."""
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        pass
    table = values.astype(object)
    for j in range(table.shape[1]):
        try:
            table[:, j] = table[:, j].astype(np.float64)
        except (TypeError, ValueError):
            table[:, j] = table[:, j].astype(str)
    return table


# ---- the model --------------------------------------------------------------------------------

class TabularModel(Model):
    """A tabular classifier: what `onnxplain.Model(...)` returns for a model whose main input is a
    table (or with modality="tabular"). An ONNX path, bytes or session whose rows (N, F) give class
    probabilities (N, K) float32. Image options (preset, input_size, layout, ...) do not apply.

    feature_names: one per column: the per-column inputs' names, else x0..x{F-1} (a CSV header
    replaces these when given to the masker). categorical[j]: column j is an int64 or string
    per-column input (drawn from the background, never Gaussian). class_names: from the graph's
    classlabels_strings / classlabels_ints (or the ZipMap keys), else None.
    """

    modality = "tabular"
    default_batch = DEFAULT_BATCH_ROWS  # rows per model call for batch_size="auto"

    def __init__(self, source: Any, preset: Any = None, output: str = "auto", *, modality: str = "tabular",
                 input_name: str | None = None, output_name: str | None = None, batch_size: int | str = "auto",
                 providers: Sequence[str] | None = None, progress: bool | None = None, threads: int = 0,
                 **image_options: Any) -> None:
        given = sorted(k for k, v in image_options.items() if v not in (None, {}))
        if given:
            raise OnnxplainError(f"{', '.join(given)} describe image models; this model's modality is "
                                 f"{self.modality} (modality='image' / --modality image to treat it as an image model)")
        if batch_size != "auto" and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise OnnxplainError(f"batch_size must be a positive integer or 'auto', got {batch_size!r}")
        if output not in ("auto", "probabilities", "logits"):
            raise OnnxplainError(f"a tabular model's output is 'auto', 'probabilities' or 'logits', got {output!r}")
        session = self.__dict__.pop("_opened", None) or _open_session(source, providers)
        self.session, self.progress, self.threads = session, progress, threads
        self._graph_source = self._binary = None  # Model's lazily read graph: unused here
        self.evaluations, self.inference_seconds = 0, 0.0
        self.batch_size = self.default_batch if batch_size == "auto" else int(batch_size)
        self.batch_setting = batch_size
        inputs = session.get_inputs()
        main = [i for i in inputs if i.name == input_name]
        if input_name is not None and not main:
            raise OnnxplainError(f"model has no input named {input_name!r}; its inputs are "
                                 f"{[i.name for i in inputs]} (input_name= / --input-name)")
        self._read_inputs(inputs, (main or inputs)[0])
        first = (main or inputs)[0].shape[0]
        self.fixed_batch = first if isinstance(first, int) and first > 0 else None  # rows per call the graph fixes
        if self.fixed_batch:
            if batch_size not in ("auto", self.fixed_batch):
                raise OnnxplainError(f"the model takes exactly {self.fixed_batch} rows per call; pass batch_size="
                                     f"{self.fixed_batch} or leave it 'auto' (CLI: --batch-size)")
            self.batch_size = self.fixed_batch
        self.input_name = ",".join(name for name, _ in self.inputs)
        self._input_types = [(name, str(dtype)) for name, dtype in self.inputs]  # for describe (str(dtype) is slow)
        self._choose_probability_output(output_name, output)
        self._read_graph_facts(read_graph(source))  # the graph parsed once
        self.num_classes: int | None = len(self.class_names) if self.class_names else None
        self._zipmap_keys: list | None = None

    def _read_graph_facts(self, graph) -> None:
        """What the graph (an onnx.ModelProto, or None) says beyond the session: the class labels."""
        self.class_names = _class_labels(graph)

    def _read_inputs(self, inputs: list, node) -> None:
        """Sets `inputs` [(name, dtype)], `per_column`, `feature_names` and `categorical` from the
        graph inputs (`node`: the main one)."""
        if len(inputs) == 1 and len(node.shape) == 2 and node.shape[1] != 1:
            if node.type not in TENSOR_DTYPES:
                raise OnnxplainError(f"tabular input {node.name!r} has type {node.type}; onnxplain feeds "
                                     f"{', '.join(TENSOR_DTYPES)}")
            width = node.shape[1]
            if not isinstance(width, int):
                raise OnnxplainError(f"tabular input {node.name!r} has shape {list(node.shape)} with a dynamic "
                                     "feature count; export the model with a fixed number of columns")
            self.inputs = [(node.name, np.dtype(TENSOR_DTYPES[node.type]))]
            self.per_column = False
            self.feature_names = [f"x{j}" for j in range(width)]
            self.categorical = np.zeros(width, bool)
        else:
            bad = [(i.name, i.type, list(i.shape)) for i in inputs if not _is_column(i)]
            if bad:
                raise OnnxplainError(f"a tabular model takes one (N, F) tensor or one (N, 1) input per column; "
                                     f"inputs {bad} are neither (modality='image' / --modality image for images)")
            self.inputs = [(i.name, np.dtype(COLUMN_DTYPES[i.type])) for i in inputs]
            self.per_column = True
            self.feature_names = [i.name for i in inputs]
            self.categorical = np.array([i.type in ("tensor(string)", "tensor(int64)", "tensor(int32)")
                                         for i in inputs])

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def _choose_probability_output(self, output_name: str | None, output: str) -> None:
        """The probabilities: the named output, else the one ZipMap sequence or the one float
        tensor (N, K) / (N,) of the graph (the int64/string label output is never used)."""
        outputs = {o.name: o for o in self.session.get_outputs()}
        if output_name is not None:
            if output_name not in outputs:
                raise OnnxplainError(f"model has no output named {output_name!r}; its outputs are {list(outputs)} "
                                     "(output_name= / --output-name)")
            chosen = [output_name]
        else:
            chosen = [n for n, o in outputs.items() if o.type.startswith("seq(map(")] or \
                [n for n, o in outputs.items() if o.type in ("tensor(float)", "tensor(double)")]
            if len(chosen) != 1:
                raise OnnxplainError(f"model has outputs {[(n, o.type) for n, o in outputs.items()]}; name the "
                                     "probability output with output_name= (CLI: --output-name)")
        self.output_name = chosen[0]
        self.zipmap = outputs[self.output_name].type.startswith("seq(map(")
        self.output_kind: str | None = "probabilities" if self.zipmap else None if output == "auto" else output

    # ---- evaluation --------------------------------------------------------------------------
    def feeds(self, table: np.ndarray) -> dict[str, np.ndarray]:
        """Model feeds for a table (N, F): one (N, F) tensor, or one (N, 1) array per column."""
        if not self.per_column:
            name, dtype = self.inputs[0]
            return {name: _numbers(table, dtype)}
        return {name: _column(table[:, j], dtype) for j, (name, dtype) in enumerate(self.inputs)}

    def run(self, table: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) float32 of a table (N, F), in calls of `batch_size` rows."""
        parts = [self._run_chunk(table[i:i + self.batch_size]) for i in range(0, len(table), self.batch_size)]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros((0, self.num_classes or 0), np.float32)

    def _run_chunk(self, table: np.ndarray) -> np.ndarray:
        rows = len(table)
        if self.fixed_batch and rows < self.fixed_batch:  # a fixed-batch graph: pad with the last row
            table = np.concatenate([table, np.repeat(table[-1:], self.fixed_batch - rows, axis=0)])
        start = time.perf_counter()
        try:
            out = self.session.run([self.output_name], self.feeds(table))[0]
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise OnnxplainError(f"the model failed on {rows} rows: {str(exc).splitlines()[0][:300]}") from None
        self.inference_seconds += time.perf_counter() - start
        self.evaluations += rows
        scores = (self._zipmap_scores(out) if self.zipmap else np.asarray(out, np.float32))[:rows]
        table = table[:rows]
        if scores.ndim == 1 or scores.shape[1] == 1:  # one column: p of class 1
            p = scores.reshape(-1).astype(np.float64)
            scores = np.stack([1 - p, p], axis=1).astype(np.float32)
            self.output_kind = "probabilities"
        if self.output_kind is None:
            self.output_kind = _detect_kind(scores, graph_read=True)
        if self.output_kind == "logits":
            scores = softmax(scores)
        if self.num_classes is None:
            self.num_classes = scores.shape[1]
        elif scores.shape[1] != self.num_classes:
            raise OnnxplainError(f"the model returned {scores.shape[1]} classes, its labels name {self.num_classes}")
        if not np.all(np.isfinite(scores)):
            raise OnnxplainError(self._non_finite_message(table))
        return scores

    def _non_finite_message(self, table: np.ndarray) -> str:
        """Why the scores of `table` were not finite: its float columns holding NaN, infinity or
        values beyond the model's float type (the usual cause), or the model itself."""
        dtypes = [dtype for _, dtype in self.inputs] if self.per_column else [self.inputs[0][1]] * self.n_features
        bad = []
        for j, dtype in enumerate(dtypes):
            if dtype.kind == "f":
                with np.errstate(over="ignore", invalid="ignore"):
                    if not np.all(np.isfinite(np.asarray(table[:, j], np.float64).astype(dtype))):
                        bad.append(f"{j} ({self.feature_names[j]!r})")
        message = f"the model returned NaN or infinite probabilities on {len(table)} row{'s' * (len(table) != 1)}"
        if not bad:
            return f"{message} whose values are all finite: the model itself produced them"
        return (f"{message}: {'columns' if len(bad) > 1 else 'column'} {', '.join(bad)} "
                f"{'hold' if len(bad) > 1 else 'holds'} NaN, infinity or values beyond {dtypes[0]}; fill or clip them "
                "in the row and the background (row= / background=; CLI: the data file, --background)")

    def _zipmap_scores(self, maps: list[dict]) -> np.ndarray:
        """(N, K) probabilities from a ZipMap sequence, in the order of the class labels."""
        if self._zipmap_keys is None:
            keys = list(maps[0]) if maps else []
            if self.class_names and sorted(map(str, keys)) == sorted(self.class_names):
                keys = sorted(keys, key=lambda k: self.class_names.index(str(k)))
            self._zipmap_keys = keys
            self.class_names = self.class_names or [str(k) for k in keys]
        return np.array([[m[k] for k in self._zipmap_keys] for m in maps], np.float32).reshape(len(maps), -1)

    def predict(self, rows: Any) -> np.ndarray:
        """Probabilities (N, K) of rows ((F,) gives (K,)): an array, a CSV path or a DataFrame."""
        single = isinstance(rows, np.ndarray) and rows.ndim == 1
        table, _ = read_table(rows, "rows")
        scores = self.run(self.check_table(table, "rows"))
        return scores[0] if single else scores

    def check_table(self, table: np.ndarray, name: str) -> np.ndarray:
        """The table with the model's column count and column kinds, or an error naming `name`."""
        if table.shape[1] != self.n_features:
            raise OnnxplainError(f"{name} has {table.shape[1]} columns, the model takes {self.n_features} features")
        for j in range(self.n_features):
            dtype = self.inputs[j if self.per_column else 0][1]
            kind = dtype.kind
            where = f"{name} column {j} ({self.feature_names[j]!r})"
            if kind == "U":  # a category: any value but a missing one
                if any(v is None or (isinstance(v, (float, np.floating)) and np.isnan(v)) for v in table[:, j]):
                    raise OnnxplainError(f"{where} has a missing value (None or NaN); the model's category input "
                                         "needs one: fill it")
                continue
            try:
                values = np.asarray(table[:, j], np.float64)
            except (TypeError, ValueError):
                bad = next((i for i, v in enumerate(table[:, j]) if not _is_number(str(v))), 0)
                what = "a missing value" if str(table[bad, j]).strip() in ("", "None", "<NA>") else \
                    f"text ({str(table[bad, j])[:30]!r})"
                raise OnnxplainError(f"{where} holds {what} in row {bad}; the model takes numbers there") from None
            if kind in "iu":
                limits = np.iinfo(dtype)
                whole = np.isfinite(values) & (values == np.rint(values)) & (values >= limits.min) & (values <= limits.max)
                if not whole.all():
                    raise OnnxplainError(f"{where} holds {values[~whole][0]:g}; the model's input there is an integer "
                                         f"(a category code): give whole numbers in {limits.dtype}'s range")
        return table

    def convert(self, scores: np.ndarray, kind: str) -> np.ndarray:
        """Probabilities as "probabilities" / "raw" (unchanged) or "logits" (log p)."""
        if kind in ("probabilities", "raw"):
            return scores
        return np.log(np.clip(scores.astype(np.float64), 1e-12, 1.0)).astype(np.float32)

    def describe(self) -> dict:
        return {"modality": "tabular", "inputs": [[name, kind] for name, kind in self._input_types],
                "per_column": self.per_column, "output_name": self.output_name, "zipmap": self.zipmap,
                "num_classes": self.num_classes, "class_names": self.class_names, "batch_size": self.batch_setting}

    def batch_record(self) -> dict:
        return {"size": self.batch_size, "setting": self.batch_setting, "tuning": None, "overlap": False}


def _column(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "U":
        return np.array([_text(v) for v in values], dtype=object).reshape(-1, 1)
    return _numbers(values, dtype).reshape(-1, 1)


def _numbers(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Values as the model's numeric dtype (integers rounded to the nearest; values beyond a float
    type become infinite, which the scores' check reports)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype.kind in "iu":
            return np.ascontiguousarray(np.rint(np.asarray(values, np.float64)), dtype)
        return np.ascontiguousarray(values, dtype)


def _text(value: Any) -> str:
    """A category as the string the model was trained on (2.0 read from a CSV of numbers is "2")."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _class_labels(graph) -> list[str] | None:
    """Class names from the graph's classifier node (classlabels_strings / classlabels_ints, or a
    ZipMap's classlabels_*); None when absent or without a graph (the output's order stands)."""
    if graph is None:
        return None
    for node in graph.graph.node:
        for attribute in node.attribute:
            if attribute.name in ("classlabels_strings", "classlabels_ints", "classlabels_int64s"):
                values = attribute.strings or attribute.ints
                return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    return None


def read_rows(model: TabularModel, source: Any, name: str) -> tuple[np.ndarray, list[str] | None]:
    """Rows (N, F) of `source` (see `read_table`) checked against the model, with their column
    names; a per-column model's columns are put in its input order when the names are its inputs'."""
    table, names = read_table(source, name)
    if model.per_column and names and names != model.feature_names:
        if sorted(names) == sorted(model.feature_names):
            table, names = table[:, [names.index(n) for n in model.feature_names]], list(model.feature_names)
        else:
            warnings.warn(f"{name}'s columns {names} are not the model's inputs {model.feature_names}: they are "
                          "taken by position", OnnxplainWarning, stacklevel=3)
    return model.check_table(table, name), names


def read_row(model: TabularModel, source: Any, name: str) -> tuple[np.ndarray, list[str] | None]:
    """One row (F,) as `read_rows` reads it, or an error naming `name`."""
    table, names = read_rows(model, source, name)
    if len(table) != 1:
        raise OnnxplainError(f"{name} must be one row (F,), got {len(table)} rows; pick one (CLI: --row N)")
    return table[0], names


# ---- the masker ---------------------------------------------------------------------------------

class _Hidden:
    """The progress bar of work too short to show one (a disabled tqdm still registers itself)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Hidden:
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress_bar(total: int, description: str, unit: str, show: bool) -> tqdm | _Hidden:
    """A transient tqdm bar over `total` units when `show`, else a stand-in that does nothing."""
    return tqdm(total=total, desc=description, unit=unit, leave=False) if show else _Hidden()


class TabularMasker:
    """Turns masks over feature groups into model rows: kept features from the row, removed ones
    from background rows; a mask's score is the mean probability over `n_background` background
    rows (the first n of a seeded permutation of the background, the same rows for every mask).

    row: (F,) values; background: (M, F) table (CSV path, array, DataFrame); groups: {name:
    [column names or indices]} (columns in no group are each their own feature), None: one
    feature per column. A mask is (B, G) in {0, 1} over the G groups (`names`), 1 keeping.
    """

    def __init__(self, model: TabularModel, row: Any, background: Any, *, groups: dict | None = None,
                 n_background: int = N_BACKGROUND, seed: int = 0) -> None:
        if background is None:
            raise OnnxplainError("tabular explanations need background rows to fill removed features: pass "
                                 "background= (a CSV path, an array or a DataFrame; CLI: --background bg.csv)")
        if isinstance(n_background, bool) or not isinstance(n_background, (int, np.integer)) or n_background < 1:
            raise OnnxplainError(f"n_background must be a positive integer, got {n_background!r}")
        self.model = model
        self.row, row_names = read_row(model, row, "row")
        self.background, background_names = read_rows(model, background, "background")
        if not len(self.background):
            raise OnnxplainError("background has no rows")
        if row_names and background_names and row_names != background_names:
            if sorted(row_names) != sorted(background_names) or len(set(row_names)) != len(row_names):
                raise OnnxplainError(f"the row's columns {row_names} are not the background's {background_names}; "
                                     "give both the same columns (CSV headers, DataFrame columns or dict keys)")
            self.background = self.background[:, [background_names.index(n) for n in row_names]]
        self.columns = list(row_names or background_names or model.feature_names)
        if len(self.background) < n_background:
            warnings.warn(f"the background has {len(self.background)} rows, fewer than n_background={n_background}: "
                          "each feature set is averaged over those only", OnnxplainWarning, stacklevel=3)
        order = np.random.default_rng(seed).permutation(len(self.background))
        self.fill = self.background[order[:n_background]]  # (R, F)
        self.n_background = len(self.fill)
        self.groups, self.names = self._groups(groups)
        self.group_of = np.empty(model.n_features, np.int64)
        for g, cols in enumerate(self.groups):
            self.group_of[cols] = g
        self.evaluations = 0

    def _groups(self, groups: dict | None) -> tuple[list[np.ndarray], list[str]]:
        if groups is None:
            return [np.array([j]) for j in range(len(self.columns))], list(self.columns)
        if not isinstance(groups, dict) or not groups:
            raise OnnxplainError("groups must be a non-empty dict {name: [column names or indices]}")
        taken: dict[int, str] = {}
        result, names = [], []
        for name, members in groups.items():
            if not isinstance(members, (str, int, np.integer, list, tuple, np.ndarray)):
                raise OnnxplainError(f"groups[{name!r}] must be a column (name or index) or a list of them, got "
                                     f"{type(members).__name__}")
            cols = []
            for m in ([members] if isinstance(members, (str, int)) else members):
                j = self.columns.index(m) if m in self.columns else m
                if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < len(self.columns):
                    raise OnnxplainError(f"groups[{name!r}] names {m!r}, which is no column; columns: {self.columns}")
                if int(j) in taken:
                    raise OnnxplainError(f"column {self.columns[j]!r} is in groups {taken[int(j)]!r} and {name!r}")
                taken[int(j)] = str(name)
                cols.append(int(j))
            if not cols:
                raise OnnxplainError(f"groups[{name!r}] is empty")
            result.append(np.array(cols))
            names.append(str(name))
        for j in range(len(self.columns)):
            if j not in taken:
                result.append(np.array([j]))
                names.append(self.columns[j])
        return result, names

    @property
    def count(self) -> int:
        """G, the number of features (groups) a mask covers."""
        return len(self.groups)

    def columns_of(self, masks: np.ndarray) -> np.ndarray:
        """Masks over groups (B, G) as masks over positions (B, *row.shape) (a table's columns), bool."""
        return np.asarray(masks, bool)[:, self.group_of]

    def tables(self, masks: np.ndarray, fill: np.ndarray | None = None, row: np.ndarray | None = None) -> np.ndarray:
        """Model rows (B * R, *row.shape): for each mask (B, G) and each fill row (R, *row.shape, or
        (B, R, *row.shape): one set per mask; default the background draws), the row's value where
        kept, the fill's elsewhere."""
        fill = self.fill if fill is None else fill
        row = self.row if row is None else row
        keep = self.columns_of(masks)[:, None]
        fill = fill if fill.ndim == row.ndim + 2 else fill[None]
        return np.where(keep, row[None, None], fill).reshape(-1, *row.shape)

    def removed(self, first: int, last: int, fill: np.ndarray | None = None, row: np.ndarray | None = None
                ) -> np.ndarray:
        """`tables(1 - I[first:last], fill, row)` for fill rows (R, *row.shape), built faster: copies
        of the row, feature g (first <= g < last) replaced by each fill row at its positions."""
        fill, row = self.fill if fill is None else fill, self.row if row is None else row
        if fill.ndim != row.ndim + 1:
            raise ValueError(f"removed takes fill rows shared by every mask (R, *row.shape), got {fill.shape}")
        fill, shape, row = fill.reshape(len(fill), -1), row.shape, row.reshape(-1)  # (R, P), (P,)
        out = np.empty((last - first, len(fill), len(row)), np.result_type(row.dtype, fill.dtype))
        out[:] = row
        flat = self.group_of.reshape(-1)
        if first == 0 and last == self.count:  # every position
            out[flat, :, np.arange(len(flat))] = fill.T
        else:
            positions = np.flatnonzero((flat >= first) & (flat < last))
            out[flat[positions] - first, :, positions] = fill[:, positions].T
        return out.reshape(-1, *shape)

    def _per_mask(self, fill: np.ndarray) -> bool:
        """Whether `fill` holds one set of rows per mask (B, R, *row.shape)."""
        return fill.ndim == self.row.ndim + 2

    def scores(self, masks: np.ndarray | None, fill: np.ndarray | Callable[[int, int], np.ndarray] | None = None,
               row: np.ndarray | None = None, description: str = "") -> np.ndarray:
        """Mean probabilities (B, K) float64 over the fill rows ((R, ...) or (B, R, ...), see `tables`;
        or a function (first, last) -> the fill rows (last - first, R, ...) of those masks), for masks
        (B, G), or None: each feature removed in turn (1 - I, the rows from `removed`), streamed in
        batches of the model's batch size (memory bounded by one batch)."""
        fill = self.fill if fill is None else fill
        masks = None if masks is None else np.asarray(masks)
        count = self.count if masks is None else len(masks)
        if callable(fill):
            rows = fill(0, 1).shape[1]
        else:
            rows = fill.shape[1] if self._per_mask(fill) else fill.shape[0]
        per_batch = max(1, self.model.batch_size // rows)
        bar = progress_bar(count, description, "mask",
                           bool(description) and self.model.progress is not False and count >= 4 * per_batch)
        parts = []
        for first in range(0, count, per_batch):
            last = min(first + per_batch, count)
            fills = fill(first, last) if callable(fill) else fill[first:last] if self._per_mask(fill) else fill
            inputs = (self.removed(first, last, fills, row) if masks is None
                      else self.tables(masks[first:last], fills, row))
            probabilities = self.model.run(inputs).astype(np.float64)
            parts.append(probabilities if rows == 1 else probabilities.reshape(last - first, rows, -1).mean(axis=1))
            self.evaluations += (last - first) * rows
            bar.update(last - first)
        bar.close()
        return np.concatenate(parts) if parts else np.zeros((0, self.model.num_classes or 0))

    def clean(self, row: np.ndarray | None = None) -> np.ndarray:
        """Probabilities (K,) float64 of the row itself (one evaluation)."""
        self.evaluations += 1
        return self.model.run((self.row if row is None else row)[None]).astype(np.float64)[0]

    def spread(self, values: np.ndarray) -> np.ndarray:
        """Values per group (..., G) as values per position (..., *row.shape): a table's columns."""
        return np.asarray(values)[..., self.group_of]

    def record(self) -> dict:
        return {"features": self.names, "columns": self.columns, "n_background": self.n_background,
                "background_rows": int(len(self.background)),
                "groups": None if all(len(g) == 1 for g in self.groups) else
                {n: [self.columns[j] for j in g] for n, g in zip(self.names, self.groups) if len(g) > 1}}
