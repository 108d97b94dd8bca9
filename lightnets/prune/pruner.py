"""One pruning step on a model in place: score the channels, choose how many each group loses
(for a fraction of the prunable channels, or the fraction that meets a MACs target), remove
them."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from lightnets.profile.counter import count_complexity
from lightnets.prune.allocate import search_ratio, select_channels
from lightnets.prune.graph import PruningGraph
from lightnets.prune.importance import channel_scores


@dataclass
class PruneStep:
    """What one step removed: the ratio of prunable channels, and params / MACs before and after
    (at ``input_size``); ``skipped`` counts the groups kept whole, by reason."""

    ratio: float
    input_size: tuple[int, int, int]
    params_before: int
    macs_before: int
    params_after: int
    macs_after: int
    channels_removed: int
    channels_prunable: int
    skipped: dict[str, int] = field(default_factory=dict)


def prune_model(model: nn.Module, method: str = "l1", target_macs: int | None = None,
                ratio: float | None = None, allocation: str = "global", round_to: int = 8,
                input_size: tuple[int, int, int] | None = None,
                batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
                on_trial: Callable[[int, int], None] | None = None) -> PruneStep:
    """Remove channels from ``model`` (in place): ``ratio`` of its prunable channels, or as few
    as leave at most ``target_macs`` MACs at ``input_size`` (default the model's). ``batches``
    of training images feed the ``taylor`` method; ``on_trial(done, total)`` follows the
    search for the ratio (each trial prunes a copy on the meta device)."""
    if (target_macs is None) == (ratio is None):
        raise ValueError("give exactly one of a MACs target or a pruning ratio")
    size = tuple(input_size or model.default_input_size)
    before = count_complexity(model, size)
    graph = PruningGraph(model)
    skipped = dict(Counter(graph.skipped.values()))
    if not graph.groups:
        reasons = "; ".join(f"{count} group(s) {why}" for why, count in skipped.items())
        raise ValueError(f"{type(model).__name__} has no channels that can be pruned ({reasons})")
    scores = channel_scores(graph, method, batches)
    if target_macs is not None:
        shadow = copy.deepcopy(model).to("meta")
        trials, done = 13, 0  # the first, at the largest ratio, and 12 bisection steps

        def macs_at(trial_ratio: float) -> int:
            nonlocal done
            trial = copy.deepcopy(shadow)
            PruningGraph(trial).prune(select_channels(scores, trial_ratio, allocation, round_to))
            done += 1
            if on_trial:
                on_trial(done, trials)
            return count_complexity(trial, size).macs

        ratio = search_ratio(macs_at, target_macs, steps=trials - 1)
    removals = select_channels(scores, ratio, allocation, round_to)
    graph.prune(removals)
    after = count_complexity(model, size)
    return PruneStep(ratio, size, before.params, before.macs, after.params, after.macs,
                     sum(map(len, removals.values())), sum(map(len, scores.values())), skipped)
