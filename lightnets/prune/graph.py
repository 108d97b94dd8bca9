"""Which channels of a zoo model can be removed, and which must go together.

Torch-Pruning's dependency graph (Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR
2023) traces the model and groups the layers whose channels are tied: a convolution's outputs
with its BatchNorm and with the inputs of every layer that reads them, all the branches of a
residual addition (ResNet, MobileNetV2/V3, GhostNet, Xception), the slices of a concatenation
(Inception, GoogLeNet, Fire, ShuffleNet's branches), depthwise convolutions with their inputs,
squeeze-excite gates with the channels they scale, flattened feature maps with the linear layer
after them (VGG, AlexNet). lightnets adds what the zoo needs beyond that, each checked on every
family (``tests/prune``): removing zeroed channels must leave the outputs unchanged.

* Auxiliary heads (GoogLeNet, Inception v3) are traced too, so their inputs follow the stage
  they read; the classifiers' outputs (the classes) are never pruned.
* Channels that pass through a channel shuffle are kept. The graph would map a shuffle's channels
  one to one, which is wrong for a permutation (and its reshapes break the tracer), so while
  tracing each :class:`ChannelShuffle` stands behind a :class:`ShuffleBarrier` and every group
  reaching one is left out: ShuffleNet V2 prunes the inside of its branches, ShuffleNet V1 with
  one group (no shuffle) everything.
* Channels that enter or leave a grouped convolution (1 < groups < channels: ShuffleNet V1 with
  g > 1, ResNeXt) are kept: the library removes the first channels of each group's weight slice,
  not the chosen ones, so pruning there would silently change the function. ResNeXt still prunes
  its residual stage widths; ShuffleNet V1 with g > 1 has nothing left to prune.
* Ghost modules whose concatenation is cut to an odd width keep their channels; the others get
  their ``out_channels`` updated after pruning (the forward slices to it).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from lightnets.layers.ghost import GhostModule
from lightnets.layers.shuffle import ChannelShuffle, channel_shuffle
from lightnets.optional import require

tp = require("torch_pruning", "structured pruning")


class ShuffleBarrier(nn.Module):
    """Stands in for a :class:`ChannelShuffle` while the graph is traced: the same output,
    computed by one gather that the tracer records as a single node."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.channels = 0  # seen by the tracer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.channels = x.shape[1]
        order = channel_shuffle(torch.arange(x.shape[1], device=x.device)[None, :, None, None],
                                self.groups).flatten()
        return x.index_select(1, order)


class _BarrierPruner(tp.pruner.BasePruningFunc):
    """Lets a group run through a barrier (so it can be found there) and never prunes it."""

    def prune_out_channels(self, layer: nn.Module, idxs: list[int]) -> nn.Module:
        raise RuntimeError("channels passing through a channel shuffle cannot be pruned")

    prune_in_channels = prune_out_channels  # inputs and outputs are tied, as for a BatchNorm

    def get_out_channels(self, layer: nn.Module) -> int:
        return layer.channels

    get_in_channels = get_out_channels


@contextlib.contextmanager
def shuffles_as_barriers(model: nn.Module) -> Iterator[None]:
    """Every :class:`ChannelShuffle` of ``model`` replaced by a :class:`ShuffleBarrier` inside."""
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, ChannelShuffle):
                setattr(parent, name, ShuffleBarrier(child.groups))
                swapped.append((parent, name, child))
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def output_layers(model: nn.Module) -> list[nn.Module]:
    """The layers computing class scores: the classifier's and the auxiliary heads' last ones."""
    num_classes = getattr(model, "num_classes", None)
    heads = [getattr(model, "classifier", nn.Identity())]
    heads += [getattr(model, name) for name in getattr(model, "aux_head_names", [])]
    return [layer for head in heads for layer in head.modules()
            if isinstance(layer, (nn.Linear, nn.Conv2d))
            and getattr(layer, "out_features", getattr(layer, "out_channels", None)) == num_classes]


def is_grouped(layer: nn.Module) -> bool:
    """A convolution with 1 < groups that is not depthwise (one input and output per group)."""
    return (isinstance(layer, nn.Conv2d) and layer.groups > 1
            and not layer.groups == layer.in_channels == layer.out_channels)


