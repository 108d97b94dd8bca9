"""ExecuTorch ``.pte`` files: PyTorch's own on-device runtime (Android, iOS, embedded Linux).

The model goes through ``torch.export``, then ``executorch.exir.to_edge_transform_and_lower``
with the XNNPACK partitioner (XNNPACK's CPU kernels, ARM and x86) and ``to_executorch()``; the
file is run here by ExecuTorch's Python runtime (``executorch.runtime``), the same C++ runtime
a phone links. See the ExecuTorch docs, "Exporting to ExecuTorch" and "XNNPACK Backend".
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from lightnets.export.formats import Format, Runner, Target, Written, register_format
from lightnets.export.onnx import (MIN_DYNAMIC_SIDE, dynamic_dims, export_example, quiet_exporter,
                                   without_inplace)
from lightnets.export.verify import DEFAULT_TOLERANCE, compare
from lightnets.files import first_line
from lightnets.optional import require

PACKAGES = (("executorch", "the ExecuTorch export and its check"),)
# the bounds given to torch.export for a dynamic batch and size
MAX_BATCH = 64
MAX_SIDE = 1024


def exported_program(model: nn.Module, target: Target, hinted_size: bool = False
                     ) -> torch.export.ExportedProgram:
    """``torch.export`` of ``model`` at ``target``'s shape, batch (and size) bounded;
    ``hinted_size``: the height and width ``Dim.DYNAMIC``, whose range torch.export narrows
    itself to what its guards need instead of refusing a range it cannot prove."""
    example = export_example(target.input_size, target.dynamic_batch, target.batch_size,
                             target.dynamic_size)
    dims = dynamic_dims(target.dynamic_batch, target.dynamic_size)
    if dims is not None:
        bounds = {0: MAX_BATCH, 2: MAX_SIDE, 3: MAX_SIDE}
        dims = ({axis: torch.export.Dim.DYNAMIC(min=dim.min, max=bounds[axis])
                 if hinted_size and axis else torch.export.Dim(dim.__name__, min=dim.min,
                                                               max=bounds[axis])
                 for axis, dim in dims[0].items()},)
    try:
        with quiet_exporter():
            return torch.export.export(without_inplace(model).eval(), (example,),
                                       dynamic_shapes=dims)
    except Exception as error:
        raise ValueError(f"torch.export of {type(model).__name__} failed: {first_line(error)}"
                         ) from None


def write_pte(model: nn.Module, target: Target) -> Written:
    """Lower ``model`` to XNNPACK and write the ``.pte`` file; at batch 1 where ExecuTorch
    cannot run the dynamic-batch file at another batch than the traced one (ShuffleNet V2's
    channel shuffle reshape stays outside XNNPACK with the traced batch baked in: "Attempted
    to resize a static tensor", error 0x10). The sidecar records the batch it took, and the
    sizes (:func:`write_sized`)."""
    written = write_sized(model, target)
    if target.dynamic_batch and not runs_another_batch(target.path, target.input_size):
        written = write_sized(model, dataclasses.replace(target, dynamic_batch=False,
                                                         batch_size=1))
    return written


def write_sized(model: nn.Module, target: Target) -> Written:
    """Write the file of :func:`exported_program`. Where torch.export cannot prove a dynamic
    size for every side from 32 (U-Net: its stride-32 map is one pixel at 32; PSPNet: the
    floor divisions of its pooling bins), the program with the range torch.export narrows
    itself to: ExecuTorch drops its guards, so the file is run against ``model`` at every
    square side from the traced one down to 32 and the smallest side from which all agree is
    recorded (``Written.min_side``); above the target's own size, the file is written at that
    size alone."""
    name = type(model).__name__
    try:
        write_program(exported_program(model, target), target.path, name)
        return Written()
    except ValueError as error:
        if not target.dynamic_size or "Constraints violated" not in str(error):
            raise
    write_program(exported_program(model, target, hinted_size=True), target.path, name)
    side = smallest_agreeing_side(model, target)
    if side is None or side > min(target.input_size[1:]):
        fixed = dataclasses.replace(target, dynamic_size=False)
        write_program(exported_program(model, fixed), target.path, name)
        return Written(dynamic_size=False)
    return Written(min_side=side)


def smallest_agreeing_side(model: nn.Module, target: Target,
                           tolerance: float = DEFAULT_TOLERANCE) -> int | None:
    """The smallest side from which the written file gives ``model``'s output (the export
    check's :func:`~lightnets.export.verify.compare`, within ``tolerance`` of the output scale)
    on every square input up to the traced side (None: not even at the traced side)."""
    run = load_pte(target.path)
    batch = 1 if target.dynamic_batch else target.batch_size
    example = export_example(target.input_size, False, batch, dynamic_size=True)
    agreeing, generator = None, torch.Generator().manual_seed(0)
    with torch.no_grad():
        for side in range(min(example.shape[2:]), MIN_DYNAMIC_SIDE - 1, -1):
            x = torch.randn(batch, example.shape[1], side, side, generator=generator)
            try:  # a refused size or another output shape ends it too (both ValueErrors)
                if compare(model(x), run(x), f"{side}x{side}").relative > tolerance:
                    break
            except ValueError:
                break
            agreeing = side
    return agreeing


def runs_another_batch(path: Path, input_size: tuple[int, ...]) -> bool:
    """Whether ExecuTorch runs the file at batch 3, not the traced 2."""
    try:
        load_pte(path)(torch.randn(3, *input_size))
    except ValueError:
        return False
    return True


def fallback_batch(path: Path) -> int | None:
    """1 for a file :func:`write_pte` wrote at batch 1 instead of a dynamic batch."""
    return 1 if planned_batch(path) == 1 else None


def write_program(program: torch.export.ExportedProgram, path: Path, name: str) -> Path:
    """Lower the exported ``program`` to XNNPACK and write it to ``path``."""
    exir = require("executorch.exir", "the ExecuTorch export")
    partitioner = require("executorch.backends.xnnpack.partition.xnnpack_partitioner",
                          "the ExecuTorch export").XnnpackPartitioner
    try:
        lowered = exir.to_edge_transform_and_lower(program, partitioner=[partitioner()])
        buffer = lowered.to_executorch().buffer
    except Exception as error:
        # a failing pass is reported by name, its reason in the exception it wraps
        reason = first_line(error) + (f" ({first_line(error.__cause__)})"
                                      if error.__cause__ is not None else "")
        raise ValueError(f"ExecuTorch lowering of {name} failed: {reason}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer)
    return path


def quantize_pte(model: nn.Module, path: Path, images: torch.Tensor,
                 per_channel: bool = True, dynamic_batch: bool = True) -> Path:
    """An int8 ``.pte`` of the eval-mode ``model`` (unfused: PT2E folds BatchNorm itself):
    PyTorch 2 Export quantization (torchao's ``prepare_pt2e`` / ``convert_pt2e``) with
    ExecuTorch's ``XNNPACKQuantizer`` (symmetric int8 weights, per channel by default; int8
    activations calibrated on ``images``), lowered to XNNPACK's int8 kernels; a dynamic
    batch, or batch 1."""
    pt2e = require("torchao.quantization.pt2e.quantize_pt2e", "ExecuTorch int8 quantization")
    quantizer_module = require("executorch.backends.xnnpack.quantizer.xnnpack_quantizer",
                               "ExecuTorch int8 quantization")
    target = Target(path, tuple(images.shape[1:]), dynamic_batch, 1, False, 0)
    quantizer = quantizer_module.XNNPACKQuantizer().set_global(
        quantizer_module.get_symmetric_quantization_config(is_per_channel=per_channel))
    prepared = pt2e.prepare_pt2e(exported_program(model, target).module(), quantizer)
    with torch.no_grad():
        for batch in images.split(32 if dynamic_batch else 1):  # the traced batch, if fixed
            prepared(batch)
    converted = pt2e.convert_pt2e(prepared)
    program = exported_program(converted, target)
    return write_program(program, path, type(model).__name__)


def quantize_runnable_pte(model: nn.Module, path: Path, images: torch.Tensor,
                          per_channel: bool = True) -> Path:
    """:func:`quantize_pte` with a dynamic batch where ExecuTorch runs that file, else at
    batch 1: ShuffleNet V2's channel shuffle reshape stays outside XNNPACK with the traced batch
    baked in and fails on any other ("Attempted to resize a static tensor", error 0x10)."""
    quantize_pte(model, path, images, per_channel)
    if not runs_another_batch(path, tuple(images.shape[1:])):
        quantize_pte(model, path, images, per_channel, dynamic_batch=False)
    return path


def planned_batch(path: Path) -> int:
    """The largest batch the file's memory plan holds (1 for a file written at batch 1)."""
    runtime = require("executorch.runtime", "running an ExecuTorch file")
    method = runtime.Runtime.get().load_program(Path(path)).load_method("forward")
    return int(method.metadata.input_tensor_meta(0).sizes()[0])


def load_pte(path: Path, threads: int | None = None) -> Runner:
    """A callable running the ``.pte`` file's ``forward`` in ExecuTorch's runtime, on any
    batch (a fixed-batch file on its own batch only)."""
    runtime = require("executorch.runtime", "running an ExecuTorch file")
    if threads:
        # XNNPACK's thread pool is process-wide in the Python runtime
        pybindings = require("executorch.extension.pybindings.portable_lib",
                             "running an ExecuTorch file")
        pybindings._unsafe_reset_threadpool(threads)
    try:
        method = runtime.Runtime.get().load_program(Path(path)).load_method("forward")
    except Exception as error:
        raise ValueError(f"cannot load {str(path)!r} in ExecuTorch: {first_line(error)}"
                         ) from None

    # memory planning fixes the largest input the file takes (executorch 1.5.1 plans a batch
    # of 15 whatever the bound given to torch.export): larger batches (eval's) run in slices
    capacity = method.metadata.input_tensor_meta(0).sizes()[0]

    def run(x: torch.Tensor) -> torch.Tensor:
        try:
            return torch.cat([method.execute([part.float().contiguous()])[0]
                              for part in x.split(capacity)])
        except RuntimeError as error:  # e.g. a batch baked into a reshape XNNPACK left out
            raise ValueError(f"ExecuTorch cannot run {str(path)!r} on a batch of "
                             f"{tuple(x.shape)}: {first_line(error)}") from None
    return run


EXECUTORCH = register_format(Format(
    "executorch", ".pte", write_pte, load_pte, runtime="executorch", packages=PACKAGES,
    extra="executorch", fallback_batch=fallback_batch,
    description="ExecuTorch program lowered to XNNPACK, run by ExecuTorch's runtime"))
