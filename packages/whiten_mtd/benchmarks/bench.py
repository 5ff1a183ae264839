"""Distillation throughput and 5k-image evaluation time of Whiten-MTD on synthetic input.

"distill images/s" times training steps as `gld_distill.py` takes them: the real `MultiTeacherDistillModel`
(ResNet-18 student with GeM p=3 and a fresh fc, two frozen ResNet-101 teachers with their PCA-whitening layers, loaded
from fake files in the authors' layouts), `MultiTeacherDistillLoss` (maxmin, τ 0.05), zero_grad, backward and an Adam
step (lr 1e-3, weight decay 1e-6) on a batch of `-b` random image pairs; its reference is the teachers' no-grad forward
on the same 2b images, the part no student choice can speed up. One process: multiply by the GPU count for the
original's 8-GPU DDP runs (the ×W loss factor and all-gathers aside).

"evaluation" times what `oxford_paris_eval.py -ms` does for ROxford5k-sized data (70 queries, 4,993 database
images): multi-scale (1, 1/√2, 1/2) ResNet-18 descriptors of batch-1 images (`multiscale_feature`, images/s and the
implied time for all 5,063 images), then the dense torch search and revisitop's E/M/H mAP and mP@k on random unit
descriptors and a random ground truth (seconds), beside the same with the exact faiss index that R1M uses.

Run: `python packages/whiten_mtd/benchmarks/bench.py [--device auto|cpu|cuda]` (or
`python3 noxfile.py -s "bench(package='whiten_mtd')"`). The defaults are small enough for a CPU (distillation at
128 px with 4 pairs, evaluation images of 64 px); `--imsize 512 -b 64 --eval-imsize 1024` are the paper's sizes
(GLDv2 crops of 512, 64 pairs per GPU; revisitop images are about 1024 px on the long side).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from argparse import Namespace
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kdrepro_shared.benchmark import device_name, synchronize, throughput
from kdrepro_shared.device import resolve_device
from whiten_mtd.datasets.fake_revisitop import random_gnd
from whiten_mtd.loss import MultiTeacherDistillLoss
from whiten_mtd.models.distill_model import MultiTeacherDistillModel, build_student
from whiten_mtd.models.fake_weights import write_fake_weights
from whiten_mtd.oxford_paris_eval_main import multiscale_feature, rank_and_score

TEACHERS = ("resnet101_delg", "resnet101_dolg")  # the README's GLDv2 pair, both ResNet-101
N_QUERIES = 70
SEED = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; warm-up/timed iterations default to 1/2 on CPU and 3/10 on CUDA."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--imsize", type=int, default=128, help="distillation crop size (paper: 512)")
    parser.add_argument("-b", "--batch-size", type=int, default=4, help="image pairs per step (paper: 64 per GPU)")
    parser.add_argument("--teachers", nargs=2, default=list(TEACHERS), help="two teacher names")
    parser.add_argument("--db-images", type=int, default=4993, help="database size (ROxford5k: 4,993)")
    parser.add_argument("--eval-imsize", type=int, default=64, help="evaluation image side (revisitop: ~1024)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations first (default: 1 CPU, 3 CUDA)")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations (default: 2 CPU, 10 CUDA)")
    return parser.parse_args(argv)


def distill_model(weights: Path, teachers: list[str], device: torch.device) -> nn.Module:
    """The training model of gld_distill (ResNet-18 student, random trunk: no ImageNet download), on `device`."""
    args = Namespace(arch="resnet18", embed_dim=512, p=3.0, teachers=teachers, path_to_pretrained_weights=str(weights))
    torch.manual_seed(SEED)
    return MultiTeacherDistillModel(args, imagenet_init=False).to(device)


def distill_runner(model: nn.Module, teachers: list[str], args: argparse.Namespace, device: torch.device) -> Callable:
    """n training steps on one fixed batch of `b` random pairs: forward, loss, zero_grad, backward, Adam step."""
    loss_fn = MultiTeacherDistillLoss(st=0.05, tt=0.05, s="maxmin", teachers=teachers).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-6)
    x = torch.randn(2 * args.batch_size, 3, args.imsize, args.imsize, device=device)
    x1, x2 = x[: args.batch_size], x[args.batch_size :]

    def run(steps: int) -> None:
        model.train()
        for _ in range(steps):
            loss = sum(loss_fn(*model(x1, x2)).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run


def teacher_runner(model: nn.Module, args: argparse.Namespace, device: torch.device) -> Callable:
    """n no-grad passes of the frozen teachers (with PCA) over both views."""
    x = torch.randn(2 * args.batch_size, 3, args.imsize, args.imsize, device=device)

    def run(steps: int) -> None:
        with torch.no_grad():
            for _ in range(steps):
                model.teacher_encoders(x)

    return run


def describe_runner(size: int, device: torch.device) -> Callable:
    """n multi-scale descriptors of one random `size`² image with an evaluation-time ResNet-18 student."""
    torch.manual_seed(SEED)
    student = build_student("resnet18", 512, 3.0).to(device).eval()
    image = torch.randn(1, 3, size, size, device=device)

    def run(steps: int) -> None:
        with torch.no_grad():
            for _ in range(steps):
                multiscale_feature(image, student)

    return run


def search_seconds(backend: str, n_db: int, timing: dict[str, Any]) -> float:
    """Seconds of one `rank_and_score` (normalise, rank, E/M/H mAP and mP@k) for 70 queries against `n_db` images."""
    g = torch.Generator().manual_seed(SEED)
    queries, database = torch.randn(N_QUERIES, 512, generator=g), torch.randn(n_db, 512, generator=g)
    gnd = random_gnd(n_db, N_QUERIES, np.random.default_rng(SEED), sizes=(20, 30, 40))

    def run(steps: int) -> None:
        for _ in range(steps):
            rank_and_score(queries, database, gnd, backend)

    return 1.0 / throughput(run, items=1, **(timing | {"device": torch.device("cpu")}))


def main(argv: list[str] | None = None) -> None:
    """Measure distillation and evaluation, print both tables."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    on_cuda = device.type == "cuda"
    warmup = args.warmup if args.warmup is not None else (3 if on_cuda else 1)
    iters = args.iters if args.iters is not None else (10 if on_cuda else 2)
    timing = {"warmup": warmup, "iters": iters, "device": device}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        weights = write_fake_weights(folder, args.teachers)
        model = distill_model(weights, args.teachers, device)
        setup = time.perf_counter() - start
    images = 2 * args.batch_size
    distill = throughput(distill_runner(model, args.teachers, args, device), items=images, **timing)
    teachers_only = throughput(teacher_runner(model, args, device), items=images, **timing)
    del model
    describe = throughput(describe_runner(args.eval_imsize, device), items=1, **timing)
    synchronize(device)
    n_images = args.db_images + N_QUERIES
    torch_search = search_seconds("torch", args.db_images, timing)
    faiss_search = search_seconds("faiss", args.db_images, timing)

    print(
        f"\nDistillation, {device_name(device)}, {warmup} warm-up + {iters} timed steps (setup: fake weights and model "
        f"build {setup:.0f} s)\n"
    )
    print("| student | teachers | crop | pairs/step | distill images/s | teachers' forward images/s (reference) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| resnet18 | {' + '.join(args.teachers)} | {args.imsize} | {args.batch_size} | {distill:.2f} "
        f"| {teachers_only:.2f} |"
    )
    print(f"\nEvaluation of {N_QUERIES} queries against {args.db_images} database images\n")
    print("| step | measured | for all images |\n| --- | --- | --- |")
    print(
        f"| multi-scale ResNet-18 descriptors, {args.eval_imsize}² batch 1 | {describe:.2f} images/s "
        f"| {n_images / describe:.1f} s ({n_images} images) |"
    )
    print(f"| dense torch search + E/M/H mAP, mP@1,5,10 | {torch_search:.3f} s | {torch_search:.3f} s |")
    print(f"| faiss flat-IP search + mAP (reference; R1M backend) | {faiss_search:.3f} s | {faiss_search:.3f} s |")


if __name__ == "__main__":
    main()
