"""``--format openvino``: OpenVINO IR (.xml + .bin) from the ONNX export, checked in OpenVINO."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.export.runtime_checks import (check_broken_file_is_refused,
                                         check_predict_matches_checkpoint, exported)

pytest.importorskip("openvino", reason="openvino has no wheel for this platform "
                    "(lightnets[openvino])")


@pytest.mark.slow  # 4-16 s on the shared 2-core machine (5-8 s of CPU)
def test_openvino_ir_export_checks_and_predicts(tmp_path):
    checkpoint, path = exported("openvino", tmp_path)
    assert path.name == "model.xml" and (tmp_path / "model.bin").is_file()
    # fp32 weights: save_model would halve them to fp16 by default
    assert (tmp_path / "model.bin").stat().st_size > 3.5 * 700_000
    check_predict_matches_checkpoint(checkpoint, path)


@pytest.mark.slow  # 4-16 s on the shared 2-core machine (5-8 s of CPU)
def test_broken_openvino_file_is_refused_and_removed(tmp_path, monkeypatch):
    check_broken_file_is_refused("openvino", tmp_path, monkeypatch)


# OpenVINO's CPU plugin swaps its own signal stack onto the thread that first compiles and unmaps
# it when the core is released; released on another thread, the first thread's next handled
# signal killed the process with SIGSEGV (how our test workers died; the runner keeps the stack)
RELEASED_ELSEWHERE = """
import ctypes, gc, signal, subprocess, sys, threading
import torch
from lightnets.export.onnx import export_onnx
from lightnets.export.openvino_runtime import openvino_runner

def signal_stack():
    stack = ctypes.create_string_buffer(64)
    assert ctypes.CDLL(None).sigaltstack(None, stack) == 0
    return stack.raw

before = signal_stack()
path = export_onnx(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()), sys.argv[1],
                   (3, 8, 8))
runners = [openvino_runner(path, threads=1)]
runners[0](torch.randn(2, 3, 8, 8))  # a second compilation, at another batch size
assert signal_stack() == before, "the thread's signal stack changed"
releaser = threading.Thread(target=lambda: (runners.clear(), gc.collect()))
releaser.start()
releaser.join()
signal.signal(signal.SIGCHLD, lambda *args: None)  # as a DataLoader with workers leaves it
subprocess.run([sys.executable, "-c", "pass"], check=True)
print("survived")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGCHLD"), reason="POSIX signals")
def test_a_runner_released_on_another_thread_leaves_the_signal_stack_working(tmp_path):
    result = subprocess.run([sys.executable, "-c", RELEASED_ELSEWHERE, str(tmp_path / "m.onnx")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "survived", (
        result.returncode, result.stderr[-2000:])


# OpenVINO's converter reports each conversion to Google Analytics and keeps a client id under
# ~/intel unless the user opted out, set up when openvino is first imported; lightnets declines
# (a fresh process: the telemetry object is a per-process singleton)
CONVERTS = """
import sys
import torch
from pathlib import Path
from lightnets.export.formats import Target
from lightnets.export.runtimes.openvino_ir import openvino_convert
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
openvino_convert(model, Target(Path(sys.argv[1]), (3, 8, 8), True, 1, False, 17))
print("converted")
"""


@pytest.mark.parametrize("declined", [True, False])
def test_the_ir_export_sends_no_usage_statistics(tmp_path, declined):
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    script = CONVERTS if declined else CONVERTS.replace(  # openvino's own behaviour
        "import sys\n", "import sys\nimport openvino\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.xml")],
                            capture_output=True, text=True, timeout=300,
                            env={**env, "HOME": str(home)})
    assert result.returncode == 0 and result.stdout.strip() == "converted", result.stderr[-2000:]
    assert (tmp_path / "m.xml").is_file() and "CI" not in env
    # without lightnets declining, the converter writes its client id (the check can fail)
    assert (home / "intel").exists() != declined, sorted(p.name for p in home.rglob("*"))
