"""`svd_eval.py`: SVD near-duplicate video retrieval evaluation of a student (`-a`) or a teacher (`-t`).

As the original: the first `--max_frames` frames of every video (Resize 256 -> CenterCrop 224 -> ToTensor, no
Normalize), per-frame descriptors, the chosen similarity (`--sim_fn`, README: `cf`), and AP@k / AP averaged over
the test queries against their annotated candidates plus, unless `--subset_eval`, all unlabeled videos.
Fixes: `--topk` values are ints; `-t` gets `--path_to_pretrained_weights`; runs on CPU / torchrun / per-GPU spawn.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import torch
import torchvision.transforms as T
from torch import nn

from kdrepro_shared.errors import KdReproError, exit_on_user_error
from whiten_mtd import utils
from whiten_mtd.datasets.svd.core import MetaData, Video
from whiten_mtd.datasets.svd.eval import SIM_FNS, DistEvaluator
from whiten_mtd.datasets.svd.loader import DistributedTestLoader
from whiten_mtd.distributed import add_distributed_args, given_on_command_line, launch
from whiten_mtd.models.distill_model import archs, build_student, load_student_checkpoint
from whiten_mtd.models.teachers import build_teacher, teacher_models


def get_args_parser() -> argparse.ArgumentParser:
    """The original's flags (names, defaults), with `--topk` typed int and the teacher weight folder added."""
    parser = argparse.ArgumentParser(description="Knowledge Distill Evaluation on SVD dataset.")
    add = parser.add_argument
    add("-a", "--arch", default=None, type=str, metavar="ARCH", choices=list(archs), help="student architecture")
    add("-t", "--teacher", default=None, type=str, metavar="ARCH", choices=list(teacher_models), help="teacher name")
    add("-dm", "--dataset_meta", default="config/svd.yaml", type=str, metavar="FILE", help="dataset meta file")
    add("--max_frames", default=60, type=int, metavar="N", help="max number of frames per video")
    add("--stride", default=1, type=int, metavar="N", help="stride to sample frames")
    add("-b", "--batch_size", default=16, type=int, metavar="N", help="videos per test batch")
    add("--num_workers", default=8, type=int, metavar="N", help="number of data loader workers")
    add("--topk", default=[100], type=int, nargs="+", metavar="N", help="AP cut-offs (plus the full list)")
    add("--sim_fn", default="fmx", type=str, choices=list(SIM_FNS), help="similarity function (README: cf)")
    add("--subset_eval", action="store_true", help="rank only the annotated candidates (no unlabeled distractors)")
    add("-r", "--resume", default=None, type=str, metavar="DIR", help="student checkpoint to evaluate")
    add_distributed_args(parser, "tcp://localhost:1234")
    add("--embed_dim", default=512, type=int, help="embedding dimension")
    add("-p", default=1.0, type=float, help="GeM power (1 = average pooling)")
    add(
        "--path_to_pretrained_weights",
        default="/path/to/pretrained_weights",
        type=str,
        metavar="DIR",
        help="[fix] folder with the teacher weights, for -t",
    )
    return parser


def build_model(args: argparse.Namespace) -> nn.Module:
    """The student (optionally from `-r`) or the teacher, as the original built them."""
    if args.arch is not None and args.teacher is not None:
        raise KdReproError("-a/--arch and -t/--teacher are mutually exclusive; give one of them")
    if args.arch is None and args.teacher is None:
        raise KdReproError("nothing to evaluate: give a student with -a ARCH [-r CKPT] or a teacher with -t NAME")
    if args.teacher is not None:
        return build_teacher(args.teacher, args.path_to_pretrained_weights, gem_p=args.p)
    if args.resume is not None:
        return load_student_checkpoint(args.resume, args.arch, args.embed_dim, args.p)
    return build_student(args.arch, args.embed_dim, args.p)


def eval_transform() -> T.Compose:
    """Resize(256) -> CenterCrop(224) -> ToTensor; no Normalize, as in the original evaluation."""
    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])


def evaluate(args: argparse.Namespace, device: torch.device) -> dict[str, float] | None:
    """Build model, data and evaluator; the {"top-k": mAP, "top-inf": mAP} dict on rank 0."""
    if min(args.topk) <= 0 or args.max_frames <= 0 or args.stride <= 0:
        raise KdReproError("--topk, --max_frames and --stride must be positive integers")
    model = build_model(args).to(device).eval()
    meta = MetaData(utils.load_config(args.dataset_meta))
    dataset = Video(meta.frm_root_path, meta.frm_cnt, eval_transform(), args.max_frames, args.stride)
    loaders = DistributedTestLoader.build(dataset, meta, batch_size=args.batch_size, num_workers=args.num_workers)
    evaluator = DistEvaluator(device, meta.test_groundtruth, args.topk, args.max_frames)
    return evaluator(
        model,
        loaders.query_loader,
        loaders.labeled_loader,
        loaders.unlabeled_loader,
        not args.subset_eval,
        args.sim_fn,
    )


def main_worker(args: argparse.Namespace, device: torch.device) -> None:
    """One evaluation process; rank 0 keeps the result in `args.results`."""
    utils.setup_logger()
    logging.getLogger(f"dist_worker {args.rank}").info(f"Using device {device}")
    args.results = evaluate(args, device)


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> dict[str, float] | None:
    """Parse flags and evaluate (one process, torchrun, or spawned per GPU); the results when rank 0 ran here."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_args_parser().parse_args(argv)
    utils.setup_logger()
    logging.getLogger("svd_distill_eval").info(vars(args))
    launch(main_worker, args, world_size_given=given_on_command_line(argv, "--world_size"))
    return getattr(args, "results", None)


if __name__ == "__main__":
    main()
