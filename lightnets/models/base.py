"""The interface every classification model in the zoo shares.

A model is a ``features`` trunk producing a ``num_features``-channel map and a head (global pool,
dropout, classifier). ``feature_info`` names the module ending each stage, with its channels and
its stride relative to the input, so a model can serve as a backbone. Models with auxiliary
classifiers (GoogLeNet, Inception v3) return them only from ``forward(x, return_aux=True)`` in
training mode; plain ``forward(x)`` always returns the logits alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Classifier(nn.Module):
    """Base class of the zoo's classification networks.

    Subclasses set ``self.features`` (or override :meth:`forward_features`), ``num_features``,
    ``feature_info``, and call :meth:`build_head`; the class attributes ``family``, ``paper`` and
    ``default_input_size`` describe the family.
    """

    family: str = ""
    paper: str = ""
    default_input_size: tuple[int, int, int] = (3, 224, 224)
    min_input_size: tuple[int, int] = (32, 32)
    aux_loss_weight: float = 0.0
    """Weight of each auxiliary logit loss relative to the main one (0 where there are none)."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        if not isinstance(in_chans, int) or in_chans < 1:
            raise ValueError(f"in_chans must be a positive integer, got {in_chans!r}")
        if not 0.0 <= float(drop_rate) < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate!r}")
        self.num_classes, self.in_chans, self.drop_rate = num_classes, in_chans, float(drop_rate)
        self.num_features = 0
        self.feature_info: list[dict[str, Any]] = []
        self.default_input_size = (in_chans, *type(self).default_input_size[1:])

    # -- head -------------------------------------------------------------------------------
    def build_head(self, num_features: int, hidden: nn.Module | None = None,
                   head_features: int | None = None, pool_size: int = 1,
                   drop: bool = True) -> None:
        """The head every family shares: average pool to ``pool_size`` x ``pool_size`` and
        flatten, an optional ``hidden`` part (MobileNetV3's and GhostNet's 1280-wide layer,
        VGG's and AlexNet's fully-connected layers) giving ``head_features`` channels, dropout
        (``drop=False`` where ``hidden`` holds its own) and the linear classifier."""
        self.num_features = num_features
        self.head_features = head_features or num_features * pool_size ** 2
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(pool_size), nn.Flatten(1))
        self.head_hidden = hidden or nn.Identity()
        self.head_drop = nn.Dropout(self.drop_rate) if drop else nn.Identity()
        self.classifier = self.make_classifier(self.num_classes)

    def make_classifier(self, num_classes: int) -> nn.Module:
        """The final layer for ``num_classes`` (``nn.Identity`` for 0: features only)."""
        return nn.Linear(self.head_features, num_classes) if num_classes else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer by a freshly initialised one for ``num_classes``."""
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        self.num_classes = num_classes
        self.classifier = self.make_classifier(num_classes)

    # -- forward ----------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        """Fail clearly on an input of the wrong rank, channel count, size or dtype."""
        if not x.is_floating_point():  # e.g. uint8 pixels straight from an image decoder
            raise ValueError(f"{type(self).__name__} expects a floating-point input (images "
                             f"scaled and normalised as in preprocessing), got {x.dtype}")
        if x.dim() != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"{type(self).__name__} expects input of shape "
                             f"(N, {self.in_chans}, H, W), got {tuple(x.shape)}")
        min_h, min_w = self.min_input_size
        if x.shape[2] < min_h or x.shape[3] < min_w:
            raise ValueError(f"{type(self).__name__} needs inputs of at least {min_h}x{min_w}, "
                             f"got {x.shape[2]}x{x.shape[3]}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk: input image to the last feature map (``num_features`` channels)."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map to logits; ``pre_logits=True`` stops before the final layer."""
        x = self.head_drop(self.head_hidden(self.global_pool(x)))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor, return_aux: bool = False) -> Any:
        """Logits; with ``return_aux=True``, ``(logits, [auxiliary logits...])``, the list empty
        for models without auxiliary classifiers or in eval mode."""
        self.check_input(x)
        logits = self.forward_head(self.forward_features(x))
        return (logits, []) if return_aux else logits


