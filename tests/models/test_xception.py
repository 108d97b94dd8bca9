"""Xception: the paper's parameter count and MACs, layout, spatial sizes, minimum input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.layers import DepthwiseSeparableConv
from lightnets.layers.xception_block import XceptionBlock
from lightnets.profile import count_complexity
from lightnets.registry import meta_model
from tests.models.conftest import stage_sizes


def test_xception_matches_paper_parameter_count_exactly():
    assert count_complexity("xception").params == 22_855_952  # Chollet 2017, Table 3


def test_xception_layout():
    model = meta_model("xception")
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


def test_xception_spatial_sizes_and_min_input():
    model = meta_model("xception")
    assert stage_sizes(model, 299) == [147, 74, 37, 19, 10]
    assert model.min_input_size == (23, 23)
    assert stage_sizes(model, 23) == [9, 5, 3, 2, 1]  # every stride still halves
    assert stage_sizes(model, 22) == [8, 4, 2, 1, 1]  # below 23 the last stride is lost
    with pytest.raises(ValueError, match="at least 23x23"):
        model(torch.empty(1, 3, 22, 22, device="meta"))


def test_xception_macs():
    assert count_complexity("xception").macs == pytest.approx(8.4e9, rel=0.01)
