"""Counterfactual discriminative attribution (issue 5) on a ground-truth model built here.

The model (64 x 64, raw pixels, 3 classes: 0 = "red", 1 = "blue", 2 = "neither") averages
colour-opponent responses over the image: red pixels raise logit 0, blue pixels logit 1, green
pixels raise BOTH logits 0 and 1 equally (shared evidence, never discriminative), grey pixels
nothing; logit 2 is a constant. x_r has a red square and a green square on grey noise; x_c has
the red square recoloured blue, the same green square and a different grey noise background.
So the only discriminative region is the coloured square; the green square is evidence for A
that vanilla maps pick up; the background differs but is ignored (residual is not perfect).
"""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxplain as ox
from onnxplain import counterfactual as cf
from onnxplain.cli import main

SIZE = 64
SQUARE = (20, 36, 34, 50)  # y0, x0, y1, x1 of the coloured (discriminative) square, 14 x 14
GREEN = (40, 4, 60, 24)  # the shared-evidence square, 20 x 20, stronger evidence than the red one
RED, BLUE, GREENC = (230.0, 25.0, 25.0), (25.0, 40.0, 235.0), (25.0, 210.0, 25.0)


def _colour_model() -> bytes:
    w1 = np.full((3, 3, 1, 1), -0.5 / 255, np.float32)
    for c in range(3):
        w1[c, c, 0, 0] = 1.0 / 255
    b1 = np.full(3, -0.3, np.float32)
    k = 4.0 / (0.5 * 14 * 14 / SIZE ** 2)  # the red square adds ~4 to logit 0 (blue to logit 1)
    g = 6.0 / (0.43 * 20 * 20 / SIZE ** 2)  # the green square adds ~6 to logits 0 and 1
    # features (R, G, B opponents) -> logits (red, blue, neither)
    w2 = np.array([[k, 0, 0], [g, g, 0], [0, k, 0]], np.float32)
    b2 = np.array([0.0, 0.0, 8.0], np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c"]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "colour_square",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
         numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _scene(colour, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grey = rng.uniform(40, 215, (SIZE // 2, SIZE // 2))  # 2 x 2 blocks of grey noise
    image = np.repeat(np.repeat(grey, 2, 0), 2, 1)[..., None].repeat(3, 2).astype(np.float32)
    y0, x0, y1, x1 = SQUARE
    image[y0:y1, x0:x1] = colour
    y0, x0, y1, x1 = GREEN
    image[y0:y1, x0:x1] = GREENC
    return image


@pytest.fixture(scope="module")
def model():
    return ox.Model(_colour_model(), preset="raw", output="logits", progress=False)


@pytest.fixture(scope="module")
def pair(model):
    return cf.make_pair(model, _scene(RED, 1), _scene(BLUE, 2))


@pytest.fixture(scope="module")
def swaps(model, pair):
    return cf.explain_pair(model, pair, n_masks=500, seed=0)


def test_pair_defaults_and_filter(model, pair):
    assert (pair.class_a, pair.class_b) == (0, 1)
    assert pair.p_a_real > 0.8 and pair.p_b_counterfactual > 0.8
    assert pair.source == {"kind": "given"}
    with pytest.raises(ox.OnnxplainError, match=r"p\(B\|x_c\) = 0\.\d+ <= 0\.99"):
        cf.make_pair(model, _scene(RED, 1), _scene(BLUE, 2), min_confidence=(0.8, 0.99))
    with pytest.raises(ox.OnnxplainError, match="same class"):
        cf.make_pair(model, _scene(RED, 1), _scene(RED, 3))
    kept = cf.make_pair(model, _scene(RED, 1), _scene(BLUE, 2), min_confidence=None, class_b=2)
    assert kept.class_b == 2


def test_full_swap_delta(model, pair, swaps):
    expected = model.predict(pair.counterfactual)[1] - model.predict(pair.real)[1]
    for _, swap in swaps.values():
        assert swap.full_delta == pytest.approx(expected, abs=1e-6)
        assert swap.curve[-1] == pytest.approx(expected, abs=1e-6)
        assert swap.curve[0] == 0.0
    # the same full swap through the core's hybrid batches: an all-ones soft mask is x_c
    # a constant map gives only empty masks: the curve is the straight line between the pins
    with pytest.warns(ox.OnnxplainWarning, match="the map is constant"):
        flat = cf.mask_swap(model, pair, np.ones((SIZE, SIZE), np.float32))
    assert np.all(flat.sizes == 0) and flat.evaluations == 1
    assert flat.score == pytest.approx(expected / 2, abs=1e-6)
    scores = []
    model.evaluate_masks(model.prepare(pair.counterfactual, pair.real), 1, lambda f, c: np.ones((c, SIZE, SIZE), np.float32),
                         lambda m, s: scores.append(s[0, 1]), "probabilities")
    assert scores[0] - pair.p_b_real == pytest.approx(expected, abs=1e-6)


def test_d_methods_find_the_square_and_beat_the_others(swaps):
    y0, x0, y1, x1 = SQUARE
    scores = {m: s.score for m, (_, s) in swaps.items()}
    print(json.dumps({m: round(v, 4) for m, v in scores.items()}))
    for method in cf.D_METHODS:
        swap = swaps[method][1]
        mask = swap.best_mask
        assert mask[y0:y1, x0:x1].mean() > 0.9, method  # covers the square
        assert mask.mean() < 3 * (y1 - y0) * (x1 - x0) / SIZE ** 2, method  # and not much else
        assert swap.best["delta"] > 0.6
        for other in ("residual", "occlusion", "rise", "random"):
            assert scores[method] > scores[other] + 0.02, (method, other, scores)
    assert scores["residual"] > scores["random"] - 0.05  # sanity: not worse than noise by much


def test_best_hybrid_flips_the_decision(model, pair, swaps):
    swap = swaps["d-occlusion"][1]
    probabilities = model.predict(swap.best_hybrid)
    np.testing.assert_allclose(probabilities, swap.best_probabilities, atol=1e-4)
    assert probabilities.argmax() == pair.class_b
    assert swap.best["p_b"] == pytest.approx(swap.deltas[swap.best_index] + pair.p_b_real, abs=1e-6)


def _reference_curve(sizes, deltas, full, points=101):
    """Independent: dictionary of size -> max delta, pins override, np.interp, manual trapezoids."""
    table = {}
    for m, d in zip(sizes, deltas):
        if 0 < m < 1:
            table[float(m)] = max(table.get(float(m), -np.inf), float(d))
    table[0.0], table[1.0] = 0.0, float(full)
    xs = sorted(table)
    grid = [i / (points - 1) for i in range(points)]
    curve = np.interp(grid, xs, [table[x] for x in xs])
    score = sum((grid[i + 1] - grid[i]) * (curve[i + 1] + curve[i]) / 2 for i in range(points - 1))
    return curve, score


def test_score_matches_independent_numpy():
    sizes = [0.0, 0.0, 0.05, 0.05, 0.05, 0.123, 0.4, 0.4, 0.77, 1.0, 1.0]
    deltas = [0.3, -0.1, 0.2, 0.6, 0.1, 0.7, 0.5, 0.9, 0.8, 0.4, 0.2]
    grid, curve = cf.curve_from_points(sizes, deltas, full_delta=0.85)
    expected_curve, expected_score = _reference_curve(sizes, deltas, 0.85)
    np.testing.assert_allclose(curve, expected_curve, atol=1e-12)
    assert cf.area(grid, curve) == pytest.approx(expected_score, abs=1e-12)
    assert curve[5] == pytest.approx(0.6)  # m = 0.05 keeps the largest of 0.2, 0.6, 0.1
    assert curve[0] == 0.0 and curve[-1] == 0.85  # pins override threshold points at 0 and 1
    # hand-computed: a step to 1 at m = 0.01 then flat, full swap 1 -> area 1 - 0.01 / 2
    grid, curve = cf.curve_from_points([0.01], [1.0], 1.0)
    assert cf.area(grid, curve) == pytest.approx(0.995)
    # dataset: average of curves then integrate (not the average of per-pair areas, same here by linearity)
    c1 = cf.curve_from_points([0.5], [1.0], 1.0)[1]
    c2 = cf.curve_from_points([0.5], [0.0], 0.0)[1]
    assert cf.dataset_score([c1, c2]) == pytest.approx((cf.area(grid, c1) + cf.area(grid, c2)) / 2)


def test_mask_swap_uses_dac_post_processing(model, pair):
    """Two 12 x 10 blocks 5 px apart (2 thresholds, 0 and 1): the 10 x 10 elliptical closing bridges
    the gap; the size is that of the closed mask, before the 11 x 11 blur. (OpenCV's 10 x 10 ellipse
    is not centred on its anchor, so its closing can drop isolated pixels and shift edges by a pixel:
    this is the specified cv2.morphologyEx behaviour, kept.)"""
    import cv2

    blocks = np.zeros((SIZE, SIZE), np.float32)
    blocks[20:32, 20:30] = blocks[20:32, 35:45] = 1.0
    swap = cf.mask_swap(model, pair, blocks, n_thresholds=2)
    assert list(swap.thresholds) == [0.0, 1.0]
    closed = cv2.morphologyEx(blocks.astype(np.uint8), cv2.MORPH_CLOSE,
                              cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (10, 10)))
    assert swap.sizes[0] == pytest.approx(closed.mean()) and swap.sizes[1] == 0.0
    assert closed[20:32, 30:35].mean() > 0.8  # the gap is bridged
    assert swap.evaluations == 2  # one empty mask, one closed mask
    w = cv2.GaussianBlur(closed.astype(np.float32), (11, 11), 0)[..., None]
    np.testing.assert_allclose(swap.best_hybrid if swap.best_index == 0 else w * pair.counterfactual +
                               (1 - w) * pair.real, w * pair.counterfactual + (1 - w) * pair.real, atol=1e-3)
    hybrid_p = model.predict((w * pair.counterfactual + (1 - w) * pair.real).astype(np.float32))[1]
    assert swap.deltas[0] == pytest.approx(hybrid_p - pair.p_b_real, abs=1e-5)


def _permutation_generator(order=(2, 1, 0)) -> bytes:
    """A 1 x 1 Conv permuting RGB channels: red (230, 25, 25) becomes blue (25, 25, 230)."""
    w = np.zeros((3, 3, 1, 1), np.float32)
    for out_c, in_c in enumerate(order):
        w[out_c, in_c, 0, 0] = 1.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])], "swap_rb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_generator_path_and_filter(model, tmp_path):
    real = _scene(RED, 1)
    path = tmp_path / "g.onnx"
    path.write_bytes(_permutation_generator())
    for range_ in ("0..255", "-1..1"):
        pair = cf.make_pair(model, real, generator=str(path), generator_range=range_)
        np.testing.assert_allclose(pair.counterfactual, real[..., ::-1], atol=1e-3)
        assert (pair.class_a, pair.class_b) == (0, 1) and pair.source["kind"] == "generator"
    # identity generator: x_c stays red, the filter rejects it with a clear message
    (tmp_path / "id.onnx").write_bytes(_permutation_generator((0, 1, 2)))
    with pytest.raises(ox.OnnxplainError, match="same class"):
        cf.make_pair(model, real, generator=str(tmp_path / "id.onnx"))
    with pytest.raises(ox.OnnxplainError, match=r"pair rejected by the filter: p\(B\|x_c\)"):
        cf.make_pair(model, real, generator=str(tmp_path / "id.onnx"), class_b=1)
    with pytest.raises(ox.OnnxplainError, match=r"p\(A\|x_r\) = 0\.\d+ <= 0\.8"):
        cf.make_pair(model, _scene((128.0, 128.0, 128.0), 1), generator=str(path))


