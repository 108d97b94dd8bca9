"""The lightnets checkpoint: one writer and one reader of the file every command passes around.

A checkpoint is a plain dictionary of tensors, numbers, strings and containers, so
``torch.load(..., weights_only=True)`` reads it and opening one never runs pickled code. It holds
what rebuilds the model (its registered name and constructor arguments, its weights), what a
deployment needs beside them (the evaluation preprocessing, the class names), and, for a
training run, the state that resumes it exactly (optimiser, scheduler, gradient scaler, epoch,
RNG states, configuration, metrics so far). :class:`Checkpoint` is that layout; it is written
atomically, so a run killed mid-write leaves the previous file intact.

A path ending in ``.safetensors`` holds the same checkpoint as a safetensors file (what
``lightnets convert`` writes): the weights as tensors, the model's name and arguments,
preprocessing, class names and metrics as JSON in its metadata; the training state stays in
``.pt`` files, which alone resume a run. :func:`read_weights_file` is the one reader of both
kinds, and of any other state-dict file (:mod:`lightnets.weights` reads torchvision's and
timm's through it).

A file that is not a checkpoint is named for what it is (an exported model, a text file, a file
holding pickled code, ...) in one place, :func:`describe_file`, so no command repeats PyTorch's
own advice to load it unsafely.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightnets.channel_plan import apply_channel_plan
from lightnets.files import first_line, write_atomic
from lightnets.optional import MissingDependencyError, require
from lightnets.registry import create_model, resolve_name

FORMAT = "lightnets.checkpoint.v1"
SAFETENSORS = ".safetensors"
# what a .safetensors checkpoint keeps beside the weights, as JSON in its metadata
SAFETENSORS_FIELDS = ("model_name", "model_args", "preprocess", "class_names", "config", "epoch",
                      "best_score", "best_metric", "history")
# fields renamed since files were first written: old name -> new name (read either)
RENAMED = {"best_top1": "best_score"}
EXPECTED = "expected a .pt file written by `lightnets train` (last.pt or best.pt)"
EXPORTED = "an exported model, which `lightnets predict` and `lightnets eval` run"
PICKLED = ("a PyTorch file holding pickled Python objects, which a weights-only load refuses "
           "because unpickling them could run code")
# field -> the types it may hold (None: the field may be absent)
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "model_name": (str,), "model_args": (dict,), "model": (dict,),
    "preprocess": (dict, type(None)), "class_names": (list, type(None)), "config": (dict,),
    "epoch": (int,), "best_score": (int, float), "best_metric": (str, type(None)),
    "history": (list,),
    "optimizer": (dict, type(None)), "scheduler": (dict, type(None)),
    "scaler": (dict, type(None)), "rng": (dict, type(None)), "ema": (dict, type(None)),
}
PREPROCESS_KEYS = ("input_size", "in_chans", "resize", "mean", "std")


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
    # the best validation figure so far, and which it is (the task's metric: "top1", "miou",
    # "map"; None in files written before it was recorded, whose best_top1 held it)
    best_score: float = -1.0
    best_metric: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    rng: dict[str, Any] | None = None
    # a pruned model: its "channel_plan" (lightnets.channel_plan) and how it was pruned
    pruning: dict[str, Any] | None = None
    # the moving average of the weights (`lightnets train --model-ema`): its "model" state
    # (the model's keys), "decay" and "updates" (lightnets.train.ema)
    ema: dict[str, Any] | None = None
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
        values = {RENAMED.get(key, key): value for key, value in values.items()}
        known = {f.name for f in dataclasses.fields(cls)} - {"path"}
        missing = [name for name in ("model_name", "model_args", "model") if name not in values]
        if missing:
            raise ValueError(f"checkpoint {where} lacks {', '.join(missing)}; it cannot rebuild "
                             "its model")
        for name, types in FIELD_TYPES.items():
            if name in values and not isinstance(values[name], types):
                expected = " or ".join(t.__name__ for t in types if t is not type(None))
                raise ValueError(f"checkpoint {where} is damaged: its {name} is a "
                                 f"{type(values[name]).__name__}, expected a {expected}")
        preprocess = values.get("preprocess")
        lacking = [] if preprocess is None else [k for k in PREPROCESS_KEYS if k not in preprocess]
        if lacking:
            raise ValueError(f"checkpoint {where} is damaged: its preprocess lacks "
                             f"{', '.join(lacking)}")
        return cls(**{k: v for k, v in values.items() if k in known}, path=path)

    def require(self, purpose: str, *names: str) -> None:
        """A one-line error naming the fields ``purpose`` needs that this checkpoint lacks."""
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise ValueError(f"checkpoint {self.path!r} lacks {', '.join(missing)}, needed "
                             f"{purpose}")

    def restore(self, part: str, load: Callable[[Any], Any]) -> None:
        """Load this checkpoint's ``part`` (``"model"``, ``"optimizer"``, ``"rng"``...) with
        ``load``; a state that does not fit is one line naming the file and the part."""
        try:
            load(getattr(self, part))
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
            detail = (f"no {error.args[0]!r} entry" if isinstance(error, KeyError) and error.args
                      else first_line(error))
            raise ValueError(f"the {part} state in checkpoint {self.path!r} does not fit this "
                             f"run ({detail}); the file is damaged or from another "
                             "configuration") from None

    def weights(self, raw: bool = False) -> dict[str, torch.Tensor]:
        """The weights to evaluate and deploy: the moving average when the run kept one
        (what its EMA validation column scored), else (or when ``raw``) the trained ones."""
        if self.ema is not None and not raw:
            return self.ema["model"]
        return self.model

    def build_model(self, raw: bool = False) -> nn.Module:
        """Rebuild the model from its registered name and arguments (and, if pruned, its
        channel plan) and load its :meth:`weights`."""
        model = create_model(self.model_name, **self.model_args)
        try:
            if self.pruning:
                apply_channel_plan(model, self.pruning["channel_plan"], self.model)
            model.load_state_dict(self.weights(raw))
        except (RuntimeError, ValueError, KeyError) as error:
            raise ValueError(f"weights in {self.path or 'the checkpoint'!r} do not fit "
                             f"{self.model_name}: {first_line(error)}") from None
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
    payload = checkpoint.to_dict() if isinstance(checkpoint, Checkpoint) else checkpoint
    # serialised in memory first: torch.save reports a full disk as an opaque RuntimeError,
    # a plain write reports it as the OSError it is
    if Path(path).suffix == SAFETENSORS:
        return write_atomic(path, safetensors_bytes(payload))
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return write_atomic(path, buffer.getbuffer())


def exported_archive(path: Path) -> str | None:
    """The phrase for a ``.pt2`` or TorchScript zip archive, else ``None``. Checked before
    ``torch.load``, which would hand a TorchScript file to ``torch.jit.load``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None
    if any(name.endswith("archive_format") or "/models/" in name for name in names):
        return f"a torch.export archive (.pt2, {EXPORTED})"
    if any("/code/" in name for name in names):
        return f"a TorchScript file ({EXPORTED})"
    return None


