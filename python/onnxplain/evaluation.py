"""Dataset-scale fidelity runs: explain every image with every method, score every map with every
metric, one JSON record per (image, method, metric), resumable after any interruption.

Layout of the output directory:
- `config.json`: model, preprocessing, seed and each method's and metric's options;
- `maps/<image>/<method>.npy` (H x W float32) and `.json` (its record): the explanation cache,
  so metrics never recompute a map (the .json is written last and marks the entry complete);
- `records.jsonl`: one line per (image, method, metric), appended, flushed and fsync'ed as it
  goes; on restart the recorded ones are skipped and a torn last line is cut off; an image that
  failed every attempt gets one error line ({"image", "image_sha256", "error", "attempts"}) and
  is tried again by the next run;
- `summary.json` ({"images", "failed", "rows"}), `curves_<metric>.png` and `report.html` (the
  summary table, the mean curves, a gallery of every image's maps, the images that failed): written
  at the end.

Run identity: config.json holds the model file's SHA-256, each record and cached map its image's.
A resumed run refuses another model and recomputes an image whose content changed. Only this
process (the driver) writes files, whatever executor runs the images (`workers.py`).
"""
from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .errors import OnnxplainError
from .explainer import Explainer, Target, check_seed, positive_int
from .fidelity import METRICS, Curves, check_metric, interval, paired_difference
from .image import decode_image, image_files, load_image
from .model import Model
from .registry import check_options, get_method, register_method  # noqa: F401 (register_method: public here too)
from .result import Explanation, writable_folder
from .report import evaluation_page
from .visualize import Series, line_chart, save_png
from .workers import file_sha256, run_tasks, worker_spec


@dataclass
class Report:
    """What a run produced: all records (this run's and earlier ones', sorted by image, method and
    metric), the summary rows (one per method and metric), the output folder, the number of
    images and the failed ones ({"image", "error", "attempts"}: an error record and no results)."""

    records: list[dict]
    summary: list[dict]
    out: Path
    images: int
    failed: list[dict] = field(default_factory=list)

    def table(self) -> str:
        """The summary as a plain-text table, then the failed images."""
        lines = [format_table(self.summary)]
        if self.failed:
            lines.append(f"{len(self.failed)} of {self.images} images failed (run again to retry them):")
            lines += [f"  {f['image']}: {f['error']} ({f['attempts']} attempts)" for f in self.failed]
        return "\n".join(lines)


def list_images(images: str | Path | Sequence[str | Path]) -> list[Path]:
    """A directory's image files (sorted by name), or the given paths."""
    paths = image_files(images) if isinstance(images, (str, Path)) else [Path(p) for p in images]
    if not paths:
        raise OnnxplainError("the list of images is empty")
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise OnnxplainError("image file names must be unique (records are keyed by name)")
    return paths


