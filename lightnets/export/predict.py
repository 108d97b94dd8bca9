"""Prediction: the top-k classes of image files, with the preprocessing the checkpoint stores
(the same resize, crop, channels and normalisation as evaluation during training), the model run
by one of the inference backends (:mod:`lightnets.export.backends`). Pretrained torchvision or
timm weights predict the same way, with the source's preprocessing and, for the 1000 ImageNet
classes, their names (:mod:`lightnets.weights`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from lightnets.data.transforms import eval_transform, preprocess_input_size
from lightnets.export.backends import create_backend
from lightnets.export.fuse import fuse
from lightnets.train.runtime import pick_device
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


@torch.no_grad()
def predict(checkpoint: str | Path, images: list[str | Path | Image.Image], top_k: int = 5,
            device: str = "auto", batch_size: int = 64, backend: str = "eager",
            model: str | None = None, source: str | None = None) -> list[Prediction]:
    """Top-``top_k`` classes with probabilities for each image (paths or PIL images), the
    model run by inference ``backend`` (BatchNorm folded, channels-last where it helps).
    ``checkpoint`` is a lightnets checkpoint or run folder, or torchvision / timm weights of
    the registered ``model`` (``source`` as in :func:`lightnets.weights.load_pretrained`)."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if not images:
        raise ValueError("no images given")
    loaded = load_pretrained(model, checkpoint, source)
    info = loaded.pretrained
    if info.checkpoint is not None:
        info.checkpoint.require("to predict", "preprocess")
    preprocess = info.preprocess
    names = info.class_names or [str(i) for i in range(loaded.num_classes)]
    transform = eval_transform(preprocess)
    # the backends other than eager run on the CPU: "auto" means the CPU for them
    chosen = pick_device("cpu" if device == "auto" and backend != "eager" else device)
    model = predict_runner(loaded.eval(), backend, preprocess, chosen)
    k = min(top_k, len(names))
    results: list[Prediction] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        batch = torch.stack([transform(open_image(image, preprocess["in_chans"]))
                             for image in chunk]).to(chosen)
        probabilities = model(batch).float().softmax(dim=1)
        top = probabilities.topk(k, dim=1)
        for offset, (image, values, indices) in enumerate(
                zip(chunk, top.values.tolist(), top.indices.tolist())):
            label = f"<image {start + offset}>" if isinstance(image, Image.Image) else str(image)
            results.append(Prediction(label, [(names[i], i, p) for i, p in zip(indices, values)]))
    return results
