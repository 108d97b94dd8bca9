"""OpenVINO's own IR (an ``.xml`` graph and a ``.bin`` of weights), converted from the ONNX
export by ``openvino.convert_model`` and run by OpenVINO's CPU plugin, as Intel edge boxes
deploy it. The weights stay fp32 (``save_model`` compresses them to fp16 by default)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from torch import nn

from lightnets.export.formats import Format, Runner, Target, register_format
from lightnets.export.onnx import ONNX_EXPORT_PACKAGES, export_onnx
from lightnets.export.openvino_runtime import openvino_runner
from lightnets.files import first_line
from lightnets.optional import require, usage_reports_declined


def openvino_convert(model: nn.Module, target: Target) -> Path:
    """Export ``model`` to ONNX in a temporary folder and save it as IR at ``target.path``."""
    ov = require("openvino", "OpenVINO IR export")
    path = Path(target.path)
    with tempfile.TemporaryDirectory(prefix="lightnets-openvino-") as folder:
        onnx_path = export_onnx(model, Path(folder) / "model.onnx", target.input_size,
                                target.dynamic_batch, target.batch_size, target.opset,
                                target.dynamic_size)
        try:
            with usage_reports_declined():  # the converter reads the consent again
                converted = ov.convert_model(str(onnx_path))
        except Exception as error:  # the frontends raise their own kinds
            raise ValueError(f"OpenVINO could not convert {type(model).__name__}: "
                             f"{first_line(error)}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(converted, str(path), compress_to_fp16=False)
    return path


def openvino_ir_runner(path: Path, threads: int | None = None) -> Runner:
    """The IR in OpenVINO's CPU plugin at fp32 (the runner ``lightnets bench`` uses)."""
    if not Path(path).is_file():
        raise ValueError(f"OpenVINO IR file {str(path)!r} not found")
    return openvino_runner(path, "fp32", threads)


OPENVINO_IR = register_format(Format(
    "openvino", ".xml", openvino_convert, openvino_ir_runner, runtime="openvino",
    extra="openvino", side_suffixes=(".bin",),
    packages=(*((package, "ONNX export") for package in ONNX_EXPORT_PACKAGES),
              ("openvino", "OpenVINO IR export and its check")),
    description="OpenVINO IR .xml + .bin (from the ONNX export), run by OpenVINO"))
