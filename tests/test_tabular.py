"""Tabular classifiers: inputs, outputs (ZipMap, label + probabilities), the background masker and
every method, against ground truth: the class depends on 2 of 10 columns (x1 and x6, or the
string column `color` and x3), so each method must single those out."""
import json
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

import onnxplain as ox
from onnxplain import demo, tabular
from onnxplain.tables import TabularModel

sklearn = pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder  # noqa: E402

DECIDING = {1, 6}
ROW = np.array([0.3, 1.5, -0.2, 0.4, 0.1, -0.5, 1.4, 0.2, -0.1, 0.6], np.float32)  # class 1: x1 > 0 and x6 > 0


def data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).normal(size=(n, 10)).astype(np.float32)
    return X, ((X[:, 1] > 0) & (X[:, 6] > 0)).astype(np.int64)


@pytest.fixture(scope="module")
def forest():
    X, y = data()
    return RandomForestClassifier(n_estimators=40, max_depth=6, random_state=0).fit(X, y)


def sklearn_onnx(model, zipmap: bool) -> bytes:
    X, _ = data(1)
    return skl2onnx.to_onnx(model, X, options={id(model): {"zipmap": zipmap}}, target_opset=17).SerializeToString()


@pytest.fixture(scope="module")
def zipmap_model(forest):
    return ox.Model(sklearn_onnx(forest, zipmap=True))


@pytest.fixture(scope="module")
def background():
    return data(300, seed=1)[0]


def linear_model(weights: np.ndarray) -> bytes:
    """An analytic classifier: softmax([0, X @ weights]) over (N, 10) rows."""
    w = np.zeros((10, 2), np.float32)
    w[:, 1] = weights
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["logits"]), helper.make_node("Softmax", ["logits"], ["p"], axis=1)],
        "linear", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 10])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor("W", TensorProto.FLOAT, [10, 2], w.ravel())])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def top(values: np.ndarray, k: int = 2) -> set[int]:
    return set(np.argsort(-values, kind="stable")[:k].tolist())


# ---- the model: inputs, outputs, class names ------------------------------------------------------

def test_sklearn_zipmap_and_plain_outputs_read_as_the_same_probabilities(forest, zipmap_model):
    plain = ox.Model(sklearn_onnx(forest, zipmap=False))
    X, _ = data(50, seed=3)
    assert isinstance(zipmap_model, TabularModel) and isinstance(zipmap_model, ox.Model)
    assert zipmap_model.zipmap and not plain.zipmap
    assert zipmap_model.output_name == "output_probability" and plain.output_name == "probabilities"
    expected = forest.predict_proba(X)
    np.testing.assert_allclose(zipmap_model.predict(X), expected, atol=1e-5)
    np.testing.assert_allclose(plain.predict(X), expected, atol=1e-5)
    assert zipmap_model.class_names == plain.class_names == ["0", "1"]


def test_string_class_labels_follow_the_graph(background):
    X, _ = data()
    labels = np.array(["none", "one", "both"])[(X[:, 1] > 0).astype(int) + (X[:, 6] > 0)]
    named = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, labels)
    model = ox.Model(sklearn_onnx(named, zipmap=True))
    assert model.class_names == ["both", "none", "one"] == named.classes_.tolist()
    np.testing.assert_allclose(model.predict(X[:20]), named.predict_proba(X[:20]), atol=1e-5)
    result = tabular.occlusion(model, ROW, "top", background=background)
    assert result.targets == [0] and result.record()["class_names"] == ["both", "none", "one"]
    assert top(result[0]) == DECIDING


def test_modality_detected_and_forced(forest):
    onnx_bytes = sklearn_onnx(forest, zipmap=False)
    assert ox.Model(onnx_bytes).modality == "tabular"
    assert type(ox.Model(demo.demo_model_path(), preset="unit")) is ox.Model
    with pytest.raises(ox.OnnxplainError, match="name the image input with input_name="):
        ox.Model(onnx_bytes, modality="image")
    with pytest.raises(ox.OnnxplainError, match="modality must be one of"):
        ox.Model(onnx_bytes, modality="audio")
    with pytest.raises(ox.OnnxplainError, match="input_size describe image models"):
        ox.Model(onnx_bytes, input_size=(4, 4))
    with pytest.raises(ox.OnnxplainError, match="must be ONNX"):
        ox.Model(lambda rows: rows, modality="tabular")


