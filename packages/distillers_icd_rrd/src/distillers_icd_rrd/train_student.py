"""Distil a student from a frozen CIFAR teacher: γ·CE + α·KD + β·L_method (the seed's `train_student.py`)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn, optim
from torch.backends import cudnn
from torch.utils.data import DataLoader

from distillers_icd_rrd.datasets import (
    get_cifar10_dataloaders,
    get_cifar10_dataloaders_sample,
    get_cifar100_dataloaders,
    get_cifar100_dataloaders_sample,
)
from distillers_icd_rrd.distillers import (
    FSP,
    KDSVD,
    PKT,
    ABLoss,
    Attention,
    Correlation,
    CRDLoss,
    DistillKL,
    FactorTransfer,
    HintLoss,
    ICDLoss,
    NSTLoss,
    RKDLoss,
    RRDLoss,
    Similarity,
    VIDLoss,
)
from distillers_icd_rrd.distillers.registry import get_distiller_names
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
from distillers_icd_rrd.loops import adjust_learning_rate, train_distill, validate
from distillers_icd_rrd.models import model_dict
from distillers_icd_rrd.models.util import Connector, ConvReg, LinearEmbed, Paraphraser, Translator
from distillers_icd_rrd.pretrain import init
from distillers_icd_rrd.resume import load_train_state, save_train_state
from distillers_icd_rrd.script_utils import (
    MODEL_NAMES,
    SMALL_LR_MODELS,
    add_common_options,
    add_optim_options,
    get_teacher_name,
    load_model_state,
    make_run_folders,
    parse_decay_epochs,
    read_model_state,
)
from kdrepro_shared.checkpoints import save
from kdrepro_shared.device import channels_last, maybe_compile
from kdrepro_shared.distributed import cleanup, is_main_process
from kdrepro_shared.errors import KdReproError, exit_on_user_error
from kdrepro_shared.logging import create_summary_writer

DISTILL_METHODS = (
    "kd",
    "hint",
    "attention",
    "similarity",
    "correlation",
    "vid",
    "crd",
    "kdsvd",
    "fsp",
    "rkd",
    "pkt",
    "abound",
    "factor",
    "nst",
    "icd",
    "rrd",
)
# The weights of scripts/run_cifar_distill.sh (resnet32x4 → resnet8x4), quoted when -a/-b are missing.
SCRIPT_WEIGHTS = "kd -r 0.1 -a 0.9 -b 0, icd/rrd -a 0 -b 1 (+KD: -a 1 -b 1), crd -a 0 -b 0.8"
RunInit = Callable[[nn.ModuleList, nn.Module], None]


def parse_option(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the seed's flags (plus --resume); derive model_t, the run name and the folders, and create the folders."""
    parser = argparse.ArgumentParser("PyTorch Knowledge Distillation - Student training")
    add_common_options(parser, save_freq=40, epochs=240)
    parser.add_argument("--init_epochs", type=int, default=30, help="init training for two-stage methods")
    add_optim_options(parser)
    parser.add_argument("--dataset", type=str, default="cifar100", choices=["cifar100", "cifar10"], help="dataset")
    parser.add_argument("--model_s", type=str, default="resnet8", choices=MODEL_NAMES)
    parser.add_argument("--path_t", type=str, default=None, help="teacher model snapshot")
    parser.add_argument("--distill", type=str, default="kd", choices=DISTILL_METHODS)
    parser.add_argument("--trial", type=str, default="1", help="trial id")
    parser.add_argument("-r", "--gamma", type=float, default=1, help="weight for classification")
    parser.add_argument("-a", "--alpha", type=float, default=None, help="weight balance for KD")
    parser.add_argument("-b", "--beta", type=float, default=None, help="weight balance for other losses")
    parser.add_argument("--kd_T", type=float, default=4, help="temperature for KD distillation")
    parser.add_argument("--feat_dim", default=128, type=int, help="feature dimension")
    parser.add_argument("--nce_k", default=16384, type=int, help="number of negative samples for NCE")
    parser.add_argument("--nce_t_s", default=0.04, type=float, help="temperature parameter for softmax")
    parser.add_argument("--nce_t_t", default=0.10, type=float, help="temperature parameter for softmax")
    parser.add_argument("--nce_t", default=0.07, type=float, help="temperature parameter for softmax")
    parser.add_argument("--nce_m", default=0.5, type=float, help="momentum for non-parametric updates")
    parser.add_argument("--mode", default="exact", type=str, choices=["exact", "relax"])
    parser.add_argument("--hint_layer", default=2, type=int, choices=[0, 1, 2, 3, 4])
    parser.add_argument("--resume", action="store_true", help="continue from the run's train_state.pth (new)")
    add_fast_path_options(parser)
    opt = parser.parse_args(argv)

    # The seed keeps -a/-b at None and crashes on `None * loss` at the first iteration. Every command of its README
    # and scripts passes both, with method-specific values, so no single default is implied: ask for them instead.
    if opt.alpha is None or opt.beta is None:
        raise KdReproError(
            f"-a/--alpha and -b/--beta are required (the weights of KD and of the method), e.g. {SCRIPT_WEIGHTS}"
        )
    if opt.model_s in SMALL_LR_MODELS:
        opt.learning_rate = 0.01
    opt.model_path = "./save/student/student_model"
    opt.tb_path = "./save/student/student_tensorboards"
    opt.lr_decay_epochs = parse_decay_epochs(opt.lr_decay_epochs)
    opt.model_t = get_teacher_name(opt.path_t)
    opt.model_name = (
        f"{opt.distill.upper()}_{opt.dataset}_S_{opt.model_s}_T_{opt.model_t}_r_{opt.gamma}_a_{opt.alpha}_b_{opt.beta}"
        f"_trial_{opt.trial}"
    )
    make_run_folders(opt)
    return opt


