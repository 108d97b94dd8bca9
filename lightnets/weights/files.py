"""Reading the files users already have, without running pickled code.

A path is a lightnets checkpoint (``.pt`` or ``.safetensors``, or a run folder: its
``best.pt``), a state-dict file (torchvision's ``.pth``, timm's ``.pth`` / ``.bin`` /
``.safetensors``), or a Hugging Face-style folder: ``config.json`` beside ``model.safetensors``
or ``pytorch_model.bin``. Every file goes through
:func:`lightnets.checkpoint.read_weights_file` (``torch.load(..., weights_only=True)`` or
safetensors). Training wrappers are unwrapped: a ``state_dict`` / ``model`` entry holding the
tensors, and the ``module.`` (DistributedDataParallel) and ``_orig_mod.`` (``torch.compile``)
prefixes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lightnets.checkpoint import FORMAT, Checkpoint, checkpoint_path, read_weights_file

HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # in the order a folder is searched
WRAPPERS = ("state_dict", "model_state_dict", "model")  # training checkpoints, in this order
PREFIXES = ("module.", "_orig_mod.")


@dataclass
class WeightsFile:
    """What a path holds: the weights file itself, its state dict, and the lightnets
    checkpoint or Hugging Face ``config.json`` around it, if any."""

    path: Path
    state: dict[str, torch.Tensor]
    checkpoint: Checkpoint | None = None
    config: dict[str, Any] | None = None


def open_weights(path: str | Path) -> WeightsFile:
    """Read ``path`` (see the module docstring) or fail with a one-line error."""
    path = Path(path).expanduser()
    config = None
    if path.is_dir():
        found = [path / name for name in HF_WEIGHTS if (path / name).is_file()]
        if found and (path / "config.json").is_file():
            config, path = read_config(path / "config.json"), found[0]
        else:  # a lightnets run folder (its config.json is the training configuration)
            path = checkpoint_path(path, prefer="best")
    elif not path.is_file():
        raise ValueError(f"weights file {str(path)!r} not found")
    values = read_weights_file(path)
    if isinstance(values, dict) and values.get("format") == FORMAT:
        checkpoint = Checkpoint.from_dict(values, str(path))
        return WeightsFile(path, dict(checkpoint.weights()), checkpoint)
    return WeightsFile(path, unwrap(values, path), config=config)


def read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {str(path)!r}: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{str(path)!r} is not a JSON object")
    return config


def is_state_dict(values: Any) -> bool:
    return (isinstance(values, dict) and bool(values)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in values.items()))


def unwrap(values: Any, path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside what a file holds, without wrapper prefixes."""
    if not is_state_dict(values) and isinstance(values, dict):
        inner = [values[key] for key in WRAPPERS if is_state_dict(values.get(key))]
        values = inner[0] if inner else values
    if not is_state_dict(values):
        found = (f"a dictionary of {', '.join(map(str, list(values)[:6]))}"
                 if isinstance(values, dict) else type(values).__name__)
        raise ValueError(f"{str(path)!r} holds no state dict (tensors by name): found {found}")
    state = dict(values)
    for prefix in PREFIXES:
        if all(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: tensor for key, tensor in state.items()}
    return state