def test_image_explainers_refuse_tabular_models_with_the_fix(zipmap_model):
    with pytest.raises(ox.OnnxplainError, match=r"onnxplain.tabular.explain\(model, row, 'rise'"):
        ox.RISE(zipmap_model)


# ---- ground truth: each method finds the deciding columns ---------------------------------------

def test_analytic_model_irrelevant_columns_get_exactly_zero():
    weights = np.zeros(10, np.float32)
    weights[[1, 6]] = 3.0, 1.0
    model = ox.Model(linear_model(weights))
    bg = data(200, seed=2)[0]
    occlusion = tabular.occlusion(model, ROW, 1, background=bg)
    ig, pmi = tabular.information_maps(model, ROW, 1, background=bg)
    for result in (occlusion, ig, pmi):
        values = result[1]
        assert values.shape == (10,) and values.dtype == np.float32
        assert np.all(np.abs(np.delete(values, [1, 6])) < 1e-6)
        assert np.all(values[[1, 6]] > 0.01)
    # x1 (weight 3) carries more evidence than x6 (weight 1)
    assert occlusion[1][1] > occlusion[1][6] and pmi[1][1] > pmi[1][6]


@pytest.mark.parametrize("method", ["occlusion", "rise", "ig", "pmi"])
def test_each_method_finds_the_two_deciding_columns(zipmap_model, background, method):
    result = tabular.explain(zipmap_model, ROW, method, 1, background=background, seed=0)
    assert result.targets == [1] and result.top_classes[0][0] == 1
    assert top(result[1]) == DECIDING
    assert result.evaluations > 1


def test_results_do_not_depend_on_the_batch_size(background):
    onnx_bytes = linear_model(np.arange(10, dtype=np.float32) / 10)  # tree ensembles vary with the batch themselves
    small = ox.Model(onnx_bytes, batch_size=7)
    large = ox.Model(onnx_bytes)
    for method in ("rise", "ig"):
        a = tabular.explain(small, ROW, method, 1, background=background, seed=3)
        b = tabular.explain(large, ROW, method, 1, background=background, seed=3)
        np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(tabular.rise(large, ROW, 1, background=background, seed=4)[1],
                              tabular.rise(large, ROW, 1, background=background, seed=3)[1])


@pytest.fixture(scope="module")
def string_model():
    """A pipeline over a string column `color` and x1..x9, class: color == "red" and x3 > 0; (ONNX
    bytes with one input per column, the training frame)."""
    pandas = pytest.importorskip("pandas")
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    rng = np.random.default_rng(0)
    frame = pandas.DataFrame({f"x{j}": rng.normal(size=800).astype(np.float32) for j in range(1, 10)})
    frame.insert(0, "color", rng.choice(["red", "green", "blue"], size=800))
    y = ((frame["color"] == "red") & (frame["x3"] > 0)).astype(int)
    numeric = [f"x{j}" for j in range(1, 10)]
    pipeline = Pipeline([("prep", ColumnTransformer([("cat", OneHotEncoder(), ["color"]),
                                                     ("num", "passthrough", numeric)])),
                         ("forest", RandomForestClassifier(n_estimators=40, max_depth=6, random_state=0))]).fit(frame, y)
    types = [("color", StringTensorType([None, 1]))] + [(n, FloatTensorType([None, 1])) for n in numeric]
    return skl2onnx.convert_sklearn(pipeline, initial_types=types, target_opset=17).SerializeToString(), frame


def test_string_categorical_per_column_inputs(string_model):
    onnx_bytes, frame = string_model
    model = ox.Model(onnx_bytes)
    numeric = [f"x{j}" for j in range(1, 10)]
    assert model.per_column and model.feature_names == ["color"] + numeric
    assert model.categorical.tolist() == [True] + [False] * 9
    row = {"x3": 1.2, "color": "red", **{n: 0.1 for n in numeric if n != "x3"}}  # any column order
    background = frame.iloc[400:]
    for method in ("occlusion", "rise", "ig", "pmi"):
        result = tabular.explain(model, row, method, 1, background=background)
        assert result.columns[0] == "color"
        assert top(result[1]) == {0, 3}, (method, result[1])
    swapped = tabular.multi(model, row, 1, background=background, criterion="confidence", fraction=0.8)
    assert [set(np.flatnonzero(m)) for m in swapped.explanations[1]] == [{0, 3}]


