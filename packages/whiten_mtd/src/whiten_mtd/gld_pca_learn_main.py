"""`gld_pca_learn.py`: learn one teacher's PCA-whitening on GLDv2 train-clean images and save its state_dict.

As the original: ids from `meta/train_clean_ids.txt` (a shuffled `--num_samples` subset, or all with <= 0), random
crops (RandomResizedCrop 0.4-1, flip, ImageNet normalisation, BGR for DELG/DOLG), teacher in eval mode, descriptors
L2-normalised and gathered to rank 0 by dataset index (rows of the images `drop_last` leaves out stay zero, as in the
original), `PCA(teacher dim, --embed_dim).train_pca`, saved with the eight buffers to `--dump_to`.
Fixed: the teacher weight folder flag (`--path_to_pretrained_weights`) the original lacked; a clear error for the
missing `--imsize`; the subset is shuffled with a generator seeded 0 in every process (the original seeded only the
parent, so spawned ranks drew different unseeded subsets).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
import torchvision.transforms as T
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from kdrepro_shared.checkpoints import save
from kdrepro_shared.errors import KdReproError, exit_on_user_error
from whiten_mtd import metric, utils
from whiten_mtd.datasets.gld import TRAIN_CLEAN_IDS, GLDv2, read_image_ids
from whiten_mtd.distributed import add_distributed_args, given_on_command_line, launch, wrap_ddp
from whiten_mtd.gld_distill_main import IMAGENET_MEAN, IMAGENET_STD
from whiten_mtd.models.teachers import needs_bgr, teacher_models

SUBSET_SEED = 0

LearnPCA = Callable[[argparse.Namespace, nn.Module, torch.device], utils.PCA | None]


def get_args_parser() -> argparse.ArgumentParser:
    """Every flag of the original (names, types, defaults) plus the weight-folder flag it was missing."""
    parser = argparse.ArgumentParser(description="PCA training and saving.")
    add = parser.add_argument
    add("-t", "--teacher", default=None, type=str, metavar="ARCH", choices=list(teacher_models), help="teacher name")
    add("--imsize", default=None, type=int, help="RandomResizedCrop size (required; the released files used 512)")
    add("--num_workers", default=8, type=int, metavar="N", help="number of data loader workers")
    add_distributed_args(parser, "tcp://localhost:1234")
    utils.add_seed_arg(parser)
    add("--embed_dim", default=512, type=int, help="PCA output dimension")
    add("-b", "--batch_size", default=256, type=int, help="batch size per process")
    add("-p", default=3, type=float, help="GeM power of the teacher")
    add("--num_samples", default=10000, type=int, help="number of samples to train PCA transform (<= 0: all)")
    add("--gld_root_path", default="/path/to/gldv2", type=str, metavar="PATH", help="root of the GLDv2 dataset")
    add("--dump_to", required=True, type=str, help="dump learned pca transformer to")
    add(
        "--path_to_pretrained_weights",
        default="/path/to/pretrained_weights",
        type=str,
        metavar="DIR",
        help="[fixed] folder with the teacher weight files (the original had no such flag and crashed)",
    )
    return parser


def pca_transform(imsize: int, teacher: str) -> T.Compose:
    """RandomResizedCrop(imsize, 0.4-1) -> flip -> ToTensor -> ImageNet Normalize (-> BGR for DELG/DOLG)."""
    steps = [
        T.RandomResizedCrop(imsize, scale=(0.4, 1.0)),
        T.RandomHorizontalFlip(p=0.5),
        T.ToTensor(),
        T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ]
    if needs_bgr(teacher):
        steps.append(utils.RGB2BGR())
    return T.Compose(steps)


def validate_args(args: argparse.Namespace) -> None:
    """Reject the inputs the original crashed on, with one line each."""
    if args.teacher is None:
        raise KdReproError(f"-t/--teacher is required; choose one of: {', '.join(teacher_models)}")
    if args.imsize is None or args.imsize <= 0:
        raise KdReproError("--imsize is required (a positive crop size; the released PCA files used --imsize 512)")
    if args.batch_size <= 0 or args.embed_dim <= 0:
        raise KdReproError("--batch_size and --embed_dim must be positive integers")
    ids_path = Path(args.gld_root_path) / TRAIN_CLEAN_IDS
    if not ids_path.is_file():
        raise KdReproError(f"{ids_path} not found: --gld_root_path must hold {TRAIN_CLEAN_IDS} and train/")


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and learn the PCA-whitening in every process of the job; rank 0 writes `--dump_to`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_args_parser().parse_args(argv)
    validate_args(args)
    utils.setup_logger()
    logging.getLogger("pca training").info(vars(args))
    launch(main_worker, args, world_size_given=given_on_command_line(argv, "--world_size"))


def main_worker(args: argparse.Namespace, device: torch.device) -> None:
    """Build the teacher (DDP), extract descriptors of the sampled images, learn the PCA on rank 0 and save it."""
    learn_and_save(args, device, learn_pca_whitening)


def learn_and_save(args: argparse.Namespace, device: torch.device, learn: LearnPCA) -> None:
    """The PCA scripts' worker: teacher `-t` under DDP, `learn(args, model, device)` (a PCA on rank 0), save it."""
    torch.backends.cudnn.benchmark = True
    utils.seed_process(args.seed, args.rank)
    utils.setup_logger(log_path=None)
    logging.getLogger(f"worker {args.rank}").info(f"Using device {device}")
    teacher = teacher_models[args.teacher](args.path_to_pretrained_weights, gem_p=args.p)
    model = wrap_ddp(teacher, device)
    pca = learn(args, model, device)
    if pca is not None:
        Path(args.dump_to).parent.mkdir(parents=True, exist_ok=True)
        save(args.dump_to, pca.state_dict(), meta=False)
        logging.getLogger("pca training").info(f"saved PCA-whitening to {args.dump_to}")


