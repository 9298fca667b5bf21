"""Dataset-scale fidelity runs: explain every image with every method, score every map with every
metric, one JSON record per (image, method, metric), resumable after any interruption.

Layout of the output directory:
- `config.json`: model, preprocessing, seed and each method's and metric's options;
- `maps/<image>/<method>.npy` (H x W float32) and `.json` (its record): the explanation cache,
  so metrics never recompute a map (the .json is written last and marks the entry complete);
- `records.jsonl`: one line per (image, method, metric), appended, flushed and fsync'ed as it
  goes; on restart the recorded ones are skipped and a torn last line is cut off;
- `summary.json` and `curves_<metric>.png`: the dataset summary, written at the end.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .errors import OnnxplainError
from .fidelity import METRICS, Curves, interval, paired_difference
from .image import image_files, load_image
from .model import Model
from .registry import check_options, get_method, register_method  # noqa: F401 (register_method: public here too)
from .result import Explanation
from .visualize import Series, line_chart, save_png


@dataclass
class Report:
    """What a run produced: all records (this run's and earlier ones'), the summary rows (one per
    method and metric) and the files written."""

    records: list[dict]
    summary: list[dict]
    out: Path
    images: int

    def table(self) -> str:
        """The summary as a plain-text table."""
        return format_table(self.summary)


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
             labels: dict[str, int] | None = None, seed: int = 0, progress: bool = True) -> Report:
    """Explains every image with every method (registered input methods, `registry.py`; target:
    the clean top-1) and scores each map with every metric (`fidelity.METRICS`), resuming a run
    already in `out`. A method's map is its explanation's map of the target (multi: the causal
    responsibility map).

    method_options / metric_options: name -> keyword options (over the registered defaults);
    labels: image file name -> class, for top-1 agreement (default: the clean prediction).
    """
    methods, metrics = list(methods), list(metrics)
    specs = {name: get_method(name, "input") for name in methods}
    for name in metrics:
        if name not in METRICS:
            raise OnnxplainError(f"unknown metric {name!r}; available: {', '.join(METRICS)}")
    if not methods or not metrics:
        raise OnnxplainError("name at least one method and one metric")
    paths = list_images(images)
    labels = labels or {}
    out = Path(out)
    (out / "maps").mkdir(parents=True, exist_ok=True)
    strays = sorted(set(method_options or {}) - set(methods))
    if strays:
        raise OnnxplainError(f"method_options name {', '.join(map(repr, strays))}, which are not among the methods "
                             f"{methods} (CLI: --option METHOD.KEY=VALUE for a method in --methods)")
    m_opts = {name: {**specs[name].defaults, **(method_options or {}).get(name, {})} for name in methods}
    explainers = {name: specs[name].factory(model) for name in methods}
    for name, explainer in explainers.items():  # before the run folder records them
        check_options(name, {**m_opts[name], "seed": seed}, explainer.attribute)
    k_opts = {name: dict((metric_options or {}).get(name, {})) for name in metrics}
    if model.output_kind is None or model.num_classes is None:  # detect them: they are part of the config
        model.predict(load_image(paths[0], model.input_size, model.channels))
    _check_config(out / "config.json", {"model": model.describe(), "seed": int(seed), "labels": labels,
                                         "methods": m_opts, "metrics": k_opts})
    records = read_records(out / "records.jsonl")
    done = {(r["image"], r["method"], r["metric"]) for r in records}
    todo = [p for p in paths if any((p.name, a, k) not in done for a in methods for k in metrics)]
    with open(out / "records.jsonl", "ab") as sink, \
            tqdm(total=len(paths), initial=len(paths) - len(todo), unit="img", desc="evaluate",
                 disable=not progress) as bar:
        for path in todo:
            image = load_image(path, model.input_size, model.channels)
            for name in methods:
                missing = [k for k in metrics if (path.name, name, k) not in done]
                if not missing:
                    continue
                attribution, info = _explanation(out / "maps" / path.name, name, explainers[name], image,
                                                 m_opts[name], seed)
                for metric in missing:
                    curves: Curves = METRICS[metric](model, image, attribution, target=info["target"],
                                                     label=labels.get(path.name), seed=seed, **k_opts[metric])
                    record = {"image": path.name, "method": name, **curves.record(),
                              "explain": {"evaluations": info["evaluations"], "seconds": info["seconds"]}}
                    _append(sink, record)
                    records.append(record)
            bar.update(1)
    names = {p.name for p in paths}
    wanted = [r for r in records if r["image"] in names and r["method"] in methods and r["metric"] in metrics]
    summary = summarize(wanted)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    for metric in metrics:
        save_png(out / f"curves_{metric}.png", plot_mean_curves([s for s in summary if s["metric"] == metric]))
    return Report(records=wanted, summary=summary, out=out, images=len(paths))


def read_records(path: Path) -> list[dict]:
    """The complete records of a records.jsonl; a torn last line (an interrupted write) is cut
    off the file so later appends stay line-aligned."""
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
        key = (record["image"], record["method"], record["metric"])
        if key not in seen:
            seen.add(key)
            records.append(record)
    return records


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


def format_table(summary: Sequence[dict]) -> str:
    """A plain-text table of summary rows."""
    head = (f"{'method':<12}{'metric':<10}{'n':>4}  {'AUC (MIF / del / ins)':>22}  {'AUC LIF':>15}  "
            f"{'fidelity':>17}  {'vs random':>17}  {'expl evals':>10}  {'expl s':>7}  {'metric evals':>12}  {'metric s':>8}")
    lines = [head, "-" * len(head)]

    def pm(entry):
        return f"{entry['mean']:+.3f} +- {entry['ci95']:.3f}" if entry else "-"

    for row in summary:
        aucs = row["aucs"]
        first = aucs.get("mif") or next(iter(aucs.values()))
        lines.append(
            f"{row['method']:<12}{row['metric']:<10}{row['images']:>4}  {pm(first):>22}  {pm(aucs.get('lif')):>15}  "
            f"{pm(row.get('fidelity')):>17}  {pm(row.get('vs_random')):>17}  {row['explain_evaluations']:>10.0f}  "
            f"{row['explain_seconds']:>7.2f}  {row['metric_evaluations']:>12.0f}  {row['metric_seconds']:>8.2f}")
    return "\n".join(lines)


def plot_mean_curves(rows: Sequence[dict], size: int = 480) -> np.ndarray:
    """An RGB uint8 plot (OpenCV) of one metric's mean curves per method: the first curve (MIF,
    deletion or insertion) solid, LIF thin with dots; score (y, 0 to the largest value, at least 1)
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
    return line_chart(series, "fraction perturbed", f"{metric}: mean score (solid: MIF/first, dotted: LIF)",
                      (bottom, top), size)


