"""`--resume` (not in the seed): a per-epoch train state beside the seed's checkpoints, for bit-identical restarts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdrepro_shared.checkpoints import capture_train_state, load, restore_train_state, save
from kdrepro_shared.errors import CheckpointError

TRAIN_STATE_FILE = "train_state.pth"


def save_train_state(
    opt: argparse.Namespace,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    *,
    best_acc: Any,
    last_acc: Any,
) -> None:
    """Write `save_folder/train_state.pth`: weights, optimizer, every RNG, the finished epoch and the accuracies."""
    state = capture_train_state(
        model=model, optimizer=optimizer, epoch=epoch, extra={"best_acc": best_acc, "last_acc": last_acc}
    )
    save(Path(opt.save_folder) / TRAIN_STATE_FILE, state, args=opt)


def load_train_state(save_folder: str, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, Any, Any]:
    """Restore the run's train state into `model`/`optimizer`/the RNGs; return (next epoch, best_acc, last_acc)."""
    path = Path(save_folder) / TRAIN_STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"--resume: no {TRAIN_STATE_FILE} in {save_folder}; run once without --resume first")
    restored = restore_train_state(load(path), model=model, optimizer=optimizer)
    print(f"==> Resuming after epoch {restored.epoch} from {path}")
    return restored.epoch + 1, restored.extra["best_acc"], restored.extra["last_acc"]
