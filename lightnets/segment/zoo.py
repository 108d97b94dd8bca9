"""The registered segmenters: the standard head-backbone pairs, each a name for
:func:`lightnets.segment.segmenter.create_segmenter` with its settings (every argument can still
change them).

Where torchvision has the pair, the model has exactly torchvision's parameter shapes, in its
order, and computes its function (so its checkpoints load, with equal outputs):
``fcn_resnet50`` / ``101`` and ``deeplabv3_resnet50`` / ``101`` at output stride 8 with the
auxiliary FCN head on ``layer3`` (35,322,218 / 54,314,346 / 42,004,074 / 60,996,202 params, as
trained and published by torchvision), ``deeplabv3_mobilenet_v3_large`` (11,029,328 with its
auxiliary head) and ``lraspp_mobilenet_v3_large`` (3,221,538) at output stride 16. Two
torchvision choices are kept for those MobileNetV3 models: the stride-8 map they read (LR-ASPP's
low-level input, DeepLabV3's auxiliary head) is the output of the first block at stride 8
(``features.4``), not the end of that stage, and DeepLabV3's rates are 12/24/36 although its
map is at stride 16.

DeepLabV3+ (separable ASPP and decoder, output stride 16, rates 6/12/18) and LR-ASPP on the
other light backbones have no torchvision counterpart. Every segmenter defaults to 21 classes
(Pascal VOC's) and to 520x520 inputs for counting (torchvision's evaluation size).
"""

from __future__ import annotations

from typing import Any

from lightnets.registry import SEGMENTATION, register_model
from lightnets.segment.segmenter import Segmenter, create_segmenter

TORCHVISION_ARGS = {"weights_backbone": None}  # torchvision would fetch ImageNet weights


def torchvision_peer(name: str, **kwargs: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """torchvision's builder for the same segmenter, without any download."""
    return {"torchvision": (name, {**TORCHVISION_ARGS, **kwargs})}


# -- torchvision's six: their shapes, their function ----------------------------------------------
@register_model(task=SEGMENTATION, peers=torchvision_peer("fcn_resnet50", aux_loss=True))
def fcn_resnet50(aux_loss: bool = True, **kwargs: Any) -> Segmenter:
    return create_segmenter("fcn", "resnet50", aux_loss=aux_loss, **kwargs)


@register_model(task=SEGMENTATION, peers=torchvision_peer("fcn_resnet101", aux_loss=True))
def fcn_resnet101(aux_loss: bool = True, **kwargs: Any) -> Segmenter:
    return create_segmenter("fcn", "resnet101", aux_loss=aux_loss, **kwargs)


@register_model(task=SEGMENTATION, peers=torchvision_peer("deeplabv3_resnet50", aux_loss=True))
def deeplabv3_resnet50(aux_loss: bool = True, **kwargs: Any) -> Segmenter:
    return create_segmenter("deeplabv3", "resnet50", aux_loss=aux_loss, **kwargs)


@register_model(task=SEGMENTATION,
                peers=torchvision_peer("deeplabv3_resnet101", aux_loss=True))
def deeplabv3_resnet101(aux_loss: bool = True, **kwargs: Any) -> Segmenter:
    return create_segmenter("deeplabv3", "resnet101", aux_loss=aux_loss, **kwargs)


@register_model(task=SEGMENTATION,
                peers=torchvision_peer("deeplabv3_mobilenet_v3_large", aux_loss=True))
def deeplabv3_mobilenet_v3_large(aux_loss: bool = True, output_stride: int = 16,
                                 rates: tuple[int, ...] = (12, 24, 36),
                                 aux_level: int | str | None = "features.4",
                                 **kwargs: Any) -> Segmenter:
    return create_segmenter("deeplabv3", "mobilenet_v3_large", aux_loss=aux_loss,
                            output_stride=output_stride, rates=rates,
                            aux_level=aux_level if aux_loss else None, **kwargs)


@register_model(task=SEGMENTATION, peers=torchvision_peer("lraspp_mobilenet_v3_large"))
def lraspp_mobilenet_v3_large(low_level: int | str | None = "features.4",
                              **kwargs: Any) -> Segmenter:
    return create_segmenter("lraspp", "mobilenet_v3_large", low_level=low_level, **kwargs)


# -- DeepLabV3+ (Chen et al. 2018: separable ASPP and decoder, output stride 16) and LR-ASPP on
# the other light backbones: name -> (head, backbone) ----------------------------------------
PAIRS = {
    "lraspp_mobilenet_v3_small": ("lraspp", "mobilenet_v3_small"),
    "lraspp_mobilenet_v2": ("lraspp", "mobilenet_v2_x1_0"),
    "lraspp_shufflenet_v2_x1_0": ("lraspp", "shufflenet_v2_x1_0"),
    "lraspp_ghostnet_x1_0": ("lraspp", "ghostnet_x1_0"),
    "deeplabv3plus_mobilenet_v2": ("deeplabv3plus", "mobilenet_v2_x1_0"),
    "deeplabv3plus_resnet50": ("deeplabv3plus", "resnet50"),
    "deeplabv3plus_xception": ("deeplabv3plus", "xception"),
}


def _register_pair(name: str, head: str, backbone: str) -> None:
    def build(**kwargs: Any) -> Segmenter:
        return create_segmenter(head, backbone, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"The {head} head on {backbone}."
    register_model(task=SEGMENTATION)(build)


for _name, (_head, _backbone) in PAIRS.items():
    _register_pair(_name, _head, _backbone)
