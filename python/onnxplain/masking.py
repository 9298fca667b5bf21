"""Maskers: how an input and its replacement become model inputs, one masker per modality.

The data path of every method is input -> masker -> batches -> model -> scores -> result. A
masker checks an input as the user holds it, builds its replacement (baseline, counterfactual),
and prepares both once in the core (`_core.PreparedInput`), which then turns each batch of masks
into model inputs. A mask has one value in [0, 1] per position of the input (`mask_shape`; an
image's pixels), 1 keeping the input; `Features` groups positions into features.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from . import _core
from .errors import OnnxplainError
from .image import as_image

if TYPE_CHECKING:
    from .model import Model

Baseline = str | float | np.ndarray


class ImageMasker:
    """The image modality: an input is H x W x C float32 in 0..255 at the model's resolution
    (C = the model's channels), a mask covers its H x W pixels."""

    modality = "image"

    def __init__(self, model: Model) -> None:
        self.model = model

    @property
    def mask_shape(self) -> tuple[int, int]:
        """One mask: (H, W)."""
        return self.model.input_size

    def check(self, image: np.ndarray) -> np.ndarray:
        """One image as float32 H x W x C at the model's resolution, or an error saying how to load it."""
        image = as_image(image, self.model.channels)
        if image.shape[:2] != self.model.input_size:
            h, w = self.model.input_size
            raise OnnxplainError(
                f"image is {image.shape[0]} x {image.shape[1]} but the model takes {h} x {w}; load it with "
                "onnxplain.load_image(path_or_array, model.input_size)")
        return image

    def replacement(self, image: np.ndarray, baseline: Baseline, blur_sigma: float | None = None) -> np.ndarray:
        """The H x W x C image that replaces removed pixels.

        "mean": the value the preprocessing maps to 0; "blur": a Gaussian-blurred copy (sigma
        default H / 16); a number: that constant pixel value; an array: any image of the same size.
        """
        if isinstance(baseline, str):
            if baseline == "mean":
                return np.ascontiguousarray(np.broadcast_to(self.model.preprocess.neutral, image.shape), np.float32)
            if baseline == "blur":
                sigma = blur_sigma or image.shape[0] / 16
                return np.ascontiguousarray(cv2.GaussianBlur(image, (0, 0), sigmaX=sigma), np.float32).reshape(image.shape)
            raise OnnxplainError(f"baseline must be 'mean', 'blur', a pixel value or an image, got {baseline!r}")
        if isinstance(baseline, (int, float, np.floating, np.integer)) and not isinstance(baseline, bool):
            if not 0 <= baseline <= 255:
                raise OnnxplainError(f"a constant baseline is a pixel value in 0..255, got {baseline}")
            return np.full(image.shape, baseline, np.float32)
        if isinstance(baseline, np.ndarray):
            baseline = as_image(baseline, image.shape[2])
            if baseline.shape != image.shape:
                raise OnnxplainError(f"baseline image has shape {baseline.shape}, the image {image.shape}")
            return baseline
        raise OnnxplainError(f"baseline must be 'mean', 'blur', a pixel value or an image, got {type(baseline).__name__}")

    def prepare(self, image: np.ndarray, replacement: Baseline, blur_sigma: float | None = None) -> _core.PreparedInput:
        """The image and its replacement (a baseline as in `replacement`) preprocessed once."""
        image = self.check(image)
        return self.model.preprocessor.prepare(image, self.replacement(image, replacement, blur_sigma))


class Features:
    """A grouping of an input's positions into F features (superpixels, patches, ...).

    feature_map: integer array of the mask shape (e.g. H x W), any labels; they are renumbered
    0..F-1 in increasing label order (`labels`, int32), so feature f is the f-th smallest label.
    """

    def __init__(self, feature_map: np.ndarray, mask_shape: tuple[int, ...]) -> None:
        feature_map = np.asarray(feature_map)
        if feature_map.shape != tuple(mask_shape):
            raise OnnxplainError(f"features must be an integer map of shape {tuple(mask_shape)} (one label per "
                                 f"position), got shape {feature_map.shape}")
        if not np.issubdtype(feature_map.dtype, np.integer):
            raise OnnxplainError(f"features must hold integer labels, got dtype {feature_map.dtype}")
        values, labels = np.unique(feature_map, return_inverse=True)
        self.values = values  # the original label of each feature
        self.labels = np.ascontiguousarray(labels.reshape(mask_shape), np.int32)
        self.count = len(values)

    def masks(self, keep: np.ndarray, threads: int = 0) -> np.ndarray:
        """Masks over positions (B, *mask_shape) float32 from masks over features keep (B, F)."""
        return _core.feature_masks(self.labels, np.ascontiguousarray(keep, np.float32), threads)

    def occlusion_masks(self, first: int, count: int, threads: int = 0) -> np.ndarray:
        """Masks hiding one feature each: features first..first+count-1."""
        keep = np.ones((count, self.count), np.float32)
        keep[np.arange(count), np.arange(first, first + count)] = 0.0
        return self.masks(keep, threads)

    def record(self) -> dict:
        return {"features": int(self.count)}


def as_features(features: Features | np.ndarray | None, mask_shape: tuple[int, ...]) -> Features | None:
    """None (positions themselves are the features), a Features, or a feature map made into one."""
    if features is None:
        return None
    if isinstance(features, Features):
        if features.labels.shape != tuple(mask_shape):
            raise OnnxplainError(f"features cover shape {features.labels.shape}, the input's positions {tuple(mask_shape)}")
        return features
    return Features(features, mask_shape)
