"""One call from a model to a checked deployable file: fuse, export, run the artefact against
the eager model, write the sidecar. Behind ``lightnets export``."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from torch import nn

from lightnets.data.detection import detection_data_kind
from lightnets.detect.detector import TWO_STAGE_RAW, RawHeads
from lightnets.detect.graph import DetectionGraph
from lightnets.export.detection import (DetectionVerification, check_detections,
                                        export_detection_onnx, session_detections,
                                        verify_detections)
from lightnets.export.fuse import fuse, remaining_batchnorms
from lightnets.export.formats import FORMATS, Target, Written, get_format, remove_artefact
from lightnets.export.onnx import DEFAULT_OPSET, onnx_session
from lightnets.files import check_writable_file, write_error
from lightnets.optional import require_all
from lightnets.export.sidecar import Sidecar, runtime_versions, write_sidecar
from lightnets.export.source import ModelSource
# importing the writers registers their formats: ONNX, TorchScript, .pt2, then the runtimes
import lightnets.export.runtimes  # noqa: F401, E402
import lightnets.export.torch_formats  # noqa: F401, E402
from lightnets.export.verify import (DEFAULT_TOLERANCE, Runner, Verification, VerificationError,
                                     check, verify)
from lightnets.tasks import task_for

@dataclass
class ExportResult:
    """The written artefact, its sidecar and the check it passed."""

    path: Path
    sidecar_path: Path
    sidecar: Sidecar
    verification: Verification | DetectionVerification
    export_seconds: float


def export_requirements(format: str, real_inputs: bool = True) -> list[tuple[str, str]]:
    """``(package, purpose)`` for what an export to ``format`` needs: its writer and the runtime
    that runs the check; scikit-learn, whose digit scans are the real images."""
    needs = list(get_format(format).packages)
    return needs + ([("sklearn", "checking an export on real images")] if real_inputs else [])


def check_format(format: str) -> str:
    return get_format(format).name


def default_output(source: ModelSource, format: str) -> Path:
    """``<name>.onnx`` in the working folder, or beside the checkpoint (``best.pt`` ->
    ``best.onnx``)."""
    if source.checkpoint:
        checkpoint = Path(source.checkpoint)
        return checkpoint.with_name(checkpoint.stem + FORMATS[format].suffix)
    return Path(source.name + FORMATS[format].suffix)


def artefact_runner(path: str | Path, format: str, threads: int | None = None) -> Runner:
    """A callable running the artefact in its own runtime on a float tensor (ONNX files in ONNX
    Runtime); a one-line error for a format whose runtime cannot run on this platform."""
    spec = get_format(format)
    if spec.load is None:
        raise ValueError(f"{format} files cannot be run on this platform ({spec.runtime} runs "
                         "them); they are checked by their specification only")
    return spec.load(Path(path), threads)


@dataclass
class ExportPlan:
    """The checked settings of one export (:func:`plan_export`)."""

    path: Path
    format: str
    dynamic_batch: bool
    batch_size: int
    dynamic_size: bool       # height and width symbolic too (segmenters)
    postprocess: bool        # a detector's file holds its post-processing
    fuse_model: bool
    opset: int
    tolerance: float
    real_inputs: bool
    min_side: int | None = None  # a dynamic size from this side up (see Written)


def export_model(source: ModelSource, format: str = "onnx", output: str | Path | None = None,
                 dynamic_batch: bool = True, batch_size: int = 1, fuse_model: bool = True,
                 opset: int = DEFAULT_OPSET, tolerance: float = DEFAULT_TOLERANCE,
                 real_inputs: bool = True, postprocess: bool | None = None) -> ExportResult:
    """Export ``source`` (fused first unless ``fuse_model=False``) to ``format``, verify the
    written file against the unfused eager model and write the sidecar. A failed check removes
    the artefact and raises :class:`VerificationError`. A detector's ONNX file holds its
    post-processing (:class:`DetectionGraph`: boxes, scores, labels of one image) unless
    ``postprocess=False`` (the raw head outputs, :class:`RawHeads`); other formats hold the raw
    head outputs."""
    plan = plan_export(source, format, output, dynamic_batch, batch_size, fuse_model, opset,
                       tolerance, real_inputs, postprocess)
    model = fuse(source.model) if fuse_model else source.model.eval()
    started = time.perf_counter()
    graph = DetectionGraph(model.detector, source.input_size[1:]) if plan.postprocess else None
    plan = as_written(plan, write_artefact(model, graph, plan, source.input_size))
    seconds = time.perf_counter() - started
    verification = verify_artefact(source, model, graph, plan)
    sidecar = artefact_sidecar(source, graph, plan, verification)
    return ExportResult(plan.path, write_sidecar(sidecar, plan.path), sidecar, verification,
                        seconds)


def plan_export(source: ModelSource, format: str, output: str | Path | None,
                dynamic_batch: bool, batch_size: int, fuse_model: bool, opset: int,
                tolerance: float, real_inputs: bool, postprocess: bool | None) -> ExportPlan:
    """Every check of :func:`export_model`'s arguments and of where the file goes, before any
    work: a one-line error for the first that fails."""
    require_all(export_requirements(check_format(format), real_inputs))  # before any work
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    postprocess = check_postprocess(source, format, postprocess)
    if postprocess and (not dynamic_batch and batch_size != 1):
        raise ValueError(f"a post-processed detector takes one image at a time (NMS and the "
                         f"box count do not batch); got batch_size {batch_size}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance}")
    path = Path(output) if output is not None else default_output(source, format)
    if path.is_dir() and not path.name.endswith(FORMATS[format].suffix):  # not a .mlpackage
        path = path / (source.name + FORMATS[format].suffix)
    check_writable_file(path, f"the {format} file")
    # a segmenter's file takes images of any size (its mask comes at that size), where the
    # format can hold symbolic sizes (TorchScript's trace keeps the sizes it saw)
    dynamic_size = task_for(source.model).dynamic_export_size and FORMATS[format].dynamic_size
    # a format whose files have a fixed batch is written (and checked) at batch_size
    dynamic_batch = dynamic_batch and FORMATS[format].dynamic_batch
    return ExportPlan(path, format, dynamic_batch, batch_size, dynamic_size, postprocess,
                      fuse_model, opset, tolerance, real_inputs)


def as_written(plan: ExportPlan, written: Written | None = None) -> ExportPlan:
    """``plan`` with the fixed batch its format's writer fell back to, if it did, and the
    sizes the writer gave (``written``)."""
    fallback = get_format(plan.format).fallback_batch
    batch = fallback(plan.path) if plan.dynamic_batch and fallback else None
    if batch is not None:
        plan = replace(plan, dynamic_batch=False, batch_size=batch)
    if isinstance(written, Written) and plan.dynamic_size:
        plan = replace(plan, dynamic_size=written.dynamic_size,
                       min_side=written.min_side if written.dynamic_size else None)
    return plan


def write_artefact(model: nn.Module, graph: DetectionGraph | None, plan: ExportPlan,
                   input_size: tuple[int, int, int]) -> object:
    """Write ``model`` (or the detector's post-processing ``graph``) to ``plan.path``; a failed
    write leaves no partial file. Returns what the format's writer returns (a
    :class:`Written`, where it gave less than the size asked for)."""
    path = plan.path
    try:
        if graph is not None:
            return export_detection_onnx(graph, path, plan.opset)
        return get_format(plan.format).write(model, Target(path, tuple(input_size),
                                                           plan.dynamic_batch, plan.batch_size,
                                                           plan.dynamic_size, plan.opset))
    except OSError as error:  # e.g. the disk filled up
        remove_artefact(path, get_format(plan.format))
        raise write_error(f"cannot write {path}", error) from None


def check_data(training: dict[str, Any]) -> tuple[str, dict[str, Any], list[str]]:
    """The detection data to check an export on: the data the checkpoint was trained on (a
    detector finds its boxes there), else ``digits-det``; its split, and a note when the
    recorded data is not here."""
    data = training.get("data")
    if not isinstance(data, str) or data == "digits-det":
        return "digits-det", {}, []
    if detection_data_kind(data) is None:
        return "digits-det", {}, [f"trained on {data}, which is not here: checked on "
                                  "digits-det canvases"]
    return data, {key: training[key] for key in ("val_fraction", "seed") if key in training}, []


def verify_artefact(source: ModelSource, model: nn.Module, graph: DetectionGraph | None,
                    plan: ExportPlan) -> Verification | DetectionVerification:
    """Run the written file against the unfused eager model, noting BatchNorms left unfused in
    ``model``; a failed check removes the file and raises :class:`VerificationError`."""
    path, format = plan.path, plan.format
    # a fixed-batch artefact only takes its own batch size; a dynamic one is run at others
    sizes = (3, 5) if plan.dynamic_batch else (plan.batch_size, plan.batch_size)
    if graph is not None:
        data, split, notes = check_data(source.training)
        verification = verify_detections(source.model.detector,
                                         session_detections(onnx_session(path)),
                                         source.input_size[1:], plan.tolerance, data=data,
                                         **split)
        verification.notes.extend(notes)
    elif FORMATS[format].load is None:  # a runtime that cannot run here: its spec checked
        try:
            notes = FORMATS[format].inspect(path, source.model, (sizes[0], *source.input_size))
        except VerificationError:
            remove_artefact(path, FORMATS[format])
            raise
        verification = Verification([], plan.tolerance, notes)
    else:
        verification = verify(source.model, artefact_runner(path, format), source.input_size,
                              source.preprocess, plan.tolerance, plan.real_inputs, sizes,
                              plan.dynamic_size)
    left = remaining_batchnorms(model) if plan.fuse_model else []
    if left:
        verification.notes.append(f"{len(left)} BatchNorm layer(s) follow no convolution and "
                                  f"stay unfused: {', '.join(left[:5])}")
    try:
        (check if graph is None else check_detections)(
            verification, f"the exported {format} file {str(path)!r}")
    except VerificationError:
        remove_artefact(path, get_format(format))
        raise
    return verification


def artefact_sidecar(source: ModelSource, graph: DetectionGraph | None, plan: ExportPlan,
                     verification: Verification | DetectionVerification) -> Sidecar:
    """The sidecar of the verified file: the model, its input and preprocessing, the check it
    passed and the versions that wrote it."""
    # a post-processed detector's file takes one image at a time
    dynamic_batch = plan.dynamic_batch and graph is None
    sidecar = Sidecar(
        artefact=plan.path.name, artefact_format=plan.format, model=source.name,
        model_args=source.model_args, input_size=list(source.input_size),
        dynamic_batch=dynamic_batch, dynamic_size=plan.dynamic_size, min_side=plan.min_side,
        preprocess=source.preprocess, class_names=source.class_names,
        checkpoint=source.checkpoint, fused=plan.fuse_model,
        data={key: source.training[key] for key in ("data", "val_fraction", "seed")
              if key in source.training},
        verification=verification.as_dict(), versions=runtime_versions())
    if plan.format == "onnx":
        sidecar.versions["opset"] = str(plan.opset)
    for module, _ in FORMATS[plan.format].packages:  # the versions that wrote and ran the file
        with contextlib.suppress(metadata.PackageNotFoundError):
            sidecar.versions.setdefault(module.split(".")[0],
                                        metadata.version(module.split(".")[0]))
    if not dynamic_batch:
        sidecar.input_size = [1 if graph is not None else plan.batch_size, *source.input_size]
    if isinstance(source.model, RawHeads):
        sidecar.detection = detection_form(source.model.detector, graph is not None)
        if graph is not None:
            sidecar.output_name = "boxes"
    return sidecar


def check_postprocess(source: ModelSource, format: str, postprocess: bool | None) -> bool:
    """Whether to export a detector with its post-processing: by default for ONNX files of
    detectors; asked for another format or model, a one-line error."""
    detector = isinstance(source.model, RawHeads)
    if detector and source.model.two_stage and (postprocess is False or format != "onnx"):
        raise ValueError(TWO_STAGE_RAW)
    if postprocess is None:
        return detector and FORMATS[format].postprocess
    if postprocess and not detector:
        raise ValueError(f"post-processing applies to detectors; {source.name} is a "
                         f"{task_for(source.model).name} model")
    if postprocess and not FORMATS[format].postprocess:
        holding = ", ".join(name for name, spec in FORMATS.items() if spec.postprocess)
        raise ValueError(f"a detector is exported with its post-processing to {holding} only; "
                         f"{format} files hold the raw head outputs (no post-processing)")
    return postprocess


def detection_form(detector: nn.Module, postprocessed: bool) -> dict[str, Any]:
    """The sidecar's account of a detector's file: which graph, its outputs and thresholds."""
    if not postprocessed:
        return {"form": "raw_heads", "outputs": "(N, locations, 4 [+ 1] + num_classes): box "
                "regression, FCOS's centerness, class logits; decoded by torchvision's "
                "postprocess_detections (lightnets.detect.detector.decoded_detector)"}
    return {"form": "postprocessed", "batch": 1, "fixed_size": True,
            "input": "one letterboxed image at the input size, 0-1 then normalised with mean "
                     "and std", "mean": list(detector.transform.image_mean),
            "std": list(detector.transform.image_std),
            "outputs": {"boxes": "(K, 4) float x1, y1, x2, y2 in the input's pixels",
                        "scores": "(K,) float, descending", "labels": "(K,) int64"},
            **detector.thresholds()}
