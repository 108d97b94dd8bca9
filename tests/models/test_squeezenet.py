"""SqueezeNet 1.0 and 1.1: torchvision shapes, complexity, head, minimum inputs, bypass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightnets
from lightnets.layers.fire import Fire
from lightnets.models.squeezenet import SqueezeNet
from lightnets.profile import count_complexity
from tests.models.conftest import assert_meta_torchvision_shapes, assert_reset_keeps_shapes


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_parameter_shapes_equal_torchvision(name):
    assert_meta_torchvision_shapes(name, buffers=False)


def test_reset_classifier_keeps_torchvision_shapes():
    assert_reset_keeps_shapes("squeezenet1_1")


@pytest.mark.parametrize("name,params,macs", [
    ("squeezenet1_0", 1_248_424, 818_924_576),
    ("squeezenet1_1", 1_235_496, 349_151_936),
])
def test_complexity(name, params, macs):
    counts = count_complexity(name)
    assert (counts.params, counts.macs) == (params, macs)


def test_squeezenet_1_1_is_2_4x_cheaper():
    ratio = count_complexity("squeezenet1_0").macs / count_complexity("squeezenet1_1").macs
    assert ratio == pytest.approx(2.4, abs=0.1)  # the release's "2.4x"; 2.35x counted


def test_squeezenet_head_and_reset_classifier():
    torch.manual_seed(0)
    model = lightnets.create_model("squeezenet1_1", num_classes=5).eval()
    final_conv = model.classifier[1]
    assert isinstance(final_conv, nn.Conv2d) and final_conv.out_channels == 5
    assert final_conv.weight.std().item() == pytest.approx(0.01, rel=0.2)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        pooled = model.forward_head(features, pre_logits=True)
        torch.testing.assert_close(pooled, features.mean((2, 3)))
        assert pooled.shape == (1, 512)
        assert (model(x) >= 0).all()  # ReLU after the final convolution, as in the paper
        model.reset_classifier(9)
        assert model.classifier[1].out_channels == 9 and model(x).shape == (1, 9)


def test_squeezenet_structure_and_minimum_inputs():
    for name, stem, minimum in [("squeezenet1_0", 7, 21), ("squeezenet1_1", 3, 17)]:
        model = lightnets.create_model(name, num_classes=2).eval()
        assert model.features[0].conv.kernel_size == (stem, stem)
        assert model.features[0].conv.padding == (0, 0)
        assert model.min_input_size == (minimum, minimum)
        assert sum(isinstance(m, Fire) for m in model.features) == 8
        assert [e["reduction"] for e in model.feature_info] == [2, 4, 8, 16]
        with torch.no_grad():
            assert model(torch.randn(1, 3, minimum, minimum)).shape == (1, 2)
            with pytest.raises(RuntimeError):
                model.features(torch.randn(1, 3, minimum - 1, minimum - 1))


def test_squeezenet_simple_bypass():
    with torch.device("meta"):
        model = SqueezeNet(simple_bypass=True)
    bypassed = [i + 2 for i, m in enumerate(f for f in model.features if isinstance(f, Fire))
                if m.has_residual]
    assert bypassed == [3, 5, 7, 9]  # the paper's fire3, fire5, fire7, fire9
    assert count_complexity(model).params == 1_248_424
