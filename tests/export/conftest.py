"""Export test helpers: BatchNorms with real statistics, relative error, zoo export sources."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

import lightnets
from lightnets.export import ModelSource
from lightnets.export.source import imagenet_preprocess
from lightnets.testing import randomise
from lightnets.train import TrainConfig, train
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


def train_tiny_digits(runs_dir) -> Path:
    """The best checkpoint of MobileNetV1 x0.25 after two epochs on the digits (about 60% top-1,
    in seconds): a trained model for the int8 accuracy gates to guard."""
    result = train(TrainConfig(model="mobilenet_v1_x0_25", epochs=2, batch_size=32,
                               optimizer="adamw", lr=3e-3, weight_decay=0.0, augment=False,
                               label_smoothing=0.0, warmup_epochs=0.0, progress=False,
                               runs_dir=str(runs_dir), name="tiny"))
    assert result.best_score > 0.3  # well above chance (10%): the gate has something to guard
    return result.best_checkpoint


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    """:func:`train_tiny_digits` once per test module (the tests that read it are ``slow``)."""
    return train_tiny_digits(tmp_path_factory.mktemp("runs"))
