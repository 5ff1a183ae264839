"""`classifiers.classifier`: a linear head, or the cosine 1×1 "BoW predictor" that scores features against templates."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from kdrepro_shared.errors import KdReproError
from letkd.distillation.architectures import tools

CLASSIFIER_TYPES = ("linear", "conv_cosine")


class Classifier(nn.Module):
    """Head built from an option dict: `classifier_type`, `num_channels`, `num_classes` and the type's options.

    `linear`: optional `bias` (default True) and `global_pooling` (average pool first). `conv_cosine`: a
    `Conv2dCos` with `scale_cls`, `learn_scale` and optional `bias` (default False), applied per position.
    """

    def __init__(self, opt: dict[str, Any]) -> None:
        super().__init__()
        self.classifier_type = opt["classifier_type"]
        self.num_channels = opt["num_channels"]
        self.num_classes = opt["num_classes"]
        self.global_pooling = opt.get("global_pooling", False)
        if self.classifier_type == "linear":
            bias = opt.get("bias", True)
            self.layers = nn.Linear(self.num_channels, self.num_classes, bias=bias)
            if bias:
                self.layers.bias.data.zero_()
            self.layers.weight.data.normal_(0.0, math.sqrt(2.0 / self.layers.out_features))
        elif self.classifier_type == "conv_cosine":
            if self.global_pooling:
                raise KdReproError("classifier_type 'conv_cosine' scores every position: global_pooling must be False")
            self.layers = tools.Conv2dCos(
                self.num_channels,
                self.num_classes,
                bias=opt.get("bias", False),
                scale=opt["scale_cls"],
                learn_scale=opt["learn_scale"],
            )
        else:
            raise KdReproError(
                f"unknown classifier_type {self.classifier_type!r}; valid: {', '.join(CLASSIFIER_TYPES)}"
            )

    def flatten(self) -> bool:
        """Whether features are flattened to (B, C·H·W) before the head (linear heads only)."""
        return self.classifier_type == "linear"

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Class (or template) scores of `features`."""
        if self.global_pooling:
            features = tools.global_pooling(features, pool_type="avg")
        if features.dim() > 2 and self.flatten():
            features = features.view(features.size(0), -1)
        return self.layers(features)


def create_model(opt: dict[str, Any]) -> Classifier:
    """Factory entry point: the head described by `opt`."""
    return Classifier(opt)
