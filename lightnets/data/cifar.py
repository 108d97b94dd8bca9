"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from their standard python-pickle folders
(``cifar-10-batches-py`` / ``cifar-100-python``), read by torchvision's dataset classes, which
verify the files' MD5 sums. Nothing is downloaded: the user supplies the files. The official
test batch serves as the validation split.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torchvision.datasets import CIFAR10, CIFAR100


def find_cifar(root: str | Path) -> tuple[type[CIFAR10], Path] | None:
    """``(dataset_class, parent_folder)`` when ``root`` is, or contains, a CIFAR folder."""
    root = Path(root)
    for dataset_class in (CIFAR100, CIFAR10):
        if root.name == dataset_class.base_folder:
            return dataset_class, root.parent
        if (root / dataset_class.base_folder).is_dir():
            return dataset_class, root
    return None


def cifar_datasets(root: str | Path, train_transform: Callable, val_transform: Callable
                   ) -> tuple[CIFAR10, CIFAR10, list[str]]:
    """``(train, val, class_names)``; the val split is the official test batch."""
    found = find_cifar(root)
    if found is None:
        raise ValueError(f"{str(root)!r} holds no cifar-10-batches-py or cifar-100-python folder")
    dataset_class, parent = found
    try:
        train = dataset_class(str(parent), train=True, transform=train_transform, download=False)
        val = dataset_class(str(parent), train=False, transform=val_transform, download=False)
    except RuntimeError:
        raise ValueError(f"{str(parent / dataset_class.base_folder)!r} is incomplete or corrupt "
                         "(torchvision's MD5 check failed); expected the original python "
                         "pickle batches") from None
    return train, val, list(train.classes)
