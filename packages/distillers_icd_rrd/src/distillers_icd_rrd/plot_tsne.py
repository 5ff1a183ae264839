"""t-SNE of a model's test-set logits (the seed's `plot_tsne.py`).

Deviation: scikit-learn ≥ 1.7 renamed TSNE's `n_iter` to `max_iter`; the same 300 iterations are asked for.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.manifold import TSNE
from torch import nn
from torch.utils.data import DataLoader

from distillers_icd_rrd.datasets import get_cifar10_dataloaders, get_cifar100_dataloaders
from distillers_icd_rrd.plot_corr import load_student
from distillers_icd_rrd.script_utils import MODEL_NAMES, get_device
from kdrepro_shared.errors import exit_on_user_error


def parse_option(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the seed's flags."""
    parser = argparse.ArgumentParser("PyTorch Knowledge Distillation - t-SNE visualization")
    parser.add_argument("--dataset", type=str, default="cifar100", choices=["cifar100", "cifar10"], help="dataset")
    parser.add_argument("--model", type=str, default="resnet8", choices=MODEL_NAMES)
    parser.add_argument("--path", type=str, default=None, help="model snapshot")
    parser.add_argument("--filename", type=str, default="fig", help="name of figure")
    return parser.parse_args(argv)


def extract_features(dataloader: DataLoader, model: nn.Module, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """The eval-mode logits and labels of every batch, concatenated."""
    model.eval()
    features, labels = [], []
    start_time = time.time()
    with torch.no_grad():
        for idx, (inputs, targets) in enumerate(dataloader):
            batch_start = time.time()
            features.append(model(inputs.to(device)).cpu().numpy())
            labels.append(targets.numpy())
            if idx % 10 == 0:
                print(f"Processed batch {idx} in {time.time() - batch_start:.2f} seconds.")
    print(f"Total feature extraction time: {time.time() - start_time:.2f} seconds for {len(dataloader)} batches.")
    return np.concatenate(features, axis=0), np.concatenate(labels, axis=0)


def scatter(points: np.ndarray, labels: np.ndarray, path: str) -> None:
    """Save a tab10 scatter of the 2-d points coloured by label."""
    plt.figure(figsize=(12, 10))
    plt.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", alpha=0.6)
    plt.savefig(path, dpi=300, format="png", bbox_inches="tight")
    plt.close()


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """t-SNE of all test logits to `{filename}.png`; with more than 10 classes, also labels < 10 to `_top10.png`."""
    opt = parse_option(argv)
    get_loaders, n_cls = {"cifar100": (get_cifar100_dataloaders, 100), "cifar10": (get_cifar10_dataloaders, 10)}[
        opt.dataset
    ]
    _, val_loader = get_loaders(batch_size=256, num_workers=8, is_instance=False)
    device = get_device()
    model = load_student(opt.path, n_cls, opt.model).to(device)
    print("Extracting features from validation set...")
    features, labels = extract_features(val_loader, model, device)
    print("Computing t-SNE...")
    tsne = TSNE(n_components=2, verbose=1, perplexity=40, max_iter=300)
    scatter(tsne.fit_transform(features), labels, f"{opt.filename}.png")
    if n_cls > 10:
        print("Computing t-SNE for the first 10 classes...")
        keep = labels < 10
        scatter(tsne.fit_transform(features[keep]), labels[keep], f"{opt.filename}_top10.png")


if __name__ == "__main__":
    main()
