"""Segmenter test helpers: a registered segmenter beside torchvision's, with the same weights."""

from __future__ import annotations

import torchvision
from torch import nn

import lightnets
from tests.conftest import copy_by_order, randomise


def torchvision_twins(name: str) -> tuple[nn.Module, nn.Module]:
    """``(ours, torchvision's)`` for one of torchvision's six segmentation models, torchvision's
    with random weights and BatchNorm statistics and ours loaded with them by position."""
    aux = {} if name.startswith("lraspp") else {"aux_loss": True}
    theirs = torchvision.models.get_model(name, weights=None, weights_backbone=None, **aux)
    randomise(theirs)
    ours = lightnets.create_model(name)
    copy_by_order(theirs, ours)
    return ours.eval(), theirs.eval()