def test_retrieval(model):
    real = _scene(RED, 1)
    near_blue = _scene(BLUE, 1)  # same background: nearest
    far_blue = _scene(BLUE, 5)
    red = _scene(RED, 1)
    pair = cf.make_pair(model, real, references=[far_blue, red, near_blue])
    assert pair.source["reference"] == "#2" and pair.source["candidates"] == 2
    assert pair.class_b == 1
    with pytest.raises(ox.OnnxplainError, match="no reference image"):
        cf.make_pair(model, real, references=[red])


def test_cli_counterfactual(tmp_path, capsys):
    import cv2

    model_path = tmp_path / "m.onnx"
    model_path.write_bytes(_colour_model())
    real, counter = tmp_path / "real.png", tmp_path / "cf.png"
    cv2.imwrite(str(real), _scene(RED, 1)[..., ::-1].astype(np.uint8))
    cv2.imwrite(str(counter), _scene(BLUE, 2)[..., ::-1].astype(np.uint8))
    out = tmp_path / "out"
    code = main(["counterfactual", str(model_path), str(real), str(counter), "--preset", "raw",
                 "--method", "d-occlusion", "--method", "residual", "--out", str(out), "--quiet"])
    assert code == 0
    record = json.loads((out / "result.json").read_text())
    assert record["pair"]["class_a"] == 0 and record["pair"]["class_b"] == 1
    assert record["methods"]["d-occlusion"]["dac_score"] > record["methods"]["residual"]["dac_score"]
    for method in ("d-occlusion", "residual"):
        assert np.load(out / f"{method}_1.npy").shape == (SIZE, SIZE)
        mask = np.load(out / f"{method}_best_mask.npy")
        assert mask.dtype == bool and mask.shape == (SIZE, SIZE)
        assert cv2.imread(str(out / f"{method}_best_hybrid.png")).shape == (SIZE, SIZE, 3)
    assert cv2.imread(str(out / "dac_curves.png")) is not None
    assert "d-occlusion" in capsys.readouterr().out
    # generator and reference sources; bad input exits 2 with one line
    gen = tmp_path / "g.onnx"
    gen.write_bytes(_permutation_generator())
    assert main(["counterfactual", str(model_path), str(real), "--generator", str(gen), "--preset", "raw",
                 "--method", "residual", "--out", str(tmp_path / "o2"), "--quiet"]) == 0
    assert main(["counterfactual", str(model_path), str(real), "--preset", "raw", "--quiet",
                 "--out", str(tmp_path / "o3")]) == 2
    assert "exactly one counterfactual source" in capsys.readouterr().err
    # the pair filter's refusals name the flags that fix them
    for flags, fix in ((["--class-b", "9"], "class_b 9 is not a class index in 0..2 (CLI: --class-b)"),
                       (["--class-b", "0"], "(or pass class_b=, CLI: --class-b)"),
                       (["--min-confidence", "0.999999"], "(CLI: --min-confidence, negative for none)")):
        assert main(["counterfactual", str(model_path), str(real), str(real), "--preset", "raw", "--quiet",
                     "--out", str(tmp_path / "o4"), *flags]) == 2
        err = capsys.readouterr().err
        assert fix in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("method", ["d-occlusion", "d-pmi"])
