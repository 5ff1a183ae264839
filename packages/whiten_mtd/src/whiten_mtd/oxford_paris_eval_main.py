"""`oxford_paris_eval.py`: ROxford5k / RParis6k (+R1M) evaluation of a student (`-a`) or a teacher (`-t`).

As the original: batch-1 images at full resolution (ImageNet normalisation, BGR for DELG/DOLG), optional multi-scale
(1, 1/sqrt2, 1/2) averaging of L2-normalised descriptors, features gathered to rank 0 by index, L2 again, dense
ranking and revisitop's mAP / mP@[1,5,10] for Medium and Hard (Easy is logged on an extra line). Queries are NOT
cropped unless `--crop_query` is given. With `--plus1m` the search runs on faiss (exact flat inner product).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torchvision.transforms as T
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from kdrepro_shared.distributed import barrier, get_rank, get_world_size, is_dist_avail_and_initialized
from kdrepro_shared.errors import KdReproError, exit_on_user_error
from whiten_mtd import metric, utils
from whiten_mtd.datasets import oxford_paris
from whiten_mtd.distributed import add_distributed_args, given_on_command_line, launch
from whiten_mtd.models.distill_model import archs, load_student_checkpoint
from whiten_mtd.models.pca_layer import pca_layers
from whiten_mtd.models.teachers import build_teacher, needs_bgr, teacher_models

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SCALES = (1.0, 1 / 2 ** (1 / 2), 1 / 2)
FAISS_MIN_DATABASE = 100_000


def get_args_parser() -> argparse.ArgumentParser:
    """The original's flags (names, types, defaults), then the opt-in extras."""
    parser = argparse.ArgumentParser(description="Evaluation on roxford5k or rparis6k.")
    add = parser.add_argument
    add("-dp", "--data_path", default="/path/to/datasets", type=str, help="folder holding roxford5k/, rparis6k/")
    add("-d", "--dataset", default="roxford5k", type=str, choices=["roxford5k", "rparis6k"], help="dataset name")
    add("-a", "--arch", default=None, type=str, metavar="ARCH", choices=list(archs), help="student architecture")
    add("-t", "--teacher", default=None, type=str, metavar="ARCH", choices=list(teacher_models), help="teacher name")
    add("--imsize", default=None, type=int, help="if set, shrink images to fit imsize x imsize first")
    add("--num_workers", default=8, type=int, metavar="N", help="number of data loader workers")
    add_distributed_args(parser, "tcp://localhost:2023")
    add("-r", "--resume", default=None, type=str, metavar="DIR", help="student checkpoint to evaluate")
    add(
        "--path_to_pretrained_weights",
        default="/path/to/pretrained_weights",
        type=str,
        metavar="DIR",
        help="folder with the teacher weights and pca_weights/",
    )
    add("-ms", "--multiscale", action="store_true", help="multi-scale descriptors (scales 1, 1/sqrt2, 1/2)")
    add("--embed_dim", default=512, type=int, help="student / PCA output dimension")
    add("-p", default=3, type=float, help="GeM power of the student or teacher")
    add("--plus1m", action="store_true", help="add the R1M distractors (<data_path>/revisitop1m/)")
    add("--pca", action="store_true", help="apply the teacher's PCA-whitening layer")
    add("--crop_query", action="store_true", help="[opt-in] crop queries to their bbx (standard revisitop protocol)")
    add(
        "--search",
        default="auto",
        choices=["auto", "torch", "faiss"],
        help="[opt-in] ranking backend; auto = faiss for databases of 100k+ images (R1M), else dense torch",
    )
    return parser


