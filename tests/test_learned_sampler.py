"""The learned patch sampler (sampler="learned"): the shipped file, its behaviour on contexts whose
right answer is known, its use by IG/PMI, and the training tool's contract and determinism."""
from __future__ import annotations

import importlib.util
import json
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

import onnxplain as ox
from onnxplain.cli import main
from onnxplain.information import LEARNED_SAMPLER, OnnxSampler

from test_information import detector_model, planted

ROOT = Path(__file__).resolve().parents[1]


def training_tool():
    spec = importlib.util.spec_from_file_location("train_patch_sampler", ROOT / "tools" / "train_patch_sampler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rgb_model():
    return ox.Model(detector_model(), preset="unit", progress=False)


def draws(model, image, y, x, n=400, seed=0):
    sampler = ox.LearnedSampler()
    sampler.prepare(model, image, 8)
    return sampler.sample(np.full(n, y, np.int64), np.full(n, x, np.int64), np.arange(n, dtype=np.uint64), seed)


def test_shipped_file_is_small_and_gives_mixture_parameters():
    assert LEARNED_SAMPLER.stat().st_size <= 10 * 2**20
    sampler = ox.LearnedSampler()
    assert sampler.trained_patch == 8
    windows = np.random.default_rng(0).uniform(0, 1, (5, 4, 24, 24)).astype(np.float32)
    windows[:, 3] = 0.0
    windows[:, 3, 8:16, 8:16] = 1.0
    windows[:, :3, 8:16, 8:16] = 0.0
    params = sampler.session.run(None, {sampler.input_name: windows})[0]
    assert params.shape == (5, 3, 8, 8, 9) and np.isfinite(params).all()


def test_draws_follow_the_context(rgb_model):
    """A flat context gives quiet draws at its value; per-pixel noise gives noise of about its
    strength (what the Gaussian misses); a two-colour split gives both colours on their sides."""
    flat = np.full((32, 32, 3), 90.0, np.float32)
    got = draws(rgb_model, flat, 12, 12)
    assert abs(got.mean() - 90) < 3 and got.std() < 4
    rng = np.random.default_rng(0)
    noisy = np.clip(127 + 12 * rng.standard_normal((32, 32, 3)), 0, 255).astype(np.float32)
    got = draws(rgb_model, noisy, 12, 12)
    assert abs(got.mean() - 127) < 6 and 6 < got.std() < 20
    split = np.zeros((32, 32, 3), np.float32)
    split[:, 16:] = 200.0
    got = draws(rgb_model, split, 12, 12)  # patch columns 12..19: the boundary at 16 runs through it
    assert got[:, :, :2].mean() < 60 and got[:, :, -2:].mean() > 140


@pytest.mark.parametrize("context", ["grey", "colour"])
def test_channels_of_a_pixel_are_drawn_with_the_context_correlation(rgb_model, context):
    """Grey noisy context: the coupled draws stay grey, where independent draws paint colour noise.
    Colour noise with independent channels: the coupled draws keep them independent."""
    rng = np.random.default_rng(1)
    noise = 15 * rng.standard_normal((32, 32, 1 if context == "grey" else 3))
    image = np.clip(127 + np.broadcast_to(noise, (32, 32, 3)), 0, 255).astype(np.float32)
    got = {}
    for coupled in (True, False):
        sampler = ox.LearnedSampler(couple_channels=coupled)
        sampler.prepare(rgb_model, image, 8)
        draws_ = sampler.sample(np.full(400, 12, np.int64), np.full(400, 12, np.int64),
                                np.arange(400, dtype=np.uint64), 0)
        got[coupled] = np.corrcoef(draws_[..., 0].ravel(), draws_[..., 1].ravel())[0, 1]
        assert sampler.describe()["couple_channels"] is coupled
    assert abs(got[False]) < 0.1
    assert got[True] > 0.95 if context == "grey" else abs(got[True]) < 0.15, got


def test_channel_coupling_is_the_correlation_of_the_known_windows_detail(rgb_model):
    """A A^T at a position equals the channels' correlation of image - 3 x 3 mean (reflected) over
    the 3K x 3K window inside the image, without the K x K centre; an image of one patch (no
    context) gives the identity."""
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (40, 50, 3))
    image[..., 1] = 0.7 * image[..., 0] + 0.3 * image[..., 1]
    sampler = ox.LearnedSampler()
    sampler.prepare(rgb_model, image.astype(np.float32), 8)
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    detail = image - sum(padded[dy:dy + 40, dx:dx + 50] for dy in range(3) for dx in range(3)) / 9
    positions = [(3, 30), (0, 0), (32, 42), (16, 20)]
    roots = sampler._coupling(positions)
    for (y, x), root in zip(positions, roots):
        known = np.zeros((40, 50), bool)
        known[max(0, y - 8):y + 16, max(0, x - 8):x + 16] = True
        known[y:y + 8, x:x + 8] = False
        np.testing.assert_allclose(root @ root.T, np.corrcoef(detail[known].T), atol=1e-5)
    sampler.prepare(rgb_model, image[:8, :8].astype(np.float32), 8)
    np.testing.assert_array_equal(sampler._coupling([(0, 0)])[0], np.eye(3))


