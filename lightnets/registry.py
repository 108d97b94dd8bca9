"""The model registry: names to constructors, in one hop. The ground floor: it imports nothing
of the package.

``@register_model`` records a builder under its function name (plus optional aliases and the
peer libraries' names for the same architecture) and raises on a duplicate, as torchvision's
registry does. ``create_model`` calls it; ``meta_model`` does so on the meta device (shapes
only); ``list_models`` filters names with shell-style wildcards; ``peers_of`` tells which
torchvision or timm model is the same network.

A variant's name sets its defaults (``mobilenet_v2_x0_5`` is MobileNetV2 at ``width_mult=0.5``)
and every constructor argument can still be passed to change them; the checkpoint records the
arguments, so a model is always rebuilt exactly.
"""

from __future__ import annotations

import difflib
import fnmatch
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


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model. Every model accepts ``num_classes``, ``in_chans`` and
    ``drop_rate``; family-specific options (``width_mult``, ``groups``, ...) pass through."""
    builder = _BUILDERS[resolve_name(name)]
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
