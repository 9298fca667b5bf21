"""Loading and checking images: float32 0..255, H x W x C (C = the model's channels), at model resolution."""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from .errors import OnnxplainError, warn

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


def image_files(folder: str | Path) -> list[Path]:
    """The image files (by suffix, any case) directly in `folder`, sorted by name; an error when
    the folder is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OnnxplainError(f"{folder} is a file, not a directory of images" if folder.exists()
                             else f"image directory not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise OnnxplainError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in directory {folder}")
    return files


DEFAULT_MAX_PIXELS = 50_000_000  # load_image refuses files with more pixels (read from the header)
UPSCALE_LIMIT = 2.0  # load_image warns when a side is enlarged more than this


def image_size(size, name: str = "input_size") -> tuple[int, int]:
    """`size` validated as (H, W), two positive integers; errors name it `name`."""
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2 or \
            any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in size):
        raise OnnxplainError(f"{name} must be (H, W), two integers, got {size!r}")
    h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise OnnxplainError(f"{name} must be positive, got {size!r}")
    return h, w


def load_image(source: str | Path | np.ndarray, size: tuple[int, int] | None = None, channels: int = 3, *,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file or array as float32 0..255, H x W x `channels`, resized once to size (H, W).

    Files: PNG, JPEG, ... read with Pillow (EXIF orientation applied; grey, RGB or RGBA; 16-bit
    scaled to 0..255; a truncated file is an error) or .npy (any channel count, e.g. C > 4); a
    file with more than `max_pixels` pixels is refused from its header, before decoding. Arrays
    may be uint8 or float (0..255). Channels are converted as `as_image` says. Downscaling uses
    area interpolation (anti-aliased), upscaling bilinear. Warns (OnnxplainWarning) when a float
    array lies in 0..1 or a side is enlarged more than 2x.
    """
    check_target_size(size, max_pixels)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            raise OnnxplainError(f"{path} is a directory, not an image file; give the path of one image")
        if not path.is_file():
            raise OnnxplainError(f"image file not found: {path}")
        if path.suffix.lower() != ".npy":
            return _converted(_read_picture(path, max_pixels), str(path), size, channels)
        array, name = _read_array(path, max_pixels), str(path)
    elif isinstance(source, np.ndarray):
        array, name = source, "the image array"
    else:
        raise OnnxplainError(f"an image must be a file path or a numpy array, got {type(source).__name__}")
    if (message := unit_range_message(array)) is not None:
        warn(message)
    return _converted(array, name, size, channels)


def check_target_size(size, max_pixels) -> None:
    """Refuses a bad max_pixels, or a size= that is not (H, W) or has more pixels than a file may
    (max_pixels, at least DEFAULT_MAX_PIXELS)."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise OnnxplainError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    if size is not None:
        (h, w), limit = image_size(size, "size"), max(max_pixels, DEFAULT_MAX_PIXELS)
        if h * w > limit:
            raise OnnxplainError(f"size {h} x {w} has more than {limit:,} pixels; pass a smaller size")


def _converted(array: np.ndarray, name: str, size: tuple[int, int] | None, channels: int) -> np.ndarray:
    """`array` (named `name` in warnings) through as_image, resized to `size`."""
    image = as_image(array, channels)
    if size is not None and image.shape[:2] != tuple(size):
        h, w = size
        if h > UPSCALE_LIMIT * image.shape[0] or w > UPSCALE_LIMIT * image.shape[1]:
            warn(f"{name} is {image.shape[0]} x {image.shape[1]}, enlarged more than {UPSCALE_LIMIT:g}x to the model's "
                 f"{h} x {w}: its detail is interpolated; give a larger image")
        shrinking = h * w < image.shape[0] * image.shape[1]
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        image = np.clip(image, 0, 255).astype(np.float32, copy=False).reshape(h, w, channels)
    return np.ascontiguousarray(image)


def decode_image(data: bytes, size: tuple[int, int] | None = None, channels: int = 3, *,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An encoded image (PNG, JPEG, ... bytes) as `load_image` gives it for the same file."""
    check_target_size(size, max_pixels)
    return _converted(_read_picture(io.BytesIO(data), max_pixels, "image bytes"), "image bytes", size, channels)


