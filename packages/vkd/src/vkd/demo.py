"""End-to-end demo on the embedded digits: VkD training of DeiT-Ti through the real entry point, then --eval-student.

It writes scikit-learn's digits as a tiny ImageFolder (`train/`, `val/`, classes `0`-`9`, upsampled from 32 to
224 px RGB, a few images per class), saves a randomly initialised timm `regnety_002` teacher (not trained: its
accuracy is chance level) and passes it with `--teacher-path`, then calls `vkd.main_distributed.main` twice: one
short training run of `deit_ti_distilled` and `--eval-student` on the `latest.pth.tar` it wrote. The table gives the
teacher's top-1 on `val/`, the student's top-1/top-5 after training (`r0_val.csv`) and those of the evaluation run.

Defaults aim at a few minutes on two CPU cores: 1 train image per class (2 iterations at batch 4) and 2 val images.
Then (`--part both`, the default) the detection demo (`vkd.vidt_demo`, its defaults) runs;
`--part classification|detection` runs one of them.
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import timm
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from kdrepro_shared.data import digits_arrays, write_image_folder
from kdrepro_shared.errors import exit_on_user_error
from vkd import vidt_demo
from vkd.datasets import build_dataset
from vkd.main_distributed import get_args_parser
from vkd.main_distributed import main as vkd_main

CLASSES = tuple(str(c) for c in range(10))
UPSAMPLE = 7  # 32 px × 7 = 224 px, the only input size the DeiT students accept
EVAL_LINE = re.compile(r"\* Acc@1 ([\d.]+) Acc@5 ([\d.]+)")


@dataclass(frozen=True)
class Row:
    """One row of the demo's table."""

    run: str
    model: str
    top1: float
    top5: float | None
    seconds: float


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the defaults run in a few minutes on two CPU cores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("output/vkd_demo"))
    parser.add_argument("--train-per-class", type=int, default=1)
    parser.add_argument("--val-per-class", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4, help="even (Mixup) and ≤ the train image count")
    parser.add_argument("--teacher", default="regnety_002", help="timm name of the (random) teacher")
    parser.add_argument(
        "--part",
        choices=("classification", "detection", "both"),
        default="both",
        help="which demo to run: DeiT-Ti classification, ViDT detection, or both",
    )
    return parser.parse_args(argv)


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` images of each class, in class order."""
    return np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(len(CLASSES))])


def write_digits_folder(root: Path, train_per_class: int, val_per_class: int) -> Path:
    """Write `root/{train,val}/<digit>/*.JPEG` at 224 px from the embedded digits; return `root`."""
    images_train, labels_train, images_test, labels_test = digits_arrays()
    splits = (("train", images_train, labels_train, train_per_class), ("val", images_test, labels_test, val_per_class))
    for split, images, labels, per_class in splits:
        keep = first_per_class(labels, per_class)
        big = images[keep].repeat(UPSAMPLE, axis=1).repeat(UPSAMPLE, axis=2)
        write_image_folder(root, split, big, labels[keep].tolist(), CLASSES)
    return root


def save_random_teacher(name: str, path: Path) -> torch.nn.Module:
    """Build `timm.create_model(name)` with seed 0 (no pretrained weights), save `{'model': state_dict}` to `path`."""
    torch.manual_seed(0)
    teacher = timm.create_model(name, pretrained=False)
    torch.save({"model": teacher.state_dict()}, path)
    return teacher.eval()


def train_argv(args: argparse.Namespace, data: Path, teacher_path: Path, out: Path) -> list[str]:
    """`main_distributed.py` training flags: the paper's student, the demo's teacher file, data and schedule."""
    return [
        *common_argv(args, data),
        "--teacher-path",
        str(teacher_path),
        "--epochs",
        str(args.epochs),
        "--output_dir",
        str(out),
    ]


def eval_argv(args: argparse.Namespace, data: Path, student_ckpt: Path) -> list[str]:
    """`main_distributed.py --eval-student` flags for the checkpoint the training run wrote."""
    return [*common_argv(args, data), "--eval-student", "--student-ckpt", str(student_ckpt)]


def common_argv(args: argparse.Namespace, data: Path) -> list[str]:
    """Flags shared by both runs: teacher and student names, batch, data folder, no DataLoader workers."""
    return [
        "--teacher",
        args.teacher,
        "--student-model",
        "deit_ti_distilled",
        "--batch-size",
        str(args.batch_size),
        "--data-path",
        str(data),
        "--num_workers",
        "0",
        "--no-pin-mem",
    ]


@torch.no_grad()
def teacher_top1(teacher: torch.nn.Module, data: Path) -> float:
    """Top-1 (%) of `teacher` on `data/val` with the original's validation transform."""
    options = get_args_parser().parse_args(["--data-path", str(data)])
    dataset, _ = build_dataset(is_train=False, args=options)
    correct = 0
    for images, labels, _ in DataLoader(dataset, batch_size=16):
        correct += int((teacher(images).argmax(-1) == labels).sum())
    return 100.0 * correct / len(dataset)


def last_val_row(csv_file: Path) -> tuple[float, float]:
    """(acc1, acc5) of the last epoch row of a run's `r0_val.csv`."""
    rows = [row for row in csv.reader(csv_file.read_text(encoding="utf-8").splitlines()) if row[0].isdigit()]
    return float(rows[-1][1]), float(rows[-1][2])


class _Collect(logging.Handler):
    """Keep the messages of a logger in a list."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_eval_student(argv: list[str]) -> tuple[float, float]:
    """Run `main_distributed.main(argv)` (with `--eval-student`) and read its final `* Acc@1 … Acc@5 …` line."""
    collector = _Collect()
    vkd_logger = logging.getLogger("vkd")
    vkd_logger.addHandler(collector)
    try:
        vkd_main(argv)
    finally:
        vkd_logger.removeHandler(collector)
    match = next(m for m in map(EVAL_LINE.search, reversed(collector.messages)) if m)
    return float(match.group(1)), float(match.group(2))


def format_table(rows: Sequence[Row]) -> str:
    """The accuracy table in markdown: run, model, top-1, top-5, wall time."""
    lines = ["| run | model | top-1 (%) | top-5 (%) | time (s) |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        top5 = "–" if r.top5 is None else f"{r.top5:.2f}"
        lines.append(f"| {r.run} | {r.model} | {r.top1:.2f} | {top5} | {r.seconds:.0f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace, work: Path) -> list[Row]:
    """Write data and teacher under `work`, train, evaluate; return the table rows."""
    data = write_digits_folder(work / "data", args.train_per_class, args.val_per_class)
    teacher_path = work / f"{args.teacher}_random.pth"
    start = time.perf_counter()
    teacher = save_random_teacher(args.teacher, teacher_path)
    rows = [Row("Teacher (random init)", args.teacher, teacher_top1(teacher, data), None, time.perf_counter() - start)]

    out = work / "output"
    start = time.perf_counter()
    vkd_main(train_argv(args, data, teacher_path, out))
    acc1, acc5 = last_val_row(out / "r0_val.csv")
    rows.append(
        Row(f"Student, {args.epochs} epoch(s) of VkD", "deit_ti_distilled", acc1, acc5, time.perf_counter() - start)
    )

    start = time.perf_counter()
    acc1, acc5 = run_eval_student(eval_argv(args, data, out / "latest.pth.tar"))
    rows.append(
        Row("Student, --eval-student latest.pth.tar", "deit_ti_distilled", acc1, acc5, time.perf_counter() - start)
    )
    return rows


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Write the digits and a random teacher, train and evaluate through `main_distributed.main`, print the table."""
    args = parse_args(argv)
    if args.part != "detection":
        classification_demo(args)
    if args.part != "classification":
        vidt_demo.main(["--output-dir", str(args.output_dir.parent / "vkd_vidt_demo")])


def classification_demo(args: argparse.Namespace) -> None:
    """The DeiT-Ti part: write the digits and a random teacher, train, evaluate, print the table."""
    work = args.output_dir.resolve()
    shutil.rmtree(work, ignore_errors=True)  # every row must come from this run's files
    work.mkdir(parents=True)
    owns_group = not dist.is_initialized()
    try:
        rows = run(args, work)
    finally:
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()
    print(
        f"\nVkD on digits ({len(CLASSES)} classes, {args.train_per_class} train / {args.val_per_class} val images per "
        f"class, 224 px): {args.teacher} (random) → deit_ti_distilled, batch {args.batch_size}, "
        f"{args.epochs} epoch(s)\n"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
