"""DOLG's pycls ResNet: the DELG trunk without the global head, returning the stage-3 and stage-4 maps (x3, x4)."""

from __future__ import annotations

from whiten_mtd.models.delg.resnet import GeneralizedMeanPoolingP, ResNetTrunk, init_weights

__all__ = ["GeneralizedMeanPoolingP", "ResNet", "init_weights"]

ResNet = ResNetTrunk