def evaluate(model: Model, images: str | Path | Sequence[str | Path], methods: Sequence[str] = ("occlusion", "rise", "random"),
             metrics: Sequence[str] = ("mif-lif",), out: str | Path = "onnxplain-eval", *,
             method_options: dict[str, dict] | None = None, metric_options: dict[str, dict] | None = None,
             labels: dict[str, int] | None = None, seed: int = 0, progress: bool = True,
             names: list[str] | None = None, executor: Executor | None = None, attempts: int = 2) -> Report:
    """Explains every image with every method (registered input methods, `registry.py`; target:
    the clean top-1) and scores each map with every metric (`fidelity.METRICS`), resuming a run
    already in `out`. A method's map is its explanation's map of the target (multi: the causal
    responsibility map).

    method_options / metric_options: name -> keyword options (over the registered defaults);
    labels: image file name -> class, for top-1 agreement (default: the clean prediction); names:
    class names for the report. Explanations carry no fidelity figure here: the metrics measure
    fidelity fully.
    executor: any `concurrent.futures.Executor` (`workers.local_pool(n)`, a Dask client's
    `get_executor()`): one task per image, on a model each worker builds from `model.recipe`, with
    `model.threads` threads (0: its machine's cores / its workers); None: in this process.
    attempts: tries per image (its task raised or its worker died) before an error record.
    Records and summary equal the sequential run's for the same seed, except their wall times.
    """
    methods, metrics = ([m] if isinstance(m, str) else list(m) for m in (methods, metrics))  # one name, or several
    specs = {name: get_method(name, "input") for name in methods}
    if not methods or not metrics:
        raise OnnxplainError("name at least one method and one metric")
    strays = sorted(set(metric_options or {}) - set(metrics))
    if strays:
        raise OnnxplainError(f"metric_options name {', '.join(map(repr, strays))}, which are not among the metrics "
                             f"{metrics}")
    k_opts = {name: dict((metric_options or {}).get(name, {})) for name in metrics}
    for name, options in k_opts.items():
        check_metric(model, name, options)
    paths = list_images(images)
    seed = check_seed(seed)
    labels = labels or {}
    if not isinstance(labels, dict):
        raise OnnxplainError(f"labels must be a dict image file name -> class id, got {type(labels).__name__} "
                             "(CLI: --label-map)")
    out = Path(out)
    _check_run_folder(out)
    strays = sorted(set(method_options or {}) - set(methods))
    if strays:
        raise OnnxplainError(f"method_options name {', '.join(map(repr, strays))}, which are not among the methods "
                             f"{methods} (CLI: --option METHOD.KEY=VALUE for a method in --methods)")
    m_opts = {name: {**specs[name].defaults, **(method_options or {}).get(name, {})} for name in methods}
    explainers = {name: specs[name].factory(model) for name in methods}
    for name, explainer in explainers.items():  # before the run folder records them
        check_options(name, {**m_opts[name], "seed": seed}, explainer.attribute)
    positive_int("attempts", attempts)
    spec = worker_spec(executor, model, {name: (specs[name].factory, m_opts[name]) for name in methods})
    digests = {p.name: file_sha256(p) for p in paths}
    if model.output_kind is None or model.num_classes is None:  # detect them: they are part of the config
        model.predict(_first_readable(paths, model))
    wrong = {name: c for name, c in labels.items() if isinstance(c, bool) or not isinstance(c, (int, np.integer))
             or not 0 <= c < model.num_classes}
    if wrong:
        raise OnnxplainError(f"labels {wrong} are not class ids in 0..{model.num_classes - 1} (CLI: --label-map)")
    model_sha = spec.sha256 if spec else file_sha256(model.recipe["source"]) if model.recipe else None
    (out / "maps").mkdir(parents=True, exist_ok=True)
    _check_config(out / "config.json", {"model": {**model.describe(), "sha256": model_sha}, "seed": int(seed),
                                         "labels": labels, "methods": m_opts, "metrics": k_opts})
    records = [r for r in read_records(out / "records.jsonl") if digests.get(r["image"]) == r.get("image_sha256")]
    done = {(r["image"], r["method"], r["metric"]) for r in records if "error" not in r}
    missing = {p.name: {a: [k for k in metrics if (p.name, a, k) not in done] for a in methods} for p in paths}
    todo = [p for p in paths if any(missing[p.name].values())]

    def payload(path: Path) -> Callable[[], dict]:
        return lambda: {
            "image": path.name, "data": path.read_bytes(), "sha256": digests[path.name], "seed": seed,
            "label": labels.get(path.name), "metrics": k_opts,
            "methods": {a: {"factory": specs[a].factory, "options": m_opts[a], "metrics": missing[path.name][a],
                            "cached": _cached(out / "maps" / path.name, a, digests[path.name], model.input_size)}
                        for a in methods if missing[path.name][a]}}

    with open(out / "records.jsonl", "ab") as sink, \
            tqdm(total=len(paths), initial=len(paths) - len(todo), unit="img", desc="evaluate",
                 disable=not progress) as bar:
        def finished(name: str, result: dict) -> None:
            for method, (attribution, info) in result["maps"].items():
                _store_map(out / "maps" / name, method, attribution, info)
            _append(sink, result["records"])
            records.extend(result["records"])
            bar.update(1)

        def failed(name: str, message: str, tries: int) -> None:
            record = {"image": name, "image_sha256": digests[name], "error": message, "attempts": tries}
            _append(sink, [record])
            records.append(record)
            bar.update(1)

        run_tasks(executor, model, spec, _evaluate_image, [(p.name, payload(p)) for p in todo], finished, failed,
                  attempts)
    image_names = set(digests)
    wanted = sorted((r for r in records if "error" not in r and r["image"] in image_names and r["method"] in methods
                     and r["metric"] in metrics), key=lambda r: (r["image"], r["method"], r["metric"]))
    complete = {(r["image"], r["method"], r["metric"]) for r in wanted}
    errors = {r["image"]: r for r in records if "error" in r}  # the last one per image
    failed_images = [{"image": name, "error": errors[name]["error"], "attempts": errors[name]["attempts"]}
                     for name in sorted(image_names) if name in errors
                     and any((name, a, k) not in complete for a in methods for k in metrics)]
    summary = summarize(wanted)
    (out / "summary.json").write_text(json.dumps({"images": len(paths), "failed": failed_images, "rows": summary},
                                                 indent=2))
    for metric in metrics:
        save_png(out / f"curves_{metric}.png", plot_mean_curves([s for s in summary if s["metric"] == metric]))
    report = Report(records=wanted, summary=summary, out=out, images=len(paths), failed=failed_images)
    (out / "report.html").write_text(evaluation_page(report, paths, methods, metrics, model, names))
    return report


