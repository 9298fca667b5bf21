"""Self-contained HTML reports (every picture inline as a PNG data URI): one explanation, a
counterfactual pair, a fidelity evaluation. Fragments compose into one page with `page`."""
from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence

import numpy as np

from .visualize import class_label, png_bytes

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}figcaption{font-size:.85em;color:#555}
img{max-width:560px;height:auto;border:1px solid #ddd}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
pre{background:#f7f7f7;padding:.6em;font-size:.85em;overflow-x:auto}.note{color:#555;font-size:.9em}"""


def escape(value) -> str:
    return html.escape(str(value))


def figure(rgb: np.ndarray, caption: str) -> str:
    """An inline <img> (PNG data URI) with its caption."""
    data = base64.b64encode(png_bytes(rgb)).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def section(title: str, body: str) -> str:
    return f"<h2>{escape(title)}</h2>\n{body}\n"


def details(record: dict) -> str:
    return f"<pre>{escape(json.dumps(record, indent=2))}</pre>"


def page(title: str, body: str) -> str:
    """A complete HTML document."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body><h1>{escape(title)}</h1>\n{body}</body></html>\n")


def top_classes(top: Sequence[tuple[int, float]], names: list[str] | None) -> str:
    return table(["class", "p"], [(class_label(c, names), f"{p:.4f}") for c, p in top])


def fidelity_value(fidelity: dict | None) -> str:
    """The fidelity figure as a short cell: its value, "skipped" or "off"."""
    if not fidelity:
        return "off"
    return "skipped" if "skipped" in fidelity else f"{fidelity['estimate']:+.3f}"


def fidelity_text(fidelity: dict | None, names: list[str] | None = None) -> str:
    """The fidelity figure of an explanation in words."""
    if not fidelity:
        return "Fidelity figure: not computed."
    if "skipped" in fidelity:
        return f"Fidelity figure: skipped ({fidelity['skipped']})."
    return (f"Fidelity figure {fidelity['estimate']:+.3f} for {class_label(fidelity['class'], names)}: AUC(LIF) - AUC(MIF) of the "
            f"p(class) ratio with the map's most / least important pixels set to the mean, "
            f"{len(fidelity['fractions'])} steps up to {fidelity['fractions'][-1]:.0%} removed "
            f"({fidelity['evaluations']} extra model evaluations). Larger is more faithful; a random map "
            f"scores about 0, a negative value means the map ranks pixels worse than chance.")


def explanation_body(result, pictures: dict[str, np.ndarray], input_picture: np.ndarray | None) -> str:
    """An explanation's section body: the input, each picture, the top classes, the fidelity
    figure, cost and parameters."""
    names = result.names
    cost = (f"{result.evaluations} model evaluations, {result.seconds:.2f} s"
            + ("" if result.complete else "; stopped early (deadline or cancel): the best maps so far"))
    return ("<div>" + ("" if input_picture is None else figure(input_picture, "input")) + "".join(figure(rgb, name) for name, rgb in pictures.items())
            + "</div>" + "<h3>Top classes</h3>" + top_classes(result.top_classes, names)
            + f'<p>{escape(fidelity_text(result.fidelity, names))}</p><p class="note">{escape(cost)}</p>'
            + "<h3>Parameters</h3>" + details({"params": result.params, "seed": result.seed,
                                               "convergence": result.convergence, "model": result.model}))


def counterfactual_body(pair, results: dict, names: list[str] | None, out) -> str:
    """The HTML report body of `onnxplain counterfactual`: the pair, and per method its map, best
    hybrid and mask-swap curve (the PNGs already written into `out`), ranked by DAC score."""
    from .image import load_image
    from .visualize import photo

    a, b = class_label(pair.class_a, names), class_label(pair.class_b, names)
    ranked = sorted(results.items(), key=lambda item: -item[1][1].score)
    summary = table(["method", "DAC score (higher better)", "best mask size", "p(B) of the best hybrid",
                     "model evaluations"],
                    [(m, f"{s.score:.3f}", f"{s.best['size']:.3f}", f"{s.best['p_b']:.3f}", r.evaluations + s.evaluations)
                     for m, (r, s) in ranked])
    body = (f"<p>Why is the counterfactual {escape(b)} and the real image {escape(a)}? "
            f"p(A | real) = {pair.p_a_real:.3f}, p(B | counterfactual) = {pair.p_b_counterfactual:.3f}. "
            "Each map shows where pasting the counterfactual into the real image moves the model towards B; "
            "the DAC score is the area under the mask-swap curve.</p>"
            + figure(photo(pair.real), f"real: {a}") + figure(photo(pair.counterfactual), f"counterfactual: {b}")
            + section("Scores", summary + figure(load_image(out / "dac_curves.png"), "mask-swap curves")))
    for method, (result, swap) in ranked:
        pictures = [(f"{method}_{pair.class_b}.png", "map"), (f"{method}_best_hybrid.png", "best hybrid: "
                     f"the real image with the best mask's regions from the counterfactual, p(B) = {swap.best['p_b']:.3f}"),
                    (f"{method}_curve.png", "mask-swap curve")]
        body += section(f"{method}: DAC {swap.score:.3f}", "".join(
            figure(photo(load_image(out / name)), caption) for name, caption in pictures) + details(result.params))
    return body


def evaluation_page(report, paths, methods: Sequence[str], metrics: Sequence[str], model, names) -> str:
    """The HTML report of `onnxplain evaluate`: the summary (mean and 95 % interval, each metric's
    better direction), the mean curves, a gallery of every image's cached maps, the failed images."""
    from .evaluation import BETTER
    from .image import load_image
    from .visualize import map_figure, map_scale, photo

    def pm(entry):
        return f"{entry['mean']:+.3f} ± {entry['ci95']:.3f}" if entry else "-"

    rows = [(r["method"], r["metric"], r["images"], pm(r["aucs"].get("mif") or next(iter(r["aucs"].values()))),
             pm(r["aucs"].get("lif")), pm(r.get("fidelity")), pm(r.get("vs_random")),
             f"{r['explain_evaluations']:.0f} + {r['metric_evaluations']:.0f}") for r in report.summary]
    body = section("Summary", table(["method", "metric", "images", "AUC (MIF, deletion or insertion)", "AUC LIF",
                                     "fidelity (LIF - MIF)", "vs random (paired)", "evaluations / image"], rows)
                   + "<ul>" + "".join(f"<li>better, {escape(m)}: {escape(BETTER[m])}</li>" for m in metrics if m in BETTER)
                   + "</ul><p class='note'>mean ± 95 % half-width (1.96 std / sqrt(n)) over images</p>")
    body += section("Mean curves", "".join(figure(photo(load_image(report.out / f"curves_{m}.png")), m)
                                           for m in metrics if (report.out / f"curves_{m}.png").exists()))
    failed = {f["image"] for f in report.failed}
    gallery = ""
    for path in paths:
        folder = report.out / "maps" / path.name
        if path.name in failed or not folder.is_dir():
            continue
        image = load_image(path, model.input_size, model.channels)
        cells = ""
        for method in methods:
            npy, meta = folder / f"{method}.npy", folder / f"{method}.json"
            if npy.exists() and meta.exists():
                info, attribution = json.loads(meta.read_text()), np.load(npy)
                scale = map_scale(method, attribution, info.get("signed"), info.get("probability"))
                title = f"{method}: {class_label(info['target'], names)}"
                cells += figure(map_figure(image, attribution, scale, [title]), title)
        gallery += f"<h3>{escape(path.name)}</h3><div>" + figure(photo(image), "input") + cells + "</div>"
    body += section("Gallery", gallery or "<p>no maps</p>")
    if report.failed:
        body += section("Failed images", table(["image", "error", "attempts"],
                                               [(f["image"], f["error"], f["attempts"]) for f in report.failed]))
    return page(f"onnxplain evaluate: {report.images} images", body)
