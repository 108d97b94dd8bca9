"""Prediction: the top-k classes of image files, with the preprocessing the checkpoint stores
(the same resize, crop, channels and normalisation as evaluation during training)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from lightnets.data.transforms import eval_transform
from lightnets.train.checkpoint import load_checkpoint, model_from_checkpoint
from lightnets.train.runtime import pick_device


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


@torch.no_grad()
def predict(checkpoint: str | Path, images: list[str | Path | Image.Image], top_k: int = 5,
            device: str = "auto", batch_size: int = 64, backend: str = "eager"
            ) -> list[Prediction]:
    """Top-``top_k`` classes with probabilities for each image (paths or PIL images), the
    model run by inference ``backend`` (see :mod:`lightnets.export.backends`; BatchNorm folded,
    channels-last where it helps)."""
    from lightnets.export.backends import predict_runner

    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if not images:
        raise ValueError("no images given")
    state = load_checkpoint(checkpoint, prefer="best")
    preprocess, names = state["preprocess"], state["class_names"]
    transform = eval_transform(preprocess)
    # the backends other than eager run on the CPU: "auto" means the CPU for them
    chosen = pick_device("cpu" if device == "auto" and backend != "eager" else device)
    model = predict_runner(model_from_checkpoint(state).eval(), backend, preprocess, chosen)
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
