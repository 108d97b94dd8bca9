"""Deployment: fuse for inference, export to ONNX / TorchScript / ``torch.export`` with a
checked artefact and a JSON sidecar, fast inference backends, prediction, and accuracy-gated
int8 / bf16.

``fuse(model)`` folds BatchNorm into convolutions; ``export_model(load_source(...), "onnx")``
writes a verified artefact; ``create_backend(model, "onnxruntime", input_size)`` gives a fast
callable; ``predict(checkpoint, images)`` classifies image files through one of them;
``quantize_checkpoint`` (in :mod:`lightnets.export.quantize`) makes an int8 model.
"""

from lightnets.export.artefact import FORMATS, ExportResult, artefact_runner, export_model
from lightnets.export.fuse import fold_batchnorm, fuse, remaining_batchnorms
from lightnets.export.predict import OpenedModel, Prediction, open_model, predict, predict_any
# the predictors of segmenters and detectors register themselves beside the classifiers'
from lightnets.export.predict_boxes import BoxPrediction, predict_boxes
from lightnets.export.predict_masks import MaskPrediction, predict_masks
from lightnets.export.sidecar import Sidecar, read_sidecar, sidecar_path, write_sidecar
from lightnets.export.source import ModelSource, from_checkpoint, from_name, load_source
from lightnets.export.verify import Verification, VerificationError, verify
from lightnets.optional import MissingDependencyError

__all__ = ["FORMATS", "BoxPrediction", "ExportResult", "MaskPrediction", "MissingDependencyError",
           "ModelSource", "OpenedModel", "Prediction", "Sidecar", "Verification",
           "VerificationError", "artefact_runner", "export_model", "fold_batchnorm",
           "from_checkpoint", "from_name", "fuse", "load_source", "open_model", "predict",
           "predict_any", "predict_boxes", "predict_masks", "read_sidecar",
           "remaining_batchnorms", "sidecar_path", "verify", "write_sidecar"]
