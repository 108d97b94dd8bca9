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
from lightnets.export.formats import Written
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


@pytest.mark.slow  # a failed strict export, the hinted one, its lowering and 33 sides run
def test_a_size_torch_export_cannot_prove_is_checked_side_by_side(tmp_path):
    # PSPNet's pooling bins give guards torch.export cannot prove from 32 up (floor divisions):
    # the file is written with the range it narrows itself to and run against the model at
    # every side from the traced one down to 32
    from lightnets.export import export_model, load_source
    from lightnets.export.runtimes.executorch_pte import load_pte

    source = load_source("pspnet_mobilenet_v2", input_size=(3, 64, 64))
    result = export_model(source, "executorch", tmp_path / "m.pte")
    assert result.verification.passed and result.sidecar.dynamic_size
    assert result.sidecar.min_side == read_sidecar(result.path).min_side == 32
    x = torch.randn(2, 3, 37, 45)
    with torch.no_grad():
        torch.testing.assert_close(load_pte(result.path)(x), source.model.eval()(x),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("wrong_below, written", [
    (None, Written(min_side=32)), (41, Written(min_side=41)),
    (65, Written(dynamic_size=False))])
def test_the_smallest_side_is_where_the_file_agrees(monkeypatch, tmp_path, wrong_below,
                                                     written):
    """Where the strict export fails, the recorded side is the smallest from which the file
    agrees with the model at every square side; above the target's size, a fixed size."""
    from lightnets.export.formats import Target
    from lightnets.export.runtimes import executorch_pte

    model = torch.nn.Conv2d(3, 2, 3, padding=1).eval()
    targets = []

    def exported(model, target, hinted_size=False):
        targets.append((target.dynamic_size, hinted_size))
        if target.dynamic_size and not hinted_size:
            raise ValueError("torch.export of Conv2d failed: Constraints violated (height)")

    def run(x):  # the "file": the model, wrong below a side
        with torch.no_grad():
            y = model(x)
        return y + 1 if wrong_below and x.shape[-1] < wrong_below else y

    monkeypatch.setattr(executorch_pte, "exported_program", exported)
    monkeypatch.setattr(executorch_pte, "write_program", lambda *args: None)
    monkeypatch.setattr(executorch_pte, "load_pte", lambda path, threads=None: run)
    target = Target(tmp_path / "m.pte", (3, 64, 64), True, 1, True, 18)
    assert executorch_pte.write_sized(model, target) == written
    fixed = [(False, False)] if written.dynamic_size is False else []
    assert targets == [(True, False), (True, True), *fixed]