def _evaluate_image(model: Model, task: dict) -> dict:
    """One image's work (a worker's task): its maps (cached ones given) and every missing metric.
    Returns {"maps": method -> (H x W float32 map, its info), computed ones only; "records": [...]}."""
    image = _task_image(model, task)
    maps, records = {}, []
    for name, job in task["methods"].items():
        if job["cached"] is None:
            explainer = job["factory"](model)
            if isinstance(explainer, Explainer):
                explainer.fidelity = None  # the metrics measure fidelity fully
            result: Explanation = explainer.attribute(image, target="top", seed=task["seed"], **job["options"])
            target = result.targets[0]
            info = {"target": target, "probability": result.probability(target), "signed": result.signed,
                    "evaluations": result.evaluations, "seconds": round(result.seconds, 4), "params": result.params,
                    "image_sha256": task["sha256"]}
            maps[name] = attribution, info = result[target].astype(np.float32), info
        else:
            attribution, info = job["cached"]
        for metric in job["metrics"]:
            curves: Curves = METRICS[metric](model, image, attribution, target=info["target"], label=task["label"],
                                             seed=task["seed"], **task["metrics"][metric])
            records.append({"image": task["image"], "image_sha256": task["sha256"], "method": name, **curves.record(),
                            "explain": {"evaluations": info["evaluations"], "seconds": info["seconds"]}})
    return {"maps": maps, "records": records}


def explain_folder(model: Model, images: str | Path | Sequence[str | Path], method: str, out: str | Path, *,
                   target: Target = "top", options: dict | None = None, executor: Executor | None = None,
                   attempts: int = 2, progress: bool = True) -> tuple[dict[str, dict], list[dict]]:
    """Explains every image of a folder (or list) with one registered input method, one task per
    image as in `evaluate` (executor, attempts), and saves each result (`Explanation.save`) into
    `out/<image file name>/` (suffix kept: a.png and a.jpg do not collide).

    Returns (image name -> its result record, failed images as {"image", "error", "attempts"})."""
    factory = get_method(method, "input").factory
    options = dict(options or {})
    paths = list_images(images)
    positive_int("attempts", attempts)
    spec = worker_spec(executor, model, {method: (factory, options, target)})
    out = Path(out)
    records: dict[str, dict] = {}
    failures: list[dict] = []
    with tqdm(total=len(paths), unit="img", desc=method, disable=not progress) as bar:
        def finished(name: str, result: Explanation) -> None:
            result.save(out / name)
            records[name] = result.record()
            bar.update(1)

        def failed(name: str, message: str, tries: int) -> None:
            failures.append({"image": name, "error": message, "attempts": tries})
            bar.update(1)

        jobs = [(p.name, lambda p=p: {"image": p.name, "data": p.read_bytes(), "factory": factory, "target": target,
                                      "options": options}) for p in paths]
        run_tasks(executor, model, spec, _explain_image, jobs, finished, failed, attempts)
    return dict(sorted(records.items())), sorted(failures, key=lambda f: f["image"])


