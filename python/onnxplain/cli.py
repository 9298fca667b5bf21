"""Command-line front end: `onnxplain explain`, `demo`, `evaluate`, `counterfactual` and `serve`."""
from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import re
import sys
from collections.abc import Callable
import warnings
from pathlib import Path

import numpy as np

from . import __version__, demo
from .causal import Causal
from .errors import OnnxplainError, OnnxplainWarning, warn
from .explainer import FIDELITY_SHARE, SEED_LIMIT, Explainer
from .image import DEFAULT_MAX_PIXELS, load_image
from .information import IG, MODES, SAMPLERS, OnnxSampler
from .model import DEFAULT_BATCH_SIZE, MODALITIES, OUTPUT_KINDS, Model
from .preprocess import PRESETS
from .reference import RISE
from .result import writable_folder
from .registry import accepted, get_method, method_names
from .tables import N_BACKGROUND, TabularModel, read_table
from .report import fidelity_text
from .visualize import class_label

DEFAULT_PRESET = "imagenet"
LABELS_HELP = "JSON list of class names (index -> name): shown in prints, pictures and reports, and in PNG names"


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
        options.update(patch=args.patch, stride=args.stride or 1, mode=args.mode, budget=args.budget,
                       budget_samples=args.budget_samples, sampler=sampler, references=args.reference, noise=args.noise)
        options.update({k: v for k, v in (("samples", args.samples), ("frame", args.frame)) if v is not None})
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


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, pointing at --help instead of printing the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _check_names(names: list[str] | None, model) -> None:
    """Warns when --labels names a different number of classes than the model has."""
    classes = getattr(model, "num_classes", None)
    if names is not None and classes and len(names) != classes:
        warn(f"--labels has {len(names)} names but the model has {classes} classes: "
             f"{'classes past the list go unnamed' if len(names) < classes else 'the extra names are unused'}; "
             "check that the list is this model's")


