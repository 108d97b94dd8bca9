"""The channel plan: recorded as plain data, applied to a fresh model, never beyond plain
attributes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.channel_plan import apply_channel_plan, channel_plan


def narrowed() -> nn.Sequential:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1))
    model[0].out_channels, model[1].num_features, model[2].in_channels = 5, 5, 5
    model[0].weight = nn.Parameter(model[0].weight[:5].clone())
    model[0].bias = nn.Parameter(model[0].bias[:5].clone())
    model[1].weight, model[1].bias = (nn.Parameter(p[:5].clone()) for p in (model[1].weight,
                                                                           model[1].bias))
    model[1].running_mean, model[1].running_var = model[1].running_mean[:5], \
        model[1].running_var[:5]
    model[2].weight = nn.Parameter(model[2].weight[:, :5].clone())
    return model


def test_plan_rebuilds_the_narrow_model():
    torch.manual_seed(0)

    def fresh() -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1))

    small = narrowed().eval()
    plan = channel_plan(small, fresh())
    assert plan == {"0": {"out_channels": 5}, "1": {"num_features": 5}, "2": {"in_channels": 5}}
    rebuilt = apply_channel_plan(fresh(), plan, small.state_dict())
    rebuilt.load_state_dict(small.state_dict())
    x = torch.randn(2, 3, 6, 6)
    assert torch.equal(rebuilt.eval()(x), small(x))


def test_plan_sets_only_existing_plain_attributes():
    with pytest.raises(ValueError, match="module '9'"):
        apply_channel_plan(nn.Sequential(nn.ReLU()), {"9": {"inplace": True}}, {})
    with pytest.raises(ValueError, match="forward, which is not a plain attribute"):
        apply_channel_plan(nn.Sequential(nn.ReLU()), {"0": {"forward": 1}}, {})
