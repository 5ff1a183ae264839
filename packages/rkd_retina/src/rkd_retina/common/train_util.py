"""Training helpers and `train_model` of the original `common/train_util.py` (Swin training).

The helpers and the epoch loop are those of `train_util_original`; this `train_model` also records the two
knowledge losses of the Swin student (`model.return_knowledge_losses()`) per batch and logs their phase means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from rkd_retina.common.train_util_original import (
    affine_images,
    affine_theta,
    get_gaussian_kernel,
    run_training,
    value_map_load,
    value_map_save,
)

__all__ = [
    "affine_images",
    "affine_theta",
    "get_gaussian_kernel",
    "train_model",
    "value_map_load",
    "value_map_save",
]


def train_model(  # noqa: PLR0917 (the original positional signature)
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    dataloaders: Mapping[str, DataLoader],
    device: torch.device,
    num_epochs: int,
    train_config: Mapping[str, Any],
    start_epoch: int = 0,
) -> nn.Module:
    """Train the Swin student as `train_util_original.train_model`, also logging the L1/L2 knowledge losses."""
    return run_training(
        model, optimizer, dataloaders, wandb_names=("Project_Name", "Project_Run_Name"), device=device,
        num_epochs=num_epochs, train_config=train_config, knowledge=True, start_epoch=start_epoch,
    )  # fmt: skip
