"""LiteRT (formerly TensorFlow Lite) ``.tflite`` files, the runtime Android ships.

``litert_torch.convert`` (Google's PyTorch-to-LiteRT converter, ``torch.export`` underneath)
writes the file; ``ai_edge_litert``'s ``Interpreter`` (with its default XNNPACK delegate) runs
it. The file keeps PyTorch's NCHW input and output: the converter inserts the transposes to
LiteRT's NHWC kernels, so a phone feeds it the same tensor the sidecar describes.

int8 (:func:`quantize_tflite`): litert-torch's own PT2E route (its ``PT2EQuantizer`` with
``get_symmetric_quantization_config``, torchao's ``prepare_pt2e`` / ``convert_pt2e``, then
``litert_torch.convert`` with a ``QuantConfig``): a fully integer file whose input and output
are int8 too, quantized with the scale and zero point the file records (Jacob et al.,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018, arXiv:1712.05877).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from lightnets.export.formats import Format, Runner, Target, register_format
from lightnets.export.onnx import quiet, without_inplace
from lightnets.files import first_line
from lightnets.optional import require

PACKAGES = (("litert_torch", "the LiteRT export"), ("ai_edge_litert", "the LiteRT check"))


def write_tflite(model: nn.Module, target: Target) -> Path:
    """Convert ``model`` with ``litert_torch`` at ``target``'s batch and write the ``.tflite``
    file. The batch stays fixed: the converter's JAX lowering rejects a symbolic batch in
    reshapes (litert-torch 0.10: "Shapes must be 1D sequences of concrete values"). With
    ``target.weights`` "fp16" the weights are stored in half precision (litert-torch's fp16
    recipe: each weight cast to half, a dequantize operation before its use)."""
    litert_torch = require("litert_torch", "the LiteRT export")
    example = torch.randn(target.batch_size, *target.input_size)
    try:
        with quiet(""):  # its per-stage progress lines and warnings
            recipe = (require("litert_torch.generative.quantize.quant_recipes",
                              "fp16 LiteRT files").full_fp16_recipe()
                      if target.weights == "fp16" else None)
            converted = litert_torch.convert(without_inplace(model).eval(), (example,),
                                             quant_config=recipe)
            target.path.parent.mkdir(parents=True, exist_ok=True)
            converted.export(str(target.path))
    except OSError:
        raise
    except Exception as error:
        raise ValueError(f"LiteRT conversion of {type(model).__name__} failed: "
                         f"{first_line(error)}") from None
    return target.path


def quantize_tflite(model: nn.Module, path: Path, images: torch.Tensor,
                    per_channel: bool = True) -> Path:
    """An int8 ``.tflite`` of the eval-mode ``model`` (unfused: PT2E folds BatchNorm itself),
    by litert-torch's PT2E quantizer: symmetric int8 weights (per channel by default), int8
    activations from histograms of ``images``; batch 1, as the fp32 export's default."""
    litert_torch = require("litert_torch", "the LiteRT export")
    pt2e = require("torchao.quantization.pt2e.quantize_pt2e", "LiteRT int8 quantization")
    quantizer_module = require("litert_torch.quantize.pt2e_quantizer", "LiteRT int8 quantization")
    config_module = require("litert_torch.quantize.quant_config", "LiteRT int8 quantization")
    example = images[:1]
    quantizer = quantizer_module.PT2EQuantizer().set_global(
        quantizer_module.get_symmetric_quantization_config(is_per_channel=per_channel))
    name = type(model).__name__
    try:
        with quiet(""):  # its per-stage progress lines and warnings
            # the graph is exported at batch 1 (the file's): calibration runs image by image
            graph = torch.export.export(without_inplace(model).eval(), (example,)).module()
            prepared = pt2e.prepare_pt2e(graph, quantizer)
            with torch.no_grad():
                for image in images.split(1):
                    prepared(image)
            # unfolded quantize nodes: the converter reads them as the file's int8 tensors
            converted = pt2e.convert_pt2e(prepared, fold_quantize=False)
            edge = litert_torch.convert(converted, (example,), quant_config=(
                config_module.QuantConfig(pt2e_quantizer=quantizer)))
            path.parent.mkdir(parents=True, exist_ok=True)
            edge.export(str(path))
    except OSError:
        raise
    except Exception as error:
        raise ValueError(f"LiteRT int8 conversion of {name} failed: {first_line(error)}"
                         ) from None
    return path


def quantized_io(detail: dict) -> tuple[np.dtype, float, int] | None:
    """``(dtype, scale, zero point)`` of an integer input or output tensor (from the
    interpreter's tensor details), else ``None`` (a float tensor)."""
    dtype = np.dtype(detail.get("dtype", np.float32))
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not np.issubdtype(dtype, np.integer) or scale == 0:
        return None
    return dtype, float(scale), int(zero_point)


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
    # an int8 file takes and gives integers: (de)quantized here as a phone app does
    into, out_of = quantized_io(source), quantized_io(sink)

    def invoke(array: np.ndarray) -> np.ndarray:
        if into is not None:
            dtype, scale, zero_point = into
            limits = np.iinfo(dtype)
            array = np.clip(np.round(array / scale) + zero_point, limits.min, limits.max
                            ).astype(dtype)
        interpreter.set_tensor(source["index"], array)
        interpreter.invoke()
        output = interpreter.get_tensor(sink["index"]).copy()
        if out_of is not None:
            output = (output.astype(np.float32) - out_of[2]) * np.float32(out_of[1])
        return output

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
    weight_precisions=("fp16",),
    description="LiteRT (TensorFlow Lite) flatbuffer, run by LiteRT's interpreter (XNNPACK)"))
