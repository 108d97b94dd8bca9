"""A detector exported to ONNX with its post-processing (:class:`DetectionGraph`), and
its check: the file in ONNX Runtime against the eager detector on validation images of the data
it was trained on (``digits-det`` canvases when that is not known or not here), box by box; a
check that found no box compared nothing, and says so rather than passing.

The file takes ``input`` ``(1, C, H, W)``, one letterboxed image normalised with the detector's
mean and std at the export size, and returns ``boxes`` ``(K, 4)`` (x1, y1, x2, y2 in the
input's pixels), ``scores`` ``(K,)`` and ``labels`` ``(K,)`` int64, most confident first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightnets.data.detection import detection_datasets
from lightnets.detect.detector import Detector
from lightnets.detect.graph import DetectionGraph
from lightnets.export.onnx import INPUT_NAME, ONNX_EXPORT_PACKAGES, quiet_exporter, \
    without_inplace
from lightnets.export.verify import VerificationError
from lightnets.files import first_line
from lightnets.optional import require_all

OUTPUT_NAMES = ("boxes", "scores", "labels")
Detections = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def export_detection_onnx(graph: DetectionGraph, path: str | Path, opset: int) -> Path:
    """Write ``graph`` as an ONNX file of batch 1 (the box count is data-dependent; NMS becomes
    ONNX's ``NonMaxSuppression``). One-stage graphs go through the dynamo-based exporter; a
    Faster R-CNN is traced by the TorchScript-based one, whose ONNX forms torchvision's
    proposal and RoI modules provide (``torch.export`` stops at their data-dependent
    branches)."""
    require_all((package, "ONNX export") for package in ONNX_EXPORT_PACKAGES)
    path = Path(path)
    model = without_inplace(graph).eval()
    example = torch.randn(1, graph.detector.in_chans, *graph.size)
    names = {"input_names": [INPUT_NAME], "output_names": list(OUTPUT_NAMES)}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with quiet_exporter(), torch.no_grad():
            if graph.traced:
                torch.onnx.export(model, (example,), str(path), dynamo=False,
                                  opset_version=opset, **names)
                return path
            program = torch.onnx.export(model, (example,), None, dynamo=True, opset_version=opset,
                                        verbose=False, **names)
    except Exception as error:  # the exporters raise many kinds; keep the first line
        path.unlink(missing_ok=True)
        raise ValueError(f"ONNX export of the post-processed detector failed: "
                         f"{first_line(error)}") from None
    with quiet_exporter():
        program.save(path)
    return path


def session_detections(session: Any) -> Callable[[torch.Tensor], Detections]:
    """A callable running a post-processed detector's ONNX Runtime session on one image."""
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> Detections:
        array = np.ascontiguousarray(x.detach().cpu().float().numpy())
        return tuple(torch.from_numpy(out) for out in session.run(None, {name: array}))
    return run


@dataclass
class ImageMatch:
    """One canvas: the eager and exported detection counts, how many pair up (same label,
    box and score within tolerance), how many of the rest sit at a threshold (a score within
    tolerance of ``score_thresh`` or of the last kept score), and the pairs' largest
    differences (box in pixels, score)."""

    image: int
    eager: int
    exported: int
    matched: int
    borderline: int
    box_diff: float
    score_diff: float


@dataclass
class DetectionVerification:
    """All images of one check; it passes when every detection pairs up, borderline ones
    aside, the largest relative difference (box / image size, score) is within ``tolerance``
    and at least one box was compared; it fails on a difference (:attr:`failed`)."""

    images: list[ImageMatch]
    tolerance: float
    size: int
    notes: list[str] = field(default_factory=list)
    data: str = "digits-det"          # where the check images came from
    score_thresh: float | None = None

    @property
    def max_relative(self) -> float:
        return max((max(m.box_diff / self.size, m.score_diff) for m in self.images),
                   default=0.0)

    @property
    def mismatches(self) -> int:
        return sum(m.eager + m.exported - 2 * m.matched - m.borderline for m in self.images)

    @property
    def compared(self) -> int:
        """The boxes paired and compared: 0 when neither side found any."""
        return sum(m.matched for m in self.images)

    @property
    def failed(self) -> bool:
        return self.mismatches > 0 or self.max_relative > self.tolerance

    @property
    def passed(self) -> bool:
        # no check passes having compared nothing (both sides' 0 boxes agree trivially)
        return not self.failed and self.compared > 0

    def verdict(self) -> str:
        """The check's outcome in one line."""
        if self.failed:
            return (f"check failed: {self.mismatches} unmatched detection(s), max relative "
                    f"difference {self.max_relative:.2e}")
        if not self.compared:
            return (f"check compared nothing: no boxes above the threshold (score_thresh "
                    f"{self.score_thresh:g}) on the check images ({self.data}); the file is "
                    "written unchecked")
        return (f"check passed: {self.compared} box(es) compared, max relative difference "
                f"{self.max_relative:.2e} <= {self.tolerance:.0e}")

    def lines(self) -> list[str]:
        """One line per image, then the notes."""
        where = "digits-det canvas" if self.data == "digits-det" else f"{self.data} image"
        return [f"{where} {m.image}: {m.eager} eager / {m.exported} exported boxes, "
                f"{m.matched} matched ({m.borderline} unmatched at a threshold), max |box diff| "
                f"{m.box_diff:.3g} px of {self.size}, max |score diff| {m.score_diff:.3g}"
                for m in self.images] + self.notes

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "compared": self.compared, "data": self.data,
                "verdict": self.verdict(), "tolerance": self.tolerance,
                "max_relative": self.max_relative, "mismatches": self.mismatches,
                "images": [asdict(m) for m in self.images], "notes": self.notes}


