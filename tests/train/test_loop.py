"""The training loop on tiny runs: run folder, resume, NaN losses, auxiliary heads, errors."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightnets import registry
from lightnets.checkpoint import load_checkpoint
from lightnets.cli import main
from lightnets.models.base import Classifier, stage_info
from lightnets.tasks import classification
from lightnets.train import (NonFiniteLossError, TrainConfig, evaluate, loop, train,
                             train_epochs)
from tests.conftest import DIGITS_RUN, TINY_TRAIN, add_corrupt_files, make_image_tree
from tests.train.conftest import tiny_config, train_killed_after_first_epoch


@DIGITS_RUN
def test_train_writes_the_run_folder(digits_run):
    assert sorted(p.name for p in digits_run.iterdir()) == [
        "best.pt", "config.json", "curves.png", "last.pt", "metrics.csv"]
    config = json.loads((digits_run / "config.json").read_text())
    assert (config["epochs"], config["input_size"], config["in_chans"], config["optimizer"]) == (
        2, 32, 1, "sgd")  # the digits defaults filled in
    # MobileNetV2's BatchNorm averages at 0.1, which lags over epochs of 3 steps
    assert config["precise_bn_batches"] == loop.PRECISE_BN_BATCHES
    assert config["amp"] == "off"  # 32x32 inputs: bf16 autocast gains nothing on a CPU
    assert config["class_names"] == [str(d) for d in range(10)] and config["world_size"] == 1
    rows = list(csv.DictReader((digits_run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for row in rows:
        assert math.isfinite(float(row["train_loss"])) and 0 <= float(row["val_top1"]) <= 1
        assert float(row["val_top1"]) <= float(row["val_top5"])
    assert (digits_run / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_folder_end_to_end_with_corrupt_files(tmp_path, capsys):
    data = make_image_tree(tmp_path / "shapes", per_class=8)
    bad = add_corrupt_files(data)
    runs = tmp_path / "runs"
    assert main(["train", "--data", str(data), "--model", "mobilenet_v2_x0_25", "--epochs", "1",
                 "--batch-size", "8", "--input-size", "32", "--workers", "0", "--no-progress",
                 "--runs-dir", str(runs), "--name", "shapes"]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped 2 unreadable image file(s)") == 1
    assert all(str(p) in err for p in bad)
    assert main(["eval", "--checkpoint", str(runs / "shapes"), "--json", "--workers", "0"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["count"] == 6 and set(result["per_class"]) == {"blue", "green", "red"}
    assert main(["predict", "--checkpoint", str(runs / "shapes"), "--json",
                 str(data / "red" / "0.png")]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    assert {t["class"] for t in top} == {"blue", "green", "red"}
    # the digits checkpoint does not fit three classes
    assert main(["eval", "--checkpoint", str(runs / "shapes"), "--data", "digits"]) == 2
    assert "trained for 3 classes, the data has 10" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_ends_with_the_same_weights(tmp_path, monkeypatch):
    config = tiny_config(tmp_path)
    train(dataclasses.replace(config, name="straight"))

    train_killed_after_first_epoch(dataclasses.replace(config, name="killed"), monkeypatch)
    assert load_checkpoint(tmp_path / "killed" / "last.pt").epoch == 1
    train(TrainConfig(resume=str(tmp_path / "killed")))

    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    resumed = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert resumed.epoch == 2
    for name, tensor in straight.model.items():
        assert torch.equal(tensor, resumed.model[name]), name
    losses = [[row["train_loss"] for row in ckpt.history] for ckpt in (straight, resumed)]
    assert losses[0] == losses[1]


def poison_loss_after(monkeypatch, good_steps: int) -> None:
    real = classification.classification_loss
    calls = {"count": 0}

    def poisoned(*args, **kwargs):
        calls["count"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["count"] > good_steps else loss

    monkeypatch.setattr(classification, "classification_loss", poisoned)


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    poison_loss_after(monkeypatch, good_steps=3)  # epoch 1 is 3 steps
    with pytest.raises(NonFiniteLossError, match="loss became nan at epoch 2 step 1") as error:
        train(tiny_config(tmp_path, name="nan"))
    last = tmp_path / "nan" / "last.pt"
    assert f"last good checkpoint is {last} (epoch 1)" in str(error.value)
    kept = load_checkpoint(last)
    assert kept.epoch == 1
    assert all(torch.isfinite(t).all() for t in kept.model.values() if t.is_floating_point())


@pytest.mark.slow
def test_nan_loss_on_the_command_line_is_one_line(tmp_path, monkeypatch, capsys):
    poison_loss_after(monkeypatch, good_steps=1)
    assert main(["train", *TINY_TRAIN, "--epochs", "1", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: loss became nan at epoch 1 step 2") and "\n" not in err
    assert "no checkpoint was written" in err


@pytest.mark.parametrize("argv, expected", [
    (["train", "--model", "no_such_net"], "unknown model 'no_such_net'"),
    (["train", "--epochs", "0"], "epochs must be at least 1"),
    (["train", "--lr", "-1"], "lr must be positive"),
    (["train", "--data", "/no/such/folder"], "no such folder"),
    (["train", "--input-size", "16"], "needs inputs of at least 32x32"),
    (["train", "--resume", "/no/such/run"], "not found"),
    (["train", "--model-arg", "num_classes=3"], "cannot set num_classes"),
    (["train", "--amp", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
    (["eval", "--checkpoint", "/no/such.pt"], "not found"),
    (["train", "--freeze-backbone-epochs", "1"], "needs pretrained weights"),
    (["train", "--pretrained", "/no/such.pth"], "not found"),
])
def test_bad_arguments_are_one_line_errors(argv, expected, tmp_path, capsys):
    if argv[0] == "train":
        argv = [*argv, "--runs-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and expected in err and "\n" not in err
    assert not (tmp_path / "mobilenet_v2-digits").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_request_without_cuda(capsys, tmp_path):
    assert main(["train", "--device", "cuda", "--runs-dir", str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


@DIGITS_RUN
def test_wrong_checkpoints_are_refused(digits_run, tmp_path, capsys):
    assert main(["train", "--resume", str(digits_run), "--model", "mobilenet_v2_x0_5"]) == 2
    assert "holds a mobilenet_v2_x0_25, not a mobilenet_v2_x0_5" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(digits_run), str(tmp_path / "none.png")]) == 2
    assert "not found" in capsys.readouterr().err
    again = ["train", *TINY_TRAIN, "--epochs", "1", "--name", "again", "--runs-dir", str(tmp_path)]
    assert main(again) == 0
    assert main(again) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_aux_logits_enter_the_loss_with_their_weight():
    torch.manual_seed(0)
    logits, aux = torch.randn(4, 5), [torch.randn(4, 5), torch.randn(4, 5)]
    labels = torch.tensor([0, 1, 2, 3])
    expected = F.cross_entropy(logits, labels) + 0.3 * sum(F.cross_entropy(a, labels) for a in aux)
    assert torch.allclose(classification.classification_loss(logits, aux, labels, 0.3, 0.0),
                          expected)
    assert torch.allclose(classification.classification_loss(logits, [], labels, 0.3, 0.0),
                          F.cross_entropy(logits, labels))


class TinyAuxNet(Classifier):
    """A two-conv net with one auxiliary head, as GoogLeNet/Inception v3 have."""

    family, min_input_size, aux_loss_weight = "test", (8, 8), 0.3

    def __init__(self, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0,
                 aux_logits: bool = False):
        super().__init__(num_classes, in_chans, drop_rate)
        self.features = nn.Sequential(nn.Conv2d(in_chans, 8, 3, 2, 1), nn.BatchNorm2d(8),
                                      nn.ReLU())
        self.feature_info = [stage_info(8, 2, "features")]
        self.aux = (nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))
                    if aux_logits else None)
        self.build_head(8)

    def forward(self, x, return_aux=False):
        features = self.forward_features(x)
        logits = self.forward_head(features)
        if not return_aux:
            return logits
        return logits, ([self.aux(features)] if self.training and self.aux else [])


def test_training_switches_on_and_uses_auxiliary_heads(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._BUILDERS, "tiny_aux_net", lambda **kw: TinyAuxNet(**kw))
    seen = []
    real = classification.classification_loss

    def spy(logits, aux_logits, labels, aux_weight, smoothing):
        seen.append((len(aux_logits), aux_weight))
        return real(logits, aux_logits, labels, aux_weight, smoothing)

    monkeypatch.setattr(classification, "classification_loss", spy)
    result = train(tiny_config(tmp_path, model="tiny_aux_net", epochs=1, batch_size=16,
                               input_size=16, limit_train_batches=2))
    assert seen == [(1, 0.3), (1, 0.3)]
    assert load_checkpoint(result.last_checkpoint).model_args["aux_logits"] is True
    seen.clear()  # unless the user turns them off
    train(tiny_config(tmp_path, model="tiny_aux_net", epochs=1, batch_size=16, input_size=16,
                      limit_train_batches=1, model_args={"aux_logits": False}))
    assert seen == [(0, 0.3)]


@pytest.mark.slow
def test_epoch_by_epoch_run_and_eval_repeats_its_validation(tmp_path):
    data = make_image_tree(tmp_path / "shapes", per_class=8, size=72)
    run = train_epochs(TrainConfig(model="mobilenet_v2_x0_25", data=str(data), epochs=2,
                                   batch_size=8, input_size=64, workers=0, progress=False,
                                   runs_dir=str(tmp_path)))
    rows = [next(run), next(run)]
    with pytest.raises(StopIteration) as finished:
        next(run)
    result = finished.value.value  # the generator's return value
    assert result.history == rows and [row["epoch"] for row in rows] == [1, 2]
    assert json.loads((result.run_dir / "config.json").read_text())["channels_last"] is True
    # `lightnets eval` validates as training did (channels-last here): the same figures exactly
    again = evaluate(result.last_checkpoint, workers=0)
    assert (again.top1, again.loss) == (rows[-1]["val_top1"], rows[-1]["val_loss"])
