"""``export_model`` and ``lightnets export``: ONNX over the zoo, torch formats, checks, errors."""

from __future__ import annotations

import sys

import pytest
import torch

import lightnets
from lightnets.checkpoint import FORMAT
from lightnets.cli import main
from lightnets.export import (
    MissingDependencyError,
    VerificationError,
    artefact,
    export_model,
    load_source,
    read_sidecar,
)
from lightnets.profile.model_info import golden
from tests.conftest import zoo_params
from tests.export.conftest import zoo_source


# the longest graphs to export and check (5-7 s each on two cores)
DEEP = {"inception_v3", "ghostnet_x1_0", "se_resnet50"}


def heavy_marked(params: list) -> list:
    """Models over 30M parameters (VGG, AlexNet, the deepest ResNets: 8-11 s each, mostly
    writing and loading their weights) and the :data:`DEEP` graphs also get the ``slow`` mark,
    so ``-m 'not slow'`` can leave them out; the default run keeps them."""
    return [pytest.param(*p.values, marks=[*p.marks, pytest.mark.slow], id=p.id)
            if golden(p.values[0]).get("params", 0) > 30e6 or p.values[0] in DEEP else p
            for p in params]


@pytest.mark.parametrize("name", heavy_marked(zoo_params()))
def test_onnx_export_matches_eager_with_dynamic_batch(name, tmp_path):
    result = export_model(zoo_source(name), "onnx", tmp_path / f"{name}.onnx")
    checks = {(c.inputs, c.batch) for c in result.verification.comparisons}
    assert checks == {("random", 3), ("real", 5)}  # neither is the traced batch of 2
    assert result.verification.passed and result.verification.worst.relative < 1e-4
    assert result.path.is_file() and result.sidecar.dynamic_batch


@pytest.mark.parametrize("name", ["shufflenet_v1_g3_x0_5", "mobilenet_v3_small"])
@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_torch_formats_match_eager(name, fmt, tmp_path):
    result = export_model(zoo_source(name), fmt, tmp_path / "model")
    assert result.path.is_file() and result.sidecar.artefact_format == fmt
    assert result.verification.worst.relative < 1e-4


def test_fixed_batch_export(tmp_path):
    result = export_model(zoo_source("squeezenet1_1"), "onnx", tmp_path / "m.onnx",
                          dynamic_batch=False, batch_size=4)
    assert {c.batch for c in result.verification.comparisons} == {4}
    assert result.sidecar.input_size[0] == 4 and not result.sidecar.dynamic_batch


def test_failed_check_is_loud_and_removes_the_file(tmp_path, monkeypatch):
    real_runner = artefact.artefact_runner
    monkeypatch.setattr(artefact, "artefact_runner",
                        lambda *a, **k: (lambda x: real_runner(*a, **k)(x) * 1.01))
    with pytest.raises(VerificationError, match="does not match the eager model"):
        export_model(zoo_source("squeezenet1_1"), "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.onnx.json").exists()


def fake_checkpoint(path, name="squeezenet1_1", classes=("zero", "one", "two")) -> str:
    """A checkpoint in the training package's format, without training. Seeded: unseeded,
    SqueezeNet's last ReLU left one or more classes at zero for every input in 4 of 6 draws
    (all three in one CI run), and a check of outputs that are all zero compares nothing."""
    with torch.random.fork_rng():
        torch.manual_seed(1)  # no class dead (seeds 0, 2, 3 and 4 leave one or two dead)
        model = lightnets.create_model(name, num_classes=len(classes), in_chans=1)
    torch.save({"format": FORMAT, "model_name": name,
                "model_args": {"num_classes": len(classes), "in_chans": 1},
                "model": model.state_dict(), "class_names": list(classes),
                "preprocess": {"input_size": 40, "in_chans": 1, "resize": [40, 40],
                               "mean": [0.3], "std": [0.4]},
                "config": {"data": "digits", "val_fraction": 0.2, "seed": 0},
                "epoch": 1, "best_top1": 0.5}, path)
    return str(path)


def test_export_checkpoint_on_the_command_line(tmp_path, capsys):
    checkpoint = fake_checkpoint(tmp_path / "best.pt")
    assert main(["export", "--checkpoint", checkpoint, "--latency", "1", "2"]) == 0
    out = capsys.readouterr().out
    assert "check passed" in out and "real inputs, batch 5" in out
    assert "latency at batch 2" in out
    sidecar = read_sidecar(tmp_path / "best.onnx")
    assert sidecar.class_names == ["zero", "one", "two"]
    assert sidecar.input_size == [1, 40, 40] and sidecar.preprocess["mean"] == [0.3]
    assert sidecar.checkpoint == checkpoint and sidecar.model_args["in_chans"] == 1


def test_checkpoint_input_size_override_rescales_the_preprocessing(tmp_path):
    source = load_source(checkpoint=fake_checkpoint(tmp_path / "best.pt"), input_size=64)
    assert source.input_size == (1, 64, 64)
    assert source.preprocess["input_size"] == 64 and source.preprocess["resize"] == [64, 64]


@pytest.mark.parametrize("argv, expected", [
    (["--model", "squeezenet1_1", "--format", "paddle"], "unsupported format 'paddle'"),
    (["--checkpoint", "{tmp}/missing.pt"], "not found"),
    (["--checkpoint", "{tmp}/garbage.pt"], "cannot read checkpoint"),
    (["--checkpoint", "{tmp}/notours.pt"], "not a lightnets checkpoint"),
    (["--model", "squeezenet1_1", "--input-size", "8"], "below the model's minimum"),
    (["--model", "no_such_net"], "unknown model"),
])
def test_export_errors_are_one_line(argv, expected, tmp_path, capsys):
    (tmp_path / "garbage.pt").write_text("not a checkpoint")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "notours.pt")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["export", *argv, "--output", str(tmp_path / "m.onnx")]) == 2
    assert expected in capsys.readouterr().err


def test_missing_onnxruntime_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert main(["export", "--model", "squeezenet1_1", "--input-size", "32",
                 "--output", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "needs onnxruntime, which is not installed" in err and "pip install" in err
    with pytest.raises(MissingDependencyError, match=r"pip install 'lightnets\[export\]'"):
        export_model(zoo_source("squeezenet1_1"), "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()  # refused before exporting
