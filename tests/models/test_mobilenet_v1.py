"""MobileNet V1: Table 6 numbers, width override, layout, channel rounding, initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightnets
from lightnets.layers import DepthwiseSeparableConv
from lightnets.models.mobilenet_v1 import MobileNetV1, scale_channels
from lightnets.profile import count_complexity
from tests.models.conftest import stage_sizes


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
