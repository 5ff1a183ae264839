"""The shared package's demo: the embedded digits dataset through the CIFAR-100 data path, and a resumable run.

It writes scikit-learn's digits in the CIFAR-100 pickle layout, reads them back with the CIFAR-100 reader and the
standard CIFAR augmentation, trains a linear classifier for a few epochs (seeded, logged to TensorBoard, checkpointed
atomically, resumed once from its train state) and prints the paper-style table of what it saw and reached.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

from kdrepro_shared.checkpoints import capture_train_state, load, restore_train_state, save
from kdrepro_shared.data import CIFAR100, DIGITS_CLASSES, write_digits_cifar100
from kdrepro_shared.errors import exit_on_user_error
from kdrepro_shared.logging import MetricLogger, create_summary_writer, save_args_yaml
from kdrepro_shared.paths import kdrepro_home
from kdrepro_shared.seed import make_generator, seed_everything, seed_worker

CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; the defaults run in well under a minute on two CPU cores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=None, help="where to write the digits (default: cache)")
    parser.add_argument("--output-dir", type=Path, default=Path("output/shared_demo"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build_loaders(root: Path, batch_size: int, seed: int) -> tuple[DataLoader, DataLoader]:
    """Train/test loaders over the digits with RepDistiller's CIFAR-100 transforms."""
    normalize = transforms.Normalize(CIFAR100_MEAN, CIFAR100_STD)
    train_tf = transforms.Compose(
        [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(), normalize]
    )
    test_tf = transforms.Compose([transforms.ToTensor(), normalize])
    train = CIFAR100(root, train=True, transform=train_tf)
    test = CIFAR100(root, train=False, transform=test_tf)
    common = {"batch_size": batch_size, "num_workers": 0, "worker_init_fn": seed_worker}
    return DataLoader(train, shuffle=True, generator=make_generator(seed), **common), DataLoader(test, **common)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, header: str) -> float:
    """One epoch of cross-entropy training; returns the mean loss."""
    model.train()
    logger = MetricLogger()
    for images, targets in logger.log_every(loader, print_freq=10, header=header):
        loss = nn.functional.cross_entropy(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        logger.update(loss=loss.item())
    return logger.meters["loss"].global_avg


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader) -> float:
    """Top-1 accuracy (%) over the whole loader."""
    model.eval()
    correct = sum((model(images).argmax(1) == targets).sum().item() for images, targets in loader)
    return 100.0 * correct / len(loader.dataset)


def dataset_rows(root: Path) -> list[tuple[str, int, int, str]]:
    """(split, images, classes, images per class min–max) for both splits, read back through the reader."""
    rows = []
    for split, train in (("train", True), ("test", False)):
        targets = torch.tensor(CIFAR100(root, train=train).targets)
        counts = torch.bincount(targets)
        rows.append((split, len(targets), int((counts > 0).sum()), f"{counts.min().item()}–{counts.max().item()}"))
    return rows


def print_tables(root: Path, history: list[tuple[int, float, float]]) -> None:
    """The dataset table and the training table, in markdown."""
    print(f"\nDigits in the CIFAR-100 layout at {root}\n")
    print("| split | images | classes | per class |\n| --- | --- | --- | --- |")
    for split, n, classes, per_class in dataset_rows(root):
        print(f"| {split} | {n} | {classes} | {per_class} |")
    print("\nLinear classifier, resumed from its checkpoint halfway\n")
    print("| epoch | train loss | test top-1 (%) |\n| --- | --- | --- |")
    for epoch, loss, acc in history:
        print(f"| {epoch} | {loss:.4f} | {acc:.2f} |")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    """Write the data, train half the epochs, save, restore from the checkpoint, finish, print the tables."""
    args = parse_args(argv)
    seed_everything(args.seed)
    root = args.data_root or kdrepro_home() / "data" / "digits"
    write_digits_cifar100(root)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    save_args_yaml(args, args.output_dir)
    train_loader, test_loader = build_loaders(root, args.batch_size, args.seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, len(DIGITS_CLASSES)))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    writer = create_summary_writer(args.output_dir / "tensorboard")
    ckpt = args.output_dir / "train_state.pth"
    history = []
    for epoch in range(args.epochs):
        if epoch == args.epochs // 2:  # stop and resume halfway, as an interrupted run would
            save(ckpt, capture_train_state(model=model, optimizer=optimizer, epoch=epoch), args=args)
            restore_train_state(load(ckpt), model=model, optimizer=optimizer)
        loss = train_epoch(model, train_loader, optimizer, header=f"epoch {epoch}")
        acc = evaluate(model, test_loader)
        writer.add_scalar("train/loss", loss, epoch)
        writer.add_scalar("test/acc", acc, epoch)
        history.append((epoch, loss, acc))
    writer.close()
    print_tables(root, history)


if __name__ == "__main__":
    main()
