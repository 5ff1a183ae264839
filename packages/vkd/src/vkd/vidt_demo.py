"""Detection demo: VkD distillation of ViDT Swin-nano through the real `vidt/main.py`, then `--eval True`.

It writes a tiny COCO tree (coloured shapes on textured backgrounds, exact boxes; `vkd.vidt.datasets.fake_coco`),
saves a randomly initialised ViDT-nano teacher (`{'model': state_dict}`; it is not trained), trains the Swin-nano
student (no ImageNet backbone) for one epoch with the original's training transforms, and evaluates the checkpoint
it wrote with `--resume ... --eval True`, which prints the COCO AP table. A handful of iterations teach nothing: the
numbers only show that the pipeline runs (AP near 0).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from kdrepro_shared.errors import exit_on_user_error
from vkd.vidt.arguments import get_args_parser
from vkd.vidt.datasets.coco_eval import STAT_NAMES
from vkd.vidt.datasets.fake_coco import FakeCocoSpec, write_fake_coco
from vkd.vidt.main import main as vidt_main
from vkd.vidt.methods import build_distil_model


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Options; the defaults run in a few minutes on two CPU cores."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("output/vkd_vidt_demo"))
    parser.add_argument("--train-images", type=int, default=4)
    parser.add_argument("--val-images", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--eval-size", type=int, default=320, help="validation short side (the original: 800)")
    parser.add_argument("--teacher", default="vidt_nano", help="teacher architecture (random weights)")
    return parser.parse_args(argv)


def model_argv(args: argparse.Namespace, work: Path) -> list[str]:
    """The README's flags for a Swin-nano student, with the demo's teacher, data and sizes."""
    return [
        "--method", "vidt", "--backbone_name", "swin_nano", "--pre_trained", "none", "--aux_loss", "True",
        "--with_box_refine", "True", "--device", "cpu", "--distil_model", args.teacher,
        "--distil_model_path", str(work / "teacher.pth"), "--coco_path", str(work / "coco"),
        "--eval_size", str(args.eval_size), "--batch_size", str(args.batch_size), "--num_workers", "0",
        "--output_dir", "demo", "--print_freq", "1",
    ]  # fmt: skip


def save_random_teacher(argv: list[str], path: Path) -> None:
    """Build the teacher architecture with seed 0 and save `{'model': state_dict}` (what --distil_model_path reads)."""
    options = get_args_parser().parse_args(argv)
    options.dim_feedforward = 1024
    torch.manual_seed(0)
    torch.save({"model": build_distil_model(options).state_dict()}, path)


def format_table(rows: list[tuple[str, list[float], float]]) -> str:
    """The COCO numbers per run in markdown."""
    lines = ["| run | " + " | ".join(STAT_NAMES[:6]) + " | time (s) |", "| --- " * 8 + "|"]
    lines += [f"| {run} | " + " | ".join(f"{v:.3f}" for v in stats[:6]) + f" | {sec:.0f} |" for run, stats, sec in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace, work: Path) -> list[tuple[str, list[float], float]]:
    """Data, teacher, one epoch of training, evaluation of the checkpoint; returns the table rows."""
    write_fake_coco(work / "coco", FakeCocoSpec(train_images=args.train_images, val_images=args.val_images))
    argv = model_argv(args, work)
    save_random_teacher(argv, work / "teacher.pth")
    rows = []
    with contextlib.chdir(work):
        start = time.perf_counter()
        stats = vidt_main([*argv, "--epochs", "1"])
        rows.append(("Swin-nano student, 1 epoch of VkD", stats["coco_eval_bbox"], time.perf_counter() - start))
        start = time.perf_counter()
        checkpoint = str(work / "logs" / "demo" / "checkpoint.pth")
        stats = vidt_main([*argv, "--resume", checkpoint, "--eval", "True"])
        rows.append(("--resume checkpoint.pth --eval True", stats["coco_eval_bbox"], time.perf_counter() - start))
    return rows


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Write data and teacher, train and evaluate through `vkd.vidt.main`, print the AP table."""
    args = parse_args(argv)
    work = args.output_dir.resolve()
    shutil.rmtree(work, ignore_errors=True)  # every number must come from this run's files
    work.mkdir(parents=True)
    rows = run(args, work)
    print(
        f"\nVkD detection on a fake COCO ({args.train_images} train / {args.val_images} val images): "
        f"{args.teacher} (random) → ViDT Swin-nano, batch {args.batch_size}, 1 epoch, eval size {args.eval_size}\n"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