def _explain_image(model: Model, task: dict) -> Explanation:
    """One image's explanation (a worker's task)."""
    image = _task_image(model, task)
    return task["factory"](model).attribute(image, target=task["target"], **task["options"])


TIMING_FIELDS = ("seconds", "explain_seconds", "metric_seconds")  # the only fields that differ between equal runs


def without_timings(value):
    """A record, a summary (or lists, dicts of them) without its wall times, for comparing runs."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def read_records(path: Path) -> list[dict]:
    """The complete records of a records.jsonl (the first of any repeated one); a torn last line
    (an interrupted write) is cut off the file so later appends stay line-aligned."""
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    records, seen = [], set()
    for number, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise OnnxplainError(f"{path} line {number} is not JSON; the file is damaged") from None
        if not _is_record(record):
            raise OnnxplainError(f"{path} line {number} is not a record onnxplain writes; the file is damaged: choose "
                                 "another --out, or delete the folder to start over")
        key = (record["image"], record.get("image_sha256"), record.get("method"), record.get("metric"),
               record.get("error"))
        if key not in seen:
            seen.add(key)
            records.append(record)
    return records


def _is_record(record: Any) -> bool:
    """Whether a records.jsonl line has the shape `_evaluate_image` and `evaluate` give it."""
    if not isinstance(record, dict) or not isinstance(record.get("image"), str):
        return False
    if "error" in record:
        return True
    curves, aucs = record.get("curves"), record.get("aucs")
    return (isinstance(record.get("method"), str) and isinstance(record.get("metric"), str)
            and isinstance(curves, dict) and isinstance(aucs, dict) and isinstance(record.get("x"), list)
            and all(isinstance(c, list) and all(isinstance(v, (int, float)) for v in c) for c in curves.values())
            and all(isinstance(aucs.get(name), (int, float)) for name in curves)
            and isinstance(record.get("agree"), dict) and set(record["agree"]) == set(curves))


def summarize(records: Sequence[dict]) -> list[dict]:
    """One row per (method, metric): images, mean AUC per curve and fidelity with 95 % intervals,
    the paired difference of fidelity (or AUC) against `random` when present, mean curves and
    top-1 agreement per step, explanation and metric cost per image."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["metric"]), []).append(r)
    rows = []
    for (method, metric), group in sorted(groups.items()):
        group = sorted(group, key=lambda r: r["image"])
        row = {"method": method, "metric": metric, "images": len(group), "x": group[0]["x"], "aucs": {},
               "mean_curves": {}, "agreement": {}}
        for name in group[0]["curves"]:
            mean, half = interval([r["aucs"][name] for r in group])
            row["aucs"][name] = {"mean": mean, "ci95": half}
            row["mean_curves"][name] = np.mean([r["curves"][name] for r in group], axis=0).tolist()
            row["agreement"][name] = np.mean([r["agree"][name] for r in group], axis=0).tolist()
        if group[0]["fidelity"] is not None:
            mean, half = interval([r["fidelity"] for r in group])
            row["fidelity"] = {"mean": mean, "ci95": half}
        floor = {r["image"]: r for r in groups.get(("random", metric), [])}
        paired = [(r, floor[r["image"]]) for r in group if r["image"] in floor]
        if method != "random" and paired:
            value = (lambda r: r["fidelity"]) if group[0]["fidelity"] is not None else (lambda r: next(iter(r["aucs"].values())))
            mean, half = paired_difference([value(a) for a, _ in paired], [value(b) for _, b in paired])
            row["vs_random"] = {"mean": mean, "ci95": half, "images": len(paired)}
        row["explain_evaluations"] = float(np.mean([r["explain"]["evaluations"] for r in group]))
        row["explain_seconds"] = float(np.mean([r["explain"]["seconds"] for r in group]))
        row["metric_evaluations"] = float(np.mean([r["evaluations"] for r in group]))
        row["metric_seconds"] = float(np.mean([r["seconds"] for r in group]))
        rows.append(row)
    return rows


