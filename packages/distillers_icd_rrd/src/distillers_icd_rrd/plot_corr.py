"""Heat-map of teacher-minus-student correlation of test logits (the seed's `plot_corr.py`).

Deviation: the seed moved batches with an unconditional `.cuda()`; here they go to CUDA only when it exists.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from distillers_icd_rrd.datasets import get_cifar10_dataloaders, get_cifar100_dataloaders
from distillers_icd_rrd.loops import validate
from distillers_icd_rrd.models import model_dict
from distillers_icd_rrd.script_utils import MODEL_NAMES, get_device, load_model_state, read_model_state
from distillers_icd_rrd.train_student import load_teacher
from kdrepro_shared.errors import KdReproError, exit_on_user_error

MULTIPLE_BATCHES = 30


def parse_option(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the seed's flags."""
    parser = argparse.ArgumentParser("PyTorch Knowledge Distillation - Correlation visualization")
    parser.add_argument("--print_freq", type=int, default=100, help="print frequency")
    parser.add_argument("--eval", action="store_true", help="evaluate student and teacher")
    parser.add_argument("--filename", type=str, default="fig", help="name of figure")
    parser.add_argument("--plot_multiple", action="store_true", help="plot multiple images")
    parser.add_argument("--dataset", type=str, default="cifar100", choices=["cifar100"], help="dataset")
    parser.add_argument("--model_s", type=str, default="resnet8", choices=MODEL_NAMES)
    parser.add_argument("--path_s", type=str, default=None, help="student model snapshot")
    parser.add_argument("--path_t", type=str, default=None, help="teacher model snapshot")
    return parser.parse_args(argv)


def load_student(model_path: str | None, n_cls: int, model_s: str) -> nn.Module:
    """Build `model_s` and load the checkpoint's `model` strictly."""
    print("==> Loading student model")
    if not model_path:
        raise KdReproError("--path_s is required: the student checkpoint")
    model = model_dict[model_s](num_classes=n_cls)
    load_model_state(model, read_model_state(model_path), model_path, f"{model_s} with {n_cls} classes")
    print("Student model loaded")
    return model


def correlation_matrix_norm(logits: torch.Tensor) -> torch.Tensor:
    """(Zᵀ Z)/N for logits centred per class column and divided by that column's unbiased std."""
    logits_centered = logits - logits.mean(dim=0)
    logits_normalized = logits_centered / logits_centered.std(dim=0, keepdim=True)
    return torch.mm(logits_normalized.T, logits_normalized) / logits.size(0)


def plot_difference(corr_t: np.ndarray, corr_s: np.ndarray, filename: str = "fig") -> None:
    """Save `corr_t − corr_s` as a PuOr heat-map to `{filename}.png` (dpi 300, ticks every 4)."""
    plt.figure(figsize=(10, 8))
    im = plt.imshow(corr_t - corr_s, cmap="PuOr")
    plt.colorbar(im)
    plt.xticks(np.arange(0, 100, 4))
    plt.yticks(np.arange(0, 100, 4))
    plt.grid(False)
    plt.savefig(f"{filename}.png", dpi=300, format="png", bbox_inches="tight")
    plt.close()


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Plot the first test batch (or, with --plot_multiple, the first 30) of 256 images."""
    opt = parse_option(argv)
    loaders = {"cifar100": (get_cifar100_dataloaders, 100), "cifar10": (get_cifar10_dataloaders, 10)}
    get_loaders, n_cls = loaders[opt.dataset]
    _, val_loader = get_loaders(batch_size=256, num_workers=8, is_instance=False)
    device = get_device()
    model_t = load_teacher(opt.path_t, n_cls).to(device).eval()
    model_s = load_student(opt.path_s, n_cls, opt.model_s).to(device).eval()
    if opt.eval:
        teacher_acc, _, _ = validate(val_loader, model_t, nn.CrossEntropyLoss(), opt)
        print(f"Teacher accuracy: {teacher_acc.item()}%")
        student_acc, _, _ = validate(val_loader, model_s, nn.CrossEntropyLoss(), opt)
        print(f"Student accuracy: {student_acc.item()}%")
    n_batches = MULTIPLE_BATCHES if opt.plot_multiple else 1
    for i, (data, _) in enumerate(val_loader):
        if i >= n_batches:
            break
        with torch.no_grad():
            corr_t = correlation_matrix_norm(model_t(data.to(device), is_feat=True)[1]).cpu().numpy()
            corr_s = correlation_matrix_norm(model_s(data.to(device), is_feat=True)[1]).cpu().numpy()
        if opt.plot_multiple:
            plot_difference(corr_t, corr_s, f"{opt.filename}_{i + 1}")
        else:
            print(f"Difference: Max: {(corr_t - corr_s).max()}, Min: {(corr_t - corr_s).min()}")
            plot_difference(corr_t, corr_s, opt.filename)


if __name__ == "__main__":
    main()
