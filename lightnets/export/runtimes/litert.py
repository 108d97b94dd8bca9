"""LiteRT (formerly TensorFlow Lite) ``.tflite`` files, the runtime Android ships.

``litert_torch.convert`` (Google's PyTorch-to-LiteRT converter, ``torch.export`` underneath)
writes the file; ``ai_edge_litert``'s ``Interpreter`` (with its default XNNPACK delegate) runs
it. The file keeps PyTorch's NCHW input and output: the converter inserts the transposes to
LiteRT's NHWC kernels, so a phone feeds it the same tensor the sidecar describes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lightnets.export.formats import Format, Runner, Target, register_format
from lightnets.export.onnx import without_inplace
from lightnets.files import first_line
from lightnets.optional import require

PACKAGES = (("litert_torch", "the LiteRT export"), ("ai_edge_litert", "the LiteRT check"))


@contextlib.contextmanager
def quiet_converter():
    """Keep the converter's per-stage progress lines and warnings out of the command's output."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level = logging.root.level
        logging.root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logging.root.setLevel(level)


def write_tflite(model: nn.Module, target: Target) -> Path:
    """Convert ``model`` with ``litert_torch`` at ``target``'s batch and write the ``.tflite``
    file. The batch stays fixed: the converter's JAX lowering rejects a symbolic batch in
    reshapes (litert-torch 0.10: "Shapes must be 1D sequences of concrete values")."""
    litert_torch = require("litert_torch", "the LiteRT export")
    example = torch.randn(target.batch_size, *target.input_size)
    try:
        with quiet_converter():
            converted = litert_torch.convert(without_inplace(model).eval(), (example,))
            target.path.parent.mkdir(parents=True, exist_ok=True)
            converted.export(str(target.path))
    except OSError:
        raise
    except Exception as error:
        raise ValueError(f"LiteRT conversion of {type(model).__name__} failed: "
                         f"{first_line(error)}") from None
    return target.path


def load_tflite(path: Path, threads: int | None = None) -> Runner:
    """A callable running the ``.tflite`` file in LiteRT's interpreter on any batch: the file
    takes the batch it was written at, so a batch of another size runs in slices of that one
    (the last padded with zeros, its padding's outputs dropped)."""
    interpreter_module = require("ai_edge_litert.interpreter", "running a LiteRT file")
    try:
        interpreter = interpreter_module.Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except Exception as error:
        raise ValueError(f"cannot load {str(path)!r} in LiteRT: {first_line(error)}") from None
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    batch = int(source["shape"][0])

    def invoke(array: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(source["index"], array)
        interpreter.invoke()
        return interpreter.get_tensor(sink["index"]).copy()

    def run(x: torch.Tensor) -> torch.Tensor:
        array = x.detach().float().numpy()
        count = array.shape[0]
        padded = -count % batch
        if padded:
            array = np.concatenate([array, np.zeros((padded, *array.shape[1:]), np.float32)])
        outputs = [invoke(np.ascontiguousarray(array[start:start + batch]))
                   for start in range(0, len(array), batch)]
        return torch.from_numpy(np.concatenate(outputs)[:count])
    return run


LITERT = register_format(Format(
    "tflite", ".tflite", write_tflite, load_tflite, runtime="litert", packages=PACKAGES,
    extra="litert", dynamic_size=False, dynamic_batch=False,
    description="LiteRT (TensorFlow Lite) flatbuffer, run by LiteRT's interpreter (XNNPACK)"))
