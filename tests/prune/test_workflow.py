"""A prune -> fine-tune run on the digits through the command line, and the pruned checkpoint
in the commands that read checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from lightnets.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lightnets.cli import main
from lightnets.export import export_model, from_checkpoint
from lightnets.registry import create_model
from tests.conftest import DIGITS_RUN


@pytest.fixture(scope="session")
def pruned_run(digits_run, tmp_path_factory):
    """The tiny digits run pruned to 60% of its MACs and fine-tuned for one short epoch."""
    output = tmp_path_factory.mktemp("pruned") / "tiny.pruned.pt"
    assert main(["prune", "--checkpoint", str(digits_run / "last.pt"), "--target-macs", "0.6",
                 "--finetune-epochs", "1", "--limit-train-batches", "2",
                 "--limit-val-batches", "1", "--latency-batch", "--output", str(output),
                 "--no-progress"]) == 0
    return output


@DIGITS_RUN
def test_prune_finetune_writes_a_smaller_checkpoint_and_its_report(pruned_run, capsys):
    report = json.loads(pruned_run.with_suffix(".json").read_text())
    assert 0.5 < report["macs_fraction"] <= 0.6
    assert report["params"] < report["original_params"]
    assert [step["finetune_epochs"] for step in report["steps"]] == [1]
    run_dir = pruned_run.parent / "tiny.pruned"
    assert (run_dir / "curves.png").is_file() and (run_dir / "pruned.pt").is_file()


@DIGITS_RUN
def test_pruned_checkpoint_loads_weights_only_with_identical_outputs(pruned_run):
    raw = torch.load(pruned_run, weights_only=True)  # plain data: no pickled modules
    assert raw["pruning"]["channel_plan"] and raw["pruning"]["method"] == "l1"
    state = load_checkpoint(pruned_run)
    model = state.build_model().eval()
    again = load_checkpoint(pruned_run).build_model().eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert sum(p.numel() for p in model.parameters()) == json.loads(
        pruned_run.with_suffix(".json").read_text())["params"]


@DIGITS_RUN
def test_pruned_checkpoint_exports_and_verifies(pruned_run, tmp_path):
    result = export_model(from_checkpoint(pruned_run), "onnx", tmp_path / "pruned.onnx")
    assert result.verification.passed


@DIGITS_RUN
def test_commands_read_the_pruned_checkpoint(pruned_run, capsys):
    assert main(["eval", "--checkpoint", str(pruned_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 355
    assert main(["summary", "--checkpoint", str(pruned_run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["pruned"]["macs"] < summary["original"]["macs"]
    stem = next(row for row in summary["layers"] if row["name"] == "features.0.conv")
    assert stem["params"] < stem["original_params"]


@DIGITS_RUN
def test_prune_refuses_bad_requests_before_any_work(digits_run, capsys):
    checkpoint = str(digits_run / "last.pt")
    assert main(["prune", "--checkpoint", checkpoint, "--ratio", "0.3", "--iterative", "3",
                 "--finetune-epochs", "2"]) == 2
    assert "cannot give each of the 3 steps an epoch" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["prune", "--checkpoint", checkpoint, "--target-macs", "1.5"])
    assert "expected a fraction between 0 and 1" in capsys.readouterr().err


@DIGITS_RUN
def test_bench_times_a_pruned_checkpoint(pruned_run, capsys):
    assert main(["bench", str(pruned_run), "--repeats", "1", "--warmup", "0", "--input-size",
                 "32", "--peak-size", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["model"].startswith("mobilenet_v2_x0_25 (pruned, ")
    assert result["params"] == json.loads(pruned_run.with_suffix(".json").read_text())["params"]


@DIGITS_RUN
def test_predict_and_quantize_take_the_pruned_checkpoint(pruned_run, tmp_path, capsys):
    from tests.export.test_predict import digit_png

    path, _, _ = digit_png(tmp_path, 0)
    assert main(["predict", "--checkpoint", str(pruned_run), "--json", "--top-k", "3",
                 path]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]["top"]) == 3
    output = tmp_path / "pruned.int8.onnx"
    assert main(["quantize", "--checkpoint", str(pruned_run), "--calib-data", "digits",
                 "--calib-size", "64", "--max-drop", "100", "--latency-batch", "1",
                 "--backend", "onnxruntime", "--output", str(output), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["precision"] == "int8" and report["val_images"] == 355 and output.is_file()


def test_prune_refuses_a_segmenter_in_one_line(tmp_path, capsys):
    model = create_model("lraspp_mobilenet_v3_small", num_classes=3)
    path = save_checkpoint(Checkpoint(
        "lraspp_mobilenet_v3_small", {"num_classes": 3}, model.state_dict(),
        {"input_size": 64, "in_chans": 3, "resize": [64, 64], "mean": [0.5] * 3,
         "std": [0.25] * 3}, ["background", "a", "b"], {"data": "digits-seg"}),
        tmp_path / "seg.pt")
    assert main(["prune", "--checkpoint", str(path), "--target-macs", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "prune takes classifiers" in err and "is a segmenter" in err
    assert len(err.strip().splitlines()) == 1