BETTER = {"mif-lif": "lower AUC MIF; higher AUC LIF, fidelity and vs random",
          "road": "lower AUC MoRF (MIF column); higher AUC LeRF (LIF column), fidelity and vs random",
          "deletion": "lower AUC and vs random", "insertion": "higher AUC and vs random"}


def format_table(summary: Sequence[dict]) -> str:
    """A plain-text table of summary rows (under 100 columns): mean +- 95 % half-width, then which
    direction is better for each metric shown."""
    head = (f"{'method':<11}{'metric':<10}{'n':>3}  {'AUC MIF/del/ins':<15} {'AUC LIF':<15} {'fidelity':<15} "
            f"{'vs random':<15} {'evals/img':>9}")
    lines = [head, "-" * len(head)]

    def pm(entry):
        return f"{entry['mean']:+.3f} +-{entry['ci95']:.3f}" if entry else "-"

    for row in summary:
        aucs = row["aucs"]
        first = aucs.get("mif") or next(iter(aucs.values()))
        evals = row["explain_evaluations"] + row["metric_evaluations"]
        lines.append(f"{row['method'][:10]:<11}{row['metric']:<10}{row['images']:>3}  {pm(first):<15} "
                     f"{pm(aucs.get('lif')):<15} {pm(row.get('fidelity')):<15} {pm(row.get('vs_random')):<15} "
                     f"{evals:>9.0f}")
    lines.append("mean +- 95 % half-width; vs random: paired difference to random; evals: explain + metric")
    lines += [f"better, {metric}: {BETTER[metric]}" for metric in dict.fromkeys(r["metric"] for r in summary)
              if metric in BETTER]
    return "\n".join(lines)


def plot_mean_curves(rows: Sequence[dict], size: int = 480) -> np.ndarray:
    """An RGB uint8 plot (OpenCV) of one metric's mean curves per method: the first curve (MIF,
    deletion or insertion) solid, LIF (when present) thin with dots; score (y, 0 to the largest value, at least 1)
    against the fraction perturbed (x, 0..1)."""
    top = max([1.0] + [max(c) for r in rows for c in r["mean_curves"].values()])
    bottom = min([0.0] + [min(c) for r in rows for c in r["mean_curves"].values()])
    series = []
    for k, row in enumerate(rows):
        fid = row.get("fidelity")
        legend = row["method"] + (f": fidelity {fid['mean']:+.3f} +- {fid['ci95']:.3f}" if fid else "")
        for j, curve in enumerate(row["mean_curves"].values()):
            series.append(Series(np.asarray(row["x"]), np.asarray(curve), k, "" if j else legend, dotted=j > 0))
    metric = rows[0]["metric"] if rows else ""
    two = any(len(r["mean_curves"]) > 1 for r in rows)
    return line_chart(series, "fraction perturbed",
                      f"{metric}: mean score" + (" (solid: MIF, dotted: LIF)" if two else ""), (bottom, top), size)


# ---- internals ------------------------------------------------------------------------

def _check_run_folder(out: Path) -> None:
    """Refuses a run folder whose parts are of the wrong kind (a file where a folder goes, or the
    reverse), before anything is written."""
    writable_folder(out, "out")
    if (out / "maps").exists() and not (out / "maps").is_dir():
        raise OnnxplainError(f"{out / 'maps'} is a file, where the run keeps its maps; choose another --out")
    for name in ("config.json", "records.jsonl", "summary.json", "report.html"):
        if (out / name).is_dir():
            raise OnnxplainError(f"{out / name} is a folder, where the run writes a file; choose another --out")


