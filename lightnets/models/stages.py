"""Building a trunk at an output stride of 32, 16 or 8: the one mechanism every family's stage
loop uses.

Dense prediction wants feature maps finer than a classifier's 1/32. Atrous (dilated)
convolution keeps them finer without losing receptive field (Chen et al., "DeepLab", TPAMI
2018; Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016): a
layer whose stride would take the map below ``1/output_stride`` runs at stride 1, and every
spatial operation after it is dilated by the stride it lost, so each kernel still sees the
same input positions on the finer grid. Parameters are unchanged; only strides, dilations and
the paddings derived from them are.

A family's constructor walks its layers in order, asks :meth:`StageTracker.layer` how to build
each one from its nominal stride, and calls :meth:`StageTracker.end_stage` where a stage ends;
``feature_info`` then holds the true reductions (several stages share ``output_stride`` once
it is reached).

Which dilation the first layer of a dilated stage takes, i.e. the layer that had the stride:

* ``dilate_first=False`` (every family but MobileNetV3): the *previous* dilation, as
  torchvision's ResNet ``replace_stride_with_dilation``, DeepLab and TF-slim do. Its input is
  still on the previous grid, so this is exactly the strided network evaluated densely: where
  the strided layers are "same"-padded and nothing averages over the whole map inside the
  trunk (squeeze-excite does), the dilated network's map sampled every ``32 / output_stride``
  pixels equals the strided network's map.
* ``dilate_first=True`` (MobileNetV3): the *new* dilation already, as torchvision's
  ``mobilenet_v3_large(dilated=True)`` (which its DeepLabV3 and LR-ASPP models use) does, so
  that its segmentation weights give the same function here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

OUTPUT_STRIDES = (8, 16, 32)


def stage_info(num_chs: int, reduction: int, module: str) -> dict[str, Any]:
    """One ``feature_info`` entry: the output of ``module`` has ``num_chs`` channels at
    ``1/reduction`` of the input resolution."""
    return {"num_chs": num_chs, "reduction": reduction, "module": module}


class Step(NamedTuple):
    """How to build one layer of a trunk at the tracker's output stride."""

    stride: int
    """The stride to build the layer with: 1 (or less than nominal) where dilation replaced it."""
    first_dilation: int
    """Dilation of the layer's strided operation and of what comes before it in the layer."""
    dilation: int
    """Dilation of what comes after the strided operation, and of every later layer."""
    strided: bool
    """The layer downsamples by design: its downsampling form (projection shortcut, pooled
    branch, ...) is built even where ``stride`` is 1, so parameters do not change."""


class StageTracker:
    """Tracks reduction and dilation through a trunk built for ``output_stride``, and collects
    ``feature_info`` with the true reductions.

    ``reduction`` starts at 1 (the input); ``dilate_first`` is the family's choice for the first
    layer of a dilated stage (see the module docstring).
    """

    def __init__(self, output_stride: int = 32, dilate_first: bool = False) -> None:
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
        self.output_stride, self.dilate_first = output_stride, dilate_first
        self.reduction, self.dilation = 1, 1
        self.feature_info: list[dict[str, Any]] = []

    def layer(self, stride: int = 1) -> Step:
        """The :class:`Step` for the next layer, whose nominal stride is ``stride``."""
        previous = self.dilation
        kept = stride if self.reduction * stride <= self.output_stride else max(
            1, self.output_stride // self.reduction)
        self.reduction *= kept
        self.dilation *= stride // kept
        first = self.dilation if self.dilate_first else previous
        return Step(kept, first, self.dilation, stride > 1)

    def end_stage(self, num_chs: int, module: str) -> None:
        """Record that the output of ``module`` (``num_chs`` channels) ends a stage."""
        self.feature_info.append(stage_info(num_chs, self.reduction, module))
