"""Training throughput of resnet32x4 → resnet8x4 distillation (KD, CRD, ICD, RRD) on synthetic CIFAR-sized batches.

Each method is set up as `train_student.main` sets it up (its `parse_option` defaults, `build_method`, the same
module/trainable/criterion lists and SGD) and timed through the package's own `loops.train_distill` over a list of
fixed batches, so a "step" is exactly the training step of a real run (host→device copy, student forward, teacher
forward under no_grad, γ·CE + α·KD + β·L_method, backward, SGD, meters). Beside them: the teacher's forward alone and
a vanilla student step (`loops.train_vanilla`), on the same device.

On CUDA the FLOPs of one step are counted with `torch.utils.flop_counter.FlopCounterMode` and reported as a fraction
of `--peak-tflops`. The default, 67 TFLOP/s, is the H100 SXM dense FP32 peak (the seed trains in FP32, without AMP);
pass 494.7 for TF32 tensor cores (cuDNN convolutions use TF32 by default) or 989.4 for BF16.

Run: `python packages/distillers_icd_rrd/benchmarks/bench.py [--device auto|cpu|cuda]`
(or `python3 noxfile.py -s "bench(package='distillers_icd_rrd')"`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from collections.abc import Callable

import torch
from torch import nn, optim
from torch.backends import cudnn
from torch.utils.flop_counter import FlopCounterMode

from distillers_icd_rrd import loops, train_student
from distillers_icd_rrd.distillers import DistillKL
from distillers_icd_rrd.models import model_dict
from kdrepro_shared.benchmark import device_name, throughput
from kdrepro_shared.device import channels_last, resolve_device

TEACHER, STUDENT = "resnet32x4", "resnet8x4"
PATH_T = f"./save/models/{TEACHER}_vanilla/ckpt_epoch_240.pth"
CIFAR100_TRAIN_SIZE = 50_000
NUM_CLASSES = 100
# -r/-a/-b of the seed's scripts/run_cifar_distill.sh (RRD: the README's).
WEIGHTS = {"kd": ["-r", "0.1", "-a", "0.9", "-b", "0"], "crd": ["-a", "0", "-b", "0.8"]}
WEIGHTS |= {m: ["-a", "0", "-b", "1"] for m in ("icd", "rrd")}
H100_FP32_TFLOPS = 67.0

# The fast path's model-side flags; the GPU-resident loader does not apply to synthetic batches.
FAST_FLAGS = ["--channels_last", "--precision", "bf16"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; warm-up/timed iterations default to 1/2 on CPU and 10/50 on CUDA."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 1 CPU, 10 CUDA)")
    parser.add_argument("--iters", type=int, default=None, help="timed steps (default: 2 CPU, 50 CUDA)")
    parser.add_argument("--methods", nargs="+", default=list(WEIGHTS), choices=list(WEIGHTS))
    parser.add_argument("--peak-tflops", type=float, default=H100_FP32_TFLOPS, help="device peak for the MFU column")
    return parser.parse_args(argv)


def student_options(method: str, batch_size: int, device: torch.device, fast: bool = False) -> argparse.Namespace:
    """train_student's options for `method` (defaults included), parsed in a scratch folder it may create dirs in.

    `fast` adds the opt-in fast path's model-side flags (channels_last + bf16 autocast); the faithful path has none.
    """
    argv = ["--path_t", PATH_T, "--model_s", STUDENT, "--distill", method, *WEIGHTS[method]]
    argv += ["--batch_size", str(batch_size), "--print_freq", str(10**9), "--device", str(device)]
    argv += FAST_FLAGS if fast else []
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        return train_student.parse_option(argv)


def synthetic_batch(opt: argparse.Namespace, batch_size: int) -> tuple[torch.Tensor, ...]:
    """One CPU batch as the loaders yield it: (img, target, index), plus CRD's (positive + nce_k negatives) indices."""
    images = torch.randn(batch_size, 3, 32, 32)
    targets = torch.randint(0, NUM_CLASSES, (batch_size,))
    index = torch.randint(0, CIFAR100_TRAIN_SIZE, (batch_size,))
    if opt.distill != "crd":
        return images, targets, index
    contrast_idx = torch.randint(0, CIFAR100_TRAIN_SIZE, (batch_size, opt.nce_k + 1))
    contrast_idx[:, 0] = index
    return images, targets, index, contrast_idx


def distill_setup(
    opt: argparse.Namespace, device: torch.device
) -> tuple[nn.ModuleList, nn.ModuleList, optim.Optimizer]:
    """module_list, criterion_list and optimizer, built in train_student.main's order (teacher last, not optimised)."""
    model_t = model_dict[TEACHER](num_classes=NUM_CLASSES)
    model_s = model_dict[STUDENT](num_classes=NUM_CLASSES)
    probe = torch.randn(2, 3, 32, 32)
    model_t.eval()
    model_s.eval()
    feat_t, _ = model_t(probe, is_feat=True)
    feat_s, _ = model_s(probe, is_feat=True)
    criterion_kd, extra_modules, extra_trainable = train_student.build_method(
        opt, (model_s, model_t), (feat_s, feat_t), CIFAR100_TRAIN_SIZE, run_init=lambda *_: None
    )
    module_list = nn.ModuleList([model_s, *extra_modules])
    trainable_list = nn.ModuleList([model_s, *extra_trainable])
    criterion_list = nn.ModuleList([nn.CrossEntropyLoss(), DistillKL(opt.kd_T), criterion_kd])
    optimizer = optim.SGD(
        trainable_list.parameters(), lr=opt.learning_rate, momentum=opt.momentum, weight_decay=opt.weight_decay
    )
    module_list.append(model_t)
    module_list.to(device)
    criterion_list.to(device)
    channels_last(module_list, opt.channels_last)
    channels_last(criterion_list, opt.channels_last)
    return module_list, criterion_list, optimizer


