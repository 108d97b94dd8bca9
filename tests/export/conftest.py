"""Export test helpers: BatchNorms with real statistics, relative error, zoo export sources."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import lightnets
from lightnets.export import ModelSource
from lightnets.export.source import imagenet_preprocess
from lightnets.testing import randomise
from tests.conftest import cached_model

SIZE = (3, 32, 32)  # the input of the `model` fixture


@pytest.fixture(scope="module")
def model():
    """ShuffleNet V2 x0.5 with five classes, in eval mode (tests must not mutate it)."""
    torch.manual_seed(0)
    return lightnets.create_model("shufflenet_v2_x0_5", num_classes=5).eval()


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy in eval mode whose BatchNorms have non-trivial statistics and affine terms
    (fresh BNs are near-identity, so folding them wrongly would go unnoticed): the model's own
    weights kept."""
    return randomise(copy.deepcopy(model).eval(), weights="keep", seed=seed)


def relative_error(reference: torch.Tensor, other: torch.Tensor) -> float:
    return ((reference - other).abs().max() / reference.abs().max()).item()


def zoo_source(name: str) -> ModelSource:
    """A zoo model at its smallest input, 7 classes, randomised BN."""
    model = randomized(cached_model(name))
    size = (model.in_chans, *model.min_input_size)
    return ModelSource(model, name, {"num_classes": 7}, size, imagenet_preprocess(size),
                       [f"class{i}" for i in range(7)])
