"""Prediction and evaluation of deployed models, with the preprocessing the model was trained
with (the same resize, crop, channels and normalisation as evaluation during training).

:func:`open_model` reads a model once, whatever it is: a training checkpoint (run by one of the
inference backends, :mod:`lightnets.export.backends`), an exported file (ONNX, int8 ONNX,
``.pt2``, TorchScript, run as its sidecar says, which also holds its preprocessing and class
names) or pretrained torchvision or timm weights (with the source's preprocessing and, for the
1000 ImageNet classes, their names: :mod:`lightnets.weights`). The one object is passed on to
:func:`predict_any` (the task's predictor: top-k classes here, masks in
:mod:`~lightnets.export.predict_masks`, boxes in :mod:`~lightnets.export.predict_boxes`) or to
:func:`lightnets.train.evaluate` (through :func:`evaluable`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from lightnets.data.images import to_mode
from lightnets.data.transforms import eval_transform, preprocess_input_size
from lightnets.export.artefact import export_model  # noqa: F401 (registers the formats)
from lightnets.export.backends import backend_from_file, create_backend
from lightnets.export.formats import format_of_file
from lightnets.export.fuse import fuse
from lightnets.export.sidecar import Sidecar, read_sidecar, sidecar_path
from lightnets.registry import CLASSIFICATION
from lightnets.segment.losses import class_logits
from lightnets.tasks import Task, get_task, task_for
from lightnets.train.evaluate import Evaluable, open_checkpoint
from lightnets.train.runtime import pick_device
from lightnets.weights import load_pretrained

# task name -> its predictor: (opened model, images, options) -> predictions; registered by the
# modules that write each task's predictions (this one, predict_masks.py, predict_boxes.py)
PREDICTORS: dict[str, Callable[..., list[Any]]] = {}


def register_predictor(task: str) -> Callable[[Callable[..., list[Any]]],
                                              Callable[..., list[Any]]]:
    """Make the decorated function the predictor of the models of ``task``."""
    def register(function: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        PREDICTORS[task] = function
        return function
    return register


@dataclass
class Prediction:
    """The ``top`` classes of one image, most probable first: ``(name, index, probability)``."""

    image: str
    top: list[tuple[str, int, float]]

    def line(self) -> str:
        """The classes and probabilities, for a line of output."""
        return "  ".join(f"{name} {probability:.1%}" for name, _, probability in self.top)

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "top": [{"class": name, "index": index,
                                              "probability": probability}
                                             for name, index, probability in self.top]}


def open_image(source: str | Path | Image.Image, in_chans: int) -> Image.Image:
    """A PIL image in the mode the model expects (``L`` or ``RGB``), or a one-line error."""
    if isinstance(source, Image.Image):
        image = source
    else:
        try:
            with Image.open(source) as opened:
                image = opened.copy()
        except FileNotFoundError:
            raise ValueError(f"image {str(source)!r} not found") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise ValueError(f"cannot read image {str(source)!r}: {error}") from None
    return to_mode(image, "L" if in_chans == 1 else "RGB")


def predict_runner(model: nn.Module, backend: str, preprocess: dict[str, Any],
                   device: torch.device | str = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
    """What ``lightnets predict --backend`` calls the model through, for a checkpoint's
    ``preprocess``: the fused model on a GPU for ``eager``, else :func:`create_backend` (the
    other backends run on the CPU)."""
    device = torch.device(device)
    if device.type != "cpu":
        if backend != "eager":
            raise ValueError(f"backend {backend} runs on the CPU; use --device cpu or --backend "
                             "eager")
        return fuse(model).to(device)
    return create_backend(model.cpu(), backend, preprocess_input_size(preprocess))


def is_exported(path: str | Path) -> bool:
    """Whether ``path`` is an exported model file (by its suffix, or a sidecar beside it)
    rather than a training checkpoint or run folder."""
    path = Path(path)
    return path.is_file() and (format_of_file(path) is not None or sidecar_path(path).is_file())


@dataclass
class OpenedModel:
    """A checkpoint, run folder, exported file or another library's weights, read once: the
    model (``module``, carrying its :class:`~lightnets.weights.Pretrained` record) or the
    exported file's ``sidecar``, and the model's task."""

    path: Path
    task: Task
    module: nn.Module | None = None
    sidecar: Sidecar | None = None

    @property
    def exported(self) -> bool:
        return self.sidecar is not None


def open_model(path: str | Path | OpenedModel, model: str | None = None,
               source: str | None = None) -> OpenedModel:
    """Read a checkpoint (file or run folder: its ``best.pt``), an exported file (its sidecar)
    or the torchvision / timm weights of the registered ``model``, once."""
    if isinstance(path, OpenedModel):
        return path
    path = Path(path).expanduser()
    if is_exported(path):
        sidecar = read_sidecar(path)
        try:
            task = task_for(sidecar.model)
        except ValueError:  # an unregistered model's file: a classifier's runner
            task = get_task(CLASSIFICATION)
        return OpenedModel(Path(path), task, sidecar=sidecar)
    loaded = load_pretrained(model, path, source)
    return OpenedModel(Path(loaded.pretrained.path), task_for(loaded), module=loaded)


def predict_any(path: str | Path | OpenedModel, images: list[str | Path | Image.Image],
                model: str | None = None, source: str | None = None, **options: Any
                ) -> list[Any]:
    """The predictions of the model at ``path`` (read once) on ``images``, by its task's
    predictor, given those of ``options`` it takes (``top_k``, ``output``,
    ``score_threshold``, ``backend``, ``device``, ...)."""
    opened = open_model(path, model, source)
    predictor = PREDICTORS[opened.task.name]
    taken = inspect.signature(predictor).parameters
    return predictor(opened, images, **{key: value for key, value in options.items()
                                        if key in taken})


def evaluable(path: str | Path | OpenedModel, model: str | None = None,
              source: str | None = None, device: str = "auto",
              backend: str | None = None) -> Evaluable:
    """What :func:`lightnets.train.evaluate` scores: an exported file runs as its sidecar
    says (``backend``: onnxruntime or openvino for ONNX files) on the CPU, with the
    preprocessing, class names and data its sidecar records; a checkpoint or other weights
    run in eager PyTorch on ``device``."""
    opened = open_model(path, model, source)
    if not opened.exported:
        return open_checkpoint(opened.module, device=device)
    run, sidecar = exported_runner(opened, backend)
    if sidecar.model_args.get("num_classes") == 1 and opened.task.binary_output:
        run = two_classes(run, model_threshold(opened))
    task = opened.task
    refusal = (None if task.scores_exported else
               f"{str(opened.path)!r} is an exported {task.model_noun}, which eval does not "
               f"score ({task.metric_label} is measured on its checkpoint); evaluate its "
               "checkpoint instead")
    # its class names are checked against the data's (the count is theirs); one process reads
    # the data, beside the runtime's threads
    return Evaluable(run, task, opened.path, sidecar.preprocess, None, sidecar.class_names,
                     sidecar.class_names is not None, dict(sidecar.data), refusal=refusal,
                     workers=0, data_holder=f"the sidecar of {str(opened.path)!r}")


def model_threshold(opened: OpenedModel) -> float:
    """The threshold of a binary segmenter's foreground sigmoid, as recorded (its model
    arguments, in the checkpoint or the sidecar); 0.5 where none is."""
    if opened.exported:
        return float(opened.sidecar.model_args.get("threshold", 0.5))
    return float(getattr(opened.module, "threshold", 0.5))


def two_classes(run: Callable[[torch.Tensor], torch.Tensor], threshold: float
                ) -> Callable[[torch.Tensor], torch.Tensor]:
    """An exported binary segmenter's one channel as two classes' logits, whose arg-max is
    the foreground above ``threshold`` (:func:`lightnets.segment.losses.class_logits`)."""
    return lambda x: class_logits(run(x), threshold)


def fixed_batch(run: Callable[[torch.Tensor], torch.Tensor], batch: int
                ) -> Callable[[torch.Tensor], torch.Tensor]:
    """``run`` of a file exported for exactly ``batch`` images, made to take any number:
    chunks of ``batch``, the last padded with zeros and its padding's outputs dropped."""
    def run_any(x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for chunk in x.split(batch):
            padding = chunk.new_zeros(batch - len(chunk), *chunk.shape[1:])
            outputs.append(run(torch.cat([chunk, padding]))[:len(chunk)])
        return torch.cat(outputs)
    return run_any


def exported_runner(opened: OpenedModel, backend: str | None = None
                    ) -> tuple[Callable[[torch.Tensor], torch.Tensor], Sidecar]:
    """An exported file ready for any batch size, and its sidecar; ``backend`` (onnxruntime or
    openvino, for ONNX files) defaults to the sidecar's."""
    run, sidecar = backend_from_file(opened.path, backend if backend in ("onnxruntime",
                                                                         "openvino") else None,
                                     sidecar=opened.sidecar)
    if not sidecar.dynamic_batch:
        return fixed_batch(run, int(sidecar.input_size[0])), sidecar
    return run, sidecar


def load_predictor(opened: OpenedModel, backend: str = "eager", device: str = "auto"
                   ) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any], list[str],
                              torch.device]:
    """``(run, preprocess, class_names, device)`` of a model read by :func:`open_model`."""
    if opened.exported:
        run, sidecar = exported_runner(opened, backend)
        names = sidecar.class_names or [str(i) for i in range(run(torch.zeros(
            1, *preprocess_input_size(sidecar.preprocess))).shape[1])]
        return run, sidecar.preprocess, names, torch.device("cpu")
    loaded = opened.module
    info = loaded.pretrained
    if info.checkpoint is not None:
        info.checkpoint.require("to predict", "preprocess")
    names = info.class_names or [str(i) for i in range(loaded.num_classes)]
    # the backends other than eager run on the CPU: "auto" means the CPU for them
    chosen = pick_device("cpu" if device == "auto" and backend != "eager" else device)
    run = predict_runner(loaded.eval(), backend, info.preprocess, chosen)
    return run, info.preprocess, names, chosen


