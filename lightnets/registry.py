"""The model registry: names to constructors, in one hop.

``@register_model`` records a builder under its function name (plus optional aliases) and raises
on a duplicate, as torchvision's registry does. ``create_model`` calls it; ``list_models`` filters
names with shell-style wildcards; ``model_info`` reports what a model is and what it costs beside
the numbers its paper (or torchvision) publishes.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any, TypeVar

from torch import nn

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = {}


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


def register_model(fn: Builder | None = None, *, aliases: Sequence[str] = ()) -> Any:
    """Register a model builder under its function name; use bare or as
    ``@register_model(aliases=["mobilenet_v2"])``."""

    def add(builder: Builder) -> Builder:
        for name in (builder.__name__, *aliases):
            if name in _BUILDERS or name in _ALIASES:
                raise ValueError(f"model name {name!r} is already registered")
        _BUILDERS[builder.__name__] = builder
        for alias in aliases:
            _ALIASES[alias] = builder.__name__
        return builder

    return add if fn is None else add(fn)


def resolve_name(name: str) -> str:
    """The registered name behind ``name`` (an alias resolves to its target)."""
    if name in _BUILDERS:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    known = [*_BUILDERS, *_ALIASES]
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else "; see `lightnets list`"
    raise UnknownModelError(f"unknown model {name!r}{hint}")


def aliases_of(name: str) -> list[str]:
    """The aliases registered for a model name."""
    return sorted(alias for alias, target in _ALIASES.items() if target == name)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model. Every model accepts ``num_classes``, ``in_chans`` and
    ``drop_rate``; family-specific options (``width_mult``, ``groups``, ...) pass through."""
    builder = _BUILDERS[resolve_name(name)]
    try:
        return builder(**kwargs)
    except TypeError as error:
        for phrase, meaning in (("unexpected keyword argument", "does not accept the argument"),
                                ("multiple values for keyword argument", "fixes the argument")):
            if phrase in str(error):
                bad = str(error).split(phrase)[-1].strip()
                raise ValueError(f"{name} {meaning} {bad}") from None
        raise


def list_models(pattern: str | Sequence[str] = "*", include_aliases: bool = False) -> list[str]:
    """Sorted registered names matching a shell-style pattern (or any of several)."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names = [*_BUILDERS, *(_ALIASES if include_aliases else ())]
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns))


@cache
def _load_json(filename: str) -> dict[str, Any]:
    text = resources.files("lightnets.reference").joinpath(filename).read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def reference(name: str) -> dict[str, Any]:
    """Published numbers for a model (params, MACs, top-1 and their source), or ``{}``."""
    return dict(_load_json("published.json").get(resolve_name(name), {}))


def golden(name: str) -> dict[str, int]:
    """lightnets' own measured params/MACs at the default input size, kept as a regression table."""
    return dict(_load_json("golden.json").get(resolve_name(name), {}))


@dataclass
class ModelInfo:
    """What a model is and what it costs, beside its published numbers."""

    name: str
    family: str
    paper: str
    default_input_size: tuple[int, int, int]
    params: int
    macs: int | None
    aliases: list[str] = field(default_factory=list)
    reference: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_info(name: str, measure: bool = False) -> ModelInfo:
    """Describe a model: the golden table's params/MACs, or a measurement on the meta device
    when ``measure`` is set or the model is not in the table (e.g. a user-registered model)."""
    from lightnets.profile.counter import count_complexity, meta_model

    name = resolve_name(name)
    model = meta_model(name)
    stored = {} if measure else golden(name)
    if stored:
        params, macs = stored["params"], stored["macs"]
    else:
        counts = count_complexity(model)
        params, macs = counts.params, counts.macs
    return ModelInfo(name=name, family=getattr(model, "family", type(model).__name__),
                     paper=getattr(model, "paper", ""),
                     default_input_size=tuple(getattr(model, "default_input_size", (3, 224, 224))),
                     params=params, macs=macs, aliases=aliases_of(name), reference=reference(name))
