"""MNN (Alibaba's mobile inference runtime) files, converted from the ONNX export.

The conversion calls MNN's converter library (the ``_tools`` extension module) directly.
MNN's ``mnnconvert`` console script and ``MNN.tools`` import a usage logger that runs
``pip install`` into whatever Python is running and sends usage data over the network: neither
is imported here (``tests/export/test_runtimes_mnn.py`` checks that no process is started).

The converter can also store the weights in fp16 (``--fp16``) or int8 (``--weightQuantBits 8``:
symmetric, one scale per output channel), for ``lightnets quantize``'s accuracy gate. MNN's
calibrated offline quantization tool (``mnnquant``, int8 activations too) is not used: in MNN
3.6.1 on this library's digits checkpoints it gave chance-level ResNet-18 files and cost
ShuffleNetV2 12 points of top-1 with its EMA calibration, and its KL and ADMM calibrations
crashed inside its native code (issue 26's closing notes).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lightnets.export.formats import Format, Runner, Target, register_format
from lightnets.export.onnx import (INPUT_NAME, ONNX_EXPORT_PACKAGES, OUTPUT_NAME, export_onnx)
from lightnets.export.runtimes.native_output import captured_native_output, last_error_line
from lightnets.optional import require


# the converter's options storing the weights in half precision, or in int8 per output channel
WEIGHT_FLAGS = {"fp16": ["--fp16"], "int8": ["--weightQuantBits", "8"]}


def mnn_convert(model: nn.Module, target: Target) -> Path:
    """Export ``model`` to ONNX in a temporary folder and convert that to ``target.path``,
    with the weights in ``target.weights``' precision."""
    require("MNN", "MNN export")
    tools = require("_tools", "MNN export")  # the converter itself, without MNN.tools' logger
    path = Path(target.path)
    with tempfile.TemporaryDirectory(prefix="lightnets-mnn-") as folder:
        onnx_path = export_onnx(model, Path(folder) / "model.onnx", target.input_size,
                                target.dynamic_batch, target.batch_size, target.opset)
        path.parent.mkdir(parents=True, exist_ok=True)
        with captured_native_output() as lines:
            done = tools.mnnconvert(["mnnconvert", "-f", "ONNX", "--modelFile", str(onnx_path),
                                     "--MNNModel", str(path), "--bizCode", "lightnets",
                                     *WEIGHT_FLAGS.get(target.weights, [])])
    if not done or not path.is_file():
        path.unlink(missing_ok=True)
        raise ValueError(f"MNN could not convert {type(model).__name__}: "
                         f"{last_error_line(lines, 'the converter gave no reason')}")
    return path


def mnn_runner(path: Path, threads: int | None = None) -> Runner:
    """An ``.mnn`` file in MNN's CPU backend at high (fp32) precision with ``threads``
    threads (default: torch's)."""
    MNN = require("MNN", "running MNN files")
    if not Path(path).is_file():
        raise ValueError(f"MNN file {str(path)!r} not found")
    expr = MNN.expr
    config = {"backend": "CPU", "precision": "high",
              "numThread": threads or torch.get_num_threads()}
    with captured_native_output() as lines:
        runtime = MNN.nn.create_runtime_manager((config,))
        net = MNN.nn.load_module_from_file(str(path), [INPUT_NAME], [OUTPUT_NAME],
                                           runtime_manager=runtime)
    if net is None:
        raise ValueError(f"MNN cannot load {str(path)!r}: {last_error_line(lines, 'no reason')}")

    def run(x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().float().cpu().numpy())
        out = net.forward(expr.const(array, list(array.shape), expr.NCHW))
        return torch.from_numpy(np.array(expr.convert(out, expr.NCHW).read()).copy())
    return run


MNN_FORMAT = register_format(Format(
    "mnn", ".mnn", mnn_convert, mnn_runner, runtime="MNN", extra="mnn",
    packages=(*((package, "ONNX export") for package in ONNX_EXPORT_PACKAGES),
              ("MNN", "MNN export and its check")),
    dynamic_size=False, weight_precisions=("fp16", "int8"),
    description="MNN (converted from the ONNX export), run by MNN"))
