"""Augmentation drawn from a seed per sample, which the main process hands out with the sample's
index, so that what a training loader yields depends on the main process's RNG alone: not on
the loader's processes, how many there are, what they drew in earlier epochs (persistent
workers keep their RNG from one epoch to the next, which a resumed run cannot reproduce) or
what they prefetched and threw away. A run killed and resumed then augments exactly as an
uninterrupted one, since checkpoints capture the main process's RNG (train/rng.py)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info


class SeededSampler(Sampler):
    """``(index, seed)`` for each index of ``sampler``: one draw from the main process's torch
    RNG per pass (epoch), the samples' seeds counting on from it."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start = int(torch.randint(0, 2**62, ()).item())
        for offset, index in enumerate(self.sampler):
            yield index, start + offset


class SeededSamples(Dataset):
    """``dataset[index]`` with torch's, Python's and NumPy's RNGs seeded from the ``seed`` that
    :class:`SeededSampler` paired with ``index``. In a loader process the seeding stays (each
    sample seeds afresh); in the main process (no loader processes) the RNGs are put back after,
    so dropout and the data order draw as if the sample had drawn nothing."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        with contextlib.ExitStack() as stack:
            if get_worker_info() is None:
                stack.enter_context(kept_rng())
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            return self.dataset[index]


@contextlib.contextmanager
def kept_rng() -> Iterator[None]:
    """Put torch's (CPU), Python's and NumPy's global RNG states back on leaving."""
    python, numpy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy)
