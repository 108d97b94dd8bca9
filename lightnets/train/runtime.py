"""Where and how a run executes: device, mixed precision, memory format, and the process group
when launched by ``torchrun`` (gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lightnets.hardware import native_bf16


@dataclass
class Runtime:
    """The device, precision and place of this process among its peers."""

    device: torch.device
    amp_dtype: torch.dtype | None     # autocast dtype, None for full precision
    channels_last: bool
    rank: int = 0
    world_size: int = 1
    owns_process_group: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over all processes (itself when there is one)."""
        if self.distributed:
            tensor = tensor.to(self.device)
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def average_buffers(self, model: torch.nn.Module) -> None:
        """Make every process hold the same buffers (BatchNorm statistics) before evaluating and
        saving: floating-point ones averaged over processes, the others (counters) rank 0's.
        DistributedDataParallel only syncs them at the start of each training forward."""
        if not self.distributed:
            return
        for buffer in model.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
                buffer /= self.world_size
            else:
                dist.broadcast(buffer, src=0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.owns_process_group and dist.is_initialized():
            dist.destroy_process_group()


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA when available, else CPU. Under torchrun each process takes its GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: CUDA is not available on this machine; use "
                             "--device cpu")
        index = int(name.split(":")[1]) if ":" in name else local_rank
        if index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) present")
        return torch.device("cuda", index)
    return torch.device("cpu")


# Below this input side, bf16 autocast did not speed up CPU training (measured on an AVX512-BF16
# CPU, 2 threads: MobileNetV2 and ResNet-18 steps at 32x32 equal or slower than fp32; at 224x224
# 1.6-1.8x faster), while the casts still cost accuracy headroom.
MIN_CPU_AUTOCAST_SIDE = 64


def pick_amp(mode: str, device: torch.device, input_side: int | None = None
             ) -> torch.dtype | None:
    """Autocast dtype: ``auto`` is bf16 on GPUs that have it (fp16 otherwise), and on CPUs with
    native bf16 when the input side is at least ``MIN_CPU_AUTOCAST_SIDE``; full precision
    elsewhere."""
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        if device.type != "cuda":
            raise ValueError("--amp fp16 needs a CUDA device; use bf16 or off on the CPU")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    large_enough = input_side is None or input_side >= MIN_CPU_AUTOCAST_SIDE
    return torch.bfloat16 if native_bf16()[0] and large_enough else None


# Channels-last memory format on the CPU from this input side up. TODO figures
MIN_CPU_CHANNELS_LAST_SIDE = 64


def pick_channels_last(requested: bool | None, device: torch.device,
                       input_side: int | None = None) -> bool:
    """``requested`` when given; by default on for CUDA, and on CPUs for inputs of at least
    ``MIN_CPU_CHANNELS_LAST_SIDE``."""
    if requested is not None:
        return bool(requested)
    if device.type == "cuda":
        return True
    return input_side is None or input_side >= MIN_CPU_CHANNELS_LAST_SIDE


def setup_runtime(device: str = "auto", amp: str = "auto",
                  channels_last: bool | None = None) -> Runtime:
    """The runtime of this process; joins the process group when ``WORLD_SIZE`` > 1. Its
    autocast dtype and memory format are a first choice (bad requests fail here, before any
    data is read); the training loop refines them once the input size is known."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        owns = True
    return Runtime(chosen, pick_amp(amp, chosen), pick_channels_last(channels_last, chosen),
                   rank, world_size, owns)
