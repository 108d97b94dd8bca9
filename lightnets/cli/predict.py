"""``lightnets predict --checkpoint CKPT IMAGE [IMAGE ...]``: what the model's task predicts for
each image, preprocessed as in training (stored in the checkpoint or an exported file's
sidecar): a classifier's top-k classes with their probabilities; a segmenter's colour mask PNG
and overlay per image (``--output DIR``) and each class's share of the pixels; a detector's
boxes, listed and drawn. ``--model NAME --weights PATH`` does the same for torchvision or timm
weights (ImageNet's class names for 1000-class ones)."""

from __future__ import annotations

import argparse
import json

from lightnets.cli._common import add_weights_arguments, console, warnings_as_lines
from lightnets.export.backends import BACKENDS, backend_requirements


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="classify, segment or detect in image files with a checkpoint",
        description="Print the top-k classes and probabilities of each image; for a "
        "segmenter, write its mask and overlay PNGs and print each class's share of pixels; "
        "for a detector, list its boxes and draw them.")
    add_weights_arguments(parser)
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--backend", choices=BACKENDS, default="eager",
                        help="inference backend: the fused model in eager PyTorch (default), "
                        "torch.compile, ONNX Runtime or OpenVINO (the last three on the CPU); "
                        "an exported file runs as its sidecar says (ONNX: onnxruntime or "
                        "openvino)")
    parser.add_argument("--output", metavar="DIR", help="segmenters: where the <image>.mask.png "
                        "(palette PNG of class indices) and <image>.overlay.png files go; "
                        "detectors: the <image>.boxes.png files (default: predictions/)")
    parser.add_argument("--score-threshold", type=float, default=0.3, metavar="X",
                        help="detectors: the lowest score of a box listed and drawn")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.set_defaults(func=run, requires=lambda args: backend_requirements([args.backend]))


def run(args: argparse.Namespace) -> int:
    from lightnets.export import open_model, predict_any

    with warnings_as_lines():  # e.g. the preprocessing assumed for a torchvision file
        opened = open_model(args.checkpoint or args.weights, args.model, args.source)
        predictions = predict_any(opened, args.images, top_k=args.top_k, backend=args.backend,
                                  device=args.device, output=args.output or "predictions",
                                  score_threshold=args.score_threshold)
    if args.json:
        print(json.dumps([p.as_dict() for p in predictions]))
        return 0
    for prediction in predictions:
        console.print(f"{prediction.image}: {prediction.line()}", highlight=False,
                      soft_wrap=True, markup=False)
    return 0