def build_model(args: argparse.Namespace) -> tuple[nn.Module, nn.Module | None, int]:
    """The evaluated model, the optional teacher PCA layer, and the descriptor width."""
    if args.arch is not None and args.teacher is not None:
        raise KdReproError("-a/--arch and -t/--teacher are mutually exclusive; give one of them")
    if args.arch is None and args.teacher is None:
        raise KdReproError("nothing to evaluate: give a student with -a ARCH [-r CKPT] or a teacher with -t NAME")
    if args.arch is not None:
        if args.resume is not None:
            model = load_student_checkpoint(args.resume, args.arch, args.embed_dim, args.p)
        else:
            from whiten_mtd.models.distill_model import build_student  # noqa: PLC0415

            model = build_student(args.arch, args.embed_dim, args.p)
        return model, None, model.embed_dim
    model = build_teacher(args.teacher, args.path_to_pretrained_weights, gem_p=args.p)
    if args.pca:
        pca = pca_layers[args.teacher](args.path_to_pretrained_weights, embed_dim=args.embed_dim)
        return model, pca, int(pca.dim2)
    return model, None, model.embed_dim


def build_transform(teacher: str | None) -> T.Compose:
    """ToTensor -> ImageNet Normalize (-> RGB2BGR for DELG/DOLG); no resizing."""
    steps: list[Any] = [T.ToTensor(), T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)]
    if teacher is not None and needs_bgr(teacher):
        steps.append(utils.RGB2BGR())
    return T.Compose(steps)


def multiscale_feature(samples: torch.Tensor, model: nn.Module, pca_wtn: nn.Module | None = None) -> torch.Tensor:
    """Mean over scales 1, 1/sqrt2, 1/2 of L2-normalised descriptors (whitened and re-normalised with a PCA layer).

    Down-scaling is bilinear `interpolate(scale_factor=s)` on the normalised tensor, without antialiasing.
    """
    total = None
    for scale in SCALES:
        inputs = samples
        if scale != 1:
            inputs = nn.functional.interpolate(samples, scale_factor=scale, mode="bilinear", align_corners=False)
        feats = nn.functional.normalize(model(inputs), p=2, dim=-1)
        if pca_wtn is not None:
            feats = nn.functional.normalize(pca_wtn(feats), p=2, dim=-1)
        total = feats if total is None else total + feats
    return total / len(SCALES)


def single_scale_feature(samples: torch.Tensor, model: nn.Module, pca_wtn: nn.Module | None = None) -> torch.Tensor:
    """model(x), or PCA(L2(model(x))) with a PCA layer (not re-normalised here; rank 0 normalises later)."""
    feats = model(samples)
    if pca_wtn is not None:
        feats = pca_wtn(nn.functional.normalize(feats, p=2, dim=-1))
    return feats


def gather_to_main(x: torch.Tensor) -> torch.Tensor | None:
    """Concatenate every rank's equally shaped `x` on rank 0 (rank order); None elsewhere."""
    if not is_dist_avail_and_initialized():
        return x
    rank = get_rank()
    parts = [torch.zeros_like(x) for _ in range(get_world_size())] if rank == 0 else None
    dist.gather(x, parts, dst=0)
    return torch.cat(parts, dim=0) if rank == 0 else None


@torch.no_grad()
def extract_features(
    model: nn.Module,
    loader: DataLoader,
    dim: int,
    device: torch.device,
    *,
    pca_wtn: nn.Module | None = None,
    multiscale: bool = False,
) -> torch.Tensor | None:
    """Descriptors of the loader's whole dataset on rank 0, row i = item i (None on other ranks)."""
    rank = get_rank()
    logger = logging.getLogger("extract_feature") if rank == 0 else None
    metric_logger = metric.MetricLogger(logger, delimiter="    ")
    log_freq = len(loader) // 16 if len(loader) >= 16 else len(loader)
    features = torch.zeros(len(loader.dataset), dim) if rank == 0 else None
    describe = multiscale_feature if multiscale else single_scale_feature
    for _, (samples, index) in metric_logger.log_every(loader, log_freq):
        feats = describe(samples.to(device, non_blocking=True), model, pca_wtn=pca_wtn)
        index_all = gather_to_main(index.to(device))
        feats_all = gather_to_main(feats)
        if rank == 0:
            features.index_copy_(0, index_all.cpu(), feats_all.float().cpu())
    return features


