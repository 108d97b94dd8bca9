"""VGG: torchvision shapes, complexity, feature taps before each pool, norms, a tiny config."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightnets
from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.models.vgg import VGG
from lightnets.profile import count_complexity
from tests.models.conftest import assert_meta_torchvision_shapes, assert_reset_keeps_shapes

TORCHVISION_NAMES = ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn",
                     "vgg19_bn"]


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_parameter_shapes_equal_torchvision(name):
    assert_meta_torchvision_shapes(name, buffers=False)


def test_reset_classifier_keeps_torchvision_shapes():
    assert_reset_keeps_shapes("vgg16")


@pytest.mark.parametrize("name,params,macs", [
    ("vgg16", 138_357_544, 15_470_264_320),
    ("vgg19_bn", 143_678_248, 19_632_062_464),
])
def test_complexity(name, params, macs):
    counts = count_complexity(name)
    assert (counts.params, counts.macs) == (params, macs)


def test_vgg_feature_info_is_before_each_pool():
    with torch.device("meta"):
        model = lightnets.create_model("vgg16_bn")
    assert [e["num_chs"] for e in model.feature_info] == [64, 128, 256, 512, 512]
    assert [e["reduction"] for e in model.feature_info] == [1, 2, 4, 8, 16]
    modules = dict(model.named_modules())
    for entry in model.feature_info:
        index = int(entry["module"].split(".")[1])
        assert isinstance(modules[entry["module"]], ConvNormAct)
        assert isinstance(model.features[index + 1], nn.MaxPool2d)


def test_vgg_norm_and_bias():
    with torch.device("meta"):
        plain, with_bn = lightnets.create_model("vgg11"), lightnets.create_model("vgg11_bn")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules()) == 8
    assert all(m.bias is not None for m in with_bn.modules() if isinstance(m, nn.Conv2d))


def test_vgg_tiny_forward_and_head():
    torch.manual_seed(0)
    model = VGG([8, "M", 16, "M", 16, "M", 16, "M", 16, "M"], num_classes=3).eval()
    assert model.forward_head(model.forward_features(torch.randn(1, 3, 32, 32)),
                              pre_logits=True).shape == (1, 4096)
    x = torch.randn(2, 3, 40, 48)
    out = model.train()(x)
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    conv = model.features[0].conv
    assert torch.all(conv.bias == 0)
    # He-normal fan-out: std = sqrt(2 / (out_channels * 9))
    assert conv.weight.std().item() == pytest.approx((2 / (8 * 9)) ** 0.5, rel=0.3)
