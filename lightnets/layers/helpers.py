"""Small helpers shared by the blocks: channel rounding and padding arithmetic."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

LayerFactory = Callable[..., nn.Module]
"""A callable building a module: a class such as ``nn.ReLU`` or a ``functools.partial``."""


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never dropping below
    ``round_limit`` of the original (the rule of the MobileNet releases, Sandler et al. 2018)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded


def to_pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; a pair is returned unchanged."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def same_padding(kernel_size: int | tuple[int, int],
                 dilation: int | tuple[int, int] = 1) -> tuple[int, int]:
    """Symmetric padding keeping the spatial size at stride 1 for odd kernels:
    ``dilation * (kernel - 1) // 2`` per dimension."""
    kh, kw = to_pair(kernel_size)
    dh, dw = to_pair(dilation)
    return dh * (kh - 1) // 2, dw * (kw - 1) // 2


def make_layer(factory: LayerFactory | None, *args, **kwargs) -> nn.Module:
    """Build an optional part: ``None`` gives ``nn.Identity()`` so ``forward`` needs no branch."""
    return nn.Identity() if factory is None else factory(*args, **kwargs)


def make_act(factory: LayerFactory | None) -> nn.Module:
    """Build an activation in place where it supports it (``nn.ReLU``, ``nn.ReLU6``,
    ``nn.Hardswish``, ...): after a conv or norm nothing else reads the pre-activation, and
    in-place saves one full-size tensor per layer. ``None`` gives ``nn.Identity()``."""
    if factory is None:
        return nn.Identity()
    try:
        return factory(inplace=True)
    except TypeError:
        return factory()
