"""scikit-learn's handwritten digits: 1,797 real 8x8 scans (UCI "Optical Recognition of
Handwritten Digits", the test part) shipped inside the package, so nothing is downloaded.

The split is fixed and RNG-free: within each class, in the order scikit-learn returns the
samples, every fifth sample (the 5th, 10th, ...) is validation. That gives 1,442 training and
355 validation images, 34-36 per class in validation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from lightnets.optional import require

CLASS_NAMES = [str(digit) for digit in range(10)]


class TensorImageDataset(Dataset):
    """Images held in memory as a ``(N, C, H, W)`` float tensor in [0, 1], with labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor,
                 transform: Callable | None = None, classes: list[str] | None = None) -> None:
        self.images, self.labels, self.transform = images, labels, transform
        self.classes = classes or [str(i) for i in range(int(labels.max()) + 1)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        return (self.transform(image) if self.transform else image), int(self.labels[index])


def digits_split() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``(train_images, train_labels), (val_images, val_labels)``, images ``(N, 1, 8, 8)``."""
    digits = require("sklearn.datasets", "--data digits").load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(digits.target.astype(np.int64))
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    for digit in range(10):
        where = torch.nonzero(labels == digit).flatten()
        is_val[where[4::5]] = True
    return (images[~is_val], labels[~is_val]), (images[is_val], labels[is_val])


def digits_datasets(train_transform: Callable, val_transform: Callable
                    ) -> tuple[TensorImageDataset, TensorImageDataset]:
    """The fixed digits train and validation datasets with the given transforms."""
    (train_x, train_y), (val_x, val_y) = digits_split()
    return (TensorImageDataset(train_x, train_y, train_transform, CLASS_NAMES),
            TensorImageDataset(val_x, val_y, val_transform, CLASS_NAMES))


def write_digits_folder(root: str | Path, per_class: int = 60, size: int = 256,
                        quality: int = 90, split: str = "train") -> Path:
    """Write the first ``per_class`` digits of each class of the ``split`` (``train`` or
    ``val``) as ``root/<digit>/<i>.jpg``, RGB JPEGs of ``size`` x ``size`` (bicubic upscaling
    of the 8x8 scans): a small photograph-like class folder for trying and timing the folder
    path without downloading anything."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    train, val = digits_split()
    images, labels = train if split == "train" else val
    root = Path(root)
    for digit in range(10):
        (root / CLASS_NAMES[digit]).mkdir(parents=True, exist_ok=True)
        chosen = torch.nonzero(labels == digit).flatten()[:per_class]
        for number, index in enumerate(chosen.tolist()):
            pixels = (images[index, 0] * 255).round().to(torch.uint8).numpy()
            scan = Image.fromarray(pixels, mode="L").resize((size, size), Image.BICUBIC)
            scan.convert("RGB").save(root / CLASS_NAMES[digit] / f"{number}.jpg", quality=quality)
    return root
