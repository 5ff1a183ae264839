"""Subprocess half of test_train_state: train a tiny seeded model straight, up to a checkpoint, or from one.

Usage: `reference OUT CKPT` trains all epochs straight into OUT, then starts over from the seeds, trains the
first half and saves a train state to CKPT; `resume CKPT OUT` restores that state in a fresh process and trains
the second half. OUT receives the final parameters, optimizer state, learning rate and step count.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from kdrepro_shared.checkpoints.io import load, save
from kdrepro_shared.checkpoints.train_state import capture_train_state, restore_train_state

EPOCHS = 4
HALF = EPOCHS // 2


@dataclass
class Run:
    """The objects a training loop carries between steps."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.StepLR
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    loader: DataLoader
    step: int = 0


def build() -> Run:
    """Seed every RNG and build the same model, data, loader and optimizer in every mode."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 1))
    data = TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
    generator = torch.Generator().manual_seed(1)
    loader = DataLoader(data, batch_size=8, shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return Run(model, optimizer, scheduler, scaler, generator, loader)


def train(run: Run, start_epoch: int, stop_epoch: int) -> None:
    """Train whole epochs; each step draws noise from torch, numpy and python `random` and uses dropout."""
    run.model.train()
    for _ in range(start_epoch, stop_epoch):
        for inputs, targets in run.loader:
            noise = 0.01 * (torch.randn_like(inputs) + float(np.random.normal()) + random.random())
            loss = F.mse_loss(run.model(inputs + noise), targets)
            run.optimizer.zero_grad()
            run.scaler.scale(loss).backward()
            run.scaler.step(run.optimizer)
            run.scaler.update()
            run.step += 1
        run.scheduler.step()


def write_result(run: Run, out: str) -> None:
    """Save what the parent compares: parameters, optimizer state, learning rate, step count."""
    torch.save(
        {
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "lr": run.scheduler.get_last_lr(),
            "step": run.step,
        },
        out,
    )


def main(mode: str, *paths: str) -> None:
    """Run one mode of the experiment (see the module docstring)."""
    if mode == "reference":
        straight = build()
        train(straight, 0, EPOCHS)
        write_result(straight, paths[0])
        first = build()
        train(first, 0, HALF)
        state = capture_train_state(
            model=first.model,
            optimizer=first.optimizer,
            scheduler=first.scheduler,
            scaler=first.scaler,
            epoch=HALF,
            step=first.step,
            generators=[first.generator],
        )
        save(paths[1], state, args={"mode": mode})
    elif mode == "resume":
        run = build()
        resumed = restore_train_state(
            load(paths[0]),
            model=run.model,
            optimizer=run.optimizer,
            scheduler=run.scheduler,
            scaler=run.scaler,
            generators=[run.generator],
        )
        run.step = resumed.step
        train(run, resumed.epoch, EPOCHS)
        write_result(run, paths[1])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
