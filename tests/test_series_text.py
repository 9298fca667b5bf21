"""Series and text classifiers against ground truth: an analytic series model that fires on a bump
planted in channel 1, steps 24..31 (a moving average of channel 1 over 8 steps, thresholded), and
analytic text models that fire on token 7 (or on token 7 or 9): every method must single out the
bump's segment or the key token(s)."""
import json
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxplain as ox
from onnxplain import sequential
from onnxplain.sequences import SegmentSampler, SeriesModel, TextModel
from onnxplain.tables import TabularMasker

KEY, OTHER_KEY, MASK = 7, 9, 2
BUMP = (1, slice(24, 32))  # channel 1, steps 24..31: feature "c1 t24-31" with window 8


def _classifier(nodes: list, inputs: list, initializers: list) -> bytes:
    """Nodes ending in `score` (N, 1) -> softmax([0, score]) as output `p`."""
    nodes = nodes + [helper.make_node("Mul", ["score", "zero"], ["nil"]),
                     helper.make_node("Concat", ["nil", "score"], ["logits"], axis=1),
                     helper.make_node("Softmax", ["logits"], ["p"], axis=1)]
    initializers = initializers + [numpy_helper.from_array(np.zeros(1, np.float32), "zero")]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 2])],
                              initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def series_model(layout: str = "NCT") -> bytes:
    """score = 8 x (max over t of channel 1's 8-step moving average - 0.5)."""
    weight = np.zeros((1, 3, 8), np.float32)
    weight[0, 1] = 1 / 8
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1])] if layout == "NTC" else []
    nodes += [helper.make_node("Conv", ["xt" if layout == "NTC" else "x", "w"], ["avg"]),
              helper.make_node("ReduceMax", ["avg"], ["peak"], axes=[2], keepdims=0),
              helper.make_node("Sub", ["peak", "half"], ["centered"]),
              helper.make_node("Mul", ["centered", "gain"], ["score"])]
    shape = [None, 3, None] if layout == "NCT" else [None, None, 3]
    return _classifier(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                       [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.float32([0.5]), "half"),
                        numpy_helper.from_array(np.float32([8.0]), "gain")])


