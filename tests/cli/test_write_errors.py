"""Write errors: read-only and missing output folders, and a full disk, in train, resume, eval,
export, quantize and zoo. Writability is checked before long work; a write that fails anyway is
one line, with the results already computed still printed and the last checkpoint whole.

The commands run in one subprocess that cannot override permission bits: tests run as root in
CI, so as root the subprocess drops ``CAP_DAC_OVERRIDE`` (and ``CAP_DAC_READ_SEARCH``) with
``setpriv`` (util-linux). A full disk is a file-size limit (``RLIMIT_FSIZE``) in that process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from lightnets.checkpoint import load_checkpoint
from tests.conftest import DIGITS_RUN, TINY_TRAIN

# Runs `lightnets` commands in this process, each optionally under a file-size limit, and prints
# [status, stdout, stderr] of each as JSON; first, whether it may write into a read-only folder.
SCRIPT = """
import contextlib, io, json, resource, signal, sys
from lightnets.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails with EFBIG
try:
    open("ro/probe", "w").close()
    results = ["ro is writable"]
except PermissionError:
    results = ["ro is read-only"]
for limit, argv in json.loads(sys.argv[1]):
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit or hard, hard))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    results.append([status, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def without_write_override() -> list[str]:
    """The command prefix that takes away root's power to write anywhere."""
    if os.geteuid() != 0:
        return []  # permission bits already apply
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot drop the capability "
                    "that lets root write into read-only folders")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}", "--"]


@DIGITS_RUN
def test_write_errors_are_one_line_and_lose_nothing(digits_run, tmp_path):
    (tmp_path / "ro").mkdir()
    shutil.copytree(digits_run, tmp_path / "ro_run")
    shutil.copytree(digits_run, tmp_path / "run")
    for folder in ("ro", "ro_run"):
        (tmp_path / folder).chmod(0o555)
    ckpt = str(digits_run / "last.pt")
    eval_ckpt = ["eval", "--limit-batches", "1", "--checkpoint"]
    commands = [
        (0, ["train", *TINY_TRAIN, "--epochs", "1", "--runs-dir", "ro", "--name", "t"]),
        (0, ["train", "--resume", "ro_run", "--epochs", "3", "--no-progress"]),
        (0, [*eval_ckpt, ckpt, "--confusion", "ro/confusion.png"]),
        (0, [*eval_ckpt, "ro_run"]),  # the default picture beside a read-only checkpoint
        (0, [*eval_ckpt, ckpt, "--confusion", "new/folder/confusion.png"]),
        (0, ["export", "--checkpoint", ckpt, "--output", "ro/model.onnx"]),
        (0, ["quantize", "--checkpoint", ckpt, "--calib-data", "digits", "--output", "ro/q.onnx"]),
        (0, ["zoo", "--pattern", "mobilenet_v2_x0_25", "--no-bench", "--out", "ro/zoo"]),
        # a full disk: the next checkpoint, then the confusion matrix, cannot be written
        (500_000, ["train", "--resume", "run", "--epochs", "3", "--no-progress"]),
        (8_000, [*eval_ckpt, ckpt, "--confusion", "small.png"]),
    ]
    done = subprocess.run([*without_write_override(), sys.executable, "-c", SCRIPT,
                           json.dumps(commands)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    for folder in ("ro", "ro_run"):
        (tmp_path / folder).chmod(0o755)
    assert done.returncode == 0, done.stderr
    sandbox, *results = json.loads(done.stdout.splitlines()[-1])
    assert sandbox == "ro is read-only"
    (train, resume, eval_ro, eval_beside, eval_new, export, quantize, zoo, full_train,
     full_eval) = results

    def failed(result, message):
        status, out, err = result
        assert status == 2 and err == f"error: {message}\n", result
        return out

    denied = "Permission denied"
    assert "training" not in failed(train, f"cannot write ro/t: {denied}")  # before any work
    assert not failed(resume, f"cannot write ro_run: {denied}")
    assert not failed(eval_ro, f"cannot write --confusion ro/confusion.png: {denied}")
    assert eval_beside[0] == 0 and "top-1" in eval_beside[1]
    assert eval_beside[2].startswith("warning: confusion matrix left out: cannot write the "
                                     f"confusion matrix ro_run/confusion-val.png: {denied}")
    assert eval_new[0] == 0 and (tmp_path / "new" / "folder" / "confusion.png").is_file()
    failed(export, f"cannot write the onnx file ro/model.onnx: {denied}")
    assert "exporting" not in quantize[2]  # refused before the fp32 export
    failed(quantize, f"cannot write the quantized model ro/q.onnx: {denied}")
    failed(zoo, f"cannot write --out folder ro/zoo: {denied}")
    assert not list((tmp_path / "ro").iterdir())

    assert "epoch   3/3" not in failed(full_train, "cannot write run/last.pt: File too large")
    assert load_checkpoint(tmp_path / "run" / "last.pt").epoch == 2  # the last one, whole
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]
    out = failed(full_eval, "cannot write small.png: File too large")
    assert "top-1" in out and "confusion matrix" not in out  # the numbers, printed anyway
