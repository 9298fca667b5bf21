"""Pictures people read: maps over the explained photo (any size and aspect) with a title, a colour
bar in the map's units and the colour convention, and line charts of curves. OpenCV only."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DISPLAY_MIN_SIDE = 256  # pictures of small images are upsampled for display
DISPLAY_MAX_SIDE = 1600  # and large photos downsampled
OVERLAY_ALPHA = 0.75  # colour opacity at the ends of the scale; 0 shows the photo (in grey)
SEQUENTIAL, DIVERGING = "sequential", "diverging"

# What each built-in method's map measures, for colour bars. Occlusion and RISE are in probability
# units and drawn on fixed limits from the clean p(target) (`map_scale`).
UNITS = {
    "occlusion": "drop in p(class) when the window is hidden",
    "rise": "mean p(class) over masks showing the pixel",
    "ig": "information gain, nats",
    "pmi": "pointwise mutual information, nats",
    "multi": "causal responsibility (0..1)",
    "random": "random values (the floor; no meaning)",
    "residual": "|real - counterfactual|, pixel values",
    "d-occlusion": "gain in p(B) when the window is pasted",
    "d-rise": "mean gain in p(B) over masks pasting the pixel",
    "d-pmi": "gain in ln p(B) when the window is pasted, nats",
}


@dataclass(frozen=True)
class Scale:
    """How a map's values become colours: `kind` SEQUENTIAL (low..high, a non-negative map) or
    DIVERGING (-high..high, centred on 0: a signed map); values outside are clipped."""

    kind: str
    low: float
    high: float
    units: str

    def strength(self, values: np.ndarray) -> np.ndarray:
        """Values as -1..1 (diverging) or 0..1 (sequential)."""
        v = np.nan_to_num(np.asarray(values, np.float64))
        if self.kind == DIVERGING:
            return np.clip(v / self.high, -1, 1)
        return np.clip((v - self.low) / (self.high - self.low), 0, 1)

    def legend(self) -> str:
        if self.kind == DIVERGING:
            return "diverging, centred on 0: red > 0, blue < 0; no colour at 0"
        return "sequential: brighter = larger; no colour at the low end"


def map_scale(method: str, attribution: np.ndarray, signed: bool | None = None,
              probability: float | None = None) -> Scale:
    """The colour scale of a map. Occlusion: diverging on +-p (p: the clean p(class)); RISE:
    sequential on 0..p; any other map on its real limits: diverging on +-max|value| when `signed`
    (None: when it has a negative value), else sequential on 0..max."""
    units = UNITS.get(method, f"{method} score")
    if probability is not None and probability > 0 and method in ("occlusion", "rise"):
        if method == "occlusion":
            return Scale(DIVERGING, -probability, probability, units)
        return Scale(SEQUENTIAL, 0.0, probability, units)
    a = np.nan_to_num(np.asarray(attribution, np.float64))
    if signed or (signed is None and a.min() < 0):
        high = float(np.abs(a).max()) or 1.0
        return Scale(DIVERGING, -high, high, units)
    low, high = min(0.0, float(a.min())), float(a.max())
    return Scale(SEQUENTIAL, low, high if high > low else low + 1.0, units)


def colours(scale: Scale, strength: np.ndarray) -> np.ndarray:
    """uint8 RGB colours of strengths (`Scale.strength`): diverging, red for positive and blue for
    negative; sequential, 'inferno'."""
    if scale.kind == DIVERGING:
        red, blue = np.array([215, 25, 28], np.uint8), np.array([44, 123, 182], np.uint8)
        return np.where(np.asarray(strength)[..., None] >= 0, red, blue)
    index = np.round(np.clip(strength, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(index, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def colorize(values: np.ndarray, signed: bool | None = None) -> np.ndarray:
    """Map values (any shape) as uint8 RGB (..., 3) on white, by the one colour convention
    (`map_scale` on the values' real limits): the colour grows from white with |strength|."""
    scale = map_scale("", values, signed)
    strength = scale.strength(values)
    weight = np.abs(strength)[..., None]
    return (255 * (1 - weight) + colours(scale, strength) * weight).round().astype(np.uint8)


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


def display_size(shape: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of a picture of an H x W image: the same aspect, the short side at least
    DISPLAY_MIN_SIDE (whole-number upsampling) and the long side at most DISPLAY_MAX_SIDE (which
    wins for extreme aspects)."""
    h, w = shape
    factor = int(np.ceil(DISPLAY_MIN_SIDE / min(h, w))) if min(h, w) < DISPLAY_MIN_SIDE else 1
    factor = max(1, min(factor, DISPLAY_MAX_SIDE // max(h, w)))
    if factor > 1 or max(h, w) <= DISPLAY_MAX_SIDE:
        return h * factor, w * factor
    shrink = DISPLAY_MAX_SIDE / max(h, w)
    return max(1, round(h * shrink)), max(1, round(w * shrink))


def resample(array: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """An H x W (x C) array resized to size (H, W): bilinear, or nearest for masks and upsampled pixels."""
    if array.shape[:2] == tuple(size):
        return array
    small = array.astype(np.uint8) if array.dtype == bool else array
    shrinking = size[0] < array.shape[0]
    method = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    out = cv2.resize(small, (size[1], size[0]), interpolation=method)
    return out.astype(bool) if array.dtype == bool else out


def photo(image: np.ndarray) -> np.ndarray:
    """The image (H x W x C, 0..255) as a uint8 RGB picture at `display_size` (small images
    upsampled pixel by pixel)."""
    rgb = np.clip(display_rgb(image), 0, 255).round().astype(np.uint8)
    size = display_size(rgb.shape[:2])
    return resample(rgb, size, nearest=size[0] > rgb.shape[0])


def overlay(image: np.ndarray, attribution: np.ndarray, scale: Scale | None = None) -> np.ndarray:
    """The map drawn over the image on `scale` (default: `map_scale` by the map's signs, real
    limits), uint8 RGB at the image's `display_size`: the photo in grey,
    each pixel coloured with opacity OVERLAY_ALPHA x |strength|, so values at 0 (diverging) or at
    the low end (sequential) show the photo. The map (model resolution) is resampled bilinearly
    to the picture, whatever its aspect."""
    scale = scale or map_scale("", attribution)
    base = photo(image).astype(np.float64)
    grey = np.repeat((base @ np.array([0.299, 0.587, 0.114]))[..., None], 3, axis=2)
    strength = scale.strength(resample(np.asarray(attribution, np.float32), base.shape[:2]))
    alpha = OVERLAY_ALPHA * np.abs(strength)[..., None]
    blend = (1 - alpha) * grey + alpha * colours(scale, strength)
    return np.clip(blend, 0, 255).round().astype(np.uint8)


def _text_scale(width: int) -> float:
    return float(np.clip(width / 900, 0.42, 1.0))


def _put(canvas: np.ndarray, text: str, origin: tuple[int, int], scale: float, width: int) -> None:
    """Black anti-aliased text, shrunk to fit `width` pixels."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    size = cv2.getTextSize(text, font, scale, 1)[0][0]
    if size > width:
        scale *= width / size
    cv2.putText(canvas, text, origin, font, scale, (0, 0, 0), 1, cv2.LINE_AA)


def annotate(picture: np.ndarray, title: list[str], footer: list[str],
             swatches: list[tuple[tuple[int, int, int], str]] = (), scale: Scale | None = None) -> np.ndarray:
    """A picture with title lines above, and below it a colour bar for `scale` (ticks in its
    units) and/or colour swatches with their labels, then footer lines. uint8 RGB."""
    width = picture.shape[1]
    ts = _text_scale(width)
    line = int(round(30 * ts)) + 4
    pad = 8
    bar = 2 * line if scale is not None else 0
    height = (len(title) * line + pad + picture.shape[0] + pad + bar + len(swatches) * line
              + len(footer) * line + pad)
    canvas = np.full((height, width, 3), 255, np.uint8)
    y = 0
    for text in title:
        y += line
        _put(canvas, text, (pad, y - 8), ts * 1.05, width - 2 * pad)
    y += pad // 2
    canvas[y:y + picture.shape[0]] = picture
    y += picture.shape[0] + pad
    if scale is not None:
        x0, x1 = pad + int(40 * ts), width - pad - int(40 * ts)
        ramp = np.linspace(-1 if scale.kind == DIVERGING else 0, 1, max(2, x1 - x0))
        ramp_rgb = colours(scale, ramp[None, :])[0].astype(np.float64)
        alpha = OVERLAY_ALPHA * np.abs(ramp)[:, None]
        canvas[y:y + line // 2, x0:x0 + len(ramp)] = ((1 - alpha) * 160 + alpha * ramp_rgb).round().astype(np.uint8)
        cv2.rectangle(canvas, (x0, y), (x0 + len(ramp) - 1, y + line // 2), (0, 0, 0), 1)
        for value, x in ((scale.low, x0), ((scale.low + scale.high) / 2, (x0 + x1) // 2), (scale.high, x1)):
            label = f"{value:.3g}"
            tw = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, ts * 0.9, 1)[0][0]
            _put(canvas, label, (int(np.clip(x - tw // 2, 0, width - tw)), y + line // 2 + line - 8), ts * 0.9, width)
        y += bar
    for colour, label in swatches:
        y += line
        cv2.rectangle(canvas, (pad, y - line + 8), (pad + line - 8, y - 4), colour, -1)
        _put(canvas, label, (pad + line, y - 6), ts, width - line - 2 * pad)
    for text in footer:
        y += line
        _put(canvas, text, (pad, y - 8), ts * 0.9, width - 2 * pad)
    return canvas


def map_figure(image: np.ndarray, attribution: np.ndarray, scale: Scale, title: list[str]) -> np.ndarray:
    """The overlay of a map on the image (any size and aspect) with its title, colour bar, units
    and colour convention."""
    return annotate(overlay(image, attribution, scale), title, [scale.units, scale.legend()], scale=scale)


def class_label(target: int, names: list[str] | None) -> str:
    """'name (id)' when names are known, else 'class id'."""
    return f"{names[target]} ({target})" if names and 0 <= target < len(names) else f"class {target}"


def safe_name(text: str) -> str:
    """A class name as a file-name part: lower case letters, digits and '_' only (at most 40)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40]


def png_bytes(rgb: np.ndarray) -> bytes:
    """A uint8 RGB array (or any image, as `display_rgb` says) encoded as PNG."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        rgb = np.clip(display_rgb(rgb), 0, 255).round().astype(np.uint8)
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("cannot encode a PNG")
    return data.tobytes()


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """Writes a uint8 RGB array (or any H x W x C image, shown as `display_rgb` says) as PNG."""
    Path(path).write_bytes(png_bytes(rgb))


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
