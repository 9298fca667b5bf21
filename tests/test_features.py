"""Explanations over features: superpixels (or any integer map) instead of pixels, on the demo model
whose only evidence is a planted pattern."""
import numpy as np
import pytest
from skimage.segmentation import slic

import onnxplain as ox
from onnxplain import _core, demo, fidelity
from onnxplain.masking import Features


@pytest.fixture(scope="module")
def demo_model():
    return ox.Model(demo.demo_model_path(), preset="unit", progress=False)


def superpixels(image: np.ndarray, segments: int = 60) -> np.ndarray:
    return slic(image / 255.0, n_segments=segments, compactness=10, start_label=1)


def box_mask(box, size=64):
    y0, x0, y1, x1 = box
    inside = np.zeros((size, size), bool)
    inside[y0:y1, x0:x1] = True
    return inside


@pytest.mark.parametrize("cls", [0, 1, 2])
def test_superpixel_occlusion_is_each_superpixels_own_drop(demo_model, cls):
    image, box = demo.make_demo_image(cls, seed=40 + cls)
    segments = superpixels(image)
    result = ox.Occlusion(demo_model).attribute(image, target=cls, features=segments, baseline=128.0)
    labels = np.unique(segments)
    assert result.params["features"] == len(labels) and result.evaluations == 1 + len(labels)
    clean = demo_model.predict(image)[cls]
    drops = {}
    for label in labels:  # brute force: grey out one superpixel at a time
        occluded = image.copy()
        occluded[segments == label] = 128.0
        drops[label] = clean - demo_model.predict(occluded)[cls]
        np.testing.assert_allclose(result[cls][segments == label], drops[label], atol=1e-5)
    # the superpixels covering the planted pattern carry the largest drop
    best = max(drops, key=drops.get)
    assert (segments == best)[box_mask(box)].any()


def test_superpixel_rise_equals_its_formula_and_finds_the_pattern(demo_model):
    image, box = demo.make_demo_image(2, seed=7)
    segments = superpixels(image, 40)
    n, p = 400, 0.5
    result = ox.RISE(demo_model).attribute(image, target=2, features=segments, n_masks=n, p_keep=p, seed=5)
    features = Features(segments, (64, 64))
    keep = _core.bernoulli_keep(5, 0, n, features.count, p)
    masks = keep[:, features.labels]
    baseline = demo_model.preprocess.neutral
    perturbed = masks[..., None] * image + (1 - masks[..., None]) * baseline
    scores = demo_model.predict(perturbed)[:, 2]
    expected = np.tensordot(scores.astype(np.float64), masks, axes=1) / (n * p)
    np.testing.assert_allclose(result[2], expected, rtol=1e-5, atol=1e-6)
    assert "grid" not in result.params and result.params["features"] == features.count
    for label in np.unique(segments):  # one value per superpixel
        assert np.ptp(result[2][segments == label]) < 1e-6
    peak = np.unravel_index(np.argmax(result[2]), result[2].shape)
    assert (segments == segments[peak])[box_mask(box)].any()


@pytest.mark.parametrize("method", ["occlusion", "rise"])
def test_feature_maps_are_the_same_for_any_batch_size(method):
    image, _ = demo.make_demo_image(1, seed=3)
    segments = superpixels(image)
    maps = []
    for batch in (1, 7, 64):
        model = ox.Model(demo.demo_model_path(), preset="unit", batch_size=batch, progress=False)
        explainer = ox.Occlusion(model) if method == "occlusion" else ox.RISE(model)
        options = {} if method == "occlusion" else {"n_masks": 50, "seed": 2}
        maps.append(explainer.attribute(image, features=segments, **options)[1])
    assert all(np.array_equal(maps[0], m) for m in maps[1:])


def test_patch_features_reproduce_windows(demo_model):
    """A feature map of non-overlapping 8 x 8 squares is occlusion with window = stride = 8."""
    image, _ = demo.make_demo_image(0, seed=9)
    squares = (np.arange(64)[:, None] // 8) * 8 + np.arange(64)[None, :] // 8
    windows = ox.Occlusion(demo_model).attribute(image, window=8, stride=8)
    grouped = ox.Occlusion(demo_model).attribute(image, features=squares)
    np.testing.assert_array_equal(windows[0], grouped[0])


def test_fidelity_ranks_superpixels(demo_model):
    image, box = demo.make_demo_image(0, seed=11)
    segments = superpixels(image)
    attribution = ox.Occlusion(demo_model).attribute(image, features=segments)[0]
    curves = fidelity.mif_lif(demo_model, image, attribution, features=segments, fractions=[0, 0.1, 0.5, 1.0])
    assert curves.params["features"] == len(np.unique(segments))
    assert curves.curves["mif"][1] < curves.curves["lif"][1]  # removing the best 10 % hurts more
    # patch features as a label map rank exactly like patch=
    squares = (np.arange(64)[:, None] // 4) * 16 + np.arange(64)[None, :] // 4
    by_patch = fidelity.deletion(demo_model, image, attribution, patch=4, step=16)
    by_labels = fidelity.deletion(demo_model, image, attribution, features=squares, step=16)
    np.testing.assert_array_equal(by_patch.curves["deletion"], by_labels.curves["deletion"])


def test_bad_feature_maps_are_refused_with_the_keyword(demo_model):
    image, _ = demo.make_demo_image(0, seed=1)
    with pytest.raises(ox.OnnxplainError, match="features must be an integer map of shape"):
        ox.Occlusion(demo_model).attribute(image, features=np.zeros((32, 32), int))
    with pytest.raises(ox.OnnxplainError, match="features must hold integer labels"):
        ox.RISE(demo_model).attribute(image, features=np.zeros((64, 64), np.float32))
