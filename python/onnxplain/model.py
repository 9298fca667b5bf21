"""The black box: an ONNX session (or any callable) that maps images to class scores."""
from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _core
from .batches import Batches, MaskMaker
from .errors import OnnxplainError, warn
from .image import image_size, unit_range_message
from .masking import Baseline, ImageMasker
from .preprocess import Preprocess, get_preset
from .scheduler import EXPLANATION, PREDICTION, Scheduler

DEFAULT_BATCH_SIZE = "auto"  # tuned on a run's first batches; an int fixes it
BATCH_CANDIDATES = (1, 2, 4, 8, 16, 32, 64)  # the sizes "auto" times:
TUNING_REPEATS = 2  # each this many times,
CONTENDER_MARGIN, CONTENDER_REPEATS = 0.8, 5  # then those within 80 % of the best until each has 5 timings
DRIFT_BATCHES, DRIFT_FRACTION = 5, 0.8  # timed again after 5 batches in a row under 80 % of the choice's median
MAX_THREADS_PER_CORE = 4  # threads= beyond this many per core only adds contention (10^5 hung creating them)
BATCH_MEMORY = 512 * 2**20  # bytes the two batch buffers may take under "auto"
OUTPUT_KINDS = ("auto", "logits", "probabilities", "sigmoid")
MODALITIES = ("auto", "image", "tabular", "series", "text")
INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
                "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, computed in float64, returned as float32."""
    z = scores.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z.astype(np.float32)


def _detect_kind(scores: np.ndarray, graph_read: bool) -> str:
    """What a model emits, from its first batch (N, classes) when its graph shows no final Softmax
    or Sigmoid: logits, or probabilities when rows are non-negative and sum to 1. Without a graph
    to read, rows in 0..1 that do not sum to 1 are refused (they may be multi-label sigmoids)."""
    if scores.min() < 0 or scores.max() > 1:
        return "logits"
    if np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
        return "probabilities"
    if graph_read:
        return "logits"
    raise OnnxplainError("the model's scores lie in 0..1 but do not sum to 1 over the classes: if they are "
                         "independent per-class probabilities (multi-label), pass output='sigmoid' (CLI: --output "
                         "sigmoid); if they are logits, output='logits'")


