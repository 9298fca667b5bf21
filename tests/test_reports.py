"""Pictures people read (overlays at the photo's size, colour bars, legends), the HTML reports
(checked in a real browser when one is installed), the fidelity figure on every explanation, and
the CLI's reading aids (--version, --labels, the --preset note, the evaluate table)."""
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import onnxplain as ox
from onnxplain import cli, demo
from onnxplain import fidelity as fd
from helpers import needs_efficientnet
from onnxplain.visualize import DIVERGING, SEQUENTIAL, display_size, map_scale, overlay, photo

NAMES = ["red square", "green cross", "blue ring"]


@pytest.fixture(scope="module")
def model():
    return ox.Model(demo.demo_model_path(), preset="unit", output="logits", progress=False)


@pytest.fixture(scope="module")
def image(model):
    return ox.load_image(demo.demo_image_paths()[1], model.input_size)  # green cross


def planted_map(shape=(64, 64)) -> np.ndarray:
    """The demo green cross image's true evidence: 1 on its planted box, 0 elsewhere."""
    entry = json.loads((demo.demo_model_path().parent / "demo_images.json").read_text())["images"][1]
    y0, x0, y1, x1 = entry["box"]
    truth = np.zeros(shape, np.float32)
    truth[y0:y1, x0:x1] = 1
    return truth


def test_scales_follow_one_convention():
    ramp = np.linspace(-0.2, 0.5, 64 * 64, dtype=np.float32).reshape(64, 64)
    occlusion = map_scale("occlusion", ramp, probability=0.8)
    assert (occlusion.kind, occlusion.low, occlusion.high) == (DIVERGING, -0.8, 0.8)  # fixed: +-p(class)
    rise = map_scale("rise", np.abs(ramp), probability=0.8)
    assert (rise.kind, rise.low, rise.high) == (SEQUENTIAL, 0.0, 0.8)
    ig = map_scale("ig", np.abs(ramp))
    assert ig.kind == SEQUENTIAL and ig.high == pytest.approx(0.5) and "nats" in ig.units
    pmi = map_scale("pmi", np.abs(ramp), signed=True)  # sign carries meaning even when all positive
    assert pmi.kind == DIVERGING and pmi.high == pytest.approx(0.5)
    assert map_scale("custom", ramp).kind == DIVERGING and "centred on 0" in map_scale("custom", ramp).legend()
    np.testing.assert_allclose(occlusion.strength(np.array([-2.0, 0.0, 0.4])), [-1.0, 0.0, 0.5])


def test_logit_maps_get_no_probability_limits(model, image, monkeypatch):
    from onnxplain import result as result_module

    scales = []
    monkeypatch.setattr(result_module, "map_scale", lambda *args: scales.append(map_scale(*args)) or scales[-1])
    result = ox.Occlusion(model, fidelity=None).attribute(image, scores="logits")
    assert result.params["scores"] == "logits" and list(result.pictures()) == ["occlusion_1.png"]
    assert scales[0].high == pytest.approx(np.abs(result[1]).max()) and "logits" in scales[0].units  # real limits
    ox.Occlusion(model, fidelity=None).attribute(image).pictures()
    assert scales[1].high == pytest.approx(result.top_classes[0][1])  # probabilities: fixed at p(class)


def test_overlay_at_the_photos_size_shows_the_photo_where_the_map_is_zero():
    photo_rgb = np.random.default_rng(0).uniform(0, 255, (90, 150, 3)).astype(np.float32)  # not square
    attribution = np.zeros((64, 64), np.float32)
    attribution[:, :32] = 1.0  # left half of the model-resolution map
    picture = overlay(photo_rgb, attribution, map_scale("custom", attribution))
    assert picture.shape[:2] == display_size((90, 150)) == (270, 450)  # the photo's aspect, not the model's
    grey = (photo(photo_rgb).astype(np.float64) @ [0.299, 0.587, 0.114])
    right, left = picture[:, 300:].astype(np.float64), picture[:, :150].astype(np.float64)
    assert np.abs(right - grey[:, 300:, None]).max() <= 1  # map 0: the photo (in grey)
    assert np.abs(left - grey[:, :150, None]).mean() > 20  # map at its top: coloured


