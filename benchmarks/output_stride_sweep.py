"""Every classifier at output stride 32, 16 and 8, and the segmenters against torchvision: the
exhaustive sweep behind the suite's representative tests.

Per model and output stride, on the meta device: whether the parameter shapes equal those at 32,
whether every stage map's measured stride (from its size at the default input) is the one
``feature_info`` reports, and the MACs at the default input. With ``--exact``, on real tensors
with random weights and BatchNorm statistics: the largest difference, relative to the output
scale, between the dilated trunk's last map sampled every ``32 / output_stride`` pixels and the
strided trunk's map (0 up to rounding where the strided layers are "same"-padded and no
squeeze-excite averages the map). With ``--torchvision``: torchvision's six segmentation models
and lightnets' namesakes given the same random weights, eval outputs compared. ``--plot PATH``
draws the MACs of one model per family at each output stride (``docs/output_stride_cost.png``)::

    python benchmarks/output_stride_sweep.py                      # all classifiers, seconds
    python benchmarks/output_stride_sweep.py --exact --torchvision \
        --plot docs/output_stride_cost.png
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from rich.table import Table

import lightnets
from lightnets.profile import count_complexity
from lightnets.registry import meta_model
from lightnets.testing import peer_twins, randomise

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py

STRIDES = (32, 16, 8)
REPRESENTATIVES = ["alexnet", "vgg16", "googlenet", "inception_v3", "xception", "resnet50",
                   "se_resnet50", "squeezenet1_1", "mobilenet_v1_x1_0", "mobilenet_v2_x1_0",
                   "mobilenet_v3_large", "shufflenet_v1_g3_x1_0", "shufflenet_v2_x1_0",
                   "ghostnet_x1_0"]  # one model per family in the plot
TORCHVISION = ["fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
               "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]


def measured_reduction(input_size: int, map_size: int) -> int:
    return 2 ** round(math.log2(input_size / map_size))


def sweep(name: str, exact: bool) -> dict:
    """One classifier at every output stride."""
    record: dict = {"model": name}
    nominal = meta_model(name)
    shapes = [p.shape for p in nominal.parameters()]
    size = nominal.default_input_size
    for output_stride in STRIDES:
        model = meta_model(name, output_stride=output_stride)
        same = [p.shape for p in model.parameters()] == shapes
        macs = count_complexity(model, size).macs
        features = model.to_features()
        maps = features(torch.empty(1, *size, device="meta"))
        true = [measured_reduction(size[1], m.shape[-1]) for m in maps] == features.reductions
        record[output_stride] = {"same_params": same, "true_strides": true, "macs": macs,
                                 "last_stride": features.reductions[-1]}
    if exact:
        record["exact"] = dense_vs_strided(name, nominal.min_input_size)
    return record


def dense_vs_strided(name: str, min_size: tuple[int, int]) -> dict[int, float]:
    """Relative difference of the dilated trunk, sampled, against the strided one."""
    side = max(64, 2 * min_size[0] + 1)
    torch.manual_seed(0)
    x = torch.randn(1, 3, side, side)
    outputs = {}
    for output_stride in STRIDES:
        model = lightnets.create_model(name, output_stride=output_stride,
                                       features_only=True).eval()
        randomise(model)
        with torch.no_grad():
            outputs[output_stride] = (model(x)[-1], model.reductions[-1])
    strided, reduction = outputs[32]
    result = {}
    for output_stride in STRIDES[1:]:
        dense, dense_reduction = outputs[output_stride]
        step = reduction // dense_reduction
        sampled = dense[..., ::step, ::step][..., :strided.shape[-2], :strided.shape[-1]]
        result[output_stride] = float((sampled - strided).abs().max() / strided.abs().max())
    return result


def against_torchvision(name: str) -> float:
    """Largest |difference| / output scale of the eval outputs with torchvision's weights."""
    ours, theirs = peer_twins(name)
    x = torch.randn(2, 3, 131, 97, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = theirs(x)["out"]
        return float((ours(x) - reference).abs().max() / reference.abs().max())


def plot(records: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in records if r["model"] in REPRESENTATIVES] or records
    names = [r["model"] for r in shown]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.27
    for offset, output_stride in enumerate(STRIDES):
        values = [r[output_stride]["macs"] / 1e9 for r in shown]
        ax.bar([i + (offset - 1) * width for i in range(len(names))], values, width,
               label=f"output stride {output_stride}")
    for i, r in enumerate(shown):  # the cost of output stride 8 against 32
        ax.annotate(f"{r[8]['macs'] / r[32]['macs']:.1f}x", (i + width, r[8]["macs"] / 1e9),
                    ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ticks = [0.1, 0.3, 1, 3, 10, 30, 100]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_ylabel("GMACs at the default input (log)")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_title("The cost of density: the same parameters, dilated instead of strided")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", default=["*"], help="classifier name patterns")
    parser.add_argument("--exact", action="store_true", help="dense vs strided on real tensors")
    parser.add_argument("--torchvision", action="store_true",
                        help="torchvision's six segmentation models, outputs compared")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of the MACs per stride")
    add_common_arguments(parser, json=True)
    args = parser.parse_args()
    console = begin(args)
    start = time.perf_counter()
    records = []
    for name in lightnets.list_models(args.patterns, task="classification"):
        console.print(f"[dim]{name}...[/]", highlight=False)
        records.append(sweep(name, args.exact))
    parity = {name: against_torchvision(name) for name in TORCHVISION} if args.torchvision else {}
    write_json(args.json, records, torchvision=parity)
    table = Table(title=f"{len(records)} classifiers at output stride 32 / 16 / 8")
    for column in ("model", "params equal", "strides true", "last stride", "GMACs",
                   *(["dense vs strided (16 / 8)"] if args.exact else [])):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in records:
        cells = [r["model"],
                 "yes" if all(r[s]["same_params"] for s in STRIDES) else "[red]no[/]",
                 "yes" if all(r[s]["true_strides"] for s in STRIDES) else "[red]no[/]",
                 " / ".join(str(r[s]["last_stride"]) for s in STRIDES),
                 " / ".join(f"{r[s]['macs'] / 1e9:.2f}" for s in STRIDES)]
        if args.exact:
            cells.append(" / ".join(f"{r['exact'][s]:.1e}" for s in STRIDES[1:]))
        table.add_row(*cells)
    console.print(table)
    failures = [r["model"] for r in records
                if not all(r[s]["same_params"] and r[s]["true_strides"] for s in STRIDES)]
    console.print(f"parameters equal and strides true at every output stride: "
                  f"{len(records) - len(failures)} / {len(records)}"
                  + (f"; failing: {', '.join(failures)}" if failures else ""))
    if args.exact:
        exact = [r["model"] for r in records if max(r["exact"].values()) < 1e-5]
        console.print(f"dense = strided sampled (within 1e-5): {len(exact)} / {len(records)}: "
                      f"{', '.join(exact)}")
    for name, difference in parity.items():
        console.print(f"{name}: eval output with torchvision's weights, max |diff| / scale "
                      f"{difference:.1e}", highlight=False)
    if args.plot:
        plot(records, args.plot)
        console.print(f"wrote {args.plot}")
    console.print(f"{time.perf_counter() - start:.0f} s", style="dim")


if __name__ == "__main__":
    main()
