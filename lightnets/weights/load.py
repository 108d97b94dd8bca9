"""Loading a file into a zoo model: find its source, rename and check its tensors, build the
variant that reproduces it, adapt the classifier and the input channels.

:func:`read_pretrained` reads a file and sets it against the model it was made for (the
family's twin declaration, ``PeerWeights``, gives the renaming rules and the constructor options
that reproduce the source); :func:`build_pretrained` builds the model from it for the classes
and channels wanted. :func:`load_pretrained` does both, and is what
``create_model(name, checkpoint_path=...)`` calls. The model is built on the meta device and
the file's tensors assigned to it, so no time goes into initialising weights that are
overwritten; only a replaced classifier is initialised (a detector with new class layers is
built whole: it has no ``reset_classifier``, its heads initialise their class layers).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightnets.checkpoint import Checkpoint
from lightnets.data import default_preprocess
from lightnets.data.transforms import make_preprocess
from lightnets.registry import (PeerWeights, create_model, list_models, meta_model, peers_of,
                                resolve_name)
from lightnets.tasks import task_for
from lightnets.weights.files import WeightsFile, open_weights
from lightnets.weights.layout import layout_of
from lightnets.weights.mapping import Fit, adapt_input_conv, fit, rename
from lightnets.weights.preprocess import (imagenet_categories, timm_preprocess,
                                          torchvision_preprocess, torchvision_weights)
from lightnets.weights.smp import is_smp_config, smp_options, smp_preprocess, smp_twin

SOURCES = ("lightnets", "torchvision", "timm", "smp")
FIXED = ("num_classes", "in_chans")  # decided by the file, then changed by the loader
IMAGENET_CLASSES = 1000


class PretrainedNote(UserWarning):
    """What loading a file changed or assumed (a replaced classifier, adapted input channels,
    the preprocessing chosen), one line each."""


@dataclass
class Pretrained:
    """What a model loaded from a file carries as ``model.pretrained``."""

    source: str                          # lightnets, torchvision, timm or smp
    path: str                            # the weights file read
    model_name: str
    model_args: dict[str, Any]           # rebuilds the same network: create_model(name, **args)
    preprocess: dict[str, Any]           # the evaluation preprocessing of the weights
    class_names: list[str] | None        # None when the classifier is new, or has no names
    loaded: list[str] = field(default_factory=list)  # the keys whose tensors came from the file
    notes: list[str] = field(default_factory=list)
    checkpoint: Checkpoint | None = None  # the lightnets checkpoint read, if it was one


@dataclass
class SourceWeights:
    """A file read and checked against the network it was made for (see :func:`read_pretrained`)."""

    model_name: str
    source: str
    path: Path
    state: dict[str, torch.Tensor]       # renamed to our keys, checked
    options: dict[str, Any]              # our constructor arguments reproducing the source
    num_classes: int
    in_chans: int
    preprocess: dict[str, Any]
    class_names: list[str] | None
    notes: list[str] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    backbone: str | None = None          # a classifier's weights for the model's backbone alone


@dataclass
class Candidate:
    """One reading of a state dict: as the ``source`` library's file of the model."""

    source: str
    weights: PeerWeights
    fit: Fit
    options: dict[str, Any]
    num_classes: int
    in_chans: int


def as_source(name: str, source: str, weights: PeerWeights, state: dict[str, torch.Tensor],
              user_args: dict[str, Any]) -> Candidate:
    """Rename ``state`` with the source's rules and check it against the model it describes."""
    renamed = {key: tensor for key, tensor in rename(state, weights.keys).items()
               if not any(re.search(pattern, key) for pattern in weights.ignored)}
    flags = {option: any(re.search(pattern, key) for key in renamed)
             for option, pattern in weights.flags.items()}
    flags.update({option: not any(re.search(pattern, key) for key in renamed)
                  for option, pattern in weights.flags_if_absent.items()})
    options = {**weights.options, **flags}
    layout = layout_of(name, **{**options, **user_args, **flags})  # the file decides its flags
    classes, chans = layout.classes_and_chans(renamed)
    return Candidate(source, weights, fit(renamed, layout.at(classes, chans), weights.reshaped),
                     options, classes, chans)


