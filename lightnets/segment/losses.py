"""Segmentation losses and their weighted sums, as ``--loss`` names them: ``ce`` (per-pixel
cross-entropy, the default), ``dice``, ``focal``, ``lovasz``, ``tversky``, and sums such as
``ce+dice`` or ``ce+0.5*dice``.

- Dice: Milletari et al., V-Net: Fully Convolutional Neural Networks for Volumetric Medical
  Image Segmentation, 3DV 2016, arXiv:1606.04797 (the soft Dice of softmax probabilities).
- Tversky: Salehi et al., Tversky loss function for image segmentation using 3D fully
  convolutional deep networks, MLMI 2017, arXiv:1706.05721 (alpha 0.3 on false positives, beta
  0.7 on false negatives, their best setting; Dice is alpha = beta = 0.5).
- Focal: Lin et al., Focal Loss for Dense Object Detection, ICCV 2017, arXiv:1708.02002
  (gamma 2, the paper's choice; no alpha balancing, which the paper ties to its anchors).
- Lovász-softmax: Berman et al., The Lovász-Softmax loss, CVPR 2018, arXiv:1705.08790
  (Alg. 1 and Eq. 12: the Lovász extension of each class's Jaccard loss, averaged over the
  classes present in the batch).

Every loss is multi-class, takes ``(N, C, H, W)`` logits and ``(N, H, W)`` class indices, and
leaves out pixels labelled ``ignore_index`` (the data's 255, passed by the segmentation task,
the home of that fact a floor above): they change neither the value nor any
gradient. The region losses (Dice, Tversky, Lovász) are taken over the whole batch at once and
averaged over the classes present in its labels, so that a class absent from a batch neither
rewards nor punishes it. A one-channel output (binary segmentation, :func:`class_logits`) is
read as the two classes background and foreground.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
TVERSKY_ALPHA, TVERSKY_BETA = 0.3, 0.7  # Salehi et al. 2017, Sec. 3: their best F2 score
FOCAL_GAMMA = 2.0                        # Lin et al. 2017, Sec. 5.1
DEFAULT_LOSS = "ce"
_TERM = re.compile(r"^(?:(?P<weight>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\*)?(?P<name>[a-z]+)$")


def class_logits(logits: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """``(N, C, H, W)`` logits as they are, or one channel ``z`` (binary segmentation) as two,
    ``[logit(threshold), z]``: their softmax is ``[1 - sigmoid(z), sigmoid(z)]`` at the
    default threshold (so cross-entropy over them is binary cross-entropy with logits), and
    their argmax is the foreground exactly where ``sigmoid(z) > threshold``."""
    if logits.shape[1] != 1:
        return logits
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    return torch.cat([torch.full_like(logits, math.log(threshold / (1 - threshold))), logits], 1)


def labelled(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax probabilities ``(P, C)``, class indices ``(P,)`` and one-hot labels ``(P, C)``
    of the ``P`` labelled pixels (the ignored ones dropped before anything is computed)."""
    classes = logits.shape[1]
    flat = logits.float().permute(0, 2, 3, 1).reshape(-1, classes)
    labels = masks.reshape(-1)
    keep = labels != ignore_index
    flat, labels = flat[keep], labels[keep]
    return flat.softmax(1), labels, F.one_hot(labels, classes).to(flat.dtype)


