"""Measurement: exact complexity counting on the meta device, summaries, model information
beside the published numbers, and benchmarks."""

from lightnets.profile.counter import Complexity, count_complexity
from lightnets.profile.model_info import ModelInfo, model_info
from lightnets.profile.model_summary import LayerStats, ModelSummary, summary

__all__ = ["Complexity", "LayerStats", "ModelInfo", "ModelSummary", "count_complexity",
           "model_info", "summary"]