def cut_ghost_layers(model: nn.Module) -> set[nn.Module]:
    """The convolutions of Ghost modules that cut their output to fewer channels than made."""
    layers = set()
    for module in model.modules():
        if isinstance(module, GhostModule):
            made = module.primary.conv.out_channels + module.cheap.conv.out_channels
            if made != module.out_channels:
                layers |= {module.primary.conv, module.cheap.conv}
    return layers


def _trace_forward(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    # training-mode forward of the model alone (its BatchNorms and dropout stay in eval mode, so
    # nothing is updated), so that auxiliary heads run and join the graph
    model.eval()
    model.training = True
    try:
        logits, aux = model(x, return_aux=True)
    finally:
        model.training = False
    return [logits, *aux]


class PruningGraph:
    """The dependency groups of ``model``: ``groups`` maps each prunable group's root layer
    name to its Torch-Pruning group (all channels), ``skipped`` the others to the reason."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        device = next(model.parameters()).device
        x = torch.randn(2, model.in_chans, *model.min_input_size, device=device)
        with shuffles_as_barriers(model), warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on unknown element-wise ops
            self.dg = tp.DependencyGraph().build_dependency(
                model, x, forward_fn=_trace_forward, verbose=False,
                customized_pruners={ShuffleBarrier: _BarrierPruner()})
        names = self.dg._module2name
        cut = cut_ghost_layers(model)
        self.groups: dict[str, tp.Group] = {}
        self.skipped: dict[str, str] = {}
        for group in self.dg.get_all_groups(ignored_layers=output_layers(model),
                                            root_module_types=(nn.Conv2d, nn.Linear)):
            name = names[group[0].dep.target.module]
            layers = [dep.target.module for dep, _ in group]
            if any(isinstance(layer, ShuffleBarrier) for layer in layers):
                self.skipped[name] = "passes through a channel shuffle"
            elif any(is_grouped(layer) for layer in layers):
                self.skipped[name] = "enters or leaves a grouped convolution"
            elif any(layer in cut for layer in layers):
                self.skipped[name] = "is cut by a Ghost module's slice"
            elif len(group[0].idxs) < 2:
                self.skipped[name] = "has a single channel"
            else:
                self.groups[name] = group

    def channels(self, name: str) -> int:
        """The number of channels of group ``name``."""
        return len(self.groups[name][0].idxs)

    def prune(self, removals: dict[str, list[int]]) -> None:
        """Remove channels ``removals[group]`` (indices into the group's channels) from every
        layer of each group, then update what the forward and the model's metadata read."""
        for name, idxs in removals.items():
            if not idxs:
                continue
            if len(idxs) >= self.channels(name):
                raise ValueError(f"cannot remove all {self.channels(name)} channels of {name}")
            root = self.groups[name][0].dep
            self.dg.get_pruning_group(root.target.module, root.handler, sorted(idxs)).prune()
        refresh_widths(self.model)


def refresh_widths(model: nn.Module) -> None:
    """After pruning: Ghost modules' output widths, and the model's ``feature_info``,
    ``num_features`` and ``head_features``, measured by a forward pass on the meta device."""
    for module in model.modules():
        if isinstance(module, GhostModule):  # uncut ones only (cut ones were not pruned)
            module.out_channels = module.primary.conv.out_channels + \
                module.cheap.conv.out_channels
    if not hasattr(model, "feature_info"):
        return
    shadow = _meta_copy(model)
    modules = dict(shadow.named_modules())
    widths: dict[str, int] = {}
    hooks = [modules[entry["module"]].register_forward_hook(
        lambda module, args, out, name=entry["module"]: widths.__setitem__(name, out.shape[1]))
        for entry in model.feature_info]
    head_inputs: list[int] = []
    hooks.append(modules["classifier"].register_forward_pre_hook(
        lambda module, args: head_inputs.append(args[0].shape[1])))
    with torch.no_grad():
        x = torch.empty(1, model.in_chans, *model.min_input_size, device="meta")
        features = shadow.forward_features(x)
        shadow.forward_head(features)
    for hook in hooks:
        hook.remove()
    model.feature_info = [{**entry, "num_chs": widths[entry["module"]]}
                          for entry in model.feature_info]
    model.num_features = features.shape[1]
    if hasattr(model, "head_features"):
        model.head_features = head_inputs[0]


def _meta_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to("meta").eval()
