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
from lightnets.tasks import Task

RUN_FILES = ("last.pt", "best.pt", "config.json", "metrics.csv", "curves.png")


# the columns of the weights' moving average (--model-ema) start with this
EMA_PREFIX = "ema_"


def metric_columns(task: Task, ema: bool = False) -> list[str]:
    """The columns of a metrics table of ``task``'s runs (its validation columns, and a
    training accuracy where the task counts one; with ``ema``, the validation columns of the
    weights' moving average too)."""
    return ["epoch", "lr", "train_loss", *(["train_acc"] if task.train_accuracy else []),
            *task.val_columns, *(ema_columns(dict.fromkeys(task.val_columns)) if ema else []),
            "epoch_seconds", "images_per_second"]


def ema_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The validation figures of the moving average, named apart from the trained weights'."""
    return {EMA_PREFIX + key: value for key, value in row.items()}


def ema_figures(row: dict[str, Any]) -> dict[str, Any]:
    """The moving average's figures of a metrics row under the plain names (empty without)."""
    return {key[len(EMA_PREFIX):]: value for key, value in row.items()
            if key.startswith(EMA_PREFIX)}


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


def write_metrics(run_dir: Path, history: list[dict[str, float]], task: Task) -> None:
    buffer = io.StringIO()
    ema = any(key.startswith(EMA_PREFIX) for key in history[-1]) if history else False
    writer = csv.DictWriter(buffer, fieldnames=metric_columns(task, ema), extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value)
                         for key, value in row.items()})
    write_atomic(run_dir / "metrics.csv", buffer.getvalue())


def plot_curves(run_dir: Path, history: list[dict[str, float]], task: Task, title: str
                ) -> None:
    """Loss (train and validation) and the task's figures (train accuracy where it counts one,
    and its validation curves) per epoch (needs matplotlib: check
    :func:`lightnets.optional.by_product` first)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
    if "val_loss" in history[0]:  # detectors compute no loss in eval mode
        loss_axes.plot(epochs, [row["val_loss"] for row in history], "o-", label="validation")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    if task.train_accuracy:
        accuracy_axes.plot(epochs, [100 * row["train_acc"] for row in history], "o-",
                           label="train")
    for key, name, style in task.curves:
        accuracy_axes.plot(epochs, [100 * row[key] for row in history], style, label=name)
        if EMA_PREFIX + key in history[0]:
            accuracy_axes.plot(epochs, [100 * row[EMA_PREFIX + key] for row in history], "x--",
                               label=f"{name} (EMA)")
    accuracy_axes.set(xlabel="epoch", ylabel=task.curves_axis[0], title=task.curves_axis[1])
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_atomic(run_dir / "curves.png", buffer.getvalue())


def epoch_progress(console: Console, enabled: bool, accuracy: bool = True) -> Progress:
    """A progress bar for one epoch: steps, loss, training accuracy (where counted),
    throughput, elapsed time and ETA (on a terminal only; logs get the per-epoch lines)."""
    shown = "acc {task.fields[acc]:6.2%}  " if accuracy else ""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  " + shown + "{task.fields[speed]:5.0f} img/s"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, transient=True, disable=not (enabled and console.is_terminal))


def epoch_line(row: dict[str, float], epochs: int, task: Task) -> str:
    """The one-line summary printed after each epoch."""
    train = f"train loss {row['train_loss']:.4f}" + (
        f" acc {row['train_acc']:6.2%}" if task.train_accuracy else "")
    val = task.epoch_summary(row)
    averaged = ema_figures(row)
    if averaged:
        val += f"  |  EMA {task.epoch_summary(averaged)}"
    return (f"epoch {row['epoch']:>3}/{epochs}  lr {row['lr']:.2e}  {train}  |  {val}  |  "
            f"{row['epoch_seconds']:.1f}s {row['images_per_second']:.0f} img/s")
