"""What a run shows and leaves behind: the per-epoch progress bar, and in the run folder the
resolved configuration (``config.json``), the metrics table (``metrics.csv``) and the loss and
accuracy curves (``curves.png``). Files are replaced atomically: a killed run leaves whole ones.
The training process holds the run folder's lock (:func:`lightnets.files.lock_folder`) while
it runs, so a second run into the same folder stops at once, naming the first."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from lightnets.files import FolderInUseError, lock_folder, write_atomic

RUN_FILES = ("last.pt", "best.pt", "config.json", "metrics.csv", "curves.png")
# the validation columns are the task's (EvalResult.row, SegEvalResult.row); a row says which
VAL_COLUMNS = {"val_top1": ["val_loss", "val_top1", "val_top5"],
               "val_miou": ["val_loss", "val_miou", "val_pixel_acc"],
               "val_map": ["val_map", "val_map_50", "val_map_75"]}
METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", *VAL_COLUMNS["val_top1"],
                  "epoch_seconds", "images_per_second"]


def metric_columns(row: dict[str, float]) -> list[str]:
    """The columns of a metrics table whose rows look like ``row``."""
    val = VAL_COLUMNS[next((key for key in VAL_COLUMNS if key in row), "val_top1")]
    return ["epoch", "lr", "train_loss", "train_acc", *val, "epoch_seconds",
            "images_per_second"]


def choose_run_dir(runs_dir: str, name: str | None, model: str, data: str) -> Path:
    """``runs_dir/name``; without a name the first ``<model>-<data>[-N]`` that does not exist
    yet (the caller creates it under its lock)."""
    runs = Path(runs_dir)
    if name:
        return runs / name
    stem = f"{model}-{'digits' if data == 'digits' else Path(data).name}"
    run_dir, number = runs / stem, 1
    while run_dir.exists():
        number += 1
        run_dir = runs / f"{stem}-{number}"
    return run_dir


def check_new_run(run_dir: Path, overwrite: bool) -> None:
    """A folder that already holds a run is an error unless ``overwrite``."""
    if (run_dir / "last.pt").exists() and not overwrite:
        raise ValueError(f"{run_dir} already holds a run; continue it with --resume "
                         f"{run_dir}, or pass --overwrite or another --name")


@contextlib.contextmanager
def claimed_run_dir(runs_dir: str, name: str | None, model: str, data: str,
                    overwrite: bool = False, resume_dir: Path | None = None) -> Iterator[Path]:
    """The run folder (``resume_dir``, ``runs_dir/name`` or the first free
    ``<model>-<data>[-N]``), created and locked by this process for the ``with`` block. A
    folder another run holds is an error naming it, and so is a finished run's folder unless
    ``overwrite``; an unnamed run that loses a race for a name takes the next one."""
    claim = contextlib.ExitStack()
    for attempt in range(100):
        run_dir = resume_dir or choose_run_dir(runs_dir, name, model, data)
        try:
            claim.enter_context(lock_folder(run_dir, "training run", "wait for it to end, or "
                                            "pass another --name"))
            break
        except FolderInUseError:
            if resume_dir or name or attempt == 99:
                raise
    with claim:
        if resume_dir is None:
            check_new_run(run_dir, overwrite)
        yield run_dir


def remove_run_files(run_dir: Path) -> None:
    """The files of an earlier run, before an ``overwrite`` run writes its own."""
    for filename in RUN_FILES:
        (run_dir / filename).unlink(missing_ok=True)


def write_config(run_dir: Path, config: dict[str, Any], extra: dict[str, Any]) -> None:
    write_atomic(run_dir / "config.json", json.dumps({**config, **extra}, indent=2) + "\n")


def write_metrics(run_dir: Path, history: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=metric_columns(history[0] if history else {}),
                            extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value)
                         for key, value in row.items()})
    write_atomic(run_dir / "metrics.csv", buffer.getvalue())


def plot_curves(run_dir: Path, history: list[dict[str, float]], title: str) -> None:
    """Loss (train and validation) and accuracy (train and validation top-1; for segmenters
    train pixel accuracy, validation pixel accuracy and mIoU) per epoch (needs matplotlib:
    check :func:`lightnets.optional.by_product` first)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
    if "val_loss" in history[0]:  # detectors compute no loss in eval mode
        loss_axes.plot(epochs, [row["val_loss"] for row in history], "o-", label="validation")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    if "val_map" not in history[0]:
        accuracy_axes.plot(epochs, [100 * row["train_acc"] for row in history], "o-",
                           label="train")
    if "val_map" in history[0]:
        for key, name in (("val_map", "mAP@[.5:.95]"), ("val_map_50", "mAP@.5")):
            accuracy_axes.plot(epochs, [100 * row[key] for row in history], "o-", label=name)
        accuracy_axes.set(xlabel="epoch", ylabel="%", title="validation box mAP")
    elif "val_miou" in history[0]:
        accuracy_axes.plot(epochs, [100 * row["val_pixel_acc"] for row in history], "o-",
                           label="validation pixel accuracy")
        accuracy_axes.plot(epochs, [100 * row["val_miou"] for row in history], "s-",
                           label="validation mIoU")
        accuracy_axes.set(xlabel="epoch", ylabel="%", title="pixel accuracy and mIoU")
    else:
        accuracy_axes.plot(epochs, [100 * row["val_top1"] for row in history], "o-",
                           label="validation top-1")
        accuracy_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_atomic(run_dir / "curves.png", buffer.getvalue())


def epoch_progress(console: Console, enabled: bool) -> Progress:
    """A progress bar for one epoch: steps, loss, accuracy, throughput, elapsed time and ETA
    (on a terminal only; logs get the per-epoch lines)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:6.2%}  "
                   "{task.fields[speed]:5.0f} img/s"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, transient=True, disable=not (enabled and console.is_terminal))


def epoch_line(row: dict[str, float], epochs: int) -> str:
    """The one-line summary printed after each epoch."""
    if "val_map" in row:
        train = f"train loss {row['train_loss']:.4f}"
        val = (f"val mAP {row['val_map']:.3f} mAP@.5 {row['val_map_50']:.3f} "
               f"mAP@.75 {row['val_map_75']:.3f}")
    else:
        train = f"train loss {row['train_loss']:.4f} acc {row['train_acc']:6.2%}"
        val = f"val loss {row['val_loss']:.4f} " + (
            f"mIoU {row['val_miou']:6.2%} pixel acc {row['val_pixel_acc']:6.2%}"
            if "val_miou" in row else f"top1 {row['val_top1']:6.2%} top5 {row['val_top5']:6.2%}")
    return (f"epoch {row['epoch']:>3}/{epochs}  lr {row['lr']:.2e}  {train}  |  {val}  |  "
            f"{row['epoch_seconds']:.1f}s {row['images_per_second']:.0f} img/s")
