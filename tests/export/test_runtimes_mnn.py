"""``--format mnn``: MNN's converter on the ONNX export, checked in MNN. MNN's ``mnnconvert``
script and ``MNN.tools`` import a logger that runs ``pip install`` and reports usage over the
network: an export must start no process and import neither."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.export.runtime_checks import (check_broken_file_is_refused,
                                         check_predict_matches_checkpoint, exported)

pytest.importorskip("MNN", reason="MNN has no wheel for this platform (lightnets[mnn])")


@pytest.mark.slow  # 4-16 s on the shared 2-core machine (5-8 s of CPU)
def test_mnn_export_checks_predicts_and_runs_no_pip(tmp_path, monkeypatch):
    started = []

    def refuse(*args, **kwargs):
        started.append(args)
        raise AssertionError(f"a process was started during an MNN export: {args}")
    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "system", refuse)
    checkpoint, path = exported("mnn", tmp_path)
    assert not started and path.name == "model.mnn"
    assert not [name for name in sys.modules if name.startswith(("MNN.tools", "aliyun"))]
    check_predict_matches_checkpoint(checkpoint, path)


@pytest.mark.slow  # 4-16 s on the shared 2-core machine (5-8 s of CPU)
def test_broken_mnn_file_is_refused_and_removed(tmp_path, monkeypatch):
    check_broken_file_is_refused("mnn", tmp_path, monkeypatch)
