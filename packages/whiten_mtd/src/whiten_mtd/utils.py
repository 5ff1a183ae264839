"""Helpers of the original `utils.py`: config loading, logging set-up, checkpoint saving, RGB->BGR and the PCA layer.

The distributed queries (`get_rank`, `get_world_size`, ...) are those of `kdrepro_shared.distributed`, which answer
for a single process without a process group as well.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from kdrepro_shared.checkpoints import io as ckpt_io
from kdrepro_shared.distributed import get_rank, get_world_size, is_dist_avail_and_initialized
from kdrepro_shared.errors import KdReproError
from kdrepro_shared.seed import seed_everything

__all__ = [
    "PCA",
    "RGB2BGR",
    "get_rank",
    "get_world_size",
    "has_batchnorms",
    "is_dist_avail_and_initialized",
    "load_config",
    "save_checkpoint",
    "setup_logger",
]

LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
_OWN_HANDLER = "_whiten_mtd_handler"


def load_config(config_file: str | os.PathLike[str]) -> Any:
    """Read a YAML config (e.g. `config/svd.yaml`) with the safe loader; a missing file is a one-line error."""
    path = Path(config_file)
    if not path.is_file():
        raise KdReproError(f"config file {str(path)!r} not found (expected a YAML file such as config/svd.yaml)")
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def setup_logger(log_path: str | os.PathLike[str] | None = None, log_level: int = logging.INFO) -> None:
    """Send the root logger to stdout and, if `log_path` is given, to `<log_path>/log.log` (overwritten).

    Handlers added by an earlier call are replaced, so calling this again (parent, then worker) does not print twice.
    """
    root = logging.root
    root.setLevel(log_level)
    for handler in [h for h in root.handlers if getattr(h, _OWN_HANDLER, False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path is not None:
        Path(log_path).mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(Path(log_path) / "log.log", mode="w"))
    for handler in handlers:
        handler.setLevel(log_level)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        setattr(handler, _OWN_HANDLER, True)
        root.addHandler(handler)


def has_batchnorms(model: nn.Module) -> bool:
    """Whether `model` holds any (Sync)BatchNorm layer, i.e. whether SyncBatchNorm conversion changes anything."""
    bn_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
    return any(isinstance(module, bn_types) for module in model.modules())


def save_checkpoint(
    state: dict[str, Any], is_best: bool, path: str | os.PathLike[str], filename: str = "checkpoint.pt"
) -> Path:
    """Write `state` unchanged (the original layout) to `path/filename` atomically; copy it to model_best.pt if best."""
    if path is None:
        raise KdReproError("checkpoint directory must not be None")
    Path(path).mkdir(parents=True, exist_ok=True)
    target = ckpt_io.save(Path(path) / filename, state, meta=False)
    if is_best:
        shutil.copyfile(target, Path(path) / "model_best.pt")
    return target


class RGB2BGR:
    """Reverse the channel axis of a CHW tensor (applied after Normalize for the DELG/DOLG teachers)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x[(2, 1, 0),]


class PCA(nn.Module):
    """PCA-whitening held in eight buffers (the original file format): y = (x - mean) @ dvt^T.

    `train_pca` learns it from L2-normalised descriptors; `forward` applies it. Unlike the original, `forward` does not
    subtract the mean from the caller's tensor in place (the returned values are the same).
    """

    def __init__(self, dim1: int = 0, dim2: int = 0, whit: float = 0.5) -> None:
        super().__init__()
        self.register_buffer("dim1", torch.tensor(dim1, dtype=torch.long))
        self.register_buffer("dim2", torch.tensor(dim2, dtype=torch.long))
        self.register_buffer("whit", torch.tensor(whit, dtype=torch.float32))
        self.register_buffer("d", torch.zeros(dim1, dtype=torch.float32))
        self.register_buffer("v", torch.zeros(dim1, dim1, dtype=torch.float32))
        self.register_buffer("n_0", torch.tensor(0, dtype=torch.long))
        self.register_buffer("mean", torch.zeros(1, dim1, dtype=torch.float32))
        self.register_buffer("dvt", torch.zeros(dim2, dim1, dtype=torch.float32))

    @torch.no_grad()
    def train_pca(self, x: torch.Tensor) -> None:
        """Learn mean, eigen-decomposition and the whitening projection from rows `x` (centred in place, as before).

        Eigenvalues below 1e-5 of the largest are raised to that floor before whitening; the stored `d`/`v` are the
        raw `eigh` output. The share of energy kept by the `dim2` leading components is logged.
        """
        dim1, dim2 = int(self.dim1), int(self.dim2)
        if x.ndim != 2 or x.shape[1] != dim1:
            raise KdReproError(f"PCA expects features of shape (n, {dim1}), got {tuple(x.shape)}")
        if dim2 > dim1:
            raise KdReproError(f"PCA output dim {dim2} exceeds the input dim {dim1}; choose --embed_dim <= {dim1}")
        mean = x.mean(dim=0, keepdim=True)
        self.mean = mean
        x -= mean
        cov = x.t().mm(x) / x.size(0)
        eigvals, eigvecs = torch.linalg.eigh(cov)
        self.d.copy_(eigvals)
        self.v.copy_(eigvecs)

        floor = eigvals.max() * 1e-5
        below = eigvals < floor
        self.n_0 = below.sum()
        eigvals[below] = floor
        total_energy = eigvals.sum()

        keep = torch.argsort(eigvals, descending=True)[:dim2]
        eigvals, eigvecs = eigvals[keep], eigvecs[:, keep]
        logging.getLogger("pca").info(f"keeping {eigvals.sum() / total_energy * 100.0:.2f} % of the energy")
        self.dvt = torch.diag(1.0 / eigvals**self.whit) @ eigvecs.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - self.mean
        return torch.mm(self.dvt, centred.transpose(0, 1)).transpose(0, 1)


def add_seed_arg(parser: argparse.ArgumentParser) -> None:
    """[added] `--seed`: the original never seeds (crops, subsets and inits differ run to run); None keeps that."""
    parser.add_argument("--seed", default=None, type=int, help="[added] seed torch, numpy and random with seed + rank")


def seed_process(seed: int | None, rank: int) -> None:
    """Seed this process with `seed + rank` (ranks draw different crops) when `--seed` is given; else do nothing."""
    if seed is not None:
        seed_everything(seed + rank)
