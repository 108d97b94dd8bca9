"""Xception's residual block and the Xception and MobileNet V1 families."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightnets
from lightnets.layers import DepthwiseSeparableConv
from lightnets.layers.xception_block import XceptionBlock, XceptionUnit
from lightnets.models.mobilenet_v1 import MobileNetV1, scale_channels
from lightnets.models.xception import Xception
from lightnets.profile import count_complexity


def grads_flow(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    out = module(x)
    out.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    missing = [name for name, p in module.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    return out


# -- XceptionBlock ---------------------------------------------------------------------------
@pytest.mark.parametrize("in_ch,widths,stride,size,expected_size", [
    (8, (16, 16), 2, 9, 5), (8, (16, 16), 2, 8, 4), (16, (16, 16, 16), 1, 7, 7),
    (8, (12,), 1, 6, 6), (4, (8, 12), 2, 1, 1)])
def test_xception_block_shapes_and_gradients(in_ch, widths, stride, size, expected_size):
    block = XceptionBlock(in_ch, widths, stride)
    out = grads_flow(block, torch.randn(2, in_ch, size, size))
    assert out.shape == (2, widths[-1], expected_size, expected_size)
    assert len(block.units) == len(widths)


def test_xception_block_shortcut_kinds():
    identity = XceptionBlock(16, (16, 16, 16))
    assert isinstance(identity.shortcut, nn.Identity) and isinstance(identity.pool, nn.Identity)
    downsample = XceptionBlock(16, (32, 32), stride=2)
    conv = downsample.shortcut.conv
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2) and conv.bias is None
    assert isinstance(downsample.shortcut.norm, nn.BatchNorm2d)
    assert isinstance(downsample.pool, nn.MaxPool2d)
    widen = XceptionBlock(16, (24,), stride=1)  # width change alone needs a projection
    assert widen.shortcut.conv.stride == (1, 1) and widen.shortcut.conv.out_channels == 24


def test_xception_block_is_identity_when_the_residual_branch_is_silenced():
    block = XceptionBlock(8, (8, 8, 8)).eval()
    last_norm = block.units[-1].conv.pointwise.norm
    nn.init.zeros_(last_norm.weight)
    nn.init.zeros_(last_norm.bias)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)


def test_leading_relu_and_pre_activation_shortcut():
    """A negative input is zeroed by the leading ReLU, so the residual branch gives 0 and the
    shortcut passes the raw (negative) input; without the leading ReLU the branch sees it."""
    x = -torch.rand(1, 8, 4, 4) - 0.1
    with_relu = XceptionBlock(8, (8, 8)).eval()
    without = XceptionBlock(8, (8, 8), leading_act=False).eval()
    without.load_state_dict(with_relu.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(with_relu(x), x)
        assert not torch.allclose(without(x), x)
    assert isinstance(without.units[0].act, nn.Identity)
    assert isinstance(without.units[1].act, nn.ReLU)


def test_separable_unit_has_no_norm_act_or_bias_inside():
    unit = XceptionUnit(6, 10)
    assert isinstance(unit.conv.depthwise.norm, nn.Identity)
    assert isinstance(unit.conv.depthwise.act, nn.Identity)
    assert isinstance(unit.conv.pointwise.act, nn.Identity)
    assert isinstance(unit.conv.pointwise.norm, nn.BatchNorm2d)
    assert all(m.bias is None for m in unit.modules() if isinstance(m, nn.Conv2d))
    # depthwise 3x3 + pointwise + BN (gamma, beta)
    assert sum(p.numel() for p in unit.parameters()) == 6 * 9 + 6 * 10 + 2 * 10


def test_xception_block_dilation_keeps_size():
    block = XceptionBlock(8, (8, 8), dilation=2)
    depthwise = block.units[0].conv.depthwise.conv
    assert depthwise.dilation == (2, 2) and depthwise.padding == (2, 2)
    assert grads_flow(block, torch.randn(1, 8, 9, 9)).shape == (1, 8, 9, 9)


@pytest.mark.parametrize("kwargs", [{"channels": ()}, {"channels": (8,), "stride": 3}])
def test_xception_block_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        XceptionBlock(8, **kwargs)


# -- Xception ----------------------------------------------------------------------------------
def meta_xception(**kwargs) -> Xception:
    with torch.device("meta"):
        return lightnets.create_model("xception", **kwargs).eval()


def test_xception_matches_paper_parameter_count_exactly():
    assert count_complexity("xception").params == 22_855_952  # Chollet 2017, Table 3


def test_xception_layout():
    model = meta_xception()
    assert [e["num_chs"] for e in model.feature_info] == [64, 128, 256, 728, 2048]
    assert [e["reduction"] for e in model.feature_info] == [2, 4, 8, 16, 32]
    blocks = [m for m in model.features if isinstance(m, XceptionBlock)]
    assert len(blocks) == 12  # 3 entry, 8 middle, 1 exit
    assert sum(isinstance(b.shortcut, nn.Identity) for b in blocks) == 8
    # 36 convolutional layers form the feature extractor (Sec. 3): 2 + 34 separable
    separable = [m for m in model.modules() if isinstance(m, DepthwiseSeparableConv)]
    assert 2 + len(separable) == 36
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert model.drop_rate == 0.5 and model.default_input_size == (3, 299, 299)


def stage_sizes(model: nn.Module, size: int) -> list[int]:
    modules = dict(model.named_modules())
    sizes: list[int] = []
    hooks = [modules[e["module"]].register_forward_hook(
        lambda _m, _i, out: sizes.append(out.shape[-1])) for e in model.feature_info]
    model.forward_features(torch.empty(1, 3, size, size, device="meta"))  # no size check
    for hook in hooks:
        hook.remove()
    return sizes


def test_xception_spatial_sizes_and_min_input():
    model = meta_xception()
    assert stage_sizes(model, 299) == [147, 74, 37, 19, 10]
    assert model.min_input_size == (23, 23)
    assert stage_sizes(model, 23) == [9, 5, 3, 2, 1]  # every stride still halves
    assert stage_sizes(model, 22) == [8, 4, 2, 1, 1]  # below 23 the last stride is lost
    with pytest.raises(ValueError, match="at least 23x23"):
        model(torch.empty(1, 3, 22, 22, device="meta"))


def test_xception_macs():
    assert count_complexity("xception").macs == pytest.approx(8.4e9, rel=0.01)


# -- MobileNet V1 ------------------------------------------------------------------------------
@pytest.mark.parametrize("name,params,macs", [
    ("mobilenet_v1_x1_0", 4.2e6, 569e6), ("mobilenet_v1_x0_75", 2.6e6, 325e6),
    ("mobilenet_v1_x0_5", 1.3e6, 149e6), ("mobilenet_v1_x0_25", 0.5e6, 41e6)])
def test_mobilenet_v1_matches_paper_table_6(name, params, macs):
    counts = count_complexity(name)
    assert round(counts.params / 1e5) / 10 == params / 1e6  # the paper rounds to 0.1M
    assert counts.macs == pytest.approx(macs, rel=0.01)


def test_mobilenet_v1_alias_and_width_override():
    assert lightnets.registry.resolve_name("mobilenet_v1") == "mobilenet_v1_x1_0"
    with torch.device("meta"):
        overridden = lightnets.create_model("mobilenet_v1", width_mult=0.5)
        half = lightnets.create_model("mobilenet_v1_x0_5")
    shapes = [p.shape for p in overridden.parameters()]
    assert shapes == [p.shape for p in half.parameters()]
    assert overridden.num_features == 512


def test_mobilenet_v1_layout():
    with torch.device("meta"):
        model = MobileNetV1()
    # 28 layers counting depthwise and pointwise separately, plus the FC (Table 1)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == 28
    blocks = [m for m in model.features if isinstance(m, DepthwiseSeparableConv)]
    assert all(isinstance(b.depthwise.norm, nn.BatchNorm2d) and isinstance(b.depthwise.act, nn.ReLU)
               for b in blocks)
    assert [e["num_chs"] for e in model.feature_info] == [64, 128, 256, 512, 1024]
    assert [e["reduction"] for e in model.feature_info] == [2, 4, 8, 16, 32]
    assert stage_sizes(model, 224) == [112, 56, 28, 14, 7]


@pytest.mark.parametrize("width,round_to,expected", [
    (0.25, 1, [8, 16, 32, 64, 128, 256]), (0.6, 1, [19, 38, 76, 153, 307, 614]),
    (0.6, 8, [24, 40, 80, 152, 304, 616]), (0.1, 1, [8, 8, 12, 25, 51, 102])])
def test_mobilenet_v1_channel_rounding(width, round_to, expected):
    assert [scale_channels(c, width, round_to) for c in (32, 64, 128, 256, 512, 1024)] == expected
    with torch.device("meta"):
        model = MobileNetV1(width_mult=width, round_to=round_to)
    assert model.num_features == expected[-1]


def test_mobilenet_v1_truncated_normal_init():
    torch.manual_seed(0)
    model = MobileNetV1(width_mult=0.25, num_classes=10)
    weights = torch.cat([m.weight.flatten() for m in model.modules()
                         if isinstance(m, (nn.Conv2d, nn.Linear))])
    assert weights.abs().max() <= 0.18
    assert weights.std().item() == pytest.approx(0.09 * 0.88, rel=0.05)  # truncation shrinks std


@pytest.mark.parametrize("kwargs", [{"width_mult": 0}, {"round_to": 0}, {"drop_rate": 1.0}])
def test_mobilenet_v1_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        MobileNetV1(**kwargs)
