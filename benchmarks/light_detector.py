"""Detectors on one backbone at equal training time on ``digits-det`` (or ``--data``): mAP, params,
MACs, latency.

Each model trains for the same wall-clock ``--budget`` seconds, one after another (the machine
may be shared: the same budget, not the same step count, is what a user with a deadline gets),
with ``lightnets train``'s digits-det recipe (batch 16, AdamW lr 1e-3, weight decay 1e-4, the
training augmentation) and a learning rate that warms up over the first 5% of the budget and
then follows a cosine to 0 over the rest, by elapsed time. Where its BatchNorm averages lag its
weights (slow momentum: MobileNetV3's 0.01), they are recomputed on 20 training batches after the
budget, as ``lightnets train`` does before it validates. It is then scored on the 200
validation canvases by pycocotools (mAP@[.5:.95]), counted (params; MACs of backbone, neck and
head at the input size) and exported with its post-processing to ONNX, whose ONNX Runtime
latencies on one canvas are medians of ``--repeats`` calls, all models timed together in
alternating blocks; ``--budget 0`` skips training (latency and counts only). ``--int8`` also
times each network alone (no decoding, no NMS) in fp32 and after int8 quantization (ONNX
Runtime's static QDQ, calibrated on 32 validation images) in ONNX Runtime and, where installed,
OpenVINO::

    python benchmarks/light_detector.py --budget 300 --size 128
    python benchmarks/light_detector.py --data mnfinder-boxes --budget 600 --size 320 --int8
    python benchmarks/light_detector.py gfl_shufflenet_v2_x1_0 --model-arg fine_level=True
    python benchmarks/light_detector.py gfl_shufflenet_v2_x1_0 --no-colour-jitter --seed 1
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from lightnets.cli.train import model_arg
from lightnets.data.detection import detection_collate, detection_datasets
from lightnets.detect.detector import RawHeads
from lightnets.detect.graph import DetectionGraph
from lightnets.export.detection import export_detection_onnx, session_detections
from lightnets.export.onnx import export_onnx, onnx_session, run_session
from lightnets.export.quantize import evenly_spaced, quantize_onnx
from lightnets.export.timing import time_callables
from lightnets.profile.counter import count_complexity
from lightnets.registry import create_model, meta_model
from lightnets.optional import available
from lightnets.tasks.detection import DETECTION_TASK, evaluate_detector, to_device
from lightnets.train.loop import PRECISE_BN_BATCHES
from lightnets.train.precise_bn import lagging_batchnorm, recompute_batchnorm_stats

from _common import add_common_arguments, begin  # benchmarks/_common.py

DEFAULT_MODELS = ["gfl_shufflenet_v2_x1_0", "fcos_shufflenet_v2_x1_0",
                  "ssdlite_shufflenet_v2_x1_0"]
WARMUP = 0.05  # of the budget


def learning_rate(peak: float, fraction: float) -> float:
    """Linear warm-up over :data:`WARMUP` of the budget, then a cosine to 0."""
    if fraction < WARMUP:
        return peak * fraction / WARMUP
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (fraction - WARMUP) / (1 - WARMUP))))


def train_for(model: torch.nn.Module, loader: DataLoader, budget: float, lr: float
              ) -> tuple[int, float]:
    """Train until ``budget`` seconds have passed; the steps taken and epochs reached."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    model.train()
    start, steps = time.perf_counter(), 0
    while True:
        for images, targets in loader:
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                return steps, steps / len(loader)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(lr, elapsed / budget)
            floats, moved = to_device(images, targets, torch.device("cpu"))
            loss = sum(model(floats, moved).values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1


def precise_batchnorm(model: torch.nn.Module, loader: DataLoader) -> None:
    """Recompute lagging BatchNorm averages on training batches, as ``lightnets train`` does."""
    if lagging_batchnorm(model, len(loader)):
        recompute_batchnorm_stats(model, *DETECTION_TASK.batchnorm_inputs(
            model, islice(loader, PRECISE_BN_BATCHES), torch.device("cpu"), None,
            torch.contiguous_format))


def onnx_latencies(models: dict[str, torch.nn.Module], size: int, folder: Path, repeats: int
                   ) -> dict[str, float]:
    """Median milliseconds of each model's post-processed ONNX file on one canvas in ONNX
    Runtime, timed together in alternating blocks (drift on a shared machine hits all alike)."""
    import onnxruntime

    runs = {}
    for name, model in models.items():
        path = export_detection_onnx(DetectionGraph(model.eval(), (size, size)),
                                     folder / f"{name}.onnx", 18)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        runs[name] = session_detections(onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]))
    times = time_callables(runs, torch.randn(1, 3, size, size), 5, repeats, rounds=4)
    return {name: statistics.median(values) for name, values in times.items()}


