"""Training, evaluation and prediction end to end on tiny runs (a few steps of the smallest
MobileNetV2), plus resume equivalence, NaN handling, checkpoints and one-line errors."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from test_data import add_corrupt_files, make_image_tree

from lightnets.checkpoint import FORMAT, load_checkpoint
from lightnets.cli import main
from lightnets.data import eval_transform
from lightnets.data.digits import digits_split
from lightnets.export import predict
from lightnets.train import NonFiniteLossError, TrainConfig, loop, train

TINY = ["--model", "mobilenet_v2_x0_25", "--batch-size", "32", "--limit-train-batches", "3",
        "--limit-val-batches", "2", "--no-progress"]


def tiny_config(tmp_path, **changes) -> TrainConfig:
    return dataclasses.replace(
        TrainConfig(model="mobilenet_v2_x0_25", epochs=2, batch_size=32, limit_train_batches=3,
                    limit_val_batches=1, progress=False, runs_dir=str(tmp_path)), **changes)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A two-epoch tiny digits run made through the command line."""
    runs = tmp_path_factory.mktemp("runs")
    assert main(["train", *TINY, "--epochs", "2", "--runs-dir", str(runs), "--name", "tiny"]) == 0
    return runs / "tiny"


def digit_png(folder, index: int) -> tuple[str, torch.Tensor, int]:
    """A validation digit saved as an 8x8 grey PNG; returns the path, the tensor and label."""
    _, (images, labels) = digits_split()
    path = folder / f"digit{index}.png"
    Image.fromarray((images[index, 0].numpy() * 255).round().astype(np.uint8), "L").save(path)
    return str(path), images[index], int(labels[index])