def match(eager: Detections, exported: Detections, index: int, tolerance: float, size: int,
          thresholds: list[float]) -> ImageMatch:
    """Pair each eager detection with the first unpaired exported one of its label whose box
    and score are within tolerance."""
    (boxes, scores, labels), (their_boxes, their_scores, their_labels) = eager, exported
    free = list(range(len(their_scores)))
    box_diff = score_diff = 0.0
    unmatched: list[float] = []
    for box, score, label in zip(boxes, scores.tolist(), labels.tolist()):
        pair = next((j for j in free if int(their_labels[j]) == label
                     and (their_boxes[j] - box).abs().max().item() <= tolerance * size
                     and abs(float(their_scores[j]) - score) <= tolerance), None)
        if pair is None:
            unmatched.append(score)
            continue
        free.remove(pair)
        box_diff = max(box_diff, (their_boxes[pair] - box).abs().max().item())
        score_diff = max(score_diff, abs(float(their_scores[pair]) - score))
    matched = len(scores) - len(unmatched)
    unmatched += [float(their_scores[j]) for j in free]
    borderline = sum(any(abs(s - t) <= tolerance for t in thresholds) for s in unmatched)
    return ImageMatch(index, len(scores), len(their_scores), matched, borderline, box_diff,
                      score_diff)


@torch.no_grad()
def verify_detections(detector: Detector, run: Callable[[torch.Tensor], Detections],
                      size: tuple[int, int], tolerance: float, count: int = 3,
                      data: str = "digits-det", val_fraction: float = 0.2, seed: int = 0
                      ) -> DetectionVerification:
    """``run`` (the exported graph) against the eager ``detector`` on the first ``count``
    validation images of ``data`` (``digits-det`` or a detection folder, split by
    ``val_fraction`` and ``seed``) letterboxed to ``size``: eager gets the 0-1 image, ``run``
    the same normalised with the detector's mean and std."""
    if size[0] != size[1]:
        raise ValueError(f"the detection check letterboxes square canvases; got an export "
                         f"size of {size[0]}x{size[1]}")
    canvases = detection_datasets(data, size[0], augment=False, val_fraction=val_fraction,
                                  seed=seed, warn=False).val
    count = min(count, len(canvases))
    transform = detector.eval().transform
    mean = torch.tensor(transform.image_mean).view(-1, 1, 1)
    std = torch.tensor(transform.image_std).view(-1, 1, 1)
    settings = detector.thresholds()
    thresholds = [settings["score_thresh"]]
    images = []
    for index in range(count):
        image = canvases[index][0].float().div(255)[:detector.in_chans]
        [found] = detector([image])
        eager = (found["boxes"], found["scores"], found["labels"])
        exported = run(((image - mean) / std).unsqueeze(0))
        cap = [float(found["scores"][-1])] if len(found["scores"]) == \
            settings["detections_per_img"] else []
        images.append(match(eager, exported, index, tolerance, size[0], thresholds + cap))
    return DetectionVerification(images, tolerance, size[0], data=data,
                                 score_thresh=settings["score_thresh"])


def check_detections(verification: DetectionVerification, what: str) -> DetectionVerification:
    """Raise :class:`VerificationError` when ``verification`` fails."""
    if verification.failed:  # compared nothing is not a failure: verdict() says so
        raise VerificationError(
            f"{what} does not match the eager detector: {verification.mismatches} unmatched "
            f"detection(s), max relative difference {verification.max_relative:.2e} (box / "
            f"image size, score), tolerance {verification.tolerance:.0e}")
    return verification
