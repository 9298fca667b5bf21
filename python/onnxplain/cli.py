"""Command-line front end: `onnxplain explain`, `onnxplain demo`, `onnxplain evaluate`."""
from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from . import demo
from .causal import Causal
from .errors import OnnxplainError, OnnxplainWarning
from .explainer import SEED_LIMIT
from .image import DEFAULT_MAX_PIXELS, load_image
from .information import IG, MODES, SAMPLERS, OnnxSampler
from .model import DEFAULT_BATCH_SIZE, OUTPUT_KINDS, Model
from .preprocess import PRESETS
from .reference import RISE, Occlusion
from .registry import accepted, get_method, method_names


def _parse_target(text: str):
    if text.startswith("top"):
        return text
    try:
        return [int(t) for t in text.split(",")]
    except ValueError:
        raise OnnxplainError(f"--target must be 'top', 'topK' or class ids like 3 or 3,7; got {text!r}") from None


def _method_options(args: argparse.Namespace, explainer=None) -> dict:
    """The explain command's options for args.method from its flags; a method without flags of
    its own (one registered by a user, random) gets seed and --baseline if its `attribute`
    takes them, over its registered defaults."""
    options = {"seed": args.seed, "baseline": args.baseline}
    if args.method == "multi":
        options["mask_value"] = options.pop("baseline")
        options.update(criterion=args.criterion, fraction=args.fraction, iterations=args.iterations,
                       max_explanations=args.max_explanations, max_overlap=args.max_overlap)
    elif args.method == "occlusion":
        options.update(window=args.window, stride=args.stride)
    elif args.method == "rise":
        options.update(n_masks=args.masks, grid=args.grid, p_keep=args.p_keep)
    elif args.method in ("ig", "pmi"):
        del options["baseline"]
        if args.sampler == "onnx" and not args.sampler_model:
            raise OnnxplainError("--sampler onnx needs --sampler-model PATH")
        sampler = OnnxSampler(args.sampler_model) if args.sampler == "onnx" else args.sampler
        options.update(patch=args.patch, stride=args.stride or 1, samples=args.samples, mode=args.mode,
                       budget=args.budget, budget_samples=args.budget_samples, sampler=sampler,
                       frame=args.frame, references=args.reference, noise=args.noise)
    else:
        options = {**get_method(args.method, "input").defaults, **options}
        if explainer is not None:
            options = accepted(options, explainer.attribute)
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


