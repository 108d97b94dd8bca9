"""The model registry: names to constructors, in one hop. The ground floor: it imports nothing
of the package.

``@register_model`` records a builder under its function name (plus optional aliases and the
peer libraries' names for the same architecture) and raises on a duplicate, as torchvision's
registry does. ``create_model`` calls it; ``meta_model`` does so on the meta device (shapes
only); ``list_models`` filters names with shell-style wildcards; ``peers_of`` tells which
torchvision or timm model is the same network.

A variant's name sets its defaults (``mobilenet_v2_x0_5`` is MobileNetV2 at ``width_mult=0.5``)
and every constructor argument can still be passed to change them; the checkpoint records the
arguments, so a model is always rebuilt exactly. ``create_model`` checks each argument against
the type its builder or constructor declares (``width_mult='abc'``, ``groups=2.5`` or a NaN are
one-line errors, not a ``TypeError`` deep inside a family file).
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_ALIASES: dict[str, str] = {}
_PEERS: dict[str, dict[str, Peer]] = {}

PEER_LIBRARIES = ("torchvision", "timm")


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


@dataclass(frozen=True)
class Peer:
    """A peer library's implementation of the same architecture: its model ``name`` and the
    arguments its builder needs to equal ours (same parameters, e.g. GoogLeNet without its
    auxiliary heads)."""

    library: str
    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


PeerSpec = str | tuple[str, Mapping[str, Any]]


def register_model(fn: Builder | None = None, *, aliases: Sequence[str] = (),
                   peers: Mapping[str, PeerSpec] | None = None) -> Any:
    """Register a model builder under its function name; use bare or as
    ``@register_model(aliases=["mobilenet_v2"], peers={"torchvision": "mobilenet_v2",
    "timm": "mobilenetv2_100"})``. A peer is the peer's model name, or ``(name, kwargs)`` when
    its builder needs arguments to be the same network."""
    unknown = sorted(set(peers or {}) - set(PEER_LIBRARIES))
    if unknown:
        raise ValueError(f"unknown peer library {unknown}; expected {', '.join(PEER_LIBRARIES)}")

    def add(builder: Builder) -> Builder:
        for name in (builder.__name__, *aliases):
            if name in _BUILDERS or name in _ALIASES:
                raise ValueError(f"model name {name!r} is already registered")
        _BUILDERS[builder.__name__] = builder
        for alias in aliases:
            _ALIASES[alias] = builder.__name__
        _PEERS[builder.__name__] = {
            library: Peer(library, spec) if isinstance(spec, str) else
            Peer(library, spec[0], dict(spec[1])) for library, spec in (peers or {}).items()}
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


def peers_of(name: str) -> dict[str, Peer]:
    """The peer libraries' implementations of the same architecture, by library."""
    return dict(_PEERS[resolve_name(name)])


# the simple types an argument is checked against, and how an error names them
_SIMPLE_TYPES = {bool: "True or False", int: "an integer", float: "a number", str: "a string"}


def declared_types(builder: Callable[..., nn.Module]) -> dict[str, Any]:
    """Argument name -> declared type, from the builder and the constructor of the class it
    returns (the builder's own declarations win)."""
    hints: dict[str, Any] = {}
    try:
        returned = typing.get_type_hints(builder).get("return")
        if isinstance(returned, type):
            hints.update(typing.get_type_hints(returned.__init__))
        hints.update(typing.get_type_hints(builder))
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: no check
        pass
    hints.pop("return", None)
    return hints


def argument_problem(value: Any, declared: Any) -> str | None:
    """What ``value`` should be instead, or ``None`` when it fits ``declared``. Only simple
    types are checked (and that a string is not given where none is expected)."""
    union = typing.get_origin(declared) in (typing.Union, types.UnionType)
    options = typing.get_args(declared) if union else (declared,)
    simple = [option for option in options if option in _SIMPLE_TYPES]
    if value is None and type(None) in options:
        return None
    if isinstance(value, float) and not math.isfinite(value) and float in simple:
        return "a finite number"
    for option in simple:
        if isinstance(value, option) and (option is bool or not isinstance(value, bool)):
            return None
        if option is float and isinstance(value, int) and not isinstance(value, bool):
            return None
    if simple and len(simple) == len([o for o in options if o is not type(None)]):
        return " or ".join(_SIMPLE_TYPES[option] for option in simple)
    if isinstance(value, str) and str not in options:
        return f"a {getattr(declared, '__name__', str(declared))} (not a string)"
    return None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model. Every model accepts ``num_classes``, ``in_chans`` and
    ``drop_rate``; family-specific options (``width_mult``, ``groups``, ...) pass through,
    checked against the types they are declared with."""
    builder = _BUILDERS[resolve_name(name)]
    declared = declared_types(builder)
    for key, value in kwargs.items():
        problem = argument_problem(value, declared[key]) if key in declared else None
        if problem:
            raise ValueError(f"{name}: {key} must be {problem}, got {value!r}")
    try:
        return builder(**kwargs)
    except TypeError as error:
        phrase = "unexpected keyword argument"
        if phrase in str(error):
            bad = str(error).split(phrase)[-1].strip()
            raise ValueError(f"{name} does not accept the argument {bad}") from None
        raise


def meta_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model on the meta device: shapes only, no memory, no initialisation
    cost."""
    with torch.device("meta"):
        return create_model(name, **kwargs).eval()


def list_models(pattern: str | Sequence[str] = "*", include_aliases: bool = False) -> list[str]:
    """Sorted registered names matching a shell-style pattern (or any of several)."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names = [*_BUILDERS, *(_ALIASES if include_aliases else ())]
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns))