def text_model(keys: tuple[int, ...] = (KEY,), length: int | None = None, mask_first: bool = False) -> bytes:
    """score = 6 x (number of attended key tokens) - 3; with a fixed `length`, also a
    token_type_ids input that adds 6 x its sum (so it must be fed zeros)."""
    nodes, counts = [helper.make_node("Cast", ["attention_mask"], ["attended"], to=TensorProto.FLOAT)], []
    if length is not None:
        nodes += [helper.make_node("Cast", ["token_type_ids"], ["types"], to=TensorProto.FLOAT)]
        counts.append("types")
    for k, key in enumerate(keys):
        nodes += [helper.make_node("Equal", ["input_ids", f"key{k}"], [f"is{k}"]),
                  helper.make_node("Cast", [f"is{k}"], [f"hit{k}"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", [f"hit{k}", "attended"], [f"count{k}"])]
        counts.append(f"count{k}")
    nodes += [helper.make_node("Sum", counts, ["hits"]),
              helper.make_node("ReduceSum", ["hits", "axis"], ["total"], keepdims=1),
              helper.make_node("Mul", ["total", "six"], ["scaled"]), helper.make_node("Sub", ["scaled", "three"], ["score"])]
    names = ("input_ids", "attention_mask") + (("token_type_ids",) if length is not None else ())
    names = names[::-1] if mask_first else names
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, [None, length]) for n in names]
    return _classifier(nodes, inputs, [numpy_helper.from_array(np.int64([key]), f"key{k}") for k, key in enumerate(keys)]
                       + [numpy_helper.from_array(np.int64([1]), "axis"), numpy_helper.from_array(np.float32([6]), "six"),
                          numpy_helper.from_array(np.float32([3]), "three")])


def bump_series(seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0, 0.1, size=(3, 64))
    x[BUMP] += 2.0
    return x


def token_ids(keys: dict[int, int], length: int = 12, seed: int = 0) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(10, 50, size=length)
    for position, key in keys.items():
        ids[position] = key
    return ids


@pytest.fixture(scope="module")
def series():
    return ox.Model(series_model(), progress=False)


@pytest.fixture(scope="module")
def text():
    return ox.Model(text_model(), progress=False)


def bump_is_top(m: np.ndarray) -> bool:
    """The map's largest value covers exactly the bump's segment (channel 1, steps 24..31)."""
    top = np.isclose(m, m.max())
    expected = np.zeros_like(top)
    expected[BUMP] = True
    return bool(np.array_equal(top, expected))


def test_modality_is_read_from_the_inputs(series, text):
    assert isinstance(series, SeriesModel) and series.layout == "NCT" and series.channels == 3
    assert isinstance(text, TextModel) and text.roles == {"ids": "input_ids", "attention": "attention_mask"}
    ntc = ox.Model(series_model("NTC"))
    assert isinstance(ntc, SeriesModel) and ntc.layout == "NTC"
    with pytest.raises(ox.OnnxplainError, match="int64/int32"):
        ox.Model(series_model(), modality="text")
    assert ox.Model(text_model(mask_first=True)).roles == text.roles  # the ids are found by name, not order
    np.testing.assert_allclose(series.run(bump_series()[None])[0, 1], 1, atol=1e-3)
    assert text.run(token_ids({4: KEY})[None])[0, 1] > 0.9 and text.run(token_ids({})[None])[0, 1] < 0.1


@pytest.mark.parametrize("replacement", ["mean", "interpolate"])
def test_series_occlusion_finds_the_bump(series, replacement):
    result = sequential.occlusion(series, bump_series(), window=8, replacement=replacement)
    assert result.targets == [1] and result[1].shape == (3, 64) and result[1].dtype == np.float32
    assert bump_is_top(result[1])
    assert result.evaluations == 1 + 24


def test_series_layout_ntc_gives_maps_in_its_shape():
    model = ox.Model(series_model("NTC"))
    result = sequential.occlusion(model, bump_series().T, window=8)
    assert result[1].shape == (64, 3) and bump_is_top(result[1].T)
    with pytest.raises(ox.OnnxplainError, match="transposed"):
        sequential.occlusion(model, bump_series(), window=8)


def test_series_rise_ig_pmi_multi_find_the_bump(series):
    x = bump_series()
    assert bump_is_top(sequential.rise(series, x, window=8, n_masks=400, seed=1)[1])
    ig, pmi = sequential.information_maps(series, x, target=1, window=8, samples=8)
    assert bump_is_top(ig[1]) and bump_is_top(pmi[1])
    assert ig.params["sampler"] == "conditional gaussian" and pmi.signed
    multi = sequential.multi(series, x, window=8)
    (only,) = multi.explanations[1]
    expected = np.zeros((3, 64), bool)
    expected[BUMP] = True
    assert np.array_equal(only, expected) and multi.members(only) == ["c1 t24-31"]


def test_series_across_channels(series):
    result = sequential.occlusion(series, bump_series(), window=8, per_channel=False)
    assert result.columns[3] == "t24-31" and len(result.columns) == 8
    assert np.all(result[1][:, 24:32] == result[1].max()) and result[1][:, :24].max() < result[1].max()


def test_text_methods_find_the_key_token(text):
    ids = token_ids({4: KEY})
    corpus = np.random.default_rng(5).integers(10, 50, size=500)
    for result in (sequential.occlusion(text, ids, mask_token=MASK),
                   sequential.occlusion(text, ids, replacement="delete"),
                   sequential.rise(text, ids, mask_token=MASK, n_masks=300),
                   *sequential.information_maps(text, ids, target=1, mask_token=MASK, background=corpus, samples=4)):
        assert result[1].shape == (12,) and int(np.argmax(result[1])) == 4, result.method
        assert np.sum(np.isclose(result[1], result[1].max())) == 1


def test_deletion_shortens_the_sequence_and_its_attention(text):
    masker = sequential.make_masker(text, np.array([11, 12, 13, 14]), replacement="delete")
    ids = masker.tables(np.array([[1, 0, 1, 0], [0, 1, 1, 1]]))
    np.testing.assert_array_equal(ids, [[11, 13, -1, -1], [12, 13, 14, -1]])
    feeds = text.feeds(ids)
    np.testing.assert_array_equal(feeds["attention_mask"], [[1, 1, 0, 0], [1, 1, 1, 0]])
    np.testing.assert_array_equal(feeds["input_ids"], [[11, 13, 0, 0], [12, 13, 14, 0]])


def test_multi_finds_one_set_per_key_token():
    model = ox.Model(text_model((KEY, OTHER_KEY)))
    result = sequential.multi(model, token_ids({3: KEY, 9: OTHER_KEY}), mask_token=MASK)
    sets = [set(np.flatnonzero(m)) for m in result.explanations[1]]
    assert sorted(sets, key=min) == [{3}, {9}]
    np.testing.assert_allclose(result[1][[3, 9]], 1.0)


def test_fidelity_ranks_the_true_map_first(series):
    x = bump_series()
    truth = np.zeros((3, 64))
    truth[BUMP] = 1
    good = sequential.curves(series, x, truth, "deletion", window=8)
    bad = sequential.curves(series, x, -truth, "deletion", window=8)
    assert good.curves["deletion"][1] < 0.25 < bad.curves["deletion"][-2]
    assert good.aucs["deletion"] < bad.aucs["deletion"]
    mif = sequential.curves(series, x, truth, "mif-lif", window=8)
    assert mif.fidelity > 0.5


def test_counterfactual_swaps_the_bump(series, text):
    real, other = bump_series(), bump_series(seed=1)
    other[BUMP] -= 2.0
    _, result, swap = sequential.counterfactual(series, real, other, window=8)
    assert result.targets == [0] and bump_is_top(result[0])
    assert swap.score > 0.8 and swap.best_mask[BUMP].all() and swap.best_mask.sum() == 8
    _, result, swap = sequential.counterfactual(text, token_ids({4: KEY}), token_ids({}, seed=1), mask_token=MASK)
    assert int(np.argmax(result[0])) == 4
    with pytest.raises(ox.OnnxplainError, match="same number of tokens"):
        sequential.counterfactual(text, token_ids({4: KEY}), token_ids({}, length=9), mask_token=MASK)


def test_rise_is_deterministic_for_any_batch_size():
    maps = [sequential.rise(ox.Model(series_model(), batch_size=b), bump_series(), window=8, n_masks=64, seed=3)[1]
            for b in (5, 64)]
    np.testing.assert_array_equal(*maps)


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory):
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[MASK]", "the", "film", "was", "un", "##believ",
                                         "##able", "great", "and", "dull"])}
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tokenizer.save(str(path))
    return path, vocab


