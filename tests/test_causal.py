"""Multiple causal explanations: planted evidence in an analytic detector, exact kernels,
independent re-verification, determinism, errors, the CLI file contract."""
import json

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxplain as ox
from onnxplain import _core, cli, demo
from onnxplain.causal import dice, select_disjoint
from helpers import EFFICIENTNET, needs_efficientnet, photo_on_canvas

SIZE, PATTERN, NEED = 64, 8, 56
BOXES = [(9, 11, 17, 19), (41, 38, 49, 46)]  # (y0, x0, y1, x1) of the two planted red squares


def detector_bytes() -> bytes:
    """Class 1 iff some 8 x 8 window holds >= 56 more red-than-grey pixels: an 8 x 8 conv
    (+1 on R, -1 on G and B; after the 'unit' preset a red pixel adds 1, a grey one -0.5, a
    hidden one 0), ReLU(. - 55.5), global max; logits [1, 4 m]. A red square is needed, 56 of
    its 64 pixels are sufficient."""
    w = np.zeros((1, 3, PATTERN, PATTERN), np.float32)
    w[0, 0], w[0, 1:] = 1, -1
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalMaxPool", ["r"], ["m"]), helper.make_node("Flatten", ["m"], ["f"]),
             helper.make_node("Gemm", ["f", "B", "C"], ["y"])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([0.5 - NEED], np.float32), "b"),
             numpy_helper.from_array(np.array([[0, 4]], np.float32), "B"),
             numpy_helper.from_array(np.array([1, 0], np.float32), "C")]
    graph = helper.make_graph(nodes, "detector", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def planted(boxes=BOXES, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.clip(127 + rng.normal(0, 15, (SIZE, SIZE, 3)), 0, 255).astype(np.float32)
    for y0, x0, y1, x1 in boxes:
        image[y0:y1, x0:x1] = (255, 0, 0)
    return image


@pytest.fixture(scope="module")
def model():
    return ox.Model(detector_bytes(), preset="unit", progress=False)


@pytest.fixture(scope="module")
def session():
    return ort.InferenceSession(detector_bytes(), providers=["CPUExecutionProvider"])


def independent_probability(session, image: np.ndarray, mask: np.ndarray, hidden: float = 0.0) -> np.ndarray:
    """p(classes) from onnxruntime directly, with the pixels outside mask set to `hidden`."""
    shown = np.where(mask[..., None], image, hidden).astype(np.float32)
    logits = session.run(None, {"x": (shown / 255).transpose(2, 0, 1)[None]})[0][0].astype(np.float64)
    return np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()


@pytest.mark.parametrize("criterion", ["top1", "confidence"])
def test_two_patterns_give_two_disjoint_verified_explanations(model, session, criterion):
    image = planted()
    result = ox.Causal(model).attribute(image, criterion=criterion, seed=1)
    assert result.target == 1 and result.params["criterion"] == criterion
    assert len(result.explanations) == 2
    a, b = (e.mask for e in result.explanations)
    assert dice(a, b) == 0 and a.dtype == bool and a.shape == (SIZE, SIZE)
    homes = []
    for e in result.explanations:
        inside = [e.mask[y0:y1, x0:x1].sum() / e.area for y0, x0, y1, x1 in BOXES]
        assert max(inside) >= 0.8, inside
        homes.append(int(np.argmax(inside)))
        assert e.area >= NEED  # fewer red pixels can never be sufficient
        p = independent_probability(session, image, e.mask)
        clean = independent_probability(session, image, np.ones((SIZE, SIZE), bool))
        assert (p.argmax() == 1) if criterion == "top1" else (p[1] >= 0.5 * clean[1])
        assert abs(p[1] - e.probability) < 1e-5
        assert e.evaluations > 0
    assert sorted(homes) == [0, 1]
    # the responsibility map peaks on a pattern and is higher there than elsewhere
    resp, inside = result[1], np.zeros((SIZE, SIZE), bool)
    for y0, x0, y1, x1 in BOXES:
        inside[y0:y1, x0:x1] = True
    assert inside.ravel()[np.argmax(resp)] and resp[inside].mean() > 1.5 * resp[~inside].mean()


def test_one_pattern_gives_exactly_one(model, session):
    image = planted(BOXES[:1], seed=3)
    result = ox.Causal(model).attribute(image, seed=2, max_parts=80)  # enough parts to prune single pixels
    assert len(result.explanations) == 1
    e = result.explanations[0]
    y0, x0, y1, x1 = BOXES[0]
    assert e.mask[y0:y1, x0:x1].sum() / e.area >= 0.8
    assert independent_probability(session, image, e.mask).argmax() == 1
    # minimal: dropping any single pixel of it breaks sufficiency (here exactly NEED red pixels)
    assert e.area == NEED and e.mask[y0:y1, x0:x1].sum() == NEED


def test_same_seed_same_result_any_batch_size(model):
    image = planted(seed=4)
    first = ox.Causal(model).attribute(image, seed=7, iterations=4)
    again = ox.Causal(ox.Model(detector_bytes(), preset="unit", progress=False, batch_size=5)).attribute(
        image, seed=7, iterations=4)
    np.testing.assert_array_equal(first[1], again[1])
    assert len(first.explanations) == len(again.explanations)
    for x, y in zip(first.explanations, again.explanations):
        np.testing.assert_array_equal(x.mask, y.mask)
    assert first.evaluations == again.evaluations
    other = ox.Causal(model).attribute(image, seed=8, iterations=4)
    assert not np.array_equal(first[1], other[1])


def test_record_and_mask_value(model):
    image = planted(BOXES[:1], seed=5)
    result = ox.Causal(model).attribute(image, mask_value=30.0, criterion="confidence", fraction=0.6, seed=0,
                                        max_explanations=1)
    record = result.record()
    assert record["method"] == "multi" and record["params"]["mask_value"] == 30.0
    assert record["params"]["criterion"] == "confidence" and record["params"]["fraction"] == 0.6
    assert len(record["explanations"]) == 1
    entry = record["explanations"][0]
    assert entry["area"] == result.explanations[0].area and entry["file"] == "multi_1_explanation_1.npy"
    assert record["evaluations"] == result.evaluations > record["params"]["map_evaluations"]


def test_sibling_responsibility_is_exact():
    # the criterion holds iff child 0 or child 1 is shown
    subsets = np.arange(16)
    passes = (((subsets & 1) | (subsets >> 1 & 1)) > 0).astype(np.uint8)[None]
    areas = np.array([[40, 30, 10, 5]], np.int64)
    resp, chosen = _core.causal_sibling_responsibility(passes, areas)
    # child 0 becomes counterfactual once child 1 is hidden (k = 1): 1 / 2; children 2, 3 never matter
    np.testing.assert_allclose(resp[0], [0.5, 0.5, 0.0, 0.0])
    assert chosen[0] == 2  # {child 1}: the passing subset of smallest area
    only_all = np.zeros((1, 16), np.uint8)
    only_all[0, 15] = 1
    resp, chosen = _core.causal_sibling_responsibility(only_all, areas)
    np.testing.assert_allclose(resp[0], [1, 1, 1, 1])  # every child is necessary (k = 0)
    assert chosen[0] == 15


def test_split_boxes_tile_the_parent_deterministically():
    boxes = np.array([[0, 0, 64, 64], [5, 7, 30, 9], [0, 0, 1, 50]], np.int32)
    streams, counters = np.array([0, 1, 2], np.int64), np.array([0, 4, 0], np.int64)
    children = _core.causal_split_boxes(3, streams, counters, boxes, 4)
    for parent, kids in zip(boxes[:2], children[:2]):
        cover = np.zeros((64, 64), int)
        for y0, x0, y1, x1 in kids:
            assert y1 > y0 and x1 > x0
            cover[y0:y1, x0:x1] += 1
        y0, x0, y1, x1 = parent
        assert cover[y0:y1, x0:x1].min() == 1 and cover.sum() == (y1 - y0) * (x1 - x0)
    assert (children[2] == boxes[2]).all()  # one row high: not split
    alone = _core.causal_split_boxes(3, streams[1:2], counters[1:2], boxes[1:2], 4)
    np.testing.assert_array_equal(alone[0], children[1])


def test_mask_kernels_match_numpy():
    boxes = np.array([[0, 0, 4, 4], [2, 2, 6, 8], [1, 1, 3, 3]], np.int32)
    masks = _core.causal_box_masks(boxes, np.array([0, 0, 2], np.int64), 3, 8, 8)
    expected = np.zeros((3, 8, 8), np.float32)
    expected[0, :4, :4] = expected[0, 2:6, 2:8] = expected[2, 1:3, 1:3] = 1
    np.testing.assert_array_equal(masks, expected)
    mask = np.zeros((8, 8), np.uint8)
    mask[0:2, 0:6] = 1
    mask[5, 5] = 1
    labels, parts = _core.causal_mask_parts(mask, 4)
    assert parts == 3 and len(np.unique(labels[0:2, 0:4])) == 1 and labels[0, 4] != labels[0, 0]
    drop = np.zeros((1, parts + 1), np.uint8)
    drop[0, labels[5, 5]] = 1
    np.testing.assert_array_equal(_core.causal_drop_masks(labels, drop)[0] > 0, (mask > 0) & (labels != labels[5, 5]))


def test_select_disjoint_removes_duplicates_empties_and_overlaps():
    a = np.zeros((8, 8), bool)
    a[:2] = True
    b = np.zeros((8, 8), bool)
    b[1:4] = True  # overlaps a
    c = np.zeros((8, 8), bool)
    c[6:] = True
    chosen = select_disjoint([a, b, a.copy(), np.zeros((8, 8), bool), c], 0.0)
    assert chosen == [0, 4]  # a and c: largest disjoint set, smallest total area (a beats b)
    assert select_disjoint([a, b, c], 0.5) == [0, 2, 1]  # Dice(a, b) = 0.4: all three, by area


@pytest.mark.parametrize("kwargs, message", [
    ({"criterion": "p"}, "criterion"), ({"fraction": 0}, "fraction"), ({"target": 0}, "not the top class"),
    ({"target": [0, 1], "criterion": "confidence"}, "one target"), ({"mask_value": "zero"}, "baseline"),
    ({"iterations": 0}, "iterations"), ({"max_overlap": 2}, "max_overlap"), ({"retries": -1}, "retries")])
def test_errors(model, kwargs, message):
    with pytest.raises(ox.OnnxplainError, match=message):
        ox.Causal(model).attribute(planted(), **kwargs)


def test_cli_multi_writes_contract_files(tmp_path):
    import cv2

    model_path, image_path = tmp_path / "det.onnx", tmp_path / "two.png"
    model_path.write_bytes(detector_bytes())
    cv2.imwrite(str(image_path), cv2.cvtColor(planted().round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    assert cli.main(["explain", str(model_path), str(image_path), "--method", "multi", "--preset", "unit",
                     "--criterion", "confidence", "--out", str(out), "--quiet"]) == 0
    record = json.loads((out / "result.json").read_text())
    assert record["method"] == "multi" and record["params"]["criterion"] == "confidence"
    assert len(record["explanations"]) == 2
    booleans = sorted(p.name for p in out.glob("*.npy") if np.load(p).dtype == bool)
    assert booleans == ["multi_1_explanation_1.npy", "multi_1_explanation_2.npy"]
    for entry in record["explanations"]:
        mask = np.load(out / entry["file"])
        assert mask.shape == (SIZE, SIZE) and mask.sum() == entry["area"]
        assert (out / entry["picture"]).stat().st_size > 0
    assert np.load(out / "multi_1.npy").dtype == np.float32
    assert (out / "multi_1_explanations.png").stat().st_size > 0 and (out / "multi_1.png").stat().st_size > 0


@needs_efficientnet
def test_efficientnet_mirrored_photo_explained_in_both_copies():
    import skimage.data

    model = ox.Model(EFFICIENTNET, preset="efficientnet-lite", progress=False)
    photo = ox.load_image(skimage.data.chelsea(), (224, 224))
    canvas, first = photo_on_canvas(photo, corner="top-left", scale=0.45)
    mirrored, second = photo_on_canvas(photo[:, ::-1], corner="bottom-right", scale=0.45)
    y0, x0, y1, x1 = second
    canvas[y0:y1, x0:x1] = mirrored[y0:y1, x0:x1]
    # a small search (about 400 model calls)
    result = ox.Causal(model).attribute(canvas, criterion="top1", iterations=3, refinements=3, max_explanations=4,
                                        max_parts=12, cuts=5, spotlights=4, grow_steps=3, seed=0)
    assert result.target == 285 and len(result.explanations) >= 2  # tabby cat
    homes = set()
    for e in result.explanations:
        inside = [e.mask[b[0]:b[2], b[1]:b[3]].sum() / e.area for b in (first, second)]
        if max(inside) >= 0.75:
            homes.add(int(np.argmax(inside)))
    assert homes == {0, 1}, [e.record() for e in result.explanations]


def test_box_trees_descended_in_rounds_give_the_map_of_one_round(monkeypatch):
    from onnxplain import causal

    model = ox.Model(demo.demo_model_path(), preset="unit", progress=False)
    image, _ = demo.make_demo_image(1, seed=3)
    together = ox.Causal(model, fidelity=None).attribute(image, iterations=11, max_explanations=1, seed=4)
    monkeypatch.setattr(causal, "TREES_PER_ROUND", 4)  # 11 trees in rounds of 4, 4 and 3
    in_rounds = ox.Causal(model, fidelity=None).attribute(image, iterations=11, max_explanations=1, seed=4)
    np.testing.assert_allclose(in_rounds[1], together[1], rtol=1e-6, atol=1e-9)
    assert in_rounds.evaluations == together.evaluations
