"""Fine-tuning with a frozen backbone: for the first epochs only the new classifier learns
(a linear probe; the pretrained features stay as they are), then the whole network does.

While frozen, the backbone's parameters get no gradient (the optimiser, built over all of them,
skips a parameter without one) and its BatchNorm layers run in eval mode, so their statistics
stay the pretrained ones too.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from lightnets.train.precise_bn import batchnorms
from lightnets.weights.layout import layout_of


def backbone_parameters(model: nn.Module, name: str, model_args: dict[str, Any]) -> list[str]:
    """The names of the parameters outside the classifier (what ``reset_classifier`` does not
    replace, auxiliary heads' final layers included)."""
    args = {k: v for k, v in model_args.items() if k not in ("num_classes", "in_chans")}
    classifier = layout_of(name, **args).classifier
    return [key for key, _ in model.named_parameters() if key not in classifier]


def freeze_backbone(model: nn.Module, backbone: list[str], frozen: bool) -> None:
    """Stop (``frozen``) or resume the backbone's learning; call after ``model.train()``."""
    names = set(backbone)
    for key, parameter in model.named_parameters():
        if key in names:
            parameter.requires_grad_(not frozen)
    if frozen:
        for norm in batchnorms(model):
            norm.eval()
