"""An exponential moving average of a model's weights (Polyak & Juditsky, "Acceleration of
Stochastic Approximation by Averaging", 1992; in the exponential form of TensorFlow's
``ExponentialMovingAverage``, which the MobileNet, EfficientNet and timm recipes train with).

After every optimiser step each floating-point tensor of the model's state, BatchNorm's running
statistics included, moves the average towards itself: ``ema = d * ema + (1 - d) * weight``.
Integer buffers (BatchNorm's batch counters) are copied. The decay warms up as TensorFlow's does
with ``num_updates``: ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so a short
run averages over roughly its last ``n / 9`` steps instead of still holding its random start
(at timm's default decay 0.9998 a plain average would remember the first 5,000 steps).

A small class rather than ``torch.optim.swa_utils.AveragedModel``: that one keys its state
``module.*`` beside an ``n_averaged`` counter (a checkpoint here holds the model's own keys, so
`lightnets eval`, export and predict load the average like any weights), it would average the
integer counters with the floats, and it has no decay warm-up.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

# timm's default --model-ema-decay
EMA_DECAY = 0.9998


class ModelEma:
    """The moving average of ``model``'s state, held in ``module`` (a frozen copy in eval
    mode, on the model's device and memory format)."""

    def __init__(self, model: nn.Module, decay: float = EMA_DECAY) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.updates = decay, 0
        self._pairs = self._pair_tensors(model)

    def _pair_tensors(self, model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # the same tensor objects stay in place through load_state_dict, DDP and SyncBatchNorm
        # conversion (which keeps each Parameter and buffer), so they are paired once
        ours, theirs = self.module.state_dict(keep_vars=True), model.state_dict(keep_vars=True)
        if list(ours) != list(theirs):
            raise ValueError("the EMA copy and the model hold different tensors")
        pairs, seen = [], set()
        for key, tensor in theirs.items():
            if id(tensor) not in seen:  # a tensor shared under two keys is averaged once
                seen.add(id(tensor))
                pairs.append((ours[key].detach(), tensor.detach()))
        return pairs

    def current_decay(self) -> float:
        """The decay the next update applies (warmed up over the first updates)."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the model's current state (after an optimiser step)."""
        weight = 1.0 - self.current_decay()
        averaged, current = [], []
        for mine, theirs in self._pairs:
            if mine.is_floating_point():
                averaged.append(mine)
                current.append(theirs)
            else:
                mine.copy_(theirs)
        if averaged:
            torch._foreach_lerp_(averaged, current, weight)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the averaged state (the model's keys), decay and count."""
        return {"model": self.module.state_dict(), "decay": self.decay, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