def writable_folder(path: str, flag: str = "--out") -> Path:
    """The output folder `path`, created if missing, or an error naming `flag` when it cannot be
    written: checked before any work, so a run never fails at its end."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise OnnxplainError(f"{flag} {out} is a file, not a folder; choose another {flag}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise OnnxplainError(f"{flag} {out} cannot be written ({exc.strerror or exc}); choose another {flag}") from None
    return out


def collected_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """The OnnxplainWarnings among `caught`, each once in order, printed as one stderr line each."""
    messages = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, OnnxplainWarning)))
    for message in messages:
        print(f"onnxplain: warning: {message}", file=sys.stderr)
    return messages


def explain(args: argparse.Namespace) -> int:
    writable_folder(args.out)
    names = _class_names(args.labels)
    target = _parse_target(args.target) if args.target is not None else ("top3" if args.method == "pmi" else "top")
    model = open_model(args, progress=not args.quiet)
    explainer = get_method(args.method, "input").factory(model)
    options = _method_options(args, explainer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OnnxplainWarning)
        image = load_image(args.image, model.input_size, model.channels, max_pixels=args.max_pixels)
        result = explainer.attribute(image, target=target, **options)
    result.warnings = collected_warnings(caught)
    written = result.save(args.out)
    _print_top(result.top_classes, names)
    print(f"{args.method}: targets {result.targets}, {result.evaluations} model evaluations, "
          f"{result.seconds:.2f} s; wrote {len(written)} files to {args.out}")
    for i, e in enumerate(getattr(result, "explanations", []), 1):
        print(f"  explanation {i}: {e.area} pixels ({e.area / e.mask.size:.1%}), p(target) alone {e.probability:.3f}, "
              f"{e.evaluations} evaluations")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    out = writable_folder(args.out)
    model = Model(demo.demo_model_path(), preset="unit", output="logits", progress=not args.quiet)
    info = json.loads((demo.demo_model_path().parent / "demo_images.json").read_text())
    print(f"demo model: {demo.demo_model_path().name}, classes {demo.DEMO_CLASSES}, input {model.input_size}")
    for entry in info["images"]:
        image = load_image(demo.demo_model_path().parent / entry["file"], model.input_size, model.channels)
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


def run_counterfactual(args: argparse.Namespace) -> int:
    from . import counterfactual as cf
    from .visualize import overlay, save_png

    out = writable_folder(args.out)
    model = open_model(args, progress=not args.quiet)
    confidence = None if args.min_confidence < 0 else args.min_confidence
    pair = cf.make_pair(model, args.real, args.counterfactual, generator=args.generator, references=args.reference,
                        class_a=args.class_a, class_b=args.class_b, min_confidence=confidence,
                        generator_range=args.generator_range)
    methods = args.method or cf.METHODS
    results = cf.explain_pair(model, pair, methods, n_thresholds=args.thresholds, seed=args.seed,
                              window=args.window, stride=args.stride, n_masks=args.masks)
    b = pair.class_b
    save_png(out / "real.png", np.clip(pair.real, 0, 255).round().astype(np.uint8))
    save_png(out / "counterfactual.png", np.clip(pair.counterfactual, 0, 255).round().astype(np.uint8))
    record = {"pair": pair.record(), "model": model.describe(), "seed": args.seed, "methods": {}}
    print(f"A = {pair.class_a} (p(A|x_r) = {pair.p_a_real:.3f}), B = {b} (p(B|x_c) = {pair.p_b_counterfactual:.3f}), "
          f"counterfactual: {pair.source['kind']}")
    for method, (result, swap) in results.items():
        np.save(out / f"{method}_{b}.npy", result[b].astype(np.float32))
        save_png(out / f"{method}_{b}.png", overlay(pair.real, result[b]))
        np.save(out / f"{method}_best_mask.npy", swap.best_mask)
        save_png(out / f"{method}_best_hybrid.png", np.clip(swap.best_hybrid, 0, 255).round().astype(np.uint8))
        save_png(out / f"{method}_curve.png", cf.plot_curves({method: swap.curve}))
        record["methods"][method] = {
            **swap.record(), "params": result.params, "map_evaluations": result.evaluations,
            "map_seconds": round(result.seconds, 4),
            "files": {"map": f"{method}_{b}.npy", "best_mask": f"{method}_best_mask.npy",
                      "best_hybrid": f"{method}_best_hybrid.png", "curve": f"{method}_curve.png"}}
        best = swap.best
        print(f"{method:<12} DAC {swap.score:.3f}  best: m = {best['size']:.3f}, delta = {best['delta']:+.3f}, "
              f"p(B|h) = {best['p_b']:.3f}; {result.evaluations + swap.evaluations} evaluations")
    save_png(out / "dac_curves.png", cf.plot_curves({m: s.curve for m, (_, s) in results.items()}))
    (out / "result.json").write_text(json.dumps(record, indent=2))
    print(f"wrote maps, masks, hybrids, curves and result.json to {out}")
    return 0


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that describe the model, shared by explain, counterfactual and evaluate."""
    group = parser.add_argument_group("model")
    group.add_argument("--preset", choices=sorted(PRESETS), default="imagenet", help="preprocessing (default imagenet)")
    group.add_argument("--output", choices=list(OUTPUT_KINDS), default="auto",
                       help="what the model emits: logits, probabilities (softmax), sigmoid (independent per-class "
                            "probabilities, or p of class 1 for one output column); default: detect")
    group.add_argument("--input-size", type=_pair, metavar="H,W", help="resolution, for models with a dynamic one")
    group.add_argument("--layout", choices=["NCHW", "NHWC"], help="input layout (default: read from the model)")
    group.add_argument("--channels", type=int, help="input channels, for models with a dynamic count")
    group.add_argument("--input-name", help="the image input, when the model has several")
    group.add_argument("--output-name", help="the class-score output, when the model has several")
    group.add_argument("--constant", action="append", metavar="NAME=FILE.npy",
                       help="value of another model input, from a .npy file; repeatable")
    group.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH_SIZE,
                       help="images per model call, or 'auto' (default: timed on the first batches)")


