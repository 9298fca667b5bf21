"""Occlusion and RISE find known evidence, deterministically, on every code path."""
import numpy as np
import pytest

import onnxplain as ox
from onnxplain import demo
from helpers import efficientnet_corner_chelsea, needs_efficientnet


@pytest.fixture(scope="module")
def demo_model():
    return ox.Model(demo.demo_model_path(), preset="unit", progress=False)


def dilate(box, by, size):
    y0, x0, y1, x1 = box
    return max(0, y0 - by), max(0, x0 - by), min(size, y1 + by), min(size, x1 + by)


@pytest.mark.parametrize("cls", [0, 1, 2])
@pytest.mark.parametrize("method", ["occlusion", "rise"])
def test_maps_find_planted_evidence(demo_model, cls, method):
    image, box = demo.make_demo_image(cls, seed=100 + cls)
    if method == "occlusion":
        result = ox.Occlusion(demo_model).attribute(image, window=8, stride=2)
        margin, min_share = 4, 0.5
    else:
        result = ox.RISE(demo_model).attribute(image, n_masks=1500, grid=8, seed=3)
        margin, min_share = 8, 0.2
    assert result.targets == [cls]
    attribution = result[cls]
    assert attribution.shape == (64, 64) and attribution.dtype == np.float32
    y0, x0, y1, x1 = dilate(box, margin, 64)
    peak = np.unravel_index(np.argmax(attribution), attribution.shape)
    assert y0 <= peak[0] < y1 and x0 <= peak[1] < x1, (peak, box)
    # The box is 2.4 % of the image; a map that ignored it would put ~2 % of its mass there.
    assert demo.evidence_share(attribution, box) >= min_share


def test_occlusion_equals_bruteforce(demo_model):
    image, _ = demo.make_demo_image(1, seed=5)
    window, stride, grey = 16, 16, 128.0
    result = ox.Occlusion(demo_model).attribute(image, target=[1, 2], window=window, stride=stride, baseline=grey)
    clean = demo_model.predict(image)
    for target in (1, 2):
        expected = np.zeros((64, 64))
        for y in range(0, 64, stride):
            for x in range(0, 64, stride):
                occluded = image.copy()
                occluded[y:y + window, x:x + window] = grey
                expected[y:y + window, x:x + window] = clean[target] - demo_model.predict(occluded)[target]
        np.testing.assert_allclose(result[target], expected, atol=1e-5)
    assert result.evaluations == 1 + 16


def test_rise_equals_numpy_formula(demo_model):
    image, _ = demo.make_demo_image(0, seed=6)
    n, grid, p = 50, 4, 0.5
    result = ox.RISE(demo_model).attribute(image, n_masks=n, grid=grid, p_keep=p, seed=9, target=[0, 1])
    from onnxplain import _core

    masks = _core.rise_masks(9, 0, n, 64, 64, grid, p)
    neutral = demo_model.preprocess.neutral
    perturbed = masks[..., None] * image + (1 - masks[..., None]) * neutral
    probs = demo_model.predict(perturbed)
    for target in (0, 1):
        expected = np.tensordot(probs[:, target], masks, axes=1) / (n * p)
        np.testing.assert_allclose(result[target], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["occlusion", "rise"])
def test_same_seed_same_maps_for_any_batch_size(method):
    image, _ = demo.make_demo_image(2, seed=8)
    maps = []
    for batch_size, threads in ((1, 1), (7, 2), (64, 0), (333, 3)):
        model = ox.Model(demo.demo_model_path(), preset="unit", batch_size=batch_size, threads=threads, progress=False)
        explainer = ox.Occlusion(model) if method == "occlusion" else ox.RISE(model)
        kwargs = {"window": 8, "stride": 4} if method == "occlusion" else {"n_masks": 300, "seed": 42}
        maps.append(explainer.attribute(image, target="top3", **kwargs).maps)
    for other in maps[1:]:
        assert other.keys() == maps[0].keys()
        for t in maps[0]:
            # masks and accumulation order are identical; only onnxruntime's per-batch kernels may differ
            np.testing.assert_allclose(other[t], maps[0][t], rtol=1e-5, atol=1e-7)


def test_rise_seed_changes_map(demo_model):
    image, _ = demo.make_demo_image(0, seed=1)
    a = ox.RISE(demo_model).attribute(image, n_masks=100, seed=1)
    b = ox.RISE(demo_model).attribute(image, n_masks=100, seed=1)
    c = ox.RISE(demo_model).attribute(image, n_masks=100, seed=2)
    assert np.array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_record_is_complete(demo_model, tmp_path):
    image, _ = demo.make_demo_image(0, seed=2)
    result = ox.RISE(demo_model).attribute(image, n_masks=64, seed=5)
    record = result.record()
    assert record["method"] == "rise" and record["seed"] == 5 and record["targets"] == [0]
    assert record["evaluations"] == 65 and record["seconds"] > 0
    assert record["params"]["n_masks"] == 64 and record["model"]["output"] == "logits"
    assert record["top_classes"][0]["class"] == 0
    files = result.save(tmp_path)
    assert {f.name for f in files} == {"rise_0.npy", "rise_0.png", "input.png", "result.json", "report.html"}
    assert np.load(tmp_path / "rise_0.npy").dtype == np.float32


def test_logit_scores(demo_model):
    image, box = demo.make_demo_image(0, seed=3)
    result = ox.Occlusion(demo_model).attribute(image, window=8, stride=4, scores="logits")
    assert result.params["scores"] == "logits"
    assert result[0].max() > 1.0  # logit drops are not bounded by 1 like probabilities


@needs_efficientnet
def test_efficientnet_corner_photo_peaks_inside_photo():
    model, canvas, (y0, x0, y1, x1), top = efficientnet_corner_chelsea()
    for explainer, kwargs in ((ox.Occlusion(model), {"window": 32, "stride": 16}),
                              (ox.RISE(model), {"n_masks": 512, "grid": 8, "seed": 0})):
        result = explainer.attribute(canvas, **kwargs)
        assert result.targets == [top]
        peak = np.unravel_index(np.argmax(result[top]), result[top].shape)
        assert y0 <= peak[0] < y1 and x0 <= peak[1] < x1, (explainer.method, peak)