def test_save_writes_input_pictures_named_by_class_and_a_report(model, image, tmp_path):
    result = ox.Occlusion(model).attribute(image, target=[1, 0])
    result.names = NAMES
    original = cv2.resize(image, (150, 90))  # the photo as the user had it: 150 wide, 90 high
    written = {p.name for p in result.save(tmp_path, original=original)}
    assert {"occlusion_1.npy", "occlusion_0.npy", "occlusion_1_green_cross.png", "occlusion_0_red_square.png",
            "input.png", "result.json", "report.html"} == written
    assert cv2.imread(str(tmp_path / "input.png")).shape == (270, 450, 3)
    picture = cv2.imread(str(tmp_path / "occlusion_1_green_cross.png"))
    assert picture.shape[1] == 450 and picture.shape[0] > 270  # plus title, colour bar and legend
    assert np.load(tmp_path / "occlusion_1.npy").shape == (64, 64)  # the contract: model resolution
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["top_classes"][0] == {"class": 1, "probability": pytest.approx(result.top_classes[0][1]),
                                        "name": "green cross"}
    assert record["pictures"] == {"1": "occlusion_1_green_cross.png", "0": "occlusion_0_red_square.png"}
    html = (tmp_path / "report.html").read_text()
    assert html.count("<img ") == 3 and "green cross (1)" in html and "Fidelity figure" in html
    assert not re.search(r'src="(?!data:image/png;base64,)', html)  # self-contained
    notebook = result._repr_html_()  # the same, at model resolution
    assert notebook.count("data:image/png;base64,") == 3 and "Fidelity figure" in notebook and "<html" not in notebook


def test_causal_pictures_outline_each_explanation_with_a_legend(model, image, tmp_path):
    result = ox.Causal(model).attribute(image, criterion="confidence", max_explanations=2, seed=0)
    result.names = NAMES
    result.save(tmp_path)
    composite = tmp_path / "multi_1_green_cross_explanations.png"
    assert composite.exists() and (tmp_path / "multi_1_explanation_1.npy").exists()
    picture = cv2.cvtColor(cv2.imread(str(composite)), cv2.COLOR_BGR2RGB)
    first = np.array([230, 25, 75])  # the first explanation's outline colour, also its legend swatch
    rows = np.nonzero(np.all(picture == first, axis=2).any(axis=1))[0]
    assert rows.size and rows.max() > display_size((64, 64))[0] + 20  # a swatch below the picture
    assert "multi_1_green_cross_explanations.png" in result._repr_html_()


def test_fidelity_figure_ranks_truth_above_its_negation_and_random(model, image):
    truth = planted_map()
    good, _ = fd.quick_fidelity(model, image, truth, 3, target=1)
    bad, _ = fd.quick_fidelity(model, image, -truth, 3, target=1)
    floor, curves = fd.quick_fidelity(model, image, ox.RandomMap(model).attribute(image), 3, target=1)
    assert good > 0.3 and bad < -0.3 and bad < floor < good and curves.evaluations == 7
    full = fd.mif_lif(model, image, truth, target=1).fidelity
    assert abs(good - full) < 0.15


def test_fidelity_figure_budget_switch_and_deadline(model, image):
    with_figure = ox.Occlusion(model).attribute(image)
    without = ox.Occlusion(model, fidelity=None).attribute(image)
    np.testing.assert_array_equal(with_figure[1], without[1])
    assert with_figure.evaluations == without.evaluations == 226 and without.fidelity is None
    figure = with_figure.fidelity
    assert figure["evaluations"] <= 0.05 * with_figure.evaluations and len(figure["fractions"]) == 5
    assert figure["estimate"] > 0.3 and json.loads(json.dumps(with_figure.record()))["fidelity"] == figure
    assert "skipped" in ox.RandomMap(model).attribute(image).fidelity  # one evaluation affords no steps
    assert "deadline" in ox.Occlusion(model).attribute(image, deadline=60).fidelity["skipped"]
    with pytest.raises(ox.OnnxplainError, match="fidelity"):
        ox.Occlusion(model, fidelity=2)


