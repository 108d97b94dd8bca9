"""Pretrained weights from the files users already have: lightnets checkpoints, torchvision and
timm state dicts, Hugging Face-style folders, segmentation_models_pytorch's state dicts and
folders (:mod:`.smp`), loaded so that the model computes what the source
library's model computes.

``lightnets.create_model(name, checkpoint_path=PATH)`` is the entry point: the registry calls
:func:`load_pretrained`, which this package registers with it on import (the registry is the
ground floor and imports nothing of lightnets; this package sits on floor 4, above the
checkpoint reader and the models, and ``lightnets/__init__`` imports it, so both
``lightnets.create_model`` and ``lightnets.registry.create_model`` load files the same way).

What each family needs, the renaming rules of its twins' keys, the reshapes, the constructor
options that reproduce a source and timm's preprocessing, lives beside the family
(``register_model(peers={...: Peer(..., weights=PeerWeights(...))})``); this package holds only
the mechanism: reading files safely (:mod:`.files`), renaming and checking (:mod:`.mapping`),
the sources' preprocessing and ImageNet class names (:mod:`.preprocess`), and building the model
(:mod:`.load`).
"""

from lightnets.registry import register_checkpoint_loader
from lightnets.weights.files import WeightsFile, open_weights
from lightnets.weights.load import (SOURCES, Pretrained, PretrainedNote, SourceWeights,
                                    build_pretrained, load_pretrained, read_pretrained)
from lightnets.weights.mapping import adapt_input_conv
from lightnets.weights.preprocess import imagenet_categories

register_checkpoint_loader(load_pretrained)

__all__ = ["SOURCES", "Pretrained", "PretrainedNote", "SourceWeights", "WeightsFile",
           "adapt_input_conv", "build_pretrained", "imagenet_categories", "load_pretrained",
           "open_weights", "read_pretrained"]
