"""The check that pruning removes exactly the chosen channels, for any model.

Zero some channels where they are made (the filters, biases and BatchNorm affine terms that
produce them, in every layer of their group), so that they carry nothing; removing exactly those
channels must then leave the outputs unchanged. A wrong index mapping anywhere (a concatenation
offset, a residual group, a shuffle, a flatten) removes a live channel and shows as a difference.
"""

from __future__ import annotations

import torch
from torch import nn

from lightnets.prune.graph import PruningGraph


def every_nth_channel(graph: PruningGraph, step: int = 4) -> dict[str, list[int]]:
    """Channels 1, 1 + step, 1 + 2 step, ... of every prunable group."""
    return {name: list(range(1, graph.channels(name), step)) for name in graph.groups}


@torch.no_grad()
def silence_channels(graph: PruningGraph, removals: dict[str, list[int]]) -> None:
    """Zero what produces channels ``removals`` of each group, in every layer of the group."""
    for name, idxs in removals.items():
        root = graph.groups[name][0].dep
        for dep, channels in graph.dg.get_pruning_group(root.target.module, root.handler, idxs):
            layer = dep.target.module
            if graph.dg.is_out_channel_pruning_fn(dep.handler) and isinstance(
                    layer, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
                layer.weight[channels] = 0
                if layer.bias is not None:
                    layer.bias[channels] = 0


@torch.no_grad()
def removal_error(model: nn.Module, x: torch.Tensor, step: int = 4) -> float:
    """Silence every ``step``-th channel of each prunable group of ``model``, prune them, and
    return the largest |difference| of the eval-mode outputs over the largest |output|.
    ``model`` ends pruned."""
    model.eval()
    graph = PruningGraph(model)
    removals = every_nth_channel(graph, step)
    silence_channels(graph, removals)
    reference = model(x)
    graph.prune(removals)
    return float((model(x) - reference).abs().max() / reference.abs().max())
