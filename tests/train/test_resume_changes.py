"""What ``--resume`` may change: where the run runs and what it shows, and (only upwards) its
length. Every other change is refused with one line, and ``config.json`` says what really ran."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from lightnets.checkpoint import load_checkpoint, save_checkpoint
from lightnets.cli import main
from lightnets.train import TrainConfig, train
from lightnets.train.config import RESUME_MAY_CHANGE
from tests.conftest import DIGITS_RUN


@pytest.fixture
def run(digits_run, tmp_path):
    """A copy of the two-epoch digits run (SGD, lr 0.02), to resume."""
    return shutil.copytree(digits_run, tmp_path / "run")


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    return err


@DIGITS_RUN
@pytest.mark.parametrize("argv, refused", [
    (["--lr", "0.5"], "lr 0.02 -> 0.5"),
    (["--optimizer", "adamw"], "optimizer 'sgd' -> 'adamw'"),  # was `error: step`
    (["--weight-decay", "0.1", "--label-smoothing", "0.2"],
     "weight_decay 5e-05 -> 0.1, label_smoothing 0.1 -> 0.2"),
    (["--batch-size", "16"], "batch_size 32 -> 16"),
    (["--data", "/elsewhere"], "data 'digits' -> '/elsewhere'"),
])
def test_changes_that_would_not_be_used_are_refused(run, capsys, argv, refused):
    before = (run / "config.json").read_text(), (run / "last.pt").read_bytes()
    assert main(["train", "--resume", str(run), *argv]) == 2
    err = one_line_error(capsys)
    assert f"cannot change {refused}" in err and "start a new run" in err
    assert before == ((run / "config.json").read_text(), (run / "last.pt").read_bytes())


@DIGITS_RUN
def test_fewer_epochs_than_done_and_another_folder_are_refused(run, capsys):
    assert main(["train", "--resume", str(run), "--epochs", "1"]) == 2
    assert "--epochs 1 is fewer than the 2 epochs" in one_line_error(capsys)
    assert main(["train", "--resume", str(run), "--name", "other"]) == 2
    assert "drop --name and --runs-dir" in one_line_error(capsys)
    with pytest.raises(ValueError, match="cannot change lr"):  # the same rule from Python
        train(TrainConfig(resume=str(run), lr=0.5))


@DIGITS_RUN
def test_a_finished_run_has_nothing_left_to_do(run, capsys):
    before = (run / "last.pt").read_bytes()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "has trained all its 2 epochs; nothing left to do" in capsys.readouterr().out
    assert (run / "last.pt").read_bytes() == before


@DIGITS_RUN
def test_allowed_changes_apply_and_config_says_what_ran(run, capsys):
    stored = json.loads((run / "config.json").read_text())
    assert {"epochs", "device", "workers"} <= set(RESUME_MAY_CHANGE)
    # --lr equal to the stored value is no change; more epochs extend the run
    assert main(["train", "--resume", str(run), "--epochs", "3", "--lr", "0.02", "--device",
                 "cpu", "--workers", "0", "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["epochs"] == 3
    ran = json.loads((run / "config.json").read_text())
    assert ran["epochs"] == 3 and ran["device"] == "cpu" and ran["workers"] == 0
    assert ran["name"] == "run" and ran["runs_dir"] == str(run.parent)  # the copy's folder
    changed = {"epochs", "device", "workers", "progress", "name", "runs_dir"}
    assert {k: v for k, v in ran.items() if k not in changed} == {
        k: v for k, v in stored.items() if k not in changed}  # lr, optimizer... as stored
    resumed = load_checkpoint(run / "last.pt")
    assert resumed.epoch == 3 and resumed.config["epochs"] == 3 and len(resumed.history) == 3


@DIGITS_RUN
def test_a_damaged_state_is_one_line_naming_the_part(run, capsys):
    state = torch.load(run / "last.pt", weights_only=True)
    del state["rng"]["torch"]  # was `error: torch`
    save_checkpoint(state, run / "last.pt")
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 2
    err = one_line_error(capsys)
    assert "the rng state in checkpoint" in err and "(no 'torch' entry)" in err
