"""ncnn (Tencent's mobile inference runtime) files, converted by PNNX.

PNNX ("PyTorch Neural Network eXchange", the converter shipped with ncnn) reads a TorchScript
trace and writes an ncnn ``.param`` (the graph, text) and ``.bin`` (the weights). It writes
several other files beside them (its own ``.pnnx.param``/``.bin``, Python re-creations, an ONNX
copy); the conversion runs in a temporary folder and only the two ncnn files are kept. The
weights are kept in fp32 (``fp16=0``: PNNX stores fp16 weights by default) so that the file
computes what the model computes; fp16 weights (``Target.weights``, half the file) are a
precision of their own, behind ``lightnets quantize``'s accuracy gate.

ncnn runs one image at a time (a ``Mat`` is C x H x W); the runner loops over the batch. Its
options must be set before the graph is loaded: the measured 15x slowdown in issue 26 came from
defaults (thread count, packing layout) left as they were.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lightnets.export.formats import Format, Runner, Target, register_format
from lightnets.export.torch_formats import export_torchscript
from lightnets.optional import require

PARAM, BIN = ".ncnn.param", ".ncnn.bin"


def pnnx_convert(model: nn.Module, target: Target) -> Path:
    """Trace ``model`` at batch 1, convert it with the ``pnnx`` executable and move the ncnn
    ``.param`` and ``.bin`` to ``target.path`` (a ``.ncnn.param`` path) and beside it; the
    ``.bin`` holds fp16 weights where ``target.weights`` says so."""
    pnnx = require("pnnx", "ncnn export")
    path = Path(target.path)
    stem = path.name[:-len(PARAM)] if path.name.endswith(PARAM) else path.stem
    with tempfile.TemporaryDirectory(prefix="lightnets-pnnx-") as folder:
        traced = export_torchscript(model, Path(folder) / "model.pt", target.input_size, 1)
        shape = ",".join(map(str, (1, *target.input_size)))
        half = int(target.weights == "fp16")
        command = [pnnx.EXEC_PATH, traced.name, f"inputshape=[{shape}]f32", f"fp16={half}",
                   "ncnnparam=model.ncnn.param", "ncnnbin=model.ncnn.bin"]
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        param, weights = Path(folder) / "model.ncnn.param", Path(folder) / "model.ncnn.bin"
        if done.returncode != 0 or not param.is_file() or not weights.is_file():
            lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            raise ValueError(f"pnnx could not convert {type(model).__name__} to ncnn: "
                             f"{(lines or ['no output'])[-1].strip()[:300]}")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(weights), path.with_name(stem + BIN))
        shutil.move(str(param), path)
    return path


def ncnn_runner(path: Path, threads: int | None = None) -> Runner:
    """An ncnn ``.param`` (and the ``.bin`` beside it) on the CPU in fp32 with ``threads``
    threads (default: torch's), looping over the batch."""
    ncnn = require("ncnn", "running ncnn files")
    path = Path(path)
    weights = path.with_name(path.name[:-len(PARAM)] + BIN) if path.name.endswith(PARAM) \
        else path.with_suffix(".bin")
    for file in (path, weights):
        if not file.is_file():
            raise ValueError(f"ncnn file {str(file)!r} not found")
    net = ncnn.Net()
    # every option before load_param: ncnn picks its kernels and layouts while loading
    net.opt.num_threads = threads or torch.get_num_threads()
    net.opt.use_packing_layout = True  # SIMD-wide channel packs (pack4/pack8)
    for option in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic",
                   "use_bf16_storage"):
        setattr(net.opt, option, False)  # fp32 throughout: the file is checked against eager
    if net.load_param(str(path)) != 0 or net.load_model(str(weights)) != 0:
        raise ValueError(f"ncnn cannot load {str(path)!r} with {weights.name!r}")
    source, sink = net.input_names()[0], net.output_names()[0]

    def run(x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for image in x.detach().float().cpu().numpy():
            extractor = net.create_extractor()
            extractor.input(source, ncnn.Mat(np.ascontiguousarray(image)))
            status, out = extractor.extract(sink)
            if status != 0:
                raise ValueError(f"ncnn failed to run {str(path)!r} (status {status})")
            outputs.append(torch.from_numpy(np.array(out).copy()))
        return torch.stack(outputs)
    return run


NCNN = register_format(Format(
    "ncnn", PARAM, pnnx_convert, ncnn_runner, runtime="ncnn", extra="ncnn",
    packages=(("pnnx", "ncnn export"), ("ncnn", "checking an ncnn export")),
    dynamic_size=False, side_suffixes=(BIN,), weight_precisions=("fp16",),
    description="ncnn .param + .bin (converted by PNNX, fp32 weights), run by ncnn"))
