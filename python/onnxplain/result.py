"""The record every explanation returns."""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import OnnxplainError, OnnxplainWarning
from .image import load_image
from .visualize import class_label, map_figure, map_scale, photo, safe_name, save_png


def writable_folder(path: str | Path, flag: str = "--out") -> Path:
    """The output folder `path`, created if missing, or an error naming `flag` (the CLI flag or the
    Python keyword) when it cannot be written: checked before any work, so a run never fails at its end."""
    if not isinstance(path, (str, os.PathLike)):
        raise OnnxplainError(f"{flag} must be a folder path, got {type(path).__name__}")
    if not str(path).strip():
        raise OnnxplainError(f"{flag} is empty; name a folder")
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


@dataclass
class Explanation:
    """Maps for one image, with everything needed to reproduce them.

    maps: target class -> H x W float32 map at model resolution.
    top_classes: the clean image's top classes as (class, probability).
    evaluations: images the model evaluated for this result; seconds: wall time.
    signed: overlay colours, True for a diverging map centred on 0, None to decide by the signs.
    names: class names (index -> name) for titles, reports and picture file names, or None.
    fidelity: the fidelity figure (`fidelity.fidelity_figure`), or None when switched off.
    complete: False when a deadline or cancellation stopped the work (the maps are the best so far);
    convergence: how far the work got and how settled the maps are (method-specific), or None;
    warnings: why the answer, though valid, is weak (one line each).
    """

    method: str
    maps: dict[int, np.ndarray]
    params: dict
    seed: int
    evaluations: int
    seconds: float
    top_classes: list[tuple[int, float]]
    image: np.ndarray = field(repr=False)
    model: dict = field(default_factory=dict, repr=False)
    signed: bool | None = field(default=None, repr=False)  # overlay colours: None = by the map's signs
    complete: bool = True
    convergence: dict | None = None
    names: list[str] | None = field(default=None, repr=False)
    fidelity: dict | None = None
    warnings: list[str] = field(default_factory=list)

    def __setattr__(self, name: str, value) -> None:
        if name == "names" and value is not None and (
                isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value)):
            raise OnnxplainError(f"names must be a list of class-name strings (index -> name), got {str(value)[:60]}")
        super().__setattr__(name, value)

    @property
    def targets(self) -> list[int]:
        return list(self.maps)

    def __getitem__(self, target: int) -> np.ndarray:
        if target not in self.maps:
            raise OnnxplainError(f"the explanation has no map for class {target!r}; it has {self.targets}")
        return self.maps[target]

    def record(self) -> dict:
        """JSON-ready description (no arrays)."""
        return {
            "method": self.method, "targets": self.targets, "params": self.params, "seed": self.seed,
            "evaluations": self.evaluations, "seconds": round(self.seconds, 4),
            "complete": self.complete, "convergence": self.convergence, "warnings": self.warnings,
            "top_classes": [{"class": c, "probability": p, **({"name": self.names[c]} if self._named(c) else {})}
                            for c, p in self.top_classes],
            "fidelity": self.fidelity, "model": self.model,
            "files": {str(t): f"{self.method}_{t}.npy" for t in self.targets},
            "pictures": {str(t): self.picture_name(t) for t in self.targets},
        }

    def _named(self, target: int) -> bool:
        return bool(self.names) and 0 <= target < len(self.names)

    def picture_name(self, target: int, suffix: str = "") -> str:
        """<method>_<target>[_<class name>]<suffix>.png: the sanitised class name when names are known."""
        name = f"_{safe_name(self.names[target])}" if self._named(target) else ""
        return f"{self.method}_{target}{name}{suffix}.png"

    def probability(self, target: int) -> float | None:
        """p(target | clean image) when it is among the recorded top classes, else None."""
        return dict(self.top_classes).get(target)

    def title(self, target: int) -> list[str]:
        p = self.probability(target)
        return [f"{self.method}: {class_label(target, self.names)}" + ("" if p is None else f", p = {p:.3f}")]

    def picture(self, target: int, original: np.ndarray | None = None) -> np.ndarray:
        """The uint8 RGB picture of one target's map (`visualize.map_figure`), over `original` (any
        size) or the model-resolution image."""
        attribution = self.maps[target]
        logits = self.params.get("scores") == "logits"  # occlusion/RISE on logits: no probability limits
        scale = map_scale(f"{self.method} (logits)" if logits else self.method, attribution, self.signed,
                          None if logits else self.probability(target))
        return map_figure(self.image if original is None else original, attribution, scale, self.title(target))

    def pictures(self, original: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """File name -> uint8 RGB picture of every target's map (`picture`)."""
        return {self.picture_name(t): self.picture(t, original) for t in self.maps}

    def arrays(self) -> dict[str, np.ndarray]:
        """File name -> array of the CLI contract (`<method>_<target>.npy`, H x W at model resolution)."""
        return {f"{self.method}_{t}.npy": m.astype(np.float32) for t, m in self.maps.items()}

    def input_picture(self, original: np.ndarray | None = None) -> np.ndarray | None:
        """The input as a uint8 RGB picture (`original` when given), or None for inputs that are no image."""
        return photo(self.image if original is None else original)

    def report_html(self, original: np.ndarray | None = None) -> str:
        """The explanation as an HTML fragment with its pictures inline."""
        from .report import explanation_body

        return explanation_body(self, self.pictures(original), self.input_picture(original))

    def _repr_html_(self) -> str:
        return self.report_html()

    def save(self, out_dir: str | Path, original: str | Path | np.ndarray | None = None) -> list[Path]:
        """Writes the maps (`arrays`), their pictures (`pictures`), input.png, result.json and a
        self-contained report.html into out_dir. original: the photo as given (a path or an H0 x W0
        x C array, any size and aspect), on which the pictures are drawn, the maps resampled to
        it; default the model-resolution image."""
        from .report import page

        out = writable_folder(out_dir, "out_dir")
        if original is not None:
            with warnings.catch_warnings():  # the input's warnings were given when it was explained
                warnings.simplefilter("ignore", OnnxplainWarning)
                original = load_image(original, None, self.image.shape[2])
        written = []
        for name, array in self.arrays().items():
            np.save(out / name, array)
            written.append(out / name)
        shown = self.input_picture(original)
        for name, rgb in {**({} if shown is None else {"input.png": shown}), **self.pictures(original)}.items():
            save_png(out / name, rgb)
            written.append(out / name)
        (out / "result.json").write_text(json.dumps(self.record(), indent=2))
        (out / "report.html").write_text(page(f"onnxplain: {self.method}", self.report_html(original)))
        return written + [out / "result.json", out / "report.html"]
