"""Every torchvision / timm twin of the zoo, saved in the formats that library uses, loaded with
``lightnets.create_model(name, checkpoint_path=...)``, and compared output for output.

For each pair the peer is built at random initialisation in the form its pretrained checkpoints
take (``PeerWeights.pretrained_kwargs``: torchvision's GoogLeNet with ``transform_input=True``
and its auxiliary heads...), randomised (:func:`randomise`: so that a wrong mapping cannot hide
behind identity BatchNorm, and the logits depend on the input through every layer), and
written as torchvision writes (``.pth``) or as timm does (``pytorch_model.bin`` and
``model.safetensors``). Both models run in eval mode on the same random batch; the table gives
the largest |difference| of the logits relative to their largest |value|, beside how much the
logits change for another input (``sensitivity``: a mapping error anywhere would show at about
that scale). Needs timm (the ``dev`` extra)::

    python benchmarks/weights_parity.py                 # every pair (VGG-19 and ResNet-152 too)
    python benchmarks/weights_parity.py 'resnet*' --markdown
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the tests' helpers are importable from the root
    sys.path.insert(0, str(ROOT))

import lightnets  # noqa: E402
from lightnets.registry import Peer, list_models, meta_model, peers_of  # noqa: E402

# the formats each library writes its checkpoints in
FORMATS = {"torchvision": ("pth",), "timm": ("bin", "safetensors")}
TOLERANCE = 1e-5  # max |difference| relative to the output scale


def twin_pairs(patterns: str | list[str] = "*") -> list[tuple[str, str]]:
    """``(model, library)`` for every registered classifier twin whose checkpoints load (the
    detectors' files give boxes, not logits: ``tests/weights/test_detectors.py``)."""
    return [(name, library) for name in list_models(patterns, task="classification")
            for library, peer in peers_of(name).items() if peer.weights is not None]


@torch.no_grad()
def randomise(model: nn.Module, x: torch.Tensor, seed: int = 0) -> None:
    """Random weights at He scale (variance 2 / fan-in), biases and BatchNorm shifts N(0, 0.1),
    BatchNorm scales U(0.5, 1.5); BatchNorm statistics measured on ``x`` (so activations stay
    alive through the whole depth, where arbitrary statistics leave the deeper layers'
    outputs constant), then scattered: means moved by up to a tenth of a deviation, variances
    scaled by 0.5-2x."""
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    scales = {id(m.weight) for m in norms if m.weight is not None}
    for parameter in model.parameters():
        if parameter.dim() > 1:
            parameter.normal_(0, (2 / parameter[0].numel()) ** 0.5, generator=generator)
        elif id(parameter) in scales:
            parameter.uniform_(0.5, 1.5, generator=generator)
        else:
            parameter.normal_(0, 0.1, generator=generator)
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the batch
    model.eval()
    for norm in norms:
        norm.train()
    model(x)
    model.eval()
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
        size = norm.running_mean.shape
        norm.running_mean.add_(0.1 * torch.randn(size, generator=generator)
                               * norm.running_var.sqrt())
        norm.running_var.mul_(2 ** (2 * torch.rand(size, generator=generator) - 1))


def peer_model(name: str, library: str, seed: int = 0) -> nn.Module:
    """The peer's model of ``name`` in its pretrained form, at random initialisation (built on
    the meta device and filled: no time spent in its own initialisation), randomised
    (:func:`randomise`), in eval mode."""
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
    randomise(model, input_for(name, batch=4, seed=seed + 2), seed)
    return model


def write_peer(model: nn.Module, library: str, fmt: str, folder: Path) -> Path:
    """The peer's state dict written the way ``library`` distributes it: torchvision's
    ``torch.save`` of the state dict, timm's ``pytorch_model.bin`` or ``model.safetensors``."""
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


def input_for(name: str, batch: int = 2, seed: int = 1) -> torch.Tensor:
    """A random batch a little above the model's smallest input, at least 64 px (below 256 px:
    timm's VGG head equals ours only while the last map is at most 7x7)."""
    model = meta_model(name)
    side = max(max(model.min_input_size) + 16, 64)
    torch.manual_seed(seed)
    return torch.randn(batch, model.in_chans, side, side)


def relative_difference(ours: torch.Tensor, theirs: torch.Tensor) -> tuple[float, float]:
    """``(max |difference| / max |theirs|, max |theirs|)``."""
    scale = theirs.abs().max().item()
    return (ours - theirs).abs().max().item() / max(scale, 1e-12), scale


@torch.no_grad()
def compare(name: str, library: str, folder: Path, formats: tuple[str, ...] | None = None
            ) -> list[dict]:
    """Write the peer in each format, load each with lightnets, compare the logits."""
    peer = peer_model(name, library)
    x = input_for(name)
    expected = peer(x)
    sensitivity = relative_difference(peer(input_for(name, seed=3)), expected)[0]
    rows = []
    for fmt in formats or FORMATS[library]:
        path = write_peer(peer, library, fmt, folder / f"{name}-{library}-{fmt}")
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the notes on assumed preprocessing
            ours = lightnets.create_model(name, checkpoint_path=path).eval()
        load_seconds = time.perf_counter() - started
        relative, scale = relative_difference(ours(x), expected)
        rows.append({"model": name, "library": library, "peer": peers_of(name)[library].name,
                     "format": fmt, "source": ours.pretrained.source, "relative": relative,
                     "scale": scale, "sensitivity": sensitivity, "input": tuple(x.shape[1:]), "load_seconds": load_seconds,
                     "options": {k: v for k, v in ours.pretrained.model_args.items()
                                 if k not in ("num_classes", "in_chans")}})
        path.unlink()
        del ours
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", default=["*"], help="model name patterns")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: "
                        "more than the free cores slows every convolution down many times)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pairs = twin_pairs(args.patterns)
    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, library) in enumerate(pairs, start=1):
            print(f"[{index}/{len(pairs)}] {name} <- {library}", file=sys.stderr, flush=True)
            rows += compare(name, library, Path(folder))
    worst = max(row["relative"] for row in rows)
    failed = [row for row in rows if row["relative"] > TOLERANCE]
    if args.markdown:
        print("| lightnets model | peer | format | input | max relative difference |")
        print("|---|---|---|---|---:|")
        for row in rows:
            print(f"| `{row['model']}` | {row['library']} `{row['peer']}` | {row['format']} | "
                  f"{'x'.join(map(str, row['input']))} | {row['relative']:.2e} |")
    else:
        print(f"{'lightnets model':20s} {'peer':34s} {'format':12s} {'input':10s} "
              f"{'max rel diff':>12s} {'sensitivity':>11s} {'load s':>7s}  options")
        for row in rows:
            print(f"{row['model']:20s} {row['library'] + ' ' + row['peer']:34s} "
                  f"{row['format']:12s} {'x'.join(map(str, row['input'])):10s} "
                  f"{row['relative']:12.2e} {row['sensitivity']:11.2e} "
                  f"{row['load_seconds']:7.2f}  {row['options'] or ''}")
    print(f"{len(rows)} loads of {len(pairs)} pairs in {time.perf_counter() - started:.0f} s; "
          f"worst max relative difference {worst:.2e} (tolerance {TOLERANCE:.0e}); "
          f"{len(failed)} above it")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
