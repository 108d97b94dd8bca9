"""Prediction with detectors: the boxes, classes and scores of each image file, letterboxed as in
training (the longer side to the checkpoint's input size), mapped back to the file's own pixels,
listed and drawn on a copy of the image.

A checkpoint runs in eager PyTorch (torchvision's post-processing); an ONNX file exported with
its post-processing (``lightnets export``'s default for detectors) runs in ONNX Runtime alone,
its boxes straight from the graph."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from lightnets.data.detection import letterbox, rgb_image
from lightnets.data.palette import palette
from lightnets.export.detection import Detections, session_detections
from lightnets.export.onnx import onnx_session
from lightnets.export.predict import OpenedModel, open_model, register_predictor
from lightnets.export.predict_masks import output_stems
from lightnets.files import write_atomic
from lightnets.registry import DETECTION
from lightnets.train.runtime import pick_device


@dataclass
class BoxPrediction:
    """One image's detections above the score threshold, most confident first."""

    image: str
    boxes: list[dict[str, Any]]         # class, label, score, box [x1, y1, x2, y2] (pixels)
    drawn_png: str | None = None

    def line(self) -> str:
        """The boxes found, and the picture written, for a line of output."""
        found = "  ".join(f"{b['class']} {b['score']:.2f} at "
                          f"({', '.join(f'{v:.0f}' for v in b['box'])})"
                          for b in self.boxes) or "nothing above the threshold"
        return f"{found} -> {self.drawn_png}"

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


@register_predictor(DETECTION)
@torch.no_grad()
def predict_boxes(checkpoint: str | Path | OpenedModel, images: list[str | Path],
                  output: str | Path | None = None, score_threshold: float = 0.3,
                  device: str = "auto", model: str | None = None, source: str | None = None,
                  backend: str = "eager") -> list[BoxPrediction]:
    """Detections of a detector checkpoint (or run folder), or of an ONNX file exported with
    its post-processing, on image files; with ``output``, each image is written with its
    boxes drawn as ``<stem>.boxes.png`` into that folder. A checkpoint runs in eager PyTorch,
    the file in ONNX Runtime (``backend``: one of those)."""
    if not images:
        raise ValueError("no images given")
    if not 0 <= score_threshold <= 1:
        raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
    opened = open_model(checkpoint, model, source)
    if backend not in ("eager", "onnxruntime" if opened.exported else "eager"):
        raise ValueError("detectors predict in eager PyTorch (a checkpoint) or ONNX Runtime (a "
                         f"post-processed ONNX file); drop --backend {backend}")
    detect, size, names = (exported_detector(opened) if opened.exported
                           else eager_detector(opened, device))
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
        boxes, scores, labels = (found.cpu() for found in detect(boxed.float().div(255)))
        keep = (scores >= score_threshold) & (labels > 0)
        boxes = boxes[keep] / torch.tensor([scale_x, scale_y, scale_x, scale_y])
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, pixels.shape[-1])
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, pixels.shape[-2])
        listed = [{"class": names[label - 1], "label": label, "score": round(score, 4),
                   "box": [round(v, 1) for v in box]}
                  for box, label, score in zip(boxes.tolist(), labels[keep].tolist(),
                                               scores[keep].tolist())]
        result = BoxPrediction(str(path), listed)
        if folder is not None:
            drawn = draw_boxes(Image.fromarray(pixels.permute(1, 2, 0).numpy()), listed)
            result.drawn_png = str(write_atomic(folder / f"{stem}.boxes.png",
                                                lambda temporary: drawn.save(temporary,
                                                                             format="png")))
        results.append(result)
    return results


def eager_detector(opened: OpenedModel, device: str
                   ) -> tuple[Callable[[torch.Tensor], Detections], int, list[str]]:
    """``(detect, input size, class names)`` of a checkpoint: ``detect`` takes one 0-1
    letterboxed image and returns its boxes, scores and labels."""
    loaded = opened.module
    info = loaded.pretrained
    if info.checkpoint is not None:
        info.checkpoint.require("to predict", "preprocess", "class_names")
    chosen = pick_device(device)
    detector = loaded.to(chosen).eval()

    def detect(image: torch.Tensor) -> Detections:
        [found] = detector([image.to(chosen)])
        return found["boxes"], found["scores"], found["labels"]
    return detect, info.preprocess["input_size"], \
        info.class_names or [str(i) for i in range(1, loaded.num_classes)]


def exported_detector(opened: OpenedModel
                      ) -> tuple[Callable[[torch.Tensor], Detections], int, list[str]]:
    """The same for an ONNX file exported with its post-processing, run in ONNX Runtime."""
    path, sidecar = opened.path, opened.sidecar
    form = sidecar.detection.get("form")
    if form != "postprocessed":
        raise ValueError(f"{str(path)!r} holds a detector's raw head outputs (boxes need "
                         "torchvision's decoding and NMS): predict with its checkpoint, or "
                         "export it with --postprocess")
    run = session_detections(onnx_session(path))
    mean = torch.tensor(sidecar.detection["mean"]).view(-1, 1, 1)
    std = torch.tensor(sidecar.detection["std"]).view(-1, 1, 1)
    _, size, _ = sidecar.input_size[-3:]
    return (lambda image: run(((image - mean) / std).unsqueeze(0))), size, \
        sidecar.class_names or [str(i) for i in range(1, sidecar.model_args.get("num_classes",
                                                                                 91))]
