"""Backbone use: multi-scale features from feature_info."""

import pytest
import torch

from lightnets.features import FeatureExtractor, create_backbone


def test_backbone_returns_stage_features():
    backbone = create_backbone("mobilenet_v2_x0_5", out_indices=(1, 2, 4)).eval()
    assert backbone.channels == [16, 16, 1280] and backbone.reductions == [4, 8, 32]
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, 128, 96))
    assert [f.shape for f in features] == [(2, 16, 32, 24), (2, 16, 16, 12), (2, 1280, 4, 3)]
    assert not backbone.model._forward_hooks and all(
        not m._forward_hooks for m in backbone.model.modules()), "hooks must be removed"


def test_backbone_errors():
    with pytest.raises(ValueError, match="out of range"):
        create_backbone("mobilenet_v2_x0_5", out_indices=(7,))
    with pytest.raises(ValueError, match="feature_info"):
        FeatureExtractor(torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        create_backbone("mobilenet_v2_x0_5")(torch.randn(1, 1, 64, 64))