def _print_top(top: list[tuple[int, float]], names: list[str] | None) -> None:
    print("top classes:")
    for c, p in top:
        label = f"  {names[c]}" if names and c < len(names) else ""
        print(f"  {c:>5}  p={p:.4f}{label}")


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal (never in piped or redirected output) and without --quiet."""
    return not args.quiet and sys.stderr.isatty()


def _fidelity_share(text: str) -> float:
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"expected a share of the evaluations in 0..1 (0: off), got {text!r}")
    return share


def collected_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """The OnnxplainWarnings among `caught`, each once in order, printed as one stderr line each."""
    messages = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, OnnxplainWarning)))
    for message in messages:
        print(f"onnxplain: warning: {message}", file=sys.stderr)
    return messages


def explain(args: argparse.Namespace) -> int:
    _check_worker_flags(args)
    writable_folder(args.out)
    if args.image is not None and Path(args.image).is_dir():
        return explain_folder(args)
    if args.workers or args.scheduler:
        raise OnnxplainError("--workers and --scheduler spread a directory of images; give a directory, or drop them")
    names = _class_names(args.labels)
    model = open_model(args, progress=_progress(args))
    _check_names(names, model)
    if model.modality in ("series", "text"):
        from .sequential import explain_cli

        return explain_cli(args, model)
    if args.image is None:
        raise OnnxplainError("give the input file after the model (IMAGE; --text only for text models)")
    if isinstance(model, TabularModel):
        return explain_row(args, model, names)
    target = _parse_target(args.target) if args.target is not None else ("top3" if args.method == "pmi" else "top")
    explainer = get_method(args.method, "input").factory(model)
    if isinstance(explainer, Explainer):
        explainer.fidelity = args.fidelity or None
    options = _method_options(args, explainer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OnnxplainWarning)
        image = load_image(args.image, model.input_size, model.channels, max_pixels=args.max_pixels)
        result = explainer.attribute(image, target=target, **options)
    result.warnings = collected_warnings(caught)
    result.names = names
    written = result.save(args.out, original=args.image)
    _print_top(result.top_classes, names)
    print(f"{args.method}: targets {result.targets}, {result.evaluations} model evaluations, "
          f"{result.seconds:.2f} s; wrote {len(written)} files to {args.out}")
    for i, e in enumerate(getattr(result, "explanations", []), 1):
        print(f"  explanation {i}: {e.area} pixels ({e.area / e.mask.size:.1%}), p(target) alone {e.probability:.3f}, "
              f"{e.evaluations} evaluations")
    print(fidelity_text(result.fidelity, names))
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0


def explain_folder(args: argparse.Namespace) -> int:
    """`onnxplain explain MODEL DIR`: every image of DIR into --out/<image file name>/."""
    from .evaluation import explain_folder as explain_all
    from .image import image_files

    paths = image_files(args.image)  # before loading anything
    model = open_model(args, progress=False)
    target = _parse_target(args.target) if args.target is not None else ("top3" if args.method == "pmi" else "top")
    options = _method_options(args, get_method(args.method, "input").factory(model))
    with _executor(args) as executor:
        records, failed = explain_all(model, paths, args.method, args.out, target=target, options=options,
                                      executor=executor, attempts=args.attempts, progress=_progress(args))
    for name, record in records.items():
        print(f"{name}: {args.method}, targets {record['targets']}, {record['evaluations']} model evaluations, "
              f"{record['seconds']:.2f} s")
    print(f"wrote {len(records)} of {len(paths)} images' results to {args.out}/<image file name>/")
    for f in failed:
        print(f"onnxplain: error: {f['image']}: {f['error']} ({f['attempts']} attempts)", file=sys.stderr)
    return 2 if failed else 0


def add_worker_flags(parser: argparse.ArgumentParser) -> None:
    """Where the images run: this process, local worker processes or a Dask cluster."""
    group = parser.add_argument_group("workers")
    group.add_argument("--workers", type=int, default=0,
                       help="local worker processes, one image at a time each (default 0: in this process)")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="a Dask scheduler, e.g. tcp://host:8786 (pip install 'onnxplain[dask]'); its workers "
                            "must see the model file at the same path")
    group.add_argument("--attempts", type=int, default=2,
                       help="tries per image (it raised, or its worker died) before it is reported failed (default 2)")


def _check_worker_flags(args: argparse.Namespace) -> None:
    if args.workers < 0:
        raise OnnxplainError(f"--workers must be 0 (this process) or more, got {args.workers}")
    if args.workers and args.scheduler:
        raise OnnxplainError("--workers and --scheduler exclude each other: give one")
    if args.attempts < 1:
        raise OnnxplainError(f"--attempts must be at least 1, got {args.attempts}")


@contextlib.contextmanager
def _executor(args: argparse.Namespace):
    """The executor the worker flags ask for (None: this process), shut down afterwards."""
    from .workers import dask_executor, local_pool

    if args.scheduler:
        executor, client = dask_executor(args.scheduler)
        try:
            yield executor
        finally:
            client.close()
    elif args.workers:
        pool = local_pool(args.workers)
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    else:
        yield None


def explain_row(args: argparse.Namespace, model: TabularModel, names: list[str] | None) -> int:
    """`explain` for a tabular model: row --row of the CSV / .npy given as IMAGE."""
    from . import tabular

    if args.method not in tabular.METHODS:
        raise OnnxplainError(f"--method {args.method} has no tabular form; use one of {', '.join(tabular.METHODS)}")
    if args.background is None:
        raise OnnxplainError("a tabular model needs background rows to fill removed features: --background bg.csv")
    row = _data_row(args.image, args.row)
    options: dict = {"background": args.background, "groups": _groups(args.group), "seed": args.seed}
    if args.method in ("ig", "pmi"):
        if args.n_background is not None:
            raise OnnxplainError("--n-background does not apply to ig/pmi, which draw --samples rows per feature")
        if args.samples is not None:
            options["samples"] = args.samples
    elif args.n_background is not None:
        options["n_background"] = args.n_background
    if args.method == "rise":
        options.update(n_masks=args.masks, p_keep=args.p_keep)
    elif args.method == "multi":
        options.update(criterion=args.criterion, fraction=args.fraction, max_explanations=args.max_explanations)
    target = _parse_target(args.target) if args.target is not None else ("top3" if args.method == "pmi" else "top")
    result = tabular.explain(model, row, args.method, target, **options)
    written = result.save(args.out)
    _print_top(result.top_classes, names or model.class_names)
    print(f"{args.method}: targets {result.targets}, {result.evaluations} rows evaluated, {result.seconds:.2f} s; "
          f"wrote {len(written)} files to {args.out}")
    for t in result.targets:
        strongest = np.argsort(-np.abs(result[t]), kind="stable")[:5]
        print(f"  class {t}: " + ", ".join(f"{result.columns[j]} {result[t][j]:+.4g}" for j in strongest))
        for i, mask in enumerate(result.explanations.get(t, []), 1):
            print(f"  explanation {i}: {', '.join(result.columns[j] for j in np.flatnonzero(mask))}")
    return 0


def _data_row(path: str, row: int, flag: str = "--row"):
    """Row `row` of a CSV / .npy file: a dict {name: value} when the file names its columns."""
    table, names = read_table(path, "data")
    if not 0 <= row < len(table):
        raise OnnxplainError(f"{flag} {row} is outside the {len(table)} rows of {path}")
    return dict(zip(names, table[row])) if names else table[row]


def counterfactual_rows(args: argparse.Namespace, model: TabularModel) -> int:
    """`counterfactual` for a tabular model: row --row of REAL against the first row of CF, or the
    nearest --background row of class B; the d-occlusion map and its mask-swap score."""
    from . import tabular

    if args.counterfactual is None and args.background is None:
        raise OnnxplainError("give the counterfactual row (CF) or --background bg.csv to take the nearest row of class B")
    real = _data_row(args.real, args.row)
    other = None if args.counterfactual is None else _data_row(args.counterfactual, 0, "the first row")
    pair = tabular.make_pair(model, real, other, background=args.background, class_b=args.class_b)
    result = tabular.discriminative_map(model, pair)
    swap = tabular.mask_swap(model, pair, result[pair.class_b], method="d-occlusion")
    return _save_feature_counterfactual(args.out, model, pair, result, swap)


def counterfactual_sequences(args: argparse.Namespace, model: Model) -> int:
    """`counterfactual` for a series or text model: REAL and CF .npy of one shape (texts: token ids of one length)."""
    from . import sequential

    if args.counterfactual is None:
        raise OnnxplainError("a series or text model needs the counterfactual input: onnxplain counterfactual MODEL "
                             "REAL.npy CF.npy")
    real, other = (sequential.read_npy(path) for path in (args.real, args.counterfactual))
    pair, result, swap = sequential.counterfactual(model, real, other, **(
        {"window": args.window} if model.modality == "series" else {}))
    return _save_feature_counterfactual(args.out, model, pair, result, swap)


def _save_feature_counterfactual(out_dir: str, model: TabularModel, pair, result, swap) -> int:
    """Writes d-occlusion_<B>.npy / .png, d-occlusion_best_mask.npy and result.json of a pair of
    rows, series or texts, and prints the swap."""
    from .visualize import save_png

    b = pair.class_b
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / f"d-occlusion_{b}.npy", result[b])
    save_png(out / f"d-occlusion_{b}.png", result.picture(b))
    np.save(out / "d-occlusion_best_mask.npy", swap.best_mask)
    record = {"modality": model.modality, "features": result.columns, "model": model.describe(), "pair": pair.record(),
              "methods": {"d-occlusion": {**swap.record(), "map_evaluations": result.evaluations, "files": {
            "map": f"d-occlusion_{b}.npy", "best_mask": "d-occlusion_best_mask.npy"}}}}
    (out / "result.json").write_text(json.dumps(record, indent=2))
    swapped = result.members(swap.best_mask)
    print(f"A = {pair.class_a}, B = {b} ({pair.source}); d-occlusion DAC {swap.score:.3f}; swapping "
          f"{', '.join(swapped) or 'nothing'} gives p(B) = {swap.best['p_b']:.3f}; wrote {out}")
    return 0


def _groups(items: list[str] | None) -> dict | None:
    """--group NAME=COL,COL,... flags as {name: [columns]}."""
    groups = {}
    for item in items or []:
        name, eq, columns = item.partition("=")
        if not (name and eq and _csv(columns)):
            raise OnnxplainError(f"--group must look like NAME=COLUMN,COLUMN, got {item!r}")
        groups[name] = [int(c) if c.isdigit() else c for c in _csv(columns)]
    return groups or None


def _images_only(model: Model, command: str) -> None:
    if isinstance(model, TabularModel):
        module = "tabular" if model.modality == "tabular" else "sequential"
        raise OnnxplainError(f"`onnxplain {command}` takes image models; for {model.modality} models use "
                             f"onnxplain.{module} from Python (or --modality image if this model takes images)")


def run_demo(args: argparse.Namespace) -> int:
    writable_folder(args.out)
    demo.run_demo(args.out, seed=args.seed, progress=_progress(args))
    return 0


def run_counterfactual(args: argparse.Namespace) -> int:
    from . import counterfactual as cf

    writable_folder(args.out)
    names = _class_names(args.labels)
    model = open_model(args, progress=_progress(args))
    _check_names(names, model)
    if model.modality in ("series", "text"):
        return counterfactual_sequences(args, model)
    if isinstance(model, TabularModel):
        return counterfactual_rows(args, model)
    confidence = None if args.min_confidence < 0 else args.min_confidence
    pair = cf.make_pair(model, args.real, args.counterfactual, generator=args.generator, references=args.reference,
                        class_a=args.class_a, class_b=args.class_b, min_confidence=confidence,
                        generator_range=args.generator_range)
    methods = args.method or cf.METHODS
    results = cf.explain_pair(model, pair, methods, n_thresholds=args.thresholds, seed=args.seed,
                              window=args.window, stride=args.stride, n_masks=args.masks)
    cf.save_results(args.out, pair, results, names, {"model": model.describe(), "seed": args.seed})
    print(f"A = {class_label(pair.class_a, names)} (p(A|x_r) = {pair.p_a_real:.3f}), "
          f"B = {class_label(pair.class_b, names)} (p(B|x_c) = {pair.p_b_counterfactual:.3f}), "
          f"counterfactual: {pair.source['kind']}")
    for method, (result, swap) in results.items():
        best = swap.best
        print(f"{method:<12} DAC {swap.score:.3f}  best: m = {best['size']:.3f}, delta = {best['delta']:+.3f}, "
              f"p(B|h) = {best['p_b']:.3f}; {result.evaluations + swap.evaluations} evaluations")
    print(f"wrote maps, masks, hybrids, curves, result.json and report.html to {args.out}")
    return 0


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that describe the model, shared by explain, counterfactual and evaluate."""
    group = parser.add_argument_group("model")
    group.add_argument("--preset", choices=sorted(PRESETS),
                       help=f"preprocessing (default {DEFAULT_PRESET}; EfficientNet-Lite needs efficientnet-lite)")
    group.add_argument("--output", choices=list(OUTPUT_KINDS), default="auto",
                       help="what the model emits: logits, probabilities (softmax), sigmoid (independent per-class "
                            "probabilities, or p of class 1 for one output column); default: detect")
    group.add_argument("--input-size", type=_pair, metavar="H,W", help="resolution, for models with a dynamic one")
    group.add_argument("--layout", choices=["NCHW", "NHWC", "NCT", "NTC"],
                       help="input layout, NCT/NTC for series (default: read from the model)")
    group.add_argument("--channels", type=int, help="input channels, for models with a dynamic count")
    group.add_argument("--input-name", help="the image input, when the model has several")
    group.add_argument("--output-name", help="the class-score output, when the model has several")
    group.add_argument("--constant", action="append", metavar="NAME=FILE.npy",
                       help="value of another model input, from a .npy file; repeatable")
    group.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH_SIZE,
                       help="images per model call, or 'auto' (default: timed on the first batches)")
    group.add_argument("--modality", choices=list(MODALITIES), default="auto",
                       help="image, tabular, series or text model (default: read from the model's inputs)")


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
    model = Model(args.model, preset=args.preset or DEFAULT_PRESET, output=args.output, input_size=args.input_size,
                  layout=args.layout, channels=args.channels, input_name=args.input_name,
                  output_name=args.output_name, constants=constants, batch_size=args.batch_size, progress=progress,
                  modality=args.modality)
    if args.preset is None and model.modality == "image":  # tables take their values as they are
        print(f"onnxplain: note: --preset not given, using {DEFAULT_PRESET} ((v/255 - mean) / std); models trained "
              f"otherwise need theirs, e.g. --preset efficientnet-lite", file=sys.stderr)
    return model


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}") from None


