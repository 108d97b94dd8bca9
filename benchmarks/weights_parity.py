"""Every torchvision / timm twin of the zoo, saved in the formats that library uses, loaded with
``lightnets.create_model(name, checkpoint_path=...)``, and compared output for output.

For each pair the peer is built at random initialisation in the form its pretrained checkpoints
take (``PeerWeights.pretrained_kwargs``: torchvision's GoogLeNet with ``transform_input=True``
and its auxiliary heads...), randomised (``lightnets.testing.peer_model``: so that a wrong
mapping cannot hide behind identity BatchNorm, and the logits depend on the input through every
layer), and written as torchvision writes (``.pth``) or as timm does (``pytorch_model.bin`` and
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

import lightnets
from lightnets.registry import peers_of
from lightnets.testing import (FORMATS, TOLERANCE, input_for, peer_model, relative_difference,
                               twin_pairs, write_peer)

from _common import add_common_arguments, begin  # benchmarks/_common.py


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
                     "scale": scale, "sensitivity": sensitivity, "input": tuple(x.shape[1:]),
                     "load_seconds": load_seconds,
                     "options": {k: v for k, v in ours.pretrained.model_args.items()
                                 if k not in ("num_classes", "in_chans")}})
        path.unlink()
        del ours
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", default=["*"], help="model name patterns")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    # one thread by default: more than the free cores slows every convolution down many times
    add_common_arguments(parser, threads=1)
    args = parser.parse_args()
    begin(args)
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
