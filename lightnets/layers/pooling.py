"""Pooling at a stride, or densely at stride 1 with a dilation: the pools of a trunk built at an
output stride below 32 (:mod:`lightnets.models.stages`).

A strided pool keeps its exact form. At stride 1 a pool keeps the map's size: an odd kernel
(an even one grows by one, as DeepLab v1 turned VGG-16's 2x2/2 pool4 and pool5 into 3x3/1
pools; Chen et al., ICLR 2015), dilated like the convolutions around it, padded "same". A
stride-1 pool that already has that form (Inception's 3x3/1 branch pools) is unchanged.
``nn.MaxPool2d`` pads at most half its kernel and ``nn.AvgPool2d`` has no dilation, so dilated
pools are :class:`DilatedMaxPool2d` and :class:`DilatedAvgPool2d`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _dense_kernel(kernel_size: int) -> int:
    return kernel_size if kernel_size % 2 else kernel_size + 1


def max_pool(kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1,
             ceil_mode: bool = False) -> nn.Module:
    """``nn.MaxPool2d(kernel_size, stride, padding, ceil_mode=ceil_mode)`` at ``stride > 1``;
    at stride 1 the size-keeping form at ``dilation``."""
    if stride > 1 or (dilation == 1 and 2 * padding == kernel_size - 1):
        return nn.MaxPool2d(kernel_size, stride, padding, ceil_mode=ceil_mode)
    kernel_size = _dense_kernel(kernel_size)
    if dilation == 1:
        return nn.MaxPool2d(kernel_size, 1, (kernel_size - 1) // 2)
    return DilatedMaxPool2d(kernel_size, dilation)


def avg_pool(kernel_size: int, stride: int = 1, padding: int = 0,
             dilation: int = 1) -> nn.Module:
    """``nn.AvgPool2d(kernel_size, stride, padding)`` (zero padding counted) at ``stride > 1``;
    at stride 1 the size-keeping form at ``dilation``."""
    if stride > 1 or (dilation == 1 and 2 * padding == kernel_size - 1):
        return nn.AvgPool2d(kernel_size, stride, padding)
    kernel_size = _dense_kernel(kernel_size)
    if dilation == 1:
        return nn.AvgPool2d(kernel_size, 1, (kernel_size - 1) // 2)
    return DilatedAvgPool2d(kernel_size, dilation)


class DilatedMaxPool2d(nn.Module):
    """The maximum of ``kernel_size x kernel_size`` inputs ``dilation`` apart, at stride 1,
    padded with ``-inf`` so the size is kept and the border sees only real inputs."""

    def __init__(self, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.kernel_size, self.dilation, self.pad = _check_dense(kernel_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (self.pad,) * 4, value=float("-inf"))
        return F.max_pool2d(padded, self.kernel_size, 1, 0, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, dilation={self.dilation}"


class DilatedAvgPool2d(nn.Module):
    """The mean of ``kernel_size x kernel_size`` inputs ``dilation`` apart, at stride 1, with
    zero padding counted in the mean (``nn.AvgPool2d``'s ``count_include_pad``) so the size is
    kept. Computed as a sum of shifted views: element-wise work, no parameters."""

    def __init__(self, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.kernel_size, self.dilation, self.pad = _check_dense(kernel_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, d = self.kernel_size, self.dilation
        height, width = x.shape[-2:]
        padded = F.pad(x, (self.pad,) * 4)
        total = sum(padded[..., i * d:i * d + height, j * d:j * d + width]
                    for i in range(k) for j in range(k))
        return total / (k * k)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, dilation={self.dilation}"


def _check_dense(kernel_size: int, dilation: int) -> tuple[int, int, int]:
    """``(kernel_size, dilation, padding)`` of a size-keeping pool, or a one-line error."""
    if kernel_size < 1 or kernel_size % 2 == 0 or dilation < 1:
        raise ValueError(f"a dilated pool needs an odd kernel and a positive dilation, "
                         f"got {kernel_size} and {dilation}")
    return kernel_size, dilation, dilation * (kernel_size - 1) // 2
