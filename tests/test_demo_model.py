"""The built-in demo classifier: class-decisive, evidence only the planted pattern, deterministic."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _demo():
    try:
        from onnxplain import demo  # type: ignore
        return demo
    except Exception:  # package __init__ missing or in progress: load the module by path
        return _load("_onnxplain_demo_test", ROOT / "python" / "onnxplain" / "demo.py")


demo = _demo()


@pytest.fixture(scope="module")
def session():
    return ort.InferenceSession(str(demo.demo_model_path()), providers=["CPUExecutionProvider"])


def _to_input(images) -> np.ndarray:
    x = np.stack([np.asarray(im, dtype=np.float32) for im in images]) / 255.0
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32)


def _probs(session, images) -> np.ndarray:
    (logits,) = session.run(["logits"], {"image": _to_input(images)})
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_model_contract(session):
    (inp,) = session.get_inputs()
    (out,) = session.get_outputs()
    assert inp.name == "image" and inp.type == "tensor(float)"
    assert inp.shape[1:] == [3, demo.DEMO_SIZE, demo.DEMO_SIZE] and isinstance(inp.shape[0], str)
    assert out.name == "logits" and out.shape[1] == len(demo.DEMO_CLASSES)
    assert demo.demo_model_path().stat().st_size < 1_000_000
    for p in demo.demo_image_paths():
        assert p.is_file()


def test_image_generator():
    img, box = demo.make_demo_image(None, seed=3)
    assert img.dtype == np.float32 and img.shape == (64, 64, 3) and box == (0, 0, 0, 0)
    assert img.min() >= 80 and img.max() <= 180
    assert np.abs(img - img.mean(axis=2, keepdims=True)).max() < 10  # no coloured pixels
    a, box_a = demo.make_demo_image(1, seed=5)
    b, box_b = demo.make_demo_image(1, seed=5)
    assert np.array_equal(a, b) and box_a == box_b
    _, box = demo.make_demo_image(2, seed=1, position=(3, 7))
    assert box == (3, 7, 13, 17)


def test_planted_class_wins(session):
    images, classes = [], []
    for cls in range(3):
        for i in range(10):
            img, _ = demo.make_demo_image(cls, seed=1000 + 10 * cls + i)
            images.append(img)
            classes.append(cls)
    p = _probs(session, images)
    assert np.array_equal(p.argmax(axis=1), classes)
    assert p[np.arange(30), classes].min() >= 0.9


def test_no_pattern_is_chance(session):
    images = [demo.make_demo_image(None, seed=s)[0] for s in range(10)]
    p = _probs(session, images)
    np.testing.assert_allclose(p, 1.0 / 3.0, atol=1e-3)


def test_covering_pattern_removes_evidence(session):
    covered = []
    for cls in range(3):
        for i in range(5):
            img, (y0, x0, y1, x1) = demo.make_demo_image(cls, seed=2000 + 10 * cls + i)
            img[y0:y1, x0:x1] = 128.0
            covered.append((img, cls))
    p = _probs(session, [im for im, _ in covered])
    for row, (_, cls) in zip(p, covered):
        assert row[cls] < 0.5


def test_two_patterns_still_fire(session):
    img, _ = demo.make_demo_image(None, seed=7)
    demo.plant(img, 0, (5, 5))
    demo.plant(img, 0, (40, 40))
    assert _probs(session, [img])[0, 0] >= 0.9
    with pytest.raises(ValueError):
        demo.plant(img, 0, (60, 60))


def test_batch_equals_single(session):
    images = [demo.make_demo_image(i % 3, seed=300 + i)[0] for i in range(5)]
    (batch,) = session.run(["logits"], {"image": _to_input(images)})
    singles = np.concatenate([session.run(["logits"], {"image": _to_input([im])})[0] for im in images])
    np.testing.assert_allclose(batch, singles, atol=1e-5, rtol=1e-5)


def test_build_is_deterministic(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("cv2")
    tool = _load("_build_demo_model", ROOT / "tools" / "build_demo_model.py")
    tool.build(tmp_path / "a")
    tool.build(tmp_path / "b")
    shipped = demo.demo_model_path().parent
    names = ["demo.onnx", "demo_images.json"] + [p.name for p in demo.demo_image_paths()]
    for name in names:
        a = (tmp_path / "a" / name).read_bytes()
        assert a == (tmp_path / "b" / name).read_bytes(), name
        assert a == (shipped / name).read_bytes(), name