def int8_latencies(models: dict[str, torch.nn.Module], images: torch.Tensor, size: int,
                    folder: Path, repeats: int) -> dict[str, dict[str, float]]:
    """Median milliseconds of each network alone (raw head outputs) on one canvas: fp32 and
    int8 in ONNX Runtime, int8 in OpenVINO where installed; all timed together."""
    runs = {}
    for name, model in models.items():
        raw = RawHeads(model.eval()).eval()
        fp32 = export_onnx(raw, folder / f"{name}.raw.onnx", (3, size, size))
        int8 = quantize_onnx(fp32, folder / f"{name}.int8.onnx",
                             DETECTION_TASK.network_inputs(raw, images))
        for precision, path in (("fp32", fp32), ("int8", int8)):
            session = onnx_session(path)
            runs[name, f"onnxruntime {precision}"] = (
                lambda x, session=session: run_session(session, x))
        if available("openvino"):
            from lightnets.export.openvino_runtime import openvino_runner
            runs[name, "openvino int8"] = openvino_runner(int8, "fp32", torch.get_num_threads())
    times = time_callables(runs, torch.randn(1, 3, size, size), 5, repeats, rounds=4)
    table: dict[str, dict[str, float]] = {}
    for (name, column), values in times.items():
        table.setdefault(name, {})[column] = statistics.median(values)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds each")
    parser.add_argument("--size", type=int, default=128, help="input size (default 128)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--data", default="digits-det",
                        help="detection data: digits-det (default) or a COCO, VOC or YOLO folder")
    parser.add_argument("--mosaic", type=float, default=0.0,
                        help="fraction of the training images that are mosaics of four")
    parser.add_argument("--zoom-crop", action="store_true",
                        help="SSD's zoom-out and IoU crop in the training augmentation")
    parser.add_argument("--model-arg", action="append", type=model_arg, default=[],
                        metavar="KEY=VALUE", help="a constructor argument for every model "
                        "(repeatable), as `lightnets train --model-arg`")
    parser.add_argument("--no-colour-jitter", action="store_true",
                        help="leave the data's colour jitter (photometric distortion, or "
                        "digits-det's brightness and contrast) out of the training augmentation")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of each model's initialisation, data order and augmentation")
    parser.add_argument("--int8", action="store_true",
                        help="also time each network alone in fp32 and int8 (see above)")
    add_common_arguments(parser, threads=1, repeats=30)
    args = parser.parse_args()
    console = begin(args)
    data = detection_datasets(args.data, args.size, mosaic=args.mosaic, zoom_crop=args.zoom_crop,
                              colour_jitter=not args.no_colour_jitter)
    val = DataLoader(data.val, batch_size=16, collate_fn=detection_collate)
    rows, trained = [], {}
    for name in args.models:
        torch.manual_seed(args.seed)
        loader = DataLoader(data.train, batch_size=16, shuffle=True, drop_last=True,
                            collate_fn=detection_collate)
        settings = {"num_classes": data.num_classes + 1, "min_size": args.size,
                    **dict(args.model_arg)}
        model = create_model(name, **settings)
        steps, epochs = (train_for(model, loader, args.budget, args.lr) if args.budget > 0
                         else (0, 0.0))
        if steps:
            precise_batchnorm(model, loader)
        scores = evaluate_detector(model, val, data.classes)
        counts = count_complexity(meta_model(name, **settings), (3, args.size, args.size))
        trained[name] = model
        rows.append((name, counts.params, counts.macs, steps, epochs, scores.map, scores.map_50))
        console.print(f"{name}: {steps} steps ({epochs:.1f} epochs) in {args.budget:.0f} s, "
                      f"mAP {scores.map:.3f}, mAP@.5 {scores.map_50:.3f}", highlight=False)
    with tempfile.TemporaryDirectory() as folder:
        latency = onnx_latencies(trained, args.size, Path(folder), args.repeats)
        raw = (int8_latencies(trained, evenly_spaced(data.val, 32), args.size, Path(folder),
                              args.repeats) if args.int8 else {})
    console.print(f"| model | params | MACs at {args.size} | steps (epochs) in {args.budget:.0f} s "
                  "| mAP@[.5:.95] | mAP@.5 | ONNX Runtime, batch 1 (ms) |\n"
                  "|---|---:|---:|---:|---:|---:|---:|")
    for name, params, macs, steps, epochs, box_map, map_50 in rows:
        console.print(f"| `{name}` | {params / 1e6:.2f}M | {macs / 1e6:.0f}M | {steps} "
                      f"({epochs:.1f}) | {box_map:.3f} | {map_50:.3f} | {latency[name]:.2f} |",
                      highlight=False)
    if raw:
        columns = list(next(iter(raw.values())))
        console.print("\n| network alone, batch 1 (ms) | " + " | ".join(columns) + " |\n|---|"
                      + "---:|" * len(columns))
        for name, row in raw.items():
            console.print(f"| `{name}` | " + " | ".join(f"{row[c]:.2f}" for c in columns) + " |",
                          highlight=False)


if __name__ == "__main__":
    main()
