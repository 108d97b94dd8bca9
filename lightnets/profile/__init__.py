"""Measurement: exact complexity counting on the meta device, summaries and benchmarks."""

from lightnets.profile.counter import Complexity, count_complexity, meta_model

__all__ = ["Complexity", "count_complexity", "meta_model"]
