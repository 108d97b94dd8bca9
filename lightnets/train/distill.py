"""Knowledge distillation (Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural
Network", 2015): the student also matches the teacher's outputs softened by a temperature T,
through the KL divergence scaled by T^2 so its gradients keep their size as T changes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightnets.checkpoint import load_checkpoint


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the batch."""
    student = F.log_softmax(student_logits.float() / temperature, dim=1)
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * temperature ** 2


def load_teacher(path: str, num_classes: int, in_chans: int, device: torch.device) -> nn.Module:
    """The teacher from its checkpoint, frozen in eval mode; it must predict the same classes
    from the same channels as the student."""
    checkpoint = load_checkpoint(path, prefer="best")
    checkpoint.check_matches(num_classes=num_classes, in_chans=in_chans, what="teacher")
    teacher = checkpoint.build_model().to(device).eval()
    teacher.requires_grad_(False)
    return teacher