def choose(candidates: list[Candidate], weights_file: WeightsFile, name: str, strict: bool,
           notes: list[str]) -> Candidate:
    """The candidate that fits. Of several (torchvision's and timm's key names can be the
    same): torchvision's for a file named as one of its releases, else timm's for Hugging
    Face-style files (``.bin``, ``.safetensors``) and torchvision's for the others, said in a
    note."""
    fitting = [c for c in candidates if c.fit.ok]
    path = weights_file.path
    if len(fitting) > 1:
        sources = [c.source for c in fitting]
        if "torchvision" in sources and torchvision_weights(
                peers_of(name)["torchvision"].name, path)[1]:
            return fitting[sources.index("torchvision")]
        prefer = "timm" if path.suffix in (".bin", ".safetensors") else "torchvision"
        chosen = fitting[sources.index(prefer)] if prefer in sources else fitting[0]
        others = ", ".join(c.source for c in fitting if c is not chosen)
        notes.append(f"{path.name} fits both {chosen.source} and {others}; read as "
                     f"{chosen.source}'s (pass source= to choose)")
        return chosen
    if fitting:
        return fitting[0]
    best = min(candidates, key=lambda c: c.fit.problems)
    if not strict:
        notes.append(f"strict=False: read {path.name} as {best.source}'s {name} and skipped "
                     f"{best.fit.describe()}")
        return best
    # the closest reading names its key names, never the file's origin (a timm file read with
    # lightnets' key names is no lightnets file)
    sources = [c.source for c in candidates]
    tried = " or ".join(filter(None, (", ".join(sources[:-1]), sources[-1])))
    raise ValueError(f"{str(path)!r} does not fit lightnets' {name} as a {tried} file (closest, "
                     f"with {best.source}'s key names: {best.fit.describe()}); is it another "
                     "architecture? (strict=False loads what fits)")


def source_preprocess(name: str, candidate: Candidate, weights_file: WeightsFile,
                      notes: list[str], user_args: dict[str, Any]
                      ) -> tuple[dict[str, Any], list[str] | None]:
    """The preprocessing and class names of a torchvision, timm or smp file."""
    path, config = weights_file.path, weights_file.config or {}
    detector = task_for(name).background_classes > 0  # its class 0 is the background
    names = (imagenet_categories() if candidate.num_classes == IMAGENET_CLASSES and not detector
             else None)
    if candidate.source == "torchvision":
        peer = peers_of(name)["torchvision"]
        entry, matched = torchvision_weights(peer.name, path)
        if not matched:
            notes.append(f"{path.name} is none of torchvision's {peer.name} releases by name; "
                         f"{'class names' if detector else 'preprocessing'} of {entry} assumed")
        categories = list(entry.meta.get("categories") or [])
        if detector:  # torchvision's list starts with the background, lightnets' names at 1
            categories = categories[1:]
        else:  # a segmenter's class 0, named as lightnets' VOC masks name it
            categories = ["background" if c == "__background__" else c for c in categories]
        if len(categories) == candidate.num_classes - detector:
            names = categories
        if detector:  # the letterbox of lightnets' detection data, to the detector's min_size
            size = meta_model(name, **{**candidate.options, **user_args}).default_input_size[-1]
            return default_preprocess("coco", size, candidate.in_chans), names
        return torchvision_preprocess(entry), names
    if candidate.source == "timm":
        if "pretrained_cfg" in config:
            labels = config.get("label_names")
            if labels and len(labels) == candidate.num_classes:
                names = list(labels)
            return timm_preprocess(config["pretrained_cfg"]), names
        return timm_preprocess(candidate.weights.preprocess), names
    if candidate.source == "smp":
        return smp_preprocess(name, candidate.in_chans, {**candidate.options, **user_args}), None
    # a plain state dict of a lightnets model: the usual ImageNet evaluation
    size = meta_model(name).default_input_size[-1]
    notes.append(f"{path.name} is a bare lightnets state dict; ImageNet preprocessing at {size} "
                 "assumed")
    return default_preprocess("folder", size, candidate.in_chans), None


def timm_architecture(config: dict[str, Any]) -> str | None:
    architecture = config.get("architecture") or config.get("model_name")
    return architecture.split(".")[0] if isinstance(architecture, str) else None


def twin_of(architecture: str) -> str:
    """The lightnets model whose timm twin is ``architecture``."""
    for name in list_models():
        peer = peers_of(name).get("timm")
        if peer is not None and peer.name == architecture:
            return name
    raise ValueError(f"no lightnets model is the twin of timm's {architecture!r}; pass the model "
                     "name")


