"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015), with the batch-normalised variants (Ioffe & Szegedy 2015) torchvision
adds.

Every model has exactly the parameter shapes of its torchvision namesake (vgg16: 138,357,544
params, 15.47G MACs at 224x224). He et al. (2016) quote 15.3G / 19.6G for VGG-16 / 19: the same
architecture, counted or rounded differently (the convolutions alone are 15.35G / 19.51G). The
paper's LRN variant A-LRN and 1x1 variant C are not provided. The ``_bn``
variants keep the convolution bias before the BatchNorm, as torchvision does, so that its
checkpoints load. As in torchvision, a 7x7 adaptive average pool before the first FC layer lets
any input of at least 32x32 through (the paper evaluates larger images by turning the FC layers
into convolutions instead).

``feature_info`` lists the outputs just before each max-pool (the last convolution of each of the
five blocks, reductions 1 to 16), the convention shared with AlexNet. Initialisation follows the
reference implementation: He-normal (fan-out) convolutions, N(0, 0.01) FC layers, zero biases.

``output_stride=16`` or ``8`` builds the last max-pools at stride 1 and dilates the convolutions
after them (:mod:`lightnets.models.stages`), as DeepLab v1 did with VGG-16 (timm refuses any
output stride but 32 for VGG). A 2x2/2 pool at stride 1 becomes a 3x3/1 one, DeepLab's pool4
and pool5, dilated like the convolutions around it; the first pool of a dilated stage keeps the
previous dilation.

