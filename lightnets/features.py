"""Use any classification model of the zoo as a multi-scale backbone.

``create_backbone(name, out_indices)`` is ``create_model(name, features_only=True,
out_indices=out_indices)``: the trunk alone, returning the maps of the selected stages (the
feature pyramid a detector or segmenter consumes, as in FPN, Lin et al. 2017), at any
``output_stride`` (32, 16 or 8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightnets.models.base import FeatureNet
from lightnets.registry import create_model


def create_backbone(name: str, out_indices: Sequence[int] | None = None,
                    **kwargs: Any) -> FeatureNet:
    """A registered classifier's trunk returning the maps of the stages in ``out_indices``
    (indices into its ``feature_info``; default all); ``kwargs`` go to its constructor
    (``output_stride``, ``width_mult``, ...)."""
    return create_model(name, features_only=True, out_indices=out_indices, **kwargs)
