"""Model names → classes, so a config key can pick the network the original chose by editing an import line.

Modules are imported on lookup, so asking for a CNN does not import MONAI.
"""

from __future__ import annotations

import importlib

from torch import nn

from kdrepro_shared.errors import KdReproError

MODELS: dict[str, tuple[str, str]] = {
    "SuperRetina": ("rkd_retina.model.superRetina", "SuperRetina"),
    "LKUNet": ("rkd_retina.model.LKUNET", "SuperRetina"),
    "Swin": ("rkd_retina.model.super_retina_model_change", "SuperRetina"),
}


def get_model_class(name: str) -> type[nn.Module]:
    """Return the model class registered as `name`; an unknown name raises a one-line `KdReproError`."""
    if name not in MODELS:
        raise KdReproError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    module_name, class_name = MODELS[name]
    return getattr(importlib.import_module(module_name), class_name)
