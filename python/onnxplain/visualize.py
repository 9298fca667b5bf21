"""Pictures: heat-map overlays of maps on the explained image, and line charts of curves."""
from __future__ import annotations

from dataclasses import dataclass
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


def display_rgb(image: np.ndarray) -> np.ndarray:
    """An H x W x C image (0..255) as H x W x 3 float64 for display: C = 1 as grey, C = 4
    without its alpha (fourth channel), C = 2 or C > 4 as the channel mean in grey."""
    image = np.asarray(image, np.float64)
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[2]
    if channels == 3:
        return image
    if channels == 4:
        return image[..., :3]
    return np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)


def overlay(image: np.ndarray, attribution: np.ndarray, alpha: float = 0.5, signed: bool | None = None) -> np.ndarray:
    """The image (H x W x C, 0..255; see `display_rgb`) blended with the coloured map, uint8 RGB,
    upsampled so the short side is at least DISPLAY_MIN_SIDE pixels."""
    blend = (1 - alpha) * display_rgb(image) + alpha * colorize(attribution, signed).astype(np.float64)
    blend = np.clip(blend, 0, 255).astype(np.uint8)
    factor = int(np.ceil(DISPLAY_MIN_SIDE / min(blend.shape[:2])))
    if factor > 1:
        blend = cv2.resize(blend, (blend.shape[1] * factor, blend.shape[0] * factor), interpolation=cv2.INTER_NEAREST)
    return blend


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """Writes a uint8 RGB array (or any H x W x C image, shown as `display_rgb` says) as PNG."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        rgb = np.clip(display_rgb(rgb), 0, 255).round().astype(np.uint8)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


CHART_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
                 (240, 50, 230), (128, 128, 0)]  # RGB, one per series colour index


@dataclass
class Series:
    """One curve of a line chart: y against x (x in 0..1), drawn in CHART_COLOURS[colour]; thick,
    or thin with dots when `dotted`; listed in the legend when `legend` is not empty."""

    x: np.ndarray
    y: np.ndarray
    colour: int
    legend: str = ""
    dotted: bool = False


def line_chart(series: list[Series], x_label: str, y_label: str, y_range: tuple[float, float],
               size: int = 480) -> np.ndarray:
    """An RGB uint8 chart (OpenCV) of curves over x in 0..1 and y in y_range (values outside are
    clipped to the frame), with a grey line at y = 0 when it is inside, and a legend below."""
    bottom, top = y_range
    legends = [s for s in series if s.legend]
    margin = 50
    img = np.full((size + 18 * max(1, len(legends)) + 10, size, 3), 255, np.uint8)
    x0, y0, side = margin, size - margin, size - 2 * margin

    def to_px(x: float, y: float) -> tuple[int, int]:
        y = min(max(y, bottom), top)
        return int(round(x0 + x * side)), int(round(y0 - (y - bottom) / (top - bottom) * side))

    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    cv2.rectangle(img, to_px(0, bottom), to_px(1, top), black, 1)
    if bottom < 0 < top:
        cv2.line(img, to_px(0, 0), to_px(1, 0), (170, 170, 170), 1)
    for x in (0.0, 0.5, 1.0):
        cv2.putText(img, f"{x:g}", (to_px(x, bottom)[0] - 8, y0 + 18), font, 0.4, black, 1, cv2.LINE_AA)
    for y in (bottom, (bottom + top) / 2, top):
        cv2.putText(img, f"{y:.2g}", (6, to_px(0, y)[1] + 4), font, 0.4, black, 1, cv2.LINE_AA)
    cv2.putText(img, x_label, (size // 2 - 4 * len(x_label), y0 + 36), font, 0.45, black, 1, cv2.LINE_AA)
    cv2.putText(img, y_label, (x0, margin - 12), font, 0.42, black, 1, cv2.LINE_AA)
    for s in series:
        colour = CHART_COLOURS[s.colour % len(CHART_COLOURS)]
        pts = np.array([to_px(float(x), float(y)) for x, y in zip(s.x, s.y)], np.int32)
        cv2.polylines(img, [pts], False, colour, 1 if s.dotted else 2, cv2.LINE_AA)
        if s.dotted:
            for px, py in pts:
                cv2.circle(img, (int(px), int(py)), 2, colour, -1, cv2.LINE_AA)
    for k, s in enumerate(legends):
        y = size + 14 + 18 * k
        cv2.line(img, (x0, y - 4), (x0 + 20, y - 4), CHART_COLOURS[s.colour % len(CHART_COLOURS)], 2)
        cv2.putText(img, s.legend, (x0 + 28, y), font, 0.45, black, 1, cv2.LINE_AA)
    return img


def bar_chart(names: list[str], values: np.ndarray, title: str = "", top: int = 15, width: int = 640) -> np.ndarray:
    """An RGB uint8 horizontal bar chart (OpenCV) of the `top` values largest in magnitude, largest
    first, each labelled with its name and value; positive bars red, negative blue, around a zero line."""
    values = np.asarray(values, np.float64)
    order = np.argsort(-np.abs(values), kind="stable")[:top]
    row, label_w, margin = 24, min(220, 12 + 8 * max(len(str(names[i])) for i in order)), 70
    img = np.full((40 + row * len(order) + 10, width, 3), 255, np.uint8)
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    cv2.putText(img, title, (10, 22), font, 0.5, black, 1, cv2.LINE_AA)
    span = float(np.abs(values[order]).max()) if len(order) else 0.0
    negative = bool(np.any(values[order] < 0))
    x_zero = label_w + ((width - label_w - margin) // 2 if negative else 0)
    half = (width - label_w - margin) // (2 if negative else 1)
    for k, i in enumerate(order):
        y = 40 + row * k
        length = int(round(values[i] / span * half)) if span > 0 else 0
        colour = (214, 39, 40) if values[i] >= 0 else (31, 119, 180)
        cv2.rectangle(img, (x_zero, y), (x_zero + length, y + row - 6), colour, -1)
        cv2.putText(img, str(names[i])[:26], (6, y + row - 10), font, 0.42, black, 1, cv2.LINE_AA)
        cv2.putText(img, f"{values[i]:.3g}", (max(x_zero, x_zero + length) + 4, y + row - 10), font, 0.4, black, 1,
                    cv2.LINE_AA)
    cv2.line(img, (x_zero, 34), (x_zero, img.shape[0] - 6), (120, 120, 120), 1)
    return img