def test_cli_reads_string_columns_from_csv(tmp_path, string_model):
    onnx_bytes, frame = string_model
    (tmp_path / "m.onnx").write_bytes(onnx_bytes)
    shuffled = frame[["x3", "color"] + [f"x{j}" for j in (1, 2, 4, 5, 6, 7, 8, 9)]]  # another column order
    shuffled.iloc[400:].to_csv(tmp_path / "bg.csv", index=False)
    row = shuffled.iloc[:1].copy()
    row["color"], row["x3"] = "red", 1.5
    row.to_csv(tmp_path / "row.csv", index=False)
    proc = run_cli("explain", tmp_path / "m.onnx", tmp_path / "row.csv", "--background", tmp_path / "bg.csv",
                   "--method", "pmi", "--target", "1", "--out", tmp_path / "out", "--quiet")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "out" / "result.json").read_text())
    assert record["features"][0] == "color" and record["row"][0] == "red"
    assert top(np.load(tmp_path / "out" / "pmi_1.npy")) == {0, 3}


def test_int64_categorical_column_is_drawn_from_the_background():
    """An analytic per-column model: logit of class 1 = 4 [code == 2] + 2 b - 3; column c unused."""
    nodes = [helper.make_node("Equal", ["code", "two"], ["is_two"]),
             helper.make_node("Cast", ["is_two"], ["flag"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["flag", "four"], ["f4"]), helper.make_node("Mul", ["b", "twof"], ["b2"]),
             helper.make_node("Add", ["f4", "b2"], ["s"]), helper.make_node("Sub", ["s", "three"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["p"])]
    columns = [helper.make_tensor_value_info("code", TensorProto.INT64, [None, 1])] + \
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in ("b", "c")]
    constants = [helper.make_tensor("two", TensorProto.INT64, [], [2])] + \
        [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in (("four", 4.0), ("twof", 2.0), ("three", 3.0))]
    graph = helper.make_graph(nodes, "codes", columns, [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 1])],
                              constants)
    model = ox.Model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    assert model.per_column and model.categorical.tolist() == [True, False, False]
    rng = np.random.default_rng(0)
    background = np.stack([rng.integers(0, 4, 200), rng.normal(size=200), rng.normal(size=200)], axis=1)
    row = {"code": 2.0, "b": 1.0, "c": 0.5}  # as read from a CSV of numbers
    assert model.predict(np.array([[2.0, 1.0, 0.5]]))[0, 1] == pytest.approx(1 / (1 + np.exp(-3)), abs=1e-6)
    for method in ("occlusion", "ig", "pmi"):
        values = tabular.explain(model, row, method, 1, background=background)[1]
        assert values[2] == pytest.approx(0, abs=1e-6) and values[0] > 0.05 and values[1] > 0.05, (method, values)


def test_xgboost_and_lightgbm_through_onnxmltools(background):
    onnxmltools = pytest.importorskip("onnxmltools")
    xgboost = pytest.importorskip("xgboost")
    lightgbm = pytest.importorskip("lightgbm")
    from onnxmltools.convert.common.data_types import FloatTensorType

    X, y = data()
    types = [("input", FloatTensorType([None, 10]))]
    boosted = xgboost.XGBClassifier(n_estimators=30, max_depth=3, random_state=0).fit(X, y)
    light = lightgbm.LGBMClassifier(n_estimators=30, random_state=0, verbose=-1).fit(X, y)
    for native, onnx_model in ((boosted, onnxmltools.convert_xgboost(boosted, initial_types=types, target_opset=15)),
                               (light, onnxmltools.convert_lightgbm(light, initial_types=types, target_opset=15))):
        model = ox.Model(onnx_model.SerializeToString())
        np.testing.assert_allclose(model.predict(X[:30]), native.predict_proba(X[:30]), atol=1e-4)
        for method in ("occlusion", "pmi"):
            assert top(tabular.explain(model, ROW, method, 1, background=background)[1]) == DECIDING


# ---- multi, groups, counterfactual, fidelity ------------------------------------------------------