def _positive(kind: type) -> Callable[[str], int | float]:
    """An argparse type: a positive int or float."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a positive {'integer' if kind is int else 'number'}, got {text!r}")
        return value

    return parse


def _integer_in(low: int, high: int, expected: str) -> Callable[[str], int]:
    """An argparse type: an integer in low..high (`expected` describes it)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_seed = _integer_in(0, SEED_LIMIT - 1, "an integer in 0..2^64-1")
_port = _integer_in(0, 65535, "a port in 0..65535 (0: any free one)")


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
    names = _class_names(args.labels)
    _check_worker_flags(args)
    writable_folder(args.out)
    labels = None
    if args.label_map:
        try:
            labels = {str(k): int(v) for k, v in json.loads(Path(args.label_map).read_text()).items()}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise OnnxplainError(f"--label-map must be a JSON object image name -> class id: {exc}") from None
    model = open_model(args, progress=False)
    _check_names(names, model)
    _images_only(model, "evaluate")
    method_options, metric_options = _evaluate_options(args)
    metrics = _csv(args.metrics)
    try:
        with _executor(args) as executor:
            report = evaluate(model, args.images, methods, metrics, args.out,
                              method_options=method_options,
                              metric_options={k: v for k, v in metric_options.items() if k in metrics},
                              labels=labels, seed=args.seed, progress=_progress(args), names=names,
                              executor=executor,
                              attempts=args.attempts)
    except KeyboardInterrupt:
        print(f"\ninterrupted; run the same command again to resume from {args.out}", file=sys.stderr)
        return 130
    print(report.table())
    failed = f" ({len(report.failed)} failed, listed above)" if report.failed else ""
    print(f"{report.images} images{failed}; records, summary.json, curves and report.html in {report.out}")
    return 2 if report.failed else 0


