"""The one registry of attribution methods, read by every front end: `onnxplain explain`,
`evaluate` / `onnxplain evaluate` and `onnxplain counterfactual` / `counterfactual.explain_pair`.

Each entry (`MethodSpec`) says what it explains:
- "input": one image. `factory(model)` returns an object whose
  `attribute(image, target=..., seed=..., **options)` gives an `Explanation`
  (any `Explainer` class fits). Read by `explain` and `evaluate`.
- "pair": a (real, counterfactual) `counterfactual.Pair`. `factory(model, pair, seed=..., **options)`
  returns an `Explanation` whose map is keyed by the pair's class B. Read by `counterfactual`.

A name is unique within its kind: "occlusion", "rise" and "random" exist as input methods and as
their vanilla pair versions. `defaults` are options used unless the caller overrides them (the
library signatures stay the source of the built-ins' defaults, so theirs are empty).

    register_method("mine", MyExplainer, description="my map", blur=1.5)   # an input method
    register_method("d-mine", my_pair_map, explains="pair")                # a pair method
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .causal import Causal
from .errors import OnnxplainError
from .fidelity import RandomMap
from .information import IG, PMI
from .reference import RISE, Occlusion

KINDS = {"input": "one input", "pair": "a pair (counterfactual)"}


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: name, what it explains ("input" or "pair"), its factory (see the
    module docstring), default options and a one-line description."""

    name: str
    explains: str
    factory: Callable[..., Any]
    defaults: dict = field(default_factory=dict)
    description: str = ""


METHODS: dict[tuple[str, str], MethodSpec] = {}  # (name, explains) -> spec, in registration order


def _check_kind(explains: str) -> str:
    if explains not in KINDS:
        raise OnnxplainError(f"explains must be one of {list(KINDS)}, got {explains!r}")
    return explains


def register_method(name: str, factory: Callable[..., Any], *, explains: str = "input", description: str = "",
                    **defaults) -> MethodSpec:
    """Makes a method available by name to every front end of its kind; re-registering a
    (name, explains) replaces it. defaults: options used unless the caller overrides them."""
    _check_kind(explains)
    if not isinstance(name, str) or not name or "," in name or "." in name or name != name.strip():
        raise OnnxplainError(f"a method name must be a non-empty string without ',', '.' or surrounding spaces, "
                             f"got {name!r}")
    if not callable(factory):
        raise OnnxplainError(f"the factory of method {name!r} must be callable, got {factory!r}")
    spec = MethodSpec(name, explains, factory, dict(defaults), description)
    METHODS[(name, explains)] = spec  # a replacement keeps its place in the order
    return spec


def unregister_method(name: str, explains: str = "input") -> None:
    """Removes a registered method (no error when absent)."""
    METHODS.pop((name, _check_kind(explains)), None)


def method_names(explains: str) -> list[str]:
    """The registered methods of one kind, in registration order."""
    _check_kind(explains)
    return [name for name, kind in METHODS if kind == explains]


def get_method(name: str, explains: str | None = None) -> MethodSpec:
    """The registered method `name` of kind `explains` ("input" or "pair"; None: whichever kind
    has that name, which must be only one)."""
    if explains is None:
        kinds = [kind for kind in KINDS if (name, kind) in METHODS]
        if len(kinds) == 1:
            return METHODS[(name, kinds[0])]
        if len(kinds) > 1:
            raise OnnxplainError(f"method {name!r} is registered for {' and for '.join(KINDS[k] for k in kinds)}; "
                                 f"say which with explains=")
        available = "; ".join(f"for {KINDS[k]}: {', '.join(method_names(k))}" for k in KINDS)
        raise OnnxplainError(f"unknown method {name!r}; available {available}")
    _check_kind(explains)
    spec = METHODS.get((name, explains))
    if spec is not None:
        return spec
    other = [k for k in KINDS if k != explains and (name, k) in METHODS]
    hint = f" ({name!r} explains {KINDS[other[0]]})" if other else ""
    raise OnnxplainError(f"unknown method {name!r} for explaining {KINDS[explains]}{hint}; available: "
                         f"{', '.join(method_names(explains)) or 'none'}")


def accepted(options: dict, func: Callable[..., Any]) -> dict:
    """The options `func` takes as keywords (all of them when it has **kwargs), so a front end
    can pass its shared options (window, seed, ...) to methods that use only some."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # no signature to read: pass everything
        return dict(options)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return dict(options)
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {k: v for k, v in options.items() if k in names}


def check_options(name: str, options: dict, func: Callable[..., Any]) -> None:
    """An error naming the options of method `name` that `func` (its `attribute`) does not take,
    and those it does."""
    unknown = sorted(set(options) - set(accepted(options, func)))
    if unknown:
        taken = [p.name for p in inspect.signature(func).parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("image", "target")]
        raise OnnxplainError(f"method {name!r} has no option {', '.join(map(repr, unknown))}; its options are "
                             f"{', '.join(taken)} (CLI: --option {name}.KEY=VALUE)")


# ---- built-ins -----------------------------------------------------------------------------

def _pair_map(method: str) -> Callable[..., Any]:
    """The pair factory of a built-in counterfactual map (counterfactual.py imports this module,
    so it is imported when called, not here)."""

    def factory(model, pair, **options):
        from .counterfactual import discriminative_map

        return discriminative_map(model, pair, method, **options)

    factory.__name__ = f"pair_map_{method.replace('-', '_')}"
    factory.__doc__ = f"counterfactual.discriminative_map(model, pair, {method!r}, **options)"
    return factory


register_method("occlusion", Occlusion, description="sliding-window occlusion: drop in the score where a window is hidden")
register_method("rise", RISE, description="RISE: random masks weighted by the score they keep")
register_method("ig", IG, description="information gain of each patch (KL divergence when it is resampled)")
register_method("pmi", PMI, description="pointwise mutual information of each patch with each class")
register_method("multi", Causal, description="causal responsibility map (the map) and minimal sufficient explanations")
register_method("random", RandomMap, description="uniform random map: the floor evaluate compares against")

_PAIR_MAPS = {  # the built-in pair methods (counterfactual.discriminative_map), with their descriptions
    "residual": "|x_r - x_c| summed over channels (no model evaluation)",
    "d-occlusion": "windows of x_c pasted into x_r: change in p(B)",
    "d-rise": "RISE masks blending x_c into x_r: expected p(B) gain",
    "d-pmi": "windows of x_c pasted into x_r: change in ln p(B)",
    "occlusion": "vanilla occlusion of x_r's class A (never sees x_c)",
    "rise": "vanilla RISE of x_r's class A (never sees x_c)",
    "random": "smoothed |N(0, 1)| noise: the floor",
}
for _name, _description in _PAIR_MAPS.items():
    register_method(_name, _pair_map(_name), explains="pair", description=_description)
