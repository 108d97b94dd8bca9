"""GoogLeNet: torchvision equivalence, complexity, the paper form, auxiliary classifiers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightnets
from lightnets.models.googlenet import GoogLeNet
from lightnets.profile import count_complexity
from tests.models.conftest import InceptionChecks


class TestInceptionFamily(InceptionChecks):
    """The checks shared with Inception v3."""

    name, function_size, min_size = "googlenet", 37, 15
    aux_count, aux_weight, aux_size = 2, 0.3, 32


def test_default_complexity_is_torchvision():
    googlenet = count_complexity("googlenet")
    assert googlenet.params == 6_624_904 and round(googlenet.macs / 1e6) == 1498


def test_googlenet_paper_form():
    """5x5 kernels as in the paper: ~6.8M params, ~1.5G MACs (Table 1; see the module docstring
    for the first row's discrepancy)."""
    with torch.device("meta"):
        with_bn = GoogLeNet(large_kernel_size=5)
        plain = GoogLeNet(large_kernel_size=5, norm_layer=None)
    counts, plain_counts = count_complexity(with_bn), count_complexity(plain)
    assert (counts.params, counts.macs) == (7_005_832, 1_582_671_872)
    assert (plain_counts.params, plain_counts.macs) == (6_998_552, 1_582_671_872)
    assert counts.params == pytest.approx(6.8e6, rel=0.035)
    assert counts.macs == pytest.approx(1.5e9, rel=0.06)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    weights = sum(p.numel() for n, p in plain.named_parameters() if n.endswith("weight"))
    assert weights == pytest.approx(6.8e6, rel=0.03)


def test_googlenet_aux_taps_and_order():
    with torch.device("meta"):
        model = lightnets.create_model("googlenet", aux_logits=True)
    assert model.aux_taps == {"inception4a": ["aux1"], "inception4d": ["aux2"]}
    assert model.aux1.conv.in_channels == 512 and model.aux2.conv.in_channels == 528
    assert model.aux1.drop.p == 0.7 and model.head_drop.p == 0.2
