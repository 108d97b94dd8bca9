"""Inference-time re-parameterisation: fold every BatchNorm into the convolution before it.

In eval mode BN is an affine map per channel, ``y = gamma * (x - mean) / sqrt(var + eps) + beta``,
so it merges into the preceding convolution's weight and bias (Ioffe & Szegedy 2015 describe the
inference form; folding it is standard practice in deployment toolchains). The fused model is
eval-only: it computes the same function with one layer fewer per block.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


@torch.no_grad()
def fold_batchnorm(conv: nn.Conv2d | nn.ConvTranspose2d, norm: nn.BatchNorm2d) -> None:
    """Merge ``norm`` (eval statistics) into ``conv`` in place, giving ``conv`` a bias."""
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics "
                         "(track_running_stats=False)")
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    if isinstance(conv, nn.ConvTranspose2d):
        # weight is (in, out / groups, kh, kw): scale each output channel within its group
        in_channels, out_per_group = conv.weight.shape[:2]
        grouped = conv.weight.view(conv.groups, in_channels // conv.groups, out_per_group, -1)
        grouped.mul_(scale.view(conv.groups, 1, out_per_group, 1))
    else:
        conv.weight.mul_(scale.view(-1, *([1] * (conv.weight.dim() - 1))))
    bias = shift if conv.bias is None else conv.bias * scale + shift
    conv.bias = nn.Parameter(bias)


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    return (isinstance(conv, _CONVS) and isinstance(norm, nn.BatchNorm2d)
            and norm.num_features == conv.out_channels)


def fuse(model: nn.Module, inplace: bool = False) -> nn.Module:
    """An eval-mode copy of ``model`` with every ``conv -> BatchNorm`` pair folded.

    Pairs are found structurally: a module with ``conv`` and ``norm`` children (``ConvNormAct``)
    and adjacent children of an ``nn.Sequential``. BatchNorms that follow no convolution stay.
    """
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    for module in list(model.modules()):
        if _foldable(getattr(module, "conv", None), getattr(module, "norm", None)):
            fold_batchnorm(module.conv, module.norm)
            module.norm = nn.Identity()
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:]):
                if _foldable(module._modules[first], module._modules[second]):
                    fold_batchnorm(module._modules[first], module._modules[second])
                    module._modules[second] = nn.Identity()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def remaining_batchnorms(model: nn.Module) -> list[str]:
    """Names of BatchNorm layers that :func:`fuse` could not fold."""
    return [name for name, module in model.named_modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)]