Pretrained weights (:mod:`lightnets.weights`): torchvision's and timm's ``features`` number
every convolution, BatchNorm, ReLU and pool, where ours number convolution blocks and pools;
the index rules follow from the configuration table (:func:`features_keys`). timm's head is
"convolutional" (``pre_logits``: a 7x7 convolution, then a 1x1 one): the same layers as our
fully-connected ones, reshaped, and the same function while the last feature map is at most
7x7 (inputs below 256 px, the 224 px of the pretrained weights included); on larger maps timm
slides the 7x7 layer and averages its outputs where we pool to 7x7 first.
"""

from __future__ import annotations

from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.helpers import LayerFactory
from lightnets.layers.pooling import max_pool
from lightnets.models.base import Classifier, he_init
from lightnets.registry import Peer, PeerWeights, register_model

# Simonyan & Zisserman 2015, Table 1: 3x3 convolution widths, 'M' = 2x2/2 max-pool
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}
HIDDEN_FEATURES = 4096


class VGG(Classifier):
    """Stacks of 3x3 convolutions separated by 2x2 max-pools, a 7x7 average pool and three
    fully-connected layers with dropout after the first two.

    ``norm_layer=nn.BatchNorm2d`` gives the ``_bn`` variants. ``forward_head(x, pre_logits=True)``
    returns the 4096-d output of the second hidden layer; ``reset_classifier`` replaces only the
    last FC layer.
    """

    family = "VGG"
    paper = ("Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image "
             "Recognition, ICLR 2015")
    min_input_size = (32, 32)

    def __init__(self, config: list[int | str], norm_layer: LayerFactory | None = None,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5,
                 output_stride: int = 32) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        tracker = self.track_stages(output_stride)
        layers: list[nn.Module] = []
        channels = in_chans
        for entry in config:
            if entry == "M":
                tracker.end_stage(channels, f"features.{len(layers) - 1}")
                step = tracker.layer(2)
                layers.append(max_pool(2, step.stride, dilation=step.first_dilation))
            else:
                layers.append(ConvNormAct(channels, entry, 3, dilation=tracker.layer().dilation,
                                          bias=True, norm_layer=norm_layer))
                channels = entry
        self.features = nn.Sequential(*layers)
        # 7x7 average pool, then FC-ReLU-dropout twice (their own dropout) and the final FC
        hidden = nn.Sequential(
            nn.Linear(channels * 49, HIDDEN_FEATURES), nn.ReLU(), nn.Dropout(self.drop_rate),
            nn.Linear(HIDDEN_FEATURES, HIDDEN_FEATURES), nn.ReLU(), nn.Dropout(self.drop_rate))
        self.build_head(channels, hidden, HIDDEN_FEATURES, pool_size=7, drop=False)
        self.init_weights()

    def init_weights(self) -> None:
        """He-normal (fan-out) convolutions, N(0, 0.01) FC layers, as the reference does."""
        he_init(self)


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
def features_keys(config: list[int | str], batch_norm: bool) -> list[tuple[str, str]]:
    """torchvision's ``features.i`` (conv, [BN], ReLU, and pools, each its own index) to ours
    (one block per convolution or pool)."""
    rules, theirs = [], 0
    for ours, entry in enumerate(config):
        if entry == "M":
            theirs += 1
            continue
        rules.append((rf"^features\.{theirs}\.(\w+)$", rf"features.{ours}.conv.\1"))
        if batch_norm:
            rules.append((rf"^features\.{theirs + 1}\.(\w+)$", rf"features.{ours}.norm.\1"))
        theirs += 3 if batch_norm else 2
    return rules


# torchvision's classifier: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear
TORCHVISION_HEAD = [(r"^classifier\.0\.", "head_hidden.0."),
                    (r"^classifier\.3\.", "head_hidden.3."), (r"^classifier\.6\.", "classifier.")]
# timm's: pre_logits.fc1 (7x7 conv), pre_logits.fc2 (1x1 conv), head.fc
TIMM_HEAD = [(r"^pre_logits\.fc1\.", "head_hidden.0."), (r"^pre_logits\.fc2\.", "head_hidden.3."),
             (r"^head\.fc\.", "classifier.")]


def twins(name: str, config: list[int | str], batch_norm: bool) -> dict[str, Peer]:
    """The ``peers`` of a VGG: torchvision's and timm's model of the same name."""
    features = features_keys(config, batch_norm)
    return {"torchvision": Peer(name, weights=PeerWeights([*features, *TORCHVISION_HEAD])),
            "timm": Peer(name, weights=PeerWeights(
                [*features, *TIMM_HEAD], reshaped=("head_hidden.0.weight", "head_hidden.3.weight"),
                preprocess={"interpolation": "bilinear"}))}  # timm's tag: torchvision's weights


@register_model(peers=twins("vgg11", CONFIGS["A"], batch_norm=False))
def vgg11(**kwargs) -> VGG:
    return VGG(CONFIGS["A"], **kwargs)


@register_model(peers=twins("vgg13", CONFIGS["B"], batch_norm=False))
def vgg13(**kwargs) -> VGG:
    return VGG(CONFIGS["B"], **kwargs)


@register_model(peers=twins("vgg16", CONFIGS["D"], batch_norm=False))
def vgg16(**kwargs) -> VGG:
    return VGG(CONFIGS["D"], **kwargs)


@register_model(peers=twins("vgg19", CONFIGS["E"], batch_norm=False))
def vgg19(**kwargs) -> VGG:
    return VGG(CONFIGS["E"], **kwargs)


@register_model(peers=twins("vgg11_bn", CONFIGS["A"], batch_norm=True))
def vgg11_bn(norm_layer: LayerFactory | None = nn.BatchNorm2d, **kwargs) -> VGG:
    return VGG(CONFIGS["A"], norm_layer=norm_layer, **kwargs)


@register_model(peers=twins("vgg13_bn", CONFIGS["B"], batch_norm=True))
def vgg13_bn(norm_layer: LayerFactory | None = nn.BatchNorm2d, **kwargs) -> VGG:
    return VGG(CONFIGS["B"], norm_layer=norm_layer, **kwargs)


@register_model(peers=twins("vgg16_bn", CONFIGS["D"], batch_norm=True))
def vgg16_bn(norm_layer: LayerFactory | None = nn.BatchNorm2d, **kwargs) -> VGG:
    return VGG(CONFIGS["D"], norm_layer=norm_layer, **kwargs)


@register_model(peers=twins("vgg19_bn", CONFIGS["E"], batch_norm=True))
def vgg19_bn(norm_layer: LayerFactory | None = nn.BatchNorm2d, **kwargs) -> VGG:
    return VGG(CONFIGS["E"], norm_layer=norm_layer, **kwargs)
