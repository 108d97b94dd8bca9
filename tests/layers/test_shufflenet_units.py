"""ShuffleNet V1 and V2 units: shapes, options, what each branch computes, export."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightnets.layers.shuffle import channel_shuffle
from lightnets.layers.shufflenet_units import ShuffleV1Unit, ShuffleV2Unit
from tests.conftest import grads_flow


def zero_main_branch(norm: nn.BatchNorm2d) -> None:
    """Make a branch output zeros by zeroing its last norm's affine parameters."""
    with torch.no_grad():
        norm.weight.zero_()
        norm.bias.zero_()


# -- ShuffleNet V1 unit ---------------------------------------------------------------------------
@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("size", [8, 7])
def test_v1_unit_shapes(groups, size):
    same = ShuffleV1Unit(96, 96, groups)
    assert grads_flow(same, torch.randn(2, 96, size, size)).shape == (2, 96, size, size)
    down = ShuffleV1Unit(24, 96, groups, stride=2, group_first_conv=groups != 8)
    half = (size + 1) // 2
    assert grads_flow(down, torch.randn(2, 24, size, size)).shape == (2, 96, half, half)
    assert down.expand.out_channels == 96 - 24, "the main branch fills out - in channels"
    assert down.compress.out_channels == 96 // 4, "bottleneck = out / 4"


def test_v1_unit_group_options():
    unit = ShuffleV1Unit(24, 240, 3, stride=2, group_first_conv=False)
    assert unit.compress.conv.groups == 1 and unit.expand.conv.groups == 3
    assert unit.depthwise.conv.groups == 60 and isinstance(unit.depthwise.act, nn.Identity)
    assert isinstance(unit.expand.act, nn.Identity), "the last 1x1 conv is linear"
    assert ShuffleV1Unit(240, 240, 3).compress.conv.groups == 3
    assert isinstance(ShuffleV1Unit(36, 36, 1).shuffle, nn.Identity)
    assert ShuffleV1Unit(40, 40, 2, bottleneck_channels=8).compress.out_channels == 8


def test_v1_unit_stride2_concatenates_pooled_input_first():
    torch.manual_seed(0)
    unit = ShuffleV1Unit(12, 60, 3, stride=2).eval()
    x = torch.randn(1, 12, 9, 9)
    with torch.no_grad():
        out = unit(x)
    torch.testing.assert_close(out[:, :12], F.relu(F.avg_pool2d(x, 3, 2, 1)))


def test_v1_unit_stride1_adds_identity():
    unit = ShuffleV1Unit(24, 24, 2).eval()
    x = torch.randn(1, 24, 6, 6)
    with torch.no_grad():
        assert not torch.allclose(unit(x), F.relu(x))
        zero_main_branch(unit.expand.norm)
        torch.testing.assert_close(unit(x), F.relu(x))


@pytest.mark.parametrize("args", [
    dict(in_channels=24, out_channels=48, groups=3, stride=1),  # stride 1 needs in == out
    dict(in_channels=48, out_channels=48, groups=3, stride=2),  # stride 2 needs out > in
    dict(in_channels=24, out_channels=24, groups=3, stride=3),
    dict(in_channels=24, out_channels=100, groups=3, stride=2),  # main branch 76 not / 3
])
def test_v1_unit_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        ShuffleV1Unit(**args)


# -- ShuffleNet V2 unit ---------------------------------------------------------------------------
@pytest.mark.parametrize("keep_input_width", [False, True])
@pytest.mark.parametrize("size", [8, 7])
def test_v2_unit_shapes(keep_input_width, size):
    down = ShuffleV2Unit(24, 116, stride=2, keep_input_width=keep_input_width)
    half = (size + 1) // 2
    assert grads_flow(down, torch.randn(2, 24, size, size)).shape == (2, 116, half, half)
    shortcut_out, main_out = (24, 92) if keep_input_width else (58, 58)
    assert down.shortcut[-1].out_channels == shortcut_out
    assert down.main[-1].out_channels == main_out
    assert down.main[0].out_channels == 58, "the main branch works at out / 2 channels"
    same = ShuffleV2Unit(116, 116)
    assert grads_flow(same, torch.randn(2, 116, size, size)).shape == (2, 116, size, size)
    assert isinstance(same.shortcut, nn.Identity) and same.main[0].in_channels == 58


def test_v2_unit_stride1_passes_first_half_unchanged():
    unit = ShuffleV2Unit(16, 16).eval()
    x = torch.randn(1, 16, 5, 5)
    with torch.no_grad():
        out = unit(x)
    unshuffled = channel_shuffle(out, 16 // 2)  # inverse of the 2-group shuffle
    torch.testing.assert_close(unshuffled[:, :8], x[:, :8])
    assert not torch.allclose(unshuffled[:, 8:], x[:, 8:])
    torch.testing.assert_close(out[:, 0::2], x[:, :8])  # shuffle interleaves the two halves


def test_v2_unit_official_downsample_costs_more_but_same_output_width():
    tv_form = ShuffleV2Unit(48, 116, stride=2)
    official = ShuffleV2Unit(48, 116, stride=2, keep_input_width=True)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(official) != count(tv_form)
    x = torch.randn(1, 48, 8, 8)
    assert official(x).shape == tv_form(x).shape == (1, 116, 4, 4)


@pytest.mark.parametrize("args", [
    dict(in_channels=24, out_channels=48, stride=1),
    dict(in_channels=24, out_channels=47, stride=2),
    dict(in_channels=24, out_channels=24, stride=3),
    dict(in_channels=48, out_channels=48, stride=2, keep_input_width=True),
])
def test_v2_unit_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        ShuffleV2Unit(**args)


# -- both -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("unit,in_channels", [
    (ShuffleV1Unit(24, 60, 3, stride=2), 24), (ShuffleV1Unit(60, 60, 3), 60),
    (ShuffleV2Unit(24, 48, stride=2, keep_input_width=True), 24), (ShuffleV2Unit(48, 48), 48)])
def test_units_export_with_dynamic_batch(unit, in_channels):
    unit = unit.eval()
    batch = torch.export.Dim("batch", min=1, max=32)
    with torch.no_grad():
        program = torch.export.export(unit, (torch.randn(2, in_channels, 8, 8),),
                                      dynamic_shapes=({0: batch},))
        x = torch.randn(5, in_channels, 8, 8)
        torch.testing.assert_close(program.module()(x), unit(x))