def describe_file(path: str | Path) -> str:
    """What a file that is no readable checkpoint is, as a phrase ("an ONNX model", "a text
    file", ...), from its first bytes and, for zip archives, their member names."""
    path = Path(path)
    with open(path, "rb") as file:
        head = file.read(4096)
    if not head:
        return "an empty file"
    if head.startswith(b"PK"):  # torch.save, torch.export and TorchScript all write zip files
        if not zipfile.is_zipfile(path):
            return "a truncated or corrupt zip archive"
        return exported_archive(path) or PICKLED
    sidecar = path.with_name(path.name + ".json")
    if path.suffix == ".onnx" or (head[:1] == b"\x08" and b"onnx" in head.lower()):
        kind = "an ONNX model"
        if sidecar.is_file():
            with contextlib.suppress(ValueError, OSError):
                precision = json.loads(sidecar.read_text()).get("precision", "fp32")
                kind = f"{'a' if precision.startswith('b') else 'an'} {precision} ONNX model"
        return f"{kind} ({EXPORTED})"
    if head.startswith(b"\x80"):  # a pickle stream: torch.save's legacy format
        return PICKLED
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not merely a character cut at the end of the head
            return "not a PyTorch file (unknown binary content)"
    try:
        values = json.loads(path.read_text())
    except (ValueError, OSError):
        return "a text file"
    if isinstance(values, dict) and str(values.get("format", "")).startswith("lightnets.sidecar"):
        return f"the JSON sidecar of {values.get('artefact', 'an exported model')}"
    return "a JSON file"


