"""Bad model arguments and inputs are one-line errors naming what was wrong and what was
expected: arguments are checked against the types their builders declare, inputs against the
dtype the network computes in."""

from __future__ import annotations

import pytest
import torch

import lightnets
from lightnets.cli import main
from lightnets.registry import _BUILDERS, declared_types, task_of


@pytest.mark.parametrize("name, args, message", [
    ("mobilenet_v2", {"width_mult": "abc"}, "width_mult must be a number, got 'abc'"),
    ("mobilenet_v2", {"width_mult": float("nan")}, "width_mult must be a finite number, got nan"),
    ("mobilenet_v2", {"width_mult": True}, "width_mult must be a number, got True"),
    ("shufflenet_v1", {"groups": 2.5}, "groups must be an integer, got 2.5"),
    ("resnet18", {"stride_in_1x1": 1}, "stride_in_1x1 must be True or False, got 1"),
    ("resnet18", {"act_layer": "relu"}, r"act_layer must be a Callable \(not a string\)"),
    ("mobilenet_v2", {"num_classes": "10"}, "num_classes must be an integer, got '10'"),
])
def test_model_arguments_are_checked_against_their_declared_types(name, args, message):
    with pytest.raises(ValueError, match=rf"^{name}: {message}"):
        lightnets.create_model(name, **args)


def test_every_builder_declares_its_arguments():
    # the check reads these; a builder whose annotations stop resolving would lose it silently
    # (segmenters pass their arguments on to create_segmenter: not declared on the builder)
    for name, builder in _BUILDERS.items():
        if task_of(name) != "classification":
            continue
        declared = declared_types(builder)
        assert declared.get("num_classes") is int and declared.get("in_chans") is int, name


def test_model_arg_on_the_command_line(tmp_path, capsys):
    assert main(["train", "--model", "mobilenet_v2_x0_25", "--model-arg", "width_mult=abc",
                 "--runs-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "error: mobilenet_v2_x0_25: width_mult must be a number, got 'abc'\n")
    assert not list(tmp_path.iterdir())


def test_integer_pixels_are_refused_with_the_expected_dtype():
    model = lightnets.create_model("mobilenet_v2_x0_25", num_classes=3).eval()
    with pytest.raises(ValueError, match=r"expects a floating-point input .* got torch.uint8"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    backbone = lightnets.features.create_backbone("mobilenet_v2_x0_25")
    with pytest.raises(ValueError, match="got torch.int64"):
        backbone(torch.zeros(1, 3, 32, 32, dtype=torch.long))
