"""The JSON file written beside every artefact: what a deployment needs besides the graph.

``model.onnx`` gets ``model.onnx.json`` holding the model name and arguments, the input shape
(batch symbolic or fixed), the preprocessing (resize, centre crop, mean, std), the class names,
the numeric precision the artefact computes in, the data it was trained on, the result of
the export check, and for a detector which graph it holds (``detection``: post-processed boxes,
scores, labels, or the raw head outputs). :func:`lightnets.export.backends.backend_from_file`
checks a sidecar against the file it describes before trusting it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lightnets.files import write_atomic

SIDECAR_FORMAT = "lightnets.sidecar.v1"


@dataclass
class Sidecar:
    """Metadata of one exported artefact (file names are relative to the sidecar's folder)."""

    artefact: str
    artefact_format: str
    model: str
    model_args: dict[str, Any]
    input_size: list[int]
    dynamic_batch: bool
    preprocess: dict[str, Any]
    class_names: list[str] | None
    precision: str = "fp32"
    backend: str | None = None      # where a reduced-precision model's accuracy was measured
    input_name: str = "input"
    output_name: str = "logits"
    checkpoint: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # data, val_fraction, seed of training
    fused: bool = True
    verification: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    dynamic_size: bool = False      # height and width symbolic too (segmenters)
    min_side: int | None = None     # with dynamic_size: the smallest height and width it takes
    detection: dict[str, Any] = field(default_factory=dict)  # a detector's graph: form, outputs
    format: str = SIDECAR_FORMAT

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sidecar_path(artefact: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    artefact = Path(artefact)
    return artefact.with_name(artefact.name + ".json")


def runtime_versions() -> dict[str, str]:
    """Versions of the libraries that wrote (and should run) the artefact."""
    import importlib.metadata as metadata

    versions = {}
    for package in ("lightnets", "torch", "onnx", "onnxruntime", "openvino"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def write_sidecar(sidecar: Sidecar, artefact: str | Path) -> Path:
    """Write ``sidecar`` beside ``artefact``; returns the JSON file's path."""
    return write_atomic(sidecar_path(artefact), json.dumps(sidecar.as_dict(), indent=2) + "\n")


def read_sidecar(artefact_or_json: str | Path) -> Sidecar:
    """The sidecar of an artefact (give the artefact or the ``.json`` itself)."""
    path = Path(artefact_or_json)
    if path.suffix != ".json":
        path = sidecar_path(path)
    if not path.is_file():
        raise ValueError(f"no sidecar {str(path)!r} (it is written by `lightnets export`)")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"sidecar {str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(values, dict) or values.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{str(path)!r} is not a lightnets sidecar ({SIDECAR_FORMAT})")
    if "runtime" in values and "backend" not in values:  # the key's name before lightnets 0.2
        values["backend"] = values.pop("runtime")
    known = Sidecar.__dataclass_fields__
    return Sidecar(**{key: value for key, value in values.items() if key in known})
