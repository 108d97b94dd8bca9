"""One optimisation step as the trainer takes it, in two halves so the loop can stop a diverged
loss before any update: :meth:`TrainStep.forward` (autocast forward and the task's loss, with
the auxiliary heads' and optionally a teacher's soft targets) and :meth:`TrainStep.update`
(backward, clipping, the optimiser and schedule). ``lightnets bench --mode train`` times this
same step."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from lightnets.tasks import CLASSIFICATION_TASK, Task, get_task
from lightnets.train.distill import distillation_loss


class TrainStep:
    """Forward and update of ``model`` (a lightnets model of ``task``, possibly wrapped by
    DistributedDataParallel or ``torch.compile``) on batches already on its device."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                 scaler: torch.amp.GradScaler | None = None,
                 amp_dtype: torch.dtype | None = None, label_smoothing: float = 0.0,
                 aux_weight: float = 0.0, grad_clip: float | None = None,
                 teacher: nn.Module | None = None, distill_alpha: float = 0.7,
                 distill_temperature: float = 4.0, task: Task | str = CLASSIFICATION_TASK,
                 loss: str | None = None) -> None:
        device_type = next(model.parameters()).device.type
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.scaler = scaler or torch.amp.GradScaler(device_type, enabled=False)
        self.autocast = (torch.autocast(device_type, dtype=amp_dtype) if amp_dtype
                         else nullcontext())
        self.label_smoothing, self.aux_weight, self.grad_clip = (label_smoothing, aux_weight,
                                                                 grad_clip)
        self.teacher, self.distill_alpha, self.distill_temperature = (teacher, distill_alpha,
                                                                      distill_temperature)
        self.task = get_task(task) if isinstance(task, str) else task
        self.loss = loss  # the task's choice of loss (--loss), None: its default

    def forward(self, images: torch.Tensor | list, labels: torch.Tensor | list
                ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(outputs, loss)``: the task's loss of the labels (with the auxiliary heads'),
        blended with the distillation term when there is a teacher (classifiers). A detector
        takes lists of images and targets and gives ``(None, the sum of its losses)``."""
        with self.autocast:
            logits, loss = self.task.forward_loss(self.model, images, labels, self.aux_weight,
                                                  self.label_smoothing, self.loss)
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher(images)
                loss = ((1 - self.distill_alpha) * loss + self.distill_alpha
                        * distillation_loss(logits, teacher_logits, self.distill_temperature))
        return logits, loss

    def update(self, loss: torch.Tensor) -> None:
        """Backward and one optimiser and schedule step (the scaler is a no-op unless fp16)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
