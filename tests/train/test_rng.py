"""RNG state: captured, saved as plain data, restored to the same random streams."""

from __future__ import annotations

import random

import numpy as np
import torch

from lightnets.checkpoint import save_checkpoint
from lightnets.train.rng import capture_rng, restore_rng


def test_rng_states_round_trip_through_weights_only_load(tmp_path):
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    save_checkpoint({"rng": capture_rng()}, tmp_path / "rng.pt")
    first = (torch.rand(3), random.random(), np.random.rand())
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(first[0], again[0]) and first[1:] == again[1:]
