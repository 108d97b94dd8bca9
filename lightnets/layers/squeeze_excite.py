"""Squeeze-and-excitation (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018): global
pooling, a bottleneck of two 1x1 convolutions and a gate that rescales each channel."""

from __future__ import annotations

import torch
from torch import nn

from lightnets.layers.helpers import LayerFactory, make_divisible


class SqueezeExcite(nn.Module):
    """``x * gate(fc2(act(fc1(mean(x)))))``.

    The bottleneck width is ``rd_channels`` if given, else ``channels * rd_ratio`` rounded to a
    multiple of ``rd_divisor`` (1/16 in SE-ResNet; 1/4 rounded to 8 with a hard-sigmoid gate in
    MobileNetV3; 1/4 rounded to 4 in GhostNet). The 1x1 convolutions carry a bias, so their
    parameters equal those of the paper's fully-connected layers.
    """

    def __init__(self, channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None,
                 rd_divisor: int = 1, act_layer: LayerFactory = nn.ReLU,
                 gate_layer: LayerFactory = nn.Sigmoid) -> None:
        super().__init__()
        rd_channels = rd_channels or make_divisible(channels * rd_ratio, rd_divisor)
        self.fc1 = nn.Conv2d(channels, rd_channels, 1)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(rd_channels, channels, 1)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(scale))))
