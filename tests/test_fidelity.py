"""Fidelity metrics against ground truth: a linear model whose evidence is known, independent
NumPy re-implementations, ROAD's imputation on a linear ramp, errors."""
import cv2
import numpy as np
import pytest
from onnx import TensorProto, helper

import onnxplain as ox
from onnxplain import _core
from onnxplain import fidelity as fd
from helpers import EFFICIENTNET, needs_efficientnet, photo_on_canvas

SIZE = 16


def linear_model(weights: np.ndarray, bias: float) -> bytes:
    """ONNX bytes of logits = [sum(weights * x) + bias, 0] for x of shape (N, 3, SIZE, SIZE)."""
    w = np.zeros((3 * SIZE * SIZE, 2), np.float32)
    w[:, 0] = weights.transpose(2, 0, 1).reshape(-1)  # weights given H x W x 3
    b = np.array([bias, 0.0], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1), helper.make_node("Gemm", ["flat", "w", "b"], ["logits"])],
        "linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
         helper.make_tensor("b", TensorProto.FLOAT, b.shape, b)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def planted_case(seed: int = 0):
    """A model whose class-0 evidence sits in a 5 x 5 box with varied positive weights, an image
    (dark, the box bright), and the true evidence map (each pixel's contribution to the class-0 logit, preset 'unit' so
    the mean perturbation is 0)."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((SIZE, SIZE, 3), np.float32)
    weights[4:9, 6:11] = rng.uniform(0.5, 1.5, (5, 5, 3))
    image = rng.uniform(0, 120, (SIZE, SIZE, 3)).astype(np.float32)
    image[4:9, 6:11] = rng.uniform(200, 255, (5, 5, 3))  # bright evidence: blurring weakens it
    weights *= 8 / (weights * image / 255).sum()
    contribution = (weights * image / 255).sum(axis=2)
    bias = -4.0  # clean logit 4 (p = 0.98), 8 units of evidence
    model = ox.Model(linear_model(weights, bias), preset="unit", progress=False)
    return model, image, contribution.astype(np.float32), weights, bias


def test_true_evidence_beats_random_beats_inverted():
    model, image, truth, _, _ = planted_case()
    assert np.argmax(model.predict(image)) == 0
    true = fd.mif_lif(model, image, truth)
    inverted = fd.mif_lif(model, image, -truth)
    randoms = [fd.mif_lif(model, image, ox.RandomMap(model).attribute(image, seed=s)).fidelity for s in range(5)]
    assert true.fidelity > max(randoms) > min(randoms) > inverted.fidelity
    assert true.fidelity > 0.3 and inverted.fidelity < -0.3
    np.testing.assert_allclose(inverted.fidelity, -true.fidelity, atol=1e-6)  # the two orders swap
    mif, lif = true.curves["mif"], true.curves["lif"]
    assert mif[0] == lif[0] == 1.0  # nothing perturbed: the clean image itself
    assert np.all(mif <= lif + 1e-6) and np.all(mif[1:] < lif[1:] - 0.05)  # MIF falls faster
    assert np.all(np.diff(mif) <= 1e-6)  # removing positive evidence never raises p(c)
    assert true.evaluations == 1 + 2 * 20
    # top-1 agreement: lost under MIF (evidence is 10 % of the pixels), kept under LIF until the end
    assert not true.agree["mif"][-1] and true.agree["lif"][:15].all()


def numpy_ranks(attribution: np.ndarray, patch: int) -> np.ndarray:
    """Independent ranking (no ties): patch means, sorted descending, broadcast to pixels."""
    h, w = attribution.shape
    fh, fw = -(-h // patch), -(-w // patch)
    means = np.array([[attribution[i * patch:(i + 1) * patch, j * patch:(j + 1) * patch].mean() for j in range(fw)]
                      for i in range(fh)])
    order = np.argsort(-means.ravel(), kind="stable")
    feature_rank = np.empty(order.size, np.int64)
    feature_rank[order] = np.arange(order.size)
    return np.kron(feature_rank.reshape(fh, fw), np.ones((patch, patch), np.int64))[:h, :w]


@pytest.mark.parametrize("patch", [1, 3])
@pytest.mark.parametrize("score", ["ratio", "logit"])
def test_mif_lif_equal_numpy(patch, score):
    model, image, _, weights, bias = planted_case(seed=1)
    attribution = np.random.default_rng(2).normal(size=(SIZE, SIZE)).astype(np.float32)  # no ties
    fractions = [0.0, 0.1, 0.25, 0.5, 0.8]
    result = fd.mif_lif(model, image, attribution, fractions=fractions, patch=patch, score=score)
    ranks = numpy_ranks(attribution, patch)
    n = ranks.max() + 1
    assert np.array_equal(fd.rank(attribution, patch), ranks)

    def logit0(img):
        return float((weights * img / 255).sum() + bias)

    def value(img):
        z = logit0(img)
        return z if score == "logit" else 1 / (1 + np.exp(-z))

    for name, order in (("mif", ranks), ("lif", n - 1 - ranks)):
        expected = []
        for f in fractions:
            perturbed = np.where((order < round(f * n))[..., None], 0.0, image)
            expected.append(value(perturbed))
        expected = np.array(expected) / (value(image) if score == "ratio" else 1.0)
        np.testing.assert_allclose(result.curves[name], expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(result.aucs[name], np.trapezoid(expected, fractions), rtol=1e-4, atol=1e-5)
    assert result.fidelity == pytest.approx(result.aucs["lif"] - result.aucs["mif"])


def test_deletion_insertion_equal_numpy():
    model, image, truth, weights, bias = planted_case(seed=3)
    attribution = truth + np.random.default_rng(4).normal(0, 1e-3, truth.shape).astype(np.float32)
    step = 40
    dele = fd.deletion(model, image, attribution, step=step)
    ins = fd.insertion(model, image, attribution, step=step)
    order = numpy_ranks(attribution, 1)
    counts = sorted(set(min(k, SIZE * SIZE) for k in range(0, SIZE * SIZE + step, step)))
    blurred = cv2.GaussianBlur(image, (11, 11), 5)
    p = lambda img: 1 / (1 + np.exp(-float((weights * img / 255).sum() + bias)))  # noqa: E731
    exp_del = [p(np.where((order < k)[..., None], 0.0, image)) for k in counts]
    exp_ins = [p(np.where((order < k)[..., None], image, blurred)) for k in counts]
    x = np.array(counts) / (SIZE * SIZE)
    np.testing.assert_allclose(dele.x, x)
    np.testing.assert_allclose(dele.curves["deletion"], exp_del, rtol=1e-4)
    np.testing.assert_allclose(ins.curves["insertion"], exp_ins, rtol=1e-4)
    np.testing.assert_allclose(dele.aucs["deletion"], np.trapezoid(exp_del, x), rtol=1e-4)
    np.testing.assert_allclose(ins.aucs["insertion"], np.trapezoid(exp_ins, x), rtol=1e-4)
    # the true evidence map deletes faster and inserts faster than a random one
    rnd = _core.random_map(0, SIZE, SIZE)
    assert dele.aucs["deletion"] < fd.deletion(model, image, rnd, step=step).aucs["deletion"]
    assert ins.aucs["insertion"] > fd.insertion(model, image, rnd, step=step).aucs["insertion"]


def test_road_imputation_reproduces_a_linear_ramp():
    h, w = 24, 30
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = np.stack([20 + 3 * y + 5 * x, 200 - 2 * y - 3 * x, 50 + 1.5 * y + 0.5 * x], axis=2).astype(np.float32)
    rng = np.random.default_rng(0)
    mask = np.ones((h, w), np.float32)
    interior = rng.random((h - 2, w - 2)) < 0.6
    mask[1:-1, 1:-1][interior] = 0.0  # 60 % of the interior removed, in clusters and alone
    mask[5:15, 8:20] = 0.0
    imputed = fd.impute(ramp, mask, noise=0.0)
    removed = mask == 0
    np.testing.assert_allclose(imputed[removed], ramp[removed], atol=1e-3)
    np.testing.assert_array_equal(imputed[~removed], ramp[~removed])
    # with ROAD's noise: N(0, 0.01^2) on [0, 1], i.e. std 2.55 in 0..255 units, only where removed
    noisy = fd.impute(ramp, mask, seed=7)
    residual = (noisy - ramp)[removed]
    assert abs(residual.std() - 2.55) < 0.15 and abs(residual.mean()) < 0.15
    assert np.array_equal(noisy, fd.impute(ramp, mask, seed=7))
    # a non-linear image is not reproduced (the test can fail): the imputation is a smoothing
    bumpy = np.clip(ramp + 40 * (((y + x) % 2) - 0.5)[..., None], 0, 255).astype(np.float32)
    assert np.abs(fd.impute(bumpy, mask, noise=0.0)[removed] - bumpy[removed]).max() > 10


def test_road_curves_and_batch_size_independence():
    model, image, truth, weights, bias = planted_case(seed=5)
    runs = []
    for batch_size in (1, 7, 64):
        m = ox.Model(linear_model(weights, bias), preset="unit", batch_size=batch_size, progress=False)
        runs.append(fd.road(m, image, truth, fractions=[0, 0.2, 0.4, 0.6], seed=3))
    for other in runs[1:]:
        for name in ("mif", "lif"):
            np.testing.assert_array_equal(other.curves[name], runs[0].curves[name])
    assert runs[0].fidelity > 0.2 and runs[0].metric == "road"
    # the imputed pixels enter the model: MIF under ROAD equals the model on the imputed images
    ranks = fd.rank(truth, 1, seed=3)
    k = round(0.4 * SIZE * SIZE)
    mask = (ranks >= k).astype(np.float32)
    imputed = fd.impute(image, mask, seed=3, stream=2)  # perturbation index 2 = MIF at 0.4
    z = float((weights * imputed / 255).sum() + bias)
    expected = 1 / (1 + np.exp(-z)) / model.predict(image)[0]
    assert runs[0].curves["mif"][2] == pytest.approx(expected, rel=1e-4)


def test_perturbation_values_and_ties():
    model, image, truth, _, _ = planted_case(seed=6)
    for perturbation in ("mean", "blur", "noise"):
        result = fd.mif_lif(model, image, truth, perturbation=perturbation, fractions=[0, 0.5])
        assert result.fidelity > 0.1, perturbation
    imagenet = ox.Model(linear_model(np.zeros((SIZE, SIZE, 3), np.float32), 0.0), preset="imagenet")
    big = np.zeros((64, 64, 3), np.float32)
    noise = fd.perturbation_image(big, "noise", imagenet, seed=1)
    assert noise.shape == big.shape and 0 <= noise.min() and noise.max() <= 255
    np.testing.assert_allclose(noise.reshape(-1, 3).mean(axis=0), imagenet.preprocess.neutral, atol=2.5)
    np.testing.assert_allclose(noise.reshape(-1, 3).std(axis=0), 0.2 * 255, rtol=0.06)
    assert not np.array_equal(noise, fd.perturbation_image(big, "noise", imagenet, seed=2))
    # a constant map: the order is a seeded permutation, reproducible, different per seed
    flat = np.zeros((SIZE, SIZE), np.float32)
    a, b, c = fd.rank(flat, 1, seed=1), fd.rank(flat, 1, seed=1), fd.rank(flat, 1, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert sorted(a.ravel()) == list(range(SIZE * SIZE))


def test_dataset_statistics():
    mean, half = fd.interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and half == pytest.approx(1.96 * np.std([1, 2, 3, 4], ddof=1) / 2)
    diff, dh = fd.paired_difference([1.0, 2.0, 4.0], [0.5, 1.0, 3.0])
    assert diff == pytest.approx(np.mean([0.5, 1.0, 1.0])) and dh == pytest.approx(
        1.96 * np.std([0.5, 1.0, 1.0], ddof=1) / np.sqrt(3))
    assert fd.interval([3.0]) == (3.0, 0.0)


@pytest.mark.parametrize("call, message", [
    (lambda m, im: fd.mif_lif(m, im, np.zeros((8, 8))), "shape"),
    (lambda m, im: fd.mif_lif(m, im, np.full((SIZE, SIZE), np.nan)), "NaN"),
    (lambda m, im: fd.mif_lif(m, im, np.zeros((SIZE, SIZE)), fractions=[0.5, 0.2]), "fractions"),
    (lambda m, im: fd.mif_lif(m, im, np.zeros((SIZE, SIZE)), fractions=[0, 1.5]), "fractions"),
    (lambda m, im: fd.mif_lif(m, im, np.zeros((SIZE, SIZE)), perturbation="zeros"), "perturbation"),
    (lambda m, im: fd.mif_lif(m, im, np.zeros((SIZE, SIZE)), patch=0), "patch"),
    (lambda m, im: fd.mif_lif(m, im, np.zeros((SIZE, SIZE)), score="auc"), "score"),
    (lambda m, im: fd.mif_lif(m, im, np.zeros((SIZE, SIZE)), target=5), "target"),
    (lambda m, im: fd.mif_lif(m, im, np.zeros((SIZE, SIZE)), label=-1), "label"),
    (lambda m, im: fd.deletion(m, im, np.zeros((SIZE, SIZE)), step=0), "step"),
    (lambda m, im: fd.road(m, im, np.zeros((SIZE, SIZE)), perturbation="mean"), "imputation"),
    (lambda m, im: fd.mif_lif(m, im[:8], np.zeros((SIZE, SIZE))), "image is 8 x 16"),
    (lambda m, im: fd.road(m, im, np.zeros((SIZE, SIZE)), fractions=[0, 1]), "at least one kept pixel"),
    (lambda m, im: fd.mif_lif("model.onnx", im, np.zeros((SIZE, SIZE))), "Model"),
])
def test_errors(call, message):
    model, image, _, _, _ = planted_case()
    with pytest.raises(ox.OnnxplainError, match=message):
        call(model, image)


@needs_efficientnet
def test_occlusion_beats_random_on_efficientnet():
    from skimage import data

    model = ox.Model(EFFICIENTNET, preset="efficientnet-lite", progress=False)
    image, _ = photo_on_canvas(data.chelsea()[:, 50:350], scale=0.6)
    occlusion = ox.Occlusion(model).attribute(image, window=56, stride=28)
    options = {"fractions": [0, 0.1, 0.2, 0.4, 0.6, 0.8], "patch": 8}
    occ = fd.mif_lif(model, image, occlusion, **options)
    rnd = fd.mif_lif(model, image, ox.RandomMap(model).attribute(image), **options)
    assert occ.target == occlusion.targets[0]
    assert occ.fidelity > rnd.fidelity + 0.1
    assert occ.curves["mif"][2] < occ.curves["lif"][2]
