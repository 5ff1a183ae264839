"""`--eval-student` of the original (`evaluate.py`): top-1/top-5 of a student checkpoint on `<data-path>/val`.

The original loaded `ckpt['student']` with `strict=False` into the DDP model, silently ignoring any mismatch; here
the `module.` prefix is stripped, projector keys are dropped and the load is strict, with a report [FIX].
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from vkd import distributed_utils
from vkd.datasets import build_dataset
from vkd.engine import validate
from vkd.models import load_student_checkpoint
from vkd.train import create_student, print_rank0, setup_logging


def main(args: argparse.Namespace) -> tuple[float, float]:
    """Evaluate `--student-ckpt` on the val split with the padded distributed sampler; return (acc1, acc5)."""
    setup_logging()
    local_rank = dist.get_rank()
    world_size = dist.get_world_size()
    device = distributed_utils.get_device(args)
    torch.manual_seed(1 + local_rank)
    np.random.seed(1 + local_rank)
    torch.backends.cudnn.benchmark = True
    print(f"I am rank {local_rank} in this world of size {world_size}!")

    dataset_val, _ = build_dataset(is_train=False, args=args)
    _, args.nb_classes = build_dataset(is_train=True, args=args)
    if len(dataset_val) % world_size != 0:
        print(
            "Warning: Enabling distributed evaluation with an eval dataset not divisible by process number. "
            "This will slightly alter validation results as extra duplicate entries are added to achieve "
            "equal num of samples per-process."
        )
    sampler_val = DistributedSampler(dataset_val, num_replicas=world_size, rank=local_rank, shuffle=False)
    data_loader_val = DataLoader(
        dataset_val,
        sampler=sampler_val,
        batch_size=int(1.5 * args.batch_size),
        num_workers=args.num_workers,
        pin_memory=args.pin_mem,
        drop_last=False,
    )

    print_rank0(f"Creating student: {args.student_model}")
    student = create_student(args)
    print_rank0(f"number of params: {sum(p.numel() for p in student.parameters() if p.requires_grad)}")
    report = load_student_checkpoint(student, args.student_ckpt)
    print_rank0(f"Loaded {args.student_ckpt}: {report.summary()}")
    student.to(device)
    student = DistributedDataParallel(student, device_ids=[args.gpu] if device.type == "cuda" else None)

    acc1, acc5 = validate(data_loader_val, student, print_rank0, device)
    print_rank0(f"Accuracy of the student network on the {len(dataset_val)} test images: {acc1:.1f}%")
    return acc1, acc5