class Model:
    """A classifier treated as a black box.

    source: path to an .onnx file, its bytes, an ``onnxruntime.InferenceSession``, or a callable
    taking a preprocessed float32 batch (model layout) and returning (N, classes) scores.
    modality: "auto" (read from the model's main input), "image", "tabular", "series" or "text"; a
    tabular model (main input (N, F), or one input per column) is a `tables.TabularModel`, a series
    model (one rank-3 float input) a `sequences.SeriesModel`, a text model (int token ids (N, L)) a
    `sequences.TextModel`.
    preset: preprocessing, a name from ``onnxplain.PRESETS`` or a ``Preprocess``.
    output: what the model emits: "logits", "probabilities" (softmax over classes), "sigmoid"
    (independent per-class probabilities, multi-label; with one output column, p of class 1), or
    "auto" (a final Softmax/Sigmoid node in the graph, else the first batch's values).
    input_size, layout, channels: (H, W), "NCHW"/"NHWC" and C; read from the ONNX graph, required
    for callables (channels default 3).
    input_name, output_name: which graph input/output to use when it cannot be told.
    constants: values for the graph's other inputs, {name: array} (with or without the batch axis).
    threads: the core's threads and the ONNX session's intra-op threads (0: all cores).
    recipe: the keyword arguments that build this model again in another process (source a path
    or bytes), or None for a session or a callable.
    batch_size: rows per model call, or "auto" (timed on the first batches, within batch_memory
    bytes of batch buffers). shared_batching: threads sharing the model fill each model call from
    all their waiting batches (`onnxplain.scheduler`); False lets each call the model on its own.
    """

    modality = "image"

    def __new__(cls, source: Any = None, *args: Any, modality: str = "auto", **kwargs: Any) -> Model:
        """A `tables.TabularModel`, `sequences.SeriesModel` or `sequences.TextModel` when the ONNX
        model takes a table, a series or token ids (or `modality` says so), else a Model; the
        session opened to tell is handed to __init__."""
        if modality not in MODALITIES:
            raise OnnxplainError(f"modality must be one of {MODALITIES}, got {modality!r}")
        if callable(source) and not _is_session(source) and modality not in ("auto", "image"):
            raise OnnxplainError(f"a {modality} model must be ONNX (a path, bytes or an InferenceSession), not a callable")
        if cls is not Model or modality == "image" or (callable(source) and not _is_session(source)):
            return super().__new__(cls)
        from . import sequences, tables

        session = _open_session(source, kwargs.get("providers"), kwargs.get("threads", 0))
        if modality == "auto":
            modality = sequences.detect_modality(session, kwargs.get("input_name")) or \
                tables.detect_modality(session, kwargs.get("input_name"))
        classes = {"tabular": tables.TabularModel, "series": sequences.SeriesModel, "text": sequences.TextModel}
        model = super().__new__(classes.get(modality, cls))
        model._opened = session
        return model

    def __init__(
        self,
        source: str | Path | bytes | Any,
        preset: str | Preprocess = "imagenet",
        output: str = "auto",
        *,
        modality: str = "auto",
        input_size: tuple[int, int] | None = None,
        layout: str | None = None,
        channels: int | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
        constants: dict[str, np.ndarray] | None = None,
        batch_size: int | str = DEFAULT_BATCH_SIZE,
        batch_memory: int = BATCH_MEMORY,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        progress: bool | None = None,
        shared_batching: bool = True,
    ) -> None:
        if output not in OUTPUT_KINDS:
            raise OnnxplainError(f"output must be one of {OUTPUT_KINDS}, got {output!r}")
        if batch_size != "auto" and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise OnnxplainError(f"batch_size must be a positive integer or 'auto', got {batch_size!r}")
        if isinstance(batch_memory, bool) or not isinstance(batch_memory, int) or batch_memory < 1:
            raise OnnxplainError(f"batch_memory must be a positive number of bytes, got {batch_memory!r}")
        if layout not in (None, "NCHW", "NHWC"):
            raise OnnxplainError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
        preprocess = get_preset(preset)
        self._output_kind = None if output == "auto" else output
        self._binary: str | None = None  # one output column: "probability" (p of class 1) or "logit"
        self._graph_source: Any = None  # the graph, read on first need (importing onnx costs ~70 ms)
        self._one_column = False  # the output has one column (binary)
        self.threads = check_threads(threads)
        self.progress = progress
        self.evaluations = 0  # images evaluated by the model so far, by every caller
        self.inference_seconds = 0.0  # wall time spent inside the model itself
        self._lock = threading.Lock()  # the model may be shared by threads: totals and detected state
        self.fixed_batch: int | None = None
        self.num_classes: int | None = None
        self._columns: int | None = None  # the output columns of the first batch: every batch must match
        self.input_dtype = np.dtype(np.float32)
        self.session = None
        self._constants: dict[str, np.ndarray] = {}
        self._repeated: set[str] = set()  # constants repeated along the batch axis
        self._feeds: dict[int, dict[str, np.ndarray]] = {}  # batch size -> constant feeds
        self._graph_read = False  # whether the ONNX graph could be read (its final activation)
        self.recipe = None if callable(source) or _is_session(source) else dict(
            source=source, preset=preset, output=output, input_size=input_size, layout=layout, channels=channels,
            input_name=input_name, output_name=output_name, constants=constants, batch_size=batch_size,
            batch_memory=batch_memory, providers=providers, modality=modality, shared_batching=shared_batching)
        layout = layout or preprocess.layout
        if callable(source) and not _is_session(source):
            if input_size is None:
                raise OnnxplainError("a callable model needs input_size=(H, W)")
            if constants:
                raise OnnxplainError("constants= feeds extra graph inputs; a callable model has none")
            self._fn = source
            self.input_name = self.output_name = None
            self.layout = layout or "NCHW"
            self.input_size = image_size(input_size)
            self.channels = _positive("channels", 3 if channels is None else channels)
        else:
            self.session = self.__dict__.pop("_opened", None) or _open_session(source, providers, threads)
            self._inspect_input(input_name, input_size, layout, channels, constants or {})
            self._inspect_output(self._choose_output(output_name), source)
            self._fn = self._run_session
        self.preprocess = preprocess.for_channels(self.channels)
        if self.input_dtype.kind in "iu":
            gain, bias = self.preprocess.gain, self.preprocess.bias
            if not (np.all(gain == 1) and np.all(bias == np.round(bias))):
                raise OnnxplainError(
                    f"model input {self.input_name!r} takes {self.input_dtype} values, so the preprocessing must keep "
                    "whole numbers (scale 1, std 1, integer mean); use preset='raw' (CLI: --preset raw) when the "
                    "graph normalises inside")
        self.preprocessor = _core.Preprocessor(
            self.input_size + (self.channels,), self.preprocess.gain, self.preprocess.bias,
            self.preprocess.source_channels, self.layout == "NCHW", threads)
        self.masker = ImageMasker(self)
        # Batches are built between inferences on a CPU (all cores to each in turn), while the model
        # runs on an accelerator.
        self.overlap = self.session is not None and self.session.get_providers()[0] != "CPUExecutionProvider"
        self.batch_setting = self.fixed_batch or batch_size  # "auto" or an int, as given (records, resume)
        self.batch_tuning: dict | None = None  # "auto": the timings and the choice, once tuned
        self._timings: dict[int, list[float]] = {}
        input_bytes = (2 if self.overlap else 1) * 4 * int(np.prod(self.input_shape))  # float32 buffer(s) per slot
        rows = 1 if self.batch_setting == "auto" else int(self.batch_setting)
        if rows * input_bytes > batch_memory:
            what = "one input" if rows == 1 else f"batch_size {rows}"
            raise OnnxplainError(
                f"{what} of {' x '.join(map(str, self.input_shape))} values needs {rows * input_bytes / 2**20:,.0f} MiB of "
                f"batch buffers, above batch_memory ({batch_memory / 2**20:,.0f} MiB); pass a smaller batch_size "
                "(CLI: --batch-size) or input_size, or a larger batch_memory")
        self._sizes = [c for c in BATCH_CANDIDATES if c * input_bytes <= batch_memory] \
            if self.batch_setting == "auto" else []  # the sizes "auto" may choose (1 always fits: checked above)
        self._candidates: list[int] = []  # sizes still being timed: empty once chosen
        self._recent: list[float] = []  # the chosen size's latest batch times (seconds)
        self.batch_size: int = 0
        if self._sizes:
            self._start_timing()
        else:
            self.batch_size = int(self.batch_setting)
        self.scheduler = Scheduler(self._scores, lambda: self.batch_size) if shared_batching else None

    # ---- discovery -------------------------------------------------------------------
    def _inspect_input(self, input_name, input_size, layout, channels, constants) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        if not isinstance(constants, dict):
            raise OnnxplainError(f"constants must be a dict {{input name: array}}, got {type(constants).__name__} "
                                 "(CLI: --constant NAME=FILE.npy)")
        if input_name is not None and input_name in constants:
            raise OnnxplainError(f"{input_name!r} is the image input; leave it out of constants")
        unknown = sorted(set(constants) - set(inputs))
        if unknown:
            raise OnnxplainError(f"constants name {unknown}, which the model does not take; its inputs are "
                                 f"{list(inputs)}")
        if input_name is not None and input_name not in inputs:
            raise OnnxplainError(f"model has no input named {input_name!r}; its inputs are {list(inputs)} "
                                 "(input_name= / --input-name)")
        free = [n for n in inputs if n not in constants]
        images = [n for n in free if len(inputs[n].shape) == 4]
        if input_name is None:
            if len(images) != 1:
                raise OnnxplainError(
                    f"model has inputs {[(n, inputs[n].shape) for n in free]}; name the image input with input_name= "
                    "(CLI: --input-name) and give the others with constants= (CLI: --constant NAME=FILE.npy)")
            input_name = images[0]
        node = inputs[input_name]
        self.input_name = input_name
        if node.type not in INPUT_DTYPES:
            raise OnnxplainError(f"model input {node.name!r} has type {node.type}; onnxplain feeds "
                                 f"{', '.join(INPUT_DTYPES)}")
        self.input_dtype = np.dtype(INPUT_DTYPES[node.type])
        shape = list(node.shape)
        if len(shape) != 4:
            raise OnnxplainError(f"model input {node.name!r} has shape {shape}; an image classifier needs 4 dims "
                                 "(N, C, H, W) or (N, H, W, C)")
        detected = _detect_layout(shape)
        layout = layout or detected
        if layout is None:
            raise OnnxplainError(f"cannot tell the layout of input shape {shape}; pass layout='NCHW' or 'NHWC' "
                                 "(CLI: --layout)")
        self.layout = layout
        given, spatial = (shape[1], shape[2:4]) if layout == "NCHW" else (shape[3], shape[1:3])
        if detected not in (None, layout) and isinstance(given, int) and given > 4:
            raise OnnxplainError(f"layout={layout!r} reads input shape {shape} as {given} channels of "
                                 f"{' x '.join(map(str, spatial))} pixels; the shape looks {detected}: pass "
                                 f"layout={detected!r} or leave layout unset (CLI: --layout)")
        if isinstance(given, int) and given > 0:
            if channels is not None and channels != given:
                raise OnnxplainError(f"channels={channels} contradicts the model's input shape {shape}")
            self.channels = given
        elif channels is None:
            raise OnnxplainError(f"model input shape {shape} has a dynamic channel count; pass channels=C (CLI: --channels C)")
        else:
            self.channels = _positive("channels", channels)
        fixed = [d if isinstance(d, int) and d > 0 else None for d in spatial]
        if input_size is not None:
            input_size = image_size(input_size)
            if any(f is not None and f != s for f, s in zip(fixed, input_size)):
                raise OnnxplainError(f"input_size {input_size} contradicts the model's input shape {shape}")
        elif None in fixed:
            raise OnnxplainError(f"model input shape {shape} has a dynamic resolution; pass input_size=(H, W) "
                                 "(CLI: --input-size H,W)")
        self.input_size = input_size or (fixed[0], fixed[1])
        batch = shape[0]
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        missing = [n for n in free if n != input_name]
        if missing:
            raise OnnxplainError(f"model inputs {missing} are not fed; give their values with constants={{name: array}} "
                                 "(CLI: --constant NAME=FILE.npy)")
        for name, value in constants.items():
            self._constants[name] = _constant(inputs[name], value)
            first = inputs[name].shape[0]
            if self._constants[name].shape[0] == 1 and not (isinstance(first, int) and first > 0):
                self._repeated.add(name)  # given for one input, its first axis free: repeated to each batch

    def _choose_output(self, output_name: str | None) -> str:
        """Chooses the output: the named one, or the only one shaped like class scores."""
        outputs = {o.name: o for o in self.session.get_outputs()}
        if output_name is not None:
            if output_name not in outputs:
                raise OnnxplainError(f"model has no output named {output_name!r}; its outputs are {list(outputs)} "
                                     "(output_name= / --output-name)")
        elif len(outputs) == 1:
            output_name = next(iter(outputs))
        else:
            scores = [n for n, o in outputs.items() if _scores_like(o)]
            if len(scores) != 1:
                raise OnnxplainError(
                    f"model has outputs {[(n, o.shape) for n, o in outputs.items()]} and "
                    f"{'several' if scores else 'none'} shaped like class scores (N, classes); name the one to use with "
                    "output_name= (CLI: --output-name)")
            output_name = scores[0]
        self.output_name = output_name
        return output_name

    def _inspect_output(self, output_name: str, source: Any) -> None:
        out = next(o for o in self.session.get_outputs() if o.name == output_name)
        if not _scores_like(out):
            raise OnnxplainError(f"model output {out.name!r} has shape {list(out.shape)}; a classifier must output "
                                 "(N, classes) or (N, classes, 1, 1)")
        classes = out.shape[1]
        if classes == 0:
            raise OnnxplainError(f"model output {out.name!r} has shape {list(out.shape)}: no class to explain")
        self._one_column = classes == 1
        if isinstance(classes, int):
            self.num_classes = 2 if classes == 1 else classes  # one column: two classes [1 - p, p]
        self._graph_source = source

    def _read_graph(self) -> None:
        """Reads the graph's final activation once, on first need: a Softmax means probabilities, a
        Sigmoid a multi-label model (or, with one output column, p of class 1)."""
        if self._graph_source is None:
            return
        with self._lock:
            if self._graph_source is not None:
                self._read_graph_locked()

    def _read_graph_locked(self) -> None:
        self._graph_read, activation = _final_activation(self._graph_source, self.output_name)
        self._graph_source = None
        if self._one_column and self._binary is None:
            self._set_binary(activation == "Sigmoid")
        elif self._output_kind is None:
            self._output_kind = {"Softmax": "probabilities", "Sigmoid": "sigmoid"}.get(activation)

    @property
    def binary(self) -> str | None:
        """With one output column: "probability" (p of class 1) or "logit"; else None."""
        self._read_graph()
        return self._binary

    @property
    def output_kind(self) -> str | None:
        """"logits", "probabilities" or "sigmoid" (multi-label); None until detected."""
        self._read_graph()
        return self._output_kind

    @output_kind.setter
    def output_kind(self, kind: str | None) -> None:
        self._output_kind = kind

    def _set_binary(self, sigmoid_node: bool) -> None:
        """One output column: p of class 1 (a Sigmoid node, output "sigmoid" or "probabilities") or a
        logit; scores become the two classes [1 - p, p]."""
        self._binary = "probability" if sigmoid_node or self._output_kind in ("sigmoid", "probabilities") else "logit"
        self._output_kind, self.num_classes = "probabilities", 2

    def _run_session(self, batch: np.ndarray) -> np.ndarray:
        if self.input_dtype.kind in "iu":
            info = np.iinfo(self.input_dtype)
            batch = np.clip(np.rint(batch), info.min, info.max).astype(self.input_dtype)
        elif self.input_dtype != np.float32:
            batch = batch.astype(self.input_dtype)
        n = batch.shape[0]
        if n not in self._feeds:
            self._feeds[n] = {name: np.repeat(value, n, axis=0) if name in self._repeated else value
                              for name, value in self._constants.items()}
        try:
            return self.session.run([self.output_name], {self.input_name: batch, **self._feeds[n]})[0]
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise OnnxplainError(f"the model failed on a batch of shape {list(batch.shape)} "
                                 f"({batch.dtype}): {str(exc).splitlines()[0][:300]}") from None

    # ---- raw evaluation --------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one preprocessed input in the model's layout."""
        return tuple(self.preprocessor.model_shape)

    def run(self, batch: np.ndarray, priority: int = EXPLANATION) -> np.ndarray:
        """Class scores (N, classes) float32 for a preprocessed batch (N, *input_shape): the model's
        output, (N, classes, 1, 1) squeezed, one column expanded to the two classes [1 - p, p].
        With shared batching, through the scheduler (`priority`: PREDICTION runs before EXPLANATION)."""
        if self.scheduler is None:
            return self._scores(batch)
        return self.scheduler.run(batch, priority)[0]

    def _scores(self, batch: np.ndarray) -> np.ndarray:
        """`run` on one batch, in this thread."""
        self._read_graph()
        n = batch.shape[0]
        step = self.fixed_batch or n
        outputs = []
        for start in range(0, n, step):
            chunk = batch[start:start + step]
            if chunk.shape[0] < step:  # a fixed-batch model: pad the last chunk
                pad = np.zeros((step - chunk.shape[0],) + chunk.shape[1:], np.float32)
                chunk = np.concatenate([chunk, pad])
            t0 = time.perf_counter()
            out = np.asarray(self._fn(chunk))  # a callable model's own exceptions stay its own (a server's 500)
            with self._lock:
                self.inference_seconds += time.perf_counter() - t0
            if out.dtype.kind not in "biuf":
                raise OnnxplainError(f"model returned {out.dtype} values; a classifier returns real numbers")
            if out.ndim == 4 and out.shape[2:] == (1, 1):
                out = out[:, :, 0, 0]
            elif out.ndim == 1:
                out = out[:, None]
            if out.ndim != 2 or out.shape[0] != chunk.shape[0]:
                raise OnnxplainError(
                    f"model returned shape {out.shape} for a batch of {chunk.shape[0]}; a classifier must return (N, classes)")
            outputs.append(out[: min(step, n - start)])
        with self._lock:
            self.evaluations += n
        scores = np.concatenate(outputs).astype(np.float32, copy=False)
        if self._columns is None:
            self._columns = scores.shape[1]
        elif scores.shape[1] != self._columns:
            raise OnnxplainError(f"the model returned {scores.shape[1]} class columns after {self._columns} before; a "
                                 "classifier's outputs must keep one class count")
        if not np.all(np.isfinite(scores)):
            raise OnnxplainError("model returned NaN or infinite scores")
        if scores.shape[1] == 1:
            if self._binary is None:
                self._set_binary(False)
            p = scores[:, 0].astype(np.float64)
            if self._binary == "logit":
                p = 1.0 / (1.0 + np.exp(-p))
            elif p.min() < 0 or p.max() > 1:
                raise OnnxplainError(f"the model's one output column should be a probability but holds values in "
                                     f"{p.min():.4g}..{p.max():.4g}; pass output='logits' (CLI: --output logits)")
            scores = np.stack([1.0 - p, p], axis=1).astype(np.float32)
        if self.num_classes is None:
            if scores.shape[1] == 0:
                raise OnnxplainError(f"the model's scores have shape {scores.shape}: no class to explain")
            self.num_classes = scores.shape[1]
        if self.output_kind is None:
            self.output_kind = _detect_kind(scores, self._graph_read)
        elif self.output_kind in ("probabilities", "sigmoid") and (scores.min() < -1e-4 or scores.max() > 1 + 1e-4):
            raise OnnxplainError(f"output={self.output_kind!r} was given, but the model's scores hold values in "
                                 f"{scores.min():.4g}..{scores.max():.4g}, outside 0..1; pass output='logits' "
                                 "(CLI: --output logits) or leave output='auto'")
        return scores

    def convert(self, scores: np.ndarray, kind: str) -> np.ndarray:
        """Class scores as "probabilities" (softmax of logits; a multi-label model's own p_c),
        "logits" (log-probabilities for probability models, log(p / (1 - p)) for multi-label ones)
        or "raw" (unchanged)."""
        if kind == "raw":
            return scores
        if kind == "probabilities":
            return scores if self.output_kind in ("probabilities", "sigmoid") else softmax(scores)
        if kind == "logits":
            if self.output_kind == "logits":
                return scores
            p = np.clip(scores.astype(np.float64), 1e-12, 1 - 1e-12 if self.output_kind == "sigmoid" else 1.0)
            return (np.log(p) - (np.log1p(-p) if self.output_kind == "sigmoid" else 0.0)).astype(np.float32)
        raise OnnxplainError(f"score kind must be 'probabilities' or 'logits', got {kind!r}")

    # ---- inputs ----------------------------------------------------------------------
    def check_image(self, image: np.ndarray) -> np.ndarray:
        """Validates one image (H x W x C, 0..255) at the model's resolution, converting its channels
        (an image that looks scaled to 0..1 warns)."""
        if (message := unit_range_message(image)) is not None:
            warn(message)
        return self.masker.check(image)

    def prepare(self, image: np.ndarray, replacement: Baseline) -> _core.PreparedInput:
        """An image and its replacement (see `ImageMasker.replacement`) preprocessed once, for
        `evaluate_masks` and `Batches`."""
        return self.masker.prepare(image, replacement)

    def predict(self, images: np.ndarray, kind: str = "probabilities") -> np.ndarray:
        """Scores (N, classes) for images N x H x W x C (or N x H x W grey), or one image H x W x C
        (or H x W), in 0..255."""
        images = np.asarray(images)
        single = images.ndim == 2 or (images.ndim == 3 and images.shape[1:] != self.input_size)
        batch = np.stack([self.check_image(im) for im in (images[None] if single else images)])
        out = np.empty((len(batch),) + self.input_shape, np.float32)
        self.preprocessor.apply(batch, out)
        scores = self.convert(self.run(out, PREDICTION), kind)
        return scores[0] if single else scores

    # ---- streams of perturbations (one-shot forms of `Batches`) ------------------------------
    def evaluate_masks(self, prepared: _core.PreparedInput, total: int, make_masks: MaskMaker,
                       consume: Callable[[np.ndarray, np.ndarray], None], kind: str = "probabilities",
                       description: str = "") -> None:
        """Streams `total` perturbations of a prepared input (`prepare`) through the model: see
        `Batches.masks`. Memory is bounded by two batches."""
        with Batches(self, description or "evaluating") as batches:
            batches.masks(prepared, total, make_masks, consume, kind)

    def masked_scores(self, prepared: _core.PreparedInput, total: int, make_masks: MaskMaker,
                      kind: str = "probabilities", description: str = "") -> np.ndarray:
        """Scores (total, classes) float32, in order, of the perturbations of `evaluate_masks`."""
        with Batches(self, description or "evaluating") as batches:
            return batches.scores(prepared, total, make_masks, kind)

    # ---- batch size ----------------------------------------------------------------------
    def tuning_batch(self) -> int | None:
        """Under batch_size="auto", while the sizes are being timed, the size of the next batch to
        time, else None (use `batch_size`). Every size is timed TUNING_REPEATS times, then the
        contenders (throughput within CONTENDER_MARGIN of the best) in turn until each has
        CONTENDER_REPEATS timings."""
        if not self._candidates:
            return None
        first = next((c for c in self._candidates if len(self._timings.get(c, ())) < TUNING_REPEATS), None)
        if first is not None:
            return first
        rates = self._rates()
        best = max(rates.values())
        pending = [c for c, rate in rates.items() if rate >= CONTENDER_MARGIN * best
                   and len(self._timings[c]) < CONTENDER_REPEATS]
        return min(pending, key=lambda c: len(self._timings[c])) if pending else None

    def record_timing(self, size: int, seconds: float) -> None:
        """Records the time of a full batch (building, inference and consume). While the sizes are
        being timed, the last timing chooses the size with the highest throughput (its best time);
        once chosen, DRIFT_BATCHES batches in a row under DRIFT_FRACTION of its median throughput
        while timed (the machine changed) start a new timing round."""
        if not self._sizes:
            return
        with self._lock:
            if self._candidates:
                self._timings.setdefault(size, []).append(seconds)
                if self.tuning_batch() is None:
                    self._choose_batch()
            elif size == self.batch_size:
                self._recent = (self._recent + [seconds])[-DRIFT_BATCHES:]
                if len(self._recent) == DRIFT_BATCHES and \
                        DRIFT_FRACTION * min(self._recent) > statistics.median(self._timings[size]):
                    self._start_timing()

    def _start_timing(self) -> None:
        """A timing round of every size (under the lock, or at construction); the buffers take the
        largest size meanwhile."""
        self._timings, self._candidates, self._recent = {}, list(self._sizes), []
        self.batch_size = self._sizes[-1]

    def _rates(self) -> dict[int, float]:
        """Images/s of each size timed so far, from its best time."""
        return {c: c / min(times) for c, times in self._timings.items()}

    def _choose_batch(self) -> None:
        rates = self._rates()
        self.batch_size = max(rates, key=rates.__getitem__)
        self.batch_tuning = {"images_per_second": {str(c): round(r, 1) for c, r in rates.items()},
                             "chosen": self.batch_size, "rounds": 1 + (self.batch_tuning or {}).get("rounds", 0)}
        self._candidates, self._recent = [], []

    def describe(self) -> dict:
        """What was discovered about the model, for result records (the same before and after the
        batch size is tuned: `batch_record` has that)."""
        return {
            "input_name": self.input_name, "output_name": self.output_name, "layout": self.layout,
            "input_size": list(self.input_size), "channels": self.channels, "input_dtype": str(self.input_dtype),
            "fixed_batch": self.fixed_batch, "num_classes": self.num_classes, "output": self.output_kind,
            "binary": self.binary, "batch_size": self.batch_setting, "preprocess": self.preprocess.to_dict(),
        }

    def batch_record(self) -> dict:
        """The batch size in use and, under "auto", how it was chosen."""
        return {"size": self.batch_size, "setting": self.batch_setting, "tuning": self.batch_tuning,
                "overlap": self.overlap}