def unit_range_message(array) -> str | None:
    """The warning for a float array whose values all lie in 0..1 (likely scaled 0..1, not 0..255), else None."""
    if not (isinstance(array, np.ndarray) and np.issubdtype(array.dtype, np.floating) and array.size):
        return None
    with np.errstate(invalid="ignore"):
        if not (np.nanmin(array) >= 0 and 0 < np.nanmax(array) <= 1):  # all zeros: black, not scaled
            return None
    return "image values all lie in 0..1 but images are 0..255: if it was scaled to 0..1, pass image * 255"


def _too_large(name: str | Path, h: int, w: int, max_pixels: int) -> None:
    if h * w > max_pixels:
        raise OnnxplainError(f"{name} is {h} x {w} = {h * w:,} pixels, above the limit of {max_pixels:,}; "
                             "downscale it or raise max_pixels= (CLI: --max-pixels)")


def _read_array(path: Path, max_pixels: int) -> np.ndarray:
    """A .npy image, its size checked from the header before reading."""
    try:
        header = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise OnnxplainError(f"cannot read image array {path}: {exc}") from None
    if header.ndim >= 2:
        _too_large(path, header.shape[0], header.shape[1], max_pixels)
    return np.array(header)


def _read_picture(source: Path | BinaryIO, max_pixels: int, name: str | None = None) -> np.ndarray:
    """A picture file's (or file object's, called `name`) pixels (H x W or H x W x 3|4; uint8, or
    float for 16-bit and float files), EXIF orientation applied, its size checked from the header
    before decoding."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = source if name is None else name
    try:
        with Image.open(source) as picture:
            _too_large(path, picture.height, picture.width, max_pixels)
            picture.load()  # a truncated file raises here
            return _pixels(ImageOps.exif_transpose(picture))
    except OnnxplainError:
        raise
    except PermissionError:
        raise OnnxplainError(f"cannot read {path}: permission denied; make the file readable") from None
    except Image.DecompressionBombError as exc:
        raise OnnxplainError(f"{path} has more pixels than Pillow decodes safely ({exc}); downscale it") from None
    except UnidentifiedImageError:
        raise OnnxplainError(f"cannot read {'image file' if name is None else name} (not an image, or an unsupported "
                             f"format){'' if name else f': {path}'}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise OnnxplainError(f"cannot decode {'image file ' if name is None else ''}{path}: truncated or corrupt "
                             f"({exc}); save or download it again") from None


def _pixels(picture) -> np.ndarray:
    """A decoded PIL image as an array: grey, RGB or RGBA uint8; 16-bit modes scaled to 0..255."""
    mode = picture.mode
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(picture)
    if mode == "I" or mode.startswith("I;16"):
        return np.asarray(picture).astype(np.float32) / 257.0
    if mode == "F":
        return np.asarray(picture, np.float32)
    if mode == "1":
        return np.asarray(picture.convert("L"))
    alpha = "A" in mode or "transparency" in picture.info
    return np.asarray(picture.convert("RGBA" if alpha else "RGB"))


RANGE_SLACK = 1e-2  # values this far outside 0..255 are float rounding and get clipped
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # RGB -> grey (ITU-R BT.601, as OpenCV)


def as_image(array: np.ndarray, channels: int = 3) -> np.ndarray:
    """Validates and converts an array to float32 0..255, H x W x `channels` (no resizing).

    Grey (H x W or H x W x 1) is repeated into every channel; RGB or RGBA becomes grey by luma
    for a 1-channel model; RGBA loses its alpha for a 3-channel model; otherwise the channel
    count must match."""
    if not isinstance(array, np.ndarray):
        hint = "; read a file with onnxplain.load_image(path, model.input_size)" if isinstance(array, (str, Path)) else ""
        raise OnnxplainError(f"an image must be a numpy array, got {type(array).__name__}{hint}")
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
