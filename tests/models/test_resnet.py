"""ResNet, ResNeXt and SE-ResNet: torchvision equivalence, the papers' forms and options."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

import lightnets
from lightnets.layers.resnet_blocks import Bottleneck
from lightnets.layers.squeeze_excite import SqueezeExcite
from lightnets.models.resnet import ResNet
from lightnets.profile import count_complexity
from tests.models.conftest import assert_torchvision_shapes

TORCHVISION_VARIANTS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                        "resnext50_32x4d", "resnext101_32x8d"]


@pytest.mark.parametrize("name", TORCHVISION_VARIANTS)
def test_parameter_shapes_equal_torchvision(name):
    device = "cpu" if name == "resnet18" else "meta"  # large models: shapes only
    with torch.device(device):
        ours = lightnets.create_model(name)
        theirs = getattr(torchvision.models, name)()
    assert_torchvision_shapes(ours, theirs)


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d"])
def test_torchvision_weights_give_torchvision_outputs(name):
    """Loaded by position, torchvision's weights compute the same function (stride placement,
    padding and shortcut wiring included, which shapes alone do not show)."""
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)().eval()
    ours = lightnets.create_model(name).eval()
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values())))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, macs", [("resnet50", 3.858e9), ("resnet101", 7.570e9),
                                        ("resnet152", 11.282e9)])
def test_paper_form_stride_in_1x1(name, macs):
    with torch.device("meta"):
        paper = lightnets.create_model(name, stride_in_1x1=True)
    counts = count_complexity(paper)
    assert counts.macs == pytest.approx(macs, rel=1e-3)
    assert counts.params == count_complexity(name).params  # same weights, different strides


def test_se_resnet50_paper_and_v15_forms():
    counts = count_complexity("se_resnet50")
    assert counts.params == 28_088_024
    assert counts.macs == pytest.approx(3.87e9, rel=0.01)
    with torch.device("meta"):
        model = lightnets.create_model("se_resnet50")
        v15 = lightnets.create_model("se_resnet50", stride_in_1x1=False)
        r8 = lightnets.create_model("se_resnet50", se_reduction=8)
    assert model.family == "SE-ResNet" and "Squeeze" in model.paper
    assert model.layer2[0].conv1.conv.stride == (2, 2)
    assert count_complexity(v15).macs > count_complexity(model).macs
    assert count_complexity(r8).params > counts.params
    ses = [m for m in model.modules() if isinstance(m, SqueezeExcite)]
    assert len(ses) == 16 and {se.fc2.out_channels // se.fc1.out_channels for se in ses} == {16}


def test_feature_info_and_stage_outputs():
    model = lightnets.create_model("resnet18", num_classes=0).eval()
    assert [(e["module"], e["num_chs"], e["reduction"]) for e in model.feature_info] == [
        ("stem", 64, 2), ("layer1", 64, 4), ("layer2", 128, 8), ("layer3", 256, 16),
        ("layer4", 512, 32)]
    with torch.device("meta"):
        big = lightnets.create_model("resnet50")
    assert [e["num_chs"] for e in big.feature_info] == [64, 256, 512, 1024, 2048]
    assert big.num_features == 2048 and big.min_input_size == (32, 32)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 512)


@pytest.mark.parametrize("output_stride, reductions", [(16, [2, 4, 8, 16, 16]),
                                                       (8, [2, 4, 8, 8, 8])])
def test_output_stride_dilates_the_last_stages(output_stride, reductions):
    with torch.device("meta"):
        model = lightnets.create_model("resnet50", output_stride=output_stride)
        reference = torchvision.models.resnet50(
            replace_stride_with_dilation=[False, output_stride == 8, True])
    assert [e["reduction"] for e in model.feature_info] == reductions
    features = model.forward_features(torch.empty(1, 3, 64, 64, device="meta"))
    assert features.shape == (1, 2048, 64 // output_stride, 64 // output_stride)
    ours = [m.dilation for m in model.modules() if isinstance(m, nn.Conv2d)]
    theirs = [m.dilation for m in reference.modules() if isinstance(m, nn.Conv2d)]
    assert ours == theirs


def test_initialisation():
    torch.manual_seed(0)
    model = lightnets.create_model("resnet18")
    conv = model.layer3[0].conv1.conv
    fan_out = conv.out_channels * math.prod(conv.kernel_size)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)
    last_norms = [b.conv2.norm.weight for layer in (model.layer1, model.layer4) for b in layer]
    assert all(bool((w == 1).all()) for w in last_norms)
    zeroed = lightnets.create_model("resnext50_32x4d", zero_init_residual=True)
    blocks = [m for m in zeroed.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16
    assert all(bool((b.conv3.norm.weight == 0).all()) for b in blocks)
    assert bool((blocks[0].conv2.norm.weight == 1).all())


def test_family_options_and_errors():
    with torch.device("meta"):
        gray = lightnets.create_model("resnet34", in_chans=1, num_classes=10, drop_rate=0.3)
    assert gray.stem.conv.in_channels == 1 and gray.classifier.out_features == 10
    assert gray.head_drop.p == 0.3 and gray.family == "ResNet"
    with pytest.raises(ValueError, match="stride_in_1x1 needs Bottleneck"):
        lightnets.create_model("resnet18", stride_in_1x1=True)
    with pytest.raises(ValueError, match="layers must be 4 positive block counts"):
        ResNet(Bottleneck, (3, 4, 6))
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32"):
        lightnets.create_model("resnet18", output_stride=4)
    with pytest.raises(ValueError, match="se_reduction must be a positive integer"):
        lightnets.create_model("se_resnet50", se_reduction=0)