def test_multi_finds_disjoint_minimal_sufficient_sets(background):
    weights = np.zeros(10, np.float32)
    weights[[1, 6]] = 4.0  # class 1 when x1 + x6 > 0: either large value alone suffices
    model = ox.Model(linear_model(weights))
    row = ROW.copy()
    row[[1, 6]] = 2.5
    result = tabular.multi(model, row, 1, background=background, criterion="confidence", fraction=0.9)
    sets = [set(np.flatnonzero(m)) for m in result.explanations[1]]
    assert sorted(map(sorted, sets)) == [[1], [6]]
    assert all(m.dtype == bool and m.shape == (10,) for m in result.explanations[1])
    np.testing.assert_array_equal(np.flatnonzero(result[1]), [1, 6])


def test_multi_needs_both_columns_for_an_and_model(zipmap_model, background):
    result = tabular.multi(zipmap_model, ROW, 1, background=background, criterion="confidence", fraction=0.8)
    assert [set(np.flatnonzero(m)) for m in result.explanations[1]] == [DECIDING]


def test_multi_warns_when_the_background_alone_suffices(zipmap_model, background):
    row = ROW.copy()
    row[6] = -1.0  # class 0, which the background mostly gets too
    with pytest.warns(UserWarning, match="empty set"):
        result = tabular.multi(zipmap_model, row, 0, background=background)
    assert result.explanations[0] == [] and not result[0].any()


def test_groups_share_one_value(zipmap_model, background):
    result = tabular.occlusion(zipmap_model, ROW, 1, background=background, groups={"deciding": ["x1", 6]})
    assert result[1][1] == result[1][6] > 0.3
    assert result.features["groups"] == {"deciding": ["x1", "x6"]}
    with pytest.raises(ox.OnnxplainError, match="is no column"):
        tabular.occlusion(zipmap_model, ROW, background=background, groups={"g": ["nope"]})


def test_counterfactual_pair_from_the_nearest_background_row(zipmap_model, background):
    pair = tabular.make_pair(zipmap_model, ROW, background=background)
    assert (pair.class_a, pair.class_b) == (1, 0) and pair.source.startswith("nearest background row")
    d_map = tabular.discriminative_map(zipmap_model, pair)[0]
    assert np.argmax(d_map) in DECIDING
    swap = tabular.mask_swap(zipmap_model, pair, d_map)
    reversed_swap = tabular.mask_swap(zipmap_model, pair, -d_map)
    assert swap.score > reversed_swap.score and swap.best_mask.dtype == bool
    given = tabular.make_pair(zipmap_model, ROW, pair.counterfactual)
    assert given.source == "given" and given.class_b == 0


def test_fidelity_in_feature_order(zipmap_model, background):
    occlusion = tabular.occlusion(zipmap_model, ROW, 1, background=background)
    reverse = -occlusion[1]
    good, bad = (tabular.mif_lif(zipmap_model, ROW, m, background=background) for m in (occlusion, reverse))
    assert good.fidelity > 0.3 > 0 > bad.fidelity
    deletion = tabular.deletion(zipmap_model, ROW, occlusion, background=background)
    insertion = tabular.insertion(zipmap_model, ROW, occlusion, background=background)
    assert deletion.curves["deletion"][0] == pytest.approx(occlusion.top_classes[0][1], abs=1e-6)
    assert deletion.aucs["deletion"] < tabular.deletion(zipmap_model, ROW, reverse, background=background).aucs["deletion"]
    assert insertion.aucs["insertion"] > 0.7 and len(insertion.x) == 11


def test_evaluate_over_rows(zipmap_model, background):
    rows = np.stack([ROW, data(3, seed=5)[0][0], -ROW])
    report = tabular.evaluate(zipmap_model, rows, ("occlusion", "rise"), ("mif-lif", "deletion"),
                              background=background, method_options={"rise": {"n_masks": 200}})
    assert report["rows"] == 3
    for method in ("occlusion", "rise"):
        fidelity = report["methods"][method]["mif-lif"]
        assert len(fidelity["values"]) == 3 and fidelity["mean"] == pytest.approx(np.mean(fidelity["values"]))
        assert fidelity["mean"] > 0 and fidelity["ci95"] >= 0
    with pytest.raises(ox.OnnxplainError, match="unknown"):
        tabular.evaluate(zipmap_model, rows, ("ablation",), background=background)


# ---- bad input ------------------------------------------------------------------------------------

