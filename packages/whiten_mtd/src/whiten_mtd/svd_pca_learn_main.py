"""`svd_pca_learn.py`: learn one teacher's PCA-whitening on SVD training frames and save its state_dict.

As the original: for every training video, rank 0 draws min(60, n_frames) distinct frames (`random.seed(0)` then
`random.sample`) and broadcasts the list; frames get the SimCLR-style augmentation (blur p=0.5, solarize p=0.2),
the teacher (GeM p = `-p`, default 1 = average pooling) runs in eval mode, descriptors are L2-normalised, gathered
to rank 0 by index and fed to `PCA(teacher dim, --embed_dim).train_pca`; the eight buffers go to `--dump_to`.
Fixed: the teacher weight folder flag (`--path_to_pretrained_weights`) the original lacked; CPU/torchrun runs.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from kdrepro_shared.errors import DatasetLayoutError, KdReproError, exit_on_user_error
from whiten_mtd import utils
from whiten_mtd.datasets.svd.core import MetaData, pca_learning_transform
from whiten_mtd.datasets.svd.loader import broadcast_objects
from whiten_mtd.distributed import add_distributed_args, given_on_command_line, launch
from whiten_mtd.gld_pca_learn_main import extract_features, learn_and_save
from whiten_mtd.models.teachers import teacher_models

FRAMES_PER_VIDEO = 60


def get_args_parser() -> argparse.ArgumentParser:
    """Every flag of the original (names, types, defaults) plus the weight-folder flag it was missing."""
    parser = argparse.ArgumentParser(description="PCA training and saving.")
    add = parser.add_argument
    add("-t", "--teacher", default=None, type=str, metavar="ARCH", choices=list(teacher_models), help="teacher name")
    add("--num_workers", default=8, type=int, metavar="N", help="number of data loader workers")
    add_distributed_args(parser, "tcp://localhost:1234")
    utils.add_seed_arg(parser)
    add("--embed_dim", default=512, type=int, help="PCA output dimension")
    add("-b", "--batch_size", default=256, type=int, help="batch size per process")
    add("-p", default=1, type=float, help="GeM power of the teacher (1 = average pooling)")
    add("--dump_to", required=True, type=str, help="dump learned pca transformer to")
    add("-dm", "--dataset_meta", default="config/svd.yaml", type=str, metavar="FILE", help="dataset meta file")
    add(
        "--path_to_pretrained_weights",
        default="/path/to/pretrained_weights",
        type=str,
        metavar="DIR",
        help="[fixed] folder with the teacher weight files (the original had no such flag and crashed)",
    )
    return parser


class SVDFrames(Dataset):
    """Frames named "<video>/<%04d>" under the frame root, as (augmented tensor, index)."""

    def __init__(self, root_path: str | Path, img_id_list: Sequence[str], transform: Callable) -> None:
        super().__init__()
        self.root_path = Path(root_path)
        self.img_id_list = list(img_id_list)
        self.t = transform

    def __len__(self) -> int:
        return len(self.img_id_list)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path = self.root_path / f"{self.img_id_list[i]}.jpg"
        if not path.is_file():
            raise DatasetLayoutError(f"frame {path} not found; expected <frame_root_path>/<video_id>/<%04d>.jpg")
        return self.t(Image.open(path).convert("RGB")), i


def sample_frames(video_ids: Sequence[str], frm_cnt: Mapping[str, int], n: int = FRAMES_PER_VIDEO) -> list[str]:
    """min(n, frames) distinct frame ids per video, drawn after seeding python's global `random` with 0."""
    random.seed(0)
    ids = []
    for video_id in video_ids:
        count = frm_cnt[video_id]
        ids += [f"{video_id}/{frame:04d}" for frame in random.sample(list(range(count)), min(n, count))]
    return ids


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and learn the PCA-whitening in every process of the job; rank 0 writes `--dump_to`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_args_parser().parse_args(argv)
    if args.teacher is None:
        raise KdReproError(f"-t/--teacher is required; choose one of: {', '.join(teacher_models)}")
    if args.batch_size <= 0 or args.embed_dim <= 0:
        raise KdReproError("--batch_size and --embed_dim must be positive integers")
    utils.setup_logger()
    logging.getLogger("pca training").info(vars(args))
    launch(main_worker, args, world_size_given=given_on_command_line(argv, "--world_size"))


def main_worker(args: argparse.Namespace, device: torch.device) -> None:
    """Build the teacher (DDP), extract descriptors of the sampled frames, learn the PCA on rank 0 and save it."""
    learn_and_save(args, device, learn_pca_whitening)


@torch.no_grad()
def learn_pca_whitening(args: argparse.Namespace, model: nn.Module, device: torch.device) -> utils.PCA | None:
    """Descriptors of the sampled training frames -> `PCA.train_pca` on rank 0 (other ranks return None)."""
    model.eval()
    logger = logging.getLogger("pca training")
    meta = MetaData(utils.load_config(args.dataset_meta))
    (image_ids,) = broadcast_objects([sample_frames(meta.train_ids, meta.frm_cnt) if args.rank == 0 else None])
    logger.info(f"totally {len(image_ids)} images.")
    if len(image_ids) < args.world_size:
        raise KdReproError(f"{len(image_ids)} frames for {args.world_size} processes; need one frame per process")
    dataset = SVDFrames(meta.frm_root_path, image_ids, pca_learning_transform())
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


if __name__ == "__main__":
    main()
