"""Evaluation: top-1, top-5, cross-entropy, per-class accuracy and the confusion matrix, for a
model on a loader (:func:`evaluate_model`, used by the training loop) or for a checkpoint on a
data source (:func:`evaluate`, behind ``lightnets eval``), a lightnets checkpoint or the
pretrained weights of another library (:mod:`lightnets.weights`)."""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lightnets.data import build_data, default_workers, make_loader, normalize_transform
from lightnets.files import write_atomic
from lightnets.train.det_evaluate import DetEvalResult, evaluate_detector
from lightnets.train.runtime import pick_device
from lightnets.train.seg_evaluate import SegEvalResult, evaluate_segmenter
from lightnets.weights import PretrainedNote, load_pretrained


@dataclass
class EvalResult:
    """Accuracies are fractions in [0, 1]; ``confusion[true][predicted]`` counts images."""

    top1: float
    top5: float
    loss: float
    count: int
    classes: list[str] = field(default_factory=list)
    per_class: list[float] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)

    @property
    def primary(self) -> float:
        """The figure a run keeps its best checkpoint by."""
        return self.top1

    def row(self) -> dict[str, float]:
        """The validation columns of a training run's metrics table."""
        return {"val_loss": self.loss, "val_top1": self.top1, "val_top5": self.top5}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.inference_mode()
def evaluate_model(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], loader: DataLoader,
                   num_classes: int, device: torch.device | str = "cpu",
                   amp_dtype: torch.dtype | None = None, channels_last: bool = False,
                   limit_batches: int | None = None,
                   reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   classes: list[str] | None = None,
                   normalize: Callable[[torch.Tensor], torch.Tensor] | None = None
                   ) -> EvalResult:
    """Evaluate ``model`` (a module, switched to eval mode, or any callable from images to
    logits, such as an exported file's backend) on ``loader``. ``reduce`` sums the tallies
    over processes when each holds a shard of the data; ``normalize`` finishes the
    preprocessing of each batch on the device, when the loader stops before it."""
    if limit_batches is not None and limit_batches < 1:
        raise ValueError(f"limit_batches must be at least 1, got {limit_batches}")
    device = torch.device(device)
    if isinstance(model, nn.Module):
        model.eval()
    k = min(5, num_classes)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    topk = torch.zeros((), dtype=torch.int64, device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext())
    for batch, (images, labels) in enumerate(loader):
        if limit_batches is not None and batch >= limit_batches:
            break
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        if normalize is not None:
            images = normalize(images)
        labels = labels.to(device, non_blocking=True)
        with autocast:
            logits = model(images)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        best = logits.topk(k, dim=1).indices
        top1 += (best[:, 0] == labels).sum()
        topk += (best == labels[:, None]).any(dim=1).sum()
        confusion += torch.bincount(labels * num_classes + best[:, 0],
                                    minlength=num_classes * num_classes)
    if reduce is not None:
        loss_sum, top1, topk, confusion = (reduce(t) for t in (loss_sum, top1, topk, confusion))
    confusion = confusion.view(num_classes, num_classes).cpu()
    count = int(confusion.sum())
    if count == 0:
        raise ValueError("evaluation saw no images (empty validation split?)")
    per_class = confusion.diagonal().double() / confusion.sum(dim=1).clamp(min=1)
    return EvalResult(top1=int(top1) / count, top5=int(topk) / count,
                      loss=float(loss_sum) / count, count=count,
                      classes=list(classes or [str(i) for i in range(num_classes)]),
                      per_class=per_class.tolist(), confusion=confusion.tolist())


