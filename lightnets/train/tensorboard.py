"""``--log tensorboard``: each epoch's figures as TensorBoard scalars and the task's validation
picture (the confusion matrix, or example predictions of segmenters and detectors) as an image,
in ``<run folder>/tensorboard`` (``tensorboard --logdir runs``). PyTorch's own
``torch.utils.tensorboard`` writer, which needs the ``tensorboard`` package (the extra of that
name)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lightnets.optional import by_product, require
from lightnets.tasks import Task

# validation images drawn with their predictions in the picture (as `lightnets eval` draws)
EXAMPLES = 4
# metrics columns -> TensorBoard groups (the longest prefix first)
GROUPS = (("ema_val_", "ema_val"), ("val_", "val"), ("train_", "train"))
PURPOSE = "--log tensorboard"


def check_logger(kind: str | None) -> None:
    """A one-line error, before any work, when the logger's package is missing."""
    if kind == "tensorboard":
        require("tensorboard", PURPOSE)


def scalar_tag(column: str) -> str:
    """``val_top1`` -> ``val/top1``; columns of no group go under ``run/``."""
    for prefix, group in GROUPS:
        if column.startswith(prefix):
            return f"{group}/{column[len(prefix):]}"
    return f"run/{column}"


class EpochLogger:
    """Writes one epoch at a time to a TensorBoard event file in ``folder``."""

    def __init__(self, folder: Path) -> None:
        check_logger("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder))
        self.pictures = by_product("matplotlib", "the TensorBoard validation picture")

    def examples(self, task: Task) -> int:
        """How many validation images the picture needs kept."""
        return EXAMPLES if self.pictures and task.draws_examples else 0

    def log_epoch(self, task: Task, row: dict[str, Any], result: Any) -> None:
        """The scalars of a metrics ``row`` and the picture of validation ``result``."""
        epoch = int(row["epoch"])
        for column, value in row.items():
            if column != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(scalar_tag(column), value, epoch)
        if self.pictures and result is not None:
            self.writer.add_image("val/picture", picture(task, result), epoch,
                                  dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def picture(task: Task, result: Any) -> np.ndarray:
    """The task's picture of ``result`` as an ``(H, W, 3)`` uint8 array."""
    with tempfile.TemporaryDirectory() as folder:
        path = task.save_picture(result, Path(folder) / "picture.png")
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))


@contextlib.contextmanager
def open_logger(kind: str | None, run_dir: Path, is_main: bool = True
                ) -> Iterator[EpochLogger | None]:
    """The run's logger for the ``with`` block: ``None`` without one, or on processes other
    than rank 0 (which alone writes files)."""
    if kind is None or not is_main:
        yield None
        return
    logger = EpochLogger(run_dir / "tensorboard")
    try:
        yield logger
    finally:
        logger.close()
