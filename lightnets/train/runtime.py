"""Where and how a run executes: device, mixed precision, memory format, and the process group
when launched by ``torchrun`` (gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from lightnets.hardware import native_bf16
from lightnets.profile.counter import count_complexity


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

    @property
    def memory_format(self) -> torch.memory_format:
        """Where the model's tensors and the batches are laid out."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

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


def sync_batchnorm(model: nn.Module, runtime: Runtime) -> nn.Module:
    """Turn ``model``'s BatchNorm layers into SyncBatchNorm, whose training statistics are
    taken over the whole batch of every process (Peng et al., "MegDet", arXiv:1711.07240,
    2018; PyTorch's ``convert_sync_batchnorm``) instead of each process's share: what small
    per-GPU batches need. Converted in place (each layer keeps its parameters and buffers);
    only under DDP on GPUs, where PyTorch implements it (:func:`check_sync_bn`)."""
    check_sync_bn(runtime)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if converted is not model:  # the model itself a BatchNorm: nothing to convert in place
        raise ValueError("--sync-bn needs a model containing BatchNorm layers")
    return model


def check_sync_bn(runtime: Runtime) -> None:
    """A one-line error, before any work, where SyncBatchNorm cannot run."""
    if not runtime.distributed:
        raise ValueError("--sync-bn synchronises BatchNorm across processes: launch the run "
                         "with torchrun --nproc_per_node N (or drop --sync-bn)")
    if runtime.device.type != "cuda":
        raise ValueError("--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm runs on GPUs "
                         "only); drop it on the CPU")


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


# The CPU defaults, from benchmarks/train_step_sweep.py (batch 32, 1 thread, CPU time; the
# docs' training guide has the figures): bf16 autocast pays off once the convolutions are
# large enough for the bf16 matrix units to outrun the casts around them. Measured in MACs per
# image at the input size, against the fp32 step in its best memory format: MobileNetV2 at
# 128 px (99M) 0.76x, ResNet-18 at 48 px (98M) 1.03x, ShuffleNet V2 at 224 px (145M) 0.97x;
# ResNet-18 at 64 px (149M) 1.23x, MobileNetV2 at 160 px (154M) 1.29x, at 224 px (301M) 1.20x,
# ResNet-18 at 224 px 3.4x.
MIN_CPU_AUTOCAST_MACS = 146_000_000


def pick_amp(mode: str, device: torch.device, macs_per_image: int | None = None
             ) -> torch.dtype | None:
    """Autocast dtype: ``auto`` is bf16 on GPUs that have it (fp16 otherwise), and on CPUs with
    native bf16 for models of at least ``MIN_CPU_AUTOCAST_MACS`` per image at the input
    size; full precision elsewhere."""
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
    large_enough = macs_per_image is None or macs_per_image >= MIN_CPU_AUTOCAST_MACS
    return torch.bfloat16 if native_bf16()[0] and large_enough else None


def pick_channels_last(requested: bool | None, device: torch.device,
                       amp_dtype: torch.dtype | None = None, grouped_convs: bool = True) -> bool:
    """``requested`` when given. By default on for CUDA; on CPUs for models with grouped or
    depthwise convolutions, which are slow in NCHW (MobileNetV2, ShuffleNet V2: 1.3-1.8x faster
    in channels-last at every size measured), and under bf16 autocast, whose fast kernels work
    in channels-last (ResNet-18 at 224 px: 3.5x against fp32 NCHW, 2.0x in bf16 NCHW); off for
    dense networks in fp32, which it slowed (ResNet-18: 0.79-1.03x at 32-224 px)."""
    if requested is not None:
        return bool(requested)
    return device.type == "cuda" or amp_dtype is not None or grouped_convs


def has_grouped_convs(model: nn.Module) -> bool:
    """Whether ``model`` has a grouped (or depthwise) convolution."""
    return any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.modules())


def pick_precision_and_layout(amp: str, channels_last: bool | None, device: torch.device,
                              model: nn.Module, input_size: tuple[int, int, int]
                              ) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype and whether to train channels-last, for ``model`` (any device, meta
    included) on inputs of ``input_size`` ``(C, H, W)``: :func:`pick_amp`, then
    :func:`pick_channels_last`."""
    needed = amp == "auto" and device.type == "cpu"
    macs = count_complexity(model, input_size).macs if needed else None
    amp_dtype = pick_amp(amp, device, macs)
    return amp_dtype, pick_channels_last(channels_last, device, amp_dtype,
                                         has_grouped_convs(model))


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