def test_train_writes_the_run_folder(digits_run):
    assert sorted(p.name for p in digits_run.iterdir()) == [
        "best.pt", "config.json", "curves.png", "last.pt", "metrics.csv"]
    config = json.loads((digits_run / "config.json").read_text())
    assert (config["epochs"], config["input_size"], config["in_chans"], config["optimizer"]) == (
        2, 32, 1, "sgd")  # the digits defaults filled in
    assert config["precise_bn_batches"] == 0  # MobileNetV2's BatchNorm averages at 0.1
    assert config["amp"] == "off"  # 32x32 inputs: bf16 autocast gains nothing on a CPU
    assert config["class_names"] == [str(d) for d in range(10)] and config["world_size"] == 1
    rows = list(csv.DictReader((digits_run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for row in rows:
        assert math.isfinite(float(row["train_loss"])) and 0 <= float(row["val_top1"]) <= 1
        assert float(row["val_top1"]) <= float(row["val_top5"])
    assert (digits_run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_checkpoint_holds_everything_as_plain_data(digits_run):
    raw = torch.load(digits_run / "last.pt", weights_only=True)  # no pickled code inside
    assert raw["format"] == FORMAT and raw["model_name"] == "mobilenet_v2_x0_25"
    assert raw["model_args"] == {"num_classes": 10, "in_chans": 1} and raw["epoch"] == 2
    for key in ("model", "optimizer", "scheduler", "scaler", "config", "preprocess", "history"):
        assert key in raw
    assert isinstance(raw["rng"]["torch"], torch.Tensor)
    assert raw["preprocess"]["resize"] == [32, 32] and raw["class_names"][3] == "3"


def test_eval_json_and_table(digits_run, capsys, tmp_path):
    png = tmp_path / "confusion.png"
    assert main(["eval", "--checkpoint", str(digits_run), "--json", "--limit-batches", "2",
                 "--batch-size", "64", "--confusion", str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["top1"] <= result["top5"] <= 1 and result["loss"] > 0
    assert result["count"] == 128 and sorted(result["per_class"]) == [str(d) for d in range(10)]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", "--checkpoint", str(digits_run / "last.pt"), "--limit-batches", "1"]) == 0
    out = capsys.readouterr().out
    assert "per-class accuracy" in out and "top-1" in out
    assert (digits_run / "confusion-val.png").exists()
    (digits_run / "confusion-val.png").unlink()  # keep the run folder as the other tests expect


def test_predict_uses_the_training_preprocessing(digits_run, tmp_path, capsys):
    paths = [digit_png(tmp_path, i) for i in range(3)]
    assert main(["predict", "--checkpoint", str(digits_run), "--json", "--top-k", "3",
                 *[p for p, _, _ in paths]]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == [p for p, _, _ in paths]
    for result in results:
        probabilities = [t["probability"] for t in result["top"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= 1 + 1e-6
        assert all(t["class"] == str(t["index"]) for t in result["top"])
    # a digit read from a PNG is preprocessed as the same digit in training is
    state = load_checkpoint(digits_run)
    transform = eval_transform(state.preprocess)
    path, tensor, _ = paths[0]
    from_file = transform(Image.open(path).convert("L"))
    assert torch.allclose(from_file, transform(tensor), atol=0.02)
    assert main(["predict", "--checkpoint", str(digits_run), paths[1][0]]) == 0
    assert "digit1.png:" in capsys.readouterr().out
    assert len(predict(digits_run / "best.pt", [Image.open(path)], top_k=20)[0].top) == 10


def test_predict_backends_agree(digits_run, tmp_path, capsys):
    images = [digit_png(tmp_path, i)[0] for i in range(4)]
    eager = predict(digits_run, images, top_k=3, device="cpu")
    exported = predict(digits_run, images, top_k=3, backend="onnxruntime")
    for ours, theirs in zip(eager, exported):
        assert [i for _, i, _ in ours.top] == [i for _, i, _ in theirs.top]
        assert [p for _, _, p in ours.top] == pytest.approx([p for _, _, p in theirs.top],
                                                            abs=1e-4)
    with pytest.raises(SystemExit):
        main(["predict", "--checkpoint", str(digits_run), "--backend", "tflite", images[0]])
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


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


def test_resume_ends_with_the_same_weights(tmp_path, monkeypatch):
    config = tiny_config(tmp_path)
    train(dataclasses.replace(config, name="straight"))

    real_save = loop.save_checkpoint

    def save_then_die(payload, path):  # killed right after the first epoch's checkpoint
        real_save(payload, path)
        if path.name == "last.pt":
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(dataclasses.replace(config, name="killed"))
    monkeypatch.undo()
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
    real = loop.classification_loss
    calls = {"count": 0}

    def poisoned(*args, **kwargs):
        calls["count"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["count"] > good_steps else loss

    monkeypatch.setattr(loop, "classification_loss", poisoned)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    poison_loss_after(monkeypatch, good_steps=3)  # epoch 1 is 3 steps
    with pytest.raises(NonFiniteLossError, match="loss became nan at epoch 2 step 1") as error:
        train(tiny_config(tmp_path, name="nan"))
    last = tmp_path / "nan" / "last.pt"
    assert f"last good checkpoint is {last} (epoch 1)" in str(error.value)
    kept = load_checkpoint(last)
    assert kept.epoch == 1
    assert all(torch.isfinite(t).all() for t in kept.model.values() if t.is_floating_point())


def test_nan_loss_on_the_command_line_is_one_line(tmp_path, monkeypatch, capsys):
    poison_loss_after(monkeypatch, good_steps=1)
    assert main(["train", *TINY, "--epochs", "1", "--runs-dir", str(tmp_path)]) == 2
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


class Payload:
    """Pickled by reference: ``torch.load(weights_only=True)`` must refuse it."""


def test_wrong_checkpoints_are_refused(digits_run, tmp_path, capsys):
    assert main(["train", "--resume", str(digits_run), "--model", "mobilenet_v2_x0_5"]) == 2
    assert "holds a mobilenet_v2_x0_25, not a mobilenet_v2_x0_5" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(digits_run), str(tmp_path / "none.png")]) == 2
    assert "not found" in capsys.readouterr().err
    again = ["train", *TINY, "--epochs", "1", "--name", "again", "--runs-dir", str(tmp_path)]
    assert main(again) == 0
    assert main(again) == 2
    assert "already holds a run" in capsys.readouterr().err

    torch.save({"format": FORMAT, "payload": Payload()}, tmp_path / "code.pt")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "code.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a lightnets checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_teacher_must_match_the_student_data(digits_run, tmp_path, capsys):
    data = make_image_tree(tmp_path / "shapes", per_class=4)
    assert main(["train", "--data", str(data), "--teacher", str(digits_run), "--input-size", "32",
                 "--batch-size", "4",
                 "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "teacher" in err and "trained for 10 classes, the data has 3" in err


def test_distillation_from_a_teacher_checkpoint(digits_run, tmp_path, monkeypatch):
    seen = []
    real = loop.distillation_loss

    def spy(student, teacher, temperature):
        seen.append((student.shape, teacher.shape, temperature))
        return real(student, teacher, temperature)

    monkeypatch.setattr(loop, "distillation_loss", spy)
    result = train(tiny_config(tmp_path, name="student", epochs=1, model="mobilenet_v2_x0_35",
                               teacher=str(digits_run), distill_temperature=2.0))
    assert len(seen) == 3 and seen[0] == (torch.Size([32, 10]), torch.Size([32, 10]), 2.0)
    assert math.isfinite(result.history[0]["train_loss"])
