"""The run-folder lock: a second training run into a folder in use stops at once, naming the
first; a killed run leaves no stale lock. Two real ``lightnets train`` processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lightnets.checkpoint import load_checkpoint
from lightnets.files import LOCK_NAME, FolderInUseError, lock_folder
from lightnets.train import train
from lightnets.train.report import claimed_run_dir
from tests.conftest import TINY_TRAIN
from tests.train.conftest import tiny_config

# one thread each: two processes on a small machine, no spinning OpenMP pools
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}


def train_command(runs: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lightnets", "train", *TINY_TRAIN, "--runs-dir", str(runs),
            "--name", "dup", *extra]


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 300) -> None:
    """Poll ``condition`` while ``process`` runs; fail with its output if it ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the first run ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_second_run_into_a_folder_in_use_stops_naming_the_first(tmp_path):
    run_dir = tmp_path / "dup"
    first = subprocess.Popen(train_command(tmp_path, "--epochs", "200"), env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the lock file names its holder; once the first checkpoint exists, there is work to lose
        wait_for(lambda: (run_dir / "last.pt").exists(), first, "its first checkpoint")
        assert f"pid {first.pid} " in (run_dir / LOCK_NAME).read_text()
        second = subprocess.run(train_command(tmp_path, "--epochs", "1", "--overwrite"),
                                env=ENV, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second
        err = second.stderr.strip()
        assert err.startswith(f"error: {run_dir} is in use by another training run (pid "
                              f"{first.pid} on ") and "\n" not in err
        assert "training" not in second.stdout  # it stopped before any work
        assert first.poll() is None  # the first run goes on, its files untouched
        assert load_checkpoint(run_dir / "last.pt").epoch >= 1
    finally:
        first.send_signal(signal.SIGKILL)  # no clean-up: the operating system drops the lock
        first.wait(timeout=60)
    assert (run_dir / LOCK_NAME).exists()  # the dead process's file stays, unlocked
    result = train(tiny_config(tmp_path, name="dup", epochs=1), overwrite=True)
    assert result.run_dir == run_dir and load_checkpoint(result.last_checkpoint).epoch == 1
    assert not (run_dir / LOCK_NAME).exists()  # a run that ends removes its lock file


def test_lock_folder_in_one_process(tmp_path):
    folder = tmp_path / "new"
    with lock_folder(folder, "job") as locked:
        assert locked == folder and f"pid {os.getpid()} " in (folder / LOCK_NAME).read_text()
        with pytest.raises(FolderInUseError, match=rf"in use by another job \(pid {os.getpid()}"):
            with lock_folder(folder, "job"):
                pass
    assert not folder.exists()  # created here and left empty: removed again
    (tmp_path / "kept").mkdir()
    with lock_folder(tmp_path / "kept"):
        (tmp_path / "kept" / "result.txt").write_text("work")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["result.txt"]


def test_unnamed_runs_take_the_next_free_folder(tmp_path):
    with claimed_run_dir(str(tmp_path), None, "net", "digits") as first:
        with claimed_run_dir(str(tmp_path), None, "net", "digits") as second:
            assert (first.name, second.name) == ("net-digits", "net-digits-2")
    with claimed_run_dir(str(tmp_path), "named", "net", "digits") as named:
        with pytest.raises(FolderInUseError, match="pass another --name"):
            with claimed_run_dir(str(tmp_path), "named", "net", "digits"):
                pass
    assert not named.exists()


HOLDER = """
import os, sys, time
from lightnets.files import lock_folder
with lock_folder(sys.argv[1]):
    child = os.fork()  # as a DataLoader's worker process is made
    if child == 0:
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    time.sleep(60)
"""


def test_a_killed_holders_forked_children_do_not_keep_its_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], env=ENV,
                              stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    try:
        with pytest.raises(FolderInUseError):  # the holder's lock is held
            with lock_folder(tmp_path):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        os.kill(child, 0)  # the child lives on, its copy of the descriptor closed at the fork
        with lock_folder(tmp_path):
            pass
    finally:
        holder.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
