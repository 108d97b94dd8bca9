"""Shared helpers: zoo models once per worker, gradients, image trees, one trained run (the
weights and BatchNorm statistics of parity checks: :mod:`lightnets.testing`)."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import lightnets
from lightnets.cli import main


def pytest_configure(config) -> None:
    """Under pytest-xdist, each worker gets its share of the cores: PyTorch (and the runtimes,
    which take PyTorch's thread count) and the processes tests start (``OMP_NUM_THREADS``).
    Otherwise every worker spins as many threads as there are cores, and convolutions crawl."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)


@pytest.fixture(autouse=True, scope="session")
def calibration_cache(tmp_path_factory):
    """Training runs long enough to calibrate (lightnets/train/calibrate.py) cache their
    choices in the session's temporary folder, never in the user's home."""
    os.environ["LIGHTNETS_CACHE"] = str(tmp_path_factory.mktemp("lightnets-cache"))


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*argv) -> (status, stdout, stderr)`` of one ``lightnets`` command."""
    def run(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        captured = capsys.readouterr()
        return status, captured.out, captured.err
    return run


# -- the zoo --------------------------------------------------------------------------------------
# each model is built once per worker: xdist_group keeps all tests of one model, in every module,
# on one worker
def zoo_params(pattern: str = "*", task: str = "classification") -> list:
    """``list_models(pattern, task=task)`` as pytest params grouped per model for pytest-xdist
    (the whole-zoo tests of classifiers; segmenters have their own, ``task="segmentation"``)."""
    return [pytest.param(name, marks=pytest.mark.xdist_group(name), id=name)
            for name in lightnets.list_models(pattern, task=task)]


def pytest_testnodedown(node, error) -> None:
    """When an xdist worker goes down, say how its process ended (a signal's name, or the exit
    status): workers have gone down in CI without a Python traceback, cause not yet found."""
    popen = getattr(getattr(getattr(node, "gateway", None), "_io", None), "popen", None)
    if error is None or popen is None:
        return
    try:
        status = popen.wait(timeout=30)
    except subprocess.TimeoutExpired:
        status = None
    how = ("still running 30 s after its channel closed" if status is None else
           f"killed by {signal.Signals(-status).name}" if status < 0 else f"exit status {status}")
    reporter = node.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"worker {node.gateway.id}'s process: {how}", red=True)


@functools.lru_cache(maxsize=1)
def assert_takes_any_backbone(architecture: str, pair: str, backbone: str) -> None:
    """``architecture`` by name on ``backbone`` is the registered ``pair`` (its parameter
    shapes); a backbone that is no string, or no classifier, gets a one-line error."""
    from lightnets.registry import meta_model

    same = meta_model(architecture, backbone=backbone, num_classes=5)
    named = meta_model(pair, num_classes=5)
    assert [(k, v.shape) for k, v in same.state_dict().items()] == \
        [(k, v.shape) for k, v in named.state_dict().items()], pair
    with pytest.raises(ValueError, match="backbone must be a string"):
        meta_model(architecture, backbone=3)
    with pytest.raises(ValueError, match="is a detection model; expected a classifier"):
        meta_model(architecture, backbone="fcos")


def cached_model(name: str, num_classes: int = 7) -> torch.nn.Module:
    """A model built once per worker (tests must not mutate it)."""
    torch.manual_seed(0)
    return lightnets.create_model(name, num_classes=num_classes)


@pytest.fixture
def one_thread():
    """One torch thread for the test: convolutions crawl when more threads spin than there are
    free cores (``pytest -n 2`` on two cores runs four)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_input(model: torch.nn.Module, batch: int = 2, scale: int = 1) -> torch.Tensor:
    """A random batch at the model's smallest supported size (times ``scale``)."""
    height, width = model.min_input_size
    torch.manual_seed(1)
    return torch.randn(batch, model.in_chans, height * scale, width * scale)


# -- blocks ---------------------------------------------------------------------------------------
def grads_flow(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forward and backward; the input and every parameter must receive a gradient."""
    x = x.clone().requires_grad_(True)
    out = module(x)
    out.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    missing = [name for name, p in module.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing}"
    return out


def check_aux_outputs(model: nn.Module, x: torch.Tensor, count: int, shape: tuple) -> None:
    """The auxiliary-output mechanism of the zoo: in training mode a plain call gives the logits
    alone and ``return_aux=True`` adds ``count`` outputs of ``shape``, every parameter learning
    from the weighted loss; in eval mode the list is empty and the logits the same."""
    model.train()
    assert model(x).shape == shape  # plain call: logits alone, even when training
    logits, aux = model(x, return_aux=True)
    assert logits.shape == shape and [a.shape for a in aux] == [shape] * count
    weight = model.aux_loss_weight
    (logits.logsumexp(1).mean() + weight * sum(a.logsumexp(1).mean() for a in aux)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    model.eval()
    with torch.no_grad():
        plain = model(x)
        logits, aux = model(x, return_aux=True)
    assert aux == []
    torch.testing.assert_close(logits, plain)


# -- image folders --------------------------------------------------------------------------------
COLOURS = {"blue": (30, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}


def make_image_tree(root: Path, per_class: int = 6, size: int = 20, seed: int = 0) -> Path:
    """``root/<colour>/<i>.png`` (and some JPEGs): noisy images of one colour per class."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255)
            suffix = "jpg" if i % 3 == 2 else "png"
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.{suffix}")
    return root


def add_corrupt_files(root: Path) -> list[Path]:
    """A PNG of garbage bytes and a truncated JPEG; a text file that must be ignored quietly."""
    garbage = root / "red" / "garbage.png"
    garbage.write_bytes(b"this is not an image" * 10)
    whole = (root / "green" / "2.jpg").read_bytes()
    truncated = root / "green" / "truncated.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    (root / "blue" / "notes.txt").write_text("not an image, not an error")
    return [garbage, truncated]


# -- one tiny trained run -------------------------------------------------------------------------
# `lightnets train` arguments for a few steps of the smallest MobileNetV2 on the digits
TINY_TRAIN = ["--model", "mobilenet_v2_x0_25", "--batch-size", "32", "--limit-train-batches", "3",
              "--limit-val-batches", "2", "--no-progress"]


def DIGITS_RUN(test):  # a decorator, named as the mark it replaces
    """For the tests that read ``digits_run``: one worker (xdist_group), so that it is trained
    once, and ``slow`` (the training takes about 20 s on two cores)."""
    return pytest.mark.slow(pytest.mark.xdist_group("digits_run")(test))


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A two-epoch tiny digits run made through the command line (tests must leave the folder as
    they found it)."""
    runs = tmp_path_factory.mktemp("runs")
    assert main(["train", *TINY_TRAIN, "--epochs", "2", "--runs-dir", str(runs),
                 "--name", "tiny"]) == 0
    return runs / "tiny"
