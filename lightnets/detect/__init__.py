"""Object detection: torchvision's FCOS, RetinaNet, SSDLite and Faster R-CNN on the trunk of any
classifier of the zoo, and the registered standard pairs (importing this package registers
them)."""

from lightnets.detect import zoo as _zoo  # noqa: F401  (registers the named detectors)
from lightnets.detect.backbone import FPNBackbone, SSDLiteBackbone, fpn_backbone, ssdlite_backbone
from lightnets.detect.detector import ARCHS, Detector, create_detector
from lightnets.detect.graph import DetectionGraph

__all__ = ["ARCHS", "DetectionGraph", "Detector", "FPNBackbone", "SSDLiteBackbone",
           "create_detector", "fpn_backbone", "ssdlite_backbone"]
