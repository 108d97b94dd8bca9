"""Checking an exported artefact against the eager model it came from.

Both run on the same batches, random normal ones and real images (scikit-learn's bundled digit
scans, resized to the model's input and normalised with its preprocessing), at batch sizes other
than the one traced, so a batch size baked into the graph is caught too. The error is the
largest absolute difference of the logits relative to the output scale (the largest absolute
logit of the eager model), so one tolerance serves models whose logits are 0.01 or 100.

Eager fp32 is not exact either: a trained segmenter's logits can carry a rounding error of 1e-3
of their scale on random inputs (large, cancelling sums in the decoder), and a correct artefact,
which rounds differently, then differs from eager by as much. So where they differ beyond the
tolerance, both are also compared with a float64 copy of the reference model, and the artefact
passes when its error against float64 is within the tolerance or within
:data:`EAGER_ERROR_FACTOR` times eager fp32's own error on the same inputs: a file is blamed
only for what eager fp32 cannot itself reach.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lightnets.files import first_line
from lightnets.optional import require

DEFAULT_TOLERANCE = 1e-4
# A correct artefact runs the same arithmetic in another order (fused BatchNorm, other kernels),
# so its fp32 rounding error is another draw of eager's: of the same size, give or take a factor
# of about 2 (measured on a trained segmenter: ONNX Runtime 4.0e-4, eager 1.1e-3 of the scale
# against float64), but a clean CI run measured a fused file 5.9x eager's error on the same
# segmenter (3.29e-3 against 5.57e-4: BatchNorm folded in fp32 adds its own rounding). 10 leaves
# room for that; a wrong weight shifts the output by orders of magnitude more than fp32 rounding
# (tests/export/test_verify_reference.py).
EAGER_ERROR_FACTOR = 10.0
Runner = Callable[[torch.Tensor], torch.Tensor]


class VerificationError(ValueError):
    """The artefact's outputs differ from the eager model's beyond tolerance."""


@dataclass
class Comparison:
    """Eager vs artefact on one batch; ``reference_error`` and ``artefact_error``: eager fp32's
    and the artefact's largest difference from the float64 reference, relative to the output
    scale (None when the model does not run in float64)."""

    inputs: str
    batch: int
    max_abs_diff: float
    output_scale: float
    top1_agreement: float
    reference_error: float | None = None
    artefact_error: float | None = None

    @property
    def relative(self) -> float:
        return self.max_abs_diff / self.output_scale if self.output_scale > 0 else self.max_abs_diff

    def allowed(self, tolerance: float) -> float:
        """The largest accepted artefact error against float64: ``tolerance``, or
        :data:`EAGER_ERROR_FACTOR` times eager fp32's own error where that is larger."""
        return max(tolerance, EAGER_ERROR_FACTOR * (self.reference_error or 0.0))

    def passes(self, tolerance: float) -> bool:
        """Within ``tolerance`` of eager fp32, or as close to float64 as eager fp32 gets."""
        return self.relative <= tolerance or (
            self.artefact_error is not None and self.artefact_error <= self.allowed(tolerance))

    def shortfall(self, tolerance: float) -> float:
        """How far from failing (above 1: failed), the smaller of the two rules' ratios."""
        plain = self.relative / tolerance
        if self.artefact_error is None:
            return plain
        return min(plain, self.artefact_error / self.allowed(tolerance))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "relative": self.relative}


@dataclass
class Verification:
    """All comparisons of one artefact; it passes when every comparison :meth:`passes
    <Comparison.passes>` ``tolerance``."""

    comparisons: list[Comparison]
    tolerance: float
    notes: list[str] = field(default_factory=list)

    @property
    def worst(self) -> Comparison:
        return max(self.comparisons, key=lambda c: c.shortfall(self.tolerance))

    @property
    def passed(self) -> bool:
        return all(c.passes(self.tolerance) for c in self.comparisons)

    @property
    def max_relative(self) -> float | None:
        # None: a specification check, nothing was run (a Core ML file on Linux)
        return self.worst.relative if self.comparisons else None

    def verdict(self) -> str:
        """The check's outcome in one line."""
        if not self.comparisons:
            return "check passed: specification only, the file was not run (see the notes)"
        worst = self.worst
        if worst.relative <= self.tolerance or worst.artefact_error is None:
            return (f"check {'passed' if self.passed else 'failed'}: max relative difference "
                    f"{self.max_relative:.2e} {'<=' if self.passed else '>'} "
                    f"{self.tolerance:.0e}")
        return (f"check {'passed' if self.passed else 'failed'}: max relative difference "
                f"{worst.relative:.2e} from eager fp32 on {worst.inputs} inputs; against "
                f"float64 the file is off by {worst.artefact_error:.2e} "
                f"{'<=' if self.passed else '>'} {worst.allowed(self.tolerance):.2e} (eager "
                f"fp32 is off by {worst.reference_error:.2e})")

    def lines(self) -> list[str]:
        """One human-readable line per comparison, then the notes."""
        return [comparison_line(c, self.tolerance) for c in self.comparisons] + self.notes

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "tolerance": self.tolerance,
                "eager_error_factor": EAGER_ERROR_FACTOR, "max_relative": self.max_relative,
                "comparisons": [c.as_dict() for c in self.comparisons], "notes": self.notes}


