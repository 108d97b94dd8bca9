"""Prediction and evaluation of deployed models: the top-k classes of image files, or top-1/top-5
on a validation set, with the preprocessing the model was trained with (the same resize, crop,
channels and normalisation as evaluation during training).

The model is a training checkpoint, run by one of the inference backends
(:mod:`lightnets.export.backends`), or an exported file (ONNX, int8 ONNX, ``.pt2``,
TorchScript), run as its sidecar says (:func:`~lightnets.export.backends.backend_from_file`),
which also holds its preprocessing and class names. Pretrained torchvision or timm weights
predict the same way, with the source's preprocessing and, for the 1000 ImageNet classes, their
names (:mod:`lightnets.weights`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from lightnets.checkpoint import checkpoint_path, load_checkpoint
from lightnets.data import build_data, make_loader
from lightnets.data.transforms import (eval_transform, normalize_transform,
                                       preprocess_input_size)
from lightnets.export.artefact import FORMATS
from lightnets.export.backends import backend_from_file, create_backend
from lightnets.export.fuse import fuse
from lightnets.export.sidecar import Sidecar, read_sidecar, sidecar_path
from lightnets.registry import task_of
from lightnets.train.evaluate import EvalResult, evaluate_model
from lightnets.train.runtime import pick_device
from lightnets.train.seg_evaluate import SegEvalResult, evaluate_segmenter
from lightnets.weights import load_pretrained


@dataclass
class Prediction:
    """The ``top`` classes of one image, most probable first: ``(name, index, probability)``."""

    image: str
    top: list[tuple[str, int, float]]

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
    return image.convert("L" if in_chans == 1 else "RGB")


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
    return path.is_file() and (path.suffix in FORMATS.values() or sidecar_path(path).is_file())


def model_task(path: str | Path, model: str | None = None) -> str:
    """What the model behind a checkpoint, run folder or exported file predicts (the
    registered ``model`` for other libraries' weights)."""
    if model is not None:
        return task_of(model)
    try:
        name = (read_sidecar(path).model if is_exported(path)
                else load_checkpoint(path, prefer="best").model_name)
        return task_of(name)
    except ValueError:  # another library's weights, or an unregistered model: the loader
        return "classification"  # that reads them says what is wrong, in its own words


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


def exported_runner(path: str | Path, backend: str | None = None
                    ) -> tuple[Callable[[torch.Tensor], torch.Tensor], Sidecar]:
    """An exported file ready for any batch size, and its sidecar; ``backend`` (onnxruntime or
    openvino, for ONNX files) defaults to the sidecar's."""
    run, sidecar = backend_from_file(path, backend if backend in ("onnxruntime", "openvino")
                                     else None)
    if not sidecar.dynamic_batch:
        return fixed_batch(run, int(sidecar.input_size[0])), sidecar
    return run, sidecar


def load_predictor(checkpoint: str | Path, backend: str = "eager", device: str = "auto",
                   model: str | None = None, source: str | None = None
                   ) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any], list[str],
                              torch.device]:
    """``(run, preprocess, class_names, device)`` for a checkpoint, run folder or exported
    file, or for torchvision / timm weights of the registered ``model``."""
    if is_exported(checkpoint):
        run, sidecar = exported_runner(checkpoint, backend)
        names = sidecar.class_names or [str(i) for i in range(run(torch.zeros(
            1, *preprocess_input_size(sidecar.preprocess))).shape[1])]
        return run, sidecar.preprocess, names, torch.device("cpu")
    loaded = load_pretrained(model, checkpoint, source)
    info = loaded.pretrained
    if info.checkpoint is not None:
        info.checkpoint.require("to predict", "preprocess")
    names = info.class_names or [str(i) for i in range(loaded.num_classes)]
    # the backends other than eager run on the CPU: "auto" means the CPU for them
    chosen = pick_device("cpu" if device == "auto" and backend != "eager" else device)
    run = predict_runner(loaded.eval(), backend, info.preprocess, chosen)
    return run, info.preprocess, names, chosen


@torch.no_grad()
def predict(checkpoint: str | Path, images: list[str | Path | Image.Image], top_k: int = 5,
            device: str = "auto", batch_size: int = 64, backend: str = "eager",
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
    run, preprocess, names, chosen = load_predictor(checkpoint, backend, device, model, source)
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


def evaluate_exported(path: str | Path, data: str | None = None, split: str = "val",
                      batch_size: int = 256, workers: int | None = 0,
                      limit_batches: int | None = None, backend: str | None = None,
                      examples: int = 0) -> EvalResult | SegEvalResult:
    """:func:`lightnets.train.evaluate` for an exported file: top-1, top-5, loss and confusion
    on ``data`` (default: the data its sidecar records) with the sidecar's preprocessing."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be train or val, got {split!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    path = checkpoint_path(path)
    run, sidecar = exported_runner(path, backend)
    trained = sidecar.data
    data = data or trained.get("data")
    if not data:
        raise ValueError(f"the sidecar of {str(path)!r} does not record the model's data; "
                         "pass --data")
    task = model_task(path)
    if task == "detection":
        raise ValueError(f"{str(path)!r} is an exported detector, which eval does not score "
                         "(mAP is measured on its checkpoint); evaluate its checkpoint instead")
    bundle = build_data(data, sidecar.preprocess, augment=False,
                        val_fraction=trained.get("val_fraction", 0.2),
                        seed=trained.get("seed", 0), normalize=task != "segmentation",
                        task=task)
    if sidecar.class_names is not None and bundle.classes != sidecar.class_names:
        raise ValueError(f"the classes of {data!r} ({', '.join(bundle.classes[:5])}, ...) differ "
                         f"from the model's ({', '.join(sidecar.class_names[:5])}, ...)")
    dataset = bundle.val if split == "val" else bundle.train
    loader = make_loader(dataset, batch_size, torch.device("cpu"), workers or 0)
    if task == "segmentation":  # uint8 from the loader, kept for the examples' picture
        return evaluate_segmenter(run, loader, bundle.num_classes, limit_batches=limit_batches,
                                  classes=bundle.classes, examples=examples,
                                  normalize=normalize_transform(sidecar.preprocess))
    return evaluate_model(run, loader, bundle.num_classes, limit_batches=limit_batches,
                          classes=bundle.classes)