def test_bad_input_is_one_clear_error(zipmap_model, background):
    with pytest.raises(ox.OnnxplainError, match="background="):
        tabular.occlusion(zipmap_model, ROW)
    with pytest.raises(ox.OnnxplainError, match="row has 9 columns"):
        tabular.occlusion(zipmap_model, ROW[:9], background=background)
    with pytest.raises(ox.OnnxplainError, match="n_background must be"):
        tabular.occlusion(zipmap_model, ROW, background=background, n_background=0)
    with pytest.raises(ox.OnnxplainError, match="no tabular form"):
        tabular.explain(zipmap_model, ROW, "random", background=background)
    with pytest.raises(ox.OnnxplainError, match="the map must be 10"):
        tabular.deletion(zipmap_model, ROW, np.zeros(3), background=background)
    with pytest.raises(ox.OnnxplainError, match="class_b must be a class index in 0..1"):
        tabular.make_pair(zipmap_model, ROW, background=background, class_b=2)
    with pytest.warns(UserWarning, match="fewer than n_background=16"):
        result = tabular.occlusion(zipmap_model, ROW, background=background[:5])
    assert result.params["n_background"] == 5


# ---- the command line ------------------------------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "onnxplain.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def write_csv(path, rows: np.ndarray) -> None:
    lines = [",".join(f"x{j}" for j in range(rows.shape[1]))] + [",".join(map(repr, r.tolist())) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def test_cli_file_contract(tmp_path, forest, background):
    model_path = tmp_path / "forest.onnx"
    model_path.write_bytes(sklearn_onnx(forest, zipmap=True))
    write_csv(tmp_path / "data.csv", np.stack([-ROW, ROW]))
    write_csv(tmp_path / "bg.csv", background)
    out = tmp_path / "occ"
    proc = run_cli("explain", model_path, tmp_path / "data.csv", "--row", 1, "--background", tmp_path / "bg.csv",
                   "--method", "occlusion", "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    attribution = np.load(out / "occlusion_1.npy")
    assert attribution.shape == (10,) and attribution.dtype == np.float32 and top(attribution) == DECIDING
    record = json.loads((out / "result.json").read_text())
    assert record["modality"] == "tabular" and record["features"] == [f"x{j}" for j in range(10)]
    assert record["files"] == {"1": "occlusion_1.npy"} and (out / "occlusion_1.png").stat().st_size > 1000
    np.save(tmp_path / "row.npy", ROW)
    proc = run_cli("explain", model_path, tmp_path / "row.npy", "--background", tmp_path / "bg.csv", "--method",
                   "multi", "--criterion", "confidence", "--fraction", "0.8", "--out", tmp_path / "multi", "--quiet")
    assert proc.returncode == 0, proc.stderr
    mask = np.load(tmp_path / "multi" / "multi_1_explanation_1.npy")
    assert mask.dtype == bool and set(np.flatnonzero(mask)) == DECIDING
    proc = run_cli("explain", model_path, tmp_path / "data.csv", "--method", "rise", "--out", tmp_path / "x")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--background" in proc.stderr
    proc = run_cli("explain", model_path, tmp_path / "data.csv", "--row", 5, "--background", tmp_path / "bg.csv")
    assert proc.returncode == 2 and "--row 5" in proc.stderr
    proc = run_cli("evaluate", model_path, tmp_path, "--out", tmp_path / "ev")
    assert proc.returncode == 2 and "onnxplain.tabular" in proc.stderr


def test_cli_counterfactual_of_a_row(tmp_path, forest, background):
    model_path = tmp_path / "forest.onnx"
    model_path.write_bytes(sklearn_onnx(forest, zipmap=True))
    np.save(tmp_path / "row.npy", ROW)
    write_csv(tmp_path / "bg.csv", background)
    proc = run_cli("counterfactual", model_path, tmp_path / "row.npy", "--background", tmp_path / "bg.csv",
                   "--out", tmp_path / "cf", "--quiet")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "cf" / "result.json").read_text())
    assert record["modality"] == "tabular" and record["pair"]["class_b"] == 0
    assert record["pair"]["source"].startswith("nearest background row")
    d_map = np.load(tmp_path / "cf" / "d-occlusion_0.npy")
    assert d_map.shape == (10,) and np.argmax(d_map) in DECIDING
    mask = np.load(tmp_path / "cf" / "d-occlusion_best_mask.npy")
    assert mask.dtype == bool and set(np.flatnonzero(mask)) <= DECIDING
    proc = run_cli("counterfactual", model_path, tmp_path / "row.npy", "--out", tmp_path / "cf2")
    assert proc.returncode == 2 and "--background" in proc.stderr


