"""The channel plan of a pruned model: how its layers' widths differ from the registered
architecture, as plain data, so a checkpoint rebuilds it without pickling modules.

A pruned network is the registered one with fewer channels in some layers. The plan lists, per
module, the plain attributes that changed (``out_channels``, ``in_channels``, ``groups`` of a
convolution, ``num_features`` of a BatchNorm, ``in_features`` of a linear layer, a Ghost
module's ``out_channels``, the model's ``feature_info``...); the weights' own shapes are in the
state dict. :func:`apply_channel_plan` sets the attributes on a freshly built model and resizes
its parameters and buffers to the state dict's shapes, ready for ``load_state_dict``. Only
attributes the fresh module already has, holding plain values, can be set: a plan cannot add
methods or objects.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

ChannelPlan = dict[str, dict[str, Any]]
SKIPPED = {"training"}  # mode, not architecture


def is_plain(value: Any) -> bool:
    """Numbers, strings, booleans, None, and lists / tuples / string-keyed dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_plain(item) for key, item in value.items())
    return False


def plain_attributes(module: nn.Module) -> dict[str, Any]:
    return {name: value for name, value in vars(module).items()
            if not name.startswith("_") and name not in SKIPPED and is_plain(value)}


def channel_plan(model: nn.Module, reference: nn.Module) -> ChannelPlan:
    """The plain attributes of ``model``'s modules that differ from ``reference``'s (the same
    architecture as registered, e.g. on the meta device)."""
    originals = dict(reference.named_modules())
    plan: ChannelPlan = {}
    for name, module in model.named_modules():
        if name not in originals:
            raise ValueError(f"module {name!r} is not in the reference architecture")
        before = plain_attributes(originals[name])
        changed = {key: value for key, value in plain_attributes(module).items()
                   if key in before and before[key] != value}
        if changed:
            plan[name] = changed
    return plan


def apply_channel_plan(model: nn.Module, plan: ChannelPlan,
                       state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Give freshly built ``model`` the widths of ``plan`` and parameters shaped like
    ``state_dict``'s (uninitialised: load the state dict next). Returns ``model``."""
    modules = dict(model.named_modules())
    for name, changes in plan.items():
        module = modules.get(name)
        if module is None:
            raise ValueError(f"the channel plan names module {name!r}, which "
                             f"{type(model).__name__} does not have")
        current = plain_attributes(module)
        for key, value in changes.items():
            if key not in current or not is_plain(value):
                raise ValueError(f"the channel plan sets {name or 'the model'}.{key}, which is "
                                 "not a plain attribute of the registered architecture")
            setattr(module, key, value)
    for key, tensor in state_dict.items():
        owner, _, leaf = key.rpartition(".")
        module = modules.get(owner)
        present = getattr(module, leaf, None) if module is not None else None
        if not isinstance(present, torch.Tensor) or present.shape == tensor.shape:
            continue  # load_state_dict reports what is missing or unexpected
        resized = torch.empty(tensor.shape, dtype=present.dtype, device=present.device)
        if isinstance(present, nn.Parameter):
            setattr(module, leaf, nn.Parameter(resized, requires_grad=present.requires_grad))
        else:
            module.register_buffer(leaf, resized, persistent=leaf not in
                                   module._non_persistent_buffers_set)
    return model