def read_pretrained(path: str | Path, name: str | None = None, source: str | None = None,
                    strict: bool = True, **user_args: Any) -> SourceWeights:
    """Read ``path`` as weights of model ``name`` (for a lightnets checkpoint or a Hugging Face
    folder the file names it) from ``source`` (detected when ``None``), checked against the
    network that reproduces it. ``user_args`` are further constructor arguments (not
    ``num_classes`` / ``in_chans``). A file that is not the model's but its backbone's (a
    classifier's weights for a segmenter) initialises the backbone alone
    (:func:`backbone_weights`)."""
    try:
        return read_model_weights(path, name, source, strict, **user_args)
    except ValueError as error:
        trunk = backbone_of(name, user_args)
        if trunk is None:
            raise
        try:
            classifier = read_model_weights(path, trunk, source, True,
                                            **dict(user_args.get("backbone_args") or {}))
        except ValueError:
            raise error from None  # neither the model's nor its backbone's: the model's reason
    return backbone_weights(classifier, resolve_name(name), user_args)


def backbone_of(name: str | None, user_args: dict[str, Any]) -> str | None:
    """The registered classifier model ``name`` stands on, where its weights can be loaded
    alone (a segmenter's ``backbone_name``; detectors take them through ``backbone_args``)."""
    if name is None:
        return None
    try:
        model = meta_model(resolve_name(name), **user_args)
    except (ValueError, TypeError):
        return None
    return getattr(model, "backbone_name", None)


def backbone_weights(classifier: SourceWeights, name: str, user_args: dict[str, Any]
                     ) -> SourceWeights:
    """A classifier's weights as those of the backbone of model ``name`` (a segmenter's trunk
    keeps the classifier's module names under ``backbone.``): every backbone tensor must come
    from the file; the head starts new. Its preprocessing keeps the weights' normalisation and
    interpolation, the whole image resized to the classifier's input size (dense prediction
    sees all of it)."""
    options = ({"backbone_args": {**classifier.options,
                                  **dict(user_args.get("backbone_args") or {})}}
               if classifier.options else {})
    layout = layout_of(name, **{**options, **user_args})
    reference = layout.at(0, classifier.in_chans)
    state = {f"backbone.{key}": tensor for key, tensor in classifier.state.items()
             if f"backbone.{key}" in reference}  # the trunk's later stages may go unused
    wanted = {key: shape for key, shape in reference.items() if key.startswith("backbone.")}
    checked = fit(state, wanted)
    if not checked.ok:
        raise ValueError(f"{str(classifier.path)!r} holds {classifier.source}'s "
                         f"{classifier.model_name}, which does not fit the backbone of {name}: "
                         f"{checked.describe()}")
    pre = classifier.preprocess
    size = pre["input_size"] if isinstance(pre["input_size"], int) else pre["input_size"][0]
    preprocess = make_preprocess(size, classifier.in_chans, [size, size], pre["mean"],
                                 pre["std"], pre.get("interpolation", "bilinear"))
    classes = meta_model(name, **{**options, **user_args}).num_classes
    return SourceWeights(name, classifier.source, classifier.path, checked.state, options,
                         classes, classifier.in_chans, preprocess, None, classifier.notes,
                         classifier.checkpoint, backbone=classifier.model_name)


def read_model_weights(path: str | Path, name: str | None = None, source: str | None = None,
                       strict: bool = True, **user_args: Any) -> SourceWeights:
    """:func:`read_pretrained` of the model's own weights."""
    if source is not None and source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    fixed = sorted(set(user_args) & set(FIXED))
    if fixed:
        raise ValueError(f"{', '.join(fixed)} are applied when the model is built, not read")
    weights_file = open_weights(path)
    notes: list[str] = []
    if weights_file.checkpoint is not None:
        return lightnets_checkpoint(weights_file, name, source, strict, user_args, notes)
    smp_folder = is_smp_config(weights_file.config)
    if smp_folder:  # smp's save_pretrained: its config names the model and its widths
        name = smp_twin(weights_file.config) if name is None else name
        user_args = {**smp_options(weights_file.config), **user_args}
    if source == "lightnets":
        candidates_sources = ["lightnets"]
    elif source is not None:
        candidates_sources = [source]
    elif weights_file.config is not None:
        candidates_sources = ["smp" if smp_folder else "timm"]
    else:
        candidates_sources = ["torchvision", "timm", "smp", "lightnets"]
    if name is None:
        architecture = timm_architecture(weights_file.config or {})
        if architecture is None:
            raise ValueError(f"{str(weights_file.path)!r} is not a lightnets checkpoint and "
                             "does not name its model; pass the lightnets model name (--model)")
        name = twin_of(architecture)
    name = resolve_name(name)
    peers = peers_of(name)
    if weights_file.config is not None and "timm" in peers and not smp_folder:
        architecture = timm_architecture(weights_file.config)
        if architecture not in (None, peers["timm"].name):
            raise ValueError(f"{str(path)!r} holds timm's {architecture}; lightnets' {name} is "
                             f"the twin of timm's {peers['timm'].name}")
    candidates = []
    for library in candidates_sources:
        if library == "lightnets":
            weights = PeerWeights()
        elif library in peers and peers[library].weights is not None:
            weights = peers[library].weights
        else:
            if source is not None or weights_file.config is not None:
                raise ValueError(f"lightnets' {name} has no {library} twin whose weights load "
                                 f"(its twins: {', '.join(peers) or 'none'})")
            continue
        candidates.append(as_source(name, library, weights, weights_file.state, user_args))
    chosen = choose(candidates, weights_file, name, strict, notes)
    preprocess, class_names = source_preprocess(name, chosen, weights_file, notes, user_args)
    options = {**chosen.options, **smp_options(weights_file.config)} if smp_folder \
        else chosen.options
    return SourceWeights(name, chosen.source, weights_file.path, chosen.fit.state,
                         options, chosen.num_classes, chosen.in_chans, preprocess,
                         class_names, notes)


