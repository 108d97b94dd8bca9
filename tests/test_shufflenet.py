"""ShuffleNet V1 and V2: units, torchvision equivalence, the official downsampling option,
the paper's MACs and the width rules."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

import lightnets
from lightnets.layers.shuffle import channel_shuffle
from lightnets.layers.shufflenet_units import ShuffleV1Unit, ShuffleV2Unit
from lightnets.models.shufflenet_v1 import STAGE_WIDTHS, ShuffleNetV1, stem_width
from lightnets.models.shufflenet_v2 import ShuffleNetV2
from lightnets.profile import count_complexity

V2_VARIANTS = ["shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5",
               "shufflenet_v2_x2_0"]


def grads_flow(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forward and backward; the input and every parameter must receive a gradient."""
    x = x.clone().requires_grad_(True)
    out = module(x)
    out.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    missing = [name for name, p in module.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    return out


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


# -- ShuffleNet V2 models -------------------------------------------------------------------------
@pytest.mark.parametrize("name", V2_VARIANTS)
def test_v2_has_torchvision_parameter_shapes(name):
    with torch.device("meta"):
        ours = lightnets.create_model(name)
        theirs = getattr(torchvision.models, name)()
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert [b.shape for b in ours.buffers()] == [b.shape for b in theirs.buffers()]


def test_v2_computes_torchvision_function_with_its_weights():
    torch.manual_seed(0)
    theirs = torchvision.models.shufflenet_v2_x0_5().eval()
    for module in theirs.modules():  # non-trivial statistics so every norm matters
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    ours = lightnets.create_model("shufflenet_v2_x0_5").eval()
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values())))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,paper_macs", [
    ("shufflenet_v2_x1_0", 146e6), ("shufflenet_v2_x1_5", 299e6), ("shufflenet_v2_x2_0", 591e6)])
def test_v2_official_downsample_reproduces_paper_macs(name, paper_macs):
    official = count_complexity(lightnets.create_model(name, official_downsample=True))
    default = count_complexity(name)
    assert official.macs == pytest.approx(paper_macs, rel=0.01)
    assert official.macs > default.macs and official.params > default.params


def test_v2_x0_5_forms_coincide():
    """At 0.5x each downsampling unit has in = out / 2: both forms are one network, 40.5M MACs,
    1.3% under the paper's rounded 41M."""
    official = count_complexity(lightnets.create_model("shufflenet_v2_x0_5",
                                                       official_downsample=True))
    assert official == count_complexity("shufflenet_v2_x0_5")
    assert official.macs == pytest.approx(41e6, rel=0.015)


def test_v2_feature_info_and_alias():
    model = lightnets.create_model("shufflenet_v2")
    assert isinstance(model, ShuffleNetV2) and model.num_features == 1024
    assert [(e["num_chs"], e["reduction"]) for e in model.feature_info] == [
        (24, 2), (24, 4), (116, 8), (232, 16), (1024, 32)]
    with pytest.raises(ValueError, match="widths"):
        ShuffleNetV2(widths=(24, 116, 1024))
    with pytest.raises(ValueError, match="width_mult must be one of"):
        ShuffleNetV2(width_mult=0.75)


# -- ShuffleNet V1 models -------------------------------------------------------------------------
@pytest.mark.parametrize("groups,paper_macs", [(1, 143e6), (2, 140e6), (3, 137e6), (4, 133e6),
                                               (8, 137e6)])
def test_v1_paper_macs_at_1x(groups, paper_macs):
    with torch.device("meta"):
        model = ShuffleNetV1(groups=groups)
    assert count_complexity(model).macs == pytest.approx(paper_macs, rel=0.02)
    assert [e["num_chs"] for e in model.feature_info] == [24, 24, *STAGE_WIDTHS[groups]]


def test_v1_widths_at_half_scale_match_the_official_release():
    model = lightnets.create_model("shufflenet_v1_g3_x0_5")
    assert [e["num_chs"] for e in model.feature_info] == [12, 12, 120, 240, 480]
    assert [e["reduction"] for e in model.feature_info] == [2, 4, 8, 16, 32]


@pytest.mark.parametrize("width_mult,groups,expected", [
    (1.0, 8, 24), (0.5, 3, 12), (0.5, 8, 8), (0.25, 1, 12), (0.25, 4, 12), (0.25, 8, 8),
    (2.0, 3, 48)])
def test_v1_stem_width_rule(width_mult, groups, expected):
    assert stem_width(width_mult, groups) == expected


def test_v1_alias_first_unit_and_init():
    model = lightnets.create_model("shufflenet_v1")
    assert isinstance(model, ShuffleNetV1) and model.groups == 3 and model.num_features == 960
    first, second = model.features[2][0], model.features[2][1]
    assert first.compress.conv.groups == 1 and second.compress.conv.groups == 3
    assert model.features[0].conv.weight.std() < 0.02  # the official stem init N(0, 0.01)
    torch.testing.assert_close(first.compress.norm.bias, torch.full((60,), 1e-4))


@pytest.mark.parametrize("kwargs", [dict(groups=0), dict(groups=5), dict(width_mult=0.0),
                                    dict(stage_repeats=(4, 8))])
def test_v1_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        ShuffleNetV1(**kwargs)
