"""Weights test helpers: every test on one torch thread (``tests.conftest.one_thread``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield
