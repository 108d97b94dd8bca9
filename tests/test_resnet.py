"""ResNet family: residual blocks, torchvision equivalence, the papers' forms and options."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

import lightnets
from lightnets.layers.resnet_blocks import BasicBlock, Bottleneck, bottleneck_width
from lightnets.layers.squeeze_excite import SqueezeExcite
from lightnets.models.resnet import ResNet
from lightnets.profile import count_complexity

TORCHVISION_VARIANTS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                        "resnext50_32x4d", "resnext101_32x8d"]


def output_size(block: nn.Module, in_channels: int, size: int = 8) -> torch.Size:
    return block(torch.randn(2, in_channels, size, size)).shape


# -- blocks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck])
@pytest.mark.parametrize("stride", [1, 2])
def test_block_shapes_and_shortcut_kind(block_cls, stride):
    out = 16 * block_cls.expansion
    same = block_cls(out, out, stride)
    assert output_size(same, out) == (2, out, 8 // stride, 8 // stride)
    assert isinstance(same.downsample, nn.Identity) == (stride == 1)
    wider = block_cls(8, out, stride)
    assert output_size(wider, 8) == (2, out, 8 // stride, 8 // stride)
    projection = wider.downsample
    assert projection.conv.kernel_size == (1, 1) and projection.conv.stride == (stride, stride)
    assert isinstance(projection.norm, nn.BatchNorm2d) and isinstance(projection.act, nn.Identity)


def test_odd_size_and_dilation_arithmetic():
    block = Bottleneck(16, 64, stride=2)
    assert output_size(block, 16, size=7) == (2, 64, 4, 4)  # ceil(7 / 2)
    dilated = Bottleneck(16, 64, dilation=2, first_dilation=1)
    assert dilated.conv2.conv.dilation == (1, 1)  # the first block keeps the previous dilation
    dilated = Bottleneck(64, 64, dilation=4)
    assert dilated.conv2.conv.dilation == (4, 4) and dilated.conv2.conv.padding == (4, 4)
    assert output_size(dilated, 64, size=9) == (2, 64, 9, 9)


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck])
def test_gradient_reaches_every_parameter(block_cls):
    torch.manual_seed(0)
    block = block_cls(16, 32 * block_cls.expansion, stride=2, se_layer=SqueezeExcite)
    x = torch.randn(2, 16, 6, 6, requires_grad=True)
    block(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


def test_stride_placement():
    v15 = Bottleneck(64, 128, stride=2)
    paper = Bottleneck(64, 128, stride=2, stride_in_1x1=True)
    assert v15.conv1.conv.stride == (1, 1) and v15.conv2.conv.stride == (2, 2)
    assert paper.conv1.conv.stride == (2, 2) and paper.conv2.conv.stride == (1, 1)
    assert output_size(paper, 64) == output_size(v15, 64) == (2, 128, 4, 4)


def test_resnext_width_and_groups():
    assert bottleneck_width(64) == 64
    assert bottleneck_width(64, groups=32, base_width=4) == 128
    assert bottleneck_width(512, groups=32, base_width=8) == 2048
    block = Bottleneck(256, 256, groups=32, base_width=4)
    assert block.conv2.conv.groups == 32
    assert block.conv2.conv.in_channels == block.conv2.conv.out_channels == 128
    assert block.conv1.conv.groups == block.conv3.conv.groups == 1


def test_squeeze_excite_gates_the_residual_branch():
    block = Bottleneck(64, 64, se_layer=SqueezeExcite).eval()
    assert isinstance(block.se, SqueezeExcite) and block.se.fc1.out_channels == 4
    assert isinstance(Bottleneck(64, 64).se, nn.Identity)
    # a closed gate leaves only the shortcut: relu(0 + x)
    nn.init.zeros_(block.se.fc2.weight)
    nn.init.constant_(block.se.fc2.bias, -1e4)
    x = torch.randn(2, 64, 5, 5)
    torch.testing.assert_close(block(x), x.relu())


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck])
def test_zero_init_last_turns_the_block_into_its_shortcut(block_cls):
    block = block_cls(32, 32).eval()
    x = torch.randn(2, 32, 5, 5)
    assert not torch.allclose(block(x), x.relu())
    block.zero_init_last()
    torch.testing.assert_close(block(x), x.relu())


def test_passed_in_downsample_is_used():
    shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(16, 64, 1))  # ResNet-D style
    block = Bottleneck(16, 64, stride=2, downsample=shortcut)
    assert block.downsample is shortcut
    assert output_size(block, 16) == (2, 64, 4, 4)


def test_block_bad_arguments():
    with pytest.raises(ValueError, match="multiple of the block's expansion 4"):
        Bottleneck(64, 66)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        BasicBlock(64, 64, stride=0)
    with pytest.raises(ValueError, match="divisible by groups"):
        BasicBlock(64, 64, groups=3)


# -- models ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TORCHVISION_VARIANTS)
def test_parameter_shapes_equal_torchvision(name):
    device = "cpu" if name == "resnet18" else "meta"  # large models: shapes only
    with torch.device(device):
        ours = lightnets.create_model(name)
        theirs = getattr(torchvision.models, name)()
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert [b.shape for b in ours.buffers()] == [b.shape for b in theirs.buffers()]


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
