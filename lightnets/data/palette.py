"""Colours for class-index masks: Pascal VOC's palette, in which class *i*'s red, green and blue
take the bits of *i* in turn from the most significant down (so neighbouring indices differ
clearly), and its cream for the ignored index 255."""

from __future__ import annotations

import numpy as np
import torch

IGNORE_COLOUR = (224, 224, 192)  # VOC's colour for its void border (index 255)


def palette() -> np.ndarray:
    """``(256, 3)`` uint8 colours, row *i* for class index *i*."""
    colours = np.zeros((256, 3), np.uint8)
    for index in range(256):
        value, rgb = index, [0, 0, 0]
        for bit in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << bit
            value >>= 3
        colours[index] = rgb
    colours[255] = IGNORE_COLOUR
    return colours


def colourize(mask: torch.Tensor | np.ndarray) -> np.ndarray:
    """An ``(H, W)`` mask of class indices as an ``(H, W, 3)`` uint8 colour picture."""
    indices = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask).astype(np.uint8)
    return palette()[indices]


def overlay(image: np.ndarray, mask: torch.Tensor | np.ndarray, alpha: float = 0.55
            ) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 with the mask's colours blended over every pixel that is
    not background (index 0)."""
    indices = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask)
    blended = image.astype(np.float32)
    labelled = indices != 0
    blended[labelled] = (1 - alpha) * blended[labelled] + alpha * colourize(indices)[labelled]
    return blended.round().astype(np.uint8)
