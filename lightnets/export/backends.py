"""Fast inference backends: one callable interface over eager PyTorch, ``torch.compile``, ONNX
Runtime and (when installed) OpenVINO, each told the numeric precision to run and reporting the
precision it actually runs.

Every backend starts from the fused model (BatchNorm folded, :func:`lightnets.export.fuse`);
channels-last memory is used where it was measured to help (see ``CHANNELS_LAST``). Precision is
never changed silently: asking for bf16 on a CPU without native bf16 arithmetic (AVX512-BF16 or
AMX on x86, the BF16 extension on Arm) raises unless emulation is allowed explicitly, and a
backend that cannot run bf16 at all says so.

An exported file is run through its sidecar (:func:`backend_from_file`), and only after one
probe run has shown that the file takes the input the sidecar describes and gives one output
per class it names.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightnets.export.artefact import artefact_runner
from lightnets.export.fuse import fuse, remaining_batchnorms
from lightnets.export.onnx import ONNX_EXPORT_PACKAGES, export_onnx, onnx_session, run_session
# below the export formats (OpenVINO IR files run in it too); re-exported from here
from lightnets.export.openvino_runtime import BackendUnavailableError, openvino_runner
from lightnets.export.sidecar import Sidecar, read_sidecar, sidecar_path
from lightnets.export.verify import Runner
from lightnets.hardware import native_bf16
from lightnets.optional import available, install_hint, missing, require

BACKENDS = ("eager", "compile", "onnxruntime", "openvino")
# backend -> the optional packages it runs on (the ONNX-based ones export the model first)
BACKEND_PACKAGES = {"eager": (), "compile": (),
                    "onnxruntime": ("onnxruntime", *ONNX_EXPORT_PACKAGES),
                    "openvino": ("openvino", *ONNX_EXPORT_PACKAGES)}
PRECISIONS = ("fp32", "bf16")
# Channels-last helps torch's CPU convolutions (oneDNN) at inference; see the module docstring
# of benchmarks/deploy_vs_onnxruntime.py for the measurements behind these defaults.
CHANNELS_LAST = {"eager": True, "compile": True}


@dataclass
class Backend:
    """A model ready to run: ``backend(x)`` maps a float NCHW batch to float logits."""

    name: str
    precision: str
    run: Runner
    notes: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)

    def describe(self) -> str:
        extra = f" ({', '.join(self.notes)})" if self.notes else ""
        return f"{self.name} [{self.precision}]{extra}"


def check_precision(backend: str, precision: str, allow_emulated: bool = False) -> list[str]:
    """Refuse a precision ``backend`` cannot run here; return notes to show with it."""
    if precision not in PRECISIONS:
        raise ValueError(f"unsupported precision {precision!r}; expected one of "
                         f"{', '.join(PRECISIONS)} (int8: `lightnets quantize`)")
    if precision == "fp32":
        return []
    if backend == "onnxruntime":
        raise BackendUnavailableError("onnxruntime's CPU provider has no bf16 convolution "
                                      "kernels; use eager, compile or openvino for bf16")
    native, why = native_bf16()
    if native:
        return [why]
    if not allow_emulated:
        raise BackendUnavailableError(f"bf16 refused: {why}. Pass --allow-emulated-bf16 to "
                                      "measure it anyway")
    warnings.warn(f"bf16 is emulated here: {why}", RuntimeWarning, stacklevel=3)
    return ["bf16 EMULATED"]


# -- backends -----------------------------------------------------------------------------------
# The factories receive the fused copy create_backend makes, and may change it in place.
def _prepared(model: nn.Module, precision: str, channels_last: bool) -> nn.Module:
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.to(torch.bfloat16) if precision == "bf16" else model


def _torch_runner(module: Callable, precision: str, channels_last: bool) -> Runner:
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x.to(dtype=dtype, memory_format=memory_format)).float()
    return run


def _eager(model: nn.Module, precision: str, channels_last: bool, **_: Any) -> Backend:
    prepared = _prepared(model, precision, channels_last)
    return Backend("eager", precision, _torch_runner(prepared, precision, channels_last))


def _compile(model: nn.Module, precision: str, channels_last: bool, **_: Any) -> Backend:
    prepared = _prepared(model, precision, channels_last)
    # freezing treats the weights as constants, so inductor folds them and pre-packs them in
    # oneDNN's layout once instead of on every call
    compiled = torch.compile(prepared, dynamic=False, options={"freezing": True})
    return Backend("compile", precision, _torch_runner(compiled, precision, channels_last),
                   ["inductor, frozen weights; compiles on the first call of each batch size"])


def _onnx_file(model: nn.Module, input_size: tuple[int, int, int], folder: str) -> Path:
    return export_onnx(model, Path(folder) / "model.onnx", input_size)


def _onnxruntime(model: nn.Module, precision: str, input_size: tuple[int, int, int],
                 threads: int | None, onnx_path: str | Path | None = None, **_: Any) -> Backend:
    with tempfile.TemporaryDirectory() as folder:
        session = onnx_session(onnx_path or _onnx_file(model, input_size, folder), threads)
    return Backend("onnxruntime", precision, lambda x: run_session(session, x))


def _openvino(model: nn.Module, precision: str, input_size: tuple[int, int, int],
              threads: int | None, onnx_path: str | Path | None = None, **_: Any) -> Backend:
    require("openvino", "the openvino backend")
    with tempfile.TemporaryDirectory() as folder:
        run = openvino_runner(onnx_path or _onnx_file(model, input_size, folder), precision,
                              threads)
    return Backend("openvino", precision, run)


_FACTORIES = {"eager": _eager, "compile": _compile, "onnxruntime": _onnxruntime,
              "openvino": _openvino}


def available_backends() -> dict[str, str | None]:
    """Each backend -> ``None`` when it can run here, else the reason it cannot."""
    reasons: dict[str, str | None] = {}
    for name, packages in BACKEND_PACKAGES.items():
        absent = missing(packages)
        reasons[name] = (f"needs {' and '.join(absent)} ({install_hint(absent)})"
                         if absent else None)
    return reasons


def backend_requirements(names: list[str]) -> list[tuple[str, str]]:
    """``(package, purpose)`` for each optional package the named backends need ("all" needs
    none: it takes those that can run)."""
    return [(package, f"backend {name}") for name in names
            for package in BACKEND_PACKAGES.get(name, ())]


def create_backend(model: nn.Module, name: str, input_size: tuple[int, int, int],
                   precision: str = "fp32", channels_last: bool | None = None,
                   threads: int | None = None, allow_emulated_bf16: bool = False,
                   onnx_path: str | Path | None = None) -> Backend:
    """``model`` (any zoo model; fused here) behind backend ``name`` at ``precision``.
    ``channels_last=None`` uses the measured default; ``onnx_path`` reuses an exported file
    for onnxruntime/openvino instead of exporting again."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    reason = available_backends()[name]
    if reason and not (onnx_path and name == "onnxruntime" and available("onnxruntime")):
        raise BackendUnavailableError(f"backend {name} {reason}")
    notes = check_precision(name, precision, allow_emulated_bf16)
    layout = CHANNELS_LAST.get(name, False) if channels_last is None else channels_last
    started = time.perf_counter()
    fused = fuse(model)  # a copy: the caller's model is left as it was
    left = remaining_batchnorms(fused)
    backend = _FACTORIES[name](fused, precision=precision, channels_last=layout,
                               input_size=tuple(input_size), threads=threads, onnx_path=onnx_path)
    backend.setup_seconds = time.perf_counter() - started
    backend.notes = [*(["channels-last"] if layout and name in CHANNELS_LAST else []), "fused",
                     *backend.notes, *notes,
                     *([f"{len(left)} BatchNorm unfused"] if left else [])]
    return backend