def run_serve(args: argparse.Namespace) -> int:
    import socket

    try:
        import uvicorn

        from .serve import Service, create_app
    except ImportError as exc:
        raise OnnxplainError(f"onnxplain serve needs its extra: pip install 'onnxplain[serve]' ({exc})") from None
    methods = _csv(args.methods)
    for name in methods:  # before loading anything
        get_method(name, "input")
    if not methods:
        raise OnnxplainError("--methods names no method; give some of: " + ", ".join(method_names("input")))
    if args.max_request_mb * 2**20 < 1:
        raise OnnxplainError(f"--max-request-mb {args.max_request_mb:g} allows no byte; give at least 1e-6 (a byte)")
    # IPPROTO_TCP named: asyncio then turns off Nagle's delay on each connection
    listener = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM,
                             socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((args.host, args.port))
        listener.listen(2048)  # connections wait in the backlog until the server accepts them
    except OSError as exc:
        listener.close()
        raise OnnxplainError(f"cannot listen on --host {args.host} --port {args.port}: {exc.strerror or exc}") from None
    with listener:
        model = open_model(args, progress=False)
        service = Service(model, args.name or Path(args.model).stem, methods, workers=args.workers,
                          max_queue=args.max_queue, deadline=args.deadline,
                          max_request_bytes=int(args.max_request_mb * 2**20), max_images=args.max_images)
        host, port = listener.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
        print(f"serving model {service.name!r} ({', '.join(methods)}) on http://{host}:{port} "
              f"(KServe V1 /v1/models/{service.name}, V2 /v2/models/{service.name})", flush=True)
        config = uvicorn.Config(create_app(service), log_level="warning", access_log=False)
        try:
            uvicorn.Server(config).run(sockets=[listener])
        finally:
            service.close()
    return 0