def _is_session(obj: Any) -> bool:
    return hasattr(obj, "get_inputs") and hasattr(obj, "run")


def _open_session(source: Any, providers: Sequence[str] | None, threads: int = 0, spinning: bool = True):
    """An onnxruntime session of `source` (path, bytes or a session, returned as is). spinning:
    False for a session that runs between the model's calls (a sampler), so that its idle
    threads do not spin while the model runs."""
    import onnxruntime as ort

    if _is_session(source):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            raise OnnxplainError(f"{path} is a directory, not an .onnx model file; give the path of the .onnx file")
        if not path.is_file():
            raise OnnxplainError(f"model file not found: {path}")
        if not os.access(path, os.R_OK):
            raise OnnxplainError(f"cannot read model file {path}: permission denied; make it readable")
        source = str(path)
    elif isinstance(source, (bytes, bytearray)):
        source = bytes(source)  # onnxruntime rejects bytearray
    else:
        raise OnnxplainError(f"a model must be an .onnx path, bytes, an InferenceSession or a callable, got {type(source).__name__}")
    threads = check_threads(threads)
    providers = _providers(providers, ort)
    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: a failed run's error reaches the user once, in onnxplain's message
    options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    else:  # spin within a run (small batches need it), but not after it: the core builds the next batch
        options.add_session_config_entry("session.force_spinning_stop", "1")
    try:
        return ort.InferenceSession(source, options, providers=providers)
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        name = source if isinstance(source, str) else "<bytes>"
        raise OnnxplainError(f"cannot load ONNX model {name}: {str(exc).splitlines()[0][:300]}") from None


