"""What an export starts from: a registered model (random weights), a training checkpoint, or
the pretrained weights of another library (torchvision, timm), with the metadata a deployed
model needs beside its weights (input size, preprocessing, class names).

Files are read with :func:`lightnets.weights.load_pretrained` (never unpickling code), which
rebuilds the model from its name and arguments (a lightnets checkpoint's, or those reproducing
the other library's network) and carries its preprocessing and classes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from lightnets.data.transforms import preprocess_input_size
from lightnets.detect.detector import Detector, RawHeads
from lightnets.models.base import normalize_input_size
from lightnets.registry import create_model, resolve_name
from lightnets.tasks import task_for
from lightnets.weights import load_pretrained
from lightnets.constants import IMAGENET_MEAN, IMAGENET_STD



@dataclass
class ModelSource:
    """An eval-mode model and what a deployment needs to know about it."""

    model: nn.Module
    name: str
    model_args: dict[str, Any]
    input_size: tuple[int, int, int]
    preprocess: dict[str, Any]
    class_names: list[str] | None = None
    checkpoint: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    """The checkpoint's training configuration (its ``data``, ``val_fraction``, ``seed``...)."""


def imagenet_preprocess(input_size: tuple[int, int, int]) -> dict[str, Any]:
    """The usual ImageNet evaluation preprocessing (resize to size / 0.875, centre-crop)."""
    chans, height, width = input_size
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if chans != 3:  # grey (or other) input: the channel-averaged statistics
        mean, std = (sum(mean) / 3,) * chans, (sum(std) / 3,) * chans
    resize = round(height / 0.875) if height == width else [round(height / 0.875),
                                                          round(width / 0.875)]
    return {"input_size": height if height == width else [height, width], "in_chans": chans,
            "resize": resize, "mean": list(mean), "std": list(std)}


def _check_size(model: nn.Module, input_size: tuple[int, int, int]) -> None:
    min_h, min_w = getattr(model, "min_input_size", (1, 1))
    if input_size[1] < min_h or input_size[2] < min_w:
        raise ValueError(f"input size {input_size[1]}x{input_size[2]} is below the model's "
                         f"minimum {min_h}x{min_w}")
    if input_size[0] != getattr(model, "in_chans", input_size[0]):
        raise ValueError(f"input size has {input_size[0]} channels, the model expects "
                         f"{model.in_chans}")


def from_name(name: str, input_size: int | tuple[int, ...] | None = None,
              **model_args: Any) -> ModelSource:
    """A registered model with its initial (random) weights and ImageNet preprocessing."""
    name = resolve_name(name)
    side = input_size if isinstance(input_size, int) else None
    if isinstance(input_size, (tuple, list)) and input_size[-1] == input_size[-2]:
        side = input_size[-1]
    if side is not None:  # a detector runs at the size asked for, not its default
        model_args = {**task_for(name).size_args(side), **model_args}
    model = create_model(name, **model_args).eval()
    size = normalize_input_size(input_size, model.default_input_size)
    _check_size(model, size)
    if isinstance(model, Detector):  # as from a checkpoint: the export's checks know it so
        model = RawHeads(model).eval()
    return ModelSource(model, name, dict(model_args), size, imagenet_preprocess(size))


def from_checkpoint(path: str | Path, input_size: int | tuple[int, ...] | None = None,
                    model: str | None = None) -> ModelSource:
    """A trained model from a lightnets checkpoint (file or run folder: its ``best.pt``),
    with the preprocessing and class names it was trained with; or the torchvision / timm
    weights of the registered ``model``, with theirs."""
    loaded = load_pretrained(model, path).eval()
    info, state = loaded.pretrained, loaded.pretrained.checkpoint
    if state is not None:
        state.require("to export", "preprocess")
    preprocess = copy.deepcopy(info.preprocess)
    name, model_args, model = info.model_name, dict(info.model_args), loaded
    trained = preprocess_input_size(preprocess)
    size = normalize_input_size(input_size, trained)
    _check_size(model, size)
    if size != trained:  # keep the sidecar true to the artefact: scale the resize with the crop
        ratio = size[1] / trained[1]
        resize = preprocess["resize"]
        preprocess["resize"] = (round(resize * ratio) if isinstance(resize, int)
                                else [round(s * ratio) for s in resize])
        preprocess["input_size"] = size[1] if size[1] == size[2] else [size[1], size[2]]
    metrics = ({"epoch": state.epoch, "best_score": state.best_score,
                "best_metric": state.best_metric} if state else {})
    if isinstance(model, Detector):  # its network, without post-processing
        model = RawHeads(model).eval()
    return ModelSource(model, name, model_args, size, preprocess, info.class_names, info.path,
                       metrics, dict(state.config) if state else {})


def load_source(model: str | None = None, checkpoint: str | Path | None = None,
                input_size: int | tuple[int, ...] | None = None, **model_args: Any) -> ModelSource:
    """A registered ``model``, a lightnets ``checkpoint``, or both: ``checkpoint`` then holds
    pretrained weights of ``model`` (torchvision's, timm's)."""
    if model is None and checkpoint is None:
        raise ValueError("give a model name (--model), a checkpoint (--checkpoint) or both "
                         "(--model with --weights)")
    if checkpoint is not None:
        if model_args:
            raise ValueError(f"a checkpoint fixes the model's arguments; cannot also set "
                             f"{', '.join(sorted(model_args))}")
        return from_checkpoint(checkpoint, input_size, model)
    return from_name(model, input_size, **model_args)
