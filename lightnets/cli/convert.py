"""``lightnets convert PATH --model NAME --output FILE.safetensors``: torchvision or timm weights
(or a Hugging Face folder) to a lightnets checkpoint holding the model's arguments, weights,
preprocessing and class names, checked by loading it back and comparing the logits."""

from __future__ import annotations

import argparse
import json

from lightnets.cli._common import WEIGHT_SOURCES, console, warnings_as_lines


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert torchvision / timm weights into a lightnets checkpoint",
        description="Load pretrained weights (a torchvision .pth, a timm .pth / .bin / "
        ".safetensors, a Hugging Face-style folder, or a lightnets file) into the registered "
        "model they are the twin of, write a lightnets checkpoint (.safetensors or .pt) with "
        "the model's arguments, the source's preprocessing and class names, load it back and "
        "check that it computes the same logits. Nothing is downloaded.")
    parser.add_argument("weights", metavar="PATH", help="weights file or folder")
    parser.add_argument("--model", metavar="NAME", help="registered model (a lightnets file or a "
                        "Hugging Face folder names it)")
    parser.add_argument("--output", metavar="FILE", help="file to write, .safetensors (default: "
                        "<model>.safetensors here) or .pt")
    parser.add_argument("--source", choices=WEIGHT_SOURCES,
                        help="the library the weights come from (default: detected)")
    parser.add_argument("--num-classes", type=int, help="a new classifier for this many classes "
                        "(default: the file's)")
    parser.add_argument("--in-chans", type=int, help="adapt the first convolution to this many "
                        "input channels (default: the file's)")
    parser.add_argument("--no-strict", dest="strict", action="store_false",
                        help="load what fits and report what was skipped")
    parser.add_argument("--tolerance", type=float, default=1e-6,
                        help="largest accepted relative difference of the re-loaded file's "
                        "logits (default 1e-6)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lightnets.export.convert import convert

    extra = {key: value for key, value in (("num_classes", args.num_classes),
                                           ("in_chans", args.in_chans)) if value is not None}
    output = args.output or f"{args.model or Path(args.weights).stem}.safetensors"
    with warnings_as_lines():  # the notes: classifier replaced, preprocessing assumed, ...
        result = convert(args.weights, output, args.model, args.source, args.strict,
                         args.tolerance, **extra)
    info = result.pretrained
    if args.json:
        print(json.dumps({"path": str(result.path), "source": info.source,
                          "weights": info.path, "model": info.model_name,
                          "model_args": info.model_args, "preprocess": info.preprocess,
                          "class_names": bool(info.class_names), "tensors": result.tensors,
                          "verification": result.verification.as_dict()}))
        return 0
    options = {k: v for k, v in info.model_args.items() if k not in ("num_classes", "in_chans")}
    pre = info.preprocess
    megabytes = result.path.stat().st_size / 2**20
    console.print(f"read {info.path} as {info.source} weights of {info.model_name} "
                  f"({', '.join(f'{k}={v!r}' for k, v in options.items()) or 'default options'})",
                  highlight=False, soft_wrap=True)
    names = f"{len(info.class_names)} class names" if info.class_names else "no class names"
    console.print(f"wrote {result.path} ({megabytes:.1f} MB, {result.tensors} tensors): "
                  f"{info.model_args['num_classes']} classes ({names}); preprocessing: resize "
                  f"{pre['resize']} {pre.get('interpolation', 'bilinear')}, crop "
                  f"{pre['input_size']}, mean {pre['mean']}, std {pre['std']}",
                  highlight=False, soft_wrap=True)
    for line in result.verification.lines():
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    console.print(f"{result.verification.verdict()}: the written file gives the same logits",
                  highlight=False, soft_wrap=True)
    return 0
