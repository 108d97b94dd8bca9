"""The file formats a model is exported to, one :class:`Format` entry each: how the file is
written, which packages that needs, and how the file is run in its own runtime for the check
(and for ``predict`` / ``eval``).

ONNX, TorchScript and ``.pt2`` register themselves beside their writers
(:mod:`lightnets.export.onnx`, :mod:`lightnets.export.torch_formats`); the phone and edge
runtimes in :mod:`lightnets.export.runtimes`. ``export_model`` only ever asks this table, so a
new format is one module and one import line.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

Runner = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Target:
    """Where and in which shape one export writes its file."""

    path: Path
    input_size: tuple[int, int, int]
    dynamic_batch: bool
    batch_size: int
    dynamic_size: bool  # height and width symbolic too (segmenters), where the format can
    opset: int
    weights: str = "fp32"  # how the file stores its weights: "fp16" or "int8" where the
                           # format lists it in ``weight_precisions``


@dataclass(frozen=True)
class Written:
    """What a writer gave of a dynamic-size target, where not every side: the smallest height
    and width its file computes (``min_side``), or only the traced size
    (``dynamic_size=False``)."""

    min_side: int | None = None
    dynamic_size: bool = True


@dataclass(frozen=True)
class Format:
    """One export format.

    ``write(model, target)`` writes the file of the eval-mode ``model`` (returning a
    :class:`Written` where it gave less than a dynamic size asked for); ``load(path,
    threads)`` gives a callable running it in its own runtime on a float NCHW batch (``None``
    where that runtime cannot run on this platform; the format then needs ``inspect``).
    ``packages`` are ``(module, purpose)`` pairs needed to write and check the file, and
    ``extra`` the lightnets extra that installs them."""

    name: str
    suffix: str
    write: Callable[[nn.Module, Target], object]
    load: Callable[[Path, int | None], Runner] | None
    runtime: str
    packages: tuple[tuple[str, str], ...] = ()
    extra: str = "export"
    dynamic_size: bool = True   # the file can take any height and width
    dynamic_batch: bool = True  # the file can take any batch size (else the one it was written at)
    postprocess: bool = False   # a detector's file can hold its decoding and NMS
    description: str = ""
    side_suffixes: tuple[str, ...] = ()  # files beside it: its suffix replaced by each of these
    # where ``load`` is None: ``inspect(path, model, (batch, *input_size))`` checks the file's
    # specification instead of running it, raising VerificationError, returning its notes
    inspect: Callable[[Path, nn.Module, tuple[int, ...]], list[str]] | None = None
    # the batch a file asked for with a dynamic batch was written at instead, where the writer
    # falls back to a fixed one (None: it took the dynamic batch)
    fallback_batch: Callable[[Path], int | None] | None = None
    # the precisions other than fp32 the writer can store the weights in (``Target.weights``)
    weight_precisions: tuple[str, ...] = ()


FORMATS: dict[str, Format] = {}


def register_format(format: Format) -> Format:
    """Add ``format`` to :data:`FORMATS` (a second format of one name is a programming error)."""
    if format.name in FORMATS:
        raise ValueError(f"export format {format.name!r} is registered twice")
    FORMATS[format.name] = format
    return format


def get_format(name: str) -> Format:
    """The registered format ``name``; a one-line error naming the known ones otherwise."""
    if name not in FORMATS:
        raise ValueError(f"unsupported export format {name!r}; expected one of "
                         f"{', '.join(FORMATS)}")
    return FORMATS[name]


def format_of_file(path: str | Path) -> Format | None:
    """The format whose suffix ``path`` ends with (the longest match), if any."""
    name = Path(path).name
    matches = [f for f in FORMATS.values() if name.endswith(f.suffix)]
    return max(matches, key=lambda f: len(f.suffix)) if matches else None


def artefact_files(path: str | Path, format: Format) -> list[Path]:
    """The file at ``path`` and those written beside it (an ncnn ``.bin``, an OpenVINO
    ``.bin``): what a failed check removes and what the file size counts."""
    path = Path(path)
    stem = path.name[:-len(format.suffix)] if path.name.endswith(format.suffix) else path.stem
    return [path, *(path.with_name(stem + side) for side in format.side_suffixes)]


def artefact_bytes(path: str | Path, format: Format) -> int:
    """The size of a written artefact with its side files; a folder (Core ML's
    ``.mlpackage``) counts every file inside."""
    total = 0
    for file in artefact_files(path, format):
        files = file.rglob("*") if file.is_dir() else [file]
        total += sum(f.stat().st_size for f in files if f.is_file())
    return total


def remove_artefact(path: str | Path, format: Format) -> None:
    """Remove a written artefact and its side files (files, or folders such as Core ML's
    ``.mlpackage``): what a failed write or check leaves behind."""
    for file in artefact_files(path, format):
        if file.is_dir():
            shutil.rmtree(file)
        else:
            file.unlink(missing_ok=True)
