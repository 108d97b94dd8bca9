"""MobileNetV3 and GhostNet: the Ghost blocks, torchvision equality, heads and paper numbers."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

import lightnets
from lightnets.layers.ghost import GhostBottleneck, GhostModule
from lightnets.models.ghostnet import GhostNet
from lightnets.models.mobilenet_v3 import LARGE, LARGE_HEAD, MobileNetV3
from lightnets.profile import count_complexity
from lightnets.registry import resolve_name


def meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return lightnets.create_model(name, **kwargs)


# -- Ghost module ---------------------------------------------------------------------------------
@pytest.mark.parametrize("out_channels, ratio", [(16, 2), (15, 2), (1, 2), (7, 3), (9, 3)])
def test_ghost_module_output_channels(out_channels, ratio):
    module = GhostModule(5, out_channels, ratio=ratio)
    primary = math.ceil(out_channels / ratio)
    assert module.primary.conv.out_channels == primary
    assert module.cheap.conv.out_channels == primary * (ratio - 1)
    assert module.cheap.conv.groups == primary  # depthwise: each ghost map from one intrinsic one
    assert module(torch.randn(2, 5, 6, 6)).shape == (2, out_channels, 6, 6)


def test_ghost_module_first_channels_are_the_primary_maps():
    torch.manual_seed(0)
    module = GhostModule(4, 9).eval()
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(module(x)[:, :5], module.primary(x))


def test_ghost_module_activation_is_optional():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 5)
    assert (GhostModule(4, 8)(x) >= 0).all()
    linear = GhostModule(4, 8, act_layer=None)
    assert isinstance(linear.primary.act, nn.Identity) and isinstance(linear.cheap.act, nn.Identity)
    assert (linear(x) < 0).any()


def test_ghost_module_stride_and_bad_ratio():
    assert GhostModule(3, 8, stride=2)(torch.randn(1, 3, 7, 7)).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="ratio"):
        GhostModule(3, 8, ratio=1)


# -- Ghost bottleneck -----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [8, 9])
def test_ghost_bottleneck_stride_2_shapes(size):
    block = GhostBottleneck(16, 48, 24, kernel_size=5, stride=2)
    assert not block.has_residual
    assert block.depthwise.conv.stride == (2, 2) and block.depthwise.conv.kernel_size == (5, 5)
    assert block.shortcut[0].conv.stride == (2, 2) and block.shortcut[0].conv.groups == 16
    out = block(torch.randn(2, 16, size, size))
    assert out.shape == (2, 24, math.ceil(size / 2), math.ceil(size / 2))


def test_ghost_bottleneck_residual_on_and_off():
    identity = GhostBottleneck(16, 32, 16).eval()
    assert identity.has_residual and isinstance(identity.shortcut, nn.Identity)
    assert isinstance(identity.depthwise, nn.Identity)
    # a zero-initialised last BN makes the residual block the identity
    for norm in (identity.ghost2.primary.norm, identity.ghost2.cheap.norm):
        nn.init.zeros_(norm.weight)
    x = torch.randn(1, 16, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(identity(x), x)
    widening = GhostBottleneck(16, 32, 24)
    assert not widening.has_residual and isinstance(widening.shortcut, nn.Sequential)
    assert widening(x).shape == (1, 24, 5, 5)
    with pytest.raises(ValueError, match="stride"):
        GhostBottleneck(16, 32, 16, stride=3)


def test_ghost_bottleneck_gradient_flow_with_se():
    from functools import partial

    from lightnets.layers import SqueezeExcite

    se = partial(SqueezeExcite, rd_ratio=0.25, rd_divisor=4, gate_layer=nn.Hardsigmoid)
    block = GhostBottleneck(8, 24, 12, stride=2, se_layer=se)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    block(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    missing = [n for n, p in block.named_parameters() if p.grad is None]
    assert not missing, missing


# -- MobileNetV3 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mobilenet_v3_large", "mobilenet_v3_small"])
@pytest.mark.parametrize("width_mult", [1.0, 0.75, 0.35])
def test_mobilenet_v3_has_torchvision_parameter_shapes(name, width_mult):
    ours = meta(name, width_mult=width_mult)
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)(width_mult=width_mult)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert [b.shape for b in ours.buffers()] == [b.shape for b in theirs.buffers()]


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
    model = meta("mobilenet_v3_large")
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


# -- GhostNet -------------------------------------------------------------------------------------
def test_ghostnet_alias_and_head():
    assert resolve_name("ghostnet") == "ghostnet_x1_0"
    model = lightnets.create_model("ghostnet", num_classes=10).eval()
    assert isinstance(model, GhostNet) and model.num_features == 960
    head_layer = model.head_hidden[0]  # the release's 1x1 conv on the pooled map, no norm
    assert isinstance(head_layer, nn.Linear) and isinstance(model.head_hidden[1], nn.ReLU)
    assert head_layer.weight.shape == (1280, 960) and head_layer.bias is not None
    x = torch.randn(2, 960, 3, 3)
    assert model.forward_head(x, pre_logits=True).shape == (2, 1280)
    model.reset_classifier(4)
    assert model.forward_head(x).shape == (2, 4)


def test_ghostnet_blocks_follow_table_1():
    model = meta("ghostnet")
    blocks = [m for m in model.features if isinstance(m, GhostBottleneck)]
    assert len(blocks) == 16
    assert sum(not isinstance(b.se, nn.Identity) for b in blocks) == 7
    assert sum(not isinstance(b.depthwise, nn.Identity) for b in blocks) == 4
    se = model.features[4].se  # exp 72 with SE: 72 / 4 = 18 rounded to a multiple of 4
    assert se.fc1.out_channels == 20 and isinstance(se.gate, nn.Hardsigmoid)
    assert model.features[4].depthwise.conv.kernel_size == (5, 5)


@pytest.mark.parametrize("width, params, macs", [(1.0, 5.2e6, 141e6), (0.5, 2.6e6, 42e6),
                                                 (1.3, 7.3e6, 226e6)])
def test_ghostnet_width_matches_paper(width, params, macs):
    # Han et al. 2020, Table 7 (0.5x, 1.3x) and Table 1 (1.0x)
    counts = count_complexity(meta("ghostnet", width_mult=width))
    assert counts.params == pytest.approx(params, rel=0.02)
    assert counts.macs == pytest.approx(macs, rel=0.02)


def test_ghostnet_bad_width():
    with pytest.raises(ValueError, match="width"):
        lightnets.create_model("ghostnet", width_mult=-1.0)
