"""The registered detectors: torchvision's four standard combinations and light backbones under
the same detectors, each a name for :func:`lightnets.detect.detector.create_detector` with its
settings (every argument can still change them). All default to 91 classes (COCO's 80 in
torchvision's 91-id numbering, with the background), as torchvision's.

Where torchvision has the model, ours has exactly its parameter (and buffer) shapes in its
order and computes its function: ``ssdlite320_mobilenet_v3_large`` (3,440,060 params at 91
classes), ``fasterrcnn_mobilenet_v3_large_fpn`` (19,410,754 with trainable BatchNorm; 19,386,354
with ``frozen_bn=True``, the form torchvision publishes), ``fcos_resnet50_fpn`` and
``retinanet_resnet50_fpn`` (trainable BatchNorm; ``frozen_bn=True`` gives the published
32,269,600 and 34,014,999). Their state-dict keys differ from torchvision's only inside the
backbone's trunk (lightnets' block names); :func:`torchvision_keys` gives the renaming rules
(``lightnets.weights.mapping.rename``) that turn a torchvision checkpoint into ours, which
``create_model(name, checkpoint_path=...)`` applies (their ``PeerWeights``). torchvision's
choices kept there:

* SSDLite320 uses MobileNetV3-Large with the "reduced tail" (Howard et al. 2019, Sec. 6.1.3:
  the last stage at half width, as torchvision builds it when no ImageNet backbone is loaded,
  the form its COCO weights have), BatchNorm momentum 0.03 and N(0, 0.03) initialisation;
* Faster R-CNN's FPN reads two stride-32 maps of MobileNetV3-Large: the first block of the
  last stage (``features.13``) and the last 1x1 convolution (``features.16``), with anchors of
  32-512 at each of its three levels; the backbone's BatchNorm has PyTorch's eps (1e-5) and
  momentum (0.1), and proposals need an objectness of 0.05 (``rpn_score_thresh``).

The light detectors (``lightnets list 'fcos*'``) have no torchvision counterpart. They are set
for small inputs and CPUs: 320x320 by default (SSDLite320's size; pass ``min_size`` /
``max_size`` for other canvases), an FPN of 96 channels and, for FCOS, a head tower of two
convolutions instead of four (NanoDet's budget, RangiLyu 2020), so that the head does not
outweigh the backbone. The architectures' own names, ``fcos``, ``retinanet``, ``ssdlite`` and
``fasterrcnn``, take any classifier of the zoo as ``backbone`` with the same light settings
(``create_model("fcos", backbone="ghostnet_x1_3")``, ``lightnets train --model fcos --backbone
ghostnet_x1_3``); a checkpoint records the backbone among the model's arguments.
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from lightnets.detect.backbone import normal_init
from lightnets.detect.detector import Detector, create_detector
from lightnets.detect.gfl import create_gfl_detector
from lightnets.models.mobilenet_v3 import LARGE, LARGE_HEAD, MobileNetV3
from lightnets.models.mobilenet_v3 import torchvision_keys as mobilenet_v3_keys
from lightnets.models.resnet import RESNET_KEYS
from lightnets.registry import DETECTION, Peer, PeerWeights, register_model

TORCHVISION_ARGS = {"weights_backbone": None}  # torchvision would fetch ImageNet weights

# Howard et al. 2019, Sec. 6.1.3: the last stage of MobileNetV3-Large at half width (160 -> 80
# channels, expansions 960 -> 480), torchvision's ``reduced_tail=True``
LARGE_REDUCED_TAIL = [*LARGE[:-3], (5, 672, 80, True, "HS", 2), (5, 480, 80, True, "HS", 1),
                      (5, 480, 80, True, "HS", 1)]
SSDLITE_SPLIT = len(LARGE) - 2  # features.13: the first block of the last stage, whose
# expansion torchvision's SSDLite reads (features.0 ends with it, features.1 holds the rest)


def body_rules(*outside: str) -> tuple[str, str]:
    """The last rule: every key not under one of ``outside`` belongs to the trunk."""
    return "^(?!" + "|".join(re.escape(prefix) for prefix in outside) + ")", "backbone.body."


_RESNET_FPN = [(r"^backbone\.body\.", ""), *RESNET_KEYS, body_rules("backbone.", "head.")]
TORCHVISION_KEYS: dict[str, list[tuple[str, str]]] = {
    "fcos_resnet50_fpn": _RESNET_FPN,
    "retinanet_resnet50_fpn": _RESNET_FPN,
    # torchvision's body is the classifier's `features` Sequential (IntermediateLayerGetter)
    "fasterrcnn_mobilenet_v3_large_fpn": [
        (r"^backbone\.body\.(\d+)\.", r"features.\1."), *mobilenet_v3_keys(LARGE),
        body_rules("backbone.", "rpn.", "roi_heads.")],
    # torchvision splits the trunk inside block 13: features.0 = blocks 0-12 and block 13's
    # expansion, features.1 = the rest of block 13 (a slice, keeping its layers' indices), then
    # blocks 14-16; its extra blocks are Conv2dNormActivation sequences (0: conv, 1: norm)
    "ssdlite320_mobilenet_v3_large": [
        (rf"^backbone\.features\.0\.{SSDLITE_SPLIT}\.", f"features.{SSDLITE_SPLIT}.block.0."),
        (r"^backbone\.features\.0\.(\d+)\.", r"features.\1."),
        (r"^backbone\.features\.1\.0\.", f"features.{SSDLITE_SPLIT}.block."),
        *[(rf"^backbone\.features\.1\.{k}\.", f"features.{SSDLITE_SPLIT + k}.")
          for k in range(1, len(LARGE) + 2 - SSDLITE_SPLIT)],
        (r"^backbone\.extra\.(\d+)\.(\d+)\.0\.", r"backbone.extra.\1.\2.conv."),
        (r"^backbone\.extra\.(\d+)\.(\d+)\.1\.", r"backbone.extra.\1.\2.norm."),
        *mobilenet_v3_keys(LARGE_REDUCED_TAIL), body_rules("backbone.", "head.")],
}


def torchvision_keys(name: str) -> list[tuple[str, str]]:
    """The rules (regular expression, replacement; each applied once to every key, in turn)
    renaming torchvision's state-dict keys of detector ``name`` to ours."""
    if name not in TORCHVISION_KEYS:
        raise ValueError(f"{name} has no torchvision counterpart; expected one of "
                         f"{', '.join(TORCHVISION_KEYS)}")
    return TORCHVISION_KEYS[name]


