"""Measurement: exact complexity counting on the meta device, summaries and benchmarks."""

from lightnets.profile.counter import Complexity, count_complexity, meta_model
from lightnets.profile.model_summary import LayerStats, ModelSummary, summary

__all__ = ["Complexity", "LayerStats", "ModelSummary", "count_complexity", "meta_model", "summary"]