def check_threads(threads: Any) -> int:
    """threads: an integer in 0..MAX_THREADS_PER_CORE x the machine's cores (0: all cores)."""
    limit = MAX_THREADS_PER_CORE * (os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 0 <= threads <= limit:
        raise OnnxplainError(f"threads must be an integer in 0..{limit} (0: all cores), got {threads!r}")
    return int(threads)


def _providers(providers: Any, ort) -> list[str]:
    """onnxruntime execution providers in order of preference (one name or a list; None: the CPU).
    Unknown names are refused; known ones this onnxruntime build lacks are dropped with a warning."""
    if providers is None:
        return ["CPUExecutionProvider"]
    given = [providers] if isinstance(providers, str) else providers
    if not isinstance(given, (list, tuple)) or not all(isinstance(p, str) for p in given):
        raise OnnxplainError(f"providers must be a list of onnxruntime provider names, got {providers!r}")
    unknown, here = [p for p in given if p not in ort.get_all_providers()], ort.get_available_providers()
    if unknown:
        raise OnnxplainError(f"providers {unknown} are not onnxruntime providers; known ones include {', '.join(here)}")
    available = [p for p in given if p in here]
    if len(available) < len(given):
        warn(f"providers {[p for p in given if p not in available]} are not available in this onnxruntime build; "
             f"running on {', '.join(available or ['CPUExecutionProvider'])}")
    return available or ["CPUExecutionProvider"]


def read_graph(source: Any):
    """The ONNX graph (an onnx.ModelProto, external data not loaded) of a model path or bytes; None
    for a session or a callable (no graph to read), or when `onnx` is missing or cannot parse what
    onnxruntime could (callers then fall back to what the model's outputs show)."""
    if not isinstance(source, (str, Path, bytes, bytearray)):
        return None
    try:
        import onnx

        return (onnx.load_model_from_string(bytes(source)) if isinstance(source, (bytes, bytearray))
                else onnx.load(str(source), load_external_data=False))
    except Exception:
        return None


def _final_activation(source: Any, output_name: str) -> tuple[bool, str | None]:
    """(whether the graph could be read, "Softmax" or "Sigmoid" when the graph output comes from
    that node through shape-only ops, over the classes, else None)."""
    proto = read_graph(source)
    if proto is None:
        return False, None
    producers = {out: node for node in proto.graph.node for out in node.output}
    node = producers.get(output_name)
    while node is not None and node.op_type in ("Identity", "Reshape", "Flatten", "Squeeze", "Cast") and node.input:
        node = producers.get(node.input[0])
    if node is None or node.op_type not in ("Softmax", "Sigmoid"):
        return True, None
    if node.op_type == "Softmax" and next((a.i for a in node.attribute if a.name == "axis"), -1) not in (-1, 1):
        return True, None  # a softmax over something else than the classes
    return True, node.op_type


def _scores_like(output) -> bool:
    """Whether a graph output is shaped like class scores: (N, K) or (N, K, 1, 1)."""
    shape = list(output.shape)
    return output.type.startswith("tensor(") and (len(shape) == 2 or (len(shape) == 4 and shape[2:] == [1, 1]))


def _detect_layout(shape: list) -> str | None:
    """NCHW or NHWC from an input shape (N, a, b, c), or None when it cannot be told: the channel
    axis is the one of at most 4, else the odd one out of three fixed sizes, else the only fixed one."""
    a, b, c = shape[1:4]
    small = [isinstance(d, int) and 0 < d <= 4 for d in (a, c)]
    if small[0] != small[1]:
        return "NCHW" if small[0] else "NHWC"
    if all(isinstance(d, int) for d in (a, b, c)):
        if b == c != a:
            return "NCHW"
        if a == b != c:
            return "NHWC"
    elif isinstance(a, int) != isinstance(c, int):
        return "NCHW" if isinstance(a, int) else "NHWC"
    return None


def _constant(node, value) -> np.ndarray:
    """A user's value for an extra graph input, in the input's dtype, with its first (batch) axis;
    an error naming constants= when its type or its shape cannot be the input's."""
    dtype = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
             **INPUT_DTYPES}.get(node.type)
    if dtype is None:
        raise OnnxplainError(f"model input {node.name!r} has type {node.type}, which constants= cannot feed")
    array = np.asarray(value)
    rank = len(node.shape)
    if array.ndim == rank - 1:
        array = array[None]
    fits = array.ndim == rank and all(not isinstance(d, int) or d < 1 or d == a for d, a in zip(node.shape, array.shape))
    if not fits:
        raise OnnxplainError(f"constants[{node.name!r}] has shape {np.asarray(value).shape}; the input takes "
                             f"{list(node.shape)} (with or without the batch axis)")
    return np.ascontiguousarray(array.astype(dtype))


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise OnnxplainError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
