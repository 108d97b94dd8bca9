"""``lightnets summary``: the JSON schema, the table and its options, and a too small input."""

from __future__ import annotations

import json

import pytest

SUMMARY_KEYS = {"params", "trainable_params", "macs", "flops", "param_bytes",
                "activation_bytes", "peak_activation_bytes"}


def test_summary_json_schema(run_cli):
    status, out, _ = run_cli("summary", "mobilenet_v2", "--json")
    assert status == 0
    totals = json.loads(out)  # nothing but JSON on stdout
    assert SUMMARY_KEYS <= totals.keys()
    assert all(isinstance(totals[key], int) for key in SUMMARY_KEYS)
    assert totals["params"] == 3504872
    assert totals["macs"] == pytest.approx(300.8e6, rel=0.005)
    assert totals["flops"] == 2 * totals["macs"]
    assert totals["peak_activation_bytes"] < totals["activation_bytes"]
    assert {"name", "input_shapes", "kernel", "params", "macs"} <= totals["layers"][0].keys()


def test_summary_table_and_options(run_cli):
    status, out, _ = run_cli("summary", "mobilenet_v2_x0_5", "--input-size", "64", "--depth", "1")
    assert status == 0
    assert "features" in out and "classifier" in out and "64x64" in out
    assert "features.0" not in out  # depth 1 stops at the children of the model
    status, _, err = run_cli("summary", "mobilenet_v2", "--input-size", "8")
    assert status == 2 and "at least 32x32" in err


def test_summary_of_a_segmenter_is_at_520(run_cli):
    status, out, _ = run_cli("summary", "lraspp_mobilenet_v3_large", "--json", "--depth", "1")
    assert status == 0
    totals = json.loads(out)
    assert totals["input_size"] == [3, 520, 520] and totals["params"] == 3_221_538
    assert totals["macs"] == pytest.approx(2.086e9, rel=1e-3)  # torchvision's published 2.086G
    assert totals["ops"]["elementwise"] > 0  # the bilinear upsampling is counted, apart
    assert {layer["name"] for layer in totals["layers"]} >= {"backbone", "head"}