def load_teacher(model_path: str, n_cls: int) -> nn.Module:
    """Build the arch named by the checkpoint's folder and load its `model` state strictly (on CPU)."""
    print("==> Loading teacher model")
    arch = get_teacher_name(model_path)
    model = model_dict[arch](num_classes=n_cls)
    load_model_state(model, read_model_state(model_path), model_path, f"{arch} with {n_cls} classes")
    print("Teacher model loaded")
    return model


def get_loaders(opt: argparse.Namespace) -> tuple[DataLoader, DataLoader, int, int]:
    """(train, test, n_data, n_cls): CRD's sampling loader for crd, the instance loader for every other method."""
    if opt.distill == "crd":
        get_sample = get_cifar100_dataloaders_sample if opt.dataset == "cifar100" else get_cifar10_dataloaders_sample
        train_loader, val_loader, n_data = get_sample(
            batch_size=opt.batch_size, num_workers=opt.num_workers, k=opt.nce_k, mode=opt.mode
        )
    else:
        get_instance = get_cifar100_dataloaders if opt.dataset == "cifar100" else get_cifar10_dataloaders
        train_loader, val_loader, n_data = get_instance(
            batch_size=opt.batch_size, num_workers=opt.num_workers, is_instance=True
        )
    return train_loader, val_loader, n_data, 100 if opt.dataset == "cifar100" else 10


def build_method(  # noqa: PLR0911 (one return per method family)
    opt: argparse.Namespace,
    nets: tuple[nn.Module, nn.Module],
    feats: tuple[list[torch.Tensor], list[torch.Tensor]],
    n_data: int,
    run_init: RunInit,
) -> tuple[nn.Module, list[nn.Module], list[nn.Module]]:
    """The method's criterion, the modules it appends to module_list and those it trains, in the seed's order."""
    model_s, _ = nets
    feat_s, feat_t = feats
    method = opt.distill
    if method == "kd":
        return DistillKL(opt.kd_T), [], []
    if method == "hint":
        regress_s = ConvReg(feat_s[opt.hint_layer].shape, feat_t[opt.hint_layer].shape)
        return HintLoss(), [regress_s], [regress_s]
    if method in ("crd", "rrd", "icd"):
        opt.s_dim, opt.t_dim = feat_s[-1].shape[1], feat_t[-1].shape[1]
        if method == "crd":
            opt.n_data = n_data
        criterion = {"crd": CRDLoss, "rrd": RRDLoss, "icd": ICDLoss}[method](opt)
        heads = [criterion.embed_s, criterion.embed_t] + ([criterion.params] if method == "icd" else [])
        return criterion, heads, heads
    simple = {"attention": Attention, "nst": NSTLoss, "similarity": Similarity, "rkd": RKDLoss, "pkt": PKT}
    if method in simple or method == "kdsvd":
        return (KDSVD() if method == "kdsvd" else simple[method]()), [], []
    if method == "correlation":
        embed_s = LinearEmbed(feat_s[-1].shape[1], opt.feat_dim)
        embed_t = LinearEmbed(feat_t[-1].shape[1], opt.feat_dim)
        return Correlation(), [embed_s, embed_t], [embed_s, embed_t]
    if method == "vid":
        criterion = nn.ModuleList(
            [
                VIDLoss(f_s.shape[1], f_t.shape[1], f_t.shape[1])
                for f_s, f_t in zip(feat_s[1:-1], feat_t[1:-1], strict=False)
            ]
        )
        return criterion, [], [criterion]
    return _build_two_stage(opt, model_s, feats, run_init)


