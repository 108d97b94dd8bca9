"""PyTorch's own deployable formats: a ``.pt2`` archive of ``torch.export`` (the format
AOTInductor and ExecuTorch start from; preferred) and a TorchScript file (``torch.jit.trace``;
runs in C++ through libtorch, deprecated by PyTorch since 2.9 but still what many C++ and mobile
deployments load). Both keep the batch dimension free."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from lightnets.export.formats import Format, Target, register_format
from lightnets.export.onnx import dynamic_dims, export_example, quiet_exporter, without_inplace
from lightnets.files import first_line


def export_torchscript(model: nn.Module, path: str | Path, input_size: tuple[int, int, int],
                       batch_size: int = 2) -> Path:
    """Trace ``model`` (eval mode) to TorchScript. Tracing records the ops run on one example;
    the zoo's models read no batch size from their input, so the trace serves any batch (the
    export check runs it at other batch sizes to make sure)."""
    path = Path(path)
    example = torch.randn(batch_size, *input_size)
    with warnings.catch_warnings(), torch.no_grad():
        # the shape checks in forward() read fixed channel/spatial sizes: constant is correct
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
        traced = torch.jit.trace(model.eval(), example, check_trace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))
    return path


def export_pt2(model: nn.Module, path: str | Path, input_size: tuple[int, int, int],
               dynamic_batch: bool = True, batch_size: int = 1,
               dynamic_size: bool = False) -> Path:
    """Save ``torch.export.export(model)`` with a symbolic batch dimension (or a fixed one),
    and symbolic height and width when ``dynamic_size``."""
    path = Path(path)
    example = export_example(input_size, dynamic_batch, batch_size, dynamic_size)
    dynamic = dynamic_dims(dynamic_batch, dynamic_size)
    try:
        with quiet_exporter():
            program = torch.export.export(without_inplace(model).eval(), (example,),
                                          dynamic_shapes=dynamic)
    except Exception as error:
        raise ValueError(f"torch.export of {type(model).__name__} failed: {first_line(error)}"
                         ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path)
    return path


def load_torch_artefact(path: str | Path, format: str | None = None
                        ) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable running a TorchScript file or a ``.pt2`` archive (``format`` ``torchscript``
    or ``pt2``; by default a ``.pt2`` suffix means the latter)."""
    path = Path(path)
    format = format or ("pt2" if path.suffix == ".pt2" else "torchscript")
    if not path.is_file():
        raise ValueError(f"artefact {str(path)!r} not found")
    try:
        if format == "pt2":
            return torch.export.load(path).module()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as error:
        raise ValueError(f"cannot load {str(path)!r}: {first_line(error)}") from None


def _write_torchscript(model: nn.Module, target: Target) -> Path:
    return export_torchscript(model, target.path, target.input_size,
                              2 if target.dynamic_batch else target.batch_size)


def _write_pt2(model: nn.Module, target: Target) -> Path:
    return export_pt2(model, target.path, target.input_size, target.dynamic_batch,
                      target.batch_size, target.dynamic_size)


# TorchScript's trace keeps the height and width it saw
TORCHSCRIPT = register_format(Format(
    "torchscript", ".torchscript", _write_torchscript,
    lambda path, threads: load_torch_artefact(path, "torchscript"), runtime="pytorch",
    dynamic_size=False, description="TorchScript (torch.jit.trace), run by libtorch"))
PT2 = register_format(Format(
    "pt2", ".pt2", _write_pt2, lambda path, threads: load_torch_artefact(path, "pt2"),
    runtime="pytorch", description="torch.export archive (AOTInductor's and ExecuTorch's start)"))
