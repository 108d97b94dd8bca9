"""Evaluation of a saved model on a data source, behind ``lightnets eval``: a lightnets
checkpoint, the pretrained weights of another library (:mod:`lightnets.weights`) or an exported
file (opened by :func:`lightnets.export.predict.open_model`), read once into an
:class:`Evaluable` and scored by its task (:mod:`lightnets.tasks`): top-1 and the confusion
matrix, mIoU, or COCO mAP."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightnets.checkpoint import Checkpoint
from lightnets.data import default_workers, make_loader, normalize_transform
from lightnets.tasks import EvalResult, Result, Task, evaluate_model, save_confusion_png, task_for
from lightnets.train.runtime import pick_device
from lightnets.weights import PretrainedNote, load_pretrained


@dataclass
class Evaluable:
    """A model read once, with what evaluating it needs: ``run`` (a module, or an exported
    file's runner), its task, preprocessing and class count, the class names it was trained
    on (``trained_names``: a run's, which the data must match) or its weights' (taken in the
    data's order, with a note), and what it records of its training data."""

    run: nn.Module | Callable[[torch.Tensor], torch.Tensor]
    task: Task
    path: Path
    preprocess: dict[str, Any]
    num_classes: int | None           # None: not recorded (an exported file without names)
    class_names: list[str] | None = None
    trained_names: bool = False
    data: dict[str, Any] = field(default_factory=dict)   # data, val_fraction, seed
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    channels_last: bool = False
    checkpoint: Checkpoint | None = None
    refusal: str | None = None      # why this model cannot be scored here, if it cannot
    workers: int | None = None      # data-loading processes (None: as for training)
    data_holder: str | None = None  # what records its data, for messages (default: the path)


def open_checkpoint(checkpoint: str | Path | nn.Module, model: str | None = None,
                    source: str | None = None, device: str = "auto") -> Evaluable:
    """A lightnets checkpoint (file or run folder: its ``best.pt``), or the torchvision / timm
    weights of the registered ``model``, read once for :func:`evaluate` (or a model
    :func:`lightnets.weights.load_pretrained` has read already)."""
    loaded = (checkpoint if isinstance(checkpoint, nn.Module)
              else load_pretrained(model, checkpoint, source))
    info = loaded.pretrained
    state = info.checkpoint
    if state is not None:
        state.require("to evaluate", "preprocess")
    config = state.config if state is not None else {}  # a training run's; none if converted
    chosen = pick_device(device)
    # the memory format training validated in, so the figures match the run's to the last digit
    # (runs that recorded none, and other weights, validate NCHW)
    channels_last = bool(config.get("channels_last"))
    run = loaded.to(chosen, memory_format=torch.channels_last if channels_last
                    else torch.contiguous_format)
    return Evaluable(run, task_for(loaded), Path(info.path), info.preprocess,
                     loaded.num_classes, state.class_names if config else info.class_names,
                     bool(config), {key: config[key] for key in ("data", "val_fraction", "seed")
                                    if key in config}, chosen, channels_last, state)


def evaluate(checkpoint: str | Path | Evaluable, data: str | None = None, split: str = "val",
             batch_size: int = 256, device: str = "auto", workers: int | None = None,
             limit_batches: int | None = None, model: str | None = None,
             source: str | None = None, examples: int = 0) -> Result:
    """Evaluate a model on ``data`` (default: the data it was trained on) with its own
    preprocessing: a checkpoint (file or run folder), the torchvision / timm weights of the
    registered ``model``, or an :class:`Evaluable` already read (an exported file's, from
    :func:`lightnets.export.predict.open_model`). Weights without class names of their own
    (ImageNet's, or none) take the data's class folders in sorted order, ImageNet's standard
    order for its synset folders; so do converted checkpoints, which record no training data.
    The task decides the figures: top-1 (:class:`EvalResult`), mIoU (a
    :class:`~lightnets.tasks.SegEvalResult`) or COCO mAP (a
    :class:`~lightnets.tasks.DetEvalResult`), with the first ``examples`` validation images
    kept for a picture."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be train or val, got {split!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    target = (checkpoint if isinstance(checkpoint, Evaluable)
              else open_checkpoint(checkpoint, model, source, device))
    if target.refusal:
        raise ValueError(target.refusal)
    data = data or target.data.get("data")
    if not data:
        raise ValueError((f"{target.data_holder} does not record the model's data"
                          if target.data_holder else
                          f"{str(target.path)!r} does not record its data") + "; pass --data")
    task = target.task
    bundle = task.build_data(data, target.preprocess, augment=False,
                             val_fraction=target.data.get("val_fraction", 0.2),
                             seed=target.data.get("seed", 0), normalize=False)
    check_classes(target, data, bundle.classes)
    dataset = bundle.val if split == "val" else bundle.train
    if workers is None:
        workers = default_workers(bundle.kind) if target.workers is None else target.workers
    loader = make_loader(dataset, batch_size, target.device, workers, collate=task.collate)
    result = task.evaluate(target.run, loader, bundle.classes, target.device,
                           target.channels_last, limit_batches,
                           normalize=normalize_transform(target.preprocess), examples=examples)
    if bundle.category_ids is not None:  # COCO data: its results file uses the file's ids
        result.category_ids = bundle.category_ids
    return result


def check_classes(target: Evaluable, data: str, classes: list[str]) -> None:
    """A one-line error when ``data``'s classes do not fit the model's (a note when weights
    without a training run's names take the data's)."""
    expected = target.task.model_classes(len(classes), binary=target.num_classes == 1)
    if target.checkpoint is not None:
        target.checkpoint.check_matches(num_classes=expected)
    if target.num_classes is not None and target.num_classes != expected:
        raise ValueError(f"{str(target.path)!r} predicts "
                         f"{target.task.describe_classes(target.num_classes)}, {data!r} has "
                         f"{len(classes)}")
    if target.class_names is None or classes == target.class_names:
        return
    if target.trained_names:  # a run trained on these names
        owner = "checkpoint's" if target.checkpoint is not None else "model's"
        raise ValueError(f"the classes of {data!r} ({', '.join(classes[:5])}, ...) differ from "
                         f"the {owner} ({', '.join(target.class_names[:5])}, ...)")
    warnings.warn(f"{data!r}'s {len(classes)} class folders are taken in sorted order "
                  f"({', '.join(classes[:3])}, ...) as the classes of the weights "
                  f"({', '.join(target.class_names[:3])}, ...)", PretrainedNote, stacklevel=3)


__all__ = ["EvalResult", "Evaluable", "evaluate", "evaluate_model", "open_checkpoint",
           "save_confusion_png"]
