"""``--format openvino``: OpenVINO IR (.xml + .bin) from the ONNX export, checked in OpenVINO."""

from __future__ import annotations

import pytest

from tests.export.runtime_checks import (check_broken_file_is_refused,
                                         check_predict_matches_checkpoint, exported)

pytest.importorskip("openvino", reason="openvino has no wheel for this platform "
                    "(lightnets[openvino])")


@pytest.mark.slow  # 4-16 s on the shared 2-core machine (5-8 s of CPU)
def test_openvino_ir_export_checks_and_predicts(tmp_path):
    checkpoint, path = exported("openvino", tmp_path)
    assert path.name == "model.xml" and (tmp_path / "model.bin").is_file()
    # fp32 weights: save_model would halve them to fp16 by default
    assert (tmp_path / "model.bin").stat().st_size > 3.5 * 700_000
    check_predict_matches_checkpoint(checkpoint, path)


@pytest.mark.slow  # 4-16 s on the shared 2-core machine (5-8 s of CPU)
def test_broken_openvino_file_is_refused_and_removed(tmp_path, monkeypatch):
    check_broken_file_is_refused("openvino", tmp_path, monkeypatch)
