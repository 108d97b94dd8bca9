"""Allocation of the removed channels: uniform and global shares, caps, rounding, the search."""

from __future__ import annotations

import pytest
import torch

from lightnets.prune.allocate import removal_count, search_ratio, select_channels
from lightnets.prune.workflow import step_epochs


def test_uniform_takes_the_same_share_of_every_group_lowest_first():
    scores = {"a": torch.tensor([5.0, 1.0, 3.0, 2.0]), "b": torch.arange(10.0)}
    assert select_channels(scores, 0.5, "uniform") == {"a": [1, 3], "b": [0, 1, 2, 3, 4]}


def test_global_takes_the_lowest_scores_of_the_whole_network():
    scores = {"a": torch.tensor([0.1, 0.2, 5.0, 6.0]), "b": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    assert select_channels(scores, 0.5, "global") == {"a": [0, 1], "b": [0, 1]}
    scores = {"a": torch.tensor([0.1, 0.2, 0.3, 0.4]), "b": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    # all four of a's are lowest, but a group keeps at least one channel
    assert select_channels(scores, 0.5, "global") == {"a": [0, 1, 2], "b": []}


def test_global_takes_exactly_the_share_asked_when_scores_tie():
    # taylor scores every channel no gradient reached 0: a threshold would take all eight
    scores = {"a": torch.zeros(4), "b": torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 2.0])}
    assert select_channels(scores, 0.3, "global") == {"a": [0, 1, 2], "b": []}


def test_removal_count_caps_and_rounds():
    assert removal_count(10, 10, 1) == 9          # never the whole group
    assert removal_count(100, 95, 1) == 90        # at most 90%
    assert removal_count(64, 21, 8) == 24         # 43 kept -> 40, the nearest multiple of 8
    assert removal_count(64, 3, 8) == 0           # 61 kept -> 64: nothing removed
    assert removal_count(6, 3, 8) == 3            # narrower than 8: no rounding


def test_search_finds_the_smallest_ratio_meeting_the_target():
    ratio = search_ratio(lambda r: round(1000 * (1 - r)), target=400)
    assert 0.599 < ratio < 0.602
    with pytest.raises(ValueError, match="cannot reach 10 MACs"):
        search_ratio(lambda r: 500, target=10)


def test_fine_tuning_epochs_are_shared_over_the_steps():
    assert step_epochs(5, 1) == [5]
    assert step_epochs(5, 2) == [2, 3]
    assert step_epochs(6, 3) == [2, 2, 2]
    assert step_epochs(0, 3) == [0, 0, 0]
