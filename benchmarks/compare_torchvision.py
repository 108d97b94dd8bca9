"""lightnets against torchvision, model by model, in one process.

For every registered model with a torchvision counterpart (declared beside each family,
``register_model(peers=...)``):
whether the parameter shapes are identical, lightnets' counter on both implementations beside
torchvision's own published GMACs (``weights.meta["_ops"]``), and the latency ratio with the two
implementations alternating every repeat::

    python benchmarks/compare_torchvision.py 'mobilenet*' 'resnet18' --repeats 20
    python benchmarks/compare_torchvision.py --no-latency          # counts only, seconds
"""

from __future__ import annotations

import argparse

import torch
import torchvision
from rich.table import Table

from lightnets.profile import count_complexity
from lightnets.profile.bench import benchmark, build_peer
from lightnets.registry import list_models, meta_model, peers_of

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py


def published_gmacs(name: str) -> float | None:
    """torchvision's documented GMACs ("GFLOPS") for the builder, where it publishes weights."""
    peer = peers_of(name)["torchvision"]
    builder, kwargs = peer.name, peer.kwargs
    if kwargs.get("width_mult", 1.0) != 1.0:
        return None  # widths without released weights have no published number
    try:
        return torchvision.models.get_model_weights(builder).DEFAULT.meta["_ops"]
    except (ValueError, KeyError, AttributeError):
        return None


def compare(name: str, args: argparse.Namespace) -> dict:
    ours, peer = meta_model(name), build_peer("torchvision", name, "meta")
    size = tuple(ours.default_input_size)
    record = {
        "model": name, "torchvision": peers_of(name)["torchvision"].name,
        "same_shapes": [p.shape for p in ours.parameters()] == [p.shape for p in peer.parameters()],
        "params": count_complexity(ours, size).params,
        "macs": count_complexity(ours, size).macs,
        "peer_macs": count_complexity(peer, size).macs,
        "published_gmacs": published_gmacs(name),
    }
    if not args.no_latency:
        mine, theirs = benchmark(name, args.batch_size, args.input_size, warmup=args.warmup,
                                 repeats=args.repeats, vs="torchvision")
        record.update(ms=mine.median_ms, peer_ms=theirs.median_ms,
                      ratio=mine.median_ms / theirs.median_ms)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", default=["*"], help="model name patterns")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--input-size", type=int, default=None, help="square size (default: "
                        "each model's default)")
    parser.add_argument("--no-latency", action="store_true", help="counts only")
    add_common_arguments(parser, warmup=3, repeats=10, json=True)
    args = parser.parse_args()
    console = begin(args)
    names = [n for n in list_models(args.patterns) if "torchvision" in peers_of(n)]
    records = []
    for name in names:
        console.print(f"[dim]{name}...[/]", highlight=False)
        records.append(compare(name, args))
    write_json(args.json, records)
    table = Table(title=f"lightnets vs torchvision {torchvision.__version__} "
                  f"({torch.get_num_threads()} threads, batch {args.batch_size})")
    for column in ("model", "same shapes", "params", "MACs (ours)", "MACs (tv model)",
                   "tv published", "ours ms", "tv ms", "ours/tv"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in records:
        published = f"{r['published_gmacs']:.3f}G" if r["published_gmacs"] else "—"
        timing = ([f"{r['ms']:.2f}", f"{r['peer_ms']:.2f}", f"{r['ratio']:.3f}"]
                  if "ms" in r else ["—"] * 3)
        table.add_row(r["model"], "yes" if r["same_shapes"] else "[red]no[/]", f"{r['params']:,}",
                      f"{r['macs'] / 1e9:.3f}G", f"{r['peer_macs'] / 1e9:.3f}G", published,
                      *timing)
    console.print(table)
    if records and "ratio" in records[0]:
        ratios = torch.tensor([r["ratio"] for r in records])
        console.print(f"geometric mean latency ratio ours/torchvision: "
                      f"{ratios.log().mean().exp().item():.3f} over {len(records)} models")


if __name__ == "__main__":
    main()
