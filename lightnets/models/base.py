"""The interface every classification model in the zoo shares.

A model is a ``features`` trunk producing a ``num_features``-channel map and a head (global pool,
dropout, classifier). ``feature_info`` names the module ending each stage, with its channels and
its stride relative to the input, so a model can serve as a backbone: :class:`FeatureNet` (what
``create_model(name, features_only=True)`` returns) runs the trunk alone and returns those
stages' maps. Every trunk can be built at ``output_stride`` 32, 16 or 8
(:mod:`lightnets.models.stages`). Models with auxiliary classifiers (GoogLeNet, Inception v3)
return them only from ``forward(x, return_aux=True)`` in training mode; plain ``forward(x)``
always returns the logits alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from lightnets.models.stages import StageTracker, stage_info
from lightnets.registry import CLASSIFICATION


class Classifier(nn.Module):
    """Base class of the zoo's classification networks.

    Subclasses set ``self.features`` (or override :meth:`forward_features` and :meth:`trunk`),
    ``num_features``, fill ``feature_info`` through :meth:`track_stages`, and call
    :meth:`build_head`; the class attributes ``family``, ``paper`` and ``default_input_size``
    describe the family.
    """

    task: str = CLASSIFICATION
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
        self.output_stride = 32
        self.default_input_size = (in_chans, *type(self).default_input_size[1:])

    # -- trunk ------------------------------------------------------------------------------
    def track_stages(self, output_stride: int, dilate_first: bool = False) -> StageTracker:
        """The tracker a constructor builds its trunk with; it fills this model's
        ``feature_info`` (see :class:`lightnets.models.stages.StageTracker`)."""
        tracker = StageTracker(output_stride, dilate_first)
        self.feature_info, self.output_stride = tracker.feature_info, output_stride
        return tracker

    def trunk(self) -> list[tuple[str, nn.Module]]:
        """The trunk as ``(name, module)`` run one after the other: what
        :meth:`forward_features` computes, and where ``feature_info`` points."""
        return [(f"features.{name}", module) for name, module in self.features.named_children()]

    def to_features(self, out_indices: Sequence[int] | None = None) -> FeatureNet:
        """This model's trunk as a :class:`FeatureNet` returning the maps of the stages in
        ``out_indices`` (default all); the head is dropped."""
        return FeatureNet(self, out_indices)

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
        check_images(x, self.in_chans, self.min_input_size, type(self).__name__)

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


def check_images(x: torch.Tensor, in_chans: int, min_input_size: tuple[int, int],
                 owner: str) -> None:
    """A one-line error unless ``x`` is a floating-point ``(N, in_chans, H, W)`` batch of at
    least ``min_input_size``; ``owner`` names the model in the message."""
    if not x.is_floating_point():  # e.g. uint8 pixels straight from an image decoder
        raise ValueError(f"{owner} expects a floating-point input (images scaled and "
                         f"normalised as in preprocessing), got {x.dtype}")
    if x.dim() != 4 or x.shape[1] != in_chans:
        raise ValueError(f"{owner} expects input of shape (N, {in_chans}, H, W), "
                         f"got {tuple(x.shape)}")
    min_h, min_w = min_input_size
    if x.shape[2] < min_h or x.shape[3] < min_w:
        raise ValueError(f"{owner} needs inputs of at least {min_h}x{min_w}, "
                         f"got {x.shape[2]}x{x.shape[3]}")


class FeatureNet(nn.Module):
    """A classifier's trunk without its head; ``forward`` returns the maps of the selected
    stages, in the order asked for (timm's ``features_only`` convention).

    ``taps`` are indices into the classifier's ``feature_info`` (default all), or names of trunk
    modules (a segmenter reading where torchvision's does, e.g. ``"features.4"``: their
    channels and reduction are then measured on the meta device). The trunk modules are taken
    over under their own names, so a classifier's state dict loads into this (its head's entries
    aside), and only those up to the deepest tap are kept. ``feature_info``, ``channels`` and
    ``reductions`` describe the outputs.
    """

    def __init__(self, model: Classifier, taps: Sequence[int | str] | None = None) -> None:
        super().__init__()
        info, trunk = model.feature_info, model.trunk()
        names = [name for name, _ in trunk]
        taps = list(range(len(info))) if taps is None else list(taps)
        if not taps:
            raise ValueError("out_indices must select at least one stage")
        for tap in taps:
            if isinstance(tap, str) and tap not in names:
                raise ValueError(f"{tap!r} is not a trunk module of {type(model).__name__}; "
                                 f"expected one of {', '.join(names)}")
            if not isinstance(tap, str) and not -len(info) <= tap < len(info):
                raise ValueError(f"out_indices {tap} out of range: {type(model).__name__} "
                                 f"has {len(info)} stages (0 to {len(info) - 1})")
        self.taps = [tap if isinstance(tap, str) else info[tap]["module"] for tap in taps]
        last = max(names.index(name) for name in self.taps)
        for name, module in trunk[:last + 1]:
            parent, *path = name.split(".")
            if path:  # "features.3": a Sequential container keeps the classifier's key names
                if parent not in dict(self.named_children()):
                    self.add_module(parent, nn.Sequential())
                getattr(self, parent).add_module(path[0], module)
            else:
                self.add_module(name, module)
        self.stage_names = names[:last + 1]
        self.in_chans, self.min_input_size = model.in_chans, model.min_input_size
        self.default_input_size, self.output_stride = model.default_input_size, model.output_stride
        self.family, self.paper = model.family, model.paper
        self.feature_info = [dict(info[tap]) if not isinstance(tap, str) else None
                             for tap in taps]
        if None in self.feature_info:
            self.feature_info = self._measure(dict(zip(self.taps, self.feature_info)))

    def _measure(self, known: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
        """``feature_info`` with the entries of module-name taps measured: a forward pass on
        the meta device (no memory), reductions rounded to powers of two (valid padding)."""
        size = max(512, *self.min_input_size)
        state = {name: torch.empty_like(tensor, device="meta") for name, tensor in
                 itertools.chain(self.named_parameters(), self.named_buffers())}
        x = torch.empty(1, self.in_chans, size, size, device="meta")
        with torch.no_grad():
            maps = functional_call(self, state, (x,), strict=False)
        return [known[name] or stage_info(out.shape[1], 2 ** round(math.log2(size / out.shape[-1])),
                                          name) for name, out in zip(self.taps, maps)]

    @property
    def channels(self) -> list[int]:
        return [entry["num_chs"] for entry in self.feature_info]

    @property
    def reductions(self) -> list[int]:
        return [entry["reduction"] for entry in self.feature_info]

    def check_input(self, x: torch.Tensor) -> None:
        """Fail clearly on an input of the wrong rank, channel count or too small a size."""
        check_images(x, self.in_chans, self.min_input_size, f"{self.family} FeatureNet")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.check_input(x)
        maps: dict[str, torch.Tensor] = {}
        for name in self.stage_names:
            x = maps[name] = self.get_submodule(name)(x)
        return [maps[name] for name in self.taps]


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

    def trunk(self) -> list[tuple[str, nn.Module]]:
        return [(name, getattr(self, name)) for name in self.stage_names]

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
