"""Decoding image files: the one place a PIL image becomes the 8-bit grey or RGB picture a
model reads, for training, validation and prediction alike.

PIL's ``convert("RGB")`` of a 16-bit image (modes ``I;16``, ``I;16B``, ``I``) clips each value
to 255, so all but the darkest pixels come out white. :func:`to_mode` first scales such images
by the full 16-bit range (value / 257, rounded), so a picture saved at 8 and at 16 bits gives
the same input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# integer grey modes wider than 8 bits ("I" is how PIL may open a 16-bit PNG)
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def eight_bit(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit grey when it is a 16-bit (or 32-bit integer) one, 0..65535 mapped
    to 0..255; any other image as it is."""
    if image.mode not in WIDE_MODES:
        return image
    values = np.asarray(image).astype(np.float64)
    return Image.fromarray(np.clip(np.rint(values / 257), 0, 255).astype(np.uint8), "L")


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` converted to ``mode`` (``L`` or ``RGB``), 16-bit images scaled, not clipped."""
    return eight_bit(image).convert(mode)


def load_rgb(path: str | Path) -> Image.Image:
    """An image file as an RGB PIL image (the loader of the image folders)."""
    with Image.open(path) as image:
        return to_mode(image, "RGB")
