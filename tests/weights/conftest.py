"""Weights test helpers: one torch thread (convolutions crawl when more threads spin than there
are free cores, as under ``pytest -n 2`` on two)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
