"""The model's side of a load: the tensors a zoo model has, and which of them form its
classifier and its first convolution, the two parts whose shapes follow ``num_classes`` and
``in_chans``.

One build on the meta device (no memory, no values) gives all of it: the classifier is what
``reset_classifier`` replaces (the auxiliary heads' final layers too), the first convolution is
the first to run on the input; a detector has no ``reset_classifier``, and its class layers are
those a build at another class count changes. The shapes for other class and channel counts
follow without building again: a class tensor's first dimension is the class count times a
fixed multiple (1 for a classifier, whose tensors are absent for 0 classes; a detector's
anchors per location: 6 for SSDLite, 9 for RetinaNet, 4 box coordinates for Faster R-CNN's
``bbox_pred``), plus a fixed offset (-1 for a GFL head, which has no background logit), the
first convolution kernel's second dimension the channel count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lightnets.registry import meta_model

BUILD_CLASSES, BUILD_CHANS = 1000, 3


@dataclass(frozen=True)
class Layout:
    """A model's tensors (key -> shape, at 1000 classes and 3 channels), its classifier's keys
    (a detector's class layers) with the multiple of the class count each one's first dimension
    is, and its first convolution's kernel key."""

    shapes: dict[str, torch.Size]
    per_class: Mapping[str, int]
    first_conv: str
    offset: Mapping[str, int] = field(default_factory=dict)  # first dim - multiple * classes

    @property
    def classifier(self) -> frozenset[str]:
        return frozenset(self.per_class)

    def at(self, num_classes: int, in_chans: int) -> dict[str, torch.Size]:
        """The tensors of the same network for ``num_classes`` and ``in_chans``."""
        shapes = {}
        for key, shape in self.shapes.items():
            if key in self.classifier:
                if not num_classes:
                    continue  # no classifier: an identity
                shape = torch.Size((self.per_class[key] * num_classes + self.offset.get(key, 0),
                                    *shape[1:]))
            if key == self.first_conv:
                shape = torch.Size((shape[0], in_chans, *shape[2:]))
            shapes[key] = shape
        return shapes

    def classes_and_chans(self, state: dict[str, torch.Tensor]) -> tuple[int, int]:
        """The class count and input channels a state dict (in our keys) was made for: 0
        classes when it has no classifier, 3 channels when it lacks the first convolution."""
        classes = [(state[key].shape[0] - self.offset.get(key, 0)) // self.per_class[key]
                   for key in sorted(self.per_class) if key in state and state[key].dim()]
        conv = state.get(self.first_conv)
        return (classes[0] if classes else 0), (conv.shape[1] if conv is not None
                                                and conv.dim() == 4 else BUILD_CHANS)


_LAYOUTS: dict[tuple[str, str], Layout] = {}


def layout_of(name: str, **args: Any) -> Layout:
    """The :class:`Layout` of model ``name`` built with ``args`` (remembered per arguments)."""
    cache_key = (name, repr(sorted(args.items())))
    if cache_key in _LAYOUTS:
        return _LAYOUTS[cache_key]
    model = meta_model(name, **args, num_classes=BUILD_CLASSES, in_chans=BUILD_CHANS)
    shapes = {key: tensor.shape for key, tensor in model.state_dict().items()}
    first = first_convolution(model)
    if hasattr(model, "reset_classifier"):
        with torch.device("meta"):
            model.reset_classifier(BUILD_CLASSES + 1)
    else:  # a detector: its class-dependent layers are those another class count changes
        model = meta_model(name, **args, num_classes=BUILD_CLASSES + 1, in_chans=BUILD_CHANS)
    per_class = {key: tensor.shape[0] - shapes[key][0] for key, tensor in model.state_dict().items()
                 if shapes.get(key) != tensor.shape}
    offset = {key: shapes[key][0] - multiple * BUILD_CLASSES for key, multiple in per_class.items()}
    _LAYOUTS[cache_key] = Layout(shapes, per_class, first,
                                 {key: value for key, value in offset.items() if value})
    return _LAYOUTS[cache_key]


def first_convolution(model: nn.Module) -> str:
    """The state-dict key of the kernel of the first convolution to run on the input."""
    names = {module: name for name, module in model.named_modules()}
    order: list[str] = []
    hooks = [module.register_forward_pre_hook(lambda m, _: order.append(names[m]))
             for module in names if isinstance(module, nn.Conv2d)]
    try:
        # a classifier's trunk, a detector's network, or the whole of a segmenter
        run = getattr(model, "forward_features", None) or getattr(model, "forward_raw", model)
        run(torch.empty(1, *model.default_input_size, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return f"{order[0]}.weight"
