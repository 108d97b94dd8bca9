"""The model registry: names to constructors, in one hop. The ground floor: it imports nothing
of the package.

``@register_model`` records a builder under its function name (plus optional aliases, the
peer libraries' names for the same architecture and the model's task) and raises on a
duplicate, as torchvision's registry does. ``create_model`` calls it (``features_only=True``
turns a classifier into its multi-scale trunk, timm's convention); ``meta_model`` does so on
the meta device (shapes only); ``list_models`` filters names with shell-style wildcards and by
task; ``peers_of`` tells which torchvision or timm model is the same network, and how its
checkpoints load into ours (:class:`PeerWeights`, declared in the family file beside the
builder).

``create_model(name, checkpoint_path=...)`` loads a file as well. Reading files is the job of
:mod:`lightnets.weights`, four floors up, which this module must not import; so the weights
package registers its loader here when it is imported (:func:`register_checkpoint_loader`),
the way family modules register builders, and importing ``lightnets`` imports it. Both
``lightnets.create_model`` and ``lightnets.registry.create_model`` are this one function.

A variant's name sets its defaults (``mobilenet_v2_x0_5`` is MobileNetV2 at ``width_mult=0.5``)
and every constructor argument can still be passed to change them; the checkpoint records the
arguments, so a model is always rebuilt exactly. ``create_model`` checks each argument against
the type its builder or constructor declares (``width_mult='abc'``, ``groups=2.5`` or a NaN are
one-line errors, not a ``TypeError`` deep inside a family file).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
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
_TASKS: dict[str, str] = {}
_CHECKPOINT_LOADER: list[Callable[..., nn.Module]] = []  # set by lightnets.weights

PEER_LIBRARIES = ("torchvision", "timm", "smp")  # smp: segmentation_models_pytorch
# what a model predicts; lightnets.tasks holds one object per task that knows the rest
CLASSIFICATION, SEGMENTATION, DETECTION = TASKS = ("classification", "segmentation", "detection")


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


@dataclass(frozen=True)
class PeerWeights:
    """How a peer library's checkpoints of the twin load into ours (:mod:`lightnets.weights`).

    ``keys``: rules renaming the peer's state-dict keys to ours, ``(pattern, replacement)``
    regular expressions applied to every key in turn (``re.sub``, first occurrence); the
    renamed keys must then be exactly the model's, with the same shapes, or the load fails.
    ``reshaped``: our keys whose tensor is the peer's reshaped (a 1x1 convolution on a pooled
    map read as a fully-connected layer). ``options``: our constructor arguments that
    reproduce the peer's network exactly (timm's ReLU6 MobileNet V1). ``flags``: boolean
    constructor arguments set when a renamed key matches the pattern (auxiliary heads present in
    the file); ``flags_if_absent``: those set when no renamed key matches (torchvision's published
    detectors: frozen BatchNorm, which has no step counters). ``preprocess``: the evaluation
    preprocessing of the peer's pretrained weights where only the peer library holds it (timm's
    ``pretrained_cfg``, which lightnets does not import: ``input_size``, ``crop_pct``,
    ``interpolation``, ``mean``, ``std``; unset fields take timm's defaults).
    ``pretrained_kwargs``: the peer builder's arguments for the form its pretrained checkpoints
    take (torchvision's GoogLeNet: ``transform_input=True`` and auxiliary heads), used by the
    parity tests and benchmark. ``ignored``: renamed keys (patterns) left out of the file as
    unused by the network (segmentation_models_pytorch's PSPNet keeps its encoder's deeper
    stages, which it never runs)."""

    keys: Sequence[tuple[str, str]] = ()
    reshaped: Sequence[str] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    flags: Mapping[str, str] = field(default_factory=dict)
    flags_if_absent: Mapping[str, str] = field(default_factory=dict)
    preprocess: Mapping[str, Any] = field(default_factory=dict)
    pretrained_kwargs: Mapping[str, Any] = field(default_factory=dict)
    ignored: Sequence[str] = ()  # patterns of renamed keys the model has no use for, dropped


@dataclass(frozen=True)
class Peer:
    """A peer library's implementation of the same architecture: its model ``name``, the
    arguments its builder needs to equal ours (same parameters, e.g. GoogLeNet without its
    auxiliary heads), and how its checkpoints load into ours (``weights``; ``None``: they do
    not). ``library`` is filled in by :func:`register_model` from the ``peers`` key."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    weights: PeerWeights | None = None
    library: str = ""


PeerSpec = str | tuple[str, Mapping[str, Any]] | Peer


def register_model(fn: Builder | None = None, *, aliases: Sequence[str] = (),
                   peers: Mapping[str, PeerSpec] | None = None,
                   task: str = CLASSIFICATION) -> Any:
    """Register a model builder under its function name; use bare or as
    ``@register_model(aliases=["mobilenet_v2"], peers={"torchvision": "mobilenet_v2",
    "timm": "mobilenetv2_100"})``. A peer is the peer's model name, ``(name, kwargs)`` when
    its builder needs arguments to be the same network, or a :class:`Peer` (with ``weights``).
    ``task`` is what the model predicts (its class attribute ``task`` says the same; a test
    keeps the two equal)."""
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
        _PEERS[builder.__name__] = {library: _peer(library, spec)
                                    for library, spec in (peers or {}).items()}
        _TASKS[builder.__name__] = task
        return builder

    return add if fn is None else add(fn)


def _peer(library: str, spec: PeerSpec) -> Peer:
    if isinstance(spec, Peer):
        return dataclasses.replace(spec, library=library)
    if isinstance(spec, str):
        return Peer(spec, library=library)
    return Peer(spec[0], dict(spec[1]), library=library)


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


def builder_takes(name: str, argument: str) -> bool:
    """Whether the builder of the registered model ``name`` names ``argument`` itself (rather
    than passing it on to the class it builds)."""
    return argument in inspect.signature(_BUILDERS[resolve_name(name)]).parameters


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


def task_of(name: str) -> str:
    """What a registered model predicts: one of :data:`TASKS` (a builder put in the table by
    hand, as tests do, classifies)."""
    return _TASKS.get(resolve_name(name), CLASSIFICATION)


def register_checkpoint_loader(loader: Callable[..., nn.Module]) -> None:
    """Install the function behind ``create_model(..., checkpoint_path=...)``; called once, by
    :mod:`lightnets.weights` when it is imported."""
    _CHECKPOINT_LOADER[:] = [loader]


def create_model(name: str, checkpoint_path: str | None = None, source: str | None = None,
                 strict: bool = True, features_only: bool = False,
                 out_indices: Sequence[int] | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered model. Every model accepts ``num_classes``, ``in_chans`` and
    ``drop_rate``, every classifier ``output_stride`` (32, 16 or 8); family-specific options
    (``width_mult``, ``groups``, ...) pass through, checked against the types they are declared
    with.

    ``checkpoint_path``: a lightnets checkpoint, a torchvision or timm state dict or a Hugging
    Face-style folder to load (see :func:`lightnets.weights.load_pretrained`), detected from its
    keys or forced by ``source``; ``strict=False`` skips what does not fit and says so.

    ``features_only=True`` returns the classifier's trunk without its head, whose forward gives
    the list of stage maps selected by ``out_indices`` (indices into ``feature_info``; default
    all), as timm's ``features_only`` does."""
    if source is not None and checkpoint_path is None:
        raise ValueError(f"source={source!r} applies to a checkpoint_path; none was given")
    if out_indices is not None and not features_only:
        raise ValueError("out_indices selects stage maps: it needs features_only=True")
    if features_only and _TASKS[resolve_name(name)] != CLASSIFICATION:
        raise ValueError(f"features_only needs a classifier's trunk; {name} is a "
                         f"{_TASKS[resolve_name(name)]} model")
    if checkpoint_path is not None:
        if not _CHECKPOINT_LOADER:
            raise RuntimeError("loading checkpoints needs lightnets.weights; import lightnets")
        model = _CHECKPOINT_LOADER[0](name, checkpoint_path, source=source, strict=strict,
                                      **kwargs)
    else:
        model = _build(name, features_only, **kwargs)
    if features_only and not hasattr(model, "to_features"):
        raise ValueError(f"{name} is not a lightnets Classifier: features_only needs its "
                         "trunk stages")
    return model.to_features(out_indices) if features_only else model


def _build(name: str, features_only: bool = False, **kwargs: Any) -> nn.Module:
    builder = _BUILDERS[resolve_name(name)]
    if features_only:
        kwargs.setdefault("num_classes", 0)  # the head is dropped: build no classifier
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


def list_models(pattern: str | Sequence[str] = "*", include_aliases: bool = False,
                task: str | None = None) -> list[str]:
    """Sorted registered names matching a shell-style pattern (or any of several), of one
    ``task`` if given (one of :data:`TASKS`)."""
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected {', '.join(TASKS)}")
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names = [*_BUILDERS, *(_ALIASES if include_aliases else ())]
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)
                  and (task is None or _TASKS[resolve_name(n)] == task))