def _build_two_stage(
    opt: argparse.Namespace, model_s: nn.Module, feats: tuple[list[torch.Tensor], list[torch.Tensor]], run_init: RunInit
) -> tuple[nn.Module, list[nn.Module], list[nn.Module]]:
    """abound, factor and fsp: build their modules and run the init stage (before the optimizer exists)."""
    feat_s, feat_t = feats
    if opt.distill == "abound":
        connector = Connector([f.shape for f in feat_s[1:-1]], [f.shape for f in feat_t[1:-1]])
        criterion = ABLoss(len(feat_s[1:-1]))
        run_init(nn.ModuleList([connector, model_s.get_feat_modules()]), criterion)
        return criterion, [connector], []
    if opt.distill == "factor":
        paraphraser = Paraphraser(feat_t[-2].shape)
        translator = Translator(feat_s[-2].shape, feat_t[-2].shape)
        run_init(nn.ModuleList([paraphraser]), nn.MSELoss())
        return FactorTransfer(), [translator, paraphraser], [translator]
    if opt.distill == "fsp":
        criterion = FSP([f.shape for f in feat_s[:-1]], [f.shape for f in feat_t[:-1]])
        run_init(nn.ModuleList([model_s.get_feat_modules()]), criterion)
        return criterion, [], []
    raise KdReproError(f"unknown --distill {opt.distill!r}; valid choices: {', '.join(get_distiller_names())}")


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Distil `--model_s` from the `--path_t` teacher with `--distill`; save best, periodic and last checkpoints."""
    opt = parse_option(argv)
    setup_runtime(opt)
    try:
        with quiet_unless_main():
            _run(opt)
    finally:
        cleanup()


def _run(opt: argparse.Namespace) -> None:
    """Build the data, nets and method, validate the teacher, then train (on this rank)."""
    logger = create_summary_writer(opt.tb_folder)
    train_loader, val_loader, n_data, n_cls = get_loaders(opt)
    train_loader, val_loader = runtime_loaders(opt, train_loader, val_loader)
    model_t = load_teacher(opt.path_t, n_cls)
    model_s = model_dict[opt.model_s](num_classes=n_cls)

    # Size the heads and connectors from one random batch through both nets in eval mode.
    data = torch.randn(2, 3, 32, 32)
    model_t.eval()
    model_s.eval()
    feat_t, _ = model_t(data, is_feat=True)
    feat_s, _ = model_s(data, is_feat=True)

    def run_init(init_modules: nn.ModuleList, criterion: nn.Module) -> None:
        """The init stage, skipped on --resume: its result lives in the restored weights."""
        if not opt.resume:
            init(model_s, model_t, init_modules, criterion, train_loader, logger, opt)

    criterion_kd, extra_modules, extra_trainable = build_method(
        opt, (model_s, model_t), (feat_s, feat_t), n_data, run_init
    )
    module_list = nn.ModuleList([model_s, *extra_modules])
    trainable_list = nn.ModuleList([model_s, *extra_trainable])
    criterion_list = nn.ModuleList([nn.CrossEntropyLoss(), DistillKL(opt.kd_T), criterion_kd])
    optimizer = optim.SGD(
        trainable_list.parameters(), lr=opt.learning_rate, momentum=opt.momentum, weight_decay=opt.weight_decay
    )
    # Everything resumable: the student, the method's modules and the criteria's state (heads, queue, memory).
    run_state = nn.ModuleList([nn.ModuleList(module_list), criterion_list])
    module_list.append(model_t)  # after the optimizer, so the teacher gets no weight decay
    device = torch.device(opt.device)
    module_list.to(device)
    criterion_list.to(device)
    channels_last(module_list, opt.channels_last)
    channels_last(criterion_list, opt.channels_last)
    if device.type == "cuda":
        cudnn.benchmark = True
    broadcast_state(nn.ModuleList([module_list, criterion_list]))

    teacher_acc, _, _ = validate(val_loader, model_t, criterion_list[0], opt)
    print(f"Teacher accuracy: {teacher_acc.item()}%")
    training = wrap_for_training(opt, module_list, criterion_list, extra_trainable)
    _train(opt, (train_loader, val_loader), training, optimizer, run_state=run_state, logger=logger)
    logger.close()


def wrap_for_training(
    opt: argparse.Namespace, module_list: nn.ModuleList, criterion_list: nn.ModuleList, trainable: list[nn.Module]
) -> tuple[nn.ModuleList, nn.ModuleList]:
    """The (module_list, criterion_list) the loop calls: the student compiled and, under DDP, every trained module
    wrapped where it is called (CRD/ICD/RRD call their heads inside the criterion, VID is its own criterion)."""
    model_s, *extras, model_t = module_list
    criterion_kd = criterion_list[2]
    if opt.distributed:
        model_s = ddp(model_s, opt)
        in_criterion = opt.distill in ("crd", "icd", "rrd")
        extras = [ddp(m, opt) if m in trainable and not in_criterion else m for m in extras]
        if in_criterion:  # RRD's embed_t never gets a gradient (its output is only enqueued)
            criterion_kd = ddp(criterion_kd, opt, find_unused=opt.distill == "rrd")
        elif opt.distill == "vid":
            criterion_kd = nn.ModuleList([ddp(c, opt) for c in criterion_kd])
    model_s = maybe_compile(model_s, opt.compile)
    return nn.ModuleList([model_s, *extras, model_t]), nn.ModuleList([*criterion_list[:2], criterion_kd])


def _train(
    opt: argparse.Namespace,
    loaders: tuple[Any, DataLoader],
    training: tuple[nn.ModuleList, nn.ModuleList],
    optimizer: optim.Optimizer,
    *,
    run_state: nn.ModuleList,
    logger: Any,
) -> None:
    """The epoch loop: lr schedule, one distillation epoch, validation, checkpoints and TensorBoard scalars."""
    train_loader, val_loader = loaders
    module_list, criterion_list = training
    model_s = run_state[0][0]
    scaler = make_scaler(opt)
    start_epoch, best_acc, test_acc = 1, 0, None
    if opt.resume:
        start_epoch, best_acc, test_acc = load_train_state(opt.save_folder, run_state, optimizer)
    for epoch in range(start_epoch, opt.epochs + 1):
        adjust_learning_rate(epoch, opt, optimizer)
        set_loader_epoch(train_loader, epoch)
        print("==> Training...")
        time1 = time.time()
        train_acc, train_loss = train_distill(
            epoch, train_loader, module_list, criterion_list, optimizer, opt, scaler=scaler
        )
        sync_buffers(run_state[0])
        print(f"Epoch {epoch}, total time {time.time() - time1:.2f}")
        logger.add_scalar("train_acc", train_acc, epoch)
        logger.add_scalar("train_loss", train_loss, epoch)

        test_acc, test_acc_top5, test_loss = validate(val_loader, model_s, criterion_list[0], opt)
        logger.add_scalar("test_acc", test_acc, epoch)
        logger.add_scalar("test_loss", test_loss, epoch)
        logger.add_scalar("test_acc_top5", test_acc_top5, epoch)

        if test_acc > best_acc:
            best_acc = test_acc
            print("Saving the best model!")
            _save(opt, f"{opt.model_s}_best.pth", {"epoch": epoch, "model": model_s.state_dict(), "best_acc": best_acc})
        if epoch % opt.save_freq == 0:
            print("==> Saving...")
            _save(opt, f"ckpt_epoch_{epoch}.pth", {"epoch": epoch, "model": model_s.state_dict(), "accuracy": test_acc})
        if is_main_process():
            save_train_state(opt, run_state, optimizer, epoch, best_acc=best_acc, last_acc=test_acc)

    # The README/paper numbers are the last epoch's; the best is printed for information only.
    print("==> Last-epoch student accuracy:", test_acc)
    print("==> Best student accuracy:", best_acc)
    _save(opt, f"{opt.model_s}_last.pth", {"opt": opt, "model": model_s.state_dict()})


def _save(opt: argparse.Namespace, name: str, state: dict[str, Any]) -> None:
    """Write one of the seed's checkpoint files into the run folder (rank 0 only), atomically, without extra keys."""
    if is_main_process():
        save(Path(opt.save_folder) / name, state, meta=False)


if __name__ == "__main__":
    main()