def torchvision_peer(name: str) -> dict[str, Peer]:
    """torchvision's builder for the same detector, without any download, and how its
    checkpoints load: renamed by :func:`torchvision_keys`; a file without BatchNorm step
    counters is the published form (frozen BatchNorm), except SSDLite's, which trains its own."""
    frozen = {} if name.startswith("ssdlite") else {"frozen_bn": r"num_batches_tracked$"}
    return {"torchvision": Peer(name, dict(TORCHVISION_ARGS), PeerWeights(
        torchvision_keys(name), flags_if_absent=frozen))}


def set_bn_momentum(module: nn.Module, momentum: float) -> None:
    """The running-statistics momentum of every BatchNorm (a training recipe's choice)."""
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = momentum


# -- torchvision's four: their shapes, their function ---------------------------------------------
@register_model(task=DETECTION, peers=torchvision_peer("ssdlite320_mobilenet_v3_large"))
def ssdlite320_mobilenet_v3_large(in_chans: int = 3, width_mult: float = 1.0,
                                  **kwargs: Any) -> Detector:
    trunk = MobileNetV3(LARGE_REDUCED_TAIL, LARGE_HEAD, width_mult, num_classes=0,
                        in_chans=in_chans)
    normal_init(trunk)  # trained from scratch (torchvision's recipe)
    model = create_detector("ssdlite", trunk, in_chans=in_chans, **kwargs)
    set_bn_momentum(model, 0.03)
    return model


@register_model(task=DETECTION, peers=torchvision_peer("fasterrcnn_mobilenet_v3_large_fpn"))
def fasterrcnn_mobilenet_v3_large_fpn(
        taps: tuple[int | str, ...] = ("features.13", "features.16"),
        anchor_sizes: tuple[tuple[int, ...], ...] = ((32, 64, 128, 256, 512),) * 3,
        rpn_score_thresh: float = 0.05, backbone_args: dict[str, Any] | None = None,
        **kwargs: Any) -> Detector:
    model = create_detector("fasterrcnn", "mobilenet_v3_large", taps=taps,
                            anchor_sizes=anchor_sizes, rpn_score_thresh=rpn_score_thresh,
                            backbone_args={"bn_eps": 1e-5, **(backbone_args or {})}, **kwargs)
    set_bn_momentum(model.backbone.body, 0.1)
    return model


@register_model(task=DETECTION, peers=torchvision_peer("fcos_resnet50_fpn"))
def fcos_resnet50_fpn(**kwargs: Any) -> Detector:
    return create_detector("fcos", "resnet50", **kwargs)


@register_model(task=DETECTION, peers=torchvision_peer("retinanet_resnet50_fpn"))
def retinanet_resnet50_fpn(**kwargs: Any) -> Detector:
    return create_detector("retinanet", "resnet50", **kwargs)


