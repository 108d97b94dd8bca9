"""ExecuTorch (.pte through XNNPACK): the export is checked in ExecuTorch's own runtime, keeps a
dynamic batch, runs under ``predict``, and a broken file is caught."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from lightnets.cli import main
from lightnets.export import read_sidecar
from tests.test_readme import digit_png
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


@pytest.mark.slow
def test_int8_pte_behind_the_accuracy_gate(tmp_path):
    """A MobileNetV1 x0.25 after two epochs on the digits, quantized by PT2E with the XNNPACK
    quantizer to an int8 ``.pte``, measured in ExecuTorch against fp32 and written through the
    gate, then predicting, in processes of their own, as a user runs them. (A test worker once
    died waiting on them: an OpenVINO test had left its signal stack unmapped, since fixed by
    :func:`lightnets.export.openvino_runtime.kept_signal_stack`.)"""
    def lightnets(*argv: str) -> str:
        done = subprocess.run([sys.executable, "-m", "lightnets", *argv], cwd=tmp_path,
                              capture_output=True, text=True, timeout=280)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    lightnets("train", "--model", "mobilenet_v1_x0_25", "--data", "digits", "--epochs", "2",
              "--batch-size", "32", "--optimizer", "adamw", "--lr", "3e-3", "--weight-decay",
              "0", "--no-augment", "--label-smoothing", "0", "--warmup-epochs", "0",
              "--no-progress", "--runs-dir", "runs", "--name", "tiny")
    output = tmp_path / "tiny.int8.pte"
    report = json.loads(lightnets(
        "quantize", "--checkpoint", "runs/tiny/best.pt", "--calib-data", "digits",
        "--calib-size", "64", "--max-drop", "5", "--latency-batch", "1", "--backend",
        "executorch", "--output", str(output), "--json").strip().splitlines()[-1])
    assert report["backend"] == "executorch" and report["passed"] and report["fp32_top1"] > 0.3
    assert abs(report["drop_points"]) < 5
    sidecar = read_sidecar(output)
    assert sidecar.precision == "int8" and sidecar.artefact_format == "executorch"
    digit_png(3)(tmp_path / "three.png")
    assert "three.png" in lightnets("predict", "--checkpoint", str(output), "three.png",
                                    "--top-k", "1")


@pytest.mark.slow  # two lowerings of a small ShuffleNet V2
def test_a_model_executorch_runs_at_one_batch_only_is_written_at_batch_1(tmp_path):
    # ShuffleNet V2's channel shuffle reshape stays outside XNNPACK with the traced batch baked
    # in: its dynamic-batch file fails at any other batch ("Attempted to resize a static tensor")
    from lightnets.export import export_model, load_source
    from lightnets.export.runtimes.executorch_pte import load_pte, planned_batch

    result = export_model(load_source("shufflenet_v2_x0_5", input_size=(3, 64, 64)),
                          "executorch", tmp_path / "m.pte")
    assert result.verification.passed and not result.sidecar.dynamic_batch
    assert result.sidecar.input_size == [1, 3, 64, 64]
    assert read_sidecar(result.path).input_size == [1, 3, 64, 64]
    assert planned_batch(result.path) == 1  # the file itself, not only its sidecar
    # the loader runs other batches one image at a time
    assert tuple(load_pte(result.path)(torch.randn(5, 3, 64, 64)).shape) == (5, 1000)
