"""ONNX export through ``torch.export`` (the dynamo-based exporter) and ONNX Runtime sessions.

The batch dimension is exported as a symbol (``batch``) so one file serves any batch size; the
spatial size is fixed at export, as the deployed preprocessing fixes it, except for segmenters,
whose height and width are symbols too (``height``, ``width``: a mask at any image's size). The
graph is traced at batch 2 because ``torch.export`` specialises sizes 0 and 1, and a symbolic
height and width at 64 or more (:func:`export_example`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightnets.export.formats import Format, Target, register_format
from lightnets.files import first_line
from lightnets.optional import require, require_all

DEFAULT_OPSET = 18
ONNX_EXPORT_PACKAGES = ("onnx", "onnxscript")  # what torch.onnx.export(dynamo=True) needs
INPUT_NAME, OUTPUT_NAME = "input", "logits"
# The least side of the traced example when height and width are symbolic: traced at 32, a
# stride-32 map is 1x1, torch.export specialises that size 1, and the file takes 32x32 alone
TRACE_MIN_SIDE = 64
MIN_DYNAMIC_SIDE = 32  # the least height and width a dynamic-size file is asked to take


def without_inplace(model: nn.Module) -> nn.Module:
    """A copy whose activations do not work in place: same function, and ``torch.export``'s
    functionalisation of in-place ops (measured: up to half the export time) is skipped."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    return model


@contextlib.contextmanager
def quiet(*loggers: str, stderr: bool = False) -> Iterator[None]:
    """Hold back what a converter or quantizer prints: its progress lines (standard output, and
    standard error too with ``stderr``: progress bars), its warnings, and the records below ERROR
    of the ``loggers`` it logs to, by name ("" is the root logger, which some log to)."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            if stderr:
                stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def quiet_exporter() -> contextlib.AbstractContextManager[None]:
    """The ONNX exporter's progress lines, its warnings about its own internals and its
    optimiser's log (constant folding it skips), held back."""
    return quiet("onnxscript")


def dynamic_dims(dynamic_batch: bool, dynamic_size: bool, min_size: int = MIN_DYNAMIC_SIDE
                 ) -> tuple[dict[int, Any]] | None:
    """``torch.export``'s dynamic shapes of the one input: the batch, and the height and width
    from ``min_size`` up."""
    dims = {0: torch.export.Dim("batch", min=1)} if dynamic_batch else {}
    if dynamic_size:
        dims.update({2: torch.export.Dim("height", min=min_size, max=8192),
                     3: torch.export.Dim("width", min=min_size, max=8192)})
    return (dims,) if dims else None


def export_example(input_size: tuple[int, int, int], dynamic_batch: bool, batch_size: int,
                   dynamic_size: bool = False) -> torch.Tensor:
    """The random input ``torch.export`` traces: batch 2 where the batch is symbolic (else
    ``batch_size``), and sides of at least :data:`TRACE_MIN_SIDE` where they are symbolic."""
    chans, height, width = input_size
    if dynamic_size:
        height, width = max(height, TRACE_MIN_SIDE), max(width, TRACE_MIN_SIDE)
    return torch.randn(2 if dynamic_batch else batch_size, chans, height, width)


def export_onnx(model: nn.Module, path: str | Path, input_size: tuple[int, int, int],
                dynamic_batch: bool = True, batch_size: int = 1,
                opset: int = DEFAULT_OPSET, dynamic_size: bool = False) -> Path:
    """Write ``model`` (in eval mode) as an ONNX file taking ``input`` of shape
    ``(batch, *input_size)`` and returning ``logits``; the batch is symbolic when
    ``dynamic_batch``, else fixed at ``batch_size``; the height and width too when
    ``dynamic_size``."""
    require_all((package, "ONNX export") for package in ONNX_EXPORT_PACKAGES)
    path = Path(path)
    model = without_inplace(model).eval()
    example = export_example(input_size, dynamic_batch, batch_size, dynamic_size)
    dynamic = dynamic_dims(dynamic_batch, dynamic_size)
    try:
        with quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(model, (example,), None, dynamo=True, opset_version=opset,
                                        dynamic_shapes=dynamic, input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME], verbose=False)
    except Exception as error:  # the exporter raises many kinds; keep the first line
        raise ValueError(f"ONNX export of {type(model).__name__} failed: {first_line(error)}"
                         ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    with quiet_exporter():
        program.save(path)  # weights go to a side file only past protobuf's 2 GB limit
    return path


def onnx_session(model: str | Path | bytes, threads: int | None = None,
                 optimize: bool = True) -> Any:
    """An ONNX Runtime CPU session using ``threads`` intra-op threads (default: torch's)."""
    ort = require("onnxruntime", "running ONNX models")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.log_severity_level = 3  # errors only
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:
        what = "the model" if isinstance(model, bytes) else repr(str(model))
        raise ValueError(f"ONNX Runtime cannot load {what}: {first_line(error)}") from None


def run_session(session: Any, x: torch.Tensor) -> torch.Tensor:
    """Run a one-input session on a float tensor and return its first output as a tensor."""
    name = session.get_inputs()[0].name
    array = np.ascontiguousarray(x.detach().cpu().float().numpy())
    return torch.from_numpy(session.run(None, {name: array})[0])


def _write(model: nn.Module, target: Target) -> Path:
    return export_onnx(model, target.path, target.input_size, target.dynamic_batch,
                       target.batch_size, target.opset, target.dynamic_size)


def _load(path: Path, threads: int | None):
    session = onnx_session(path, threads)
    return lambda x: run_session(session, x)


ONNX = register_format(Format(
    "onnx", ".onnx", _write, _load, runtime="onnxruntime", postprocess=True,
    packages=(*((package, "ONNX export") for package in ONNX_EXPORT_PACKAGES),
              ("onnxruntime", "checking an ONNX export")),
    description="ONNX (opset 18, dynamo exporter), checked in ONNX Runtime"))
