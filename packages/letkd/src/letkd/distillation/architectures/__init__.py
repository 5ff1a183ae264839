"""Networks of letKD, built by name: `factory('feature_extractors.resnet', opt)` as the configs' `def_file` says.

A name is `<subpackage>.<module>` under this package (`feature_extractors`, `classifiers`, `miscellaneous`); the
module's `create_model(opt)` builds the network, exactly as the original factory resolved it.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

from torch import nn

from kdrepro_shared.errors import KdReproError

SUBPACKAGES = ("classifiers", "feature_extractors", "miscellaneous")
# Modules of the original that no letKD config names (ImageNet / Tiny-ImageNet backbones, VGG, resnetv3).
NOT_PORTED = frozenset(
    f"feature_extractors.{name}"
    for name in (
        "MobileNetV2_ImageNet",
        "ResNet_ImageNet",
        "ResNetv2_TinyImageNet",
        "VGG_ImageNet",
        "resnet_tinyimagenet",
        "resnetv3",
        "shufflev1_tinyimagenet",
        "vgg",
    )
)


def available_architectures() -> list[str]:
    """Every name `factory` accepts: the modules with a `create_model` in the subpackages present."""
    names = []
    for sub in SUBPACKAGES:
        folder = Path(__file__).with_name(sub)
        if folder.is_dir():
            names += [f"{sub}.{info.name}" for info in pkgutil.iter_modules([str(folder)]) if info.name != "utils"]
    return sorted(names)


def factory(architecture_name: str, opt: dict[str, Any]) -> nn.Module:
    """Build the network `architecture_name` (e.g. `feature_extractors.resnet`) from its option dict `opt`."""
    valid = available_architectures()
    if architecture_name not in valid:
        if architecture_name in NOT_PORTED:
            raise KdReproError(
                f"architecture {architecture_name!r} of the original is not ported (no letKD config uses it); "
                f"available: {', '.join(valid)}"
            )
        raise KdReproError(f"unknown architecture {architecture_name!r}; available: {', '.join(valid)}")
    module = importlib.import_module(f"{__name__}.{architecture_name}")
    return module.create_model(opt)
