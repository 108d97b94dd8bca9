"""MobileNetV3 Large and Small: torchvision equality, the head, block details, bad arguments."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import lightnets
from lightnets.models.mobilenet_v3 import LARGE, LARGE_HEAD, MobileNetV3
from lightnets.registry import meta_model
from tests.models.conftest import assert_meta_torchvision_shapes


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "mobilenet_v3_small"])
@pytest.mark.parametrize("width_mult", [1.0, 0.75, 0.35])
def test_mobilenet_v3_has_torchvision_parameter_shapes(name, width_mult):
    assert_meta_torchvision_shapes(name, width_mult=width_mult)


def test_mobilenet_v3_small_computes_torchvision_function():
    torch.manual_seed(0)
    theirs = torchvision.models.mobilenet_v3_small().eval()
    ours = lightnets.create_model("mobilenet_v3_small").eval()
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values())))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("name, pooled, hidden", [("mobilenet_v3_large", 960, 1280),
                                                  ("mobilenet_v3_small", 576, 1024)])
def test_mobilenet_v3_head(name, pooled, hidden):
    model = lightnets.create_model(name, num_classes=10).eval()
    assert model.num_features == pooled and model.feature_info[-1]["num_chs"] == pooled
    fully_connected = model.head_hidden[0]
    assert isinstance(fully_connected, nn.Linear) and fully_connected.out_features == hidden
    assert model.head_drop.p == 0.2
    norm = model.features[1].depthwise.norm
    assert (norm.eps, norm.momentum) == (0.001, 0.01)
    x = torch.randn(2, pooled, 1, 1)
    assert model.forward_head(x, pre_logits=True).shape == (2, hidden)
    hidden_layer = model.head_hidden
    model.reset_classifier(3)
    assert model.head_hidden is hidden_layer and model.classifier.in_features == hidden
    assert model.forward_head(x).shape == (2, 3)


def test_mobilenet_v3_expansion_skipped_when_mid_equals_in():
    model = meta_model("mobilenet_v3_large")
    assert isinstance(model.features[1].expand, nn.Identity)  # row 1: 16 -> exp 16
    assert not isinstance(model.features[2].expand, nn.Identity)
    se = model.features[4].se  # row 4: exp 72 with SE -> 24 reduced (72 / 4 rounded to 8)
    assert se.fc1.out_channels == 24 and isinstance(se.gate, nn.Hardsigmoid)


def test_mobilenet_v3_bad_arguments():
    with pytest.raises(ValueError, match="width_mult"):
        lightnets.create_model("mobilenet_v3_small", width_mult=0)
    with pytest.raises(ValueError, match="non-linearity"):
        MobileNetV3([(3, 16, 16, False, "GELU", 1)], LARGE_HEAD)
    assert len(LARGE) == 15
