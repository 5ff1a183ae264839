"""Train a teacher from scratch with cross-entropy on CIFAR-100/10 (the seed's `train_teacher.py`)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn, optim
from torch.backends import cudnn

from distillers_icd_rrd.datasets import get_cifar10_dataloaders, get_cifar100_dataloaders
from distillers_icd_rrd.fast_path import (
    add_fast_path_options,
    broadcast_state,
    ddp,
    make_scaler,
    quiet_unless_main,
    runtime_loaders,
    set_loader_epoch,
    setup_runtime,
    sync_buffers,
)
from distillers_icd_rrd.loops import adjust_learning_rate, train_vanilla, validate
from distillers_icd_rrd.models import model_dict
from distillers_icd_rrd.resume import load_train_state, save_train_state
from distillers_icd_rrd.script_utils import (
    MODEL_NAMES,
    SMALL_LR_MODELS,
    add_common_options,
    add_optim_options,
    make_run_folders,
    parse_decay_epochs,
)
from kdrepro_shared.checkpoints import save
from kdrepro_shared.device import channels_last, maybe_compile
from kdrepro_shared.distributed import cleanup, is_main_process
from kdrepro_shared.errors import exit_on_user_error
from kdrepro_shared.logging import create_summary_writer


def parse_option(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the seed's flags (plus --resume), derive the run name and folders, and create the folders."""
    parser = argparse.ArgumentParser("PyTorch Knowledge Distillation - Teacher training")
    add_common_options(parser, save_freq=40, epochs=240)
    add_optim_options(parser)
    parser.add_argument("--model", type=str, default="resnet8", choices=MODEL_NAMES)
    parser.add_argument("--dataset", type=str, default="cifar100", choices=["cifar100", "cifar10"], help="dataset")
    parser.add_argument("-t", "--trial", type=int, default=0, help="the experiment id")
    parser.add_argument("--resume", action="store_true", help="continue from the run's train_state.pth (new)")
    add_fast_path_options(parser)
    opt = parser.parse_args(argv)

    if opt.model in SMALL_LR_MODELS:
        opt.learning_rate = 0.01
    opt.model_path = "./save/teacher/models"
    opt.tb_path = "./save/teacher/tensorboard"
    opt.lr_decay_epochs = parse_decay_epochs(opt.lr_decay_epochs)
    opt.model_name = f"{opt.dataset}_{opt.model}_trial_{opt.trial}"
    make_run_folders(opt)
    return opt


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Train `--model` for `--epochs` with SGD and step decay; save best, periodic and last checkpoints."""
    opt = parse_option(argv)
    setup_runtime(opt)
    try:
        with quiet_unless_main():
            _run(opt)
    finally:
        cleanup()


def _run(opt: argparse.Namespace) -> None:
    """Build the loaders and the net, then run the epoch loop (on this rank)."""
    if opt.dataset == "cifar100":
        train_loader, val_loader = get_cifar100_dataloaders(batch_size=opt.batch_size, num_workers=opt.num_workers)
        n_cls = 100
    else:
        train_loader, val_loader = get_cifar10_dataloaders(batch_size=opt.batch_size, num_workers=opt.num_workers)
        n_cls = 10
    train_loader, val_loader = runtime_loaders(opt, train_loader, val_loader)

    model = model_dict[opt.model](num_classes=n_cls)
    optimizer = optim.SGD(
        model.parameters(), lr=opt.learning_rate, momentum=opt.momentum, weight_decay=opt.weight_decay
    )
    criterion = nn.CrossEntropyLoss()
    device = torch.device(opt.device)
    model, criterion = channels_last(model.to(device), opt.channels_last), criterion.to(device)
    if device.type == "cuda":
        cudnn.benchmark = True
    broadcast_state(model)
    train_model = maybe_compile(ddp(model, opt) if opt.distributed else model, opt.compile)
    scaler = make_scaler(opt)
    logger = create_summary_writer(opt.tb_folder)

    start_epoch, best_acc, test_acc = 1, 0, None
    if opt.resume:
        start_epoch, best_acc, test_acc = load_train_state(opt.save_folder, model, optimizer)
    for epoch in range(start_epoch, opt.epochs + 1):
        adjust_learning_rate(epoch, opt, optimizer)
        set_loader_epoch(train_loader, epoch)
        print("==> Training...")
        time1 = time.time()
        train_acc, train_loss = train_vanilla(
            epoch, train_loader, train_model, criterion, optimizer, opt, scaler=scaler
        )
        sync_buffers(model)
        print(f"Epoch {epoch}, total time {time.time() - time1:.2f}")
        logger.add_scalar("train_acc", train_acc, epoch)
        logger.add_scalar("train_loss", train_loss, epoch)

        test_acc, test_acc_top5, test_loss = validate(val_loader, model, criterion, opt)
        logger.add_scalar("test_acc", test_acc, epoch)
        logger.add_scalar("test_acc_top5", test_acc_top5, epoch)
        logger.add_scalar("test_loss", test_loss, epoch)

        if test_acc > best_acc:
            best_acc = test_acc
            state = {"epoch": epoch, "model": model.state_dict(), "best_acc": best_acc}
            print("saving the best model!")
            _save(opt, f"{opt.model}_best.pth", {**state, "optimizer": optimizer.state_dict()})
        if epoch % opt.save_freq == 0:
            print("==> Saving...")
            state = {"epoch": epoch, "model": model.state_dict(), "accuracy": test_acc}
            _save(opt, f"ckpt_epoch_{epoch}.pth", {**state, "optimizer": optimizer.state_dict()})
        if is_main_process():
            save_train_state(opt, model, optimizer, epoch, best_acc=best_acc, last_acc=test_acc)

    # The README/paper numbers are the last epoch's; the best is printed for information only.
    print("==> Last-epoch accuracy:", test_acc)
    print("==> Best accuracy:", best_acc)
    _save(opt, f"{opt.model}_last.pth", {"opt": opt, "model": model.state_dict(), "optimizer": optimizer.state_dict()})
    logger.close()


def _save(opt: argparse.Namespace, name: str, state: dict[str, Any]) -> None:
    """Write one of the seed's checkpoint files into the run folder (rank 0 only), atomically, without extra keys."""
    if is_main_process():
        save(Path(opt.save_folder) / name, state, meta=False)


if __name__ == "__main__":
    main()
