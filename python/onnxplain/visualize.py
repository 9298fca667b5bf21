"""Pictures of maps: heat-map overlays on the explained image."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

DISPLAY_MIN_SIDE = 256  # overlays of small images are upsampled for display


def colorize(attribution: np.ndarray, signed: bool | None = None) -> np.ndarray:
    """An H x W map as uint8 RGB: 'turbo' scaled to its range, or a blue-white-red diverging
    map centred on 0 when signed (default: when the map has both signs)."""
    a = np.nan_to_num(attribution.astype(np.float64))
    if signed is None:
        signed = a.min() < 0 < a.max()
    if signed:
        t = a / (np.abs(a).max() or 1.0)  # -1..1
        pos, neg = np.clip(t, 0, 1)[..., None], np.clip(-t, 0, 1)[..., None]
        white = np.ones(a.shape + (3,))
        rgb = white - pos * np.array([0.0, 1.0, 1.0]) - neg * np.array([1.0, 1.0, 0.0])
        return (rgb * 255).round().astype(np.uint8)
    span = a.max() - a.min()
    t = ((a - a.min()) / span * 255).round().astype(np.uint8) if span > 0 else np.zeros(a.shape, np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(t, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)


def overlay(image: np.ndarray, attribution: np.ndarray, alpha: float = 0.5, signed: bool | None = None) -> np.ndarray:
    """The image (H x W x 3, 0..255) blended with the coloured map, uint8 RGB, upsampled so the
    short side is at least DISPLAY_MIN_SIDE pixels."""
    blend = (1 - alpha) * image.astype(np.float64) + alpha * colorize(attribution, signed).astype(np.float64)
    blend = np.clip(blend, 0, 255).astype(np.uint8)
    factor = int(np.ceil(DISPLAY_MIN_SIDE / min(blend.shape[:2])))
    if factor > 1:
        blend = cv2.resize(blend, (blend.shape[1] * factor, blend.shape[0] * factor), interpolation=cv2.INTER_NEAREST)
    return blend


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """Writes a uint8 RGB array as PNG."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
