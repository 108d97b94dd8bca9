"""MobileNetV2: torchvision shape equality and the width rules of the release."""

from __future__ import annotations

import torch
import torchvision

import lightnets
from tests.models.conftest import assert_torchvision_shapes


def test_mobilenet_v2_matches_torchvision_shapes():
    assert_torchvision_shapes(lightnets.create_model("mobilenet_v2"),
                              torchvision.models.mobilenet_v2())


def test_mobilenet_v2_width_argument():
    model = lightnets.create_model("mobilenet_v2", width_mult=0.6, num_classes=10)
    assert model.width_mult == 0.6
    assert model(torch.randn(2, 3, 224, 224)).shape == (2, 10)
    # at width 0.5: stem 16, last conv stays 1280 (the release keeps it for width < 1)
    half = lightnets.create_model("mobilenet_v2_x0_5")
    assert half.features[0].conv.out_channels == 16 and half.num_features == 1280
    assert lightnets.create_model("mobilenet_v2_x1_4").num_features == 1792