def open_model(args: argparse.Namespace, progress: bool) -> Model:
    """The Model the model flags describe."""
    constants = {}
    for item in args.constant or []:
        name, eq, path = item.partition("=")
        if not (name and eq and path):
            raise OnnxplainError(f"--constant must look like NAME=FILE.npy, got {item!r}")
        try:
            constants[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise OnnxplainError(f"--constant {name}: cannot read {path}: {exc}") from None
    return Model(args.model, preset=args.preset, output=args.output, input_size=args.input_size, layout=args.layout,
                 channels=args.channels, input_name=args.input_name, output_name=args.output_name,
                 constants=constants, batch_size=args.batch_size, progress=progress)


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}") from None


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..2^64-1, got {text!r}")
    return seed


def _baseline(text: str) -> str | float:
    """'mean', 'blur' or a pixel value 0..255."""
    if text in ("mean", "blur"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"expected 'mean', 'blur' or a pixel value 0..255, got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _pair(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W like 224,224, got {text!r}") from None
    return h, w


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _evaluate_options(args: argparse.Namespace) -> tuple[dict, dict]:
    """Method and metric options given on the command line (only those set)."""
    methods: dict[str, dict] = {}
    for key, value in (("window", args.window), ("stride", args.stride)):
        if value is not None:
            methods.setdefault("occlusion", {})[key] = value
    for key, value in (("n_masks", args.masks), ("grid", args.grid), ("p_keep", args.p_keep)):
        if value is not None:
            methods.setdefault("rise", {})[key] = value
    for item in args.option or []:
        name, _, rest = item.partition(".")
        key, eq, text = rest.partition("=")
        if not (name and key and eq):
            raise OnnxplainError(f"--option must look like METHOD.KEY=VALUE, got {item!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        methods.setdefault(name, {})[key] = value
    ranked = {"patch": args.patch}
    if args.fractions is not None:
        try:
            ranked["fractions"] = [float(f) for f in _csv(args.fractions)]
        except ValueError:
            raise OnnxplainError(f"--fractions must be numbers like 0,0.1,0.2; got {args.fractions!r}") from None
    curve = {**ranked, "score": args.score} if args.score else dict(ranked)
    metrics = {"mif-lif": {**curve, "perturbation": args.perturbation}, "road": curve,
               "deletion": {"patch": args.patch, "step": args.step}, "insertion": {"patch": args.patch, "step": args.step}}
    return methods, {k: {o: v for o, v in opts.items() if v is not None} for k, opts in metrics.items()}


def run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate

    methods = _csv(args.methods)
    for name in methods:  # before loading anything
        get_method(name, "input")
    writable_folder(args.out)
    labels = None
    if args.labels:
        try:
            labels = {str(k): int(v) for k, v in json.loads(Path(args.labels).read_text()).items()}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise OnnxplainError(f"--labels must be a JSON object image name -> class id: {exc}") from None
    method_options, metric_options = _evaluate_options(args)
    model = open_model(args, progress=False)
    metrics = _csv(args.metrics)
    try:
        report = evaluate(model, args.images, methods, metrics, args.out,
                          method_options=method_options,
                          metric_options={k: v for k, v in metric_options.items() if k in metrics},
                          labels=labels, seed=args.seed, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted; run the same command again to resume from {args.out}", file=sys.stderr)
        return 130
    print(report.table())
    print(f"{report.images} images; records, maps, summary.json and curves_<metric>.png in {report.out}")
    return 0


def _describe(explains: str) -> str:
    """The registered methods of one kind with their one-line descriptions, for --help."""
    return "; ".join(f"{name}: {get_method(name, explains).description}".rstrip(": ")
                     for name in method_names(explains)).replace("%", "%%")


def _default(explainer: type, option: str):
    """The library's default for an explainer option: the CLI never restates it."""
    return inspect.signature(explainer.attribute).parameters[option].default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onnxplain", description="Explain ONNX image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("explain", help="explain one image")
    ex.add_argument("model", help="path to an .onnx classifier")
    ex.add_argument("image", help="path to an image file")
    ex.add_argument("--method", choices=method_names("input"), default="occlusion",
                    help=_describe("input") + " (default occlusion)")
    ex.add_argument("--target", help="'top', 'topK' or class ids (3 or 3,7); default top (pmi: top3)")
    ex.add_argument("--out", default="onnxplain-out")
    ex.add_argument("--labels", help="JSON list of class names, for printing")
    ex.add_argument("--seed", type=_seed, default=0, help="0..2^64-1 (default 0)")
    ex.add_argument("--max-pixels", type=_positive, default=DEFAULT_MAX_PIXELS,
                    help=f"refuse image files with more pixels (default {DEFAULT_MAX_PIXELS:,})")
    add_model_flags(ex)
    ex.add_argument("--baseline", type=_baseline, default="mean", help="'mean', 'blur' or a pixel value 0..255")
    ex.add_argument("--window", type=int, help="occlusion window (default H // 8)")
    ex.add_argument("--stride", type=int, help="occlusion stride (default window // 2); ig/pmi patch grid stride (default 1)")
    ex.add_argument("--masks", type=int, default=_default(RISE, "n_masks"), help="RISE masks")
    ex.add_argument("--grid", type=int, default=_default(RISE, "grid"), help="RISE grid size")
    ex.add_argument("--p-keep", type=float, default=_default(RISE, "p_keep"), help="RISE keep probability")
    ex.add_argument("--patch", type=int, default=_default(IG, "patch"), help="ig/pmi patch side K")
    ex.add_argument("--samples", type=int, default=_default(IG, "samples"), help="ig/pmi samples per patch in dense mode")
    ex.add_argument("--mode", choices=MODES, default=_default(IG, "mode"), help="ig/pmi: budgeted (default) or dense (exact)")
    ex.add_argument("--budget", type=int, default=_default(IG, "budget"), help="ig/pmi budgeted mode: model evaluations")
    ex.add_argument("--budget-samples", type=int, default=_default(IG, "budget_samples"), help="ig/pmi budgeted mode: samples per patch")
    ex.add_argument("--sampler", choices=SAMPLERS + ("onnx",), default=_default(IG, "sampler"), help="ig/pmi patch sampler")
    ex.add_argument("--sampler-model", help="ig/pmi: the .onnx learned sampler for --sampler onnx")
    ex.add_argument("--frame", type=int, default=_default(IG, "frame"), help="ig/pmi gaussian sampler: frame width F")
    ex.add_argument("--reference", help="ig/pmi: image or directory of images to fit/draw patches from")
    ex.add_argument("--noise", type=float, default=_default(IG, "noise"), help="ig/pmi marginal/inpaint samplers: pixel noise sigma")
    ex.add_argument("--criterion", choices=["top1", "confidence"], default=_default(Causal, "criterion"),
                    help="multi: sufficiency test (top-1 class, or p >= fraction of its whole-image value)")
    ex.add_argument("--fraction", type=float, default=_default(Causal, "fraction"), help="multi: the confidence criterion's fraction")
    ex.add_argument("--iterations", type=int, default=_default(Causal, "iterations"), help="multi: random box trees for the responsibility map")
    ex.add_argument("--max-explanations", type=int, default=_default(Causal, "max_explanations"), help="multi: most explanations searched")
    ex.add_argument("--max-overlap", type=float, default=_default(Causal, "max_overlap"), help="multi: largest pairwise Dice kept")
    ex.add_argument("--quiet", action="store_true", help="no progress bar")
    ex.set_defaults(handler=explain)

    dm = sub.add_parser("demo", help="explain the built-in demo model's images")
    dm.add_argument("--out", default="onnxplain-demo")
    dm.add_argument("--seed", type=_seed, default=0)
    dm.add_argument("--quiet", action="store_true")
    dm.set_defaults(handler=run_demo)

    ev = sub.add_parser("evaluate", help="fidelity of attribution methods over a directory of images (resumable)")
    ev.add_argument("model", help="path to an .onnx classifier")
    ev.add_argument("images", help="directory of images")
    ev.add_argument("--methods", default="occlusion,rise,random",
                    help="comma-separated, of: " + ", ".join(method_names("input")) + " (default occlusion,rise,random)")
    ev.add_argument("--metrics", default="mif-lif", help="comma-separated: mif-lif, deletion, insertion, road")
    ev.add_argument("--out", default="onnxplain-eval", help="run directory (an existing run resumes)")
    ev.add_argument("--labels", help="JSON object image file name -> class id (top-1 agreement)")
    ev.add_argument("--seed", type=_seed, default=0)
    add_model_flags(ev)
    ev.add_argument("--window", type=int, help="occlusion window (default H // 8)")
    ev.add_argument("--stride", type=int, help="occlusion stride (default window // 2)")
    ev.add_argument("--masks", type=int, help="RISE masks (default 2000)")
    ev.add_argument("--grid", type=int, help="RISE grid size (default 7)")
    ev.add_argument("--p-keep", type=float, help="RISE keep probability (default 0.5)")
    ev.add_argument("--option", action="append",
                    help="METHOD.KEY=VALUE (JSON value), any registered method, e.g. multi.iterations=4; repeatable")
    ev.add_argument("--fractions", help="mif-lif/road fractions, comma-separated (default 0,0.05,...,0.95)")
    ev.add_argument("--patch", type=int, help="rank patch x patch squares instead of pixels (default 1)")
    ev.add_argument("--perturbation", choices=["mean", "blur", "noise"], help="mif-lif replacement (default mean)")
    ev.add_argument("--score", choices=["ratio", "probability", "logit"], help="mif-lif/road score (default ratio)")
    ev.add_argument("--step", type=int, help="deletion/insertion features per step (default one row)")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(handler=run_evaluate)

    from .counterfactual import GENERATOR_RANGES
    cf = sub.add_parser("counterfactual", help="which regions make REAL class B (of a counterfactual) rather than A")
    cf.add_argument("model", help="path to an .onnx classifier")
    cf.add_argument("real", help="the real image x_r")
    cf.add_argument("counterfactual", nargs="?", help="the counterfactual image x_c (or --generator / --reference)")
    cf.add_argument("--generator", help="image-to-image .onnx generator run on REAL (NCHW float32, see --generator-range)")
    cf.add_argument("--generator-range", choices=sorted(GENERATOR_RANGES), default="0..255")
    cf.add_argument("--reference", help="directory of images: the nearest one classified as B is x_c")
    cf.add_argument("--method", action="append", choices=method_names("pair"),
                    help=_describe("pair") + "; repeat for several (default: all)")
    cf.add_argument("--class-a", type=int, help="default: top-1 class of REAL")
    cf.add_argument("--class-b", type=int, help="default: top-1 class of the counterfactual")
    cf.add_argument("--min-confidence", type=float, default=0.8,
                    help="pair filter p(A|x_r), p(B|x_c) > this (negative: no filter)")
    cf.add_argument("--thresholds", type=int, default=200, help="mask-swap thresholds")
    cf.add_argument("--window", type=int, help="occlusion / D-occlusion / D-PMI window (default H // 8)")
    cf.add_argument("--stride", type=int, help="default window // 2")
    cf.add_argument("--masks", type=int, default=2000, help="RISE / D-RISE masks")
    cf.add_argument("--out", default="onnxplain-counterfactual")
    cf.add_argument("--seed", type=_seed, default=0)
    add_model_flags(cf)
    cf.add_argument("--quiet", action="store_true", help="no progress bar")
    cf.set_defaults(handler=run_counterfactual)
    return parser


def _one_line_warnings(show):
    """A warnings.showwarning that prints an OnnxplainWarning as one stderr line, others as `show` does."""
    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, OnnxplainWarning):
            print(f"onnxplain: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return showwarning


def main(argv: list[str] | None = None) -> int:
    """Runs one command and returns its exit code: 0 success, 2 bad input (one line on stderr
    naming the problem and the fix), 1 an internal failure (a short message), 130 interrupted."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a bad flag (2, argparse printed which and why)
        return exc.code if isinstance(exc.code, int) else 2
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(warnings.showwarning)
        try:
            return args.handler(args)
        except OnnxplainError as exc:
            print(f"onnxplain: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("onnxplain: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # a bug, not bad input
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            print(f"onnxplain: internal error: {type(exc).__name__}: {first} (please report it with the command)",
                  file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
