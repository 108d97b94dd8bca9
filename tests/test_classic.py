"""AlexNet, VGG and SqueezeNet: the Fire block, torchvision shape equality, paper-form options,
heads and initialisation. Big models stay on the meta device."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import lightnets
from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.fire import Fire
from lightnets.models.alexnet import AlexNet
from lightnets.models.squeezenet import SqueezeNet
from lightnets.models.vgg import VGG
from lightnets.profile import count_complexity

TORCHVISION_NAMES = ["alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn",
                     "vgg16_bn", "vgg19_bn", "squeezenet1_0", "squeezenet1_1"]


# -- Fire ------------------------------------------------------------------------------------
def test_fire_output_shape_and_channel_order():
    fire = Fire(8, 4, 6, 10)
    out = fire(torch.randn(2, 8, 9, 7))
    assert out.shape == (2, 16, 9, 7) and fire.out_channels == 16
    # 1x1 expand first, then 3x3, as torchvision concatenates them
    x = torch.randn(1, 8, 5, 5)
    squeezed = fire.squeeze(x)
    torch.testing.assert_close(fire(x)[:, :6], fire.expand1x1(squeezed))
    torch.testing.assert_close(fire(x)[:, 6:], fire.expand3x3(squeezed))


def test_fire_parts_and_parameter_count():
    fire = Fire(96, 16, 64, 64)
    assert isinstance(fire.squeeze.norm, nn.Identity) and isinstance(fire.squeeze.act, nn.ReLU)
    assert fire.expand3x3.conv.kernel_size == (3, 3) and fire.expand3x3.conv.padding == (1, 1)
    expected = (96 * 16 + 16) + (16 * 64 + 64) + (16 * 9 * 64 + 64)
    assert sum(p.numel() for p in fire.parameters()) == expected
    bn_fire = Fire(8, 4, 4, 4, norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU6)
    assert isinstance(bn_fire.expand1x1.norm, nn.BatchNorm2d)
    assert isinstance(bn_fire.expand1x1.act, nn.ReLU6)
    assert bn_fire.squeeze.conv.bias is None


def test_fire_gradient_flows_to_every_parameter():
    fire = Fire(6, 3, 4, 4)
    x = torch.randn(2, 6, 6, 6, requires_grad=True)
    fire(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fire.parameters())


def test_fire_simple_bypass_on_and_off():
    torch.manual_seed(0)
    plain = Fire(16, 4, 8, 8)
    bypass = Fire(16, 4, 8, 8, residual=True)
    bypass.load_state_dict(plain.state_dict())
    x = torch.randn(1, 16, 5, 5)
    assert bypass.has_residual and not plain.has_residual
    torch.testing.assert_close(bypass(x), plain(x) + x)
    assert not Fire(8, 4, 8, 8, residual=True).has_residual  # widths differ: no bypass


def test_fire_rejects_bad_widths():
    with pytest.raises(ValueError, match="squeeze_channels"):
        Fire(8, 0, 4, 4)


# -- torchvision equality and complexity ---------------------------------------------------
@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_parameter_shapes_equal_torchvision(name):
    with torch.device("meta"):
        ours = lightnets.create_model(name)
        theirs = getattr(torchvision.models, name)()
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]


@pytest.mark.parametrize("name", ["alexnet", "vgg16", "squeezenet1_1"])
def test_reset_classifier_keeps_torchvision_shapes(name):
    with torch.device("meta"):
        ours = lightnets.create_model(name, num_classes=3)
        ours.reset_classifier(10)
        theirs = getattr(torchvision.models, name)(num_classes=10)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]


@pytest.mark.parametrize("name,params,macs", [
    ("alexnet", 61_100_840, 714_188_480),
    ("vgg16", 138_357_544, 15_470_264_320),
    ("vgg19_bn", 143_678_248, 19_632_062_464),
    ("squeezenet1_0", 1_248_424, 818_924_576),
    ("squeezenet1_1", 1_235_496, 349_151_936),
])
def test_complexity(name, params, macs):
    counts = count_complexity(name)
    assert (counts.params, counts.macs) == (params, macs)


def test_squeezenet_1_1_is_2_4x_cheaper():
    ratio = count_complexity("squeezenet1_0").macs / count_complexity("squeezenet1_1").macs
    assert ratio == pytest.approx(2.4, abs=0.1)  # the release's "2.4x"; 2.35x counted


# -- AlexNet ---------------------------------------------------------------------------------
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
    model = AlexNet(lightnets.models.alexnet.TWO_TOWER_2012, num_classes=10, paper_init=True)
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


# -- VGG -------------------------------------------------------------------------------------
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


# -- SqueezeNet ------------------------------------------------------------------------------
def test_squeezenet_head_and_reset_classifier():
    torch.manual_seed(0)
    model = lightnets.create_model("squeezenet1_1", num_classes=5).eval()
    final_conv = model.classifier[1]
    assert isinstance(final_conv, nn.Conv2d) and final_conv.out_channels == 5
    assert final_conv.weight.std().item() == pytest.approx(0.01, rel=0.2)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        pooled = model.forward_head(features, pre_logits=True)
        torch.testing.assert_close(pooled, features.mean((2, 3)))
        assert pooled.shape == (1, 512)
        assert (model(x) >= 0).all()  # ReLU after the final convolution, as in the paper
        model.reset_classifier(9)
        assert model.classifier[1].out_channels == 9 and model(x).shape == (1, 9)


def test_squeezenet_structure_and_minimum_inputs():
    for name, stem, minimum in [("squeezenet1_0", 7, 21), ("squeezenet1_1", 3, 17)]:
        model = lightnets.create_model(name, num_classes=2).eval()
        assert model.features[0].conv.kernel_size == (stem, stem)
        assert model.features[0].conv.padding == (0, 0)
        assert model.min_input_size == (minimum, minimum)
        assert sum(isinstance(m, Fire) for m in model.features) == 8
        assert [e["reduction"] for e in model.feature_info] == [2, 4, 8, 16]
        with torch.no_grad():
            assert model(torch.randn(1, 3, minimum, minimum)).shape == (1, 2)
            with pytest.raises(RuntimeError):
                model.features(torch.randn(1, 3, minimum - 1, minimum - 1))


def test_squeezenet_simple_bypass():
    with torch.device("meta"):
        model = SqueezeNet(simple_bypass=True)
    bypassed = [i + 2 for i, m in enumerate(f for f in model.features if isinstance(f, Fire))
                if m.has_residual]
    assert bypassed == [3, 5, 7, 9]  # the paper's fire3, fire5, fire7, fire9
    assert count_complexity(model).params == 1_248_424