def select_ids(ids: list[str], num_samples: int) -> list[str]:
    """All ids (num_samples <= 0) or the first `num_samples` of a seed-0 shuffle."""
    if num_samples <= 0:
        return ids
    shuffled = list(ids)
    random.Random(SUBSET_SEED).shuffle(shuffled)
    return shuffled[:num_samples]


@torch.no_grad()
def learn_pca_whitening(args: argparse.Namespace, model: nn.Module, device: torch.device) -> utils.PCA | None:
    """Descriptors of the selected images -> `PCA.train_pca` on rank 0 (other ranks return None)."""
    model.eval()
    logger = logging.getLogger("pca training")
    all_ids = read_image_ids(args.gld_root_path)
    logger.info(f"totally {len(all_ids)} images.")
    ids = select_ids(all_ids, args.num_samples)
    logger.info(f"select {'all' if args.num_samples <= 0 else args.num_samples} samples to train pca whitening.")
    if len(ids) < args.world_size:
        raise KdReproError(f"{len(ids)} images for {args.world_size} processes; need at least one image per process")

    dataset = GLDv2(Path(args.gld_root_path) / "train", ids, transform=pca_transform(args.imsize, args.teacher))
    sampler = DistributedSampler(dataset, num_replicas=args.world_size, rank=args.rank, shuffle=False, drop_last=True)
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        sampler=sampler,
        num_workers=args.num_workers,
        pin_memory=device.type == "cuda",
    )
    logger.info("extracting pca training features")
    features = extract_features(model, loader, device)
    if features is None:
        return None
    pca = utils.PCA(dim1=model.module.embed_dim, dim2=args.embed_dim)
    pca.train_pca(features)
    return pca


@torch.no_grad()
def extract_features(model: nn.Module, loader: DataLoader, device: torch.device) -> torch.Tensor | None:
    """L2-normalised descriptors of `loader`'s dataset, gathered to rank 0 by index (None on other ranks)."""
    rank = utils.get_rank()
    metric_logger = metric.MetricLogger(logging.getLogger("extract_feature") if rank == 0 else None, delimiter="    ")
    log_freq = len(loader) // 16 if len(loader) >= 16 else len(loader)
    features = torch.zeros(len(loader.dataset), model.module.embed_dim) if rank == 0 else None
    for _, (samples, index) in metric_logger.log_every(loader, max(log_freq, 1)):
        feats = nn.functional.normalize(model(samples.to(device, non_blocking=True)), p=2, dim=-1)
        index_all = gather_to_main(index.to(device))
        feats_all = gather_to_main(feats)
        if features is not None:
            features.index_copy_(0, index_all.cpu(), feats_all.cpu().float())
    return features


def gather_to_main(x: torch.Tensor) -> torch.Tensor | None:
    """Concatenate `x` of every rank (equal shapes) on rank 0 in rank order; None elsewhere."""
    world_size = utils.get_world_size()
    if world_size == 1:
        return x
    rank = utils.get_rank()
    parts = [torch.zeros_like(x) for _ in range(world_size)] if rank == 0 else None
    dist.gather(x, parts, dst=0)
    return torch.cat(parts, dim=0) if parts is not None else None
