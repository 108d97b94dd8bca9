"""From a peer's state dict to ours: the family's renaming rules, the declared reshapes, and the
check that the result is exactly the model's tensors.

Keys are renamed by the rules a person wrote beside the family (``PeerWeights.keys``), never by
position: two neighbouring tensors of the same shape would silently swap. The renamed dictionary
must then hold every tensor of the model, with its shape, and nothing else; :class:`Fit` lists
what does not fit. Only BatchNorm's ``num_batches_tracked`` counters may be absent (older
torchvision files predate them; they do not change outputs): they start at zero.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

COUNTER = "num_batches_tracked"


def rename(state: Mapping[str, torch.Tensor], rules: Sequence[tuple[str, str]]
           ) -> dict[str, torch.Tensor]:
    """Each key rewritten by every rule in turn (``re.sub``, first occurrence)."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    renamed: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for key, tensor in state.items():
        new = key
        for pattern, replacement in compiled:
            new = pattern.sub(replacement, new, count=1)
        if new in renamed:
            raise ValueError(f"the rules map both {origin[new]!r} and {key!r} to {new!r}")
        renamed[new], origin[new] = tensor, key
    return renamed


@dataclass
class Fit:
    """A renamed state dict set against a model's tensors (``reference``: key -> shape)."""

    state: dict[str, torch.Tensor]
    unexpected: list[str] = field(default_factory=list)   # keys the model has no place for
    missing: list[str] = field(default_factory=list)      # the model's keys the file lacks
    mismatched: list[str] = field(default_factory=list)   # "key: file shape vs model shape"

    @property
    def ok(self) -> bool:
        return not (self.unexpected or self.missing or self.mismatched)

    @property
    def problems(self) -> int:
        return len(self.unexpected) + len(self.missing) + len(self.mismatched)

    def describe(self, limit: int = 4) -> str:
        """One line naming what does not fit (the first ``limit`` of each kind)."""
        def listed(items: list[str]) -> str:
            more = f" and {len(items) - limit} more" if len(items) > limit else ""
            return ", ".join(items[:limit]) + more

        parts = []
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} tensor(s) with no place in the model "
                         f"({listed(self.unexpected)})")
        if self.missing:
            parts.append(f"{len(self.missing)} of the model's tensor(s) missing "
                         f"({listed(self.missing)})")
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} of the wrong shape ({listed(self.mismatched)})")
        return "; ".join(parts)


def fit(state: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Size],
        reshaped: Sequence[str] = ()) -> Fit:
    """Check a renamed state against the model's ``reference`` shapes. Keys in ``reshaped``
    take the model's shape when they hold as many numbers (a 1x1 convolution read as a
    fully-connected layer); missing step counters start at zero."""
    result = Fit({})
    for key, tensor in state.items():
        shape = reference.get(key)
        if shape is None:
            result.unexpected.append(key)
            continue
        if tensor.shape != shape and key in reshaped and tensor.numel() == math.prod(shape):
            tensor = tensor.reshape(shape)
        if tensor.shape != shape:
            result.mismatched.append(f"{key}: {tuple(tensor.shape)} vs {tuple(shape)}")
            continue
        result.state[key] = tensor
    for key in reference:
        if key in state:
            continue
        if key.endswith(COUNTER):
            result.state[key] = torch.zeros((), dtype=torch.long)
        else:
            result.missing.append(key)
    return result


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """A first-convolution kernel made for ``in_chans`` input channels, as timm adapts a
    3-channel one: summed over the channels for one (a grey image is R = G = B), else the RGB
    kernels repeated and scaled by ``3 / in_chans`` so the output keeps its scale."""
    source_chans = weight.shape[1]
    if in_chans == source_chans:
        return weight
    if source_chans != 3:
        raise ValueError(f"cannot adapt a {source_chans}-channel first convolution to "
                         f"{in_chans} channels (only 3-channel ones)")
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = math.ceil(in_chans / 3)
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (3 / in_chans)
