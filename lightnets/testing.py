"""Helpers for checking that a model computes what a reference computes: the suite's parity tests
and the benchmarks use them, and so can anyone porting or converting a network.

A parity check on a freshly built model proves little: its BatchNorms are near-identity (means
0, variances 1, scales 1, shifts 0), so a layer that skips its norm, swaps two of them or reads
the wrong ``eps`` gives the same output. :func:`randomise` gives a model non-trivial weights and
BatchNorm statistics first; :func:`copy_by_order` loads one model's values into another with
the same parameters in the same order; :func:`relative_difference` says how far two outputs
are apart on the output's scale::

    import torch, torchvision
    from lightnets.testing import copy_by_order, randomise, relative_difference

    theirs = randomise(torchvision.models.resnet18()).eval()
    ours = copy_by_order(theirs, my_resnet18()).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert relative_difference(ours(x), theirs(x))[0] < 1e-5

The zoo's peers (:func:`lightnets.registry.peers_of`): :func:`peer_model` builds torchvision's or
timm's twin of a registered classifier at random, randomised, in the form its pretrained
checkpoints take, and :func:`write_peer` saves it as that library distributes its files, for
checking that ``create_model(name, checkpoint_path=...)`` loads them faithfully (needs timm for
timm's twins, safetensors for its ``model.safetensors``); :func:`peer_twins` gives ours and the
peer's model with the same random values, whether or not the peer's checkpoints load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightnets.registry import CLASSIFICATION, Peer, create_model, list_models, meta_model, peers_of

WEIGHTS = ("small", "he", "keep")
# the files each peer library distributes its checkpoints as (write_peer's formats)
FORMATS = {"torchvision": ("pth",), "timm": ("bin", "safetensors")}
TOLERANCE = 1e-5  # a peer's logits against ours from its file: max |difference| / output scale


def _running_stats(module: nn.Module) -> bool:
    return (getattr(module, "running_mean", None) is not None
            and getattr(module, "running_var", None) is not None)


@torch.no_grad()
def randomise(model: nn.Module, x: Any = None, *, weights: str = "small",
              seed: int = 0) -> nn.Module:
    """Give ``model`` non-trivial weights and BatchNorm statistics, in place, so that a wrong
    mapping cannot hide behind identity BatchNorm.

    The same ``seed`` on models with the same parameter and buffer shapes in the same order gives
    the same values. A private generator draws them: the global random state is left alone, and
    so is every module's train / eval mode.

    Args:
        model: the model; changed in place.
        x: an input (called as ``model(x)``) to measure the BatchNorm statistics on; ``None``
            (default) draws them instead. Measured: one eval-mode pass with the ``torch.nn``
            BatchNorms alone in training mode (activations then stay alive through the whole
            depth, where arbitrary statistics can leave the deeper layers' outputs constant), then
            scattered: means moved by up to a tenth of a deviation, variances scaled by 0.5-2x.
            Drawn (every module with ``running_mean`` and ``running_var``, frozen BatchNorms
            too): means from N(0, 0.1), variances from U(0.002, 0.5) with ``weights="small"``
            (small, so that BatchNorm's ``eps`` matters) and from U(0.5, 1.5) otherwise (the
            scale of activations under the model's own or He-scale weights).
        weights: ``"small"`` (default) draws every parameter from N(0, 0.1), BatchNorm's scales
            and shifts included; ``"he"`` draws the weights (every parameter of two or more
            dimensions) at He scale (variance 2 / fan-in), BatchNorm's scales from U(0.5, 1.5)
            and every other parameter (biases, BatchNorm's shifts) from N(0, 0.1); ``"keep"``
            keeps the model's weights and biases and draws BatchNorm's scales and shifts as
            ``"he"`` does.
        seed: the generator's seed (default 0).

    Returns:
        ``model``.

    Example:
        >>> import torchvision
        >>> from lightnets.testing import randomise
        >>> model = randomise(torchvision.models.resnet18().eval(), weights="keep")
        >>> bool(model.bn1.running_var.min() >= 0.5)
        True
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}; got {weights!r}")
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if weights == "small":
        for parameter in model.parameters():
            parameter.normal_(0, 0.1, generator=generator)
    else:
        scales = {id(m.weight) for m in norms if m.weight is not None}
        shifts = {id(m.bias) for m in norms if m.bias is not None}
        for parameter in model.parameters():
            if id(parameter) in scales:
                parameter.uniform_(0.5, 1.5, generator=generator)
            elif weights == "keep" and id(parameter) not in shifts:
                continue
            elif parameter.dim() > 1:
                parameter.normal_(0, (2 / parameter[0].numel()) ** 0.5, generator=generator)
            else:
                parameter.normal_(0, 0.1, generator=generator)
    if x is None:
        low, high = (0.002, 0.5) if weights == "small" else (0.5, 1.5)
        for module in model.modules():
            if _running_stats(module):
                module.running_mean.normal_(0, 0.1, generator=generator)
                module.running_var.uniform_(low, high, generator=generator)
        return model
    return _measured_statistics(model, [m for m in norms if _running_stats(m)], x, generator)


def _measured_statistics(model: nn.Module, norms: list[nn.Module], x: Any,
                         generator: torch.Generator) -> nn.Module:
    """``norms``' statistics measured on ``x`` (see :func:`randomise`), then scattered."""
    modes = {module: module.training for module in model.modules()}
    momenta = [norm.momentum for norm in norms]
    try:
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a plain average over the batch
        model.eval()
        for norm in norms:
            norm.train()
        model(x)
    finally:
        for module, training in modes.items():
            module.training = training
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
    for norm in norms:
        size = norm.running_mean.shape
        norm.running_mean.add_(0.1 * torch.randn(size, generator=generator)
                               * norm.running_var.sqrt())
        norm.running_var.mul_(2 ** (2 * torch.rand(size, generator=generator) - 1))
    return model


@torch.no_grad()
def copy_by_order(source: nn.Module, target: nn.Module) -> nn.Module:
    """Load ``source``'s parameters and buffers into ``target`` position by position (two
    implementations of one network whose names differ); returns ``target``. Raises
    ``ValueError`` unless both have as many parameters and buffers, of the same shapes."""
    for kind, theirs, ours in (("parameters", list(source.parameters()),
                                list(target.parameters())),
                               ("buffers", list(source.buffers()), list(target.buffers()))):
        if [t.shape for t in theirs] != [t.shape for t in ours]:
            raise ValueError(f"the {kind} differ: {len(theirs)} in the source, {len(ours)} in "
                             "the target, or their shapes in order")
        for src, dst in zip(theirs, ours):
            dst.copy_(src)
    return target


def relative_difference(ours: torch.Tensor, theirs: torch.Tensor) -> tuple[float, float]:
    """``(max |ours - theirs| / max |theirs|, max |theirs|)``: the difference on the reference
    output's scale, and that scale."""
    scale = theirs.abs().max().item()
    return (ours - theirs).abs().max().item() / max(scale, 1e-12), scale


# -- the zoo's peers ------------------------------------------------------------------------------
def twin_pairs(patterns: str | list[str] = "*") -> list[tuple[str, str]]:
    """``(model, library)`` for every registered classifier whose peer's checkpoints load into
    it (detectors' files give boxes, not logits: their tests compare detections)."""
    return [(name, library) for name in list_models(patterns, task=CLASSIFICATION)
            for library, peer in peers_of(name).items() if peer.weights is not None]


def input_for(name: str, batch: int = 2, seed: int = 1) -> torch.Tensor:
    """A random batch a little above the model's smallest input, at least 64 px (below 256 px:
    timm's VGG head equals ours only while the last map is at most 7x7)."""
    model = meta_model(name)
    side = max(max(model.min_input_size) + 16, 64)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, model.in_chans, side, side, generator=generator)


def peer_model(name: str, library: str, seed: int = 0) -> nn.Module:
    """The peer's model of ``name`` in its pretrained form (``PeerWeights.pretrained_kwargs``:
    torchvision's GoogLeNet with ``transform_input=True`` and its auxiliary heads...), built on
    the meta device and filled (no time spent in its own initialisation), randomised at He
    scale with statistics measured on :func:`input_for` (:func:`randomise`), in eval mode."""
    peer: Peer = peers_of(name)[library]
    kwargs = {**peer.kwargs, **peer.weights.pretrained_kwargs}
    with torch.device("meta"):
        if library == "timm":
            import timm

            model = timm.create_model(peer.name, pretrained=False, **kwargs)
        else:
            import torchvision

            model = torchvision.models.get_model(peer.name, weights=None, **kwargs)
    model = model.to_empty(device="cpu")
    if library == "timm" and getattr(model, "aux_logits", False):
        model.aux_logits = False  # timm's Inception v3 runs its auxiliary head in eval mode too
    randomise(model, input_for(name, batch=4, seed=seed + 2), weights="he", seed=seed)
    return model.eval()


def peer_twins(name: str, library: str = "torchvision", seed: int = 0
               ) -> tuple[nn.Module, nn.Module]:
    """``(ours, theirs)``: the peer library's model of ``name`` built as it equals ours (the
    peer's ``kwargs``) at random and randomised (:func:`randomise`, small weights), and
    ``create_model(name)`` given its values by position (:func:`copy_by_order`); both in eval
    mode. Their function compared without going through a file (the segmenters' zoo test;
    their files load too, :mod:`lightnets.weights`)."""
    peer: Peer = peers_of(name)[library]
    if library == "timm":
        import timm

        theirs = timm.create_model(peer.name, pretrained=False, **peer.kwargs)
    else:
        import torchvision

        theirs = torchvision.models.get_model(peer.name, weights=None, **peer.kwargs)
    randomise(theirs, seed=seed)
    ours = copy_by_order(theirs, create_model(name))
    return ours.eval(), theirs.eval()


def write_peer(model: nn.Module, library: str, fmt: str, folder: Path) -> Path:
    """The peer's state dict written the way ``library`` distributes it (``fmt`` one of its
    :data:`FORMATS`): torchvision's ``torch.save`` of the state dict, timm's
    ``pytorch_model.bin`` or ``model.safetensors``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    if fmt == "safetensors":
        from safetensors.torch import save_file

        path = folder / "model.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        path = folder / ("pytorch_model.bin" if fmt == "bin" else "weights.pth")
        torch.save(state, path)
    return path
