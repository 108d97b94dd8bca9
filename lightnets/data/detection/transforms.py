"""Joint image and box transforms for detection, from torchvision's transforms v2.

They run after the letterbox (:func:`lightnets.data.detection.records.letterbox`) on uint8
images; normalisation happens later, on the device or inside the detector. Training adds light
augmentation suited to the data: for the digit canvases a small shift and zoom and brightness
and contrast jitter (hue jitter is slow in torchvision)
but no flip (a mirrored 2 is no digit); for photographs also a horizontal flip and the
photometric distortion of SSD (Liu et al. 2016). ``zoom_crop`` puts SSD's own geometric
augmentation first: zoom out (the image placed on a canvas up to 4 times its side, half the
time), then a random crop whose IoU with some box passes a drawn minimum, letterboxed back to
the training size (torchvision's SSDLite recipe). Every pipeline ends by clamping the boxes to
the image and dropping degenerate ones with ``SanitizeBoundingBoxes``, the labels and crowd
flags with them. Training then leaves out the boxes flagged ``iscrowd`` (COCO crowds, VOC
"difficult" objects): torchvision's detectors have no ignore regions, so such a box would be
learnt as an ordinary object, while validation keeps them for mAP to ignore, as COCO's and VOC's
evaluations do.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from lightnets.data.detection.records import MIN_BOX_SIZE, letterbox


# the photometric steps --no-colour-jitter leaves out (the boxes do not follow them)
COLOUR_STEPS = (v2.ColorJitter, v2.RandomPhotometricDistort)


def box_fields(inputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-box tensors SanitizeBoundingBoxes filters with the boxes (a module-level
    function, so DataLoader processes can pickle the pipeline)."""
    target = inputs[1]
    return target["labels"], target["iscrowd"]


def sanitize() -> list[v2.Transform]:
    """Clamp boxes to the image, then drop those under :data:`MIN_BOX_SIZE`."""
    return [v2.ClampBoundingBoxes(),
            v2.SanitizeBoundingBoxes(min_size=MIN_BOX_SIZE, min_area=MIN_BOX_SIZE,
                                     labels_getter=box_fields)]


def drop_ignored(image: Any, target: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The target without its ``iscrowd`` boxes (training only; see the module's docstring)."""
    keep = target["iscrowd"] == 0
    if bool(keep.all()):
        return image, target
    boxes = tv_tensors.wrap(target["boxes"][keep], like=target["boxes"])
    return image, {**target, "boxes": boxes, "labels": target["labels"][keep],
                   "iscrowd": target["iscrowd"][keep]}


def letterboxed_again(image: Any, target: dict[str, Any], size: int) -> tuple[Any, dict[str, Any]]:
    """The pair letterboxed to ``size`` again (after a crop changed its size)."""
    image, boxes, _ = letterbox(image, target["boxes"], size)
    return image, {**target, "boxes": boxes}


def detection_eval_transform() -> v2.Compose:
    """Validation: no change beyond the letterbox but the box sanitising."""
    return v2.Compose(sanitize())


def detection_train_transform(kind: str, augment: bool = True, zoom_crop: bool = False,
                              size: int | None = None, colour_jitter: bool = True
                              ) -> v2.Compose:
    """Training: light augmentation for ``kind`` (``digits-det``: no flip; its colour jitter,
    or the photometric distortion for photographs, only with ``colour_jitter``), after SSD's
    zoom-out and IoU crop with ``zoom_crop`` (back to ``size``), then sanitising and leaving
    out the ignored boxes."""
    if zoom_crop and size is None:
        raise ValueError("zoom_crop letterboxes the crop back to the training size: pass size")
    zoom = v2.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.8, 1.2))
    if not augment:
        steps = []
    elif kind == "digits-det":
        steps = [zoom, v2.ColorJitter(brightness=0.3, contrast=0.3)]
    else:
        steps = [v2.RandomPhotometricDistort(p=0.5), v2.RandomHorizontalFlip(), zoom]
    if not colour_jitter:
        steps = [step for step in steps if not isinstance(step, COLOUR_STEPS)]
    if augment and zoom_crop:
        steps = [v2.RandomZoomOut(fill=0, side_range=(1.0, 4.0), p=0.5), v2.RandomIoUCrop(),
                 *sanitize(), partial(letterboxed_again, size=size), *steps]
    return v2.Compose([*steps, *sanitize(), drop_ignored])
