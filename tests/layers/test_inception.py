"""Inception v1 and v3 blocks and auxiliary heads: shapes, widths, torchvision's functions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.googlenet import InceptionAux as GoogLeNetAux
from torchvision.models.inception import InceptionAux as InceptionV3Aux

from lightnets.layers.inception import (
    GoogLeNetAuxHead,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
    InceptionModule,
    InceptionV3AuxHead,
)
from lightnets.testing import copy_by_order, randomise


@pytest.mark.parametrize("kernel", [3, 5])
def test_inception_module_shapes_and_gradients(kernel):
    block = InceptionModule(16, 8, 4, 12, 2, 6, 5, large_kernel_size=kernel)
    x = torch.randn(2, 16, 7, 9, requires_grad=True)
    out = block(x)
    assert out.shape == (2, 8 + 12 + 6 + 5, 7, 9) and block.out_channels == 31
    assert block.branches["conv5x5"][1].conv.kernel_size == (kernel, kernel)
    out.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in block.parameters())


@pytest.mark.parametrize("kernel", [0, 4, -3])
def test_inception_module_rejects_even_kernels(kernel):
    with pytest.raises(ValueError, match="large_kernel_size"):
        InceptionModule(16, 8, 4, 12, 2, 6, 5, large_kernel_size=kernel)


def test_inception_module_without_norm_has_biased_convs():
    block = InceptionModule(16, 8, 4, 12, 2, 6, 5, norm_layer=None)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(c.bias is not None for c in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())


@pytest.mark.parametrize(("block", "in_size", "out_size"), [
    (InceptionA(32, pool_channels=16), 9, 9),
    (InceptionB(32), 9, 4),               # unpadded 3x3/2: 35 -> 17 at full size
    (InceptionC(32, mid_channels=8), 6, 6),
    (InceptionD(32), 9, 4),               # 17 -> 8 at full size
    (InceptionE(32), 3, 3),
], ids=["A", "B", "C", "D", "E"])
def test_inception_v3_block_shapes_and_gradients(block, in_size, out_size):
    x = torch.randn(2, 32, in_size, in_size, requires_grad=True)
    out = block(x)
    assert out.shape == (2, block.out_channels, out_size, out_size)
    out.square().mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in block.parameters())


def test_inception_v3_block_widths():
    assert InceptionA(192, 32).out_channels == 256
    assert InceptionB(288).out_channels == 768
    assert InceptionC(768, 128).out_channels == 768
    assert InceptionD(768).out_channels == 1280
    assert InceptionE(1280).out_channels == 2048


def test_inception_c_factorises_into_1xn_and_nx1():
    block = InceptionC(32, mid_channels=8, kernel_size=7)
    kernels = [m.kernel_size for m in block.branches["conv7x7"].modules()
               if isinstance(m, nn.Conv2d)]
    assert kernels == [(1, 1), (1, 7), (7, 1)]
    kernels = [m.kernel_size for m in block.branches["double7x7"].modules()
               if isinstance(m, nn.Conv2d)]
    assert kernels == [(1, 1), (7, 1), (1, 7), (7, 1), (1, 7)]


def test_blocks_use_release_batchnorm_eps():
    norms = [m for m in InceptionE(32).modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(n.eps == 1e-3 for n in norms)


# -- auxiliary heads ------------------------------------------------------------------------------
def test_aux_heads_compute_torchvision_functions():
    torch.manual_seed(0)
    for ours, reference, channels, grid in [
            (GoogLeNetAuxHead(512, 10), GoogLeNetAux(512, 10), 512, 14),
            (InceptionV3AuxHead(768, 10), InceptionV3Aux(768, 10), 768, 17)]:
        reference.eval()
        randomise(reference)
        copy_by_order(reference, ours.eval())
        x = torch.randn(2, channels, grid, grid)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)


def test_inception_v3_aux_head_small_grid():
    """Below 17x17 the fixed 5x5/3 pool is replaced by an adaptive one; at 17x17 and above it is
    the reference's pooling."""
    head = InceptionV3AuxHead(8, 4).eval()
    with torch.no_grad():
        assert head(torch.randn(2, 8, 3, 3)).shape == (2, 4)
        x = torch.randn(2, 8, 20, 20)
        pooled = head.conv5x5(head.conv1x1(F.avg_pool2d(x, 5, 3)))
        expected = head.fc(pooled.mean((2, 3)))
        torch.testing.assert_close(head(x), expected)
