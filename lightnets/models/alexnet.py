"""AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS 2012), in the single-tower form torchvision ships (after Krizhevsky,
"One weird trick for parallelizing convolutional neural networks", arXiv:1404.5997, 2014).

The default ``alexnet`` has exactly the parameter shapes of ``torchvision.models.alexnet``:
61,100,840 params and 714.2M MACs at 224x224. It differs from the 2012 network in having no
grouped convolutions and no local response normalisation, and widths 64-192-384-256-256.

``alexnet(two_tower=True)`` builds the 2012 paper's network instead: widths 96-256-384-384-256,
conv2/4/5 split in two groups (the two GPUs; conv3 and the FC layers see both halves), local
response normalisation after the ReLU of conv1 and conv2 (k=2, n=5, alpha=1e-4, beta=0.75;
PyTorch divides alpha by n, so it is given 5e-4), and the paper's initialisation (N(0, 0.01)
weights, biases 1 in conv2, conv4, conv5 and the hidden FC layers, 0 elsewhere). It has
60,965,224 params (paper: "60 million") and 724.4M MACs. Both forms pad conv1 by 2 so that 224x224
gives the paper's 55x55 maps (the paper's 224 is really 227 without padding).

The default form keeps PyTorch's default initialisation, as torchvision does. ``feature_info``
lists the outputs just before each max-pool (conv1, conv2, conv5), as in VGG: with unpadded
3x3/2 pooling these reductions (4, 8, 16) stay true down to the minimum input of 63x63, where the
pooled maps are 7, 3 and 1 pixels.

``output_stride=16`` or ``8`` builds the last max-pools at stride 1 (3x3, "same" padding) and
dilates the convolutions after them (:mod:`lightnets.models.stages`); the first pool of a
dilated stage keeps the previous dilation. The unpadded pools become "same"-padded ones there,
so each map keeps its size, half a window from where the strided pool's outputs sat.

Pretrained weights (:mod:`lightnets.weights`): torchvision's ``features`` number each
convolution, ReLU and pool, ours each convolution block and pool; the index rules follow from
the layer table (:func:`features_keys`), the head keeps its indices.
"""

from __future__ import annotations

from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.pooling import max_pool
from lightnets.models.base import Classifier
from lightnets.registry import Peer, PeerWeights, register_model

# out channels, kernel, stride, padding, groups, local response norm, 3x3/2 max-pool after
# torchvision's single-tower network (Krizhevsky 2014)
SINGLE_TOWER = [(64, 11, 4, 2, 1, False, True), (192, 5, 1, 2, 1, False, True),
                (384, 3, 1, 1, 1, False, False), (256, 3, 1, 1, 1, False, False),
                (256, 3, 1, 1, 1, False, True)]
# Krizhevsky et al. 2012, Fig. 2 and Sec. 3.3-3.5: the two-GPU network
TWO_TOWER_2012 = [(96, 11, 4, 2, 1, True, True), (256, 5, 1, 2, 2, True, True),
                  (384, 3, 1, 1, 1, False, False), (384, 3, 1, 1, 2, False, False),
                  (256, 3, 1, 1, 2, False, True)]
HIDDEN_FEATURES = 4096


class AlexNet(Classifier):
    """Five convolutions with three overlapping max-pools, then a 6x6 average pool and three
    fully-connected layers with dropout before the first two.

    ``forward_head(x, pre_logits=True)`` returns the 4096-d output of the second hidden layer;
    ``reset_classifier`` replaces only the last FC layer.
    """

    family = "AlexNet"
    paper = ("Krizhevsky et al., ImageNet Classification with Deep Convolutional Neural Networks, "
             "NeurIPS 2012; single-tower form: Krizhevsky, One weird trick for parallelizing "
             "convolutional neural networks, arXiv 2014")
    min_input_size = (63, 63)

    def __init__(self, layers: list[tuple] = SINGLE_TOWER, num_classes: int = 1000,
                 in_chans: int = 3, drop_rate: float = 0.5, paper_init: bool = False,
                 output_stride: int = 32) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        tracker = self.track_stages(output_stride)
        modules: list[nn.Module] = []
        channels = in_chans
        for out, kernel, stride, padding, groups, local_norm, pool in layers:
            step = tracker.layer(stride)
            # padding scales with the dilation, so a dilated conv stays aligned as before
            modules.append(ConvNormAct(channels, out, kernel, step.stride, step.first_dilation,
                                       groups=groups, bias=True, norm_layer=None,
                                       padding=padding * step.first_dilation))
            if local_norm:
                modules.append(nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
            channels = out
            if pool:
                tracker.end_stage(out, f"features.{len(modules) - 1}")
                step = tracker.layer(2)
                modules.append(max_pool(3, step.stride, dilation=step.first_dilation))
        self.features = nn.Sequential(*modules)
        # 6x6 average pool, then dropout-FC-ReLU twice (their own dropout) and the final FC
        hidden = nn.Sequential(
            nn.Dropout(self.drop_rate), nn.Linear(channels * 36, HIDDEN_FEATURES), nn.ReLU(),
            nn.Dropout(self.drop_rate), nn.Linear(HIDDEN_FEATURES, HIDDEN_FEATURES), nn.ReLU())
        self.build_head(channels, hidden, HIDDEN_FEATURES, pool_size=6, drop=False)
        if paper_init:
            self.init_paper_weights()

    def init_paper_weights(self) -> None:
        """Krizhevsky et al. 2012, Sec. 5: N(0, 0.01) weights; biases 1 in conv2, conv4, conv5
        and the hidden FC layers (to give the ReLUs positive inputs early on), 0 elsewhere."""
        convs = [m for m in self.features if isinstance(m, ConvNormAct)]
        biased_one = {id(convs[i].conv) for i in (1, 3, 4)}
        biased_one |= {id(m) for m in self.head_hidden if isinstance(m, nn.Linear)}
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.constant_(module.bias, 1.0 if id(module) in biased_one else 0.0)


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
def features_keys(layers: list[tuple]) -> list[tuple[str, str]]:
    """torchvision's ``features.i`` (conv, ReLU, [pool], each its own index) to ours (one block
    per convolution, then [LRN], [pool])."""
    rules, theirs, ours = [], 0, 0
    for *_, local_norm, pool in layers:
        rules.append((rf"^features\.{theirs}\.(\w+)$", rf"features.{ours}.conv.\1"))
        theirs += 2 + pool
        ours += 1 + local_norm + pool
    return rules


# torchvision's classifier: Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear
TORCHVISION_KEYS = [*features_keys(SINGLE_TOWER), (r"^classifier\.([14])\.", r"head_hidden.\1."),
                    (r"^classifier\.6\.", "classifier.")]


@register_model(peers={"torchvision": Peer("alexnet", weights=PeerWeights(TORCHVISION_KEYS))})
def alexnet(two_tower: bool = False, **kwargs) -> AlexNet:
    """torchvision's AlexNet; ``two_tower=True`` gives the 2012 paper's network."""
    kwargs.setdefault("paper_init", two_tower)
    return AlexNet(TWO_TOWER_2012 if two_tower else SINGLE_TOWER, **kwargs)
