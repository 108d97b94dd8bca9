"""SqueezeNet's ``Fire`` block: output order, parts, gradients, simple bypass and bad widths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.layers.fire import Fire


def test_fire_output_shape_and_channel_order():
    fire = Fire(8, 4, 6, 10)
    out = fire(torch.randn(2, 8, 9, 7))
    assert out.shape == (2, 16, 9, 7) and fire.out_channels == 16
    # 1x1 expand first, then 3x3, as torchvision concatenates them
    x = torch.randn(1, 8, 5, 5)
    squeezed = fire.squeeze(x)
    torch.testing.assert_close(fire(x)[:, :6], fire.expand1x1(squeezed))
    torch.testing.assert_close(fire(x)[:, 6:], fire.expand3x3(squeezed))


def test_fire_parts_and_parameter_count():
    fire = Fire(96, 16, 64, 64)
    assert isinstance(fire.squeeze.norm, nn.Identity) and isinstance(fire.squeeze.act, nn.ReLU)
    assert fire.expand3x3.conv.kernel_size == (3, 3) and fire.expand3x3.conv.padding == (1, 1)
    expected = (96 * 16 + 16) + (16 * 64 + 64) + (16 * 9 * 64 + 64)
    assert sum(p.numel() for p in fire.parameters()) == expected
    bn_fire = Fire(8, 4, 4, 4, norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU6)
    assert isinstance(bn_fire.expand1x1.norm, nn.BatchNorm2d)
    assert isinstance(bn_fire.expand1x1.act, nn.ReLU6)
    assert bn_fire.squeeze.conv.bias is None


def test_fire_gradient_flows_to_every_parameter():
    fire = Fire(6, 3, 4, 4)
    x = torch.randn(2, 6, 6, 6, requires_grad=True)
    fire(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fire.parameters())


def test_fire_simple_bypass_on_and_off():
    torch.manual_seed(0)
    plain = Fire(16, 4, 8, 8)
    bypass = Fire(16, 4, 8, 8, residual=True)
    bypass.load_state_dict(plain.state_dict())
    x = torch.randn(1, 16, 5, 5)
    assert bypass.has_residual and not plain.has_residual
    torch.testing.assert_close(bypass(x), plain(x) + x)
    assert not Fire(8, 4, 8, 8, residual=True).has_residual  # widths differ: no bypass


def test_fire_rejects_bad_widths():
    with pytest.raises(ValueError, match="squeeze_channels"):
        Fire(8, 0, 4, 4)
