"""Stochastic depth (``drop_path_rate``): the layer, the linear rule, and every residual family
built with it: zero is the network of before, a rate changes training-mode outputs only."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn
from torchvision.ops import StochasticDepth

from lightnets.layers import BasicBlock, Bottleneck, drop_path, drop_path_rates
from lightnets.models.xception import Xception
from lightnets.registry import create_model

# a small member of each family with residual branches: width 0.5 or less where it has one,
# Xception with two narrow blocks (an entry block and a middle block of identity shortcut)
FAMILIES = {name: partial(create_model, name, **args) for name, args in (
    ("mobilenet_v2_x0_35", {}), ("mobilenet_v3_small", {"width_mult": 0.5}),
    ("ghostnet_x1_0", {"width_mult": 0.25}), ("resnet18", {}),
    ("shufflenet_v1_g3_x0_25", {}))}
FAMILIES["xception"] = partial(Xception, [((32, 32), 2, 1, False), ((32, 32, 32), 1, 1, True)])


def test_rates_rise_linearly_to_the_rate_at_the_last_block():
    assert drop_path_rates(0.2, 4) == pytest.approx([0.05, 0.1, 0.15, 0.2])
    assert drop_path_rates(0.0, 3) == [0.0, 0.0, 0.0]
    assert isinstance(drop_path(0.0), nn.Identity)
    layer = drop_path(0.3)
    assert isinstance(layer, StochasticDepth) and (layer.p, layer.mode) == (0.3, "row")
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        drop_path(1.0)


def test_row_mode_drops_whole_samples_and_rescales_the_rest():
    torch.manual_seed(0)
    layer = drop_path(0.5).train()
    out = layer(torch.ones(64, 3, 2, 2))
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}  # dropped or kept / (1 - p)
    assert (per_sample == per_sample[:, :1]).all()  # one draw per image
    assert torch.equal(layer.eval()(torch.ones(4, 3)), torch.ones(4, 3))


@pytest.mark.parametrize("block", [BasicBlock, Bottleneck])
def test_resnet_blocks_drop_their_branch_to_the_shortcut(block):
    torch.manual_seed(0)
    plain = block(16, 16).train()
    dropping = block(16, 16, drop_path_rate=0.999999).train()
    dropping.load_state_dict(plain.state_dict())
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        # every branch dropped: the block is ReLU of its identity shortcut
        assert torch.allclose(dropping(x), torch.relu(x))


@pytest.mark.parametrize("name", FAMILIES)
def test_zero_is_the_network_of_before_and_a_rate_changes_training_only(name):
    build = FAMILIES[name]
    before = build(num_classes=5)
    zero, rated = build(num_classes=5, drop_path_rate=0.0), build(num_classes=5,
                                                                  drop_path_rate=0.5)
    state = before.state_dict()
    assert list(zero.state_dict()) == list(state) == list(rated.state_dict())
    assert [type(m) for m in zero.modules()] == [type(m) for m in before.modules()]
    assert not any(isinstance(m, StochasticDepth) for m in zero.modules())
    assert any(isinstance(m, StochasticDepth) for m in rated.modules())
    zero.load_state_dict(state)
    rated.load_state_dict(state)
    x = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        for model in (before, zero, rated):
            model.eval()
        reference = before(x)
        assert torch.equal(zero(x), reference) and torch.equal(rated(x), reference)
        outputs = []
        for model in (before, zero, rated):
            torch.manual_seed(1)  # the same head dropout for each
            outputs.append(model.train()(x))
        assert torch.equal(outputs[1], outputs[0]) and not torch.equal(outputs[2], outputs[0])


def test_families_without_residual_branches_refuse_a_rate():
    with pytest.raises(ValueError, match="does not accept the argument 'drop_path_rate'"):
        create_model("shufflenet_v2_x0_5", drop_path_rate=0.1)