def test_draws_are_keyed_by_seed_and_stream(rgb_model):
    image, _ = planted()
    a, b = draws(rgb_model, image, 5, 7, n=6, seed=1), draws(rgb_model, image, 5, 7, n=6, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, draws(rgb_model, image, 5, 7, n=6, seed=2))
    assert not np.array_equal(a[0], a[1])  # streams differ


def test_pmi_with_the_learned_sampler_finds_the_planted_pattern_for_any_batch_size():
    image, (y0, x0, y1, x1) = planted()
    maps = []
    for batch_size in (5, 64):
        model = ox.Model(detector_model(), preset="unit", progress=False, batch_size=batch_size)
        result = ox.PMI(model).attribute(image, target=[1], patch=8, stride=2, samples=4, mode="dense",
                                         sampler="learned", seed=3)
        maps.append(result[1])
        assert result.params["sampler"]["name"] == "learned"
    np.testing.assert_array_equal(maps[0], maps[1])
    pmi = maps[0]
    peak = np.unravel_index(np.argmax(pmi), pmi.shape)
    assert y0 - 4 <= peak[0] < y1 + 4 and x0 - 4 <= peak[1] < x1 + 4, peak
    assert pmi[y0:y1, x0:x1].mean() > 0.1


def test_learned_sampler_refuses_other_patches_and_channel_counts(rgb_model):
    image, _ = planted()
    with pytest.raises(ox.OnnxplainError, match=r"patch=8 \(CLI: --patch 8\)"):
        ox.PMI(rgb_model).attribute(image, target=[1], patch=4, sampler="learned")
    from test_channels_sampling import grey_model

    grey = grey_model()
    with pytest.raises(ox.OnnxplainError, match="sampler='gaussian'"):
        ox.IG(grey).attribute(np.full((32, 32, 1), 100.0, np.float32), patch=8, sampler="learned")


