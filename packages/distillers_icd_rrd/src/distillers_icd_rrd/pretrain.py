"""The init stage of the two-stage methods abound, factor and fsp (RepDistiller's `helper/pretrain.py`)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import torch
from torch import nn, optim
from torch.backends import cudnn
from torch.utils.data import DataLoader

from distillers_icd_rrd.fast_path import Runtime
from distillers_icd_rrd.loops import AverageMeter
from kdrepro_shared.errors import KdReproError

# Students whose factor-transfer paraphraser is pre-trained with lr 0.01 instead of --learning_rate.
RESNET_WRN_STUDENTS = (
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
)
INIT_LINE = (
    "Epoch: [{0}/{1}]\tTime {batch_time.val:.3f} ({batch_time.avg:.3f})\tlosses: {losses.val:.3f} ({losses.avg:.3f})"
)


def init(  # noqa: PLR0917 (RepDistiller's signature)
    model_s: nn.Module,
    model_t: nn.Module,
    init_modules: nn.ModuleList,
    criterion: nn.Module,
    train_loader: DataLoader,
    logger: Any,
    opt: argparse.Namespace,
) -> None:
    """Train `init_modules` alone for `init_epochs` (SGD, constant lr) with both networks otherwise in eval mode."""
    model_t.eval()
    model_s.eval()
    init_modules.train()
    run = Runtime.of(opt)
    device = run.device
    if device.type == "cuda":
        model_s.to(device)
        model_t.to(device)
        init_modules.to(device)
        cudnn.benchmark = True
    lr = 0.01 if opt.model_s in RESNET_WRN_STUDENTS and opt.distill == "factor" else opt.learning_rate
    optimizer = optim.SGD(init_modules.parameters(), lr=lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
    batch_time, data_time, losses = AverageMeter(), AverageMeter(), AverageMeter()
    for epoch in range(1, opt.init_epochs + 1):
        batch_time.reset()
        data_time.reset()
        losses.reset()
        end = time.time()
        for data in train_loader:
            data_time.update(time.time() - end)
            inputs = run.inputs(data[0])
            loss = _init_loss(opt, (model_s, model_t), init_modules, criterion, inputs)
            losses.update(loss.item(), inputs.size(0))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            batch_time.update(time.time() - end)
            end = time.time()
        logger.add_scalar("init_train_loss", losses.avg, epoch)
        print(INIT_LINE.format(epoch, opt.init_epochs, batch_time=batch_time, losses=losses))
        sys.stdout.flush()


def _init_loss(
    opt: argparse.Namespace,
    nets: tuple[nn.Module, nn.Module],
    init_modules: nn.ModuleList,
    criterion: nn.Module,
    inputs: torch.Tensor,
) -> torch.Tensor:
    """One batch's init loss: AB on connector(student preacts), paraphraser reconstruction, or FSP."""
    model_s, model_t = nets
    preact = opt.distill == "abound"
    feat_s, _ = model_s(inputs, is_feat=True, preact=preact)
    with torch.no_grad():
        feat_t, _ = model_t(inputs, is_feat=True, preact=preact)
        feat_t = [f.detach() for f in feat_t]
    if opt.distill == "abound":
        return sum(criterion(init_modules[0](feat_s[1:-1]), feat_t[1:-1]))
    if opt.distill == "factor":
        _, f_t_rec = init_modules[0](feat_t[-2])
        return criterion(f_t_rec, feat_t[-2])
    if opt.distill == "fsp":
        return sum(criterion(feat_s[:-1], feat_t[:-1]))
    raise KdReproError(f"the init stage runs only for abound, factor and fsp, not {opt.distill!r}")