def comparison_line(c: Comparison, tolerance: float) -> str:
    """One comparison in words, with the float64 errors when there are some."""
    exact = "" if c.artefact_error is None else (
        f"; against float64: file {c.artefact_error:.2e}, eager fp32 {c.reference_error:.2e}")
    return (f"{c.inputs} inputs, batch {c.batch}: max |diff| {c.max_abs_diff:.3g} "
            f"(output scale {c.output_scale:.3g}, relative {c.relative:.2e}, tolerance "
            f"{tolerance:.0e}{exact}), top-1 agreement {c.top1_agreement:.0%}")


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


def decisions(logits: torch.Tensor) -> torch.Tensor:
    """The predicted class per image or pixel: the arg-max, or for one channel (a binary
    segmenter, whose arg-max would always agree) the sign of the logit, its sigmoid above 0.5."""
    return logits[:, 0] > 0 if logits.shape[1] == 1 else logits.argmax(1)


def compare(reference: torch.Tensor, candidate: torch.Tensor, inputs: str,
            exact: torch.Tensor | None = None) -> Comparison:
    """The :class:`Comparison` of two logit batches, and of both with ``exact`` (the float64
    reference's) when given."""
    reference, candidate = reference.detach().float(), candidate.detach().float()
    if reference.shape != candidate.shape:
        raise VerificationError(f"artefact output shape {tuple(candidate.shape)} differs from "
                                f"the eager model's {tuple(reference.shape)} ({inputs} inputs)")
    agreement = (decisions(reference) == decisions(candidate)).float().mean().item() \
        if reference.dim() in (2, 4) and reference.shape[1] > 0 else 1.0
    scale = reference.abs().max().item()
    comparison = Comparison(inputs, reference.shape[0], (reference - candidate).abs().max().item(),
                            scale, agreement)
    if exact is not None:
        exact, unit = exact.detach().double(), scale if scale > 0 else 1.0
        comparison.reference_error = (reference.double() - exact).abs().max().item() / unit
        comparison.artefact_error = (candidate.double() - exact).abs().max().item() / unit
    return comparison


class Float64Reference:
    """A float64 copy of ``model`` run on float64 inputs, made on first use: only a comparison
    beyond the tolerance asks for it (copying and running a large model in float64 costs several
    times its fp32 forward). Returns None, and ``note`` says why, when the model does not run
    in float64 (an operation without a float64 kernel, a cast inside ``forward``)."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.exact, self.note = model, None, None

    def __call__(self, x: torch.Tensor) -> torch.Tensor | None:
        if self.note is not None:
            return None
        try:
            if self.exact is None:
                self.exact = copy.deepcopy(self.model).double().eval()
            return self.exact(x.double())
        except (RuntimeError, TypeError) as error:
            self.note = (f"no float64 reference ({type(error).__name__}: "
                         f"{str(error).strip().splitlines()[0]}): compared with eager fp32 alone")
            return None


@torch.no_grad()
def verify(reference: nn.Module, run: Runner, input_size: tuple[int, int, int],
           preprocess: dict[str, Any] | None = None, tolerance: float = DEFAULT_TOLERANCE,
           real: bool = True, batch_sizes: tuple[int, int] = (3, 5),
           dynamic_size: bool = False) -> Verification:
    """Compare ``run`` (the artefact) with the eager ``reference`` on a random batch and, when
    ``real``, a batch of real images (``batch_sizes``: their sizes; neither is the traced batch
    of 2); with ``dynamic_size`` the real images come at another height and width than the
    traced ones (and the random ones at the traced size). A batch that differs beyond
    ``tolerance`` is also compared with a float64 copy of ``reference``. Only an artefact that
    fails to run raises (:class:`VerificationError`); a mismatch is raised by :func:`check`."""
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
    exact = Float64Reference(reference)
    comparisons = []
    for label, x in batches:
        eager = reference(x)
        try:
            artefact = run(x)
        except Exception as error:  # e.g. a runtime refusing the size: the file is wrong
            raise VerificationError(f"the artefact failed to run on {label} inputs of shape "
                                    f"{tuple(x.shape)}: {first_line(error)}") from None
        comparison = compare(eager, artefact, label)
        if comparison.relative > tolerance:  # is eager fp32 itself that far from exact?
            comparison = compare(eager, artefact, label, exact(x))
        comparisons.append(comparison)
    if all(comparison.output_scale == 0 for comparison in comparisons):
        notes.append("the eager model's outputs were all zero on every batch compared (dead "
                     "ReLUs at the output?): the check cannot tell this file from a wrong one")
    return Verification(comparisons, tolerance, notes + ([exact.note] if exact.note else []))


def check(verification: Verification, what: str = "artefact") -> Verification:
    """Raise :class:`VerificationError` naming the worst comparison when ``verification`` fails."""
    if not verification.passed:
        worst = verification.worst
        exact = "" if worst.artefact_error is None else (
            f", and against a float64 reference it is off by {worst.artefact_error:.2e} where "
            f"eager fp32 is off by {worst.reference_error:.2e} (accepted: "
            f"{worst.allowed(verification.tolerance):.2e})")
        raise VerificationError(
            f"{what} does not match the eager model: max |diff| {worst.max_abs_diff:.3g} on "
            f"{worst.inputs} inputs is {worst.relative:.2e} of the output scale, above the "
            f"tolerance {verification.tolerance:.0e}{exact}")
    return verification
