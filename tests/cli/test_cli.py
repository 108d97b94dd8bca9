"""The command line: version, list, and one-line errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import lightnets
from lightnets.cli import build_parser, main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as stop:
        assert stop.code == 0
    assert capsys.readouterr().out.strip() == f"lightnets {lightnets.__version__}"


def test_list_pattern_shows_table(capsys):
    assert main(["list", "mobilenet_v2*"]) == 0
    out = capsys.readouterr().out
    for name in lightnets.list_models("mobilenet_v2*"):
        assert name in out
    assert "3.50M" in out and "300.77M" in out and "MobileNetV2" in out


def test_list_by_task(capsys):
    assert main(["list", "--task", "segmentation", "lraspp*"]) == 0
    out = capsys.readouterr().out
    assert "lraspp_mobilenet_v3_large" in out and "segmentation" in out and "3.22M" in out
    assert "2.09G" in out and "3x520x520" in out
    assert main(["list", "--task", "classification", "lraspp*"]) == 2
    assert "no classification model matches" in capsys.readouterr().err
    assert main(["list", "--markdown", "--task", "segmentation", "lraspp_mobilenet_v3_*"]) == 0
    out = capsys.readouterr().out
    assert "published mIoU" in out and "| 57.9 |" in out


def test_list_json(capsys):
    assert main(["list", "mobilenet_v2_x1_0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["params"] == 3_504_872 and rows[0]["aliases"] == ["mobilenet_v2"]


def test_list_no_match_is_one_line_error(capsys):
    assert main(["list", "no_such_net*"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no_such_net" in err and "\n" not in err


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "lightnets", "list", "mobilenet_v2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "mobilenet_v2_x1_0" in done.stdout


def test_train_help_lists_every_kind_of_data_per_task():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = commands.choices["train"]
    data_help = next(a.help for a in train._actions if "--data" in a.option_strings)
    for task, kinds in [("classifiers:", ("'digits'", "image folder", "CIFAR-10/100")),
                        ("segmenters:", ("'digits-seg'", "SegmentationClass/", "masks/")),
                        ("detectors:", ("'digits-det'", "COCO folder", "annotations.json",
                                        "Annotations/"))]:
        assert task in data_help, task
        for kind in kinds:
            assert kind in data_help.split(task)[1], (task, kind)
    assert "detectors:" in train.format_help()