def cross_entropy(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-pixel cross-entropy, the mean over the labelled pixels."""
    if not (masks != ignore_index).any():
        return logits.sum() * 0.0  # no labelled pixel: nothing to learn, a graph still
    return F.cross_entropy(logits.float(), masks, ignore_index=ignore_index,
                           label_smoothing=label_smoothing)


def tversky(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int,
            alpha: float = TVERSKY_ALPHA, beta: float = TVERSKY_BETA, eps: float = 1e-6
            ) -> torch.Tensor:
    """One minus the Tversky index ``TP / (TP + alpha FP + beta FN)`` of the soft (probability)
    counts, per class over the batch, averaged over the classes the labels hold."""
    probs, _, onehot = labelled(logits, masks, ignore_index)
    if not len(probs):
        return logits.sum() * 0.0
    hits = (probs * onehot).sum(0)
    false_pos = (probs * (1 - onehot)).sum(0)
    false_neg = ((1 - probs) * onehot).sum(0)
    index = hits / (hits + alpha * false_pos + beta * false_neg).clamp(min=eps)
    present = onehot.sum(0) > 0
    return 1 - index[present].mean()


def dice(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """One minus the soft Dice coefficient ``2 TP / (2 TP + FP + FN)`` (Milletari et al.'s
    Eq. 1 up to the squares), per class, averaged over the classes the labels hold."""
    return tversky(logits, masks, ignore_index, 0.5, 0.5)


def focal(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int, gamma: float = FOCAL_GAMMA
          ) -> torch.Tensor:
    """``-(1 - p_t)^gamma log p_t`` over the labelled pixels, their mean: cross-entropy whose
    well-classified pixels weigh less."""
    if not (masks != ignore_index).any():
        return logits.sum() * 0.0
    log_p = F.log_softmax(logits.float(), 1)
    valid = masks != ignore_index
    target = torch.where(valid, masks, torch.zeros_like(masks)).unsqueeze(1)
    log_pt = log_p.gather(1, target).squeeze(1)[valid]
    return (-(1 - log_pt.exp()).pow(gamma) * log_pt).mean()


def lovasz_softmax(logits: torch.Tensor, masks: torch.Tensor, ignore_index: int
                   ) -> torch.Tensor:
    """Berman et al.'s Alg. 1 per class: the pixel errors ``|y_c - p_c|`` sorted in decreasing
    order, dotted with the Lovász extension's gradient of the Jaccard loss at that order (the
    increments of ``1 - |y ∩ ŷ| / |y ∪ ŷ|`` as pixels join the predicted set in turn),
    averaged over the classes present in the labels (their Eq. 12, "present" classes)."""
    probs, _, onehot = labelled(logits, masks, ignore_index)
    if not len(probs):
        return logits.sum() * 0.0
    losses = []
    for c in torch.nonzero(onehot.sum(0) > 0).flatten().tolist():
        truth = onehot[:, c]
        errors = (truth - probs[:, c]).abs()
        errors, order = errors.sort(descending=True)
        truth = truth[order]
        total = truth.sum()
        jaccard = 1 - (total - truth.cumsum(0)) / (total + (1 - truth).cumsum(0))
        increments = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        losses.append(errors @ increments)
    return torch.stack(losses).mean()


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "ce": cross_entropy, "dice": dice, "focal": focal, "lovasz": lovasz_softmax,
    "tversky": tversky}


def parse_loss(spec: str) -> tuple[tuple[float, str], ...]:
    """``'ce+0.5*dice'`` -> ``((1.0, 'ce'), (0.5, 'dice'))``; a one-line error naming the bad
    term and what was expected."""
    expected = (f"expected loss names ({', '.join(LOSSES)}) joined by '+', each optionally "
                "weighted as 0.5*dice")
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty loss {spec!r}; {expected}")
    terms: list[tuple[float, str]] = []
    for term in spec.replace(" ", "").lower().split("+"):
        match = _TERM.match(term)
        if match is None or match["name"] not in LOSSES:
            raise ValueError(f"bad loss term {term!r} in {spec!r}; {expected}")
        weight = float(match["weight"]) if match["weight"] else 1.0
        if not weight > 0:
            raise ValueError(f"loss weight of {match['name']!r} in {spec!r} must be positive")
        if match["name"] in [name for _, name in terms]:
            raise ValueError(f"loss {match['name']!r} appears twice in {spec!r}")
        terms.append((weight, match["name"]))
    return tuple(terms)


def make_loss(spec: str, ignore_index: int, label_smoothing: float = 0.0) -> LossFn:
    """The weighted sum ``spec`` names, as one function of ``(logits, masks)`` leaving out
    the pixels labelled ``ignore_index``; ``label_smoothing`` goes to the cross-entropy term.
    One-channel logits are binary (:func:`class_logits`)."""
    terms = parse_loss(spec)

    def loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        logits = class_logits(logits)
        total = None
        for weight, name in terms:
            value = (cross_entropy(logits, masks, ignore_index, label_smoothing)
                     if name == "ce" else LOSSES[name](logits, masks, ignore_index))
            total = weight * value if total is None else total + weight * value
        return total

    return loss
