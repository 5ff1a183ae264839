"""Linear probe of a frozen CIFAR-100 student on STL-10 or TinyImageNet-200 (the seed's `transfer_student.py`).

The seed overwrote --model_s/--path_s with `wrn_16_2` and `./save//wrn_16_2_last.pth` after parsing; that stays the
default here, and `--use_cli_student` (new) makes the two flags count. Its broken `dataset.*` import is fixed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn, optim
from torch.backends import cudnn

from distillers_icd_rrd.datasets import get_stl10_dataloaders, get_tiny_imagenet_dataloaders
from distillers_icd_rrd.loops import adjust_learning_rate, train_vanilla, validate
from distillers_icd_rrd.models import model_dict
from distillers_icd_rrd.script_utils import (
    MODEL_NAMES,
    SMALL_LR_MODELS,
    add_common_options,
    add_optim_options,
    get_device,
    make_run_folders,
    parse_decay_epochs,
    read_model_state,
)
from kdrepro_shared.checkpoints import save
from kdrepro_shared.errors import KdReproError, exit_on_user_error
from kdrepro_shared.logging import create_summary_writer

SEED_STUDENT = ("wrn_16_2", "./save//wrn_16_2_last.pth")


def parse_option(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the seed's flags, apply its student override unless --use_cli_student, derive names, create folders."""
    parser = argparse.ArgumentParser("PyTorch Knowledge Distillation - Transfer to STL-10/TIN-200")
    add_common_options(parser, save_freq=50, epochs=100)
    add_optim_options(parser)
    parser.add_argument("--model_s", type=str, default="resnet8", choices=MODEL_NAMES)
    parser.add_argument("--path_s", type=str, default=None, help="student model snapshot")
    parser.add_argument("--dataset", type=str, default="stl10", choices=["stl10", "tinyimagenet"], help="dataset")
    parser.add_argument("-t", "--trial", type=int, default=0, help="the experiment id")
    parser.add_argument(
        "--use_cli_student",
        action="store_true",
        help="use --model_s/--path_s (new); by default the seed's wrn_16_2 at ./save//wrn_16_2_last.pth is used",
    )
    opt = parser.parse_args(argv)

    if not opt.use_cli_student:
        opt.model_s, opt.path_s = SEED_STUDENT
    if not opt.path_s:
        raise KdReproError("--use_cli_student needs --path_s, the distilled student's checkpoint")
    if opt.model_s in SMALL_LR_MODELS:
        opt.learning_rate = 0.01
    opt.model_path = "./save/ft/models"
    opt.tb_path = "./save/ft/tensorboard"
    opt.lr_decay_epochs = parse_decay_epochs(opt.lr_decay_epochs)
    opt.model_name = f"{opt.model_s}_{opt.dataset}_lr_{opt.learning_rate}_decay_{opt.weight_decay}_trial_{opt.trial}"
    make_run_folders(opt)
    return opt


def load_student(model_path: str, n_cls: int, model_s: str) -> nn.Module:
    """Build `model_s` and load the checkpoint's `model` non-strictly, printing what did not match (as the seed)."""
    print("==> Loading student model")
    model = model_dict[model_s](num_classes=n_cls)
    print(model.load_state_dict(read_model_state(model_path), strict=False))
    print("Student model loaded")
    return model


def prepare_probe(model: nn.Module, model_s: str, n_cls: int) -> nn.Module:
    """Replace `fc` by a fresh N(0, 0.01) linear layer for `n_cls` classes and freeze every other parameter.

    BN layers stay in train mode during the probe (the seed's `model.train()`), so their running stats still move.
    """
    if not isinstance(getattr(model, "fc", None), nn.Linear):
        raise KdReproError(f"transfer needs a student with an `fc` head (resnet*, wrn_*); {model_s} has none")
    model.fc = nn.Linear(model.fc.in_features, n_cls)
    model.fc.weight.data.normal_(mean=0.0, std=0.01)
    model.fc.bias.data.zero_()
    for name, param in model.named_parameters():
        param.requires_grad = "fc" in name
    print("Model modified and all layers except the last `fc` layer are frozen.")
    return model


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Train the new `fc` on the target set for `--epochs`; save best, periodic and last checkpoints."""
    opt = parse_option(argv)
    if opt.dataset == "stl10":
        train_loader, val_loader = get_stl10_dataloaders(batch_size=opt.batch_size, num_workers=opt.num_workers)
        n_cls, label = 10, "STL10"
    else:
        train_loader, val_loader = get_tiny_imagenet_dataloaders(batch_size=opt.batch_size, num_workers=opt.num_workers)
        n_cls, label = 200, "Tiny ImageNet"
    print(f"Length of {label} training dataset: {len(train_loader.dataset)}")
    print(f"Length of {label} validation dataset: {len(val_loader.dataset)}")

    model = prepare_probe(load_student(opt.path_s, 100, opt.model_s), opt.model_s, n_cls)
    optimizer = optim.SGD(
        [p for p in model.parameters() if p.requires_grad],
        lr=opt.learning_rate,
        momentum=opt.momentum,
        weight_decay=opt.weight_decay,
    )
    criterion = nn.CrossEntropyLoss()
    device = get_device()
    model, criterion = model.to(device), criterion.to(device)
    if device.type == "cuda":
        cudnn.benchmark = True
    logger = create_summary_writer(opt.tb_folder)

    best_acc: Any = 0
    for epoch in range(1, opt.epochs + 1):
        adjust_learning_rate(epoch, opt, optimizer)
        print("==> training...")
        time1 = time.time()
        train_acc, train_loss = train_vanilla(epoch, train_loader, model, criterion, optimizer, opt)
        print(f"epoch {epoch}, total time {time.time() - time1:.2f}")
        logger.add_scalar("train_acc", train_acc, epoch)
        logger.add_scalar("train_loss", train_loss, epoch)
        test_acc, test_acc_top5, test_loss = validate(val_loader, model, criterion, opt)
        logger.add_scalar("test_acc", test_acc, epoch)
        logger.add_scalar("test_acc_top5", test_acc_top5, epoch)
        logger.add_scalar("test_loss", test_loss, epoch)
        if test_acc > best_acc:
            best_acc = test_acc
            print("saving the best model!")
            state = {"epoch": epoch, "model": model.state_dict(), "best_acc": best_acc}
            _save(opt, f"{opt.model_s}_best.pth", {**state, "optimizer": optimizer.state_dict()})
        if epoch % opt.save_freq == 0:
            print("==> Saving...")
            state = {"epoch": epoch, "model": model.state_dict(), "accuracy": test_acc}
            _save(opt, f"ckpt_epoch_{epoch}.pth", {**state, "optimizer": optimizer.state_dict()})

    print("==> Best accuracy:", best_acc)
    _save(
        opt, f"{opt.model_s}_last.pth", {"opt": opt, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
    )
    logger.close()


def _save(opt: argparse.Namespace, name: str, state: dict[str, Any]) -> None:
    """Write one of the seed's checkpoint files into the run folder, atomically and without extra keys."""
    save(Path(opt.save_folder) / name, state, meta=False)


if __name__ == "__main__":
    main()
