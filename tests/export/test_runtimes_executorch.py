"""ExecuTorch (.pte through XNNPACK): the export is checked in ExecuTorch's own runtime, keeps a
dynamic batch, runs under ``predict``, and a broken file is caught."""

from __future__ import annotations

import sys

import pytest

from lightnets.cli import main
from tests.export.runtimes_common import (assert_broken_file_is_caught,
                                          assert_predicts_like_the_checkpoint, export_checkpoint)

pytest.importorskip("executorch", reason="executorch is not installed (lightnets[executorch])")


@pytest.mark.slow
def test_executorch_export_is_checked_and_predicts(tmp_path, monkeypatch):
    checkpoint, result, images = export_checkpoint(tmp_path, "executorch")
    assert result.path.suffix == ".pte" and result.sidecar.artefact_format == "executorch"
    checks = {(c.inputs, c.batch) for c in result.verification.comparisons}
    assert checks == {("random", 3), ("real", 5)} and result.sidecar.dynamic_batch
    assert result.verification.passed and result.verification.max_relative < 1e-4
    assert_predicts_like_the_checkpoint(checkpoint, result.path, images)
    assert_broken_file_is_caught(checkpoint, result.path, tmp_path, monkeypatch)


def test_missing_executorch_is_named_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "executorch", None)  # import fails as if not installed
    assert main(["export", "--model", "squeezenet1_1", "--input-size", "32", "--format",
                 "executorch", "--output", str(tmp_path / "m.pte")]) == 2
    err = capsys.readouterr().err
    assert "needs executorch, which is not installed" in err
    assert "pip install 'lightnets[executorch]'" in err and not (tmp_path / "m.pte").exists()