def test_window_maps_equal_brute_force(model, pair, method):
    """D-occlusion and D-PMI (computed through the PMI machinery with x_c as the sampler) equal
    a direct NumPy computation: the mean over covering windows of the change in p(B) (or in
    ln(p(B) + eps)) when x_c's window is pasted into x_r."""
    window, stride, eps, b = 16, 8, 1e-6, pair.class_b
    result = cf.discriminative_map(model, pair, method, window=window, stride=stride, epsilon=eps)
    starts = list(range(0, SIZE - window + 1, stride))
    sums, counts = np.zeros((SIZE, SIZE)), np.zeros((SIZE, SIZE))
    p_clean = model.predict(pair.real)[b]
    for y in starts:
        for x in starts:
            pasted = pair.real.copy()
            pasted[y:y + window, x:x + window] = pair.counterfactual[y:y + window, x:x + window]
            p = model.predict(pasted)[b]
            value = np.log(p + eps) - np.log(p_clean + eps) if method == "d-pmi" else p - p_clean
            sums[y:y + window, x:x + window] += value
            counts[y:y + window, x:x + window] += 1
    np.testing.assert_allclose(result[b], sums / counts, rtol=1e-4, atol=1e-6)


def test_mask_swap_refuses_maps_and_settings_it_cannot_sweep(model, pair):
    good = np.random.default_rng(0).random((SIZE, SIZE)).astype(np.float32)
    for bad, match in ((np.full((SIZE, SIZE), np.nan), "attribution map contains NaN"),
                       (good.astype(np.complex64), "must hold real numbers"),
                       (ox.RandomMap(model).attribute(pair.real), r"pass the explanation's map of class B, result\[1\]")):
        with pytest.raises(ox.OnnxplainError, match=match):
            cf.mask_swap(model, pair, bad)
    for options, match in (({"closing": 1000}, r"closing must be at most the image's side \(\d+ px\), got 1000"),
                           ({"n_thresholds": 10**8}, r"n_thresholds must be at most 10000 \(CLI: --thresholds\)"),
                           ({"points": 1}, r"points must be at least 2"), ({"points": -5}, r"points must be a positive")):
        with pytest.raises(ox.OnnxplainError, match=match):
            cf.mask_swap(model, pair, good, **options)


def test_a_pair_that_does_not_raise_p_b_warns(model):
    real = _scene(RED, 1)
    pair = cf.make_pair(model, real, real, class_b=1, min_confidence=None)
    with pytest.warns(ox.OnnxplainWarning, match=r"the counterfactual does not raise p\(B=1\)"):
        cf.mask_swap(model, pair, np.random.default_rng(0).random((SIZE, SIZE)).astype(np.float32))
