"""torchvision's six segmenters (FCN, DeepLabV3, LR-ASPP), saved as torchvision saves them and
loaded with ``lightnets.create_model(name, checkpoint_path=...)``, compared output for output:
the main head's and the auxiliary head's logits.

Each torchvision model is built at random initialisation with its auxiliary head where it has
one, randomised at He scale with BatchNorm statistics measured on the input
(``lightnets.testing.peer_model``), and written with ``torch.save(model.state_dict())``. Both
models run in eval mode on the same random batch; the auxiliary head's output is read with the
top module alone in training mode (its dropout and BatchNorm as in eval)::

    python benchmarks/seg_weights_parity.py                  # all six
    python benchmarks/seg_weights_parity.py 'lraspp*' --markdown
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
from lightnets.registry import SEGMENTATION, list_models, peers_of
from lightnets.testing import TOLERANCE, input_for, peer_model, relative_difference, write_peer

from _common import add_common_arguments, begin  # benchmarks/_common.py


@torch.no_grad()
def compare(name: str, folder: Path) -> dict:
    """Write torchvision's ``name``, load it with lightnets, compare both heads' logits."""
    peer = peer_model(name, "torchvision")
    x = input_for(name)
    expected = peer(x)
    path = write_peer(peer, "torchvision", "pth", folder / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the note on the assumed release
        ours = lightnets.create_model(name, checkpoint_path=path).eval()
    relative, scale = relative_difference(ours(x), expected["out"])
    aux = None
    if "aux" in expected:
        ours.training = True  # the auxiliary head runs; its layers stay in eval mode
        aux = relative_difference(ours(x, return_aux=True)[1][0], expected["aux"])[0]
    return {"model": name, "input": tuple(x.shape[1:]), "relative": relative, "scale": scale,
            "aux": aux}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", default=["*"], help="model name patterns")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    add_common_arguments(parser, threads=1)
    args = parser.parse_args()
    begin(args)
    names = [name for name in list_models(args.patterns, task=SEGMENTATION)
             if "torchvision" in peers_of(name)]
    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for index, name in enumerate(names, start=1):
            print(f"[{index}/{len(names)}] {name}", file=sys.stderr, flush=True)
            rows.append(compare(name, Path(folder)))
    worst = max(max(row["relative"], row["aux"] or 0.0) for row in rows)
    if args.markdown:
        print("| lightnets model | input | max relative difference | auxiliary head |")
        print("|---|---|---:|---:|")
        for row in rows:
            aux = "–" if row["aux"] is None else f"{row['aux']:.2e}"
            print(f"| `{row['model']}` | {'x'.join(map(str, row['input']))} | "
                  f"{row['relative']:.2e} | {aux} |")
    else:
        for row in rows:
            aux = "-" if row["aux"] is None else f"{row['aux']:.2e}"
            print(f"{row['model']:30s} {'x'.join(map(str, row['input'])):10s} "
                  f"{row['relative']:10.2e} aux {aux:>9s}  (output scale {row['scale']:.3g})")
    print(f"{len(rows)} torchvision segmenters in {time.perf_counter() - started:.0f} s; worst max "
          f"relative difference {worst:.2e} (tolerance {TOLERANCE:.0e})")
    sys.exit(1 if worst > TOLERANCE else 0)


if __name__ == "__main__":
    main()
