"""Built-in demo classifier data: synthetic images whose true evidence is known.

The shipped model ``data/demo.onnx`` (built analytically by ``tools/build_demo_model.py``)
classifies 64 x 64 RGB images into three classes by detecting one small coloured pattern
planted on a textured grey background. The planted pattern is the *only* evidence, so an
explanation method should highlight exactly the box returned by :func:`make_demo_image`.

Model contract: input ``image`` float32 ``[N, 3, 64, 64]`` (NCHW, RGB, pixel / 255),
output ``logits`` float32 ``[N, 3]`` (pre-softmax).

This module needs only numpy; `run_demo` imports the rest of the package.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DEMO_CLASSES = ["red square", "green cross", "blue ring"]
DEMO_SIZE = 64
PATTERN_SIZE = 10
BACKGROUND_GREY = 128.0

# Saturated RGB colour per class.
_COLOURS = np.array(
    [[230.0, 25.0, 25.0], [25.0, 210.0, 25.0], [25.0, 40.0, 235.0]], dtype=np.float32
)


def pattern_mask(cls: int) -> np.ndarray:
    """Boolean ``PATTERN_SIZE x PATTERN_SIZE`` shape of class ``cls``."""
    p = PATTERN_SIZE
    m = np.zeros((p, p), dtype=bool)
    if cls == 0:  # filled square
        m[:, :] = True
    elif cls == 1:  # plus-shaped cross, bars 4 px wide
        m[:, 3:7] = True
        m[3:7, :] = True
    elif cls == 2:  # ring, 2 px thick
        m[:, :] = True
        m[2:-2, 2:-2] = False
    else:
        raise ValueError(f"unknown demo class {cls!r}; expected 0..{len(DEMO_CLASSES) - 1}")
    return m


def plant(image: np.ndarray, cls: int, position: tuple[int, int]) -> tuple[int, int, int, int]:
    """Paint the pattern of class ``cls`` into ``image`` (H x W x 3, in place) with its
    top-left corner at ``position = (y, x)``. Returns the box ``(y0, x0, y1, x1)``, exclusive."""
    h, w = image.shape[:2]
    y0, x0 = int(position[0]), int(position[1])
    p = PATTERN_SIZE
    if y0 < 0 or x0 < 0 or y0 + p > h or x0 + p > w:
        raise ValueError(f"pattern at {position} does not fit inside a {h}x{w} image")
    m = pattern_mask(cls)
    region = image[y0 : y0 + p, x0 : x0 + p]
    region[m] = _COLOURS[cls]
    return (y0, x0, y0 + p, x0 + p)


def _smooth_field(rng: np.random.Generator, size: int, cells: int = 5) -> np.ndarray:
    """Bilinear upsampling of a coarse random grid in 0..1, shape size x size."""
    grid = rng.random((cells, cells))
    t = np.linspace(0.0, cells - 1, size)
    i0 = np.clip(np.floor(t).astype(int), 0, cells - 2)
    f = t - i0
    rows = grid[i0] * (1 - f)[:, None] + grid[i0 + 1] * f[:, None]  # size x cells
    out = rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]
    return out


def make_demo_image(
    cls: int | None,
    seed: int,
    size: int = DEMO_SIZE,
    position: tuple[int, int] | None = None,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A float32 ``size x size x 3`` RGB image in 0..255: textured grey background (no
    strongly coloured pixels) with the pattern of class ``cls`` planted at ``position``
    (top-left ``(y, x)``) or at a seeded random position fully inside.

    Returns ``(image, box)`` with ``box = (y0, x0, y1, x1)`` exclusive, ``(0, 0, 0, 0)``
    when ``cls`` is None."""
    rng = np.random.default_rng(seed)
    base = 100.0 + 60.0 * _smooth_field(rng, size)  # 100..160, smooth, shared by channels
    fine = rng.uniform(-4.0, 4.0, (size, size))  # low-amplitude texture, shared
    tint = rng.uniform(-3.0, 3.0, (size, size, 3))  # tiny per-channel variation
    img = np.clip(base[..., None] + fine[..., None] + tint, 0.0, 255.0).astype(np.float32)
    if cls is None:
        return img, (0, 0, 0, 0)
    if position is None:
        y, x = rng.integers(0, size - PATTERN_SIZE + 1, 2)
        position = (int(y), int(x))
    box = plant(img, cls, position)
    return img, box


def _data_dir() -> Path:
    return Path(__file__).resolve().parent / "data"


def demo_model_path() -> Path:
    """Path of the shipped demo model ``data/demo.onnx``."""
    return _data_dir() / "demo.onnx"


def chelsea_path() -> Path:
    """Path of the shipped photo ``data/chelsea.jpg`` (a cat, 451 x 300; scikit-image's, CC0)."""
    return _data_dir() / "chelsea.jpg"


