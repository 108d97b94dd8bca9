"""The sidecar: what it records beside an exported file, old ones read, other JSON refused."""

from __future__ import annotations

import json

import pytest

from lightnets.export import export_model, read_sidecar, sidecar_path
from tests.export.conftest import zoo_source


def test_sidecar_content(tmp_path):
    result = export_model(zoo_source("mobilenet_v2_x0_25"), "onnx", tmp_path / "m.onnx")
    path = sidecar_path(result.path)
    assert path == tmp_path / "m.onnx.json" and path == result.sidecar_path
    stored = json.loads(path.read_text())
    assert stored["model"] == "mobilenet_v2_x0_25" and stored["artefact"] == "m.onnx"
    assert stored["input_size"] == [3, 32, 32] and stored["dynamic_batch"] is True
    assert stored["preprocess"]["mean"] == [0.485, 0.456, 0.406]
    assert stored["preprocess"]["input_size"] == 32
    assert stored["class_names"] == [f"class{i}" for i in range(7)]
    assert stored["precision"] == "fp32" and stored["fused"] is True
    assert stored["verification"]["passed"] is True
    assert stored["versions"]["opset"] == "18"
    assert read_sidecar(result.path) == read_sidecar(path)
    # sidecars of lightnets 0.1 named the backend "runtime": still read, as `backend`
    old = {**stored, "runtime": "openvino"}
    del old["backend"]
    (tmp_path / "old.onnx.json").write_text(json.dumps(old))
    assert read_sidecar(tmp_path / "old.onnx").backend == "openvino"
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not a lightnets sidecar"):
        read_sidecar(tmp_path / "other.json")
