"""Checkpoints: written atomically, read without executing pickled code.

A checkpoint is a plain dictionary of tensors, numbers, strings and containers, so
``torch.load(..., weights_only=True)`` can read it: the model's registered name and constructor
arguments (enough to rebuild it), its weights, the optimiser, scheduler and gradient-scaler
states, the epoch, the RNG states (as tensors), the resolved configuration, the evaluation
preprocessing, the class names and the metrics so far.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FORMAT = "lightnets.checkpoint.v1"


def checkpoint_path(path: str | Path, prefer: str = "best") -> Path:
    """A checkpoint file, or ``<prefer>.pt`` inside a run folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / f"{prefer}.pt"
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} not found")
    return path


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` to a temporary file beside ``path`` and rename it into place, so a
    run killed mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, prefer: str = "best") -> dict[str, Any]:
    """Read a lightnets checkpoint on the CPU, refusing anything but tensors and plain data."""
    path = checkpoint_path(path, prefer)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler raises several kinds
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot read checkpoint {str(path)!r}: {reason}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a lightnets training checkpoint")
    checkpoint["path"] = str(path)
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any]) -> nn.Module:
    """Rebuild the model from its registered name and arguments and load its weights."""
    from lightnets.registry import create_model

    model = create_model(checkpoint["model_name"], **checkpoint["model_args"])
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ValueError(f"weights in {checkpoint.get('path', 'the checkpoint')!r} do not fit "
                         f"{checkpoint['model_name']}: {first}") from None
    return model


def check_matches(checkpoint: dict[str, Any], model_name: str | None = None,
                  num_classes: int | None = None, in_chans: int | None = None,
                  what: str = "checkpoint") -> None:
    """Clear errors for a checkpoint of another model, class count or channel count."""
    from lightnets.registry import resolve_name

    where = f"{what} {checkpoint.get('path', '')!r}"
    stored = checkpoint["model_name"]
    if model_name is not None and resolve_name(model_name) != resolve_name(stored):
        raise ValueError(f"{where} holds a {stored}, not a {model_name}")
    classes = checkpoint["model_args"].get("num_classes")
    if num_classes is not None and classes != num_classes:
        raise ValueError(f"{where} was trained for {classes} classes, the data has {num_classes}")
    chans = checkpoint["model_args"].get("in_chans")
    if in_chans is not None and chans != in_chans:
        raise ValueError(f"{where} expects {chans}-channel input, the data has {in_chans}")


def capture_rng() -> dict[str, Any]:
    """Every RNG a run draws from, as tensors (numbers beside them)."""
    python_version, python_state, python_gauss = random.getstate()
    _, numpy_keys, numpy_pos, numpy_has_gauss, numpy_gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": torch.tensor(python_state, dtype=torch.int64),
        "python_version": python_version, "python_gauss": python_gauss,
        "numpy": torch.from_numpy(numpy_keys.astype(np.int64)),
        "numpy_pos": int(numpy_pos), "numpy_has_gauss": int(numpy_has_gauss),
        "numpy_gauss": float(numpy_gauss),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the RNG states of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"].tolist()),
                     state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
