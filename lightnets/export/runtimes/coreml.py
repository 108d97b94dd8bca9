"""Core ML ``.mlpackage`` files (iPhone, iPad, Mac), written by coremltools.

``coremltools.convert`` turns the ``torch.export`` program into an ML program (fp32 compute,
fp32 input and output, fixed shape). Core ML itself runs only on Apple's systems, so on other
platforms the file is not run: its specification is checked instead (the input's name, shape and
type; the output's shape against the eager model's), and the sidecar and the docs say so.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

import torch
from torch import nn

from lightnets.export.formats import Format, Target, register_format
from lightnets.export.onnx import quiet, without_inplace
from lightnets.export.verify import VerificationError
from lightnets.files import first_line
from lightnets.optional import require

PACKAGES = (("coremltools", "the Core ML export"),)
# coremltools warns on import that Apple's runtime libraries are missing (expected off Apple
# systems: this module never runs the file) and that this torch is newer than it was tested on
logging.getLogger("coremltools").setLevel(logging.ERROR)
INPUT, OUTPUT = "input", "logits"
NOT_RUN = ("Core ML runs only on Apple's systems: the file was not run here; its specification "
           "was checked (input name, shape and type, output shape against the eager model's)")


def quiet_converter() -> contextlib.AbstractContextManager[None]:
    """Without coremltools' progress bars (tqdm on standard error), its warnings about untested
    torch versions and the exporter's lines."""
    return quiet("onnxscript", stderr=True)


def write_mlpackage(model: nn.Module, target: Target) -> Path:
    """Convert ``model`` at ``target``'s fixed shape to an fp32 ML program and save it."""
    ct = require("coremltools", "the Core ML export")
    np = require("numpy", "the Core ML export")
    shape = (target.batch_size, *target.input_size)
    try:
        with quiet_converter():
            program = torch.export.export(without_inplace(model).eval(), (torch.randn(shape),))
            converted = ct.convert(
                program.run_decompositions({}), convert_to="mlprogram",
                inputs=[ct.TensorType(name=INPUT, shape=shape, dtype=np.float32)],
                outputs=[ct.TensorType(name=OUTPUT, dtype=np.float32)],
                compute_precision=ct.precision.FLOAT32)
    except Exception as error:
        raise ValueError(f"Core ML conversion of {type(model).__name__} failed: "
                         f"{first_line(error)}") from None
    if target.path.exists():  # an .mlpackage is a folder: replace, never nest
        shutil.rmtree(target.path)
    converted.save(str(target.path))
    return target.path


def inspect_mlpackage(path: Path, model: nn.Module, input_size: tuple[int, ...]) -> list[str]:
    """Check the saved package's specification against ``model`` at ``input_size`` (with its
    batch); a :class:`VerificationError` names the first mismatch. Returns the check's notes."""
    ct = require("coremltools", "checking a Core ML file")
    with quiet_converter():
        spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    inputs, outputs = list(spec.description.input), list(spec.description.output)
    with torch.no_grad():
        expected = tuple(model.eval()(torch.zeros(input_size)).shape)
    float32 = ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    found = [(i.name, tuple(i.type.multiArrayType.shape), i.type.multiArrayType.dataType)
             for i in inputs]
    if found != [(INPUT, tuple(input_size), float32)]:
        raise VerificationError(f"the Core ML file takes {found}, expected one float32 "
                                f"{INPUT!r} of shape {tuple(input_size)}")
    if [o.name for o in outputs] != [OUTPUT]:
        raise VerificationError(f"the Core ML file's outputs are {[o.name for o in outputs]}, "
                                f"expected [{OUTPUT!r}]")
    shape = tuple(outputs[0].type.multiArrayType.shape)
    if shape and shape != expected:  # coremltools leaves some output shapes unstated
        raise VerificationError(f"the Core ML file's output has shape {shape}, the eager "
                                f"model's {expected}")
    return [NOT_RUN, f"specification: input {INPUT!r} float32 {tuple(input_size)}, output "
            f"{OUTPUT!r} {shape or 'shape unstated'} (eager {expected}); ML program, fp32"]


COREML = register_format(Format(
    "coreml", ".mlpackage", write_mlpackage, None, runtime="coreml", packages=PACKAGES,
    extra="coreml", dynamic_size=False, dynamic_batch=False, inspect=inspect_mlpackage,
    description="Core ML ML program (.mlpackage folder); converted here, run on Apple systems"))
