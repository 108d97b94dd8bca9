"""``lightnets train --config FILE``: a run's own config.json repeats it, a YAML file is read
under the command line's options, and bad files are one-line errors before any work."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from lightnets.checkpoint import load_checkpoint
from lightnets.cli import build_parser, main
from lightnets.cli.train import config_from_args
from tests.conftest import TINY_TRAIN


def config_of(argv: list[str]):
    return config_from_args(build_parser().parse_args(["train", *argv]))


@pytest.mark.slow
def test_a_runs_own_config_json_reproduces_it(tmp_path):
    runs = tmp_path / "runs"
    assert main(["train", *TINY_TRAIN, "--epochs", "1", "--accumulate", "2", "--workers", "0",
                 "--runs-dir", str(runs), "--name", "first"]) == 0
    # the record of a run leaves out its folder: the repeat takes a new one
    assert main(["train", "--config", str(runs / "first" / "config.json")]) == 0
    repeat = runs / "mobilenet_v2_x0_25-digits"
    first, second = (load_checkpoint(folder / "last.pt") for folder in (runs / "first", repeat))
    # config.json records the device and precision the first run resolved, and the repeat
    # runs with them
    assert second.config == {**first.config, "name": repeat.name, "device": "cpu", "amp": "off"}
    for key, tensor in first.model.items():
        assert torch.equal(tensor, second.model[key]), key


def test_yaml_file_under_command_line_options(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("model: mobilenet_v2_x0_5\nepochs: 7\nlr: 1\nmodel_ema: true\n"
                    "model_args:\n  drop_rate: 0.2\n  width_mult: 0.5\n")
    config = config_of(["--config", str(path), "--epochs", "3", "--model-arg", "drop_rate=0.1"])
    assert (config.model, config.epochs, config.lr, config.model_ema) == (
        "mobilenet_v2_x0_5", 3, 1, True)
    assert config.model_args == {"drop_rate": 0.1, "width_mult": 0.5}
    assert config_of(["--config", str(path), "--no-model-ema"]).model_ema is False


@pytest.mark.parametrize("text, expected", [
    ('{"epochs": 2, "colour": "red", "bogus": 1}', "unknown key(s) bogus, colour"),
    ('{"epochs": "ten"}', "epochs must be int, got 'ten'"),
    ('{"model_ema": 1}', "model_ema must be bool, got 1"),
    ('[1, 2]', "must hold a mapping of TrainConfig keys, got a list"),
    ('{"epochs": ', "cannot read config file"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, text, expected):
    path = tmp_path / "config.json"
    path.write_text(text)
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1


def test_missing_file_and_missing_yaml_package(tmp_path, capsys, monkeypatch):
    assert main(["train", "--config", str(tmp_path / "none.json")]) == 2
    assert "not found" in capsys.readouterr().err
    path = tmp_path / "recipe.yml"
    path.write_text("epochs: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "pyyaml" in err and "lightnets[train]" in err


def test_float_fields_take_integers_and_recorded_amp_names(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"lr": 1, "amp": "bfloat16", "task": "classification",
                                "name": "old", "num_classes": 10}))
    config = config_of(["--config", str(path)])
    assert (config.lr, config.amp, config.name) == (1, "bf16", None)
