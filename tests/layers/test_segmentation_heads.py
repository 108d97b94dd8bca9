"""The segmentation blocks: ASPP and the DeepLabV3, FCN, LR-ASPP and DeepLabV3+ heads. Shapes,
rates, separable branches, and torchvision's parameter shapes and function where it has the
block."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.segmentation import deeplabv3 as tv_deeplab
from torchvision.models.segmentation import fcn as tv_fcn
from torchvision.models.segmentation import lraspp as tv_lraspp

from lightnets.layers import DepthwiseSeparableConv
from lightnets.layers.aspp import ASPP, DeepLabV3Head, aspp_rates
from lightnets.layers.deeplabv3plus import DeepLabV3PlusDecoder, DeepLabV3PlusHead
from lightnets.layers.fcn_head import FCNHead
from lightnets.layers.lraspp import LRASPPHead
from lightnets.testing import copy_by_order, randomise
from tests.conftest import grads_flow


def assert_same_function(ours: nn.Module, theirs: nn.Module, *inputs: torch.Tensor) -> None:
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert [b.shape for b in ours.buffers()] == [b.shape for b in theirs.buffers()]
    randomise(theirs)
    copy_by_order(theirs, ours)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        theirs_out = theirs(*inputs) if len(inputs) == 1 else theirs(
            {"low": inputs[0], "high": inputs[1]})
        torch.testing.assert_close(ours(*inputs), theirs_out, rtol=1e-4, atol=1e-5)


def test_rates_follow_the_output_stride():
    assert aspp_rates(16) == (6, 12, 18) and aspp_rates(8) == (12, 24, 36)
    assert aspp_rates(32) == (3, 6, 9)
    aspp = ASPP(32, aspp_rates(8), 16)
    dilations = [m.dilation for m in aspp.modules() if isinstance(m, nn.Conv2d)]
    assert dilations == [(1, 1), (12, 12), (24, 24), (36, 36), (1, 1), (1, 1)]


def test_aspp_and_deeplabv3_head_are_torchvision_s():
    x = torch.randn(2, 32, 9, 11)
    assert_same_function(ASPP(32, (2, 4, 6), 16), tv_deeplab.ASPP(32, (2, 4, 6), 16), x)
    assert_same_function(DeepLabV3Head(32, 5, (2, 4, 6)),
                         nn.Sequential(tv_deeplab.ASPP(32, (2, 4, 6)),
                                       *list(tv_deeplab.DeepLabHead(32, 5))[1:]), x)


def test_aspp_options_and_gradients():
    separable = ASPP(24, (1, 2), 8, separable=True, image_pool=False)
    assert [type(b) for b in separable.branches][1:] == [DepthwiseSeparableConv] * 2
    assert separable.branches[2].depthwise.conv.dilation == (2, 2)
    assert separable.project.conv.in_channels == 3 * 8
    out = grads_flow(ASPP(24, (1, 2), 8, separable=True).train(), torch.randn(2, 24, 7, 5))
    assert out.shape == (2, 8, 7, 5)
    with pytest.raises(ValueError, match="positive integers"):
        ASPP(8, (0, 2))


def test_fcn_head_is_torchvision_s():
    assert_same_function(FCNHead(64, 7), tv_fcn.FCNHead(64, 7), torch.randn(2, 64, 6, 5))
    assert FCNHead(64, 7)(torch.randn(1, 64, 6, 5)).shape == (1, 7, 6, 5)


def test_lraspp_head_is_torchvision_s():
    low, high = torch.randn(2, 24, 16, 12), torch.randn(2, 96, 8, 6)
    assert_same_function(LRASPPHead(24, 96, 5, 32),
                         tv_lraspp.LRASPPHead(24, 96, 5, 32), low, high)
    assert LRASPPHead(24, 96, 5)(low, high).shape == (2, 5, 16, 12)


@pytest.mark.parametrize("separable", [True, False])
def test_deeplabv3plus_decoder_and_head(separable):
    low, high = torch.randn(2, 24, 20, 17), torch.randn(2, 64, 5, 5)
    decoder = DeepLabV3PlusDecoder(24, 64, 32, 12, separable)
    assert decoder.project.conv.out_channels == 12  # the paper's 48, narrowed here
    fuse = decoder.fuse[0]
    assert (fuse.pointwise.conv.in_channels if separable else fuse.conv.in_channels) == 64 + 12
    assert decoder(low, high).shape == (2, 32, 20, 17)
    head = DeepLabV3PlusHead(24, 64, 5, (1, 2, 3), channels=32, separable=separable).train()
    x = grads_flow(head.aspp, high)  # every ASPP parameter learns
    assert x.shape == (2, 32, 5, 5)
    assert head(low, high).shape == (2, 5, 20, 17)
    assert head.aspp.drop.p == 0.1
    head.reset_classifier(3)
    assert head(low, high).shape == (2, 3, 20, 17)
