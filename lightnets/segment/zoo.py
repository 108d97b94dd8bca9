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

torchvision's files of the six load through ``create_model(name, checkpoint_path=...)``: the
rules below rename its keys (its trunk as the classifier's, under ``backbone.``; its
``classifier`` and ``aux_classifier`` Sequentials as our ``head`` and ``aux_head``), a file
with an ``aux_classifier`` builds the auxiliary head, and the preprocessing and VOC class names
come from torchvision's Weights entry (:mod:`lightnets.weights`).

DeepLabV3+ (separable ASPP and decoder, output stride 16, rates 6/12/18) and LR-ASPP on the
other light backbones have no torchvision counterpart.

U-Net, PSPNet and FPN: where segmentation_models_pytorch (smp) has the pair (its ``Unet``,
``PSPNet`` and ``FPN`` on ResNet-18/34/50, MobileNetV2 and VGG16-BN, with its defaults), the
model has smp's parameter shapes in its order and computes its function, so smp's state dicts
and ``save_pretrained`` folders load (its PSPNet keeps the encoder's unused deeper stages in its
file; they are left out).

Every segmenter defaults to 21 classes (Pascal VOC's) and to 520x520 inputs for counting
(torchvision's evaluation size).
"""

from __future__ import annotations

import re
from typing import Any

from lightnets.models.mobilenet_v2 import STAGES as MOBILENET_V2_STAGES
from lightnets.models.mobilenet_v2 import torchvision_keys as mobilenet_v2_keys
from lightnets.models.mobilenet_v3 import LARGE
from lightnets.models.mobilenet_v3 import torchvision_keys as mobilenet_v3_keys
from lightnets.models.resnet import RESNET_KEYS
from lightnets.models.vgg import CONFIGS as VGG_CONFIGS
from lightnets.models.vgg import features_keys as vgg_keys
from lightnets.registry import SEGMENTATION, Peer, PeerWeights, register_model, resolve_name
from lightnets.segment.segmenter import HEADS, Segmenter, create_segmenter

TORCHVISION_ARGS = {"weights_backbone": None}  # torchvision would fetch ImageNet weights
Rules = list[tuple[str, str]]


def fcn_head_keys(source: str, target: str) -> Rules:
    """torchvision's FCNHead Sequential (conv 0, norm 1, ReLU, dropout, classifier 4)."""
    return [(rf"^{source}\.0\.", f"{target}.conv.conv."),
            (rf"^{source}\.1\.", f"{target}.conv.norm."),
            (rf"^{source}\.4\.", f"{target}.classifier.")]


# torchvision's DeepLabHead: ASPP (convs 0-3 conv-norm pairs, convs 4 the pooling branch:
# pool 0, conv 1, norm 2; project 0 / 1), then conv 1, norm 2, classifier 4
DEEPLABV3_HEAD = [
    (r"^classifier\.0\.convs\.4\.1\.", "head.aspp.branches.4.conv.conv."),
    (r"^classifier\.0\.convs\.4\.2\.", "head.aspp.branches.4.conv.norm."),
    (r"^classifier\.0\.convs\.(\d)\.0\.", r"head.aspp.branches.\1.conv."),
    (r"^classifier\.0\.convs\.(\d)\.1\.", r"head.aspp.branches.\1.norm."),
    (r"^classifier\.0\.project\.0\.", "head.aspp.project.conv."),
    (r"^classifier\.0\.project\.1\.", "head.aspp.project.norm."),
    (r"^classifier\.1\.", "head.conv.conv."), (r"^classifier\.2\.", "head.conv.norm."),
    (r"^classifier\.4\.", "head.classifier.")]
# torchvision's LRASPPHead: cbr (conv 0, norm 1), scale (pool, conv 1), two classifiers
LRASPP_HEAD = [(r"^classifier\.cbr\.0\.", "head.cbr.conv."),
               (r"^classifier\.cbr\.1\.", "head.cbr.norm."),
               (r"^classifier\.scale\.1\.", "head.scale.1.conv."),
               (r"^classifier\.(low|high)_classifier\.", r"head.\1_classifier.")]
# the trunk: torchvision's ResNet without its prefix, MobileNetV3's `features` Sequential
# (IntermediateLayerGetter keeps its indices), renamed as the classifiers' files are
RESNET_TRUNK = [(r"^backbone\.", ""), *RESNET_KEYS]
MOBILENET_TRUNK = [(r"^backbone\.(\d+)\.", r"features.\1."), *mobilenet_v3_keys(LARGE)]
HEAD_KEYS = {"fcn": fcn_head_keys("classifier", "head"), "deeplabv3": DEEPLABV3_HEAD,
             "lraspp": LRASPP_HEAD}


def torchvision_keys(head: str, trunk: Rules) -> Rules:
    """The rules renaming torchvision's keys of a ``head`` segmenter on ``trunk`` to ours: the
    heads first (so that the trunk's own ``classifier`` rules never see them), then the trunk,
    whose keys go under ``backbone.``."""
    outside = "^(?!" + "|".join(re.escape(p) for p in ("head.", "aux_head.")) + ")"
    return [*HEAD_KEYS[head], *fcn_head_keys("aux_classifier", "aux_head"), *trunk,
            (outside, "backbone.")]


def torchvision_peer(name: str, trunk: Rules, **kwargs: Any) -> dict[str, Peer]:
    """torchvision's builder for the same segmenter, without any download, and how its files
    load: renamed by :func:`torchvision_keys`, the auxiliary head built when the file has one."""
    head = name.split("_")[0]
    flags = {"aux_loss": r"^aux_head\."} if "aux_loss" in kwargs else {}
    return {"torchvision": Peer(name, {**TORCHVISION_ARGS, **kwargs},
                                PeerWeights(torchvision_keys(head, trunk), flags=flags))}


# -- torchvision's six: their shapes, their function ----------------------------------------------
@register_model(task=SEGMENTATION,
                peers=torchvision_peer("fcn_resnet50", RESNET_TRUNK, aux_loss=True))
def fcn_resnet50(aux_loss: bool = True, **kwargs: Any) -> Segmenter:
    return create_segmenter("fcn", "resnet50", aux_loss=aux_loss, **kwargs)


@register_model(task=SEGMENTATION,
                peers=torchvision_peer("fcn_resnet101", RESNET_TRUNK, aux_loss=True))
def fcn_resnet101(aux_loss: bool = True, **kwargs: Any) -> Segmenter:
    return create_segmenter("fcn", "resnet101", aux_loss=aux_loss, **kwargs)


@register_model(task=SEGMENTATION,
                peers=torchvision_peer("deeplabv3_resnet50", RESNET_TRUNK, aux_loss=True))
def deeplabv3_resnet50(aux_loss: bool = True, **kwargs: Any) -> Segmenter:
    return create_segmenter("deeplabv3", "resnet50", aux_loss=aux_loss, **kwargs)


@register_model(task=SEGMENTATION,
                peers=torchvision_peer("deeplabv3_resnet101", RESNET_TRUNK, aux_loss=True))
def deeplabv3_resnet101(aux_loss: bool = True, **kwargs: Any) -> Segmenter:
    return create_segmenter("deeplabv3", "resnet101", aux_loss=aux_loss, **kwargs)


@register_model(task=SEGMENTATION,
                peers=torchvision_peer("deeplabv3_mobilenet_v3_large", MOBILENET_TRUNK,
                                         aux_loss=True))
def deeplabv3_mobilenet_v3_large(aux_loss: bool = True, output_stride: int = 16,
                                 rates: tuple[int, ...] = (12, 24, 36),
                                 aux_level: int | str | None = "features.4",
                                 **kwargs: Any) -> Segmenter:
    return create_segmenter("deeplabv3", "mobilenet_v3_large", aux_loss=aux_loss,
                            output_stride=output_stride, rates=rates,
                            aux_level=aux_level if aux_loss else None, **kwargs)


@register_model(task=SEGMENTATION,
                peers=torchvision_peer("lraspp_mobilenet_v3_large", MOBILENET_TRUNK))
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


# -- U-Net, PSPNet and FPN, with smp's twins where smp has the pair ---------------------------
# smp's encoders are torchvision's networks under "encoder.": torchvision's key rules, moved
SMP_ENCODERS = {  # our backbone -> (smp's encoder name, torchvision's key rules)
    "resnet18": ("resnet18", RESNET_KEYS), "resnet34": ("resnet34", RESNET_KEYS),
    "resnet50": ("resnet50", RESNET_KEYS),
    "mobilenet_v2_x1_0": ("mobilenet_v2", mobilenet_v2_keys(MOBILENET_V2_STAGES)),
    "vgg16_bn": ("vgg16_bn", vgg_keys(VGG_CONFIGS["D"], batch_norm=True)),
}
SMP_DECODERS = {  # our head -> (smp's class, its decoder's key rules)
    "unet": ("Unet", [(r"^decoder\.center\.(\d)\.0\.", r"head.center.\1.conv."),
                      (r"^decoder\.center\.(\d)\.1\.", r"head.center.\1.norm."),
                      (r"^decoder\.blocks\.(\d)\.conv(\d)\.0\.", r"head.blocks.\1.conv\2.conv."),
                      (r"^decoder\.blocks\.(\d)\.conv(\d)\.1\.", r"head.blocks.\1.conv\2.norm.")]),
    "pspnet": ("PSPNet", [(r"^decoder\.psp\.blocks\.(\d)\.pool\.1\.0\.",
                           r"head.pool.branches.\1.conv.conv."),
                          (r"^decoder\.psp\.blocks\.(\d)\.pool\.1\.1\.",
                           r"head.pool.branches.\1.conv.norm."),
                          (r"^decoder\.conv\.0\.", "head.fuse.conv."),
                          (r"^decoder\.conv\.1\.", "head.fuse.norm.")]),
    "fpn": ("FPN", [(r"^decoder\.p5\.", "head.lateral.0."),
                    *[(rf"^decoder\.p{5 - i}\.skip_conv\.", f"head.lateral.{i}.")
                      for i in (1, 2, 3)],
                    (r"^decoder\.seg_blocks\.(\d)\.block\.(\d)\.block\.0\.",
                     r"head.semantic.\1.\2.conv.conv."),
                    (r"^decoder\.seg_blocks\.(\d)\.block\.(\d)\.block\.1\.",
                     r"head.semantic.\1.\2.conv.norm.")]),
}
# smp's PSPNet runs its encoder to stride 8 only (depth 3) but keeps the deeper stages
PSP_UNUSED = {"resnet18": r"^backbone\.layer[34]\.", "resnet34": r"^backbone\.layer[34]\.",
              "resnet50": r"^backbone\.layer[34]\.",
              "mobilenet_v2_x1_0": r"^backbone\.features\.(?:[7-9]|1\d)\.",
              "vgg16_bn": r"^backbone\.features\.1[3-7]\."}


def smp_peer(head: str, backbone: str) -> dict[str, Peer]:
    """smp's twin of a pair (none if smp lacks it), built offline with our 21 classes; its keys
    renamed: the encoder's by torchvision's rules, the decoder's and segmentation head's."""
    if backbone not in SMP_ENCODERS or head not in SMP_DECODERS:
        return {}
    encoder, encoder_rules = SMP_ENCODERS[backbone]
    model_class, decoder_rules = SMP_DECODERS[head]
    keys = [*[(r"^encoder\." + pattern.removeprefix("^"), "backbone." + replacement)
              for pattern, replacement in encoder_rules], (r"^encoder\.", "backbone."),
            *decoder_rules, (r"^segmentation_head\.0\.", "head.classifier.")]
    ignored = [PSP_UNUSED[backbone]] if head == "pspnet" else []
    return {"smp": Peer(model_class, {"encoder_name": encoder, "encoder_weights": None,
                                      "classes": 21}, PeerWeights(keys, ignored=ignored))}


DECODER_PAIRS = {  # name -> (head, backbone, arguments)
    "unet_mobilenet_v2": ("unet", "mobilenet_v2_x1_0", {}),
    "unet_vgg16_bn": ("unet", "vgg16_bn", {"center": True}),  # smp's center block on VGG
    "unet_resnet18": ("unet", "resnet18", {}),
    "unet_resnet34": ("unet", "resnet34", {}),
    "unet_resnet50": ("unet", "resnet50", {}),
    "unet_mobilenet_v3_large": ("unet", "mobilenet_v3_large", {}),
    "unet_shufflenet_v2_x1_0": ("unet", "shufflenet_v2_x1_0", {}),
    "unet_ghostnet_x1_0": ("unet", "ghostnet_x1_0", {}),
    "pspnet_mobilenet_v2": ("pspnet", "mobilenet_v2_x1_0", {}),
    "pspnet_resnet18": ("pspnet", "resnet18", {}),
    "pspnet_resnet50": ("pspnet", "resnet50", {}),
    "fpn_mobilenet_v2": ("fpn", "mobilenet_v2_x1_0", {}),
    "fpn_resnet34": ("fpn", "resnet34", {}),
    "fpn_resnet50": ("fpn", "resnet50", {}),
    "fpn_shufflenet_v2_x1_0": ("fpn", "shufflenet_v2_x1_0", {}),
    "fpn_ghostnet_x1_0": ("fpn", "ghostnet_x1_0", {}),
}


def _register_decoder(name: str, head: str, backbone: str, defaults: dict[str, Any]) -> None:
    def build(**kwargs: Any) -> Segmenter:
        return create_segmenter(head, backbone, **{**defaults, **kwargs})

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"The {head} decoder on {backbone}."
    register_model(task=SEGMENTATION, peers=smp_peer(head, backbone))(build)


for _name, (_head, _backbone, _defaults) in DECODER_PAIRS.items():
    _register_decoder(_name, _head, _backbone, _defaults)


# -- the heads by name, on any classifier of the zoo ------------------------------------------
# create_model("unet", backbone="ghostnet_x1_0"), `lightnets train --model unet --backbone
# ghostnet_x1_0`: a checkpoint records the backbone among the model's arguments
ANY_BACKBONE = {head: "mobilenet_v2_x1_0" for head in HEADS}


def _register_head(head: str, default: str) -> None:
    def build(backbone: str = default, **kwargs: Any) -> Segmenter:
        if head == "unet" and resolve_name(backbone).startswith("vgg"):
            kwargs.setdefault("center", True)  # smp's center block on VGG encoders
        return create_segmenter(head, backbone, **kwargs)

    build.__name__ = build.__qualname__ = head
    build.__doc__ = (f"The {head} head on any classifier of the zoo (``backbone``, default "
                     f"{default}).")
    register_model(task=SEGMENTATION)(build)


for _head, _backbone in ANY_BACKBONE.items():
    _register_head(_head, _backbone)
