"""Numbers more than one floor needs, defined once."""

# ImageNet's per-channel pixel mean and standard deviation (0-1 RGB), the normalisation of
# torchvision's and timm's weights and of lightnets' photographs
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
