"""How an image in 0..255 RGB becomes the model's input tensor."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import OnnxplainError


@dataclass(frozen=True)
class Preprocess:
    """model_input[c] = (pixel[c] * scale - mean[c]) / std[c], pixel in 0..255 RGB.

    channel_order: "RGB" or "BGR" (the order the model expects); layout: "NCHW" or "NHWC",
    or None to take the model's own.
    """

    scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_order: str = "RGB"
    layout: str | None = None

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise OnnxplainError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if self.layout not in (None, "NCHW", "NHWC"):
            raise OnnxplainError(f"layout must be 'NCHW' or 'NHWC', got {self.layout!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise OnnxplainError("mean and std need 3 values (one per channel)")
        if self.scale == 0 or any(s == 0 for s in self.std):
            raise OnnxplainError("scale and std must be non-zero")

    @property
    def gain(self) -> np.ndarray:
        """Per model channel: multiplier of the pixel value (float32, 3)."""
        return (self.scale / np.asarray(self.std, np.float64)).astype(np.float32)

    @property
    def bias(self) -> np.ndarray:
        """Per model channel: offset after the multiplication (float32, 3)."""
        return (-np.asarray(self.mean, np.float64) / np.asarray(self.std, np.float64)).astype(np.float32)

    @property
    def source_channels(self) -> list[int]:
        """Per model channel: the RGB channel it reads (reversed for BGR models)."""
        return [2, 1, 0] if self.channel_order == "BGR" else [0, 1, 2]

    @property
    def neutral(self) -> np.ndarray:
        """RGB pixel value (float32, 3) that preprocesses to 0: the 'mean' baseline."""
        value = np.asarray(self.mean, np.float64) / self.scale
        if self.channel_order == "BGR":
            value = value[::-1]
        return np.clip(value, 0, 255).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preprocess] = {
    "imagenet": Preprocess(1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "efficientnet-lite": Preprocess(1.0, (127.0, 127.0, 127.0), (128.0, 128.0, 128.0)),
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
