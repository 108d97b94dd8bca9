"""Fusing: BatchNorm folded into the convolutions over the whole zoo, on a copy unless in place."""

from __future__ import annotations

import pytest
import torch

from lightnets.export import fuse, remaining_batchnorms
from tests.conftest import cached_model, small_input, zoo_params
from tests.export.conftest import randomized, relative_error


@pytest.mark.parametrize("name", zoo_params())
def test_fuse_matches_and_leaves_no_batchnorm(name):
    model = randomized(cached_model(name))
    x = small_input(model)
    fused = fuse(model)
    assert remaining_batchnorms(fused) == []
    assert not fused.training and not any(p.requires_grad for p in fused.parameters())
    with torch.no_grad():
        reference, output = model(x), fused(x)
    assert reference.abs().max() > 0
    assert relative_error(reference, output) < 1e-4


def test_fuse_copies_unless_inplace():
    model = randomized(cached_model("resnet18"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fuse(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    same = fuse(model, inplace=True)
    assert same is model and remaining_batchnorms(model) == []
