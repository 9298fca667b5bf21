"""Build the onnxplain demo classifier analytically (no training) and its sample images.

    python tools/build_demo_model.py [OUT_DIR]     # default: python/onnxplain/data

Writes ``demo.onnx``, one ``demo_<class>.png`` per class and ``demo_images.json``.
The output is deterministic: running it twice gives byte-identical files.

Architecture (input ``image`` [N,3,64,64] = RGB pixel/255, output ``logits`` [N,3]):
  Conv 1x1 (3->3) colour-opponent channels c - mean(other two) - 0.3, Relu
  Conv 10x10 group=3 matched shape filters (+1/n on the pattern, -1/n off it), bias -0.05, Relu
  GlobalMaxPool, Flatten, Gemm (12 * identity) -> logits
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "python" / "onnxplain" / "data"

OPSET = 17
IR_VERSION = 8
COLOUR_THRESHOLD = 0.3
SHAPE_BIAS = -0.05
LOGIT_SCALE = 12.0
IMAGE_SEEDS = (11, 22, 33)  # one fixed seed per class for the sample images


def _load_demo():
    """Load python/onnxplain/demo.py by path (independent of the package __init__)."""
    path = ROOT / "python" / "onnxplain" / "demo.py"
    spec = importlib.util.spec_from_file_location("_onnxplain_demo_build", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_model(demo) -> onnx.ModelProto:
    ncls = len(demo.DEMO_CLASSES)
    p = demo.PATTERN_SIZE

    # Layer 1: colour opponents, channel c = x_c - mean(others) - threshold.
    w1 = np.full((ncls, 3, 1, 1), -0.5, dtype=np.float32)
    for c in range(ncls):
        w1[c, c, 0, 0] = 1.0
    b1 = np.full((ncls,), -COLOUR_THRESHOLD, dtype=np.float32)

    # Layer 2: matched shape filter per colour channel (depthwise).
    w2 = np.zeros((ncls, 1, p, p), dtype=np.float32)
    for c in range(ncls):
        m = demo.pattern_mask(c)
        n = float(m.sum())
        w2[c, 0] = np.where(m, 1.0 / n, -1.0 / n).astype(np.float32)
    b2 = np.full((ncls,), SHAPE_BIAS, dtype=np.float32)

    w3 = (LOGIT_SCALE * np.eye(ncls)).astype(np.float32)
    b3 = np.zeros((ncls,), dtype=np.float32)

    inits = [
        numpy_helper.from_array(w1, "colour.weight"),
        numpy_helper.from_array(b1, "colour.bias"),
        numpy_helper.from_array(w2, "shape.weight"),
        numpy_helper.from_array(b2, "shape.bias"),
        numpy_helper.from_array(w3, "fc.weight"),
        numpy_helper.from_array(b3, "fc.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "colour.weight", "colour.bias"], ["c1"],
                         name="colour_conv", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="colour_relu"),
        helper.make_node("Conv", ["r1", "shape.weight", "shape.bias"], ["c2"],
                         name="shape_conv", kernel_shape=[p, p], group=ncls),
        helper.make_node("Relu", ["c2"], ["r2"], name="shape_relu"),
        helper.make_node("GlobalMaxPool", ["r2"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["feat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["feat", "fc.weight", "fc.bias"], ["logits"],
                         name="fc", transB=1),
    ]
    size = demo.DEMO_SIZE
    graph = helper.make_graph(
        nodes,
        "onnxplain_demo",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", ncls])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="onnxplain.tools.build_demo_model",
        producer_version="1",
        doc_string="onnxplain demo classifier: " + ", ".join(demo.DEMO_CLASSES)
        + ". Input RGB pixel/255 NCHW; output pre-softmax logits.",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def build(out_dir: str | Path = DEFAULT_OUT) -> list[Path]:
    """Write demo.onnx, the sample PNGs and demo_images.json into ``out_dir``."""
    demo = _load_demo()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    model_path = out / "demo.onnx"
    model_path.write_bytes(make_model(demo).SerializeToString(deterministic=True))
    written.append(model_path)

    records = []
    for cls, name in enumerate(demo.DEMO_CLASSES):
        img, box = demo.make_demo_image(cls, seed=IMAGE_SEEDS[cls])
        fname = f"demo_{name.replace(' ', '_')}.png"
        rgb8 = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb8, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"could not encode {fname}")
        (out / fname).write_bytes(buf.tobytes())
        written.append(out / fname)
        records.append({"file": fname, "class": cls, "class_name": name,
                        "box": [int(v) for v in box], "seed": IMAGE_SEEDS[cls]})

    json_path = out / "demo_images.json"
    json_path.write_text(json.dumps({"classes": demo.DEMO_CLASSES, "box_format": "y0,x0,y1,x1 exclusive",
                                     "images": records}, indent=2) + "\n", encoding="utf-8")
    written.append(json_path)
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else DEFAULT_OUT
    for path in build(out):
        print(f"{path}  ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
