"""``lightnets predict --checkpoint CKPT IMAGE [IMAGE ...]``: the top-k classes of each image
with their probabilities, preprocessed as in training (stored in the checkpoint); for a
segmenter, a colour mask PNG and an overlay per image (``--output DIR``) and each class's share
of the pixels;
``--model NAME --weights PATH`` does the same for torchvision or timm weights (ImageNet's class
names for 1000-class ones)."""

from __future__ import annotations

import argparse
import json

from lightnets.cli._common import add_weights_arguments, console, warnings_as_lines
from lightnets.export.backends import BACKENDS, backend_requirements


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="classify or segment image files with a checkpoint",
        description="Print the top-k classes and probabilities of each image; for a "
        "segmenter, write its mask and overlay PNGs and print each class's share of pixels.")
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
    from lightnets.export import predict
    from lightnets.export.predict import model_task

    with warnings_as_lines():  # e.g. the preprocessing assumed for a torchvision file
        task = model_task(args.checkpoint or args.weights, args.model)
        if task == "segmentation":
            return run_segmenter(args)
        if task == "detection":
            return run_detector(args)
        predictions = predict(args.checkpoint or args.weights, args.images, top_k=args.top_k,
                              device=args.device, backend=args.backend, model=args.model,
                              source=args.source)
    if args.json:
        print(json.dumps([p.as_dict() for p in predictions]))
        return 0
    for prediction in predictions:
        ranked = "  ".join(f"{name} {probability:.1%}" for name, _, probability in prediction.top)
        console.print(f"{prediction.image}: {ranked}", highlight=False, soft_wrap=True,
                      markup=False)
    return 0


def run_segmenter(args: argparse.Namespace) -> int:
    from lightnets.export.predict_masks import predict_masks

    predictions = predict_masks(args.checkpoint or args.weights, args.images,
                                output=args.output or "predictions", device=args.device,
                                backend=args.backend, model=args.model, source=args.source)
    if args.json:
        print(json.dumps([p.as_dict() for p in predictions]))
        return 0
    for prediction in predictions:
        shares = "  ".join(f"{name} {share:.1%}" for name, share in sorted(
            prediction.fractions.items(), key=lambda item: -item[1]))
        console.print(f"{prediction.image}: {shares} -> {prediction.mask_png}, "
                      f"{prediction.overlay_png}", highlight=False, soft_wrap=True, markup=False)
    return 0


def run_detector(args: argparse.Namespace) -> int:
    from lightnets.cli._common import CommandError
    from lightnets.export.predict_boxes import predict_boxes

    from lightnets.export.predict import is_exported

    exported = is_exported(args.checkpoint or args.weights)
    if args.backend not in ("eager", "onnxruntime" if exported else "eager"):
        raise CommandError("detectors predict in eager PyTorch (a checkpoint) or ONNX Runtime "
                           f"(a post-processed ONNX file); drop --backend {args.backend}")
    predictions = predict_boxes(args.checkpoint or args.weights, args.images,
                                output=args.output or "predictions",
                                score_threshold=args.score_threshold, device=args.device,
                                model=args.model, source=args.source)
    if args.json:
        print(json.dumps([p.as_dict() for p in predictions]))
        return 0
    for prediction in predictions:
        found = "  ".join(f"{b['class']} {b['score']:.2f} at "
                          f"({', '.join(f'{v:.0f}' for v in b['box'])})"
                          for b in prediction.boxes) or "nothing above the threshold"
        console.print(f"{prediction.image}: {found} -> {prediction.drawn_png}",
                      highlight=False, soft_wrap=True, markup=False)
    return 0