def flops_per_image(run: Callable[[int], None], batch_size: int) -> float:
    """FLOPs of one step of `run`, counted by FlopCounterMode, divided by the batch size."""
    with FlopCounterMode(display=False) as counter:
        run(1)
    return counter.get_total_flops() / batch_size


def distill_runner(method: str, batch_size: int, device: torch.device, fast: bool) -> Callable[[int], None]:
    """A function running n steps of `loops.train_distill` for `method` on one fixed synthetic batch."""
    opt = student_options(method, batch_size, device, fast)
    module_list, criterion_list, optimizer = distill_setup(opt, device)
    batch = synthetic_batch(opt, batch_size)

    def run(steps: int) -> None:
        loops.train_distill(1, [batch] * steps, module_list, criterion_list, optimizer, opt)

    return run


def vanilla_runner(batch_size: int, device: torch.device) -> Callable[[int], None]:
    """n steps of `loops.train_vanilla` (CE only) for the student, with the seed's SGD settings."""
    opt = student_options("kd", batch_size, device)
    model = model_dict[STUDENT](num_classes=NUM_CLASSES).to(device)
    optimizer = optim.SGD(
        model.parameters(), lr=opt.learning_rate, momentum=opt.momentum, weight_decay=opt.weight_decay
    )
    criterion = nn.CrossEntropyLoss().to(device)
    batch = synthetic_batch(opt, batch_size)[:2]

    def run(steps: int) -> None:
        loops.train_vanilla(1, [batch] * steps, model, criterion, optimizer, opt)

    return run


def teacher_runner(batch_size: int, device: torch.device) -> Callable[[int], None]:
    """n eval-mode forwards of the teacher under no_grad (its share of every distillation step)."""
    model = model_dict[TEACHER](num_classes=NUM_CLASSES).to(device).eval()
    images = torch.randn(batch_size, 3, 32, 32)

    def run(steps: int) -> None:
        with torch.no_grad():
            for _ in range(steps):
                model(images.to(device), is_feat=True)

    return run


def measure(args: argparse.Namespace, device: torch.device) -> list[tuple[str, float, float | None]]:
    """(row label, images/s, FLOPs per image on CUDA else None) for the references and every method."""
    on_cuda = device.type == "cuda"
    warmup = args.warmup if args.warmup is not None else (10 if on_cuda else 1)
    iters = args.iters if args.iters is not None else (50 if on_cuda else 2)
    runners = {
        f"{TEACHER} forward only (reference)": teacher_runner(args.batch_size, device),
        f"{STUDENT} vanilla training (reference)": vanilla_runner(args.batch_size, device),
    }
    for path, fast in (("faithful", False), ("fast path", True)):
        runners |= {
            f"{m.upper()} {' '.join(WEIGHTS[m])} ({path})": distill_runner(m, args.batch_size, device, fast)
            for m in args.methods
        }
    rows = []
    for label, run in runners.items():
        images_s = throughput(run, warmup=warmup, iters=iters, items=args.batch_size, device=device)
        rows.append((label, images_s, flops_per_image(run, args.batch_size) if on_cuda else None))
    return rows


def format_table(rows: list[tuple[str, float, float | None]], peak_tflops: float) -> str:
    """Markdown table; the GFLOP/image and MFU columns only when FLOPs were counted."""
    with_flops = any(flops is not None for _, _, flops in rows)
    header = "| run | train images/s |" + (" GFLOP/image | % of peak |" if with_flops else "")
    lines = [header, "| --- | --- |" + (" --- | --- |" if with_flops else "")]
    for label, images_s, flops in rows:
        line = f"| {label} | {images_s:,.1f} |"
        if flops is not None:
            line += f" {flops / 1e9:.3f} | {100 * flops * images_s / (peak_tflops * 1e12):.1f} |"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Measure and print the table (the loops' own progress lines are swallowed)."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    if device.type == "cuda":
        cudnn.benchmark = True  # as train_student does on CUDA
    with contextlib.redirect_stdout(io.StringIO()):
        rows = measure(args, device)
    print(f"\n{TEACHER} → {STUDENT}, batch {args.batch_size}, synthetic 32×32 input, {device_name(device)}")
    if device.type == "cuda":
        print(f"% of peak: counted FLOPs × images/s ÷ {args.peak_tflops} TFLOP/s (--peak-tflops)")
    print(f"\n{format_table(rows, args.peak_tflops)}")


if __name__ == "__main__":
    main()
