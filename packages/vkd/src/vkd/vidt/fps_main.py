"""Inference-speed benchmark of the detection part (`vidt/fps_calculator.py`): frames per second of ViDT Swin-nano.

As in the original: method vidt, backbone swin_nano, no backbone weights, `--eval_size 800`, aux loss and box
refinement on, the first val image repeated `--batch_size` times, `--num_iters` timed forwards after `--warm_iters`.
`--resume` loads a checkpoint's `model` strictly; VkD checkpoints also hold the projectors, so they are attached
first when the checkpoint has them (the original's strict load failed on them). Runs on CUDA when available (the
original required it), else on the CPU.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence

import torch

from kdrepro_shared.benchmark import synchronize
from kdrepro_shared.errors import KdReproError, exit_on_user_error
from vkd.vidt.arguments import get_args_parser
from vkd.vidt.datasets import build_dataset
from vkd.vidt.methods import PROJECTOR_NAMES, attach_projectors, build_model, load_detector_state, read_checkpoint
from vkd.vidt.util.misc import nested_tensor_from_tensor_list


def get_benchmark_arg_parser() -> argparse.ArgumentParser:
    """The benchmark's own flags; the rest go to `arguments.get_args_parser`."""
    parser = argparse.ArgumentParser("Benchmark inference speed of ViDT.")
    parser.add_argument("--num_iters", type=int, default=300, help="total iters to benchmark speed")
    parser.add_argument("--warm_iters", type=int, default=5, help="ignore first several iters that are very slow")
    parser.add_argument("--batch_size", type=int, default=1, help="batch size in inference")
    parser.add_argument("--resume", type=str, help="load the pre-trained checkpoint")
    return parser


@torch.no_grad()
def measure_average_inference_time(model: torch.nn.Module, inputs, num_iters: int = 100, warm_iters: int = 5) -> float:
    """Mean seconds per forward over the iterations after the first `warm_iters`."""
    device = inputs.tensors.device
    times = []
    for step in range(num_iters):
        synchronize(device)
        start = time.perf_counter()
        model(inputs)
        synchronize(device)
        if step >= warm_iters:
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def benchmark(argv: Sequence[str] | None = None) -> float:
    """Frames per second of the benchmark model (see the module docstring)."""
    args, rest = get_benchmark_arg_parser().parse_known_args(argv)
    main_args = get_args_parser().parse_args(rest)
    if not (0 <= args.warm_iters < args.num_iters and args.batch_size > 0):
        raise KdReproError("need 0 <= --warm_iters < --num_iters and --batch_size > 0")
    main_args.method, main_args.backbone_name, main_args.pre_trained = "vidt", "swin_nano", "none"
    main_args.eval_size, main_args.dec_layers, main_args.dim_feedforward = 800, 6, 1024
    main_args.aux_loss = main_args.with_box_refine = True
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    main_args.device = device.type
    dataset = build_dataset("val", main_args)
    model, _, _ = build_model(main_args)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"num of total trainable prams:{math.floor(trainable / 1e6)}M")
    if args.resume is not None:
        state = read_checkpoint(args.resume)["model"]
        if any(key.startswith(PROJECTOR_NAMES[0]) for key in state):
            attach_projectors(model)
        load_detector_state(model, state, strict=True)
    model.to(device).eval()
    image = dataset[0][0].to(device)
    inputs = nested_tensor_from_tensor_list([image for _ in range(args.batch_size)])
    seconds = measure_average_inference_time(model, inputs, args.num_iters, args.warm_iters)
    return args.batch_size / seconds


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    """Print the inference speed."""
    print(f"Inference Speed: {benchmark(argv):.1f} FPS")


if __name__ == "__main__":
    main()
