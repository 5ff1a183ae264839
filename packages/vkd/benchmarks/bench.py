"""Training throughput of VkD's DeiT-Ti ← RegNetY-160 step, printed beside the teacher's forward pass alone.

One step = `vkd.losses.vkd_loss` (student forward, teacher forward, CE + KL + projector loss) on a synthetic
224 px batch with soft targets, backward, AdamW (`create_optimizer`), all with random weights
(`timm.create_model('regnety_160')`, the 192→3024 orthogonal projector). On CUDA: the original's mode (fp16
autocast + timm `NativeScaler`) and fp32; on the CPU: fp32 and bf16 autocast. The reference figure is the teacher's
forward-only throughput in the same mode. On the CPU the Householder projector's backward dominates (about a minute
per step whatever the batch), so the default CPU run times a single step per mode.

The detection part (first; `--part detection|classification|both`) times VkD's ViDT step: Swin-nano student with its
six projectors, random ViDT Swin-base teacher, set losses + 4.0 × distillation, backward, clipping, AdamW, fp32 as in
the original, on synthetic 640×640 (CUDA, batch 2) or 480×640 (CPU, batch 1) images, beside the teacher's forward.
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
    parser.add_argument("--part", choices=("classification", "detection", "both"), default="both")
    parser.add_argument("--detection-batch-size", type=int, default=None, help="default: 2 on CUDA, 1 on the CPU")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    on_cuda = args.device == "cuda"
    args.batch_size = args.batch_size or (64 if on_cuda else 8)
    args.detection_batch_size = args.detection_batch_size or (2 if on_cuda else 1)
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


def detection_step(
    args: argparse.Namespace, device: torch.device, image_hw: tuple[int, int]
) -> tuple[Callable, Callable]:
    """VkD's ViDT step (Swin-nano student + projectors, random ViDT-base teacher) and the teacher's forward alone."""
    from vkd.vidt.main import build_optimizer, get_main_parser  # noqa: PLC0415 -- detection part only when asked
    from vkd.vidt.methods import attach_projectors, build_distil_model, build_model  # noqa: PLC0415
    from vkd.vidt.util.misc import nested_tensor_from_tensor_list  # noqa: PLC0415

    argv = "--method vidt --backbone_name swin_nano --pre_trained none --aux_loss True --with_box_refine True"
    options = get_main_parser().parse_args([*argv.split(), "--distil_model", "vidt_base", "--device", device.type])
    options.dim_feedforward = 1024
    torch.manual_seed(0)
    model, criterion, _ = build_model(options)
    model = attach_projectors(model).to(device).train()
    teacher = build_distil_model(options).to(device).eval()
    optimizer = build_optimizer(model, options)
    samples = nested_tensor_from_tensor_list([torch.randn(3, *image_hw, device=device) for _ in range(args.batch_size)])
    boxes = torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.3, 0.4], [0.5, 0.7, 0.5, 0.2]], device=device)
    targets = [{"labels": torch.tensor([1, 3, 90], device=device), "boxes": boxes} for _ in range(args.batch_size)]

    def step() -> None:
        outputs = model(samples)
        with torch.no_grad():
            teacher_outputs = teacher(samples)
        losses = criterion(outputs, targets, distil_tokens=(outputs["distil_tokens"], teacher_outputs["distil_tokens"]))
        sum(losses[k] * criterion.weight_dict[k] for k in losses if k in criterion.weight_dict).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), options.clip_max_norm)
        optimizer.step()
        optimizer.zero_grad()

    @torch.no_grad()
    def reference() -> None:
        teacher(samples)

    return step, reference


def detection_main(args: argparse.Namespace, device: torch.device) -> None:
    """Time VkD's ViDT training step (fp32, as the original) beside the teacher's forward pass."""
    image_hw = (640, 640) if device.type == "cuda" else (480, 640)
    print(
        f"\nVkD ViDT train step, Swin-nano (+ 6 projectors) ← ViDT Swin-base (random weights), fp32, batch "
        f"{args.batch_size} of synthetic {image_hw[0]}×{image_hw[1]} images, {args.warmup} warm-up + {args.iters} "
        f"timed steps\n"
    )
    print("| mode | VkD train step (img/s) | reference: teacher forward only (img/s) |")
    print("| --- | --- | --- |")
    step, reference = detection_step(args, device, image_hw)
    timing = {"warmup": args.warmup, "iters": args.iters, "items": args.batch_size, "device": device}
    train = throughput(repeat(step), **timing)
    print(f"| fp32 (original) | {train:.2f} | {throughput(repeat(reference), **timing):.2f} |", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Time every mode of the device and print a markdown table (classification, then detection)."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.part != "classification":
        detection_args = argparse.Namespace(**{**vars(args), "batch_size": args.detection_batch_size})
        detection_main(detection_args, device)
    if args.part == "detection":
        return
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
