"""``--format ncnn``: PNNX's conversion checked in ncnn (skipped only where the ncnn extra's
wheels cannot be installed)."""

from __future__ import annotations

import pytest

from lightnets.cli import main
from tests.export.runtime_checks import (check_broken_file_is_refused,
                                         check_predict_matches_checkpoint, exported)

pytest.importorskip("pnnx", reason="pnnx has no wheel for this platform (lightnets[ncnn])")
pytest.importorskip("ncnn", reason="ncnn has no wheel for this platform (lightnets[ncnn])")


@pytest.mark.slow  # 4-16 s on the shared 2-core machine (5-8 s of CPU)
def test_ncnn_export_checks_and_predicts(tmp_path):
    checkpoint, path = exported("ncnn", tmp_path)
    assert path.name == "model.ncnn.param" and (tmp_path / "model.ncnn.bin").is_file()
    # PNNX's own side files (.pnnx.param, _pnnx.py, .onnx, the trace) stay in its temp folder
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("model")) == [
        "model.ncnn.bin", "model.ncnn.param", "model.ncnn.param.json"]
    check_predict_matches_checkpoint(checkpoint, path)


@pytest.mark.slow  # 4-16 s on the shared 2-core machine (5-8 s of CPU)
def test_broken_ncnn_file_is_refused_and_removed(tmp_path, monkeypatch):
    check_broken_file_is_refused("ncnn", tmp_path, monkeypatch)


def test_missing_ncnn_extra_is_named(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pnnx", None)  # import fails as if not installed
    assert main(["export", "--model", "squeezenet1_1", "--format", "ncnn",
                 "--output", str(tmp_path / "m.ncnn.param")]) != 0
    err = capsys.readouterr().err
    assert "pip install 'lightnets[ncnn]'" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
