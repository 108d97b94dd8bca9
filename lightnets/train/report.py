"""What a run shows and leaves behind: the per-epoch progress bar, and in the run folder the
resolved configuration (``config.json``), the metrics table (``metrics.csv``) and the loss and
accuracy curves (``curves.png``). Files are replaced atomically: a killed run leaves whole ones."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

RUN_FILES = ("last.pt", "best.pt", "config.json", "metrics.csv", "curves.png")
METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_top1", "val_top5",
                  "epoch_seconds", "images_per_second"]


def choose_run_dir(runs_dir: str, name: str | None, model: str, data: str,
                   overwrite: bool = False) -> Path:
    """``runs_dir/name``; without a name the first free ``<model>-<data>[-N]``. A named folder
    that already holds a run is an error unless ``overwrite`` (its run files are removed)."""
    runs = Path(runs_dir)
    if name:
        run_dir = runs / name
        if (run_dir / "last.pt").exists():
            if not overwrite:
                raise ValueError(f"{run_dir} already holds a run; continue it with --resume "
                                 f"{run_dir}, or pass --overwrite or another --name")
            for filename in RUN_FILES:
                (run_dir / filename).unlink(missing_ok=True)
        return run_dir
    stem = f"{model}-{'digits' if data == 'digits' else Path(data).name}"
    run_dir, number = runs / stem, 1
    while run_dir.exists():
        number += 1
        run_dir = runs / f"{stem}-{number}"
    return run_dir


def write_atomic(path: Path, text: str | bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(text.encode() if isinstance(text, str) else text)
    os.replace(temporary, path)


def write_config(run_dir: Path, config: dict[str, Any], extra: dict[str, Any]) -> None:
    write_atomic(run_dir / "config.json", json.dumps({**config, **extra}, indent=2) + "\n")


def write_metrics(run_dir: Path, history: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({key: (f"{value:.6g}" if isinstance(value, float) else value)
                         for key, value in row.items()})
    write_atomic(run_dir / "metrics.csv", buffer.getvalue())


def plot_curves(run_dir: Path, history: list[dict[str, float]], title: str) -> None:
    """Loss (train and validation) and accuracy (train and validation top-1) per epoch."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
    loss_axes.plot(epochs, [row["val_loss"] for row in history], "o-", label="validation")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    accuracy_axes.plot(epochs, [100 * row["train_acc"] for row in history], "o-", label="train")
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
    return (f"epoch {row['epoch']:>3}/{epochs}  lr {row['lr']:.2e}  "
            f"train loss {row['train_loss']:.4f} acc {row['train_acc']:6.2%}  |  "
            f"val loss {row['val_loss']:.4f} top1 {row['val_top1']:6.2%} "
            f"top5 {row['val_top5']:6.2%}  |  {row['epoch_seconds']:.1f}s "
            f"{row['images_per_second']:.0f} img/s")
