"""The black box: an ONNX session (or any callable) that maps images to class scores."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _core
from .batches import Batches, MaskMaker
from .errors import OnnxplainError
from .masking import Baseline, ImageMasker
from .preprocess import Preprocess, get_preset

DEFAULT_BATCH_SIZE = 64
OUTPUT_KINDS = ("auto", "logits", "probabilities")


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, computed in float64, returned as float32."""
    z = scores.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z.astype(np.float32)


def _looks_like_probabilities(scores: np.ndarray) -> bool:
    return bool(scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3))


class Model:
    """A classifier treated as a black box.

    source: path to an .onnx file, its bytes, an ``onnxruntime.InferenceSession``, or a callable
    taking a preprocessed float32 batch (model layout) and returning (N, classes) scores.
    preset: preprocessing, a name from ``onnxplain.PRESETS`` or a ``Preprocess``.
    output: what the model emits, "logits", "probabilities" or "auto" (detected on the first batch).
    input_size, layout: (H, W) and "NCHW"/"NHWC"; read from the ONNX graph, required for callables.
    input_name, output_name: which graph input/output to use when there are several.
    """

    def __init__(
        self,
        source: str | Path | bytes | Any,
        preset: str | Preprocess = "imagenet",
        output: str = "auto",
        *,
        input_size: tuple[int, int] | None = None,
        layout: str | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        progress: bool | None = None,
    ) -> None:
        if output not in OUTPUT_KINDS:
            raise OnnxplainError(f"output must be one of {OUTPUT_KINDS}, got {output!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise OnnxplainError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.preprocess = get_preset(preset)
        self.output_kind = None if output == "auto" else output
        self.threads = threads
        self.progress = progress
        self.evaluations = 0  # images evaluated by the model so far
        self.inference_seconds = 0.0  # wall time spent inside the model itself
        self.fixed_batch: int | None = None
        self.num_classes: int | None = None
        self.session = None
        if callable(source) and not _is_session(source):
            if input_size is None:
                raise OnnxplainError("a callable model needs input_size=(H, W)")
            self._fn = source
            self.input_name = self.output_name = None
            self.layout = layout or self.preprocess.layout or "NCHW"
            self.input_size = (int(input_size[0]), int(input_size[1]))
        else:
            self.session = _open_session(source, providers)
            self._inspect(input_name, output_name, input_size, layout)
            self._fn = self._run_session
            if self.output_kind is None and _ends_in_softmax(source, self.output_name):
                self.output_kind = "probabilities"
        if self.layout not in ("NCHW", "NHWC"):
            raise OnnxplainError(f"layout must be 'NCHW' or 'NHWC', got {self.layout!r}")
        self.batch_size = self.fixed_batch or batch_size
        self.preprocessor = _core.Preprocessor(
            self.input_size + (3,), self.preprocess.gain, self.preprocess.bias, self.preprocess.source_channels,
            self.layout == "NCHW", threads)
        self.masker = ImageMasker(self)

    # ---- discovery -------------------------------------------------------------------
    def _inspect(self, input_name, output_name, input_size, layout) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.input_name = _pick(inputs, input_name, "input")
        self.output_name = _pick(outputs, output_name, "output")
        node = next(i for i in inputs if i.name == self.input_name)
        if node.type != "tensor(float)":
            raise OnnxplainError(f"model input {node.name!r} has type {node.type}; onnxplain needs tensor(float)")
        shape = list(node.shape)
        if len(shape) != 4:
            raise OnnxplainError(
                f"model input {node.name!r} has shape {shape}; an image classifier needs 4 dims (N, C, H, W) or (N, H, W, C)")
        layout = layout or self.preprocess.layout
        if layout is None:
            if shape[1] == 3:
                layout = "NCHW"
            elif shape[3] == 3:
                layout = "NHWC"
            else:
                raise OnnxplainError(f"cannot tell the layout of input shape {shape}; pass layout='NCHW' or 'NHWC'")
        self.layout = layout
        channels, spatial = (shape[1], shape[2:4]) if layout == "NCHW" else (shape[3], shape[1:3])
        if isinstance(channels, int) and channels != 3:
            raise OnnxplainError(f"model input {node.name!r} has {channels} channels; onnxplain explains RGB models (3)")
        fixed = [d if isinstance(d, int) and d > 0 else None for d in spatial]
        if input_size is not None:
            input_size = (int(input_size[0]), int(input_size[1]))
            if any(f is not None and f != s for f, s in zip(fixed, input_size)):
                raise OnnxplainError(f"input_size {input_size} contradicts the model's input shape {shape}")
        elif None in fixed:
            raise OnnxplainError(f"model input shape {shape} has a dynamic resolution; pass input_size=(H, W)")
        self.input_size = input_size or (fixed[0], fixed[1])
        batch = shape[0]
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        out = next(o for o in outputs if o.name == self.output_name)
        out_shape = list(out.shape)
        if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] < 2):
            raise OnnxplainError(
                f"model output {out.name!r} has shape {out_shape}; a classifier must output (N, classes) with classes >= 2")
        if isinstance(out_shape[1], int):
            self.num_classes = out_shape[1]

    def _run_session(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    # ---- raw evaluation --------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one preprocessed input in the model's layout."""
        return tuple(self.preprocessor.model_shape)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Raw model outputs (N, classes) float32 for a preprocessed batch (N, *input_shape)."""
        n = batch.shape[0]
        step = self.fixed_batch or n
        outputs = []
        for start in range(0, n, step):
            chunk = batch[start:start + step]
            if chunk.shape[0] < step:  # a fixed-batch model: pad the last chunk
                pad = np.zeros((step - chunk.shape[0],) + chunk.shape[1:], np.float32)
                chunk = np.concatenate([chunk, pad])
            t0 = time.perf_counter()
            out = np.asarray(self._fn(chunk))
            self.inference_seconds += time.perf_counter() - t0
            if out.ndim != 2 or out.shape[0] != chunk.shape[0] or out.shape[1] < 2:
                raise OnnxplainError(
                    f"model returned shape {out.shape} for a batch of {chunk.shape[0]}; a classifier must return (N, classes)")
            outputs.append(out[: min(step, n - start)])
        self.evaluations += n
        scores = np.concatenate(outputs).astype(np.float32, copy=False)
        if not np.all(np.isfinite(scores)):
            raise OnnxplainError("model returned NaN or infinite scores")
        if self.num_classes is None:
            self.num_classes = scores.shape[1]
        if self.output_kind is None:
            self.output_kind = "probabilities" if _looks_like_probabilities(scores) else "logits"
        return scores

    def convert(self, scores: np.ndarray, kind: str) -> np.ndarray:
        """Raw outputs as "probabilities", "logits" (log-probabilities for probability models) or
        "raw" (unchanged)."""
        if kind == "raw":
            return scores
        if kind == "probabilities":
            return scores if self.output_kind == "probabilities" else softmax(scores)
        if kind == "logits":
            return scores if self.output_kind == "logits" else np.log(np.maximum(scores, 1e-12)).astype(np.float32)
        raise OnnxplainError(f"score kind must be 'probabilities' or 'logits', got {kind!r}")

    # ---- inputs ----------------------------------------------------------------------
    def check_image(self, image: np.ndarray) -> np.ndarray:
        """Validates one image (H x W x 3, 0..255) at the model's resolution."""
        return self.masker.check(image)

    def prepare(self, image: np.ndarray, replacement: Baseline) -> _core.PreparedInput:
        """An image and its replacement (see `ImageMasker.replacement`) preprocessed once, for
        `evaluate_masks` and `Batches`."""
        return self.masker.prepare(image, replacement)

    def predict(self, images: np.ndarray, kind: str = "probabilities") -> np.ndarray:
        """Scores (N, classes) for images N x H x W x 3 (or one H x W x 3, or grey H x W) in 0..255."""
        images = np.asarray(images)
        single = images.ndim <= 3  # one image: H x W x 3, or a grey H x W
        batch = np.stack([self.check_image(im) for im in (images[None] if single else images)])
        out = np.empty((len(batch),) + self.input_shape, np.float32)
        self.preprocessor.apply(batch, out)
        scores = self.convert(self.run(out), kind)
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

    def evaluate_batches(self, total: int, fill: Callable[[int, int, np.ndarray], Any],
                         consume: Callable[[Any, np.ndarray], None], kind: str = "probabilities",
                         description: str = "") -> None:
        """Streams `total` model inputs written by fill(first, count, out): see `Batches.stream`."""
        with Batches(self, description or "evaluating") as batches:
            batches.stream(total, fill, consume, kind)

    def describe(self) -> dict:
        """What was discovered about the model, for result records."""
        return {
            "input_name": self.input_name, "output_name": self.output_name, "layout": self.layout,
            "input_size": list(self.input_size), "fixed_batch": self.fixed_batch,
            "num_classes": self.num_classes, "output": self.output_kind,
            "preprocess": self.preprocess.to_dict(),
        }


def _is_session(obj: Any) -> bool:
    return hasattr(obj, "get_inputs") and hasattr(obj, "run")


def _open_session(source: Any, providers: Sequence[str] | None):
    import onnxruntime as ort

    if _is_session(source):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise OnnxplainError(f"model file not found: {path}")
        source = str(path)
    elif isinstance(source, (bytes, bytearray)):
        source = bytes(source)  # onnxruntime rejects bytearray
    else:
        raise OnnxplainError(f"a model must be an .onnx path, bytes, an InferenceSession or a callable, got {type(source).__name__}")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(source, options, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        name = source if isinstance(source, str) else "<bytes>"
        raise OnnxplainError(f"cannot load ONNX model {name}: {str(exc).splitlines()[0][:300]}") from None


def _ends_in_softmax(source: Any, output_name: str) -> bool:
    """Whether the graph output comes from a Softmax node (through shape-only ops). Needs the
    optional `onnx` package and the graph (a path or bytes, not a session); False otherwise."""
    if not isinstance(source, (str, Path, bytes, bytearray)):
        return False
    try:
        import onnx

        proto = (onnx.load_model_from_string(bytes(source)) if isinstance(source, (bytes, bytearray))
                 else onnx.load(str(source), load_external_data=False))
    except Exception:  # onnx missing or unable to parse what onnxruntime could: fall back to the data
        return False
    producers = {out: node for node in proto.graph.node for out in node.output}
    node = producers.get(output_name)
    while node is not None and node.op_type in ("Identity", "Reshape", "Flatten", "Squeeze") and node.input:
        node = producers.get(node.input[0])
    if node is None or node.op_type != "Softmax":
        return False
    axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
    return axis in (-1, 1)  # over the classes, not the batch


def _pick(nodes, name: str | None, what: str) -> str:
    names = [n.name for n in nodes]
    if name is not None:
        if name not in names:
            raise OnnxplainError(f"model has no {what} named {name!r}; its {what}s are {names}")
        return name
    if len(names) != 1:
        raise OnnxplainError(f"model has {len(names)} {what}s {names}; name the one to use with {what}_name=")
    return names[0]
