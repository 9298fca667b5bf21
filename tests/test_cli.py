"""The command line: file contract, demo, one-line errors with exit code 2."""
import json
import subprocess
import sys

import numpy as np
import pytest

from onnxplain import cli, demo


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "onnxplain.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_explain_writes_contract_files(tmp_path):
    image = demo.demo_image_paths()[1]
    proc = run_cli("explain", demo.demo_model_path(), image, "--method", "rise", "--preset", "unit",
                   "--target", "top2", "--masks", "128", "--seed", "4", "--out", tmp_path, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "top classes" in proc.stdout
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["method"] == "rise" and record["seed"] == 4 and len(record["targets"]) == 2
    assert record["targets"][0] == 1 and record["evaluations"] == 129
    for t in record["targets"]:
        attribution = np.load(tmp_path / f"rise_{t}.npy")
        assert attribution.shape == (64, 64) and attribution.dtype == np.float32
        assert (tmp_path / f"rise_{t}.png").stat().st_size > 0
    assert not [p for p in tmp_path.glob("*.npy") if np.load(p).dtype == bool]


def test_demo_command(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("planted box") == 15  # every input method family on the three images
    assert len(list(tmp_path.glob("demo_*/occlusion_*.npy"))) == 3 and len(list(tmp_path.glob("demo_*/rise_*.png"))) == 3
    assert len(list(tmp_path.glob("*/multi_*_explanations.png"))) == 3 and "DAC" in out
    assert out.rstrip().endswith(f"open {tmp_path / 'report.html'}")
    html = (tmp_path / "report.html").read_text()
    for section in ("ig", "pmi", "multi", "Counterfactual", "Fidelity"):
        assert section in html


@pytest.mark.parametrize("case", ["missing_model", "corrupt_model", "missing_image", "corrupt_image", "bad_target"])
def test_bad_input_one_line_exit_2(tmp_path, case):
    model, image = demo.demo_model_path(), demo.demo_image_paths()[0]
    if case == "missing_model":
        model = tmp_path / "nope.onnx"
    elif case == "corrupt_model":
        model = tmp_path / "bad.onnx"
        model.write_bytes(b"this is not a protobuf" * 10)
    elif case == "missing_image":
        image = tmp_path / "nope.png"
    elif case == "corrupt_image":
        image = tmp_path / "bad.png"
        image.write_text("not an image")
    target = "99" if case == "bad_target" else "top"
    proc = run_cli("explain", model, image, "--preset", "unit", "--target", target, "--out", tmp_path / "o", "--quiet")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("onnxplain: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
