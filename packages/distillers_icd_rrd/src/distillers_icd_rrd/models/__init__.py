"""The 22 CIFAR architectures of RepDistiller / giakoumoglou/distillers (`models/__init__.py`) and a checked lookup.

`model_dict` maps the CLI names (`--model`, `--model_s`, the teacher folder prefix) to constructors
taking `num_classes`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from kdrepro_shared.errors import KdReproError

from .mobilenetv2 import mobile_half
from .resnet import resnet8, resnet8x4, resnet14, resnet20, resnet32, resnet32x4, resnet44, resnet56, resnet110
from .resnetv2 import ResNet50
from .ShuffleNetv1 import ShuffleV1
from .ShuffleNetv2 import ShuffleV2
from .vgg import vgg8_bn, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn
from .wrn import wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2

model_dict: dict[str, Callable[..., nn.Module]] = {
    "resnet8": resnet8,
    "resnet14": resnet14,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet44": resnet44,
    "resnet56": resnet56,
    "resnet110": resnet110,
    "resnet8x4": resnet8x4,
    "resnet32x4": resnet32x4,
    "ResNet50": ResNet50,
    "wrn_16_1": wrn_16_1,
    "wrn_16_2": wrn_16_2,
    "wrn_40_1": wrn_40_1,
    "wrn_40_2": wrn_40_2,
    "vgg8": vgg8_bn,
    "vgg11": vgg11_bn,
    "vgg13": vgg13_bn,
    "vgg16": vgg16_bn,
    "vgg19": vgg19_bn,
    "MobileNetV2": mobile_half,
    "ShuffleV1": ShuffleV1,
    "ShuffleV2": ShuffleV2,
}


def get_model(name: str, num_classes: int) -> nn.Module:
    """Build `model_dict[name](num_classes=num_classes)`; an unknown name raises a one-line `KdReproError`."""
    if name not in model_dict:
        raise KdReproError(f"unknown model {name!r}; valid names: {', '.join(model_dict)}")
    return model_dict[name](num_classes=num_classes)


__all__ = ["get_model", "model_dict"]
