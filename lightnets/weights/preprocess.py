"""The preprocessing and class names that come with a peer's pretrained weights, as the
``preprocess`` dictionaries checkpoints store (:func:`lightnets.data.transforms.make_preprocess`).

torchvision keeps them on the Weights enum beside each builder (``transforms()``: resize, crop,
interpolation, mean, std; ``meta["categories"]``), read here without downloading anything; a
file whose name is one of torchvision's releases gets that release's, any other the DEFAULT
one's. timm keeps them in each model's ``pretrained_cfg``: a Hugging Face folder carries it in
``config.json``; for a bare file the family declares the default tag's (``PeerWeights.preprocess``),
since lightnets does not import timm. timm resizes the shorter side to
``floor(size / crop_pct)`` and centre-crops ``size``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torchvision

from lightnets.constants import IMAGENET_MEAN, IMAGENET_STD
from lightnets.data.transforms import make_preprocess

# timm's defaults for a pretrained_cfg field its family leaves out (timm's `_cfg` helpers)
TIMM_DEFAULTS: dict[str, Any] = {"input_size": (3, 224, 224), "crop_pct": 0.875,
                                 "interpolation": "bicubic", "mean": IMAGENET_MEAN,
                                 "std": IMAGENET_STD}


def torchvision_weights(peer_name: str, path: Path) -> tuple[Any, bool]:
    """torchvision's Weights entry for a file of ``peer_name``: the release the file name is
    one of, else ``DEFAULT``; and whether the name matched."""
    entries = torchvision.models.get_model_weights(peer_name)
    for entry in entries:
        if Path(entry.url).name == path.name:
            return entry, True
    return entries.DEFAULT, False


def torchvision_preprocess(weights: Any) -> dict[str, Any]:
    """The evaluation transform of a torchvision Weights entry as a ``preprocess`` dictionary.
    A segmenter's (``SemanticSegmentation``: a resize, no crop) becomes lightnets' segmentation
    preprocessing, the whole image resized to a square of that side (its masks with it)."""
    transform = weights.transforms()
    crop = getattr(transform, "crop_size", None)
    side = transform.resize_size[0]
    return make_preprocess(crop[0] if crop else side, 3, side if crop else [side, side],
                           transform.mean, transform.std, transform.interpolation.value)


def timm_preprocess(pretrained_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """timm's ``pretrained_cfg`` (from ``config.json`` or the family's declaration) as a
    ``preprocess`` dictionary; fields left out take timm's defaults."""
    cfg = {**TIMM_DEFAULTS, **pretrained_cfg}
    chans, height, width = cfg["input_size"]
    if height != width:
        raise ValueError(f"non-square timm input size {height}x{width} is not supported")
    if cfg.get("crop_mode", "center") != "center":
        raise ValueError(f"timm crop_mode {cfg['crop_mode']!r} is not supported (only 'center')")
    return make_preprocess(height, chans, math.floor(height / cfg["crop_pct"]), cfg["mean"],
                           cfg["std"], cfg["interpolation"])


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet-1k class names in index order, from torchvision's bundled list."""
    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
