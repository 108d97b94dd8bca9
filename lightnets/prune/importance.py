"""How much each channel matters: the criteria of ``lightnets prune --method``.

Each scores every channel of a dependency group over all the layers the group ties together
(averaged over them), then divides by the group's mean so that groups compare under global
allocation (Torch-Pruning's group importance, Fang et al. 2023):

* ``l1``: the L1 norm of the filters (Li et al., "Pruning Filters for Efficient ConvNets",
  ICLR 2017), here of every weight slice the channel owns;
* ``bn-scale``: the magnitude of the BatchNorm scale gamma (Liu et al., "Learning Efficient
  Convolutional Networks through Network Slimming", ICCV 2017); groups without a BatchNorm
  (squeeze-excite bottlenecks, SqueezeNet, plain VGG) fall back to ``l1``;
* ``taylor``: the first-order Taylor estimate of the loss change when a channel is removed,
  ``|sum over its weights of gradient x weight|`` (Molchanov et al., "Importance Estimation
  for Neural Network Pruning", CVPR 2019), with gradients of the training loss accumulated
  over a few batches of training images.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from lightnets.optional import require
from lightnets.prune.graph import PruningGraph

tp = require("torch_pruning", "structured pruning")

METHODS = ("l1", "bn-scale", "taylor")


def accumulate_gradients(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
                         ) -> int:
    """Sum the gradients of the cross-entropy (auxiliary heads included, with the model's
    weight) over ``batches``, BatchNorm in eval mode so no statistic moves; returns the number
    of images seen."""
    model.eval()
    model.zero_grad(set_to_none=True)
    device = next(model.parameters()).device
    aux_weight = float(getattr(model, "aux_loss_weight", 0.0))
    seen = 0
    for images, labels in batches:
        images, labels = images.to(device), labels.to(device)
        model.training = True  # the model alone: auxiliary heads run, its layers stay in eval
        try:
            logits, aux = model(images, return_aux=True)
        finally:
            model.training = False
        loss = F.cross_entropy(logits, labels, reduction="sum")
        for extra in aux:
            loss = loss + aux_weight * F.cross_entropy(extra, labels, reduction="sum")
        loss.backward()
        seen += len(labels)
    if not seen:
        raise ValueError("taylor importance needs at least one batch of training images")
    for parameter in model.parameters():  # layers no loss reached count as unimportant
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
    return seen


def channel_scores(graph: PruningGraph, method: str,
                   batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None
                   ) -> dict[str, torch.Tensor]:
    """One score per channel of every prunable group of ``graph`` (on the CPU); low scores are
    pruned first. ``taylor`` needs ``batches`` of training images and labels."""
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; expected one of "
                         f"{', '.join(METHODS)}")
    l1 = tp.importance.GroupMagnitudeImportance(p=1, group_reduction="mean", normalizer="mean")
    scorer = {"l1": l1, "bn-scale": tp.importance.BNScaleImportance(),
              "taylor": tp.importance.GroupTaylorImportance(multivariable=True)}[method]
    if method == "taylor":
        if batches is None:
            raise ValueError("taylor importance needs training batches")
        accumulate_gradients(graph.model, batches)
    scores = {}
    for name, group in graph.groups.items():
        score = scorer(group)
        if score is None:  # no BatchNorm in the group (bn-scale)
            score = l1(group)
        # a group whose every score is 0 (no gradient reached it) divides 0 by 0: all equal
        scores[name] = torch.nan_to_num(score.detach().float().cpu(), nan=0.0)
    if method == "taylor":
        graph.model.zero_grad(set_to_none=True)
    return scores
