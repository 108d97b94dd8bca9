"""Preprocessing and light augmentation, built from torchvision's transforms v2.

The evaluation pipeline is described by a small plain dictionary, ``preprocess`` (input size,
resize, channels, mean, std and the resize interpolation), which checkpoints store: eval and
predict rebuild from it exactly what training used. Dictionaries written before the
interpolation was recorded resize bilinearly, as they always did.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
# Pixel statistics of the digits training split (intensities scaled from 0..16 to 0..1).
DIGITS_MEAN, DIGITS_STD = (0.3058,), (0.3764,)


INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
# --auto-augment: torchvision's policies, each at its authors' default settings. AutoAugment
# (Cubuk et al., arXiv:1805.09501) with its ImageNet policy, RandAugment (Cubuk et al.,
# arXiv:1909.13719: 2 ops at magnitude 9), TrivialAugment (Mueller & Hutter,
# arXiv:2103.10686: one op, uniform strength), AugMix (Hendrycks et al., arXiv:1912.02781).
AUTO_AUGMENTS: dict[str, type[v2.Transform]] = {
    "autoaugment": v2.AutoAugment, "randaugment": v2.RandAugment,
    "trivialaugment": v2.TrivialAugmentWide, "augmix": v2.AugMix}


def make_preprocess(input_size: int, in_chans: int, resize: int | list[int],
                    mean: tuple[float, ...], std: tuple[float, ...],
                    interpolation: str = "bilinear") -> dict[str, Any]:
    """The evaluation preprocessing as plain data: resize (an int resizes the shorter side, a
    pair resizes exactly) with ``interpolation``, centre-crop to ``input_size``, convert to
    ``in_chans``, normalise."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got "
                         f"{interpolation!r}")
    if len(mean) != in_chans:  # grey statistics for RGB input and the reverse
        mean, std = (sum(mean) / len(mean),) * in_chans, (sum(std) / len(std),) * in_chans
    return {"input_size": int(input_size), "in_chans": int(in_chans),
            "resize": resize if isinstance(resize, int) else [int(s) for s in resize],
            "mean": [float(m) for m in mean], "std": [float(s) for s in std],
            "interpolation": interpolation}


def interpolation(preprocess: dict[str, Any]) -> InterpolationMode:
    """The resize interpolation of a ``preprocess`` dictionary (bilinear when unrecorded)."""
    return InterpolationMode(preprocess.get("interpolation", "bilinear"))


def preprocess_input_size(preprocess: dict[str, Any]) -> tuple[int, int, int]:
    """The ``(C, H, W)`` a ``preprocess`` dictionary produces."""
    side = preprocess["input_size"]
    return (preprocess["in_chans"], *((side, side) if isinstance(side, int) else side))


def to_channels(in_chans: int) -> v2.Transform:
    """Convert an image to 1 (grey) or 3 (RGB) channels."""
    return v2.Grayscale(num_output_channels=1) if in_chans == 1 else v2.RGB()