def test_read_table_sources(tmp_path):
    pandas = pytest.importorskip("pandas")
    from onnxplain.tables import read_table

    write_csv(tmp_path / "t.csv", ROW[None])
    table, names = read_table(tmp_path / "t.csv")
    np.testing.assert_allclose(table[0], ROW, rtol=1e-6)
    assert names == [f"x{j}" for j in range(10)]
    frame_table, frame_names = read_table(pandas.DataFrame(table, columns=names))
    assert frame_names == names and frame_table.dtype == np.float64
    mixed, _ = read_table({"a": "red", "b": 2.0})
    assert mixed.dtype == object and mixed[0, 1] == 2.0
    with pytest.raises(ox.OnnxplainError, match="file not found"):
        read_table(tmp_path / "missing.csv")


def test_hostile_rows_and_backgrounds_are_refused_naming_the_column(string_model, background):
    model = ox.Model(linear_model(np.arange(10, dtype=np.float32)))
    nan_row = ROW.copy()
    nan_row[9] = np.nan
    with pytest.raises(ox.OnnxplainError, match=r"NaN or infinite probabilities on 1 row: column 9 \('x9'\) holds NaN"):
        tabular.occlusion(model, nan_row, background=background)
    with pytest.raises(ox.OnnxplainError, match=r"values beyond float32"):
        tabular.occlusion(model, ROW.astype(np.float64) * 1e39, background=background)
    bad_background = background.copy()
    bad_background[3, 2] = np.inf
    with pytest.raises(ox.OnnxplainError, match=r"background column 2 \('x2'\) holds NaN or infinity: IG and PMI fit"):
        tabular.ig(model, ROW, background=bad_background)
    onnx_bytes, frame = string_model
    strings = ox.Model(onnx_bytes)
    row = {"color": "red", **{f"x{j}": 0.1 for j in range(1, 10)}}
    for missing in (None, float("nan")):
        with pytest.raises(ox.OnnxplainError, match=r"row column 0 \('color'\) has a missing value"):
            tabular.occlusion(strings, {**row, "color": missing}, background=frame.iloc[400:])


def test_columns_are_matched_by_name_or_refused(background):
    pandas = pytest.importorskip("pandas")
    model = ox.Model(linear_model(np.arange(10, dtype=np.float32)))
    names = [f"f{j}" for j in range(10)]
    frame = pandas.DataFrame(background, columns=names)
    row = dict(zip(names, ROW.tolist()))
    plain = tabular.occlusion(model, row, 1, background=frame)
    reordered = tabular.occlusion(model, row, 1, background=frame[names[::-1]])  # the same columns, another order
    np.testing.assert_array_equal(plain[1], reordered[1])
    with pytest.raises(ox.OnnxplainError, match=r"the row's columns .* are not the background's"):
        tabular.occlusion(model, row, 1, background=frame.rename(columns={"f3": "g3"}))


def test_integer_category_inputs_refuse_fractions():
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

    X = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    codes = np.random.default_rng(1).integers(0, 3, size=200)
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"code": codes, "x": X[:, 0]})
    pipeline = Pipeline([("prep", ColumnTransformer([("cat", OneHotEncoder(), ["code"]), ("num", "passthrough", ["x"])])),
                         ("forest", RandomForestClassifier(n_estimators=5, random_state=0))]).fit(frame, codes == 1)
    onnx_bytes = skl2onnx.convert_sklearn(pipeline, initial_types=[("code", Int64TensorType([None, 1])),
                                                                   ("x", FloatTensorType([None, 1]))],
                                          target_opset=17).SerializeToString()
    model = ox.Model(onnx_bytes)
    for value in (2.4, 1e30, float("nan")):
        with pytest.raises(ox.OnnxplainError, match=r"row column 0 \('code'\) holds .*; the model's input there is "
                                                    r"an integer"):
            tabular.occlusion(model, {"code": value, "x": 0.3}, background=frame)
    assert tabular.occlusion(model, {"code": 2.0, "x": 0.3}, background=frame).evaluations > 0  # 2.0 is a code


