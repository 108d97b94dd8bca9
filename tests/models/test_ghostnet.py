"""GhostNet: the alias and head, the blocks of Table 1 and the paper's numbers per width."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightnets
from lightnets.layers.ghost import GhostBottleneck
from lightnets.models.ghostnet import GhostNet
from lightnets.profile import count_complexity
from lightnets.registry import meta_model, resolve_name


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
    model = meta_model("ghostnet")
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
    counts = count_complexity(meta_model("ghostnet", width_mult=width))
    assert counts.params == pytest.approx(params, rel=0.02)
    assert counts.macs == pytest.approx(macs, rel=0.02)


def test_ghostnet_bad_width():
    with pytest.raises(ValueError, match="width"):
        lightnets.create_model("ghostnet", width_mult=-1.0)
