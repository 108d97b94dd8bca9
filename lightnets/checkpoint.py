"""The lightnets checkpoint: one writer and one reader of the file every command passes around.

A checkpoint is a plain dictionary of tensors, numbers, strings and containers, so
``torch.load(..., weights_only=True)`` reads it and opening one never runs pickled code. It holds
what rebuilds the model (its registered name and constructor arguments, its weights), what a
deployment needs beside them (the evaluation preprocessing, the class names), and, for a
training run, the state that resumes it exactly (optimiser, scheduler, gradient scaler, epoch,
RNG states, configuration, metrics so far). :class:`Checkpoint` is that layout; it is written
atomically, so a run killed mid-write leaves the previous file intact.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightnets.channel_plan import apply_channel_plan
from lightnets.registry import create_model, resolve_name

FORMAT = "lightnets.checkpoint.v1"


@dataclass
class Checkpoint:
    """The contents of a lightnets checkpoint file (``path`` is where it was read from)."""

    model_name: str
    model_args: dict[str, Any]
    model: dict[str, torch.Tensor]                  # the state dict
    preprocess: dict[str, Any] | None = None        # see lightnets.data.transforms
    class_names: list[str] | None = None
    config: dict[str, Any] = field(default_factory=dict)   # the resolved TrainConfig
    epoch: int = 0
    best_top1: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    rng: dict[str, Any] | None = None
    # a pruned model: its "channel_plan" (lightnets.channel_plan) and how it was pruned
    pruning: dict[str, Any] | None = None
    path: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The plain dictionary written to disk (without ``path``)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name != "path"}
        return {"format": FORMAT, **values}

    @classmethod
    def from_dict(cls, values: Any, path: str | None = None) -> Checkpoint:
        """Check a loaded dictionary is a lightnets checkpoint and wrap it."""
        where = f"{path!r}" if path else "the file"
        if not isinstance(values, dict) or values.get("format") != FORMAT:
            raise ValueError(f"{where} is not a lightnets checkpoint (expected a file written by "
                             "`lightnets train`)")
        known = {f.name for f in dataclasses.fields(cls)} - {"path"}
        missing = [name for name in ("model_name", "model_args", "model") if name not in values]
        if missing:
            raise ValueError(f"checkpoint {where} lacks {', '.join(missing)}; it cannot rebuild "
                             "its model")
        return cls(**{k: v for k, v in values.items() if k in known}, path=path)

    def require(self, purpose: str, *names: str) -> None:
        """A one-line error naming the fields ``purpose`` needs that this checkpoint lacks."""
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise ValueError(f"checkpoint {self.path!r} lacks {', '.join(missing)}, needed "
                             f"{purpose}")

    def build_model(self) -> nn.Module:
        """Rebuild the model from its registered name and arguments (and, if pruned, its
        channel plan) and load its weights."""
        model = create_model(self.model_name, **self.model_args)
        try:
            if self.pruning:
                apply_channel_plan(model, self.pruning["channel_plan"], self.model)
            model.load_state_dict(self.model)
        except (RuntimeError, ValueError, KeyError) as error:
            first = str(error).strip("'").splitlines()[0]
            raise ValueError(f"weights in {self.path or 'the checkpoint'!r} do not fit "
                             f"{self.model_name}: {first}") from None
        return model

    def check_matches(self, model_name: str | None = None, num_classes: int | None = None,
                      in_chans: int | None = None, what: str = "checkpoint") -> None:
        """Clear errors for a checkpoint of another model, class count or channel count."""
        where = f"{what} {self.path or ''!r}"
        if model_name is not None and resolve_name(model_name) != resolve_name(self.model_name):
            raise ValueError(f"{where} holds a {self.model_name}, not a {model_name}")
        classes = self.model_args.get("num_classes")
        if num_classes is not None and classes != num_classes:
            raise ValueError(f"{where} was trained for {classes} classes, the data has "
                             f"{num_classes}")
        chans = self.model_args.get("in_chans")
        if in_chans is not None and chans != in_chans:
            raise ValueError(f"{where} expects {chans}-channel input, the data has {in_chans}")


def checkpoint_path(path: str | Path, prefer: str = "best") -> Path:
    """A checkpoint file, or ``<prefer>.pt`` inside a run folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / f"{prefer}.pt"
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} not found")
    return path


def save_checkpoint(checkpoint: Checkpoint | dict[str, Any], path: str | Path) -> Path:
    """Write to a temporary file beside ``path`` and rename it into place, so a run killed
    mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    payload = checkpoint.to_dict() if isinstance(checkpoint, Checkpoint) else checkpoint
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, prefer: str = "best") -> Checkpoint:
    """Read a lightnets checkpoint (a file, or ``<prefer>.pt`` of a run folder) on the CPU,
    refusing anything but tensors and plain data."""
    path = checkpoint_path(path, prefer)
    try:
        values = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler raises several kinds
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot read checkpoint {str(path)!r}: {reason}") from None
    return Checkpoint.from_dict(values, str(path))
