"""GoogLeNet, i.e. Inception v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015).

The default is torchvision's GoogLeNet: its exact parameter shapes and order (6,624,904 params
without the auxiliary classifiers, 1.498G MACs at 224x224). It differs from the paper's Table 1:

* the "5x5" branch of every Inception module uses a 3x3 kernel; ``large_kernel_size=5`` gives
  the paper's 5x5: 7,005,832 params, 1.583G MACs. Table 1 sums to ~6.8M params and 1.50G ops,
  but its first row (2.7K params, 34M ops) is not a 7x7x3x64 convolution (9.4K weights, 118M
  MACs at 112x112); every later row matches this network's MACs within 6% (1.465G vs 1.468G
  in total), and its weights (6,990,272) are within 3% of Table 1's sum;
* every convolution is followed by BatchNorm (eps 0.001) and has no bias, and the paper's two
  local response normalisations are left out (BN did not exist in 2014). ``norm_layer=None``
  gives the paper's plain biased convolutions (with ``large_kernel_size=5``: 6,998,552 params,
  same MACs); the LRNs are not offered;
* the max-pool before inception5a is 2x2/2 (the paper: 3x3/2); at 224x224 both map 14 -> 7;
* dropout before the classifier is 0.2 (``drop_rate``; the paper used 0.4).

Max-pools round up (Caffe's pooling), so any input from 15x15 works (``min_input_size``; the
grids are then 8, 4, 2, 1, 1).

The two auxiliary classifiers (Sec. 5; on inception4a and inception4d) exist only with
``aux_logits=True``; their outputs come from ``model(x, return_aux=True)`` in training mode
and their losses are added with weight 0.3 (``aux_loss_weight``, Sec. 5). Initialisation follows
torchvision: truncated N(0, 0.01) for convolutions and linear layers (biases zeroed here), BN
at identity. The auxiliary-output mechanism (:class:`lightnets.models.base.AuxClassifierNet`)
is shared with Inception v3.

``output_stride=16`` or ``8`` builds the last max-pools at stride 1 ("same" padding; the 2x2
one becomes 3x3) and dilates the Inception modules after them, their 3x3/5x5 filters and pool
branches (:mod:`lightnets.models.stages`); the first pool of a dilated stage keeps the previous
dilation.

``transform_input=True`` re-normalises ImageNet-normalised inputs to ``(x - 0.5) / 0.5`` first
(:class:`lightnets.layers.inception.TransformInput`), as torchvision's pretrained GoogLeNet does;
its weights load with it (:mod:`lightnets.weights`; the rules renaming torchvision's keys,
``branch1..4``, ``bn``, ``fc``, are at the bottom). Its file holds the auxiliary heads, which
are then built too (untrained there, as torchvision warns).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.helpers import LayerFactory
from lightnets.layers.inception import (GoogLeNetAuxHead, InceptionModule, TransformInput,
                                        inception_norm)
from lightnets.layers.pooling import max_pool
from lightnets.models.base import AuxClassifierNet, trunc_normal_init
from lightnets.registry import Peer, PeerWeights, register_model

# Szegedy et al. 2015, Table 1: name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj;
# ("maxpoolN", k) is a k x k stride-2 max-pool (2x2 before inception5a as in torchvision)
STAGES: list[tuple] = [
    ("inception3a", 64, 96, 128, 16, 32, 32),
    ("inception3b", 128, 128, 192, 32, 96, 64),
    ("maxpool3", 3),
    ("inception4a", 192, 96, 208, 16, 48, 64),
    ("inception4b", 160, 112, 224, 24, 64, 64),
    ("inception4c", 128, 128, 256, 24, 64, 64),
    ("inception4d", 112, 144, 288, 32, 64, 64),
    ("inception4e", 256, 160, 320, 32, 128, 128),
    ("maxpool4", 2),
    ("inception5a", 256, 160, 320, 32, 128, 128),
    ("inception5b", 384, 192, 384, 48, 128, 128),
]
AUX_TAPS = {"aux1": "inception4a", "aux2": "inception4d"}  # Sec. 5: on 4a and 4d


class GoogLeNet(AuxClassifierNet):
    """Stem (7x7/2 conv, max-pool, 1x1 and 3x3 convs, max-pool), then the Inception modules
    and max-pools of ``stages``."""

    family = "GoogLeNet"
    paper = "Szegedy et al., Going Deeper with Convolutions, CVPR 2015"
    min_input_size = (15, 15)
    aux_loss_weight = 0.3  # Sec. 5: auxiliary losses "added to the total loss with weight 0.3"

    def __init__(self, stages: list[tuple] = STAGES, large_kernel_size: int = 3,
                 aux_logits: bool = False, norm_layer: LayerFactory | None = inception_norm,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.2,
                 aux_drop_rate: float = 0.7, transform_input: bool = False,
                 output_stride: int = 32) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        tracker = self.track_stages(output_stride)
        conv = partial(ConvNormAct, norm_layer=norm_layer)

        def pool(kernel_size: int) -> nn.Module:  # Caffe's rounding-up 2-strided max-pool
            step = tracker.layer(2)
            return max_pool(kernel_size, step.stride, dilation=step.first_dilation,
                            ceil_mode=True)

        if transform_input:
            self.add_stage("transform_input", TransformInput(in_chans))
        self.add_stage("conv1", conv(in_chans, 64, 7, stride=tracker.layer(2).stride))
        tracker.end_stage(64, "conv1")
        self.add_stage("maxpool1", pool(3))
        self.add_stage("conv2", conv(64, 64, 1))
        self.add_stage("conv3", conv(64, 192, 3))
        tracker.end_stage(192, "conv3")
        self.add_stage("maxpool2", pool(3))
        channels, widths = 192, {}
        for name, *row in stages:
            if len(row) == 1:  # a max-pool ends the stage
                tracker.end_stage(channels, self.stage_names[-1])
                self.add_stage(name, pool(row[0]))
                continue
            block = InceptionModule(channels, *row, large_kernel_size=large_kernel_size,
                                    norm_layer=norm_layer, dilation=tracker.layer().dilation)
            self.add_stage(name, block)
            channels = widths[name] = block.out_channels
        tracker.end_stage(channels, self.stage_names[-1])
        if aux_logits:
            for head, tap in AUX_TAPS.items():
                self.add_aux_head(head, GoogLeNetAuxHead(widths[tap], num_classes, aux_drop_rate,
                                                         norm_layer), tap)
        self.build_head(channels)
        self.init_weights()

    def init_weights(self) -> None:
        """Truncated N(0, 0.01) weights for convolutions and linear layers, zero biases, BN at
        identity (torchvision's initialisation)."""
        trunc_normal_init(self, std=0.01, cutoff=2)


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
# torchvision's names: branch1..4 for our conv1x1 / conv3x3 / conv5x5 / pool branches, bn, fc
TORCHVISION_KEYS = [(r"\.bn\.", ".norm."), (r"\.branch1\.", ".branches.conv1x1."),
                    (r"\.branch2\.", ".branches.conv3x3."),
                    (r"\.branch3\.", ".branches.conv5x5."),
                    (r"\.branch4\.", ".branches.pool."), (r"^fc\.", "classifier.")]
TORCHVISION_WEIGHTS = PeerWeights(
    TORCHVISION_KEYS, options={"transform_input": True}, flags={"aux_logits": r"^aux1\."},
    pretrained_kwargs={"aux_logits": True, "transform_input": True, "init_weights": False})


@register_model(peers={"torchvision": Peer("googlenet", {"aux_logits": False,
                                                         "init_weights": True},
                                           TORCHVISION_WEIGHTS)})
def googlenet(**kwargs: Any) -> GoogLeNet:
    """torchvision's GoogLeNet; ``large_kernel_size=5`` (and ``norm_layer=None``) for the
    paper's."""
    return GoogLeNet(STAGES, **kwargs)