def lightnets_checkpoint(weights_file: WeightsFile, name: str | None, source: str | None,
                         strict: bool, user_args: dict[str, Any],
                         notes: list[str]) -> SourceWeights:
    """A lightnets checkpoint: its own model, arguments, preprocessing and class names."""
    checkpoint = weights_file.checkpoint
    if source not in (None, "lightnets"):
        raise ValueError(f"{str(weights_file.path)!r} is a lightnets checkpoint, not a {source} "
                         "file")
    if name is not None:
        checkpoint.check_matches(model_name=name)
    name = resolve_name(checkpoint.model_name)
    stored = dict(checkpoint.model_args)
    classes = stored.pop("num_classes", IMAGENET_CLASSES)
    chans = stored.pop("in_chans", 3)
    if checkpoint.pruning:  # its widths come from the channel plan: Checkpoint.build_model
        if user_args:
            raise ValueError(f"{str(weights_file.path)!r} is a pruned checkpoint, rebuilt from "
                             f"its channel plan; its arguments cannot change "
                             f"({', '.join(user_args)})")
        size = meta_model(name, **stored, in_chans=chans).default_input_size[-1]
        return SourceWeights(name, "lightnets", weights_file.path, weights_file.state, stored,
                             classes, chans, checkpoint.preprocess
                             or default_preprocess("folder", size, chans),
                             checkpoint.class_names, notes, checkpoint)
    checked = fit(weights_file.state, layout_of(name, **stored, **user_args).at(classes, chans))
    if not checked.ok:
        if strict:
            raise ValueError(f"weights in {str(weights_file.path)!r} do not fit {name}: "
                             f"{checked.describe()}")
        notes.append(f"strict=False: skipped {checked.describe()}")
    size = meta_model(name, **stored, in_chans=chans).default_input_size[-1]
    preprocess = checkpoint.preprocess or default_preprocess("folder", size, chans)
    return SourceWeights(name, "lightnets", weights_file.path, checked.state, stored, classes,
                         chans, preprocess, checkpoint.class_names, notes, checkpoint)


