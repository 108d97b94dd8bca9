"""Semantic segmentation: any head of ``lightnets.layers`` (FCN, DeepLabV3, DeepLabV3+, LR-ASPP)
on the trunk of any classifier of the zoo at output stride 8, 16 or 32, and the registered
standard pairs (importing this package registers them)."""

from lightnets.segment import zoo as _zoo  # noqa: F401  (registers the named segmenters)
from lightnets.segment.segmenter import HEADS, Segmenter, create_segmenter

__all__ = ["HEADS", "Segmenter", "create_segmenter"]