def demo_image_paths() -> list[Path]:
    """Paths of the shipped sample PNGs, one per class, in class order."""
    return [_data_dir() / f"demo_{name.replace(' ', '_')}.png" for name in DEMO_CLASSES]


def evidence_share(attribution: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Fraction of an H x W map's mass above its median that lies inside box (y0, x0, y1, x1).

    The median removes a map's constant offset (RISE maps are an expected score, never 0)."""
    a = attribution.astype(np.float64)
    positive = np.clip(a - np.median(a), 0, None)
    total = positive.sum()
    y0, x0, y1, x1 = box
    return float(positive[y0:y1, x0:x1].sum() / total) if total > 0 else 0.0


# Every input method family, with its demo options (budgets that keep the demo near a minute on 2
# cores). multi: "confidence", since with every pixel at the mean the demo model's logits tie and
# the top-1 rule would call any single pixel sufficient.
DEMO_METHODS = {"occlusion": {}, "rise": {"n_masks": 1000}, "ig": {"budget": 1000}, "pmi": {"budget": 1000},
                "multi": {"criterion": "confidence"}}


def run_demo(out: str | Path, seed: int = 0, progress: bool = False, log=print) -> Path:
    """Runs every method family on the demo model and writes each explanation (maps, pictures,
    result.json, report.html) into `out/<image>_<method>/`, plus one `out/report.html` with all of
    them, a counterfactual pair (the red square's scene with a green cross in its place) and a
    fidelity comparison against a random map. Prints what it finds; returns the report's path."""
    from . import counterfactual as cf
    from . import report
    from .fidelity import RandomMap, mif_lif
    from .image import load_image
    from .model import Model
    from .registry import get_method

    out = Path(out)
    model = Model(demo_model_path(), preset="unit", output="logits", progress=progress)
    info = json.loads((_data_dir() / "demo_images.json").read_text())
    log(f"demo model: {demo_model_path().name}, classes {DEMO_CLASSES}, input {model.input_size}")
    sections, fidelity_rows = [], []
    for entry in info["images"]:
        image = load_image(_data_dir() / entry["file"], model.input_size, model.channels)
        box = tuple(entry["box"])
        stem = Path(entry["file"]).stem
        floor = RandomMap(model).attribute(image, seed=seed)
        floor_fidelity = mif_lif(model, image, floor, seed=seed).fidelity
        for method, options in DEMO_METHODS.items():
            result = get_method(method, "input").factory(model).attribute(image, seed=seed, **options)
            result.names = DEMO_CLASSES
            target = result.targets[0]
            result.save(out / f"{stem}_{method}")
            share = evidence_share(result[target], box)
            fidelity = mif_lif(model, image, result, seed=seed).fidelity
            fidelity_rows.append((stem, method, f"{share:.1%}", f"{fidelity:+.3f}", f"{floor_fidelity:+.3f}",
                                  report.fidelity_value(result.fidelity), result.evaluations))
            log(f"{stem:<18} {method:<9} predicted {DEMO_CLASSES[target]!r} (p={result.top_classes[0][1]:.3f}); "
                f"{share:6.1%} of the map's mass above its median in the planted box; fidelity {fidelity:+.3f} "
                f"(random {floor_fidelity:+.3f}); {result.evaluations} evaluations")
            sections.append(report.section(f"{stem}: {method}", result.report_html()))
    real, _ = make_demo_image(0, info["images"][0]["seed"], position=tuple(info["images"][0]["box"][:2]))
    counter, _ = make_demo_image(1, info["images"][0]["seed"], position=tuple(info["images"][0]["box"][:2]))
    pair = cf.make_pair(model, real, counter)
    results = cf.explain_pair(model, pair, ["d-occlusion", "d-rise", "residual", "occlusion", "random"], seed=seed)
    pair_dir = out / "counterfactual"
    cf.save_results(pair_dir, pair, results, DEMO_CLASSES)
    for method, (_, swap) in results.items():
        log(f"counterfactual red square -> green cross: {method:<12} DAC {swap.score:.3f}")
    head = report.table(["image", "method", "map mass in the planted box", "fidelity (20 steps)", "random map's fidelity",
                         "fidelity figure (cheap estimate)", "model evaluations"], fidelity_rows)
    body = (report.section("Fidelity: every map against a random one", head)
            + "".join(sections)
            + report.section("Counterfactual: the red square's scene with a green cross in its place",
                             report.counterfactual_body(pair, results, DEMO_CLASSES, pair_dir)))
    path = out / "report.html"
    path.write_text(report.page("onnxplain demo: every method on the built-in model", body))
    log(f"maps, pictures and reports written to {out}/; open {path}")
    return path
