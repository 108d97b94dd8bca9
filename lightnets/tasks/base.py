"""The task seam: one object per task answers every question the workflow asks that has a
different answer for classifiers, segmenters and detectors, so the training loop and the
commands ask it instead of comparing task names (as timm's ``TrainingTask`` and torchvision's
``references/{classification,segmentation,detection}`` keep each task's data, loss and metric
together).

A task is registered under the name models declare as their ``task`` attribute
(:data:`lightnets.registry.TASKS`); :func:`get_task` and :func:`task_for` look it up. Adding a
task is one module holding a :class:`Task` subclass and a :func:`register_task` call, plus its
data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightnets.data import (EMBEDDED_KINDS, DataBundle, build_data, default_preprocess,
                            unsplit_images)
from lightnets.registry import CLASSIFICATION, task_of

Normalize = Callable[[torch.Tensor], torch.Tensor]


class Result(Protocol):
    """What every task's evaluation returns (see each task's result class)."""

    count: int
    classes: list[str]

    @property
    def primary(self) -> float: ...

    def row(self) -> dict[str, float]: ...

    def as_dict(self) -> dict[str, Any]: ...


class Task:
    """The questions whose answers differ by task. Subclasses set the class attributes and
    override the methods; the defaults are a classifier's where one is natural."""

    name: ClassVar[str]
    model_noun: ClassVar[str]       # what the messages call its models: "classifier", ...
    # --data: the embedded data, what the error messages say is expected, the kinds it reads
    embedded_data: ClassVar[str]
    expected_data: ClassVar[str]
    not_this_data: ClassVar[str | None] = None    # what a folder of no kind it reads is
    # the result attribute a run keeps its best checkpoint by, its label, and which way is better
    metric: ClassVar[str]
    metric_label: ClassVar[str]
    # the figure shown beside it at the end of a run: (metrics column, JSON name, label)
    second_metric: ClassVar[tuple[str, str, str]]
    higher_is_better: ClassVar[bool] = True
    # eval's figures come with example predictions drawn (else the picture is of the figures)
    draws_examples: ClassVar[bool] = True
    # classes the model predicts beyond the data's (a detector's background)
    background_classes: ClassVar[int] = 0
    # the training table's columns: whether a training accuracy is counted, the validation ones
    train_accuracy: ClassVar[bool] = True
    val_columns: ClassVar[tuple[str, ...]]
    # curves.png's right panel: (column, label, line style) of each validation curve, and the
    # panel's (y label, title)
    curves: ClassVar[tuple[tuple[str, str, str], ...]]
    curves_axis: ClassVar[tuple[str, str]]
    # `lightnets eval`'s picture: <stem>-<split>.png, the noun the messages use for it, and the
    # word naming it in the summary line and (<label>_png) in the JSON
    picture_stem: ClassVar[str]
    picture_name: ClassVar[str]
    picture_label: ClassVar[str] = "examples"
    picture_caption: ClassVar[str] = "examples"
    # whether `lightnets eval --save-predictions` writes the evaluated predictions
    saves_predictions: ClassVar[bool] = False
    # how batches are made (None: PyTorch's default stacking)
    collate: ClassVar[Callable[[list], Any] | None] = None
    # whether `lightnets prune` takes this task's models (it scores and fine-tunes classifiers)
    prunable: ClassVar[bool] = False
    # whether --teacher can distil into this task's models (a classifier's soft targets)
    distills: ClassVar[bool] = False
    # its training step can be timed on random batches (train/calibrate.py), and the
    # precisions those timings may choose among
    calibrates: ClassVar[bool] = False
    calibration_precisions: ClassVar[tuple[str, ...]] = ("off", "bf16")
    # whether `lightnets quantize --qat` fine-tunes its models fake-quantized (the task's loss on
    # one output tensor; a detector's losses need its training-mode forward)
    quantization_aware: ClassVar[bool] = False
    # whether the image-level recipe applies (--auto-augment, --random-erase, --mixup,
    # --cutmix): it moves and blends pixels that a mask or boxes would have to follow
    image_recipe: ClassVar[bool] = False
    # whether --mosaic and --zoom-crop apply: they move image regions that boxes follow (one
    # label per image would not; a mask could, but that is not built), and --colour-jitter, the
    # detection data's photometric step
    box_augments: ClassVar[bool] = False
    # --pretrained holds the weights of the model's backbone alone (read where it is built)
    pretrained_is_backbone: ClassVar[bool] = False
    # whether --loss chooses among losses (segmentation's Dice, Focal, ...)
    chooses_loss: ClassVar[bool] = False
    # whether two classes can be one output channel (--binary: a binary segmenter's sigmoid)
    binary_output: ClassVar[bool] = False
    # what the model gives, and whether it is one tensor an export or conversion check compares
    # element by element (a detector's boxes are matched box by box)
    outputs: ClassVar[str] = "logits"
    outputs_tensor: ClassVar[bool] = True
    # the published figure of the zoo's reference table: (its key, its label)
    reference_metric: ClassVar[tuple[str, str]]
    # whether an exported file takes images of any height and width, and whether `lightnets
    # eval` scores an exported file (a detector's is scored through its checkpoint)
    dynamic_export_size: ClassVar[bool] = False
    scores_exported: ClassVar[bool] = True

    # -- data ------------------------------------------------------------------------------
    def folder_kind(self, path: Path) -> str | None:
        """The kind of data folder ``path`` holds for this task, or None."""
        raise NotImplementedError

    def data_kind(self, data: str) -> str:
        """The kind of a ``--data`` value for a model of this task, or a one-line error."""
        if data in EMBEDDED_KINDS:
            if data != self.embedded_data:
                owner = next(task for task in TASKS.values() if task.embedded_data == data)
                raise ValueError(f"--data {data} is {owner.name} data, the model is a "
                                 f"{self.name} model; expected {self.expected_data}")
            return data
        path = Path(data).expanduser()
        if not path.exists():
            raise ValueError(f"--data {data!r}: no such folder (expected {self.expected_data})")
        if not path.is_dir():
            raise ValueError(f"--data {data!r} is a file; expected {self.expected_data}")
        kind = self.folder_kind(path)
        if kind is None:
            raise ValueError(f"--data {data!r} is {self.not_this_data or f'no {self.name} data'}; "
                             f"expected {self.expected_data}")
        return kind

    def preprocess(self, data: str, input_size: int, in_chans: int,
                   pretrained: dict[str, Any] | None = None) -> dict[str, Any]:
        """The evaluation preprocessing for ``data`` (see
        :func:`lightnets.data.default_preprocess`)."""
        return default_preprocess(self.data_kind(data), input_size, in_chans, pretrained)

    def build_data(self, data: str, preprocess: dict[str, Any], augment: bool = True,
                   val_fraction: float = 0.2, seed: int = 0, warn: bool = True,
                   normalize: bool = True) -> DataBundle:
        """Train and validation datasets of ``data`` (:func:`lightnets.data.build_data`), or a
        one-line error when it is not this task's data."""
        return build_data(data, preprocess, augment, val_fraction, seed, warn, normalize,
                          kind=self.data_kind(data))

    def calibration_images(self, data: str, preprocess: dict[str, Any]) -> Dataset:
        """Images without a validation split, for int8 calibration."""
        return unsplit_images(data, preprocess, self.data_kind(data))

    def network_inputs(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """``images`` as read from the data (see :meth:`calibration_images`) made what the
        exported network takes: already so, unless the model normalises them itself."""
        return images

    # -- classes ---------------------------------------------------------------------------
    def improves(self, score: float, best: float | None) -> bool:
        """Whether ``score`` beats the ``best`` so far (None: there is none yet)."""
        if best is None:
            return True
        return score > best if self.higher_is_better else score < best

    def model_classes(self, data_classes: int, binary: bool = False) -> int:
        """The class count a model of ``data_classes`` classes of data is built with (``binary``:
        one output for two classes, where the task has it: ``binary_output``)."""
        return data_classes + self.background_classes

    def describe_classes(self, model_classes: int) -> str:
        """``model_classes`` in the words of an error message."""
        return f"{model_classes} classes"

    # -- training --------------------------------------------------------------------------
    def check_config(self, config: Any) -> None:
        """A one-line error for training options this task does not take."""
        if config.teacher and not self.distills:
            raise ValueError(f"--teacher distils classifiers; a {self.name} model trains on its "
                             "labels alone")
        if config.binary and not self.binary_output:
            raise ValueError(f"--binary is for segmenters (one foreground channel); a "
                             f"{self.name} model has one output per class")
        if config.loss is not None and not self.chooses_loss:
            raise ValueError(f"--loss chooses a segmenter's loss; a {self.name} model trains "
                             "with its own (drop --loss)")
        recipe = [flag for flag, value in (("--auto-augment", config.auto_augment),
                                           ("--random-erase", config.random_erase),
                                           ("--mixup", config.mixup), ("--cutmix", config.cutmix))
                  if value]
        boxes = [flag for flag, value in (("--mosaic", config.mosaic),
                                          ("--zoom-crop", config.zoom_crop)) if value]
        if boxes and not self.box_augments:
            raise ValueError(f"{', '.join(boxes)}: detectors only (their boxes follow the "
                             f"moved regions); a {self.name} model's labels would not")
        if config.colour_jitter and not self.box_augments:
            raise ValueError(f"--colour-jitter: detectors only (the detection data's "
                             f"photometric step); a {self.name} model's data has its own "
                             "augmentation")
        if recipe and not self.image_recipe:
            raise ValueError(f"{', '.join(recipe)}: classifiers only (one label per image "
                             f"follows its mixed or erased pixels); a {self.name} model's "
                             "labels would not")

    def batch_mix(self, config: Any, num_classes: int
                  ) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, Any]] | None:
        """What blends each training batch and its labels on the device (MixUp, CutMix), or
        None."""
        return None

    def model_args(self, config: Any) -> dict[str, Any]:
        """Constructor arguments the task adds from the run's configuration."""
        return self.size_args(config.input_size)

    def size_args(self, input_size: int) -> dict[str, Any]:
        """Constructor arguments that make a model run at ``input_size`` (a detector's
        transform would resize to its own size otherwise)."""
        return {}

    def runtime_defaults(self, amp: str, channels_last: bool | None
                         ) -> tuple[str, bool | None]:
        """The precision and memory-format settings, with what ``auto`` (and None: measure)
        stand for with this task."""
        return amp, channels_last

    def input_shape(self, model: nn.Module, input_size: int) -> tuple[int, int, int]:
        """The shape of one image as the model's network sees it."""
        return (model.in_chans, input_size, input_size)

    def calibration_batch(self, batch_size: int, shape: tuple[int, int, int],
                          num_classes: int) -> tuple[Any, Any]:
        """A random batch of the real size, as :meth:`forward_loss` takes it, to time training
        steps on (train/calibrate.py)."""
        return torch.randn(batch_size, *shape), torch.randint(num_classes, (batch_size,))

    def to_device(self, images: Any, labels: Any, device: torch.device,
                  normalize: Normalize | None, memory_format: torch.memory_format
                  ) -> tuple[Any, Any]:
        """A loader's batch on ``device``, its images normalised there."""
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        return (normalize(images) if normalize else images,
                labels.to(device, non_blocking=True).long())  # masks come as uint8

    def forward_loss(self, model: nn.Module, images: Any, labels: Any, aux_weight: float,
                     label_smoothing: float, loss: str | None = None
                     ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(outputs, loss)`` of one training batch (outputs None where the model gives none
        in training mode); ``loss`` names the loss where the task has a choice (``--loss``)."""
        raise NotImplementedError

    def hits_and_counts(self, outputs: torch.Tensor | None, labels: Any
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Right predictions and predictions made in a training batch, float64 on its device
        (asked only where :attr:`train_accuracy`)."""
        raise NotImplementedError

    def batchnorm_inputs(self, model: nn.Module, batches: Iterable[tuple[Any, Any]],
                         device: torch.device, normalize: Normalize | None,
                         memory_format: torch.memory_format
                         ) -> tuple[Iterable[torch.Tensor], Callable[[torch.Tensor], Any] | None]:
        """What precise BN feeds the network: ``(inputs, forward)`` (forward None: the model);
        the images alone go to the device."""
        def inputs(images: torch.Tensor) -> torch.Tensor:
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            return normalize(images) if normalize else images
        return (inputs(images) for images, _ in batches), None

    def epoch_summary(self, row: dict[str, float]) -> str:
        """The validation figures of a metrics row, for the line printed after each epoch."""
        raise NotImplementedError

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, model: nn.Module | Callable, loader: DataLoader, classes: list[str],
                 device: torch.device | str = "cpu", channels_last: bool = False,
                 limit_batches: int | None = None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 distributed: bool = False, normalize: Normalize | None = None,
                 examples: int = 0) -> Result:
        """The task's figures of ``model`` (a module or an exported file's runner) on
        ``loader``; ``reduce`` sums tallies over processes, ``distributed`` gathers records."""
        raise NotImplementedError

    def save_picture(self, result: Result, path: str | Path, title: str = "") -> Path:
        """``lightnets eval``'s picture of ``result`` (needs matplotlib)."""
        raise NotImplementedError

    def headline(self, result: Result) -> str:
        """The main figure of ``result``, for a picture's title."""
        raise NotImplementedError

    def summary(self, result: Result, split: str) -> str:
        """The figures of ``result`` on the ``split`` images, in one line."""
        raise NotImplementedError

    def table(self, result: Result) -> tuple[str, list[str], list[list[str]]] | None:
        """``(title, columns, rows)`` of the per-class figures, or None."""
        return None

    def summary_dict(self, result: Result) -> dict[str, Any]:
        """``lightnets eval --json``'s figures."""
        return result.as_dict()

    def save_predictions(self, result: Result, path: str | Path) -> Path:
        """The evaluated predictions as a file (where :attr:`saves_predictions`)."""
        raise ValueError(f"--save-predictions writes a detector's boxes; this is a {self.name} "
                         "model")

    def gate_score(self, run: Callable, dataset: Dataset, classes: list[str],
                   model: nn.Module | None = None) -> float:
        """What the reduced-precision gate compares, of ``run`` (an exported file's runner;
        ``model`` the network it was exported from) on ``dataset``: the task's metric."""
        loader = DataLoader(dataset, batch_size=64, collate_fn=self.collate)
        return self.evaluate(run, loader, classes).primary


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Make ``task`` the answer for models whose ``task`` is ``task.name``."""
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered already")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The registered task called ``name``."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None


def task_for(model: str | nn.Module) -> Task:
    """The task of a registered model name or of a model (its ``task`` attribute)."""
    if isinstance(model, str):
        return get_task(task_of(model))
    return get_task(getattr(model, "task", CLASSIFICATION))
