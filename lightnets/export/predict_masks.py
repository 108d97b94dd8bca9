"""Prediction with segmenters: a class-index mask per image file, written as a palette PNG
(its pixel values are the class indices, its palette VOC's colours, so it opens as a picture
and reads back as labels) and an overlay of the colours on the image, with the share of the
image each class covers.

The image is preprocessed as in training (the checkpoint's or sidecar's resize, channels and
normalisation), the logits are resized bilinearly back to the image's own size and the mask is
their arg-max there, so the mask lines up with the file given. A binary segmenter's one channel
is the foreground where its sigmoid exceeds the threshold its checkpoint or sidecar records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lightnets.data.palette import overlay, palette
from lightnets.data.transforms import eval_transform
from lightnets.export.predict import (OpenedModel, load_predictor, model_threshold, open_image,
                                      open_model, register_predictor)
from lightnets.files import write_atomic
from lightnets.registry import SEGMENTATION
from lightnets.segment.losses import class_logits


@dataclass
class MaskPrediction:
    """One image's predicted mask, where it was written, and each class's share of pixels."""

    image: str
    mask: torch.Tensor                  # (H, W) class indices at the image's size
    fractions: dict[str, float]
    mask_png: str | None = None
    overlay_png: str | None = None

    def line(self) -> str:
        """Each class's share of the pixels, and the files written, for a line of output."""
        shares = "  ".join(f"{name} {share:.1%}" for name, share in sorted(
            self.fractions.items(), key=lambda item: -item[1]))
        return f"{shares} -> {self.mask_png}, {self.overlay_png}"

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "mask_png": self.mask_png, "overlay_png": self.overlay_png,
                "size": list(self.mask.shape), "fractions": self.fractions}


def output_stems(images: list[str | Path | Image.Image]) -> list[str]:
    """A distinct file stem per image (``image``, ``image-2``, ... when names repeat)."""
    stems, seen = [], {}
    for number, image in enumerate(images):
        stem = Path(image).stem if not isinstance(image, Image.Image) else f"image-{number}"
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def write_mask_png(mask: torch.Tensor, path: Path) -> Path:
    """``mask`` as a palette PNG whose values are the class indices."""
    picture = Image.fromarray(mask.to(torch.uint8).numpy(), mode="P")
    picture.putpalette(palette().flatten().tolist())
    return write_atomic(path, lambda temporary: picture.save(temporary, format="png"))


@register_predictor(SEGMENTATION)
@torch.no_grad()
def predict_masks(checkpoint: str | Path | OpenedModel, images: list[str | Path | Image.Image],
                  output: str | Path | None = None, device: str = "auto",
                  backend: str = "eager", model: str | None = None,
                  source: str | None = None) -> list[MaskPrediction]:
    """The predicted mask of each image by a segmenter (a checkpoint, run folder or exported
    file, run by ``backend`` as :func:`lightnets.export.predict.predict` runs classifiers);
    with ``output``, each mask is written as ``<stem>.mask.png`` and ``<stem>.overlay.png``
    into that folder."""
    if not images:
        raise ValueError("no images given")
    opened = open_model(checkpoint, model, source)
    run, preprocess, names, chosen = load_predictor(opened, backend, device)
    threshold = model_threshold(opened)
    transform = eval_transform(preprocess)
    folder = Path(output) if output is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    results = []
    for image, stem in zip(images, output_stems(images)):
        picture = open_image(image, 3)
        logits = run(transform(open_image(picture, preprocess["in_chans"]))[None].to(chosen))
        if logits.dim() != 4:
            raise ValueError(f"{checkpoint} is not a segmenter: it returns {tuple(logits.shape)}"
                             ", not (N, classes, H, W)")
        logits = F.interpolate(class_logits(logits.float().cpu(), threshold),
                               size=(picture.height, picture.width), mode="bilinear",
                               align_corners=False)
        mask = logits[0].argmax(0)
        counts = torch.bincount(mask.flatten(), minlength=len(names)).double() / mask.numel()
        label = f"<image {len(results)}>" if isinstance(image, Image.Image) else str(image)
        result = MaskPrediction(label, mask, {name: float(share) for name, share
                                              in zip(names, counts) if share > 0})
        if folder is not None:
            result.mask_png = str(write_mask_png(mask, folder / f"{stem}.mask.png"))
            blended = Image.fromarray(overlay(np.asarray(picture), mask))
            result.overlay_png = str(write_atomic(
                folder / f"{stem}.overlay.png",
                lambda temporary: blended.save(temporary, format="png")))
        results.append(result)
    return results
