"""Inception v3 (Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
CVPR 2016).

This is the released network (TF-slim, ported by torchvision), with torchvision's exact parameter
shapes and order: 23,834,568 params without the auxiliary classifier (27,161,264 with it) and
5.713G MACs at 299x299. Where the release differs from the paper's Table 1 / figures:

* the 35x35 modules keep a 5x5 branch beside the double-3x3 one (Fig. 5 has only the latter);
* after the stem's first max-pool come a 1x1 conv (80), an unpadded 3x3 conv (192) and a
  3x3/2 max-pool, where Table 1 lists a 3x3 conv to 80 and a stride-2 3x3 conv to 192;
* every BatchNorm has a scale (gamma) and a shift (beta), as in torchvision; the TF/Keras
  releases have no gamma (17,216 fewer parameters).

Grids at 299x299: 149 -> 147 -> 73 -> 71 -> 35 (5b-5d) -> 17 (6a-6e) -> 8 (7a-7c). The stem and
the grid reductions are unpadded, so the smallest input is 75x75 (the 8x8 grid becomes 1x1).
Dropout before the classifier is 0.5 (``drop_rate``), as in torchvision.

The auxiliary classifier on the 17x17 grid (Sec. 4, Fig. 8) exists only with
``aux_logits=True`` and runs only from ``model(x, return_aux=True)`` in training mode. Its loss
weight, 0.4 (``aux_loss_weight``), is the one used by TF-slim's ``train_image_classifier.py``,
which trained the checkpoint torchvision ports (torchvision has no recipe of its own for this
model); the paper does not state it. Initialisation follows torchvision: truncated N(0, 0.1)
for convolutions and linear layers, N(0, 0.01) / N(0, 0.001) in the auxiliary head.

``output_stride=16`` or ``8`` builds the last grid reductions (InceptionB, InceptionD) at
stride 1 and dilates every module after them (:mod:`lightnets.models.stages`; timm refuses any
output stride but 32 here). Their unpadded stride-2 convolutions and pools become "same"-padded
stride-1 ones, so every branch keeps the size; the reduction of a dilated stage keeps the
previous dilation.

``transform_input=True`` re-normalises ImageNet-normalised inputs to ``(x - 0.5) / 0.5`` first
(:class:`lightnets.layers.inception.TransformInput`), as torchvision's pretrained Inception v3
does. torchvision and timm name its tensors alike (``Conv2d_1a_3x3``, ``Mixed_5b.branch1x1``,
``AuxLogits``, ``fc``; the rules are at the bottom); timm feeds the same weights
``(x - 0.5) / 0.5`` directly (its preprocessing's mean and std are 0.5), so its files load
without ``transform_input``: an image gets the same logits either way.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.helpers import LayerFactory
from lightnets.layers.inception import (InceptionA, InceptionB, InceptionC, InceptionD, InceptionE,
                                        InceptionV3AuxHead, TransformInput, inception_norm)
from lightnets.layers.pooling import max_pool
from lightnets.models.base import AuxClassifierNet, trunc_normal_init
from lightnets.registry import Peer, PeerWeights, register_model

# Szegedy et al. 2016, Table 1 (stem), as released: name, out channels, kernel, stride, padding;
# ("maxpoolN", None, 3, 2, 0) is a 3x3/2 max-pool
STEM = [("conv1a", 32, 3, 2, 0), ("conv2a", 32, 3, 1, 0), ("conv2b", 64, 3, 1, 1),
        ("maxpool1", None, 3, 2, 0),
        ("conv3b", 80, 1, 1, 0), ("conv4a", 192, 3, 1, 0),
        ("maxpool2", None, 3, 2, 0)]
# Table 1's Inception part, as released: name, module, its width arguments
# (InceptionA: pool-branch width; InceptionC: width inside the 7x1/1x7 factorised branches)
STAGES: list[tuple[str, type[nn.Module], dict[str, int]]] = [
    ("mixed5b", InceptionA, {"pool_channels": 32}),    # 3 x Fig. 5 at 35x35
    ("mixed5c", InceptionA, {"pool_channels": 64}),
    ("mixed5d", InceptionA, {"pool_channels": 64}),
    ("mixed6a", InceptionB, {}),                       # Fig. 10: 35 -> 17
    ("mixed6b", InceptionC, {"mid_channels": 128}),    # 4 x Fig. 6 at 17x17
    ("mixed6c", InceptionC, {"mid_channels": 160}),
    ("mixed6d", InceptionC, {"mid_channels": 160}),
    ("mixed6e", InceptionC, {"mid_channels": 192}),
    ("mixed7a", InceptionD, {}),                       # 17 -> 8
    ("mixed7b", InceptionE, {}),                       # 2 x Fig. 7 at 8x8
    ("mixed7c", InceptionE, {}),
]
AUX_TAP = "mixed6e"
REDUCTIONS = (InceptionB, InceptionD)


class InceptionV3(AuxClassifierNet):
    """Unpadded convolutional stem, then the Inception modules of ``stages``."""

    family = "Inception v3"
    paper = ("Szegedy et al., Rethinking the Inception Architecture for Computer Vision, "
             "CVPR 2016")
    default_input_size = (3, 299, 299)
    min_input_size = (75, 75)
    aux_loss_weight = 0.4  # TF-slim's train_image_classifier.py (see the module docstring)

    def __init__(self, stages: list[tuple[str, type[nn.Module], dict[str, int]]] = STAGES,
                 aux_logits: bool = False, norm_layer: LayerFactory | None = inception_norm,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5,
                 transform_input: bool = False, output_stride: int = 32) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        tracker = self.track_stages(output_stride)
        channels = in_chans
        if transform_input:
            self.add_stage("transform_input", TransformInput(in_chans))
        for name, out, kernel, stride, padding in STEM:
            if out is None:  # a max-pool ends the stage
                tracker.end_stage(channels, self.stage_names[-1])
                self.add_stage(name, max_pool(kernel, tracker.layer(stride).stride, padding))
                continue
            self.add_stage(name, ConvNormAct(channels, out, kernel, tracker.layer(stride).stride,
                                             padding=padding, norm_layer=norm_layer))
            channels = out
        for name, block_type, widths in stages:
            reduces = block_type in REDUCTIONS
            if reduces:  # a grid reduction starts the next stage
                tracker.end_stage(channels, self.stage_names[-1])
            step = tracker.layer(2 if reduces else 1)
            stride = {"stride": step.stride} if reduces else {}
            block = block_type(channels, **widths, **stride, norm_layer=norm_layer,
                               dilation=step.first_dilation)
            self.add_stage(name, block)
            channels = block.out_channels
            if name == AUX_TAP and aux_logits:  # registered here, as in torchvision
                self.add_aux_head("aux", InceptionV3AuxHead(channels, num_classes, norm_layer),
                                  AUX_TAP)
        tracker.end_stage(channels, self.stage_names[-1])
        self.build_head(channels)
        self.init_weights()

    def init_weights(self) -> None:
        """Truncated N(0, 0.1) for convolutions and linear layers (zero biases), BN at identity,
        and the auxiliary head's own smaller scales (torchvision's initialisation)."""
        trunc_normal_init(self, std=0.1, cutoff=2)
        for name in self.aux_head_names:
            getattr(self, name).init_weights()


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
# the released network's branch names (TF-slim's, kept by torchvision and timm) -> ours
RELEASE_BRANCHES = {
    "branch1x1": "conv1x1", "branch5x5_1": "conv5x5.0", "branch5x5_2": "conv5x5.1",
    "branch3x3": "conv3x3", "branch3x3_1": "conv3x3.0", "branch3x3_2": "conv3x3.1",
    "branch3x3_2a": "conv3x3.1.branches.conv1x3", "branch3x3_2b": "conv3x3.1.branches.conv3x1",
    "branch3x3dbl_1": "double3x3.0", "branch3x3dbl_2": "double3x3.1",
    "branch3x3dbl_3": "double3x3.2", "branch3x3dbl_3a": "double3x3.2.branches.conv1x3",
    "branch3x3dbl_3b": "double3x3.2.branches.conv3x1",
    "branch7x7_1": "conv7x7.0", "branch7x7_2": "conv7x7.1.first",
    "branch7x7_3": "conv7x7.1.second",
    "branch7x7dbl_1": "double7x7.0", "branch7x7dbl_2": "double7x7.1.first",
    "branch7x7dbl_3": "double7x7.1.second", "branch7x7dbl_4": "double7x7.2.first",
    "branch7x7dbl_5": "double7x7.2.second",
    "branch7x7x3_1": "conv7x7x3.0", "branch7x7x3_2": "conv7x7x3.1.first",
    "branch7x7x3_3": "conv7x7x3.1.second", "branch7x7x3_4": "conv7x7x3.2",
    "branch_pool": "pool.1"}
RELEASE_STEM = {"Conv2d_1a_3x3": "conv1a", "Conv2d_2a_3x3": "conv2a", "Conv2d_2b_3x3": "conv2b",
                "Conv2d_3b_1x1": "conv3b", "Conv2d_4a_3x3": "conv4a"}
RELEASE_KEYS = [
    *[(rf"^{theirs}\.", f"{ours}.") for theirs, ours in RELEASE_STEM.items()],
    *[(rf"\.{theirs}\.", f".branches.{ours}.") for theirs, ours in RELEASE_BRANCHES.items()],
    (r"^Mixed_", "mixed"), (r"^AuxLogits\.conv0\.", "aux.conv1x1."),
    (r"^AuxLogits\.conv1\.", "aux.conv5x5."), (r"^AuxLogits\.fc\.", "aux.fc."),
    (r"\.bn\.", ".norm."), (r"^fc\.", "classifier.")]
FLAGS = {"aux_logits": r"^aux\."}  # the released files hold the auxiliary head


@register_model(peers={
    "torchvision": Peer("inception_v3", {"aux_logits": False, "init_weights": True}, PeerWeights(
        RELEASE_KEYS, options={"transform_input": True}, flags=FLAGS, pretrained_kwargs={
            "aux_logits": True, "transform_input": True, "init_weights": False})),
    # timm's default tag, tv_in1k, is torchvision's weights fed (x - 0.5) / 0.5
    "timm": Peer("inception_v3", weights=PeerWeights(
        RELEASE_KEYS, flags=FLAGS, pretrained_kwargs={"aux_logits": True},
        preprocess={"input_size": (3, 299, 299), "mean": (0.5,) * 3, "std": (0.5,) * 3}))})
def inception_v3(**kwargs: Any) -> InceptionV3:
    """torchvision's Inception v3 (299x299 inputs)."""
    return InceptionV3(STAGES, **kwargs)