def load_checkpoint(path: str | Path, prefer: str = "best") -> Checkpoint:
    """Read a lightnets checkpoint (a file, or ``<prefer>.pt`` of a run folder) on the CPU,
    refusing anything but tensors and plain data."""
    path = checkpoint_path(path, prefer)
    return Checkpoint.from_dict(read_weights_file(path, EXPECTED, "a lightnets checkpoint"),
                                str(path))


def read_weights_file(path: str | Path, expected: str = "expected a weights file (.pt, .pth, "
                      ".bin or .safetensors)", kind: str = "a weights file") -> Any:
    """What a weights file holds, on the CPU, without running pickled code: for a ``.pt`` /
    ``.pth`` / ``.bin`` file what ``torch.load(..., weights_only=True)`` returns; for a
    ``.safetensors`` file its tensors, or for a lightnets one the checkpoint dictionary. A file
    that cannot be read is named for what it is (:func:`describe_file`), not being ``kind``,
    and the error says what was ``expected``."""
    path = Path(path)
    if path.suffix == SAFETENSORS:
        try:
            return _load_safetensors(path)
        except (MissingDependencyError, ValueError):
            raise
        except Exception as error:  # noqa: BLE001 - safetensors raises several kinds
            raise ValueError(f"cannot read checkpoint {str(path)!r}: {first_line(error)}"
                             ) from None
    what = exported_archive(path)
    try:
        if what:
            raise ValueError(what)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - on foreign bytes the unpickler raises any kind
        what = what or describe_file(path)
        if not what.startswith("not "):
            what += f", not {kind}"
        raise ValueError(f"cannot read checkpoint {str(path)!r}: it is {what}; {expected}"
                         ) from None


def safetensors_bytes(payload: dict[str, Any]) -> bytes:
    """The weights as tensors, the fields of :data:`SAFETENSORS_FIELDS` as JSON metadata."""
    safetensors = require("safetensors.torch", "writing .safetensors checkpoints")
    metadata = {"format": FORMAT}
    for name in SAFETENSORS_FIELDS:
        try:
            metadata[name] = json.dumps(payload.get(name))
        except TypeError as error:
            raise ValueError(f"checkpoint field {name} cannot be stored in a .safetensors file "
                             f"({error}); save it as .pt") from None
    # the weights to deploy: a run's moving average when it kept one (Checkpoint.weights)
    weights = (payload.get("ema") or {}).get("model") or payload["model"]
    tensors = {key: tensor.detach().contiguous() for key, tensor in weights.items()}
    return safetensors.save(tensors, metadata=metadata)


def _load_safetensors(path: Path) -> dict[str, Any]:
    safetensors = require("safetensors", "reading .safetensors files")
    with safetensors.safe_open(str(path), framework="pt") as opened:
        metadata = opened.metadata() or {}
        tensors = {key: opened.get_tensor(key) for key in opened.keys()}
    if metadata.get("format") != FORMAT:
        return tensors
    values = {RENAMED.get(name, name): json.loads(value) for name, value in metadata.items()
              if RENAMED.get(name, name) in SAFETENSORS_FIELDS}
    return {"format": FORMAT, **values, "model": tensors}
