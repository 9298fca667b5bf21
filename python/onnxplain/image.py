"""Loading and checking images: float32 0..255, H x W x C (C = the model's channels), at model resolution."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import OnnxplainError

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


def image_files(folder: str | Path) -> list[Path]:
    """The image files (by suffix, any case) directly in `folder`, sorted by name; an error when
    the folder is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OnnxplainError(f"image directory not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise OnnxplainError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in directory {folder}")
    return files


def load_image(source: str | Path | np.ndarray, size: tuple[int, int] | None = None, channels: int = 3) -> np.ndarray:
    """An image file or array as float32 0..255, H x W x `channels`, resized once to size (H, W).

    Files: PNG, JPEG, ... (decoded as grey, RGB or RGBA; 16-bit scaled to 0..255) or .npy (any
    channel count, e.g. C > 4). Arrays may be uint8 or float (0..255). Channels are converted as
    `as_image` says. Downscaling uses area interpolation (anti-aliased), upscaling bilinear.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise OnnxplainError(f"image file not found: {path}")
        if path.suffix.lower() == ".npy":
            try:
                array = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise OnnxplainError(f"cannot read image array {path}: {exc}") from None
        else:
            array = _decoded(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), f"image file {path}")
    elif isinstance(source, np.ndarray):
        array = source
    else:
        raise OnnxplainError(f"an image must be a file path or a numpy array, got {type(source).__name__}")
    image = as_image(array, channels)
    if size is not None and image.shape[:2] != tuple(size):
        h, w = size
        shrinking = h * w < image.shape[0] * image.shape[1]
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        image = np.clip(image, 0, 255).astype(np.float32, copy=False).reshape(h, w, channels)
    return np.ascontiguousarray(image)


def decode_image(data: bytes, size: tuple[int, int] | None = None, channels: int = 3) -> np.ndarray:
    """An encoded image (PNG, JPEG, ... bytes) as `load_image` gives it for the same file."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    return load_image(_decoded(decoded, "image bytes"), size, channels)


def _decoded(data: np.ndarray | None, what: str) -> np.ndarray:
    """An OpenCV decoding as grey, RGB or RGBA (16-bit scaled to 0..255); an error naming `what`
    when it failed (None)."""
    if data is None:
        raise OnnxplainError(f"cannot read {what} (corrupt or unsupported format)")
    if data.ndim == 3 and data.shape[2] == 4:
        data = cv2.cvtColor(data, cv2.COLOR_BGRA2RGBA)
    elif data.ndim == 3 and data.shape[2] == 3:
        data = cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
    return data / 257.0 if data.dtype == np.uint16 else data


RANGE_SLACK = 1e-2  # values this far outside 0..255 are float rounding and get clipped
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # RGB -> grey (ITU-R BT.601, as OpenCV)


def as_image(array: np.ndarray, channels: int = 3) -> np.ndarray:
    """Validates and converts an array to float32 0..255, H x W x `channels` (no resizing).

    Grey (H x W or H x W x 1) is repeated into every channel; RGB or RGBA becomes grey by luma
    for a 1-channel model; RGBA loses its alpha for a 3-channel model; otherwise the channel
    count must match."""
    if not isinstance(array, np.ndarray):
        raise OnnxplainError(f"an image must be a numpy array, got {type(array).__name__}")
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise OnnxplainError(f"image dtype must be uint8 or float, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise OnnxplainError(f"image must be H x W or H x W x C, got shape {array.shape}")
    image = array.astype(np.float32)
    have = image.shape[2]
    if have != channels:
        if have == 1:
            image = np.repeat(image, channels, axis=2)
        elif have in (3, 4) and channels == 1:
            image = image[:, :, :3] @ LUMA[:, None]
        elif have == 4 and channels == 3:
            image = image[:, :, :3]
        else:
            raise OnnxplainError(f"image has {have} channels but the model takes {channels}; give an H x W x "
                                 f"{channels} array (files with more than 4 channels: .npy)")
    if not np.all(np.isfinite(image)):
        raise OnnxplainError("image contains NaN or infinite values")
    low, high = float(image.min()), float(image.max())
    if low < -RANGE_SLACK or high > 255 + RANGE_SLACK:
        raise OnnxplainError(f"image values must lie in 0..255, got {low:.6g}..{high:.6g}")
    if low < 0 or high > 255:  # float rounding of a resize or blend: clip, not reject
        image = np.clip(image, 0, 255)
    return np.ascontiguousarray(image)
