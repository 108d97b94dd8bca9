"""Prediction with detectors: the boxes, classes and scores of each image file, letterboxed as in
training (the longer side to the checkpoint's input size), mapped back to the file's own pixels,
listed and drawn on a copy of the image.

Detectors run in eager PyTorch here: their post-processing (score threshold, NMS, top-k) is
torchvision's, data-dependent code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from lightnets.data.detection import letterbox, rgb_image
from lightnets.data.palette import palette
from lightnets.export.predict_masks import output_stems
from lightnets.files import write_atomic
from lightnets.train.runtime import pick_device
from lightnets.weights import load_pretrained


@dataclass
class BoxPrediction:
    """One image's detections above the score threshold, most confident first."""

    image: str
    boxes: list[dict[str, Any]]         # class, label, score, box [x1, y1, x2, y2] (pixels)
    drawn_png: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "boxes": self.boxes, "drawn_png": self.drawn_png}


def draw_boxes(picture: Image.Image, boxes: list[dict[str, Any]]) -> Image.Image:
    """A copy of ``picture`` with each box outlined in its class's colour and labelled."""
    drawn = picture.convert("RGB")
    pen = ImageDraw.Draw(drawn)
    colours = palette()
    width = max(1, round(max(drawn.size) / 200))
    for found in sorted(boxes, key=lambda found: found["score"]):  # the most confident on top
        colour = tuple(int(c) for c in colours[found["label"] % 255 or 1])
        x1, y1, x2, y2 = found["box"]
        pen.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        text = f"{found['class']} {found['score']:.2f}"
        left, top, right, bottom = pen.textbbox((x1, y1), text)
        lift = bottom - top + 2
        pen.rectangle((x1, y1 - lift, x1 + right - left + 2, y1), fill=colour)
        pen.text((x1 + 1, y1 - lift), text, fill=(255, 255, 255))
    return drawn


@torch.no_grad()
def predict_boxes(checkpoint: str | Path, images: list[str | Path], output: str | Path | None = None,
                  score_threshold: float = 0.3, device: str = "auto",
                  model: str | None = None, source: str | None = None) -> list[BoxPrediction]:
    """Detections of a detector checkpoint (or run folder) on image files; with ``output``,
    each image is written with its boxes drawn as ``<stem>.boxes.png`` into that folder."""
    if not images:
        raise ValueError("no images given")
    if not 0 <= score_threshold <= 1:
        raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
    loaded = load_pretrained(model, checkpoint, source)
    info = loaded.pretrained
    if info.checkpoint is not None:
        info.checkpoint.require("to predict", "preprocess", "class_names")
    names = info.class_names or [str(i) for i in range(1, loaded.num_classes)]
    size = info.preprocess["input_size"]
    chosen = pick_device(device)
    detector = loaded.to(chosen).eval()
    folder = Path(output) if output is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    results = []
    for path, stem in zip(images, output_stems(images)):
        try:
            pixels = rgb_image(path)
        except FileNotFoundError:
            raise ValueError(f"image {str(path)!r} not found") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise ValueError(f"cannot read image {str(path)!r}: {error}") from None
        boxed, _, (scale_x, scale_y) = letterbox(pixels, None, size)
        [found] = detector([boxed.to(chosen).float().div(255)])
        keep = (found["scores"] >= score_threshold) & (found["labels"] > 0)
        boxes = found["boxes"][keep].cpu() / torch.tensor([scale_x, scale_y, scale_x, scale_y])
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, pixels.shape[-1])
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, pixels.shape[-2])
        listed = [{"class": names[label - 1], "label": label, "score": round(score, 4),
                   "box": [round(v, 1) for v in box]}
                  for box, label, score in zip(boxes.tolist(), found["labels"][keep].tolist(),
                                               found["scores"][keep].tolist())]
        result = BoxPrediction(str(path), listed)
        if folder is not None:
            drawn = draw_boxes(Image.fromarray(pixels.permute(1, 2, 0).numpy()), listed)
            result.drawn_png = str(write_atomic(folder / f"{stem}.boxes.png",
                                                lambda temporary: drawn.save(temporary,
                                                                             format="png")))
        results.append(result)
    return results