def evaluate(checkpoint: str | Path, data: str | None = None, split: str = "val",
             batch_size: int = 256, device: str = "auto", workers: int | None = None,
             limit_batches: int | None = None, model: str | None = None,
             source: str | None = None, examples: int = 0
             ) -> EvalResult | SegEvalResult | DetEvalResult:
    """Evaluate a checkpoint (file or run folder: its ``best.pt``) on ``data`` (default: the
    data it was trained on), with the preprocessing stored in the checkpoint; or the
    torchvision / timm weights of the registered ``model`` with theirs. Weights without class
    names of their own (ImageNet's, or none) take the data's class folders in sorted order,
    ImageNet's standard order for its synset folders; so do converted checkpoints, which
    record no training data. A segmenter's checkpoint gives a :class:`SegEvalResult` (mIoU,
    pixel accuracy, per-class IoU) holding its first ``examples`` validation images, a
    detector's a :class:`DetEvalResult` (COCO mAP by pycocotools)."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be train or val, got {split!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    loaded = load_pretrained(model, checkpoint, source)
    info = loaded.pretrained
    state = info.checkpoint
    if state is not None:
        state.require("to evaluate", "preprocess")
    config = state.config if state is not None else {}  # a training run's; none if converted
    data = data or config.get("data")
    if not data:
        raise ValueError(f"{info.path!r} does not record its data; pass --data")
    task = getattr(loaded, "task", "classification")
    bundle = build_data(data, info.preprocess, augment=False,
                        val_fraction=config.get("val_fraction", 0.2), seed=config.get("seed", 0),
                        normalize=False, task=task)
    model_classes = bundle.num_classes + (task == "detection")  # with the background
    if state is not None:
        state.check_matches(num_classes=model_classes)
    if loaded.num_classes != model_classes:
        predicted = (f"{loaded.num_classes - 1} object classes ({loaded.num_classes} with the "
                     "background)" if task == "detection" else f"{loaded.num_classes} classes")
        raise ValueError(f"{info.path!r} predicts {predicted}, {data!r} has {bundle.num_classes}")
    if config and bundle.classes != state.class_names:  # a run trained on these names
        raise ValueError(f"the classes of {data!r} ({', '.join(bundle.classes[:5])}, ...) differ "
                         f"from the checkpoint's ({', '.join(state.class_names[:5])}, ...)")
    if info.class_names and bundle.classes != info.class_names:
        warnings.warn(f"{data!r}'s {bundle.num_classes} class folders are taken in sorted "
                      f"order ({', '.join(bundle.classes[:3])}, ...) as the classes of the "
                      f"weights ({', '.join(info.class_names[:3])}, ...)", PretrainedNote,
                      stacklevel=2)
    chosen = pick_device(device)
    # the memory format training validated in, so the figures match the run's to the last digit
    # (runs that recorded none, and other weights, validate NCHW)
    channels_last = bool(config.get("channels_last"))
    model = loaded.to(chosen, memory_format=torch.channels_last if channels_last
                      else torch.contiguous_format)
    dataset = bundle.val if split == "val" else bundle.train
    workers = default_workers(bundle.kind) if workers is None else workers
    loader = make_loader(dataset, batch_size, chosen, workers, task=task)
    if task == "detection":
        result = evaluate_detector(model, loader, bundle.classes, chosen, limit_batches,
                                   examples=examples)
        result.category_ids = bundle.category_ids
        return result
    if task == "segmentation":
        return evaluate_segmenter(model, loader, bundle.num_classes, chosen, None, channels_last,
                                  limit_batches, classes=bundle.classes,
                                  normalize=normalize_transform(info.preprocess),
                                  examples=examples)
    return evaluate_model(model, loader, bundle.num_classes, chosen, None, channels_last,
                          limit_batches, classes=bundle.classes,
                          normalize=normalize_transform(info.preprocess))


def save_confusion_png(result: EvalResult, path: str | Path, title: str = "") -> Path:
    """A heat map of the confusion matrix, rows normalised, with counts written in the cells
    when there are at most 20 classes."""
    from matplotlib.figure import Figure

    confusion = torch.tensor(result.confusion, dtype=torch.float64)
    n = len(confusion)
    rates = confusion / confusion.sum(dim=1, keepdim=True).clamp(min=1)
    side = min(4 + 0.45 * n, 24)
    figure = Figure(figsize=(side, side * 0.9), layout="constrained")
    axes = figure.add_subplot()
    shown = axes.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(shown, ax=axes, shrink=0.8, label="fraction of the true class")
    if n <= 40:
        names = result.classes if len(result.classes) == n else [str(i) for i in range(n)]
        axes.set_xticks(range(n), names, rotation=90 if n > 10 else 0)
        axes.set_yticks(range(n), names)
    if n <= 20:
        for row in range(n):
            for column in range(n):
                if confusion[row, column]:
                    axes.text(column, row, f"{int(confusion[row, column])}", ha="center",
                              va="center", fontsize=8,
                              color="white" if rates[row, column] > 0.5 else "black")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title or f"top-1 {result.top1:.2%} on {result.count} images")
    return write_atomic(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
