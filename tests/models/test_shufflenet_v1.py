"""ShuffleNet V1: the paper's MACs, the release's widths, stem rule, init, bad arguments."""

from __future__ import annotations

import pytest
import torch

import lightnets
from lightnets.models.shufflenet_v1 import STAGE_WIDTHS, ShuffleNetV1, stem_width
from lightnets.profile import count_complexity


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