def test_words_merge_word_pieces(tokenizer_file):
    path, vocab = tokenizer_file
    model = ox.Model(text_model((vocab["##believ"],)))
    text = "the film was unbelievable and dull"
    result = sequential.occlusion(model, text, tokenizer=path, level="word")
    assert result.columns == ["the", "film", "was", "unbelievable", "and", "dull"]
    assert result[1].shape == (8,) and np.all(result[1][3:6] == result[1].max()) and result[1][:3].max() < 0.5
    assert result.features["mask_token"] == vocab["[MASK]"]
    corpus = ["the film was great", "dull and great", "the film"]
    ig = sequential.ig(model, text, tokenizer=path, background=corpus, samples=4)
    assert int(np.argmax(ig[1])) == 4  # the token ##believ


def test_cli_series_and_text(tmp_path, tokenizer_file):
    (tmp_path / "series.onnx").write_bytes(series_model())
    np.save(tmp_path / "series.npy", bump_series())
    cli = [sys.executable, "-m", "onnxplain.cli", "explain"]
    done = subprocess.run(cli + [str(tmp_path / "series.onnx"), str(tmp_path / "series.npy"), "--window", "8",
                                 "--method", "multi", "--out", str(tmp_path / "s"), "--quiet"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert bump_is_top(np.load(tmp_path / "s" / "multi_1.npy"))
    assert np.load(tmp_path / "s" / "multi_1_explanation_1.npy").dtype == bool
    record = json.loads((tmp_path / "s" / "result.json").read_text())
    assert record["modality"] == "series" and record["features"][11] == "c1 t24-31"
    assert record["explanations"]["1"][0]["features"] == ["c1 t24-31"]
    assert (tmp_path / "s" / "multi_1.png").stat().st_size > 1000

    path, vocab = tokenizer_file
    (tmp_path / "text.onnx").write_bytes(text_model((vocab["dull"],)))
    done = subprocess.run(cli + [str(tmp_path / "text.onnx"), "--text", "the film was dull", "--tokenizer", str(path),
                                 "--out", str(tmp_path / "t"), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(np.argmax(np.load(tmp_path / "t" / "occlusion_1.npy"))) == 3
    assert json.loads((tmp_path / "t" / "result.json").read_text())["features"] == ["the", "film", "was", "dull"]
    (tmp_path / "corpus.txt").write_text("the film was great\nthe film and the film\n")
    done = subprocess.run(cli + [str(tmp_path / "text.onnx"), "--text", "the film was dull", "--tokenizer", str(path),
                                 "--method", "pmi", "--background", str(tmp_path / "corpus.txt"), "--samples", "4",
                                 "--target", "1", "--out", str(tmp_path / "p"), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(np.argmax(np.load(tmp_path / "p" / "pmi_1.npy"))) == 3
    bad = subprocess.run(cli + [str(tmp_path / "series.onnx"), str(tmp_path / "series.npy"), "--replacement", "mask"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--replacement mean/interpolate" in bad.stderr
    np.save(tmp_path / "ids.npy", token_ids({4: KEY}))
    (tmp_path / "key.onnx").write_bytes(text_model())
    done = subprocess.run(cli + [str(tmp_path / "key.onnx"), str(tmp_path / "ids.npy"), "--mask-token", "2",
                                 "--method", "rise", "--masks", "200", "--out", str(tmp_path / "i"), "--quiet"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(np.argmax(np.load(tmp_path / "i" / "rise_1.npy"))) == 4
    np.save(tmp_path / "plain.npy", token_ids({}, seed=1))
    done = subprocess.run([sys.executable, "-m", "onnxplain.cli", "counterfactual", str(tmp_path / "key.onnx"),
                           str(tmp_path / "ids.npy"), str(tmp_path / "plain.npy"), "--out", str(tmp_path / "c")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(np.argmax(np.load(tmp_path / "c" / "d-occlusion_0.npy"))) == 4
    np.testing.assert_array_equal(np.load(tmp_path / "c" / "d-occlusion_best_mask.npy"), np.arange(12) == 4)
    assert json.loads((tmp_path / "c" / "result.json").read_text())["modality"] == "text"
    bad = subprocess.run(cli + [str(tmp_path / "series.onnx"), str(tmp_path / "ids.npy")], capture_output=True, text=True)
    assert bad.returncode == 2 and "a series is numeric" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_input_is_one_clear_error(series, text):
    for window in (0, 8.5, "8"):
        with pytest.raises(ox.OnnxplainError, match="window must be an integer 1..64"):
            sequential.occlusion(series, bump_series(), window=window)
    with pytest.raises(ox.OnnxplainError, match="mask_token must be a token id"):
        sequential.occlusion(text, token_ids({}), mask_token=-3)
    with pytest.raises(ox.OnnxplainError, match="mask_token="):
        sequential.occlusion(text, token_ids({}))
    with pytest.raises(ox.OnnxplainError, match="background="):
        sequential.ig(text, token_ids({}), mask_token=MASK)
    with pytest.raises(ox.OnnxplainError, match="tokenizer="):
        sequential.occlusion(text, "some words", mask_token=MASK)
    with pytest.raises(ox.OnnxplainError, match="NaN"):
        sequential.occlusion(series, np.full((3, 64), np.nan))
    with pytest.raises(ox.OnnxplainError, match="no series/text form"):
        sequential.explain(series, bump_series(), "gradcam")


def test_fixed_length_text_model_gets_padding_and_token_types():
    model = ox.Model(text_model(length=16))
    assert model.roles == {"ids": "input_ids", "attention": "attention_mask", "types": "token_type_ids"}
    result = sequential.occlusion(model, token_ids({4: KEY}), replacement="delete")  # 12 tokens, padded to 16
    assert result[1].shape == (12,) and int(np.argmax(result[1])) == 4
    feeds = model.feeds(np.array([[11, 12, -1]]))
    np.testing.assert_array_equal(feeds["attention_mask"], [[1, 1] + [0] * 14])
    assert not feeds["token_type_ids"].any()
    with pytest.raises(ox.OnnxplainError, match="at most 16"):
        sequential.occlusion(model, token_ids({}, length=20), mask_token=MASK)


def test_series_ig_is_deterministic_and_refuses_short_series():
    model = ox.Model(series_model(), batch_size=7)
    ig = sequential.ig(model, bump_series(), window=8, samples=6, seed=2)[1]
    again = sequential.ig(ox.Model(series_model(), batch_size=64), bump_series(), window=8, samples=6, seed=2)[1]
    np.testing.assert_array_equal(ig, again)
    with pytest.raises(ox.OnnxplainError, match="too short"):
        sequential.ig(model, bump_series()[:, :20], window=8)


@pytest.mark.parametrize("method", ["ig", "pmi"])
def test_a_constant_series_gives_zero_information_maps_with_a_warning(method):
    model = ox.Model(series_model())
    with pytest.warns(ox.OnnxplainWarning, match="the series is constant, so every segment's draws equal it"):
        result = getattr(sequential, method)(model, np.ones((3, 64), np.float32), window=8)
    for target in result.targets:
        np.testing.assert_allclose(result[target], 0, atol=1e-6)


# ---- the fast paths against their reference computations ---------------------------------------------

def reference_segment_draws(sampler: SegmentSampler, group: int, samples: int, seed: int) -> np.ndarray:
    """(samples, *series shape): the straightforward draw (the form before the fast path): the
    segment's channels and steps read from its positions, the conditional computed for it alone."""
    masker, f = sampler.masker, sampler.frame
    x = masker.channel_major(masker.row)
    where = np.unravel_index(masker.groups[group], masker.row.shape)
    channels, times = np.unique(where[masker.axis]), np.unique(where[1 - masker.axis])
    start, end = int(times[0]), int(times[-1]) + 1
    steps = np.arange(start - f, start - f + len(sampler.mean))
    known = np.flatnonzero(((steps < start) | (steps >= end)) & (steps >= 0) & (steps < x.shape[1]))
    inside = np.arange(f, f + end - start)
    gain = np.linalg.solve(sampler.cov[np.ix_(known, known)], sampler.cov[np.ix_(known, inside)]).T
    cov = sampler.cov[np.ix_(inside, inside)] - gain @ sampler.cov[np.ix_(known, inside)]
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    factor = vectors * np.sqrt(np.clip(values, 0, None))[None]
    noise = np.random.default_rng([seed, group]).standard_normal((samples, len(channels), factor.shape[1])) @ factor.T
    out = np.repeat(x[None], samples, axis=0)
    for k, c in enumerate(channels):
        z = (x[c] - sampler.center[c]) / sampler.scale[c]
        mean = sampler.mean[f:f + end - start] + gain @ (z[steps[known]] - sampler.mean[known])
        out[:, c, start:end] = sampler.center[c] + sampler.scale[c] * (mean[None] + noise[:, k])
    return out if masker.axis == 0 else out.transpose(0, 2, 1)


@pytest.mark.parametrize("layout,per_channel,frame", [("NCT", True, None), ("NTC", True, 5), ("NCT", False, 3)])
def test_segment_draws_and_ig_pmi_equal_the_reference(layout, per_channel, frame):
    """Draws made up front and pasted per batch, conditionals shared by interior segments, and IG/PMI
    from one mean at the end: bit for bit the straightforward computation (70 steps: a short last
    segment of 6)."""
    model = ox.Model(series_model(layout), progress=False, batch_size=10)
    series = np.random.default_rng(4).normal(size=(3, 70))
    series = series if layout == "NCT" else series.T
    masker = sequential.make_masker(model, series, window=8, per_channel=per_channel)
    sampler = SegmentSampler(masker, 4, 7, frame)
    reference = np.stack([reference_segment_draws(sampler, g, 4, 7) for g in range(masker.count)])
    np.testing.assert_array_equal(sampler.draws(range(masker.count)), reference.reshape(-1, *series.shape))
    np.testing.assert_array_equal(sampler.draws(range(3, 5)), reference[3:5].reshape(-1, *series.shape))
    ig, pmi = sequential.information_maps(model, series, 1, samples=4, seed=7, window=8, per_channel=per_channel,
                                          frame=frame)
    p = model.run(series[None])[0].astype(np.float64)
    q = np.stack([model.run(r).astype(np.float64).mean(axis=0) for r in reference])
    np.testing.assert_array_equal(pmi[1], masker.spread(np.log(p[1]) - np.log(q[:, 1])).astype(np.float32))
    np.testing.assert_array_equal(ig[1], masker.spread(np.sum(p * (np.log(p) - np.log(q)), axis=1)).astype(np.float32))


def test_removed_rows_equal_the_masked_tables(text):
    """`removed` (the fill pasted into copies of the row) gives `tables(1 - I)` for every masker."""
    series = ox.Model(series_model("NTC"), progress=False)
    maskers = [sequential.make_masker(series, bump_series().T, window=8, replacement="interpolate"),
               sequential.make_masker(series, bump_series().T, window=8, per_channel=False),
               sequential.make_masker(text, token_ids({4: KEY}), mask_token=MASK),
               sequential.make_masker(text, token_ids({4: KEY}), replacement="delete")]
    for masker in maskers:
        eye = 1 - np.eye(masker.count)
        for first, last in [(0, masker.count), (2, 5)]:
            want = masker.tables(eye[first:last])
            got = masker.removed(first, last)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(masker.removed(first, last, masker.fill), masker.tables(eye[first:last],
                                                                                                   masker.fill))
        np.testing.assert_array_equal(masker.scores(None), masker.scores(eye))
    rng = np.random.default_rng(0)
    table_model = ox.Model(tabular_model(), progress=False)
    masker = TabularMasker(table_model, rng.normal(size=4), rng.normal(size=(30, 4)), groups={"ab": [0, 1]},
                           n_background=5)
    np.testing.assert_array_equal(masker.removed(0, masker.count), masker.tables(1 - np.eye(masker.count)))
    np.testing.assert_array_equal(masker.scores(None), masker.scores(1 - np.eye(masker.count)))
    with pytest.raises(ValueError, match="shared by every mask"):
        masker.scores(None, fill=np.repeat(masker.fill[None], masker.count, axis=0))


def tabular_model() -> bytes:
    """softmax([0, x0 + 2 x1 - x3]) over rows (N, 4)."""
    w = np.zeros((4, 2), np.float32)
    w[:, 1] = [1, 2, 0, -1]
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["logits"]),
                               helper.make_node("Softmax", ["logits"], ["p"], axis=1)], "linear",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 2])],
                              [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("layout", ["NCT", "NTC"])
def test_segments_across_channels_cover_every_channel(layout):
    """per_channel=False: one feature per segment spanning the channels; maps in the series' shape,
    and an IG/PMI draw replaces every channel of the segment and nothing else."""
    model = ox.Model(series_model(layout), progress=False)
    series = bump_series() if layout == "NCT" else bump_series().T
    result = sequential.occlusion(model, series, window=8, per_channel=False)
    assert result[1].shape == series.shape and result.feature_of.shape == series.shape
    by_channel = result[1] if layout == "NCT" else result[1].T
    assert np.all(by_channel[:, 24:32] == by_channel.max()) and by_channel[:, :24].max() < by_channel.max()
    masker = sequential.make_masker(model, series, window=8, per_channel=False)
    changed = SegmentSampler(masker, 2, 0).draws(range(3, 4))[0] != masker.row
    changed = changed if layout == "NCT" else changed.T
    expected = np.zeros((3, 64), bool)
    expected[:, 24:32] = True
    np.testing.assert_array_equal(changed, expected)
    pmi = sequential.pmi(model, series, 1, window=8, per_channel=False, samples=8)[1]
    pmi = pmi if layout == "NCT" else pmi.T
    assert np.all(pmi == pmi[:1]) and np.argmax(pmi[0]) // 8 == 3  # the bump's segment


def test_segments_are_shared_read_only():
    """Maskers of series of one shape share their segments (read-only); each has its own name list."""
    model = ox.Model(series_model(), progress=False)
    a = sequential.make_masker(model, bump_series(0), window=8)
    b = sequential.make_masker(model, bump_series(1), window=8)
    assert a.group_of is b.group_of and not a.group_of.flags.writeable and not a.groups[0].flags.writeable
    a.names.append("extra")
    assert len(b.names) == b.count == 24


def embedding_model(vocabulary: int = 50) -> bytes:
    """score = mean over tokens of an embedding's first coordinate: a Gather over a (vocabulary, 4) table."""
    table = np.random.default_rng(0).normal(size=(vocabulary, 4)).astype(np.float32)
    nodes = [helper.make_node("Cast", ["input_ids"], ["ids"], to=TensorProto.INT64),
             helper.make_node("Gather", ["table", "ids"], ["vectors"], axis=0),
             helper.make_node("ReduceMean", ["vectors"], ["pooled"], axes=[1], keepdims=0),
             helper.make_node("Slice", ["pooled", "start", "stop", "axis"], ["score"])]
    inits = [numpy_helper.from_array(table, "table")] + [numpy_helper.from_array(np.int64([v]), n)
                                                        for n, v in (("start", 0), ("stop", 1), ("axis", 1))]
    return _classifier(nodes, [helper.make_tensor_value_info("input_ids", TensorProto.INT32, [None, None])], inits)


def test_token_ids_outside_the_embedding_table_are_refused_before_the_model_runs(tmp_path):
    model = ox.Model(embedding_model())
    assert model.modality == "text" and model.vocabulary == 50
    ids = token_ids({})
    assert sequential.occlusion(model, ids, mask_token=MASK).evaluations > 0
    with pytest.raises(ox.OnnxplainError, match=r"the text holds token id 500, outside the model's vocabulary 0\.\.49"):
        sequential.occlusion(model, np.append(ids, 500), mask_token=MASK)
    with pytest.raises(ox.OnnxplainError, match=r"mask_token \(--mask-token\) holds token id 999"):
        sequential.occlusion(model, ids, mask_token=999)
    with pytest.raises(ox.OnnxplainError, match=r"the background corpus holds token id 77"):
        sequential.ig(model, ids, mask_token=MASK, background=np.array([3, 77, 5]))
    with pytest.raises(ox.OnnxplainError, match=r"token ids must be in 0\.\.2\^63-1, got 9223372036854775808"):
        sequential.occlusion(model, np.array([3, 2**63], np.uint64), mask_token=MASK)
    with pytest.raises(ox.OnnxplainError, match=r"pad_token holds token id 64"):
        ox.Model(embedding_model(), pad_token=64)
    with pytest.raises(ox.OnnxplainError, match=r"pad_token must be a token id >= 0, got 'x'"):
        ox.Model(embedding_model(), pad_token="x")
    (tmp_path / "corpus.txt").write_bytes(b"caf\xe9 au lait\n")
    with pytest.raises(ox.OnnxplainError, match=r"corpus\.txt is not UTF-8 text"):
        sequential.ig(model, ids, mask_token=MASK, background=tmp_path / "corpus.txt")


def test_a_series_frame_must_be_a_non_negative_integer():
    model = ox.Model(series_model())
    for frame in (-1, "a", 2.5):
        with pytest.raises(ox.OnnxplainError, match=r"frame must be an integer >= 0"):
            sequential.ig(model, bump_series(), window=8, frame=frame)


def test_ragged_inputs_negative_corpora_and_a_tokenizer_that_cannot_encode_are_named(tmp_path):
    series = ox.Model(series_model())
    with pytest.raises(ox.OnnxplainError, match=r"a series must be a rectangular array"):
        sequential.occlusion(series, [[0.0] * 64, [0.0] * 63, [0.0] * 64], window=8)
    text = ox.Model(text_model())
    with pytest.raises(ox.OnnxplainError, match=r"the background corpus must be a rectangular array"):
        sequential.ig(text, token_ids({3: KEY}), mask_token=MASK, background=[[1, 2], [3]])
    with pytest.raises(ox.OnnxplainError, match=r"token ids \(integers, some >= 0\)"):
        sequential.ig(text, token_ids({3: KEY}), mask_token=MASK, background=np.array([-5, -3]))
    tokenizers = pytest.importorskip("tokenizers")
    no_unknown = tokenizers.Tokenizer(tokenizers.models.WordLevel({"the": 0, "film": 1}))  # no [UNK] to fall back on
    no_unknown.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    no_unknown.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ox.OnnxplainError, match=r"the tokenizer cannot encode 'the dull film'"):
        sequential.occlusion(text, "the dull film", tokenizer=tmp_path / "tokenizer.json", mask_token=0)
    for bad_seed in (-1, 2**64):
        with pytest.raises(ox.OnnxplainError, match=r"seed must be an integer in 0\.\.2\^64-1"):
            sequential.rise(series, bump_series(), window=8, seed=bad_seed)


def test_cli_passes_frame_and_samples_to_series_and_tabular_information_maps(tmp_path, capsys):
    from onnxplain.cli import main

    (tmp_path / "series.onnx").write_bytes(series_model())
    np.save(tmp_path / "series.npy", bump_series())
    assert main(["explain", str(tmp_path / "series.onnx"), str(tmp_path / "series.npy"), "--method", "ig", "--window",
                 "8", "--frame", "3", "--samples", "5", "--out", str(tmp_path / "s"), "--quiet"]) == 0, \
        capsys.readouterr().err
    params = json.loads((tmp_path / "s" / "result.json").read_text())["params"]
    assert params["frame"] == 3 and params["samples"] == 5
    import test_tabular

    (tmp_path / "table.onnx").write_bytes(test_tabular.linear_model(np.arange(10, dtype=np.float32)))
    test_tabular.write_csv(tmp_path / "rows.csv", np.random.default_rng(0).normal(size=(40, 10)))
    table = ["explain", str(tmp_path / "table.onnx"), str(tmp_path / "rows.csv"), "--background",
             str(tmp_path / "rows.csv"), "--method", "ig", "--quiet"]
    assert main(table + ["--samples", "6", "--out", str(tmp_path / "t")]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "t" / "result.json").read_text())["params"]["samples"] == 6
    assert main(table + ["--n-background", "6", "--out", str(tmp_path / "u")]) == 2
    assert "--n-background does not apply to ig/pmi, which draw --samples" in capsys.readouterr().err
