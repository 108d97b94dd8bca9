"""An anchor-free decoupled head whose boxes are distributions: :class:`GFLHead`, and the
points and box decoding it needs.

Each level has two branches of ``convs`` 3x3 depthwise-separable convolutions (Howard et al.,
"MobileNets", 2017, arXiv:1704.04861), one ending in the class logits (one sigmoid per object
class: no background logit), the other in four distributions over ``reg_max + 1`` bins: the
distances from the point to the box's left, top, right and bottom sides, in units of the level's
stride. The head is decoupled (classification and regression do not share convolutions, as in
YOLOX, Ge et al. 2021, arXiv:2107.08430) and not shared across levels (the light levels differ,
as NanoDet's do). Li et al., "Generalized Focal Loss", NeurIPS 2020 (arXiv:2006.04388), Sec.
3.3: a distribution instead of a Dirac delta lets a blurred or ambiguous side spread its
estimate, and its expectation is the distance. ``reg_max=7`` is NanoDet-Plus's (distances up to
7 strides: with levels up to stride 64 that covers a whole 320 image); GFL's own is 16.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from lightnets.layers import DepthwiseSeparableConv

PRIOR = 0.01  # Lin et al. 2017 (RetinaNet), Sec. 4.1: every class starts at this probability


class GFLHead(nn.Module):
    """``levels`` heads on maps of ``width`` channels for ``classes`` object classes; ``forward``
    returns ``bbox_regression`` ``(N, locations, 4 * (reg_max + 1))`` and ``cls_logits``
    ``(N, locations, classes)``, locations in level order, row-major within a level."""

    def __init__(self, width: int, classes: int, levels: int, convs: int = 2,
                 reg_max: int = 7) -> None:
        super().__init__()
        if not isinstance(convs, int) or convs < 0:
            raise ValueError(f"head_convs must be an integer >= 0, got {convs!r}")
        if not isinstance(reg_max, int) or isinstance(reg_max, bool) or reg_max < 1:
            raise ValueError(f"reg_max must be an integer >= 1, got {reg_max!r}")

        def tower() -> nn.Sequential:
            return nn.Sequential(*(DepthwiseSeparableConv(width, width) for _ in range(convs)))
        self.cls_towers = nn.ModuleList(tower() for _ in range(levels))
        self.reg_towers = nn.ModuleList(tower() for _ in range(levels))
        self.cls_out = nn.ModuleList(nn.Conv2d(width, classes, 1) for _ in range(levels))
        self.reg_out = nn.ModuleList(nn.Conv2d(width, 4 * (reg_max + 1), 1)
                                     for _ in range(levels))
        self.classes, self.reg_max = classes, reg_max
        for layer in [*self.cls_out, *self.reg_out]:
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)
        for layer in self.cls_out:
            nn.init.constant_(layer.bias, -math.log((1 - PRIOR) / PRIOR))

    def forward(self, features: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        regression, logits = [], []
        for x, cls_tower, reg_tower, cls_out, reg_out in zip(
                features, self.cls_towers, self.reg_towers, self.cls_out, self.reg_out):
            logits.append(cls_out(cls_tower(x)).flatten(2).transpose(1, 2))
            regression.append(reg_out(reg_tower(x)).flatten(2).transpose(1, 2))
        return {"bbox_regression": torch.cat(regression, 1), "cls_logits": torch.cat(logits, 1)}


def grid_points(shapes: Sequence[Sequence[int]], strides: Sequence[int],
                device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The centre ``((x + 0.5) * stride, (y + 0.5) * stride)`` of every location of maps of
    ``shapes`` (height, width), in the head's order, and each location's stride."""
    points, point_strides = [], []
    for (height, width), stride in zip(shapes, strides):
        ys = (torch.arange(int(height), device=device, dtype=torch.float32) + 0.5) * stride
        xs = (torch.arange(int(width), device=device, dtype=torch.float32) + 0.5) * stride
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1))
        point_strides.append(torch.full((len(points[-1]),), float(stride), device=device))
    return torch.cat(points), torch.cat(point_strides)


def distances(regression: torch.Tensor, reg_max: int) -> torch.Tensor:
    """The expectation of each side's distribution ``(..., 4 * (reg_max + 1))`` -> ``(..., 4)``,
    in strides (GFL's integral)."""
    bins = torch.arange(reg_max + 1, device=regression.device, dtype=regression.dtype)
    probabilities = F.softmax(regression.unflatten(-1, (4, reg_max + 1)), dim=-1)
    return probabilities @ bins


def decode_boxes(regression: torch.Tensor, points: torch.Tensor, strides: torch.Tensor,
                 reg_max: int) -> torch.Tensor:
    """``(x1, y1, x2, y2)`` pixels of the distributions ``regression`` at ``points``."""
    sides = distances(regression, reg_max) * strides.unsqueeze(-1)
    return torch.cat([points - sides[..., :2], points + sides[..., 2:]], dim=-1)


def encode_sides(boxes: torch.Tensor, points: torch.Tensor, strides: torch.Tensor,
                 reg_max: int) -> torch.Tensor:
    """The distances from ``points`` to the sides of ``boxes`` (left, top, right, bottom) in
    strides, clamped into the distributions' range ``[0, reg_max)``."""
    sides = torch.cat([points - boxes[:, :2], boxes[:, 2:] - points], dim=-1)
    return (sides / strides.unsqueeze(-1)).clamp(0, reg_max - 0.01)
