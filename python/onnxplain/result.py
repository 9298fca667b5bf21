"""The record every explanation returns."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .visualize import overlay, save_png


@dataclass
class Explanation:
    """Maps for one image, with everything needed to reproduce them.

    maps: target class -> H x W float32 map at model resolution.
    top_classes: the clean image's top classes as (class, probability).
    evaluations: images the model evaluated for this result; seconds: wall time.
    signed: overlay colours, True for a diverging map centred on 0, None to decide by the signs.
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
    warnings: list[str] = field(default_factory=list)

    @property
    def targets(self) -> list[int]:
        return list(self.maps)

    def __getitem__(self, target: int) -> np.ndarray:
        return self.maps[target]

    def record(self) -> dict:
        """JSON-ready description (no arrays)."""
        return {
            "method": self.method, "targets": self.targets, "params": self.params, "seed": self.seed,
            "evaluations": self.evaluations, "seconds": round(self.seconds, 4),
            "complete": self.complete, "convergence": self.convergence, "warnings": self.warnings,
            "top_classes": [{"class": c, "probability": p} for c, p in self.top_classes],
            "model": self.model,
            "files": {str(t): f"{self.method}_{t}.npy" for t in self.targets},
        }

    def save(self, out_dir: str | Path) -> list[Path]:
        """Writes <method>_<target>.npy, <method>_<target>.png and result.json into out_dir."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for target, attribution in self.maps.items():
            npy, png = out / f"{self.method}_{target}.npy", out / f"{self.method}_{target}.png"
            np.save(npy, attribution.astype(np.float32))
            save_png(png, overlay(self.image, attribution, signed=self.signed))
            written += [npy, png]
        (out / "result.json").write_text(json.dumps(self.record(), indent=2))
        return written + [out / "result.json"]
