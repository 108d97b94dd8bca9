"""AlexNet: torchvision shapes, complexity, the 2012 two-tower network, head, minimum input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightnets
from lightnets.models.alexnet import TWO_TOWER_2012, AlexNet
from lightnets.profile import count_complexity
from tests.models.conftest import assert_meta_torchvision_shapes, assert_reset_keeps_shapes


def test_parameter_shapes_equal_torchvision():
    assert_meta_torchvision_shapes("alexnet", buffers=False)


def test_reset_classifier_keeps_torchvision_shapes():
    assert_reset_keeps_shapes("alexnet")


def test_complexity():
    counts = count_complexity("alexnet")
    assert (counts.params, counts.macs) == (61_100_840, 714_188_480)


def test_alexnet_two_tower_is_the_2012_network():
    with torch.device("meta"):
        model = lightnets.create_model("alexnet", two_tower=True)
    counts = count_complexity(model)
    assert counts.params == 60_965_224  # the paper's "60 million"
    assert counts.params == pytest.approx(60e6, rel=0.02)
    assert counts.macs == 724_406_816
    convs = [m.conv for m in model.features if hasattr(m, "conv")]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.features) == 2


def test_alexnet_two_tower_uses_paper_init():
    torch.manual_seed(0)
    model = AlexNet(TWO_TOWER_2012, num_classes=10, paper_init=True)
    convs = [m.conv for m in model.features if hasattr(m, "conv")]
    assert [c.bias.mean().item() for c in convs] == [0.0, 1.0, 0.0, 1.0, 1.0]
    hidden = [m for m in model.head_hidden if isinstance(m, nn.Linear)]
    assert all(torch.all(m.bias == 1) for m in hidden)
    assert torch.all(model.classifier.bias == 0)
    assert model.classifier.weight.std().item() == pytest.approx(0.01, rel=0.1)


def test_alexnet_head_and_pre_logits():
    with torch.device("meta"):
        model = lightnets.create_model("alexnet", num_classes=5).eval()
    assert model.num_features == 256 and model.drop_rate == 0.5
    features = model.forward_features(torch.empty(1, 3, 224, 224, device="meta"))
    assert features.shape == (1, 256, 6, 6)
    assert model.forward_head(features, pre_logits=True).shape == (1, 4096)
    assert isinstance(model.classifier, nn.Linear) and model.classifier.in_features == 4096
    model.reset_classifier(7)
    assert isinstance(model.classifier, nn.Linear) and model.classifier.out_features == 7
    assert sum(isinstance(m, nn.Dropout) for m in model.head_hidden) == 2


def test_alexnet_minimum_input():
    model = lightnets.create_model("alexnet", num_classes=2).eval()
    assert model.min_input_size == (63, 63)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 63, 63)).shape == (1, 2)
    with pytest.raises(RuntimeError):  # one pixel less really fails inside the trunk
        model.features(torch.randn(1, 3, 62, 62))
