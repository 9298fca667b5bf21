"""How an image in 0..255 RGB becomes the model's input tensor."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from .errors import OnnxplainError


@dataclass(frozen=True)
class Preprocess:
    """model_input[c] = (pixel[c] * scale - mean[c]) / std[c], pixel in 0..255.

    mean, std: one value for every channel, or one per channel (C values); channel_order: "RGB"
    or "BGR" (3-channel models: the order the model expects); layout: "NCHW" or "NHWC", or None to
    take the model's own. `for_channels(C)` binds it to a model's C channels.
    """

    scale: float = 1.0
    mean: float | tuple[float, ...] = 0.0
    std: float | tuple[float, ...] = 1.0
    channel_order: str = "RGB"
    layout: str | None = None

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise OnnxplainError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if self.layout not in (None, "NCHW", "NHWC"):
            raise OnnxplainError(f"layout must be 'NCHW' or 'NHWC', got {self.layout!r}")
        for name in ("mean", "std"):  # stored as tuples: (v,) for one value shared by every channel
            value = getattr(self, name)
            values = (value,) if np.isscalar(value) else tuple(value)
            if not values or not all(np.isscalar(v) and np.isfinite(float(v)) for v in values):
                raise OnnxplainError(f"{name} must be a number or one number per channel, got {value!r}")
            object.__setattr__(self, name, tuple(float(v) for v in values))
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise OnnxplainError(f"mean has {len(self.mean)} values and std {len(self.std)}; give one per channel")
        if self.scale == 0 or any(s == 0 for s in self.std):
            raise OnnxplainError("scale and std must be non-zero")

    @property
    def channels(self) -> int | None:
        """The channel count this preprocessing is written for (None: any)."""
        n = max(len(self.mean), len(self.std))
        return None if n == 1 and self.channel_order == "RGB" else (3 if n == 1 else n)

    def for_channels(self, channels: int) -> Preprocess:
        """This preprocessing with one mean and std per channel of a C-channel model, or an error."""
        wanted = self.channels
        if wanted is not None and wanted != channels:
            what = "channel_order='BGR'" if self.channel_order == "BGR" and wanted == 3 else f"{wanted} mean/std values"
            raise OnnxplainError(
                f"the preprocessing has {what} but the model has {channels} channel{'s' * (channels != 1)}; pass "
                f"preset=onnxplain.Preprocess(scale=..., mean=..., std=...) with one value or {channels} values "
                "(CLI: --preset unit, raw or efficientnet-lite work for any channel count)")
        expand = lambda v: v * channels if len(v) == 1 else v  # noqa: E731
        return replace(self, mean=expand(self.mean), std=expand(self.std))

    @property
    def gain(self) -> np.ndarray:
        """Per model channel: multiplier of the pixel value (float32, C)."""
        return (self.scale / np.asarray(self.std, np.float64)).astype(np.float32)

    @property
    def bias(self) -> np.ndarray:
        """Per model channel: offset after the multiplication (float32, C)."""
        return (-np.asarray(self.mean, np.float64) / np.asarray(self.std, np.float64)).astype(np.float32)

    @property
    def source_channels(self) -> list[int]:
        """Per model channel: the input channel it reads (reversed for BGR models)."""
        order = list(range(len(self.mean)))
        return order[::-1] if self.channel_order == "BGR" else order

    @property
    def neutral(self) -> np.ndarray:
        """Pixel value per input channel (float32, C) that preprocesses to 0: the 'mean' baseline."""
        value = np.asarray(self.mean, np.float64) / self.scale
        if self.channel_order == "BGR":
            value = value[::-1]
        return np.clip(value, 0, 255).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preprocess] = {
    "imagenet": Preprocess(1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "efficientnet-lite": Preprocess(1.0, 127.0, 128.0),
    "unit": Preprocess(1 / 255),
    "raw": Preprocess(1.0),
    "caffe": Preprocess(1.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0), channel_order="BGR"),
}


def get_preset(preset: str | Preprocess) -> Preprocess:
    """A named preset (see PRESETS) or a Preprocess passed through."""
    if isinstance(preset, Preprocess):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise OnnxplainError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}") from None
