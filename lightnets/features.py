"""Use any classification model of the zoo as a multi-scale backbone.

``feature_info`` names the module that ends each stage; :class:`FeatureExtractor` returns those
modules' outputs (the feature pyramid a detector or segmenter consumes, as in FPN, Lin et al. 2017).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lightnets.registry import create_model


class FeatureExtractor(nn.Module):
    """Wraps a zoo model; ``forward`` returns the feature maps of the stages in ``out_indices``
    (default all), shallow to deep. ``channels`` and ``reductions`` describe them."""

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        info = getattr(model, "feature_info", None)
        if not info:
            raise ValueError(f"{type(model).__name__} has no feature_info; expected a lightnets model")
        indices = list(range(len(info))) if out_indices is None else list(out_indices)
        bad = [i for i in indices if not -len(info) <= i < len(info)]
        if bad:
            raise ValueError(f"out_indices {bad} out of range: the model has {len(info)} stages")
        self.model = model
        self.stages = [info[i] for i in indices]
        self.channels = [s["num_chs"] for s in self.stages]
        self.reductions = [s["reduction"] for s in self.stages]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        captured: dict[str, torch.Tensor] = {}
        modules = dict(self.model.named_modules())

        def keep(name: str):
            def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
                captured[name] = output
            return hook

        handles = [modules[s["module"]].register_forward_hook(keep(s["module"]))
                   for s in self.stages]
        try:
            self.model.check_input(x)
            self.model.forward_features(x)
        finally:
            for handle in handles:
                handle.remove()
        return [captured[s["module"]] for s in self.stages]


def create_backbone(name: str, out_indices: Sequence[int] | None = None,
                    **kwargs: Any) -> FeatureExtractor:
    """A registered model as a feature extractor (its classifier is dropped)."""
    model = create_model(name, num_classes=0, **kwargs)
    return FeatureExtractor(model, out_indices)