def stage_info(num_chs: int, reduction: int, module: str) -> dict[str, Any]:
    """One ``feature_info`` entry: the output of ``module`` has ``num_chs`` channels at
    ``1/reduction`` of the input resolution."""
    return {"num_chs": num_chs, "reduction": reduction, "module": module}


def normalize_input_size(size: int | tuple[int, ...] | None,
                         default: tuple[int, int, int]) -> tuple[int, int, int]:
    """``224``, ``(224, 224)`` or ``(3, 224, 224)`` to ``(C, H, W)``; ``None`` gives ``default``."""
    if size is None:
        return tuple(default)
    dims = (size,) if isinstance(size, int) else tuple(size)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, int) and d > 0 for d in dims):
        raise ValueError(f"input size must be S, HxW or CxHxW with positive integers, got {size!r}")
    if len(dims) == 1:
        dims = (dims[0], dims[0])
    return dims if len(dims) == 3 else (default[0], *dims)


def init_norms_and_biases(module: nn.Module) -> None:
    """Norms at identity ``(1, 0)``, biases of convolutions and linear layers at zero."""
    if isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.Conv2d, nn.Linear)) and module.bias is not None:
        nn.init.zeros_(module.bias)


def trunc_normal_init(model: nn.Module, std: float, cutoff: float) -> None:
    """Truncated-normal weights N(0, std) cut at ``+-cutoff`` for every convolution and linear
    layer, zero biases, identity norms: the Inception releases' initialisation (cut at 2, i.e.
    torchvision's ``trunc_normal_(a=-2, b=2)``) and TF-slim's MobileNet V1 (cut at 2 std)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, std=std, a=-cutoff, b=cutoff)
        init_norms_and_biases(module)


def he_init(model: nn.Module, linear_std: float | None = 0.01) -> None:
    """The common initialisation of the zoo: He normal, fan-out (He et al., "Delving Deep into
    Rectifiers", ICCV 2015) for convolutions, identity norms, zero biases, and N(0, linear_std)
    for fully-connected layers (``None`` keeps PyTorch's default there)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            if linear_std is None:
                continue
            nn.init.normal_(module.weight, 0, linear_std)
        init_norms_and_biases(module)


class AuxClassifierNet(Classifier):
    """A trunk of named stages run in order, some of whose outputs feed auxiliary classifiers.

    Stages and heads are attributes registered in the order the family's reference gives its
    parameters. ``model(x)`` always returns the logits; ``model(x, return_aux=True)`` returns
    ``(logits, [aux logits...])``, the list filled only in training mode when heads exist.
    """

    def __init__(self, num_classes: int, in_chans: int, drop_rate: float) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        self.stage_names: list[str] = []
        self.aux_head_names: list[str] = []
        self.aux_taps: dict[str, list[str]] = {}  # stage -> heads reading its output

    def add_stage(self, name: str, module: nn.Module) -> None:
        self.add_module(name, module)
        self.stage_names.append(name)

    def add_aux_head(self, name: str, head: nn.Module, tap: str) -> None:
        """Register ``head`` reading the output of stage ``tap``."""
        self.add_module(name, head)
        self.aux_head_names.append(name)
        self.aux_taps.setdefault(tap, []).append(name)

    def run_stages(self, x: torch.Tensor,
                   with_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The last stage's output and, with ``with_aux``, the auxiliary heads' outputs."""
        aux: list[torch.Tensor] = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            if with_aux:
                aux.extend(getattr(self, head)(x) for head in self.aux_taps.get(name, ()))
        return x, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.run_stages(x, with_aux=False)[0]

    def forward(self, x: torch.Tensor, return_aux: bool = False) -> Any:
        self.check_input(x)
        with_aux = return_aux and self.training and bool(self.aux_head_names)
        features, aux = self.run_stages(x, with_aux)
        logits = self.forward_head(features)
        return (logits, aux) if return_aux else logits

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the final layer and those of the auxiliary heads."""
        super().reset_classifier(num_classes)
        for name in self.aux_head_names:
            getattr(self, name).reset_classifier(num_classes)
