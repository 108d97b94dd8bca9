"""Structured pruning: remove whole channels from a trained model and fine-tune it back.

``prune_model(model, "l1", ratio=0.3)`` prunes any zoo model in place (:mod:`.pruner`, on the
dependency groups of :mod:`.graph`); ``prune_checkpoint(PruneConfig(ckpt, target_macs=0.5))`` is
``lightnets prune``: prune, fine-tune through the training loop, time, report, and write a
checkpoint that rebuilds from its channel plan (:mod:`lightnets.channel_plan`).
"""

from lightnets.prune.graph import PruningGraph
from lightnets.prune.pruner import PruneStep, prune_model
from lightnets.prune.report import PruneReport
from lightnets.prune.workflow import PruneConfig, prune_checkpoint, sweep

__all__ = ["PruneConfig", "PruneReport", "PruneStep", "PruningGraph", "prune_checkpoint",
           "prune_model", "sweep"]
