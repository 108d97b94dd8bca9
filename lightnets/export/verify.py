"""Checking an exported artefact against the eager model it came from.

Both run on the same batches, random normal ones and real images (scikit-learn's bundled digit
scans, resized to the model's input and normalised with its preprocessing), at batch sizes other
than the one traced, so a batch size baked into the graph is caught too. The error is the
largest absolute difference of the logits relative to the output scale (the largest absolute
logit of the eager model), so one tolerance serves models whose logits are 0.01 or 100.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lightnets.optional import require

DEFAULT_TOLERANCE = 1e-4
Runner = Callable[[torch.Tensor], torch.Tensor]


class VerificationError(ValueError):
    """The artefact's outputs differ from the eager model's beyond tolerance."""


@dataclass
class Comparison:
    """Eager vs artefact on one batch."""

    inputs: str
    batch: int
    max_abs_diff: float
    output_scale: float
    top1_agreement: float

    @property
    def relative(self) -> float:
        return self.max_abs_diff / self.output_scale if self.output_scale > 0 else self.max_abs_diff

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "relative": self.relative}


@dataclass
class Verification:
    """All comparisons of one artefact; it passes when every relative error is within
    ``tolerance``."""

    comparisons: list[Comparison]
    tolerance: float
    notes: list[str] = field(default_factory=list)

    @property
    def worst(self) -> Comparison:
        return max(self.comparisons, key=lambda c: c.relative)

    @property
    def passed(self) -> bool:
        return all(c.relative <= self.tolerance for c in self.comparisons)

    @property
    def max_relative(self) -> float | None:
        # None: a specification check, nothing was run (a Core ML file on Linux)
        return self.worst.relative if self.comparisons else None

    def verdict(self) -> str:
        """The check's outcome in one line."""
        if not self.comparisons:
            return "check passed: specification only, the file was not run (see the notes)"
        return (f"check {'passed' if self.passed else 'failed'}: max relative difference "
                f"{self.max_relative:.2e} {'<=' if self.passed else '>'} {self.tolerance:.0e}")

    def lines(self) -> list[str]:
        """One human-readable line per comparison, then the notes."""
        out = [f"{c.inputs} inputs, batch {c.batch}: max |diff| {c.max_abs_diff:.3g} "
               f"(output scale {c.output_scale:.3g}, relative {c.relative:.2e}, tolerance "
               f"{self.tolerance:.0e}), top-1 agreement {c.top1_agreement:.0%}"
               for c in self.comparisons]
        return out + self.notes

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "tolerance": self.tolerance,
                "max_relative": self.max_relative,
                "comparisons": [c.as_dict() for c in self.comparisons], "notes": self.notes}


def random_images(input_size: tuple[int, int, int], batch: int = 3, seed: int = 0) -> torch.Tensor:
    """Standard-normal inputs (the scale of normalised images)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *input_size, generator=generator)


def real_images(input_size: tuple[int, int, int], preprocess: dict[str, Any] | None = None,
                count: int = 5) -> torch.Tensor:
    """``count`` real handwritten digits (one per class, cycling), resized to ``input_size``,
    given ``input_size[0]`` channels and normalised with ``preprocess``'s mean and std."""
    datasets = require("sklearn.datasets", "verification on real images")
    digits = datasets.load_digits()
    picks = [int((digits.target == (i % 10)).nonzero()[0][i // 10]) for i in range(count)]
    images = torch.from_numpy(digits.images[picks]).float().div(16.0).unsqueeze(1)
    chans, height, width = input_size
    images = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
    images = images.clamp(0, 1).expand(-1, chans, -1, -1)
    mean = torch.tensor((preprocess or {}).get("mean", [0.5] * chans)).view(1, -1, 1, 1)
    std = torch.tensor((preprocess or {}).get("std", [0.25] * chans)).view(1, -1, 1, 1)
    return ((images - mean) / std).contiguous()


def compare(reference: torch.Tensor, candidate: torch.Tensor, inputs: str) -> Comparison:
    """The :class:`Comparison` of two logit batches."""
    reference, candidate = reference.detach().float(), candidate.detach().float()
    if reference.shape != candidate.shape:
        raise VerificationError(f"artefact output shape {tuple(candidate.shape)} differs from "
                                f"the eager model's {tuple(reference.shape)} ({inputs} inputs)")
    agreement = (reference.argmax(1) == candidate.argmax(1)).float().mean().item() \
        if reference.dim() in (2, 4) and reference.shape[1] > 0 else 1.0
    return Comparison(inputs, reference.shape[0], (reference - candidate).abs().max().item(),
                      reference.abs().max().item(), agreement)


@torch.no_grad()
def verify(reference: nn.Module, run: Runner, input_size: tuple[int, int, int],
           preprocess: dict[str, Any] | None = None, tolerance: float = DEFAULT_TOLERANCE,
           real: bool = True, batch_sizes: tuple[int, int] = (3, 5),
           dynamic_size: bool = False) -> Verification:
    """Compare ``run`` (the artefact) with the eager ``reference`` on a random batch and, when
    ``real``, a batch of real images (``batch_sizes``: their sizes; neither is the traced batch
    of 2); with ``dynamic_size`` the real images come at another height and width than the
    traced ones (and the random ones at the traced size). Nothing is raised here (see
    :func:`check`)."""
    reference = reference.eval()
    batches = [("random", random_images(input_size, batch_sizes[0]))]
    notes = []
    chans, height, width = input_size
    real_size = (chans, height + 24, width + 40) if dynamic_size else input_size
    if real:
        try:
            label = f"real {real_size[1]}x{real_size[2]}" if dynamic_size else "real"
            batches.append((label, real_images(real_size, preprocess, batch_sizes[1])))
        except ValueError as missing:  # scikit-learn absent: say so rather than skip silently
            notes.append(f"real-image check skipped: {missing}")
    comparisons = [compare(reference(x), run(x), label) for label, x in batches]
    return Verification(comparisons, tolerance, notes)


def check(verification: Verification, what: str = "artefact") -> Verification:
    """Raise :class:`VerificationError` naming the worst comparison when ``verification`` fails."""
    if not verification.passed:
        worst = verification.worst
        raise VerificationError(
            f"{what} does not match the eager model: max |diff| {worst.max_abs_diff:.3g} on "
            f"{worst.inputs} inputs is {worst.relative:.2e} of the output scale, above the "
            f"tolerance {verification.tolerance:.0e}")
    return verification
