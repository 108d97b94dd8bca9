"""Shared fixtures: models are built once per worker and name (``xdist_group`` keeps all tests of
one model on one worker)."""

from __future__ import annotations

import functools

import pytest
import torch

import lightnets


def zoo_params(pattern: str = "*") -> list:
    """``list_models()`` as pytest params grouped per model for pytest-xdist."""
    return [pytest.param(name, marks=pytest.mark.xdist_group(name), id=name)
            for name in lightnets.list_models(pattern)]


@functools.lru_cache(maxsize=1)
def cached_model(name: str, num_classes: int = 7) -> torch.nn.Module:
    """A model built once per worker (tests must not mutate it)."""
    torch.manual_seed(0)
    return lightnets.create_model(name, num_classes=num_classes)


def small_input(model: torch.nn.Module, batch: int = 2, scale: int = 1) -> torch.Tensor:
    """A random batch at the model's smallest supported size (times ``scale``)."""
    height, width = model.min_input_size
    torch.manual_seed(1)
    return torch.randn(batch, model.in_chans, height * scale, width * scale)