# ---- internals ------------------------------------------------------------------------

def _check_config(path: Path, config: dict) -> None:
    """Records the run's settings; a resumed run must not contradict them (a method or metric
    may be added, not changed)."""
    config = json.loads(json.dumps(config))  # normalise tuples etc.
    if path.exists():
        old = json.loads(path.read_text())
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


def _explanation(folder: Path, name: str, explainer, image: np.ndarray, options: dict, seed: int):
    """The cached map and its record, computing and caching them if absent."""
    npy, meta = folder / f"{name}.npy", folder / f"{name}.json"
    if meta.exists() and npy.exists():
        return np.load(npy), json.loads(meta.read_text())
    result: Explanation = explainer.attribute(image, target="top", seed=seed, **options)
    target = result.targets[0]
    info = {"target": target, "evaluations": result.evaluations, "seconds": round(result.seconds, 4),
            "params": result.params}
    folder.mkdir(parents=True, exist_ok=True)
    attribution = result[target].astype(np.float32)
    tmp = npy.with_suffix(".npy.tmp")
    with open(tmp, "wb") as f:
        np.save(f, attribution)
    os.replace(tmp, npy)
    _write_atomic(meta, json.dumps(info).encode())  # written last: marks the entry complete
    return attribution, info


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _append(sink, record: dict) -> None:
    sink.write((json.dumps(record) + "\n").encode())
    sink.flush()
    os.fsync(sink.fileno())