def test_cli_pmi_with_the_learned_sampler(tmp_path):
    import cv2

    model_path = tmp_path / "detector.onnx"
    model_path.write_bytes(detector_model())
    image, _ = planted()
    cv2.imwrite(str(tmp_path / "img.png"), cv2.cvtColor(image.round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    command = ["explain", str(model_path), str(tmp_path / "img.png"), "--method", "pmi", "--preset", "unit",
               "--target", "top", "--sampler", "learned", "--budget", "60", "--quiet"]
    assert main(command + ["--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "result.json").read_text())
    assert record["params"]["sampler"]["name"] == "learned" and record["evaluations"] <= 61
    assert main(command + ["--patch", "4", "--out", str(tmp_path / "bad")]) == 2


def test_held_out_windows_are_what_the_product_feeds(rgb_model):
    tool = training_tool()
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3)).astype(np.uint8)
    sampler = OnnxSampler(LEARNED_SAMPLER)
    sampler.prepare(rgb_model, image.astype(np.float32), 8)
    for y, x in [(0, 0), (24, 32), (10, 3), (5, 20)]:
        window, target = tool.window_at(image, y, x, mirror=True)
        np.testing.assert_allclose(window, sampler._windows([(y, x)])[0], rtol=1e-6)
        np.testing.assert_array_equal(target, image[y:y + 8, x:x + 8].transpose(2, 0, 1))
    inside = tool.window_at(image, 12, 16)[0]  # training windows: blanked outside, the same inside
    np.testing.assert_allclose(inside, sampler._windows([(12, 16)])[0], rtol=1e-6)


def test_a_flat_image_is_drawn_alike_at_its_border_and_inside(rgb_model):
    # outside the image the network sees the image mirrored, so a flat image's border patches are
    # drawn as flat as its inner ones (blanked, the network drew them darker and far noisier)
    sampler = OnnxSampler(LEARNED_SAMPLER)
    sampler.prepare(rgb_model, np.full((48, 48, 3), 127.0, np.float32), 8)
    drawn = {p: sampler.sample(np.full(64, p[0]), np.full(64, p[1]), np.arange(64, dtype=np.uint64), 3)
             for p in [(0, 0), (20, 20), (40, 0)]}
    assert np.mean(drawn[(20, 20)] != 127) < 0.02
    for corner in [(0, 0), (40, 0)]:
        np.testing.assert_array_equal(drawn[corner], drawn[(20, 20)])


def test_training_is_seeded_resumable_and_exports_the_trained_distribution(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    tool = training_tool()

    def args(out, resume=False):
        return Namespace(steps=4, batch=8, width=8, lr=2e-3, views=6, seed=0, threads=1, every=2, out=str(out),
                         resume=resume)

    straight = tool.train(args(tmp_path / "a"))
    batches = tool.windows_of

    def killed_at_step_3(*a):
        if killed_at_step_3.calls == 2:
            raise KeyboardInterrupt
        killed_at_step_3.calls += 1
        return batches(*a)

    killed_at_step_3.calls = 0
    monkeypatch.setattr(tool, "windows_of", killed_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        tool.train(args(tmp_path / "b"))
    monkeypatch.setattr(tool, "windows_of", batches)
    resumed = tool.train(args(tmp_path / "b", resume=True))
    a, b = (torch.load(p.parent / "checkpoint.pt", weights_only=False)["net"] for p in (straight, resumed))
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # the exported graph gives the trained network's mixtures
    net = tool.build_network(8)
    net.load_state_dict(a)
    net.eval()
    inputs, _ = tool.windows_of([np.random.default_rng(1).integers(0, 256, (40, 40, 3)).astype(np.uint8)],
                                [0, 0, 0], np.random.default_rng(2))
    with torch.no_grad():
        trained = net(torch.from_numpy(inputs)).permute(0, 1, 3, 4, 2).numpy()
    np.testing.assert_allclose(OnnxSampler(straight).session.run(None, {"window": inputs})[0], trained, rtol=1e-4,
                               atol=1e-4)


def test_auto_takes_the_learned_sampler_where_it_applies(rgb_model):
    image, _ = planted()

    def chosen(model, picture, **options):
        result = ox.IG(model).attribute(picture, stride=4, mode="budgeted", budget=20, **options)
        return result.params["sampler"]["name"]

    assert chosen(rgb_model, image, patch=8) == "learned"
    assert chosen(rgb_model, image, patch=4) == "gaussian"
    assert chosen(rgb_model, image, patch=8, references=[image]) == "gaussian"
    from test_channels_sampling import grey_model

    assert chosen(grey_model(), np.full((32, 32, 1), 100.0, np.float32), patch=8) == "gaussian"


def test_gaussian_noise_scale_is_the_scale_of_its_draws(rgb_model):
    """noise_scale (used by the training tool's held-out check) is the factor the core applies."""
    rng = np.random.default_rng(3)
    image = np.clip(128 + rng.normal(0, 10, (32, 32, 3)), 0, 255).astype(np.float32)
    image[:, 16:] = np.clip(128 + rng.normal(0, 30, (32, 16, 3)), 0, 255)
    sampler = ox.GaussianSampler()
    sampler.prepare(rgb_model, image, 4)
    for y, x in [(6, 4), (6, 22)]:
        n = 3000
        drawn = sampler.sample(np.full(n, y, np.int64), np.full(n, x, np.int64), np.arange(n, dtype=np.uint64), 1)
        want = np.sqrt(np.diag(sampler.conditional(y, x)[1])) * sampler.noise_scale(y, x)
        assert abs(np.median(drawn.reshape(n, -1).std(axis=0) / want) - 1) < 0.05
    assert sampler.noise_scale(6, 22) > 2 * sampler.noise_scale(6, 4)


def test_training_refuses_too_few_steps_before_any_work(monkeypatch, capsys):
    tool = training_tool()
    monkeypatch.setattr(tool, "train", lambda args: pytest.fail("trained"))
    monkeypatch.setattr("sys.argv", ["train_patch_sampler.py", "--steps", "20"])
    with pytest.raises(SystemExit) as exit_info:
        tool.main()
    assert exit_info.value.code == 2
    assert "--steps must be at least 40: the one-cycle schedule warms up over 5% of them" in capsys.readouterr().err
