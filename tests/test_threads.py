"""One Model shared by threads: each result counts only its own work, maps equal sequential runs."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import onnxplain as ox
from onnxplain import demo, fidelity


def jobs():
    images = [demo.make_demo_image(i % 3, seed=60 + i)[0] for i in range(6)]
    return [(ox.RISE, images[i], {"n_masks": 96 + 32 * i, "seed": i}) if i % 2 else
            (ox.Occlusion, images[i], {"window": 8, "stride": 4 + i % 3}) for i in range(6)]


def explain(model, job):
    explainer, image, options = job
    return explainer(model).attribute(image, **options)


def test_threads_sharing_a_model_get_sequential_results_and_exact_counts():
    sequential_model = ox.Model(demo.demo_model_path(), preset="unit", batch_size=16, progress=False)
    expected = [explain(sequential_model, job) for job in jobs()]
    shared = ox.Model(demo.demo_model_path(), preset="unit", batch_size=16, progress=False)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: explain(shared, job), jobs()))
    for got, want in zip(results, expected):
        assert got.targets == want.targets
        for t in want.targets:
            np.testing.assert_array_equal(got[t], want[t])
        assert got.evaluations == want.evaluations  # its own evaluations only
    figures = sum((r.fidelity or {}).get("evaluations", 0) for r in expected)  # counted apart, on the model too
    assert figures > 0
    assert shared.evaluations == sequential_model.evaluations == sum(r.evaluations for r in expected) + figures


def test_fidelity_counts_its_own_evaluations_on_a_shared_model():
    model = ox.Model(demo.demo_model_path(), preset="unit", batch_size=8, progress=False)
    image, _ = demo.make_demo_image(0, seed=3)
    attribution = ox.Occlusion(model).attribute(image, window=8, stride=8)[0]
    fractions = [0.0, 0.25, 0.5, 0.75]
    with ThreadPoolExecutor(max_workers=3) as pool:
        curves = list(pool.map(lambda _: fidelity.mif_lif(model, image, attribution, fractions=fractions), range(3)))
    for c in curves:
        assert c.evaluations == 1 + 2 * len(fractions)
        np.testing.assert_array_equal(c.curves["mif"], curves[0].curves["mif"])


def test_overlapped_building_gives_the_same_maps():
    """With the model on an accelerator the next batch is built while the current one runs (two
    buffers, one builder thread); forced here on the CPU, the maps are those built in turn."""
    image, _ = demo.make_demo_image(2, seed=21)
    maps = {}
    for overlap in (False, True):
        model = ox.Model(demo.demo_model_path(), preset="unit", batch_size=7, progress=False)
        model.overlap = overlap
        rise = ox.RISE(model).attribute(image, n_masks=100, seed=3)
        occlusion = ox.Occlusion(model).attribute(image, window=8, stride=4)
        maps[overlap] = (rise[2], occlusion[2], rise.evaluations + occlusion.evaluations)
    np.testing.assert_array_equal(maps[False][0], maps[True][0])
    np.testing.assert_array_equal(maps[False][1], maps[True][1])
    assert maps[False][2] == maps[True][2] == 101 + 226


def test_auto_batch_size_is_timed_recorded_and_changes_no_map(monkeypatch):
    from onnxplain import model as model_module

    monkeypatch.setattr(model_module, "DRIFT_FRACTION", 0.0)  # one timing round, however loaded the machine
    image, _ = demo.make_demo_image(0, seed=22)
    auto = ox.Model(demo.demo_model_path(), preset="unit", progress=False)
    assert auto.batch_setting == "auto" and auto.batch_tuning is None
    result = ox.RISE(auto).attribute(image, n_masks=1000, seed=5)  # timing takes at most 635 evaluations
    tuning = auto.batch_tuning
    assert set(tuning["images_per_second"]) == {"1", "2", "4", "8", "16", "32", "64"}
    assert auto.batch_size == tuning["chosen"] and str(tuning["chosen"]) in tuning["images_per_second"]
    assert result.record()["model"]["batch"] == {"size": auto.batch_size, "setting": "auto", "tuning": tuning,
                                                 "overlap": False}
    fixed = ox.Model(demo.demo_model_path(), preset="unit", batch_size=64, progress=False)
    np.testing.assert_array_equal(result[0], ox.RISE(fixed).attribute(image, n_masks=1000, seed=5)[0])
    # the buffer cap limits the sizes timed: one 64 x 64 x 3 float32 input is 48 KiB
    capped = ox.Model(demo.demo_model_path(), preset="unit", batch_memory=8 * 49152, progress=False)
    assert capped.batch_size == 8 and capped.tuning_batch() == 1


def test_model_load_does_not_import_onnx():
    """The graph is read on first use, so loading a model stays close to a bare session."""
    import subprocess
    import sys

    code = ("import sys, onnxplain as ox; from onnxplain import demo; "
            "m = ox.Model(demo.demo_model_path(), preset='unit'); assert 'onnx' not in sys.modules; "
            "m.predict(demo.make_demo_image(0, seed=1)[0]); assert 'onnx' in sys.modules; print(m.output_kind)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "logits"


def test_auto_batch_size_times_contenders_longer_and_again_when_the_machine_changes():
    from onnxplain import model as model_module

    auto = ox.Model(demo.demo_model_path(), preset="unit", progress=False)
    sizes = [1, 2, 4, 8, 16, 32, 64]
    for size in sizes:  # 8 runs at 200 images/s, every other size at 100
        for _ in range(model_module.TUNING_REPEATS):
            assert auto.tuning_batch() == size
            auto.record_timing(size, size / (200 if size == 8 else 100))
    for _ in range(model_module.CONTENDER_REPEATS - model_module.TUNING_REPEATS):
        assert auto.tuning_batch() == 8  # the only contender is timed until it has enough timings
        auto.record_timing(8, 8 / 200)
    assert auto.tuning_batch() is None and auto.batch_size == 8 and auto.batch_tuning["rounds"] == 1
    for _ in range(model_module.DRIFT_BATCHES - 1):
        auto.record_timing(8, 8 / 150)
    auto.record_timing(8, 8 / 190)  # noise: no new round
    for _ in range(model_module.DRIFT_BATCHES):
        auto.record_timing(8, 8 / 150)  # the chosen size now runs at 75 %: time the sizes again
    assert auto.tuning_batch() == 1 and auto.batch_size == 64


def test_auto_batch_size_timed_again_mid_run_changes_no_map(monkeypatch):
    from onnxplain import model as model_module

    monkeypatch.setattr(model_module, "DRIFT_FRACTION", 2.0)  # every choice "slows down": time the sizes again
    image, _ = demo.make_demo_image(0, seed=23)
    auto = ox.Model(demo.demo_model_path(), preset="unit", progress=False)
    rise = ox.RISE(auto).attribute(image, n_masks=1500, seed=2)
    assert auto.batch_tuning["rounds"] >= 2
    fixed = ox.Model(demo.demo_model_path(), preset="unit", batch_size=3, progress=False)
    np.testing.assert_array_equal(rise[0], ox.RISE(fixed).attribute(image, n_masks=1500, seed=2)[0])
    assert rise.evaluations == 1501
