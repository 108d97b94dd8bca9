"""The model registry: names to constructors, in one hop. The ground floor: it imports nothing
of the package.

``@register_model`` records a builder under its function name (plus optional aliases, the
peer libraries' names for the same architecture and the model's task) and raises on a
duplicate, as torchvision's registry does. ``create_model`` calls it (``features_only=True``
turns a classifier into its multi-scale trunk, timm's convention); ``meta_model`` does so on
the meta device (shapes only); ``list_models`` filters names with shell-style wildcards and by
task; ``peers_of`` tells which torchvision or timm model is the same network.

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
_TASKS: dict[str, str] = {}

PEER_LIBRARIES = ("torchvision", "timm")
TASKS = ("classification", "segmentation")


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
                   peers: Mapping[str, PeerSpec] | None = None,
                   task: str = "classification") -> Any:
    """Register a model builder under its function name; use bare or as
    ``@register_model(aliases=["mobilenet_v2"], peers={"torchvision": "mobilenet_v2",
    "timm": "mobilenetv2_100"})``. A peer is the peer's model name, or ``(name, kwargs)`` when
    its builder needs arguments to be the same network. ``task`` is what the model predicts
    (its class attribute ``task`` says the same; a test keeps the two equal)."""
    unknown = sorted(set(peers or {}) - set(PEER_LIBRARIES))
    if unknown:
        raise ValueError(f"unknown peer library {unknown}; expected {', '.join(PEER_LIBRARIES)}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected {', '.join(TASKS)}")

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
        _TASKS[builder.__name__] = task
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


def task_of(name: str) -> str:
    """What a registered model predicts: ``"classification"`` or ``"segmentation"``."""
    return _TASKS[resolve_name(name)]


def create_model(name: str, features_only: bool = False,
                 out_indices: Sequence[int] | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered model. Every model accepts ``num_classes``, ``in_chans`` and
    ``drop_rate``, every classifier ``output_stride`` (32, 16 or 8); family-specific options
    (``width_mult``, ``groups``, ...) pass through.

    ``features_only=True`` returns the classifier's trunk without its head, whose forward gives
    the list of stage maps selected by ``out_indices`` (indices into ``feature_info``; default
    all), as timm's ``features_only`` does."""
    builder = _BUILDERS[resolve_name(name)]
    if out_indices is not None and not features_only:
        raise ValueError("out_indices selects stage maps: it needs features_only=True")
    if features_only:
        if _TASKS[resolve_name(name)] != "classification":
            raise ValueError(f"features_only needs a classifier's trunk; {name} is a "
                             f"{_TASKS[resolve_name(name)]} model")
        kwargs.setdefault("num_classes", 0)  # the head is dropped: build no classifier
    try:
        model = builder(**kwargs)
    except TypeError as error:
        phrase = "unexpected keyword argument"
        if phrase in str(error):
            bad = str(error).split(phrase)[-1].strip()
            raise ValueError(f"{name} does not accept the argument {bad}") from None
        raise
    if features_only and not hasattr(model, "to_features"):
        raise ValueError(f"{name} is not a lightnets Classifier: features_only needs its "
                         "trunk stages")
    return model.to_features(out_indices) if features_only else model


def meta_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model on the meta device: shapes only, no memory, no initialisation
    cost."""
    with torch.device("meta"):
        return create_model(name, **kwargs).eval()


def list_models(pattern: str | Sequence[str] = "*", include_aliases: bool = False,
                task: str | None = None) -> list[str]:
    """Sorted registered names matching a shell-style pattern (or any of several), of one
    ``task`` if given (``"classification"``, ``"segmentation"``)."""
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected {', '.join(TASKS)}")
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names = [*_BUILDERS, *(_ALIASES if include_aliases else ())]
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)
                  and (task is None or _TASKS[resolve_name(n)] == task))
