"""The body the original `train_base.py`, `train_LK.py` and `train_Swin.py` share, with the model name as parameter.

As originally: `./config/train.yaml` (MODEL, PKE, DATASET, VALUE_MAP merged into one flat dict), seed 42 (here also for
`random`, numpy and the augmentation stream, which the original leaves unseeded) with
deterministic cuDNN, Adam (lr 1e-4), shuffled train and val loaders, optional strict `['net']` load from
`pretrained_path`, and the whole run under `torch.autograd.set_detect_anomaly`. Optional keys (defaults reproduce
the original): `num_workers` (8), `detect_anomaly` (true), `resume_training_state` (false: with the pretrained load
also restore the optimizer and continue after the saved epoch), `teacher_path` (Swin), `log_dir`, `wandb`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from kdrepro_shared.errors import KdReproError
from kdrepro_shared.seed import seed_everything
from rkd_retina.common.checkpoint import load_net, read_checkpoint
from rkd_retina.dataset.retina_dataset import RetinaDataset
from rkd_retina.model.registry import get_model_class
from rkd_retina.predictor import count_parameters, read_config

CONFIG_SECTIONS = ("MODEL", "PKE", "DATASET", "VALUE_MAP")
SEED = 42
LEARNING_RATE = 1e-4
DEFAULT_NUM_WORKERS = 8

TrainModel = Callable[..., nn.Module]


def read_train_config(path: str | Path) -> dict[str, Any]:
    """The four sections of a train.yaml merged into one flat dict (later sections win, as originally)."""
    config = read_config(path)
    missing = [s for s in CONFIG_SECTIONS if s not in (config or {})]
    if missing:
        raise KdReproError(f"{path} lacks section(s) {', '.join(missing)}; a train config has {CONFIG_SECTIONS}")
    return {k: v for section in CONFIG_SECTIONS for k, v in config[section].items()}


def build_datasets(train_config: Mapping[str, Any]) -> tuple[RetinaDataset, RetinaDataset]:
    """Augmented train set (labelled split + auxiliary folder) and plain val set."""
    data_shape = (train_config["model_image_height"], train_config["model_image_width"])
    root = train_config["dataset_path"]
    train_set = RetinaDataset(
        root,
        train_config["train_split_file"],
        is_train=True,
        data_shape=data_shape,
        auxiliary=train_config["auxiliary"],
        seed=SEED,  # the original leaves imgaug unseeded; a fixed stream makes a run repeatable
    )
    val_set = RetinaDataset(root, train_config["val_split_file"], is_train=False, data_shape=data_shape)
    return train_set, val_set


def build_model(model_name: str, train_config: Mapping[str, Any], device: torch.device) -> nn.Module:
    """The registry's `model_name` class built for training; prints trainable counts as the original scripts did."""
    model = get_model_class(model_name)(train_config, device=device)
    print("Trainable Total Parameters : ", count_parameters(model))
    if hasattr(model, "teacher"):
        print("Trainable Total Parameters : Teacher: ", count_parameters(model.teacher))
    return model


def load_pretrained(model: nn.Module, train_config: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Strictly load `['net']` of `pretrained_path` into `model`; return the whole checkpoint."""
    path = train_config["pretrained_path"]
    checkpoint = read_checkpoint(path, "MODEL.pretrained_path (load_pre_trained_model: true)", device)
    load_net(model, checkpoint["net"], path)
    return checkpoint


def make_dataloaders(
    train_set: RetinaDataset, val_set: RetinaDataset, train_config: Mapping[str, Any]
) -> dict[str, DataLoader]:
    """Shuffled 'train' and 'val' loaders with the config batch size."""
    options = {
        "batch_size": train_config["batch_size"],
        "shuffle": True,
        "num_workers": train_config.get("num_workers", DEFAULT_NUM_WORKERS),
    }
    return {"train": DataLoader(train_set, **options), "val": DataLoader(val_set, **options)}


def run(model_name: str, train_model: TrainModel, argv: Sequence[str] | None, description: str | None) -> nn.Module:
    """Parse `--config`, seed, build data/model/optimizer, optionally load `pretrained_path`, and train."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default="./config/train.yaml", help="train YAML (MODEL, PKE, DATASET, VALUE_MAP)")
    args = parser.parse_args(argv)
    train_config = read_train_config(args.config)
    # The original seeds torch only; seeding `random` and numpy too (same torch stream, so the same init) makes the
    # negative sampling and colour jitter repeat from run to run.
    seed_everything(SEED)
    torch.backends.cudnn.deterministic = True
    device = torch.device(train_config["device"] if torch.cuda.is_available() else "cpu")
    train_set, val_set = build_datasets(train_config)
    model = build_model(model_name, train_config, device)
    checkpoint = load_pretrained(model, train_config, device) if train_config["load_pre_trained_model"] else None
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    start_epoch = 0
    if checkpoint is not None and train_config.get("resume_training_state", False):
        optimizer.load_state_dict(checkpoint["optimizer"])
        start_epoch = checkpoint["epoch"] + 1
    dataloaders = make_dataloaders(train_set, val_set, train_config)
    with torch.autograd.set_detect_anomaly(train_config.get("detect_anomaly", True)):
        return train_model(
            model, optimizer, dataloaders, device, train_config["num_epoch"], train_config, start_epoch=start_epoch
        )