def _loader(dataset: torch.utils.data.Dataset, args: argparse.Namespace) -> DataLoader:
    """Batch-1, unshuffled, padded distributed split (padding duplicates rewrite the same rows)."""
    sampler = DistributedSampler(
        dataset, num_replicas=get_world_size(), rank=get_rank(), shuffle=False, drop_last=False
    )
    pin = torch.cuda.is_available()
    return DataLoader(dataset, batch_size=1, sampler=sampler, pin_memory=pin, num_workers=args.num_workers)


def rank_and_score(
    query: torch.Tensor, database: torch.Tensor, gnd: Sequence[dict[str, Any]], backend: str = "torch"
) -> dict[str, tuple[float, np.ndarray]]:
    """L2-normalise, rank the database for every query and return revisitop's E/M/H (mAP, mP@[1,5,10])."""
    query = nn.functional.normalize(query, dim=1, p=2)
    database = nn.functional.normalize(database, dim=1, p=2)
    ranks = oxford_paris.rank_database(database, query, backend=backend)
    return oxford_paris.evaluate_ranks(ranks, gnd, oxford_paris.KAPPAS)


def format_results(dataset: str, results: dict[str, tuple[float, np.ndarray]]) -> list[str]:
    """The original's two M/H lines, then the Easy line."""
    kappas = np.array(oxford_paris.KAPPAS)

    def pct(value: Any) -> Any:
        return np.around(np.asarray(value) * 100, decimals=2)

    (map_e, pr_e), (map_m, pr_m), (map_h, pr_h) = (results[s] for s in oxford_paris.SETUPS)
    return [
        f">> {dataset}: mAP M: {pct(map_m)}, H: {pct(map_h)}",
        f">> {dataset}: mP@k{kappas} M: {pct(pr_m)}, H: {pct(pr_h)}",
        f">> {dataset}: mAP E: {pct(map_e)}, mP@k{kappas} E: {pct(pr_e)}",
    ]


def evaluate(args: argparse.Namespace, device: torch.device) -> dict[str, tuple[float, np.ndarray]] | None:
    """Extract, gather, rank and score; the E/M/H results on rank 0, None on the other ranks."""
    logger = logging.getLogger("image retrieval")
    model, pca_wtn, dim = build_model(args)
    model.to(device).eval()
    if pca_wtn is not None:
        pca_wtn.to(device)
    transform = build_transform(args.teacher)

    def dataset(name: str, split: str) -> oxford_paris.OxfordParisDataset:
        crop = args.crop_query and split == "query"
        return oxford_paris.OxfordParisDataset(args.data_path, name, split, transform, args.imsize, crop_query=crop)

    splits = {"query": dataset(args.dataset, "query"), "database": dataset(args.dataset, "database")}
    if args.plus1m:
        splits["distractor"] = dataset("revisitop1m", "distractor")
    feats = {}
    for split, data in splits.items():
        logger.info(f"{split}: {len(data)} imgs")
        feats[split] = extract_features(
            model, _loader(data, args), dim, device, pca_wtn=pca_wtn, multiscale=args.multiscale
        )
    results = None
    if get_rank() == 0:
        database = feats["database"]
        if args.plus1m:
            distractors = nn.functional.normalize(feats["distractor"], dim=1, p=2)
            database = torch.cat([nn.functional.normalize(database, dim=1, p=2), distractors], dim=0)
        backend = args.search
        if backend == "auto":
            backend = "faiss" if database.shape[0] >= FAISS_MIN_DATABASE else "torch"
        results = rank_and_score(feats["query"], database, splits["database"].cfg["gnd"], backend)
        for line in format_results(args.dataset, results):
            logger.info(line)
    barrier()
    return results


def main_worker(args: argparse.Namespace, device: torch.device) -> None:
    """One evaluation process; rank 0 keeps the results in `args.results`."""
    utils.setup_logger()
    args.results = evaluate(args, device)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> dict[str, tuple[float, np.ndarray]] | None:
    """Parse flags and evaluate (one process, torchrun, or spawned per GPU); the results when rank 0 ran here."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_args_parser().parse_args(argv)
    utils.setup_logger()
    logging.getLogger("image retrieval").info(vars(args))
    launch(main_worker, args, world_size_given=given_on_command_line(argv, "--world_size"))
    return getattr(args, "results", None)


if __name__ == "__main__":
    main()
