"""Command-line front end: `onnxplain explain`, `onnxplain demo`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import demo
from .errors import OnnxplainError
from .image import load_image
from .model import DEFAULT_BATCH_SIZE, Model
from .preprocess import PRESETS
from .reference import RISE, Occlusion

METHODS = {"occlusion": Occlusion, "rise": RISE}


def _parse_target(text: str):
    if text.startswith("top"):
        return text
    try:
        return [int(t) for t in text.split(",")]
    except ValueError:
        raise OnnxplainError(f"--target must be 'top', 'topK' or class ids like 3 or 3,7; got {text!r}") from None


def _method_options(args: argparse.Namespace) -> dict:
    options = {"seed": args.seed, "baseline": args.baseline if args.baseline in ("mean", "blur") else float(args.baseline)}
    if args.method == "occlusion":
        options.update(window=args.window, stride=args.stride)
    elif args.method == "rise":
        options.update(n_masks=args.masks, grid=args.grid, p_keep=args.p_keep)
    return options


def _class_names(path: str | None) -> list[str] | None:
    if path is None:
        return None
    try:
        names = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise OnnxplainError(f"cannot read class names from {path}: {exc}") from None
    if not isinstance(names, list):
        raise OnnxplainError(f"{path} must hold a JSON list of class names")
    return [str(n) for n in names]


def _print_top(top: list[tuple[int, float]], names: list[str] | None) -> None:
    print("top classes:")
    for c, p in top:
        label = f"  {names[c]}" if names and c < len(names) else ""
        print(f"  {c:>5}  p={p:.4f}{label}")


def explain(args: argparse.Namespace) -> int:
    model = Model(args.model, preset=args.preset, output=args.output, batch_size=args.batch_size,
                  progress=not args.quiet)
    image = load_image(args.image, model.input_size)
    result = METHODS[args.method](model).attribute(image, target=_parse_target(args.target), **_method_options(args))
    written = result.save(args.out)
    _print_top(result.top_classes, _class_names(args.labels))
    print(f"{args.method}: targets {result.targets}, {result.evaluations} model evaluations, "
          f"{result.seconds:.2f} s; wrote {len(written)} files to {args.out}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    model = Model(demo.demo_model_path(), preset="unit", output="logits", progress=not args.quiet)
    info = json.loads((demo.demo_model_path().parent / "demo_images.json").read_text())
    out = Path(args.out)
    print(f"demo model: {demo.demo_model_path().name}, classes {demo.DEMO_CLASSES}, input {model.input_size}")
    for entry in info["images"]:
        image = load_image(demo.demo_model_path().parent / entry["file"], model.input_size)
        y0, x0, y1, x1 = entry["box"]
        box_area = (y1 - y0) * (x1 - x0) / (model.input_size[0] * model.input_size[1])
        stem = Path(entry["file"]).stem
        for method, explainer in (("occlusion", Occlusion(model)), ("rise", RISE(model))):
            result = explainer.attribute(image, seed=args.seed)
            target = result.targets[0]
            share = demo.evidence_share(result[target], (y0, x0, y1, x1))
            result.save(out / f"{stem}_{method}")
            print(f"{stem:<18} {method:<9} predicted {demo.DEMO_CLASSES[target]!r} (p={result.top_classes[0][1]:.3f}); "
                  f"{share:6.1%} of the map's mass above its median lies in the planted box ({box_area:.1%} of the image); "
                  f"{result.evaluations} evaluations")
    print(f"maps and overlays written to {out}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onnxplain", description="Explain ONNX image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("explain", help="explain one image")
    ex.add_argument("model", help="path to an .onnx classifier")
    ex.add_argument("image", help="path to an image file")
    ex.add_argument("--method", choices=sorted(METHODS), default="occlusion")
    ex.add_argument("--target", default="top", help="'top', 'topK' or class ids (3 or 3,7)")
    ex.add_argument("--preset", choices=sorted(PRESETS), default="imagenet")
    ex.add_argument("--output", choices=["auto", "logits", "probabilities"], default="auto",
                    help="what the model emits (default: detect)")
    ex.add_argument("--out", default="onnxplain-out")
    ex.add_argument("--labels", help="JSON list of class names, for printing")
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    ex.add_argument("--baseline", default="mean", help="'mean', 'blur' or a pixel value 0..255")
    ex.add_argument("--window", type=int, help="occlusion window (default H // 8)")
    ex.add_argument("--stride", type=int, help="occlusion stride (default window // 2)")
    ex.add_argument("--masks", type=int, default=2000, help="RISE masks")
    ex.add_argument("--grid", type=int, default=7, help="RISE grid size")
    ex.add_argument("--p-keep", type=float, default=0.5, help="RISE keep probability")
    ex.add_argument("--quiet", action="store_true", help="no progress bar")
    ex.set_defaults(handler=explain)

    dm = sub.add_parser("demo", help="explain the built-in demo model's images")
    dm.add_argument("--out", default="onnxplain-demo")
    dm.add_argument("--seed", type=int, default=0)
    dm.add_argument("--quiet", action="store_true")
    dm.set_defaults(handler=run_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except OnnxplainError as exc:
        print(f"onnxplain: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # e.g. a --baseline that is not a number
        print(f"onnxplain: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