def artefact_backend(path: str | Path, format: str, precision: str = "fp32",
                     backend: str | None = None, threads: int | None = None) -> Backend:
    """An exported file run the way it is deployed, at ``precision``: a ``.pt2`` or TorchScript
    file in PyTorch; an ONNX file in ``backend`` (onnxruntime, the default, or openvino). A bf16
    ONNX file holds the fp32 graph that OpenVINO compiles in bf16, so it needs openvino."""
    if format != "onnx":
        return Backend(format, precision, artefact_runner(path, format, threads))
    backend = backend or "onnxruntime"
    if backend == "openvino":
        run = openvino_runner(path, "bf16" if precision == "bf16" else "fp32", threads)
        return Backend("openvino", precision, run)
    if backend == "onnxruntime" and precision != "bf16":
        return Backend("onnxruntime", precision, artefact_runner(path, format, threads))
    raise ValueError(f"an ONNX {precision} model runs in "
                     f"{'openvino' if precision == 'bf16' else 'onnxruntime or openvino'}, "
                     f"not {backend}")


def check_sidecar(backend: Backend, sidecar: Sidecar, path: str | Path) -> None:
    """Run the file once on a batch of the shape its sidecar describes: a sidecar that does not
    fit its file (channels, input size, number of class names against outputs) is a one-line
    ``ValueError`` naming both, before any image is classified with wrong labels."""
    where = f"{str(path)!r} and its sidecar {str(sidecar_path(path))!r}"
    shape = list(sidecar.input_size) if len(sidecar.input_size) == 4 else [1, *sidecar.input_size]
    chans, crop = sidecar.preprocess.get("in_chans"), sidecar.preprocess.get("input_size")
    crop = [crop, crop] if isinstance(crop, int) else list(crop or [])
    if chans != shape[1] or crop != shape[2:]:
        raise ValueError(f"{where} disagree: the preprocessing makes {chans}x"
                         f"{'x'.join(map(str, crop))} images, the input size is "
                         f"{'x'.join(map(str, shape[1:]))}")
    try:
        outputs = backend(torch.zeros(shape))
    except Exception as error:  # noqa: BLE001 - every runtime words it differently
        detail = " ".join(str(error).split())[:300] or type(error).__name__
        raise ValueError(f"{where} disagree: the file does not take a "
                         f"{'x'.join(map(str, shape))} input ({detail})") from None
    names = sidecar.class_names
    # a binary segmenter's one channel names two classes (background and foreground)
    channels = 1 if sidecar.model_args.get("num_classes") == 1 else len(names or [])
    expected = (shape[0], channels) + (tuple(shape[2:]) if sidecar.dynamic_size else ())
    if names is not None and tuple(outputs.shape) != expected:  # segmenters: a map per class
        raise ValueError(f"{where} disagree: the file gives outputs of shape "
                         f"{tuple(outputs.shape)}, the sidecar names {len(names)} classes")


def backend_from_file(path: str | Path, backend: str | None = None,
                      threads: int | None = None, sidecar: Sidecar | None = None
                      ) -> tuple[Backend, Sidecar]:
    """An exported artefact with its sidecar, ready to run as the sidecar says:
    ``(backend, sidecar)``. ``backend`` defaults to the one the sidecar's accuracy was measured
    in (see :func:`artefact_backend`). The sidecar (read here unless given) is checked against
    the file first (:func:`check_sidecar`)."""
    sidecar = sidecar or read_sidecar(path)
    if Path(sidecar.artefact).name != Path(path).name:
        raise ValueError(f"the sidecar {str(sidecar_path(path))!r} describes "
                         f"{sidecar.artefact!r}, not {Path(path).name!r}")
    run = artefact_backend(path, sidecar.artefact_format, sidecar.precision,
                           backend or sidecar.backend, threads)
    check_sidecar(run, sidecar, path)
    return run, sidecar