# -- light backbones under the same detectors: name -> (arch, backbone) ---------------------------
LIGHT = {
    "fcos_shufflenet_v2_x0_5": ("fcos", "shufflenet_v2_x0_5"),
    "fcos_shufflenet_v2_x1_0": ("fcos", "shufflenet_v2_x1_0"),
    "fcos_mobilenet_v2": ("fcos", "mobilenet_v2_x1_0"),
    "fcos_mobilenet_v3_large": ("fcos", "mobilenet_v3_large"),
    "fcos_mobilenet_v3_small": ("fcos", "mobilenet_v3_small"),
    "fcos_squeezenet1_1": ("fcos", "squeezenet1_1"),
    "fcos_ghostnet_x1_0": ("fcos", "ghostnet_x1_0"),
    "fcos_resnet18": ("fcos", "resnet18"),
    "retinanet_mobilenet_v2": ("retinanet", "mobilenet_v2_x1_0"),
    "retinanet_shufflenet_v2_x1_0": ("retinanet", "shufflenet_v2_x1_0"),
    "ssdlite_mobilenet_v2": ("ssdlite", "mobilenet_v2_x1_0"),
    "ssdlite_shufflenet_v2_x1_0": ("ssdlite", "shufflenet_v2_x1_0"),
    "ssdlite_ghostnet_x1_0": ("ssdlite", "ghostnet_x1_0"),
    # GFL head, Ghost PAN, task-aligned assignment (lightnets.detect.gfl): NanoDet-Plus's
    # recipe, on the backbones people put under YOLO-style heads
    "gfl_shufflenet_v2_x1_0": ("gfl", "shufflenet_v2_x1_0"),
    "gfl_mobilenet_v2": ("gfl", "mobilenet_v2_x1_0"),
    "gfl_mobilenet_v3_large": ("gfl", "mobilenet_v3_large"),
    "gfl_ghostnet_x1_0": ("gfl", "ghostnet_x1_0"),
    "gfl_squeezenet1_1": ("gfl", "squeezenet1_1"),
}
LIGHT_INPUT = 320  # SSDLite320's size: a mobile detector's usual input
LIGHT_OPTIONS = {"fcos": {"fpn_channels": 96, "head_convs": 2}, "retinanet": {"fpn_channels": 96},
                 "ssdlite": {}, "fasterrcnn": {"fpn_channels": 96}}
# the architectures by name take any classifier of the zoo: create_model("fcos",
# backbone="ghostnet_x1_3"), `lightnets train --model fcos --backbone ghostnet_x1_3`
ANY_BACKBONE = {"fcos": "shufflenet_v2_x1_0", "retinanet": "shufflenet_v2_x1_0",
                "ssdlite": "mobilenet_v2_x1_0", "fasterrcnn": "mobilenet_v3_large",
                "gfl": "shufflenet_v2_x1_0"}


def light_detector(arch: str, backbone: str, **kwargs: Any) -> Detector:
    """``arch`` on ``backbone`` with the light defaults: 320x320 input, a narrow FPN (GFL:
    its own builder, light by design)."""
    if arch == "gfl":
        return create_gfl_detector(backbone, **{"min_size": LIGHT_INPUT, **kwargs})
    kwargs.setdefault("min_size", LIGHT_INPUT)
    if arch != "ssdlite":
        kwargs.setdefault("max_size", max(kwargs["min_size"], LIGHT_INPUT))
    return create_detector(arch, backbone, **{**LIGHT_OPTIONS[arch], **kwargs})


def _register(name: str, arch: str, backbone: str, any_backbone: bool) -> None:
    if any_backbone:
        def build(backbone: str = backbone, **kwargs: Any) -> Detector:
            return light_detector(arch, backbone, **kwargs)
        build.__doc__ = (f"{arch} on any classifier of the zoo (``backbone``, default "
                         f"{backbone}), {LIGHT_INPUT}x{LIGHT_INPUT} by default.")
    else:
        def build(**kwargs: Any) -> Detector:
            return light_detector(arch, backbone, **kwargs)
        build.__doc__ = f"{arch} on {backbone}, {LIGHT_INPUT}x{LIGHT_INPUT} by default."
    build.__name__ = build.__qualname__ = name
    register_model(task=DETECTION)(build)


for _name, (_arch, _backbone) in LIGHT.items():
    _register(_name, _arch, _backbone, any_backbone=False)
for _arch, _backbone in ANY_BACKBONE.items():
    _register(_arch, _arch, _backbone, any_backbone=True)