@register_predictor(CLASSIFICATION)
@torch.no_grad()
def predict(checkpoint: str | Path | OpenedModel, images: list[str | Path | Image.Image],
            top_k: int = 5, device: str = "auto", batch_size: int = 64, backend: str = "eager",
            model: str | None = None, source: str | None = None) -> list[Prediction]:
    """Top-``top_k`` classes with probabilities for each image (paths or PIL images), the
    model (a checkpoint, run folder or exported file) run by inference ``backend`` (BatchNorm
    folded, channels-last where it helps; an exported file runs as its sidecar says).
    ``checkpoint`` may also be torchvision / timm weights of the registered ``model``
    (``source`` as in :func:`lightnets.weights.load_pretrained`)."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if not images:
        raise ValueError("no images given")
    run, preprocess, names, chosen = load_predictor(open_model(checkpoint, model, source),
                                                    backend, device)
    transform = eval_transform(preprocess)
    k = min(top_k, len(names))
    results: list[Prediction] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        batch = torch.stack([transform(open_image(image, preprocess["in_chans"]))
                             for image in chunk]).to(chosen)
        probabilities = run(batch).float().softmax(dim=1)
        top = probabilities.topk(k, dim=1)
        for offset, (image, values, indices) in enumerate(
                zip(chunk, top.values.tolist(), top.indices.tolist())):
            label = f"<image {start + offset}>" if isinstance(image, Image.Image) else str(image)
            results.append(Prediction(label, [(names[i], i, p) for i, p in zip(indices, values)]))
    return results
