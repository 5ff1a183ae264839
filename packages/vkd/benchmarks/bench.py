"""Training throughput of VkD's DeiT-Ti ← RegNetY-160 step, printed beside the teacher's forward pass alone.

One step = `vkd.losses.vkd_loss` (student forward, teacher forward, CE + KL + projector loss) on a synthetic
224 px batch with soft targets, backward, AdamW (`create_optimizer`), all with random weights
(`timm.create_model('regnety_160')`, the 192→3024 orthogonal projector). On CUDA: the original's mode (fp16
autocast + timm `NativeScaler`) and fp32; on the CPU: fp32 and bf16 autocast. The reference figure is the teacher's
forward-only throughput in the same mode. On the CPU the Householder projector's backward dominates (about a minute
per step whatever the batch), so the default CPU run times a single step per mode.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from timm.loss import SoftTargetCrossEntropy
from timm.utils import NativeScaler
from torch import nn

from kdrepro_shared.benchmark import throughput
from vkd.losses import vkd_loss
from vkd.models import DEIT_MODELS, attach_projector, create_teacher
from vkd.utils.optimizer import create_optimizer

NUM_CLASSES = 1000


@dataclass(frozen=True)
class Mode:
    """A precision mode: autocast dtype (None: fp32) and whether the fp16 grad scaler is used."""

    name: str
    dtype: torch.dtype | None
    scaler: bool


CUDA_MODES = (Mode("amp fp16 + NativeScaler (original)", torch.float16, True), Mode("fp32", None, False))
CPU_MODES = (Mode("fp32", None, False), Mode("bf16 autocast", torch.bfloat16, False))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Device, batch size and iteration counts (defaults depend on the device)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 64 on CUDA, 8 on the CPU")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 3 on CUDA, 0 on the CPU)")
    parser.add_argument("--iters", type=int, default=None, help="timed steps (default: 10 on CUDA, 1 on the CPU)")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    on_cuda = args.device == "cuda"
    args.batch_size = args.batch_size or (64 if on_cuda else 8)
    args.warmup = args.warmup if args.warmup is not None else (3 if on_cuda else 0)
    args.iters = args.iters or (10 if on_cuda else 1)
    return args


def repeat(step: Callable[[], None]) -> Callable[[int], None]:
    """`step` as the `run(n)` the shared timer calls: n steps in a row."""

    def run(steps: int) -> None:
        for _ in range(steps):
            step()

    return run


def autocast(device: torch.device, mode: Mode) -> torch.autocast:
    """Autocast context of `mode` (disabled for fp32)."""
    return torch.autocast(device.type, dtype=mode.dtype or torch.float32, enabled=mode.dtype is not None)


def build(device: torch.device) -> tuple[nn.Module, nn.Module]:
    """DeiT-Ti distilled with its projector and a random, frozen RegNetY-160 teacher, on `device`."""
    torch.manual_seed(0)
    student = DEIT_MODELS["deit_ti_distilled"](num_classes=NUM_CLASSES, img_size=224)
    teacher = create_teacher("regnety_160", pretrained=False)
    attach_projector(student, teacher.num_features)
    return student.to(device).train(), teacher.to(device)


def train_step(student: nn.Module, teacher: nn.Module, batch: int, device: torch.device, mode: Mode) -> Callable:
    """The training step of `engine.train_one_epoch` on one fixed synthetic batch (Mixup-style soft targets)."""
    samples = torch.randn(batch, 3, 224, 224, device=device)
    targets = torch.softmax(torch.randn(batch, NUM_CLASSES, device=device), dim=-1)
    criterion = SoftTargetCrossEntropy()
    optimizer = create_optimizer(student)
    scaler = NativeScaler(device=device.type) if mode.scaler else None

    def step() -> None:
        with autocast(device, mode):
            loss = vkd_loss(student, teacher, samples, targets, criterion).loss
        if scaler is not None:
            scaler(loss, optimizer, parameters=student.parameters())
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad()

    return step


def teacher_forward(teacher: nn.Module, batch: int, device: torch.device, mode: Mode) -> Callable:
    """The teacher's forward pass alone on a fixed synthetic batch, without grad."""
    samples = torch.randn(batch, 3, 224, 224, device=device)

    @torch.no_grad()
    def step() -> None:
        with autocast(device, mode):
            teacher(samples)

    return step


def main(argv: Sequence[str] | None = None) -> None:
    """Time every mode of the device and print a markdown table."""
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"VkD train step, deit_ti_distilled ← regnety_160 (random weights), batch {args.batch_size}, "
        f"{args.warmup} warm-up + {args.iters} timed steps, on {name}\n"
    )
    print("| mode | VkD train step (img/s) | reference: teacher forward only (img/s) |")
    print("| --- | --- | --- |")
    student, teacher = build(device)
    for mode in CUDA_MODES if device.type == "cuda" else CPU_MODES:
        timing = {"warmup": args.warmup, "iters": args.iters, "items": args.batch_size, "device": device}
        train = throughput(repeat(train_step(student, teacher, args.batch_size, device, mode)), **timing)
        reference = throughput(repeat(teacher_forward(teacher, args.batch_size, device, mode)), **timing)
        print(f"| {mode.name} | {train:.1f} | {reference:.1f} |", flush=True)


if __name__ == "__main__":
    main()