def _check_config(path: Path, config: dict) -> None:
    """Records the run's settings; a resumed run must not contradict them (a method or metric
    may be added, not changed)."""
    config = json.loads(json.dumps(config))  # normalise tuples etc.
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if not (isinstance(old, dict) and isinstance(old.get("model"), dict)
                and all(isinstance(old.get(group), dict) for group in ("methods", "metrics"))):
            raise OnnxplainError(f"{path} is damaged (not the JSON object onnxplain writes: model, seed, labels, "
                                 "methods, metrics); choose another --out, or delete the folder to start over")
        if "sha256" not in old.get("model", {}):
            raise OnnxplainError(f"{path.parent} was made by an older onnxplain, without content hashes to check "
                                 "it against; choose another --out")
        if old["model"]["sha256"] != config["model"]["sha256"]:
            raise OnnxplainError(f"{path.parent} holds a run of another model (SHA-256 {old['model']['sha256']}, "
                                 f"not {config['model']['sha256']}); choose another --out")
        for key in ("model", "seed", "labels"):
            if old.get(key) != config[key]:
                raise OnnxplainError(f"{path.parent} holds a run with a different {key}; choose another --out")
        for group in ("methods", "metrics"):
            for name, options in config[group].items():
                if name in old[group] and old[group][name] != options:
                    raise OnnxplainError(f"{path.parent} holds a run where {name} had options {old[group][name]}, "
                                         f"not {options}; choose another --out")
            config[group] = {**old[group], **config[group]}
    _write_atomic(path, json.dumps(config, indent=2).encode())


def _task_image(model: Model, task: dict) -> np.ndarray:
    """A task's image, from its file's bytes, as `load_image` reads the file (.npy: an array)."""
    if not task["image"].lower().endswith(".npy"):
        return decode_image(task["data"], model.input_size, model.channels)
    try:
        array = np.load(io.BytesIO(task["data"]), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise OnnxplainError(f"cannot read image array {task['image']}: {exc}") from None
    return load_image(array, model.input_size, model.channels)


def _first_readable(paths: Sequence[Path], model: Model) -> np.ndarray:
    """The first image that loads (a corrupt one becomes an error record later), else mid-grey."""
    for path in paths:
        try:
            return load_image(path, model.input_size, model.channels)
        except OnnxplainError:
            continue
    return np.full((*model.input_size, model.channels), 127.5, np.float32)


def _cached(folder: Path, name: str, sha256: str, shape: tuple[int, int]) -> tuple[np.ndarray, dict] | None:
    """A cached map and its info, when complete, readable, well-formed (an H x W finite map, an
    integer target) and made from the image with this content hash; else None, and it is
    recomputed (maps are not fsync'ed: one torn by a system crash, or damaged, is made again)."""
    npy, meta = folder / f"{name}.npy", folder / f"{name}.json"
    try:
        info = json.loads(meta.read_text())
        if not (isinstance(info, dict) and info.get("image_sha256") == sha256 and isinstance(info.get("target"), int)):
            return None
        attribution = np.load(npy, allow_pickle=False)
    except (OSError, ValueError):
        return None
    well_formed = attribution.shape == tuple(shape) and attribution.dtype.kind == "f" and \
        bool(np.all(np.isfinite(attribution)))
    return (attribution, info) if well_formed else None


def _store_map(folder: Path, name: str, attribution: np.ndarray, info: dict) -> None:
    """Caches a map; its .json, written last, marks the entry complete."""
    folder.mkdir(parents=True, exist_ok=True)
    npy = folder / f"{name}.npy"
    tmp = npy.with_suffix(".npy.tmp")
    with open(tmp, "wb") as f:
        np.save(f, attribution)
    os.replace(tmp, npy)
    _write_atomic(folder / f"{name}.json", json.dumps(info).encode(), durable=False)


def _write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Writes a file whole or not at all (durable: fsync'ed before it replaces the old one)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _append(sink, records: Sequence[dict]) -> None:
    """Appends records (one image's) as JSON lines in one write, flushed and fsync'ed."""
    sink.write("".join(json.dumps(r) + "\n" for r in records).encode())
    sink.flush()
    os.fsync(sink.fileno())
