"""OpenVINO's CPU plugin running an ONNX file or an OpenVINO IR ``.xml``: the runner behind
the ``openvino`` backend (:mod:`lightnets.export.backends`) and the ``openvino`` export format
(:mod:`lightnets.export.runtimes.openvino_ir`), in a module of its own below both."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from lightnets.export.formats import Runner
from lightnets.optional import require


class BackendUnavailableError(ValueError):
    """The backend cannot run here (package missing, or the precision unsupported)."""


@contextlib.contextmanager
def kept_signal_stack() -> Iterator[None]:
    """Keep this thread's alternate signal stack across the block (POSIX; elsewhere a no-op).

    OpenVINO 2026.4's CPU plugin, when a core first compiles for it, installs a signal stack of
    its own on the calling thread and unmaps it when the core is released. Released on another
    thread (the garbage collector runs in whichever thread triggers it), it leaves the first
    thread's stack pointing at unmapped memory, and the next signal that has a handler there
    (SIGCHLD, handled once a DataLoader has had worker processes) kills the process with
    SIGSEGV: our test workers died so, in tests that ran subprocesses after OpenVINO ones."""
    libc = ctypes.CDLL(None) if os.name == "posix" else None
    saved = ctypes.create_string_buffer(64)  # a stack_t, whatever its layout: given back as is
    if libc is None or libc.sigaltstack(None, saved) != 0:
        yield
        return
    try:
        yield
    finally:
        libc.sigaltstack(saved, None)


def openvino_runner(onnx_path: str | Path, precision: str = "fp32",
                    threads: int | None = None) -> Runner:
    """An ONNX file compiled by OpenVINO's CPU plugin with inference precision ``precision``
    (fp32 or bf16; in an int8 QDQ graph the quantized operators run in int8 either way). Each
    batch size gets its own static-shape compilation, which lets the plugin pick its fastest
    kernels. Raises :class:`BackendUnavailableError` when the plugin reports another precision
    (it quietly falls back to f32 where bf16 is not native)."""
    ov = require("openvino", "the openvino backend")
    core = ov.Core()
    network = core.read_model(str(onnx_path))
    config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
              "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
    compiled_by_shape: dict[tuple[int, ...], Any] = {}

    def compiled_for(shape: tuple[int, ...]) -> Any:
        if shape not in compiled_by_shape:
            network.reshape({network.inputs[0]: list(shape)})
            with kept_signal_stack():
                compiled_by_shape[shape] = core.compile_model(network, "CPU", config)
        return compiled_by_shape[shape]

    dims = network.inputs[0].get_partial_shape()  # a segmenter's height and width are dynamic
    probe = compiled_for((1, *[dim.get_length() if dim.is_static else 64
                               for dim in list(dims)[1:]]))
    runs_in = str(probe.get_property("INFERENCE_PRECISION_HINT")).lower()  # e.g. <Type: 'float32'>
    actual = next((ours for theirs, ours in (("bf16", "bf16"), ("bfloat16", "bf16"),
                                             ("float32", "fp32"), ("f32", "fp32"),
                                             ("float16", "fp16"), ("f16", "fp16"))
                   if theirs in runs_in), runs_in)
    if actual != precision:
        raise BackendUnavailableError(f"openvino was asked for {precision} but runs {actual} "
                                      "on this CPU")

    def run(x: torch.Tensor) -> torch.Tensor:
        request = compiled_for(tuple(x.shape))
        array = x.detach().float().contiguous().numpy()
        return torch.from_numpy(request(array)[0].copy())
    return run
