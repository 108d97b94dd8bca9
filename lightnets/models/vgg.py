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
"""

from __future__ import annotations

from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.helpers import LayerFactory
from lightnets.layers.pooling import max_pool
from lightnets.models.base import Classifier, he_init
from lightnets.registry import register_model

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


@register_model(peers={"torchvision": "vgg11"})
def vgg11(**kwargs) -> VGG:
    return VGG(CONFIGS["A"], **kwargs)


@register_model(peers={"torchvision": "vgg13"})
def vgg13(**kwargs) -> VGG:
    return VGG(CONFIGS["B"], **kwargs)


@register_model(peers={"torchvision": "vgg16"})
def vgg16(**kwargs) -> VGG:
    return VGG(CONFIGS["D"], **kwargs)


@register_model(peers={"torchvision": "vgg19"})
def vgg19(**kwargs) -> VGG:
    return VGG(CONFIGS["E"], **kwargs)


@register_model(peers={"torchvision": "vgg11_bn"})
def vgg11_bn(norm_layer: LayerFactory | None = nn.BatchNorm2d, **kwargs) -> VGG:
    return VGG(CONFIGS["A"], norm_layer=norm_layer, **kwargs)


@register_model(peers={"torchvision": "vgg13_bn"})
def vgg13_bn(norm_layer: LayerFactory | None = nn.BatchNorm2d, **kwargs) -> VGG:
    return VGG(CONFIGS["B"], norm_layer=norm_layer, **kwargs)


@register_model(peers={"torchvision": "vgg16_bn"})
def vgg16_bn(norm_layer: LayerFactory | None = nn.BatchNorm2d, **kwargs) -> VGG:
    return VGG(CONFIGS["D"], norm_layer=norm_layer, **kwargs)


@register_model(peers={"torchvision": "vgg19_bn"})
def vgg19_bn(norm_layer: LayerFactory | None = nn.BatchNorm2d, **kwargs) -> VGG:
    return VGG(CONFIGS["E"], norm_layer=norm_layer, **kwargs)
