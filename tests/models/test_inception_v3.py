"""Inception v3: torchvision equivalence, complexity, minimum input, auxiliary classifier."""

from __future__ import annotations

import torch

import lightnets
from lightnets.profile import count_complexity
from tests.models.conftest import InceptionChecks


class TestInceptionFamily(InceptionChecks):
    """The checks shared with GoogLeNet."""

    name, function_size, min_size = "inception_v3", 87, 75
    aux_count, aux_weight, aux_size = 1, 0.4, 75


def test_default_complexity_is_torchvision():
    inception = count_complexity("inception_v3")
    assert inception.params == 23_834_568 and round(inception.macs / 1e6) == 5713
    assert inception.input_size == (3, 299, 299)
    with torch.device("meta"):
        aux = lightnets.create_model("inception_v3", aux_logits=True)
    assert sum(p.numel() for p in aux.parameters()) == 27_161_264