def _describe(explains: str) -> str:
    """The registered methods of one kind with their one-line descriptions, for --help."""
    return "; ".join(f"{name}: {get_method(name, explains).description}".rstrip(": ")
                     for name in method_names(explains)).replace("%", "%%")


def _default(explainer: type, option: str):
    """The library's default for an explainer option: the CLI never restates it."""
    return inspect.signature(explainer.attribute).parameters[option].default


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="onnxplain", description="Explain ONNX image classifiers.")
    parser.add_argument("--version", action="version", version=f"onnxplain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    ex = sub.add_parser("explain", help="explain one image, or every image of a directory")
    ex.add_argument("model", help="path to an .onnx classifier")
    ex.add_argument("image", nargs="?", help="path to an image file, or a directory: every image into --out/<file "
                                             "name>/; for a tabular model a CSV (header = feature names) or .npy of "
                                             "rows; a series (C x T or T x C) or token ids (L) .npy")
    ex.add_argument("--method", choices=method_names("input"), default="occlusion",
                    help=_describe("input") + " (default occlusion)")
    ex.add_argument("--target", help="'top', 'topK' or class ids (3 or 3,7); default top (pmi: top3)")
    ex.add_argument("--out", default="onnxplain-out")
    ex.add_argument("--labels", help=LABELS_HELP)
    ex.add_argument("--fidelity", type=_fidelity_share, default=FIDELITY_SHARE,
                    help=f"share of the evaluations the fidelity figure may spend (default {FIDELITY_SHARE}; 0: off)")
    ex.add_argument("--seed", type=_seed, default=0, help="0..2^64-1 (default 0)")
    ex.add_argument("--max-pixels", type=_positive(int), default=DEFAULT_MAX_PIXELS,
                    help=f"refuse image files with more pixels (default {DEFAULT_MAX_PIXELS:,})")
    add_model_flags(ex)
    ex.add_argument("--baseline", type=_baseline, default="mean", help="'mean', 'blur' or a pixel value 0..255")
    ex.add_argument("--window", type=int, help="occlusion window (default H // 8)")
    ex.add_argument("--stride", type=int, help="occlusion stride (default window // 2); ig/pmi patch grid stride (default 1)")
    ex.add_argument("--masks", type=int, default=_default(RISE, "n_masks"), help="RISE masks")
    ex.add_argument("--grid", type=int, default=_default(RISE, "grid"), help="RISE grid size")
    ex.add_argument("--p-keep", type=float, default=_default(RISE, "p_keep"), help="RISE keep probability")
    ex.add_argument("--patch", type=int, default=_default(IG, "patch"), help="ig/pmi patch side K")
    ex.add_argument("--samples", type=int, help=f"ig/pmi: samples per patch in dense mode (default "
                                                 f"{_default(IG, 'samples')}), per feature for tables, series and text")
    ex.add_argument("--mode", choices=MODES, default=_default(IG, "mode"), help="ig/pmi: budgeted (default) or dense (exact)")
    ex.add_argument("--budget", type=int, default=_default(IG, "budget"), help="ig/pmi budgeted mode: model evaluations")
    ex.add_argument("--budget-samples", type=int, default=_default(IG, "budget_samples"), help="ig/pmi budgeted mode: samples per patch")
    ex.add_argument("--sampler", choices=SAMPLERS + ("onnx",), default=_default(IG, "sampler"), help="ig/pmi patch sampler")
    ex.add_argument("--sampler-model", help="ig/pmi: the .onnx learned sampler for --sampler onnx")
    ex.add_argument("--frame", type=int, help=f"ig/pmi: the gaussian sampler's frame width F in pixels (default "
                                               f"{_default(IG, 'frame')}), a series' context steps (default the window)")
    ex.add_argument("--reference", help="ig/pmi: image or directory of images to fit/draw patches from")
    ex.add_argument("--noise", type=float, default=_default(IG, "noise"), help="ig/pmi marginal/inpaint samplers: pixel noise sigma")
    ex.add_argument("--criterion", choices=["top1", "confidence"], default=_default(Causal, "criterion"),
                    help="multi: sufficiency test (top-1 class, or p >= fraction of its whole-image value)")
    ex.add_argument("--fraction", type=float, default=_default(Causal, "fraction"), help="multi: the confidence criterion's fraction")
    ex.add_argument("--iterations", type=int, default=_default(Causal, "iterations"), help="multi: random box trees for the responsibility map")
    ex.add_argument("--max-explanations", type=int, default=_default(Causal, "max_explanations"), help="multi: most explanations searched")
    ex.add_argument("--max-overlap", type=float, default=_default(Causal, "max_overlap"), help="multi: largest pairwise Dice kept")
    tab = ex.add_argument_group("tabular models")
    tab.add_argument("--row", type=int, default=0, help="the row of the data file to explain (default 0)")
    tab.add_argument("--background", help="CSV or .npy of background rows that fill removed features (required)")
    tab.add_argument("--n-background", type=int,
                     help=f"background rows averaged per feature set (default {N_BACKGROUND}; rise: per mask, "
                          "default 1); ig/pmi draw --samples per feature instead")
    tab.add_argument("--group", action="append", metavar="NAME=COL,COL",
                     help="explain these columns as one feature; repeatable")
    seq = ex.add_argument_group("series and text models (--window: steps per segment, default T // 16)")
    seq.add_argument("--text", help="text models: the text to explain (with --tokenizer)")
    seq.add_argument("--tokenizer", help="text models: a tokenizer.json (the `tokenizers` package)")
    seq.add_argument("--segments", choices=["channel", "across"], default="channel",
                     help="series: one feature per channel and segment (default), or per segment across channels")
    seq.add_argument("--replacement", choices=["mean", "interpolate", "mask", "delete"],
                     help="removed features: series mean (default) / interpolate, text mask (default) / delete")
    seq.add_argument("--mask-token", help="text: the mask token's id or string (default the tokenizer's [MASK]/[UNK])")
    seq.add_argument("--level", choices=["token", "word"], default="token", help="text features (word: needs --text)")
    add_worker_flags(ex)
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
    ev.add_argument("--labels", help=LABELS_HELP)
    ev.add_argument("--label-map", help="JSON object image file name -> class id (top-1 agreement)")
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
    add_worker_flags(ev)
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
    cf.add_argument("--labels", help=LABELS_HELP)
    add_model_flags(cf)
    cf.add_argument("--row", type=int, default=0, help="tabular models: the row of REAL (a CSV / .npy) to explain")
    cf.add_argument("--background", help="tabular models: rows to take the nearest one of class B from")
    cf.add_argument("--quiet", action="store_true", help="no progress bar")
    cf.set_defaults(handler=run_counterfactual)

    sv = sub.add_parser("serve", help="predictions and explanations over HTTP (KServe V1, Open Inference Protocol V2)")
    sv.add_argument("model", help="path to an .onnx classifier")
    sv.add_argument("--name", help="the model's name in the routes (default: the file's stem)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    sv.add_argument("--port", type=_port, default=8080, help="port (0: any free one, printed)")
    sv.add_argument("--methods", default="occlusion,rise,ig,pmi,multi",
                    help="comma-separated methods served, the first the default (of: " + ", ".join(method_names("input"))
                         + ")")
    sv.add_argument("--workers", type=_positive(int), default=2, help="explanations run at once (default 2)")
    sv.add_argument("--max-queue", type=_positive(int), default=32,
                    help="requests admitted at once, running or waiting; more get 429 (default 32)")
    sv.add_argument("--deadline", type=_positive(float), default=60.0,
                    help="longest an explanation runs, seconds from its arrival (default 60; a request may ask less)")
    sv.add_argument("--max-request-mb", type=_positive(float), default=20.0,
                    help="largest request body in MiB; larger get 413 (default 20)")
    sv.add_argument("--max-images", type=_positive(int), default=64,
                    help="most images in one request; more get 413 before any is decoded (default 64)")
    add_model_flags(sv)
    sv.set_defaults(handler=run_serve)
    return parser


def _one_line_warnings(show):
    """A warnings.showwarning that prints an OnnxplainWarning as one stderr line, others as `show` does."""
    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, OnnxplainWarning):
            print(f"onnxplain: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return showwarning


KEYWORD_FLAGS = {"n_masks": "--masks"}  # Python keywords whose flag is not --<keyword with dashes>


def with_flag(message: str, parser: argparse.ArgumentParser) -> str:
    """A Python-side refusal ("n_masks must be ...") with the flag that sets the keyword appended,
    when there is one and the message names no flag yet."""
    match = re.match(r"(\w+) must ", message)
    if not match or "--" in message:
        return message
    flag = KEYWORD_FLAGS.get(match[1], "--" + match[1].replace("_", "-"))
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices.values()
    return f"{message} ({flag})" if any(flag in c._option_string_actions for c in commands) else message


def main(argv: list[str] | None = None) -> int:
    """Runs one command and returns its exit code: 0 success, 2 bad input (one line on stderr
    naming the problem and the fix), 1 an internal failure (a short message), 130 interrupted."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0), or a bad flag (2, argparse printed which and why)
        return exc.code if isinstance(exc.code, int) else 2
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(warnings.showwarning)
        try:
            return args.handler(args)
        except OnnxplainError as exc:
            print(f"onnxplain: error: {with_flag(str(exc), parser)}", file=sys.stderr)
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