def build_pretrained(weights: SourceWeights, num_classes: int | None = None,
                     in_chans: int | None = None, **user_args: Any) -> nn.Module:
    """The model for ``weights`` with ``num_classes`` classes (a new classifier if they differ
    from the file's) and ``in_chans`` input channels (the first convolution adapted), its
    ``pretrained`` attribute set (:class:`Pretrained`). Each change is said in a
    :class:`PretrainedNote` warning."""
    name, notes = weights.model_name, list(weights.notes)
    classes = weights.num_classes if num_classes is None else num_classes
    chans = weights.in_chans if in_chans is None else in_chans
    args = {**weights.options, **user_args}
    layout = layout_of(name, **args)
    target = layout.at(classes, chans)
    state = {key: tensor.float() if tensor.is_floating_point() else tensor
             for key, tensor in weights.state.items()}
    preprocess = dict(weights.preprocess)
    if chans != weights.in_chans:
        if layout.first_conv in state:
            state[layout.first_conv] = adapt_input_conv(state[layout.first_conv], chans)
        notes.append(f"first convolution adapted from {weights.in_chans} to {chans} input "
                     "channel(s)")
        preprocess = {**preprocess, **make_preprocess(  # a detector's letterbox stays
            preprocess["input_size"], chans, preprocess["resize"], preprocess["mean"],
            preprocess["std"], preprocess.get("interpolation", "bilinear"))}
    class_names = weights.class_names
    detector = task_for(name).background_classes > 0  # its class 0 is the background
    replaced = (layout.classifier if classes != weights.num_classes and not weights.backbone
                else frozenset())  # a backbone's file has no head to replace
    if replaced:
        state = {key: tensor for key, tensor in state.items() if key not in replaced}
        layers = sorted({key.rsplit(".", 1)[0] for key in replaced})
        what = (f"class layers ({', '.join(layers[:3])}{', ...' if len(layers) > 3 else ''})"
                if detector else "classifier")
        notes.append(f"{what} replaced: {weights.num_classes} -> {classes} classes, new "
                     "weights")
        class_names = None
    dropped = sorted(key for key in state if key not in target)
    if dropped:
        notes.append(f"left out {len(dropped)} tensor(s) of the file the model has no place for "
                     f"({', '.join(dropped[:3])}{', ...' if len(dropped) > 3 else ''})")
    state = {key: tensor for key, tensor in state.items() if key in target}
    wrong = [key for key, tensor in state.items() if tensor.shape != target[key]]
    if wrong:
        raise ValueError(f"the arguments change the shapes of {', '.join(wrong[:4])}; the file "
                         f"was made for {weights.options or 'the default arguments'}")
    new = sorted(key for key in target if key not in state)
    # all else comes from the file: no initialisation, but of a classifier's new head (a
    # detector has no reset_classifier: it is built whole, its class layers initialised there)
    fast = set(new) <= layout.classifier and not (new and detector)
    model = (meta_model(name, **args, num_classes=classes, in_chans=chans).train() if fast
             else create_model(name, **args, num_classes=classes, in_chans=chans))
    model.load_state_dict(state, strict=False, assign=fast)
    kept = [key for key in new if key not in replaced]  # a replaced classifier has its note
    if fast and new:
        model.reset_classifier(classes)
    elif weights.backbone:
        owner = weights.source + ("'" if weights.source.endswith("s") else "'s")
        notes.append(f"{weights.path.name} holds {owner} {weights.backbone} "
                     f"classifier: it initialises the backbone of {name}, whose other "
                     f"{len(kept)} tensor(s) (the head) start new")
    elif kept:
        notes.append(f"{len(kept)} tensor(s) not in the file keep their initial values "
                     f"({', '.join(kept[:3])}{', ...' if len(kept) > 3 else ''})")
    model_args = {**args, "num_classes": classes, "in_chans": chans}
    model.pretrained = Pretrained(weights.source, str(weights.path), name, model_args,
                                  preprocess, class_names, sorted(state), notes,
                                  weights.checkpoint)
    for note in notes:
        warnings.warn(note, PretrainedNote, stacklevel=3)
    return model


def load_pretrained(name: str | None, checkpoint_path: str | Path, source: str | None = None,
                    strict: bool = True, num_classes: int | None = None,
                    in_chans: int | None = None, **kwargs: Any) -> nn.Module:
    """``create_model(name, checkpoint_path=...)``: the model reproducing the file's network,
    with its weights, for ``num_classes`` / ``in_chans`` (default: the file's)."""
    weights = read_pretrained(checkpoint_path, name, source, strict, **kwargs)
    if weights.checkpoint is not None and weights.checkpoint.pruning:
        return pruned_model(weights, num_classes, in_chans)
    return build_pretrained(weights, num_classes, in_chans, **kwargs)


def pruned_model(weights: SourceWeights, num_classes: int | None = None,
                 in_chans: int | None = None) -> nn.Module:
    """A pruned lightnets checkpoint's model, rebuilt from its channel plan, as it was saved:
    its widths leave no room for another classifier or input."""
    asked = {"num_classes": num_classes, "in_chans": in_chans}
    stored = {"num_classes": weights.num_classes, "in_chans": weights.in_chans}
    changed = [f"{key} {stored[key]} -> {value}" for key, value in asked.items()
               if value is not None and value != stored[key]]
    if changed:
        raise ValueError(f"{str(weights.path)!r} is a pruned checkpoint, rebuilt from its channel "
                         f"plan; it cannot change {', '.join(changed)}")
    model = weights.checkpoint.build_model()
    model.pretrained = Pretrained("lightnets", str(weights.path), weights.model_name,
                                  {**weights.options, **stored}, weights.preprocess,
                                  weights.class_names, sorted(weights.state), weights.notes,
                                  weights.checkpoint)
    return model

