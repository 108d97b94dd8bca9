"""segmentation_models_pytorch (smp) as a source of weights: what its ``save_pretrained``
folders say (``config.json``: the model class, the encoder, the arguments) and the
preprocessing of its models.

A plain smp state dict is read as any peer's file (the pair's ``Peer`` beside the registered
segmenter, :mod:`lightnets.segment.zoo`, holds the key rules); a folder also names its model,
and arguments other than the defaults the twin was built with are refused in one line, but for
the decoder's widths, which lightnets' ``decoder_channels`` reproduces. lightnets never imports
smp.
"""

from __future__ import annotations

from typing import Any

from lightnets.data import SEGMENTATION_KINDS, default_preprocess
from lightnets.registry import list_models, meta_model, peers_of

# smp's arguments that must keep the value the twin has (smp's defaults; True is "batchnorm")
SMP_FIXED = {"activation": (None,), "aux_params": (None,), "decoder_attention_type": (None,),
             "decoder_interpolation": ("nearest",), "decoder_use_norm": ("batchnorm", True),
             "decoder_merge_policy": ("add",)}
SMP_DEPTHS = {"Unet": 5, "FPN": 5, "PSPNet": 3}  # encoder_depth of each twin
SMP_UPSAMPLING = {"FPN": 4, "PSPNet": 8}  # the logits' upsampling to the input
SMP_WIDTHS = {"Unet": ("decoder_channels", [256, 128, 64, 32, 16]),
              "FPN": ("decoder_pyramid_channels", 256),
              "PSPNet": ("psp_out_channels", 512)}


def is_smp_config(config: dict[str, Any] | None) -> bool:
    """Whether a folder's ``config.json`` is smp's (``save_pretrained`` names the class)."""
    return bool(config) and "_model_class" in config and "encoder_name" in config


def smp_twin(config: dict[str, Any]) -> str:
    """The registered segmenter whose smp twin the folder's model is."""
    model_class, encoder = config["_model_class"], config["encoder_name"]
    for name in list_models():
        peer = peers_of(name).get("smp")
        if peer is not None and peer.name == model_class and \
                peer.kwargs.get("encoder_name") == encoder:
            return name
    raise ValueError(f"no lightnets model is the twin of smp's {model_class} on {encoder!r} "
                     "(see docs/guides/segmentation.md for the pairs)")


def smp_options(config: dict[str, Any]) -> dict[str, Any]:
    """Our constructor arguments for the folder's model; a one-line error for smp arguments
    lightnets does not reproduce."""
    model_class = config["_model_class"]
    wrong = [f"{key}={config[key]!r}" for key, allowed in SMP_FIXED.items()
             if key in config and config[key] not in allowed]
    for key, value in (("encoder_depth", SMP_DEPTHS.get(model_class)),
                       ("upsampling", SMP_UPSAMPLING.get(model_class))):
        if config.get(key, value) != value:
            wrong.append(f"{key}={config[key]!r}")
    key, default = SMP_WIDTHS[model_class]
    widths = config.get(key, default)
    if model_class == "FPN" and config.get("decoder_segmentation_channels", 128) * 2 != widths:
        wrong.append(f"decoder_segmentation_channels={config['decoder_segmentation_channels']!r}"
                     " (lightnets' is half the pyramid's width)")
    if wrong:
        raise ValueError(f"smp's {model_class} with {', '.join(wrong)} has no lightnets twin "
                         "(the defaults of those arguments load)")
    return {} if widths == default else {"decoder_channels": widths}


def smp_preprocess(name: str, in_chans: int, user_args: dict[str, Any]) -> dict[str, Any]:
    """smp's encoders take ImageNet-normalised images; the segmenter's size, whole images."""
    size = meta_model(name, **user_args).default_input_size[-1]
    return default_preprocess(SEGMENTATION_KINDS[-1], size, in_chans)