def test_a_fixed_batch_graph_runs_padded_and_gives_the_same_map(background):
    import onnx

    proto = onnx.load_model_from_string(linear_model(np.arange(10, dtype=np.float32)))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4  # exactly 4 rows per call
    fixed = ox.Model(proto.SerializeToString())
    assert fixed.batch_size == 4
    free = ox.Model(linear_model(np.arange(10, dtype=np.float32)))
    for method, options in (("occlusion", {"n_background": 7}), ("rise", {"n_masks": 30})):  # 7, 30: not multiples of 4
        np.testing.assert_allclose(tabular.explain(fixed, ROW, method, 1, background=background[:7], **options)[1],
                                   tabular.explain(free, ROW, method, 1, background=background[:7], **options)[1],
                                   atol=1e-6)
    with pytest.raises(ox.OnnxplainError, match=r"exactly 4 rows per call; pass batch_size=4"):
        ox.Model(proto.SerializeToString(), batch_size=8)


def test_malformed_tables_and_groups_are_refused(tmp_path, background):
    model = ox.Model(linear_model(np.arange(10, dtype=np.float32)))
    (tmp_path / "blank.csv").write_text(",".join(f"x{j}" for j in range(10)) + "\n\n\n")
    with pytest.raises(ox.OnnxplainError, match=r"blank\.csv has a header but no data rows"):
        tabular.occlusion(model, ROW, background=tmp_path / "blank.csv")
    with pytest.raises(ox.OnnxplainError, match=r"groups\['g'\] must be a column \(name or index\) or a list of them"):
        tabular.occlusion(model, ROW, background=background, groups={"g": None})
    for bad_seed in (-1, 2**64, True, 1.5):
        with pytest.raises(ox.OnnxplainError, match=r"seed must be an integer in 0\.\.2\^64-1"):
            tabular.rise(model, ROW, background=background, seed=bad_seed)
    with pytest.raises(ox.OnnxplainError, match=r"p_keep must be a number in \(0, 1\], got '0\.5'"):
        tabular.rise(model, ROW, background=background, p_keep="0.5")


def test_rise_fills_each_batch_of_masks_as_it_goes(background):
    import tracemalloc

    model = ox.Model(linear_model(np.arange(10, dtype=np.float32)))
    tracemalloc.start()
    try:
        result = tabular.rise(model, ROW, 1, background=background, n_masks=5000, n_background=100, seed=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.evaluations >= 5000 * 100
    assert peak < 16 * 2**20, peak / 2**20  # every mask's fill rows at once: 5000 x 100 x 10 float64 = 38 MiB
    small = ox.Model(linear_model(np.arange(10, dtype=np.float32)), batch_size=7)  # other batches, same map
    np.testing.assert_allclose(tabular.rise(small, ROW, 1, background=background, n_masks=300, n_background=3,
                                            seed=3)[1],
                               tabular.rise(model, ROW, 1, background=background, n_masks=300, n_background=3,
                                            seed=3)[1], rtol=1e-12)


def test_csv_files_that_are_easy_to_misread_are_named(tmp_path, background):
    model = ox.Model(linear_model(np.arange(10, dtype=np.float32)))
    rows = [",".join(map(str, r)) for r in np.round(background[:5], 3).tolist()]
    (tmp_path / "headless.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(ox.OnnxplainWarning, match=r"first line is all numbers: it is read as the header"):
        tabular.occlusion(model, ROW, background=tmp_path / "headless.csv")
    (tmp_path / "semicolons.csv").write_text(";".join(f"x{j}" for j in range(10)) + "\n" + "1;" * 9 + "1\n")
    with pytest.raises(ox.OnnxplainError, match=r"looks separated by semicolons"):
        tabular.occlusion(model, tmp_path / "semicolons.csv", background=background)
    header = ",".join(f"x{j}" for j in range(10))
    (tmp_path / "gap.csv").write_text(header + "\n" + "1," * 4 + "," + "1," * 4 + "1\n")
    with pytest.raises(ox.OnnxplainError, match=r"row column 4 \('x4'\) holds a missing value in row 0"):
        tabular.occlusion(model, tmp_path / "gap.csv", background=background)
    report = tabular.evaluate(model, background[:3], "occlusion", "deletion", background=background)
    assert list(report["methods"]) == ["occlusion"]
