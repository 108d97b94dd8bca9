"""How many channels each group loses: ``--uniform`` (the same fraction of every group) or
``--global`` (the lowest-scoring channels of the whole network, so groups that matter less lose
more), and the search for the fraction that meets a MACs target."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

ALLOCATIONS = ("global", "uniform")
# No group loses more than this share of its channels, and every group keeps at least one:
# an emptied layer would cut the network.
MAX_GROUP_RATIO = 0.9


def removal_count(channels: int, wanted: int, round_to: int) -> int:
    """How many of ``channels`` to remove when ``wanted`` are asked: capped at
    :data:`MAX_GROUP_RATIO`, and with ``round_to`` > 1 leaving a multiple of it (the nearest;
    convolution kernels run fastest on channel counts that fill their vector blocks)."""
    cap = min(channels - 1, math.floor(MAX_GROUP_RATIO * channels))
    removed = min(max(wanted, 0), cap)
    if round_to > 1 and channels > round_to and removed:
        kept = max(round_to, round_to * round((channels - removed) / round_to))
        removed = min(channels - min(kept, channels), cap)
    return removed


def select_channels(scores: dict[str, torch.Tensor], ratio: float, allocation: str = "global",
                    round_to: int = 1) -> dict[str, list[int]]:
    """The channels to remove from each group (indices into its channels, lowest scores first)
    for removing ``ratio`` of all the prunable channels."""
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {', '.join(ALLOCATIONS)}, got "
                         f"{allocation!r}")
    if not 0 <= ratio < 1:
        raise ValueError(f"the pruning ratio must be in [0, 1), got {ratio}")
    if allocation == "uniform":
        wanted = {name: math.floor(ratio * len(score)) for name, score in scores.items()}
    else:
        # exactly the lowest ``count`` of the network: a threshold would take every channel
        # tied with it (taylor scores many channels 0), far more than asked
        everything = torch.cat(list(scores.values()))
        count = math.floor(ratio * len(everything))
        owner = torch.repeat_interleave(torch.arange(len(scores)),
                                        torch.tensor([len(score) for score in scores.values()]))
        chosen = owner[everything.argsort(stable=True)[:count]].bincount(minlength=len(scores))
        wanted = dict(zip(scores, chosen.tolist()))
    return {name: score.argsort(stable=True)[:removal_count(len(score), wanted[name],
                                                            round_to)].tolist()
            for name, score in scores.items()}


def search_ratio(macs_at: Callable[[float], int], target: int, steps: int = 12) -> float:
    """The smallest pruning ratio whose pruned model has at most ``target`` MACs
    (``macs_at(ratio)``), by bisection; a one-line error when even the most is not enough."""
    high = 0.999
    reachable = macs_at(high)
    if reachable > target:
        raise ValueError(f"cannot reach {target:,} MACs: pruning every prunable group to "
                         f"{1 - MAX_GROUP_RATIO:.0%} of its channels leaves {reachable:,}")
    low = 0.0
    for _ in range(steps):
        middle = (low + high) / 2
        if macs_at(middle) <= target:
            high = middle
        else:
            low = middle
    return high
