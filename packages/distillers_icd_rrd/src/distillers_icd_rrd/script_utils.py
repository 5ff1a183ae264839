"""What the entry scripts share: the seed's model choices, run folders, the device, and checked checkpoint loading."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdrepro_shared.checkpoints import load
from kdrepro_shared.errors import CheckpointError, KdReproError

# The seed's argparse choices for --model / --model_s, in its order (the keys of `models.model_dict`).
MODEL_NAMES = (
    "resnet8",
    "resnet14",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet8x4",
    "resnet32x4",
    "wrn_16_1",
    "wrn_16_2",
    "wrn_40_1",
    "wrn_40_2",
    "vgg8",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "ResNet50",
    "MobileNetV2",
    "ShuffleV1",
    "ShuffleV2",
)
# The seed trains these with lr 0.01 whatever --learning_rate says.
SMALL_LR_MODELS = ("MobileNetV2", "ShuffleV1", "ShuffleV2")
LAST_CKPT_KIND = "distillers/RepDistiller *_last.pth (holds argparse.Namespace)"
_LISTED_KEYS = 5


def add_common_options(parser: argparse.ArgumentParser, save_freq: int, epochs: int) -> None:
    """Add the frequency, loader and SGD/step-decay flags every training script of the seed has."""
    parser.add_argument("--print_freq", type=int, default=100, help="print frequency")
    parser.add_argument("--tb_freq", type=int, default=500, help="tb frequency")
    parser.add_argument("--save_freq", type=int, default=save_freq, help="save frequency")
    parser.add_argument("--batch_size", type=int, default=64, help="batch_size")
    parser.add_argument("--num_workers", type=int, default=8, help="num of workers to use")
    parser.add_argument("--epochs", type=int, default=epochs, help="number of training epochs")


def add_optim_options(parser: argparse.ArgumentParser) -> None:
    """Add the seed's SGD and step-decay flags."""
    parser.add_argument("--learning_rate", type=float, default=0.05, help="learning rate")
    parser.add_argument("--lr_decay_epochs", type=str, default="150,180,210", help="where to decay lr, can be a list")
    parser.add_argument("--lr_decay_rate", type=float, default=0.1, help="decay rate for learning rate")
    parser.add_argument("--weight_decay", type=float, default=5e-4, help="weight decay")
    parser.add_argument("--momentum", type=float, default=0.9, help="momentum")


def parse_decay_epochs(text: str) -> list[int]:
    """'150,180,210' → [150, 180, 210]; a bad entry is a one-line error."""
    try:
        return [int(it) for it in text.split(",")]
    except ValueError:
        raise KdReproError(f"--lr_decay_epochs must be comma-separated integers, got {text!r}") from None


def make_run_folders(opt: argparse.Namespace) -> None:
    """Set `tb_folder` and `save_folder` from the paths and run name, and create both now, as the seed does."""
    opt.tb_folder = os.path.join(opt.tb_path, opt.model_name)  # noqa: PTH118 (the seed's strings, kept in opt)
    opt.save_folder = os.path.join(opt.model_path, opt.model_name)  # noqa: PTH118
    Path(opt.tb_folder).mkdir(parents=True, exist_ok=True)
    Path(opt.save_folder).mkdir(parents=True, exist_ok=True)


def get_device() -> torch.device:
    """CUDA when available, else CPU (the seed's `if torch.cuda.is_available(): .cuda()`)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def get_teacher_name(model_path: str | None) -> str:
    """The teacher arch from the checkpoint's folder: its first `_` segment, or the first three for `wrn_*`."""
    if not model_path:
        raise KdReproError("--path_t is required: the teacher checkpoint, e.g. ./save/models/resnet32x4_vanilla/...")
    folder = Path(model_path).parent.name
    segments = folder.split("_")
    name = "_".join(segments[:3]) if segments[0] == "wrn" else segments[0]
    if name not in MODEL_NAMES:
        raise KdReproError(
            f"teacher path {model_path}: its folder {folder!r} does not start with a model name (parsed {name!r}); "
            f"rename the folder to '<model>_vanilla' with <model> one of {', '.join(MODEL_NAMES)}"
        )
    return name


def read_model_state(path: str) -> Mapping[str, Any]:
    """The `model` state dict of a checkpoint; `*_last.pth` files pickle the run's Namespace, so they load trusted."""
    legacy = Path(path).name.endswith("_last.pth")
    ckpt = load(path, weights_only=not legacy, trusted_legacy=LAST_CKPT_KIND if legacy else None)
    if not isinstance(ckpt, Mapping) or "model" not in ckpt:
        raise CheckpointError(f"checkpoint {path} has no 'model' entry (a dict with the model's state_dict)")
    return ckpt["model"]


def load_model_state(model: nn.Module, state: Mapping[str, Any], path: str, arch: str) -> None:
    """Load `state` strictly into `model`; a mismatch names the missing, unexpected and reshaped keys in one line."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise CheckpointError(f"checkpoint {path} does not fit {arch}: {_key_mismatch(model, state)}") from None


def _key_mismatch(model: nn.Module, state: Mapping[str, Any]) -> str:
    """Describe how `state`'s keys and shapes differ from `model`'s."""
    own = model.state_dict()
    parts = []
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    reshaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", reshaped)):
        if keys:
            more = f" (+{len(keys) - _LISTED_KEYS} more)" if len(keys) > _LISTED_KEYS else ""
            parts.append(f"{label} {', '.join(keys[:_LISTED_KEYS])}{more}")
    return "; ".join(parts) or "incompatible state"