def normalize_transform(preprocess: dict[str, Any]) -> v2.Compose:
    """The last step of the preprocessing: to float (uint8 scaled to [0, 1]) and normalised.
    Works on one image or a batch; the trainer applies it to whole batches (see below)."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(preprocess["mean"], preprocess["std"])])


def eval_transform(preprocess: dict[str, Any], normalize: bool = True) -> v2.Compose:
    """PIL image or tensor in, normalised float tensor of ``(in_chans, size, size)`` out;
    ``normalize=False`` stops before :func:`normalize_transform` (uint8 for decoded files)."""
    return v2.Compose([
        v2.ToImage(),
        to_channels(preprocess["in_chans"]),
        v2.Resize(preprocess["resize"], interpolation(preprocess), antialias=True),
        v2.CenterCrop(preprocess["input_size"]),
        *([normalize_transform(preprocess)] if normalize else []),
    ])


def check_recipe(auto_augment: str | None, random_erase: float) -> None:
    """One-line ``ValueError`` for an unknown policy or an erasing probability outside [0, 1]."""
    if auto_augment is not None and auto_augment not in AUTO_AUGMENTS:
        raise ValueError(f"auto_augment must be one of {', '.join(AUTO_AUGMENTS)}, got "
                         f"{auto_augment!r}")
    if not 0 <= random_erase <= 1:
        raise ValueError(f"random_erase must be a probability in [0, 1], got {random_erase}")


def random_erasing(preprocess: dict[str, Any], kind: str, p: float) -> v2.RandomErasing:
    """Random erasing (Zhong et al., arXiv:1708.04896) at torchvision's default sizes, with
    probability ``p``. The images are erased before they are normalised (on the device), so the
    rectangle is filled with the data's mean colour, which normalisation then makes zero, as
    erasing after normalisation with zeros does; the embedded digits are [0, 1] floats there,
    decoded files uint8."""
    scale = 1.0 if kind == "digits" else 255.0
    value = [m * scale if scale == 1.0 else round(m * scale) for m in preprocess["mean"]]
    return v2.RandomErasing(p=p, value=value)


def train_transform(preprocess: dict[str, Any], kind: str, augment: bool = True,
                    normalize: bool = True, auto_augment: str | None = None,
                    random_erase: float = 0.0) -> v2.Compose:
    """Evaluation preprocessing plus light augmentation suited to the data ``kind``:
    small affine jitter for digits (no flips: a mirrored 2 is no digit), padded random crops and
    flips for CIFAR, random-resized crops and flips for photographs in folders. Then, when
    asked, the policy ``auto_augment`` (:data:`AUTO_AUGMENTS`) and random erasing with
    probability ``random_erase``, in that order (torchvision's classification reference's).

    The trainer passes ``normalize=False``: decoded images stay uint8 through augmentation,
    collation and the hand-over from the loader processes (a quarter of float32's bytes), and
    become normalised floats on the device, a whole batch at once."""
    check_recipe(auto_augment, random_erase)
    if not augment:
        if auto_augment or random_erase:
            raise ValueError("auto_augment and random_erase augment the training images; "
                             "they need augmentation on (drop --no-augment)")
        return eval_transform(preprocess, normalize)
    size, mode = preprocess["input_size"], interpolation(preprocess)
    if kind == "digits":
        geometry = [v2.Resize(preprocess["resize"], mode, antialias=True),
                    v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))]
    elif kind == "cifar":
        geometry = [v2.Resize(preprocess["resize"], mode, antialias=True), v2.CenterCrop(size),
                    v2.RandomCrop(size, padding=size // 8, padding_mode="reflect"),
                    v2.RandomHorizontalFlip()]
    else:
        geometry = [v2.RandomResizedCrop(size, scale=(0.35, 1.0), interpolation=mode,
                                         antialias=True),
                    v2.RandomHorizontalFlip()]
    return v2.Compose([
        v2.ToImage(),
        to_channels(preprocess["in_chans"]),
        *geometry,
        *([AUTO_AUGMENTS[auto_augment]()] if auto_augment else []),
        *([random_erasing(preprocess, kind, random_erase)] if random_erase else []),
        *([normalize_transform(preprocess)] if normalize else []),
    ])


def batch_mix(mixup: float, cutmix: float, num_classes: int) -> v2.Transform | None:
    """MixUp (Zhang et al., arXiv:1710.09412) and/or CutMix (Yun et al., arXiv:1905.04899) of a
    batch ``(images (N, C, H, W), labels (N,))``, which becomes ``(images, soft labels (N,
    num_classes))``; each ``alpha`` > 0 switches one on (its mixing ratio drawn from
    Beta(alpha, alpha)); with both, each batch gets one of them at random, as torchvision's
    classification reference and timm do. None when both are 0."""
    mixes = [mix(alpha=alpha, num_classes=num_classes)
             for mix, alpha in ((v2.MixUp, mixup), (v2.CutMix, cutmix)) if alpha > 0]
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)


# -- segmentation: the image and its mask transformed together --------------------------------
# v2 resizes and warps a tv_tensors.Mask with nearest-neighbour interpolation and leaves it out
# of colour conversion, dtype conversion and normalisation, so one pipeline serves both.
def to_float_image() -> v2.Transform:
    """uint8 images to [0, 1] floats; masks keep their class indices."""
    return v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True)


def seg_eval_transform(preprocess: dict[str, Any], normalize: bool = True) -> v2.Compose:
    """``(Image, Mask)`` in, the image resized to the preprocessing's size (the mask with it),
    converted to ``in_chans`` and, unless ``normalize=False``, normalised."""
    return v2.Compose([
        to_channels(preprocess["in_chans"]),
        v2.Resize(preprocess["resize"], interpolation(preprocess), antialias=True),
        v2.CenterCrop(preprocess["input_size"]),
        *([to_float_image(), v2.Normalize(preprocess["mean"], preprocess["std"])]
          if normalize else []),
    ])


def seg_train_transform(preprocess: dict[str, Any], kind: str, augment: bool = True,
                        normalize: bool = True) -> v2.Compose:
    """Evaluation preprocessing plus joint augmentation: scale and shift jitter for the
    digit canvases (no flips), random-resized crops and flips for photographs."""
    if not augment:
        return seg_eval_transform(preprocess, normalize)
    size, mode = preprocess["input_size"], interpolation(preprocess)
    if kind == "digits-seg":
        geometry = [v2.Resize(preprocess["resize"], mode, antialias=True),
                    v2.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.8, 1.25),
                                    fill={tv_tensors.Image: 0, tv_tensors.Mask: 0})]
    else:
        geometry = [v2.RandomResizedCrop(size, scale=(0.25, 1.0), interpolation=mode,
                                         antialias=True),
                    v2.RandomHorizontalFlip()]
    return v2.Compose([
        to_channels(preprocess["in_chans"]),
        *geometry,
        *([to_float_image(), v2.Normalize(preprocess["mean"], preprocess["std"])]
          if normalize else []),
    ])
