"""Shared test fixtures' building blocks (imported by test modules)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
EFFICIENTNET = SHARED_MODELS / "efficientnet_lite0.onnx"


def needs_efficientnet(test):
    """Marks a test `real_model` and skips it when ../shared/models/efficientnet_lite0.onnx is absent."""
    skip = pytest.mark.skipif(not EFFICIENTNET.is_file(), reason="../shared/models/efficientnet_lite0.onnx absent")
    return pytest.mark.real_model(skip(test))


def efficientnet_corner_chelsea():
    """EfficientNet-Lite0 and scikit-image's chelsea pasted into the bottom-right corner of a grey
    canvas: (model, canvas, photo box (y0, x0, y1, x1), the model's top-1 class)."""
    import onnxplain as ox

    skimage_data = pytest.importorskip("skimage.data")
    model = ox.Model(EFFICIENTNET, preset="efficientnet-lite", progress=False)
    canvas, box = photo_on_canvas(skimage_data.chelsea(), corner="bottom-right", scale=0.55)
    return model, canvas, box, int(np.argmax(model.predict(canvas)))


def photo_on_canvas(photo: np.ndarray, size: int = 224, corner: str = "top-left", scale: float = 0.5,
                    grey: float = 127.0) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A photo resized to scale * size, pasted into one corner of a neutral grey canvas.
    Returns the canvas (float32 0..255) and the photo's box (y0, x0, y1, x1)."""
    import cv2

    side = int(size * scale)
    small = cv2.resize(photo.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, 3), grey, np.float32)
    y0 = 0 if "top" in corner else size - side
    x0 = 0 if "left" in corner else size - side
    canvas[y0:y0 + side, x0:x0 + side] = small
    return canvas, (y0, x0, y0 + side, x0 + side)