def test_evaluate_never_computes_the_figure(model, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the fidelity figure ran inside evaluate")

    monkeypatch.setattr(fd, "fidelity_figure", refuse)
    report = ox.evaluate(model, demo.demo_image_paths()[:1], ["occlusion"], ["mif-lif"], tmp_path, progress=False)
    assert report.summary[0]["images"] == 1 and not report.failed


def write_images(folder: Path) -> Path:
    folder.mkdir()
    for path in demo.demo_image_paths():
        shutil.copy(path, folder / path.name)
    (folder / "zz_broken.png").write_text("not an image")  # after a readable first image
    return folder


def test_cli_evaluate_labels_label_map_table_and_report(tmp_path, capsys):
    images = write_images(tmp_path / "images")
    (tmp_path / "names.json").write_text(json.dumps(NAMES))
    (tmp_path / "map.json").write_text(json.dumps({"demo_red_square.png": 0}))
    code = cli.main(["evaluate", str(demo.demo_model_path()), str(images), "--preset", "unit", "--methods",
                     "occlusion,random", "--metrics", "mif-lif,deletion", "--labels", str(tmp_path / "names.json"),
                     "--label-map", str(tmp_path / "map.json"), "--out", str(tmp_path / "run"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2, captured.err  # an image failed (the others are reported)
    table, failures = captured.out.split("\n1 of 4 images failed")
    assert table.count("\n") >= 6 and max(len(line) for line in table.splitlines()) <= 100
    assert "zz_broken.png: cannot read" in failures and "4 images (1 failed, listed above)" in failures
    assert "better, deletion: lower AUC" in captured.out and "better, mif-lif" in captured.out
    html = (tmp_path / "run" / "report.html").read_text()
    assert "zz_broken.png" in html and "green cross (1)" in html and "higher AUC LIF" in html
    assert html.count("<img ") == 2 + 3 * 3  # two mean-curve charts; per image: input + two maps
    assert json.loads((tmp_path / "run" / "config.json").read_text())["labels"] == {"demo_red_square.png": 0}


def test_cli_version_preset_note_and_no_progress_when_piped(tmp_path, capsys):
    assert cli.main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"onnxplain {ox.__version__}"
    args = [str(demo.demo_model_path()), str(demo.demo_image_paths()[0]), "--out", str(tmp_path), "--method", "rise",
            "--masks", "256"]
    assert cli.main(["explain", *args]) == 0  # no --preset, no --quiet, stderr not a terminal
    err = capsys.readouterr().err
    assert "--preset not given, using imagenet" in err and "efficientnet-lite" in err
    assert "img/s" not in err and "%|" not in err  # no progress bar in piped output
    assert cli.main(["explain", *args, "--preset", "unit", "--fidelity", "0"]) == 0
    assert "--preset" not in capsys.readouterr().err
    assert json.loads((tmp_path / "result.json").read_text())["fidelity"] is None


def browser():
    """A headless Debian chromium driven through /usr/bin/chromedriver (nothing downloaded), or a skip."""
    webdriver = pytest.importorskip("selenium.webdriver")
    if not Path("/usr/bin/chromedriver").exists():
        pytest.skip("no /usr/bin/chromedriver (Debian's chromium-driver)")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def test_reports_render_in_a_real_browser(model, image, tmp_path):
    driver = browser()
    try:
        ox.Occlusion(model).attribute(image).save(tmp_path / "explain")
        pair = ox.make_pair(model, *(ox.load_image(p, (64, 64)) for p in demo.demo_image_paths()[:2]))
        from onnxplain import counterfactual as cf

        cf.save_results(tmp_path / "pair", pair, cf.explain_pair(model, pair, ["d-occlusion", "residual"]), NAMES)
        ox.evaluate(model, write_images(tmp_path / "images"), ["occlusion", "random"], ["mif-lif"], tmp_path / "eval",
                    progress=False)
        for report in ("explain", "pair", "eval"):
            driver.get((tmp_path / report / "report.html").as_uri())
            widths = driver.execute_script("return Array.from(document.images).map(i => i.complete && i.naturalWidth)")
            assert widths and all(w > 0 for w in widths), (report, widths)
            severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert not severe, (report, severe)
    finally:
        driver.quit()


@needs_efficientnet
def test_readme_python_example_runs_on_the_shipped_photo(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "chelsea_path()" in code and "n_masks=1000" in code
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the README runs from the repository root
    namespace = {}
    exec(code.replace("n_masks=1000", "n_masks=64").replace('"out/"', repr(str(tmp_path))), namespace)
    result = namespace["result"]
    assert "cat" in result.names[result.targets[0]].lower() or result.targets[0] in range(281, 294)
    assert (tmp_path / "report.html").exists() and (tmp_path / "input.png").exists()
    assert cv2.imread(str(tmp_path / "input.png")).shape[:2] == (300, 451)  # the photo's own size


@pytest.mark.parametrize("shape, expected", [((64, 64), (256, 256)), ((90, 150), (270, 450)), ((300, 20), (1500, 100)),
                                             ((20, 20000), (2, 1600)), ((4000, 3000), (1600, 1200))])
def test_display_size_keeps_both_sides_bounded(shape, expected):
    assert display_size(shape) == expected
