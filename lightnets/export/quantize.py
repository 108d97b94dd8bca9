"""Reduced precision behind an accuracy gate: int8 post-training quantization, and bf16 where
the CPU computes it natively.

int8: static quantization (Jacob et al., CVPR 2018) with ONNX Runtime's tools: weights int8 per
output channel, activations uint8 per tensor with ranges calibrated on a few hundred training
images (min/max by default), in QDQ format, a portable ONNX file that ONNX Runtime fuses into
integer convolutions and OpenVINO's CPU plugin runs in int8 too (faster, where installed).
ONNX Runtime's tools rather than PyTorch's PT2E flow: the result runs in lightnets' fastest
fp32 runtimes with no further dependency; PT2E's x86 lowering now lives in ``torchao``.

bf16: OpenVINO compiles the fp32 ONNX graph with bf16 inference precision (the written file
keeps fp32 weights; the sidecar says to run it in bf16), or eager PyTorch runs a bf16 ``.pt2``.
Refused on CPUs without native bf16 (see :mod:`lightnets.hardware`).

Weights only, in a phone runtime's own file (:data:`WEIGHT_ONLY`): fp16 in LiteRT, ncnn and MNN
(half the size) and int8 in MNN (a quarter; MNN's converter, one scale per output channel). No
calibration: the activations stay in floating point, and each runtime decides how it computes
with the stored weights (fp32 on CPUs without fp16 arithmetic, as this x86 one).

int8 after quantization-aware training (``qat``): :mod:`lightnets.export.qat`, written for ONNX
Runtime or ExecuTorch, gated the same way, with post-training int8's figure beside it.

Both measure the task's figure (top-1, mIoU or mAP: :meth:`lightnets.tasks.Task.gate_score`) on a
validation set before and after, in the backend that will run the model, and refuse to write it
(unless forced) when it drops by more than ``max_drop`` points.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightnets.data import DataBundle, data_requirements
from lightnets.export.artefact import export_model, export_requirements
from lightnets.export.backends import artefact_backend, backend_requirements, check_precision
from lightnets.export.formats import FORMATS, Format, Target, artefact_files
from lightnets.export.fuse import fuse
from lightnets.export.runtimes import executorch_pte, litert
from lightnets.export.onnx import DEFAULT_OPSET, onnx_session, quiet, run_session
from lightnets.export.qat import (QAT_DEFAULT_BACKEND, QatOptions, check_qat, check_qat_task,
                                  qat_packages, qat_reduced)
from lightnets.optional import available, require, require_all
from lightnets.export.sidecar import Sidecar, write_sidecar
from lightnets.files import check_writable_file, write_atomic
from lightnets.export.source import ModelSource, from_checkpoint
from lightnets.export.timing import time_callables
from lightnets.export.torch_formats import export_pt2
from lightnets.export.verify import Runner
from lightnets.hardware import native_int8_dot
from lightnets.tasks import TASKS, Task, task_for

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# backend -> the artefact format the reduced model is written in
ARTEFACT_FORMATS = {"onnxruntime": "onnx", "openvino": "onnx", "eager": "pt2",
                    "executorch": "executorch", "tflite": "tflite", "ncnn": "ncnn", "mnn": "mnn"}
# (precision, backend) whose file stores its weights so, computed without calibration
WEIGHT_ONLY = [(precision, backend) for backend, format in ARTEFACT_FORMATS.items()
               for precision in FORMATS[format].weight_precisions]  # fp16: tflite ncnn mnn
INT8_BACKENDS = ("onnxruntime", "openvino", "executorch", "tflite", "mnn")
FP16_BACKENDS = tuple(backend for precision, backend in WEIGHT_ONLY if precision == "fp16")
BF16_BACKENDS = ("openvino", "eager")
BACKENDS = {"int8": INT8_BACKENDS, "fp16": FP16_BACKENDS, "bf16": BF16_BACKENDS}
TWO_STAGE_QUANTIZE = ("quantize takes one-stage detectors (fcos, retinanet, ssdlite): a "
                      "two-stage Faster R-CNN has no raw head outputs for torchvision to "
                      "decode; export it in fp32 with lightnets export")
# (precision, artefact format) -> the written file's suffix
SUFFIXES = {("int8", "onnx"): ".int8.onnx", ("int8", "executorch"): ".int8.pte",
            ("int8", "tflite"): ".int8.tflite",
            # a weight-only file: its format's suffix after the precision (.fp16.ncnn.param)
            **{(precision, ARTEFACT_FORMATS[backend]):
               f".{precision}{FORMATS[ARTEFACT_FORMATS[backend]].suffix}"
               for precision, backend in WEIGHT_ONLY},
            ("bf16", "onnx"): ".bf16.onnx",
            ("bf16", "pt2"): ".bf16.pt2"}


def default_backend(precision: str) -> str:
    """fp16: LiteRT (Android's runtime). int8 and bf16: OpenVINO where it is installed
    (measured fastest here for both), else ONNX Runtime for int8 and eager PyTorch for bf16."""
    if precision == "fp16":
        return "tflite"
    if available("openvino"):
        return "openvino"
    return "onnxruntime" if precision == "int8" else "eager"


def quantize_requirements(precision: str, backend: str | None, calib_data: str | None,
                          qat: bool = False) -> list[tuple[str, str]]:
    """``(package, purpose)`` for what quantizing needs: the fp32 ONNX export and its check,
    ONNX Runtime's quantizer for int8, the backend measuring it, the calibration data, and
    torchao with ExecuTorch's quantizer for QAT."""
    backend = backend or (QAT_DEFAULT_BACKEND if qat else default_backend(precision))
    format = ARTEFACT_FORMATS.get(backend)  # the reduced file's: its writer's and runtime's
    return (export_requirements("onnx") + (list(qat_packages()) if qat else [])
            + ([("onnxruntime", "int8 quantization")] if precision == "int8" else [])
            + (backend_requirements([backend]) if backend == "openvino" else [])
            + (list(FORMATS[format].packages) if format not in (None, "onnx") else [])
            + data_requirements(calib_data))


def calibrated(precision: str, backend: str) -> bool:
    """Whether the reduced model's activation ranges are calibrated on images: int8, but for
    a weight-only file (:data:`WEIGHT_ONLY`)."""
    return precision == "int8" and (precision, backend) not in WEIGHT_ONLY


class AccuracyGateError(ValueError):
    """The reduced-precision model lost more accuracy than allowed; nothing was written."""

    def __init__(self, message: str, report: QuantizeReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class QuantizeReport:
    """The task's figure (``metric``, a fraction: top-1, mIoU or mAP) and latency (ms per
    batch) before and after."""

    model: str
    precision: str
    fp32_score: float
    reduced_score: float
    val_images: int
    calib_images: int
    max_drop_points: float
    latency_ms: dict[int, dict[str, float]] = field(default_factory=dict)
    written: str | None = None
    backend: str = "onnxruntime"
    metric: str = "top1"            # the task's: "top1", "miou", "map"
    qat_epochs: int = 0             # > 0: the reduced model is QAT's, fine-tuned this long
    ptq_score: float | None = None  # with QAT: post-training int8's figure, same data, backend

    @property
    def metric_name(self) -> str:
        return next(task.metric_label for task in TASKS.values() if task.metric == self.metric)

    @property
    def drop_points(self) -> float:
        return 100 * (self.fp32_score - self.reduced_score)

    @property
    def passed(self) -> bool:
        return self.drop_points <= self.max_drop_points

    def lines(self) -> list[str]:
        out = [f"{self.metric_name} on {self.val_images} validation images: fp32 "
               f"{self.fp32_score:.2%}, "
               f"{self.precision} in {self.backend} {self.reduced_score:.2%} "
               f"(drop {hundredths(self.drop_points):+.2f} points, "
               f"allowed {self.max_drop_points:.2f})"]
        if self.qat_epochs:
            out[0] = out[0].replace(f"{self.precision} in", f"{self.precision} after "
                                    f"{self.qat_epochs} QAT epoch(s) in", 1)
        if self.ptq_score is not None:
            out.append(f"post-training {self.precision} in {self.backend} (the same "
                       f"{self.val_images} images): {self.ptq_score:.2%} (drop "
                       f"{hundredths(100 * (self.fp32_score - self.ptq_score)):+.2f} points)")
        for batch, row in self.latency_ms.items():
            out.append(f"latency at batch {batch}: fp32 {row['fp32']:.2f} ms, {self.precision} "
                       f"{row[self.precision]:.2f} ms ({row['fp32'] / row[self.precision]:.2f}x)")
        return out

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values[f"fp32_{self.metric}"] = values.pop("fp32_score")
        values[f"reduced_{self.metric}"] = values.pop("reduced_score")
        values[f"ptq_{self.metric}"] = values.pop("ptq_score")
        return {**values, "drop_points": self.drop_points, "passed": self.passed}


def hundredths(points: float) -> float:
    """``points`` rounded to two decimals, a tie's rounding error shown as +0.00, not -0.00."""
    return round(points, 2) + 0.0


def evenly_spaced(dataset: Any, count: int) -> torch.Tensor:
    """``count`` images spread over ``dataset`` (folders list classes in order: not the first
    ``count``), stacked."""
    indices = np.linspace(0, len(dataset) - 1, num=min(count, len(dataset))).round().astype(int)
    return torch.stack([dataset[int(i)][0] for i in dict.fromkeys(indices)])


def quantize_onnx(fp32_path: str | Path, int8_path: str | Path, calibration: torch.Tensor,
                  per_channel: bool = True, method: str = "minmax",
                  reduce_range: bool | None = None, batch_size: int = 32) -> Path:
    """Static int8 quantization of an ONNX file, calibrated on ``calibration`` images.
    ``reduce_range`` keeps weights to 7 bits; ``None`` does so only on CPUs without int8 dot
    products (:func:`lightnets.hardware.native_int8_dot`): x86 CPUs without VNNI multiply
    uint8 by int8 with ``vpmaddubsw``, whose 16-bit sums saturate at full range (ONNX
    Runtime's advice; measured on an AVX2-only CPU: a ResNet-18's 1.4-point top-1 drop at full
    range became none at 7 bits)."""
    quantization = require("onnxruntime.quantization", "int8 quantization")
    if reduce_range is None:
        reduce_range = not native_int8_dot()
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of "
                         f"{', '.join(CALIBRATION_METHODS)}")
    input_name = onnx_session(fp32_path).get_inputs()[0].name
    # equal batches: the histogram calibrators stack per-batch outputs and need one shape
    batch_size = max(d for d in range(1, batch_size + 1) if len(calibration) % d == 0)
    batches = [calibration[i:i + batch_size].numpy() for i in range(0, len(calibration),
                                                                     batch_size)]

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:  # a fresh pass over the batches per quantization
            self.remaining = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.remaining, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory() as folder:
        prepared = Path(folder) / "prepared.onnx"
        try:  # shape inference + graph clean-up, as ONNX Runtime recommends before quantizing;
            # ONNX's shape inference, not ONNX Runtime's symbolic one (meant for transformers'
            # symbolic dimensions), which saves the graph it gave up on into the working folder
            quantization.shape_inference.quant_pre_process(str(fp32_path), str(prepared),
                                                           skip_symbolic_shape=True)
        except Exception:  # noqa: BLE001 - quantizing the unprepared graph still works
            prepared = Path(fp32_path)
        def quantize(op_types: list[str] | None) -> None:
            with quiet(""):  # the calibrators print progress, the quantizer logs to the root
                quantization.quantize_static(
                    str(prepared), str(int8_path), Reader(),
                    quant_format=quantization.QuantFormat.QDQ, per_channel=per_channel,
                    reduce_range=reduce_range, op_types_to_quantize=op_types,
                    activation_type=quantization.QuantType.QUInt8,
                    weight_type=quantization.QuantType.QInt8,
                    calibrate_method=getattr(quantization.CalibrationMethod,
                                             {"minmax": "MinMax", "entropy": "Entropy",
                                              "percentile": "Percentile"}[method]))

        try:
            quantize(None)
        except ValueError as error:
            # ONNX Runtime cannot give an operator that shares its input's and output's
            # quantization parameters (concatenations, reshapes) a weight as input, as a
            # detector's head graph has: then the convolutions and matrix products alone
            if "shared mode" not in str(error):
                raise
            quantize(["Conv", "MatMul", "Gemm"])
    return Path(int8_path)


class CastToBfloat16(nn.Module):
    """Float32 in, float32 out, the whole network in bf16 between."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(torch.bfloat16)).float()


def quantize_checkpoint(checkpoint: str | Path, calib_data: str | None,
                        output: str | Path | None = None, val_data: str | None = None,
                        calib_size: int = 300,
                        max_drop: float = 1.0, force: bool = False, precision: str = "int8",
                        method: str = "minmax", per_channel: bool = True,
                        reduce_range: bool | None = None,
                        latency_batches: tuple[int, ...] = (1, 32),
                        allow_emulated_bf16: bool = False, backend: str | None = None,
                        log: Callable[[str], None] | None = None, qat: QatOptions | None = None,
                        progress: bool = False) -> QuantizeReport:
    """int8 or bf16 model of a checkpoint, written only when its task's figure (top-1, mIoU,
    mAP) on the validation set (default: the checkpoint's own data), measured in ``backend``,
    is within ``max_drop`` points of fp32, or when ``force``. Raises
    :class:`AccuracyGateError` (carrying the report) otherwise. ``backend`` (default
    :func:`default_backend`): int8 runs in onnxruntime or openvino (an int8 ONNX file), bf16 in
    openvino (an ONNX file it compiles in bf16) or eager PyTorch (a ``.pt2``). With ``qat``
    the int8 model is quantization-aware training's (:mod:`lightnets.export.qat`), written for
    onnxruntime (default) or executorch, and the report gives post-training int8's figure too
    (calibrated on ``calib_data``, default the checkpoint's data); ``progress`` shows its bar."""
    say = log or (lambda message: None)
    backend = check_options(precision, max_drop, calib_size, backend, calib_data,
                            allow_emulated_bf16, qat)
    source = from_checkpoint(checkpoint)
    if getattr(source.model, "two_stage", False):  # the gate decodes the int8 raw outputs
        raise ValueError(TWO_STAGE_QUANTIZE)
    task = task_for(source.model)
    if qat is not None:
        check_qat_task(task)
        calib_data = calib_data or source.training.get("data")
    val = validation_data(source, task, val_data)
    if reduce_range is None:
        reduce_range = not native_int8_dot()
    path = check_writable_file(Path(output) if output else Path(source.checkpoint).with_suffix(
        SUFFIXES[precision, ARTEFACT_FORMATS[backend]]), "the quantized model")
    # calibration images need no validation split: read them all before any export
    images = (task.network_inputs(source.model, evenly_spaced(
        task.calibration_images(calib_data, source.preprocess), calib_size))
              if calibrated(precision, backend) else torch.empty(0))
    with tempfile.TemporaryDirectory() as folder:
        say("exporting and checking the fp32 ONNX model...")
        # a detector's network alone: the int8 graph's outputs are decoded by torchvision
        fp32 = export_model(source, "onnx", Path(folder) / "fp32.onnx", postprocess=False)
        fp32_session = onnx_session(fp32.path)
        fp32_run: Runner = lambda x: run_session(fp32_session, x)  # noqa: E731
        reduced_path = reduced_model(source, fp32.path, Path(folder), images, precision,
                                     backend, method, per_channel, reduce_range, say)

        def score(run: Runner) -> float:
            return task.gate_score(run, val.val, val.classes, source.model)

        ptq_score = None
        if qat is not None:  # post-training int8 first, for the report's comparison
            ptq_score = score(artefact_backend(reduced_path, ARTEFACT_FORMATS[backend], "int8",
                                               backend))
            reduced_path = qat_reduced(source, task, Path(folder), ARTEFACT_FORMATS[backend],
                                       qat, say, progress)
        reduced_run = artefact_backend(reduced_path, ARTEFACT_FORMATS[backend], precision,
                                       backend)
        say(f"evaluating on {len(val.val)} validation images ({precision} in {backend})...")
        report = QuantizeReport(source.name, precision, score(fp32_run), score(reduced_run),
                                len(val.val), len(images), max_drop, backend=backend,
                                metric=task.metric, qat_epochs=qat.epochs if qat else 0,
                                ptq_score=ptq_score)
        report.latency_ms = latency(fp32_run, reduced_run, precision, source.input_size,
                                    latency_batches)
        if not report.passed and not force:
            raise gate_error(report)
        copy_artefact(reduced_path, path, FORMATS[ARTEFACT_FORMATS[backend]])
    report.written = str(path)
    calibration = ({"qat": asdict(qat), "ranges": "learned in QAT"} if qat else
                   {"data": calib_data, "images": len(images), "method": method,
                    "per_channel": per_channel, "reduce_range": reduce_range})
    write_reduced_sidecar(fp32.sidecar, path, report, calibration if calibrated(
        precision, backend) else None)
    return report


def copy_artefact(source: Path, path: Path, format: Format) -> None:
    """Copy a written file and its side files (an ncnn ``.bin``) to ``path``, each atomically
    (a crash never leaves half a file) and the side files first."""
    pairs = list(zip(artefact_files(source, format), artefact_files(path, format)))
    for written, target in pairs[1:] + pairs[:1]:
        write_atomic(target, written.read_bytes())


def gate_error(report: QuantizeReport) -> AccuracyGateError:
    """The refusal of a model that dropped more than allowed."""
    return AccuracyGateError(
        f"{report.precision} model not written: {report.metric_name} dropped "
        f"{report.drop_points:.2f} points, more than the allowed "
        f"{report.max_drop_points:.2f} (raise --max-drop or pass --force)", report)


def write_reduced_sidecar(sidecar: Sidecar, path: Path, report: QuantizeReport,
                          calibration: dict[str, Any] | None) -> Path:
    """The reduced model's sidecar: the fp32 export's (its verification is of the file the
    model came from), with the precision, the backend and the gate's figures."""
    sidecar.artefact, sidecar.precision, sidecar.backend = path.name, report.precision, \
        report.backend
    sidecar.artefact_format = ARTEFACT_FORMATS[report.backend]
    # a file of batch 1: LiteRT's, and ExecuTorch's where a dynamic batch did not run
    spec = FORMATS[sidecar.artefact_format]
    fixed = not spec.dynamic_batch or bool(spec.fallback_batch and spec.fallback_batch(path))
    if fixed:
        sidecar.dynamic_batch, sidecar.input_size = False, [1, *sidecar.input_size[-3:]]
    if not spec.dynamic_size:  # a segmenter's ncnn, MNN or LiteRT file: the exported size only
        sidecar.dynamic_size, sidecar.min_side = False, None
    sidecar.accuracy = {**report.as_dict(), "calibration": calibration}
    return write_sidecar(sidecar, path)


def latency(fp32_run: Runner, reduced_run: Runner, precision: str,
            input_size: tuple[int, int, int], batches: tuple[int, ...]
            ) -> dict[int, dict[str, float]]:
    """Median milliseconds of the fp32 and the reduced model at each batch size."""
    medians = {}
    for batch in batches:
        x = torch.randn(batch, *input_size)
        times = time_callables({"fp32": fp32_run, precision: reduced_run}, x, 2, 10)
        medians[batch] = {k: float(np.median(v)) for k, v in times.items()}
    return medians


def check_options(precision: str, max_drop: float, calib_size: int, backend: str | None,
                  calib_data: str | None, allow_emulated_bf16: bool,
                  qat: QatOptions | None = None) -> str:
    """The backend that will run the reduced model, once every option is checked and every
    package it needs is there (before any work)."""
    if precision not in BACKENDS:
        raise ValueError(f"precision must be {', '.join(BACKENDS)}, got {precision!r}")
    if max_drop < 0 or calib_size < 1:
        raise ValueError(f"need max_drop >= 0 and calib_size >= 1, got {max_drop}, {calib_size}")
    backend = backend or (QAT_DEFAULT_BACKEND if qat else default_backend(precision))
    if qat is not None:
        check_qat(precision, backend, qat)
    allowed = BACKENDS[precision]
    if backend not in allowed:
        raise ValueError(f"{precision} runs in {' or '.join(allowed)}, not {backend!r}")
    require_all(quantize_requirements(precision, backend, calib_data, qat is not None))
    if precision == "bf16":
        check_precision(backend, "bf16", allow_emulated_bf16)
    elif calibrated(precision, backend) and not calib_data and qat is None:  # QAT: its own
        raise ValueError("int8 quantization needs calibration data (--calib-data)")
    return backend


def validation_data(source: ModelSource, task: Task, val_data: str | None) -> DataBundle:
    """The validation split the gate measures on: ``val_data``'s, else the one the checkpoint
    trained with (its data, seed and fraction), read with the checkpoint's preprocessing."""
    training = source.training
    val_source = val_data or training.get("data")
    if not val_source:
        raise ValueError("the checkpoint does not record its data; pass --val-data")
    val = task.build_data(val_source, source.preprocess, augment=False,
                          val_fraction=training.get("val_fraction", 0.2),
                          seed=training.get("seed", 0), warn=False)
    if source.class_names and val.classes != source.class_names:
        raise ValueError(f"the classes of {val_source!r} differ from the checkpoint's")
    return val


def reduced_model(source: ModelSource, fp32_path: Path, folder: Path, images: torch.Tensor,
                  precision: str, backend: str, method: str, per_channel: bool,
                  reduce_range: bool, say: Callable[[str], None]) -> Path:
    """The reduced-precision file in ``folder``: an int8 file calibrated on ``images`` (the
    backend's own quantizer, else ONNX Runtime's QDQ graph); an fp16 file of the backend's
    format; for bf16 in OpenVINO the fp32 graph itself (bf16 is how OpenVINO compiles it); else
    a bf16 ``.pt2``."""
    if precision == "int8" and backend == "executorch":  # PT2E: the XNNPACK quantizer's own
        say(f"calibrating on {len(images)} images (PT2E, XNNPACK quantizer) and lowering...")
        return executorch_pte.quantize_runnable_pte(source.model.eval(), folder / "reduced.pte",
                                                    images, per_channel)
    if precision == "int8" and backend == "tflite":  # PT2E: litert-torch's own quantizer
        say(f"calibrating on {len(images)} images (PT2E, litert-torch's quantizer) and "
            "converting...")
        return litert.quantize_tflite(source.model.eval(), folder / "reduced.tflite", images,
                                      per_channel)
    if (precision, backend) in WEIGHT_ONLY:
        say(f"writing the {backend} file with {precision} weights...")
        format = FORMATS[ARTEFACT_FORMATS[backend]]
        written = folder / f"reduced{format.suffix}"
        format.write(fuse(source.model), Target(written, source.input_size, format.dynamic_batch,
                                                1, False, DEFAULT_OPSET, weights=precision))
        return written
    if precision == "int8":
        say(f"calibrating on {len(images)} images ({method}) and quantizing...")
        return quantize_onnx(fp32_path, folder / "reduced.onnx", images, per_channel, method,
                             reduce_range)
    if backend == "openvino":
        return fp32_path
    say("exporting the bf16 model...")
    return export_pt2(CastToBfloat16(fuse(source.model)), folder / "reduced.pt2",
                      source.input_size)
