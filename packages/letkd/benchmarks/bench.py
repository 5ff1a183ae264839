"""Training throughput (images/s) of letKD-1 and letKD-2 steps on a paper config pair, beside the vanilla student.

It builds the real algorithm of a paper config (default ``CIFAR100.resnetv1.RN56_RN20``) in a temporary folder holding
stand-ins for the files the config loads: a randomly initialised teacher in the RepDistiller format, a k-means
quantizer with random centroids, and random LDA / sub-class files of the right shapes. One step = the algorithm's
`train_step` (teacher forward, targets, student forward/backward, SGD on every trained network) on a synthetic batch of
32×32 images. The reference figure is the vanilla student's cross-entropy step (fe + classifier, SGD) at the same
batch size, i.e. what the KD layers and targets cost on top of plain training.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kdrepro_shared.benchmark import throughput
from letkd.configs import load_config
from letkd.distillation import architectures
from letkd.distillation.algorithms.classification import ClassificationQUESTValue, ClassificationSubQUESTValue
from letkd.distillation.algorithms.clustering.cluster_utils import initialize_vector_quantizer
from letkd.distillation.architectures.tools import split_network

ALGORITHMS = {"letKD-1": ClassificationQUESTValue, "letKD-2": ClassificationSubQUESTValue}
LDA_RANK = 99  # sklearn keeps min(D, classes - 1) scalings columns; only the first 60 are used


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Pair, device, batch size and iteration counts (defaults depend on the device)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="CIFAR100.resnetv1.RN56_RN20", help="config folder of a paper pair")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch-size", type=int, default=64, help="the configs' batch size")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 5 on CUDA, 1 on the CPU)")
    parser.add_argument("--iters", type=int, default=None, help="timed steps (default: 20 on CUDA, 3 on the CPU)")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    on_cuda = args.device == "cuda"
    args.warmup = args.warmup if args.warmup is not None else (5 if on_cuda else 1)
    args.iters = args.iters or (20 if on_cuda else 3)
    return args


def write_stand_ins(config: dict[str, Any]) -> None:
    """Random teacher, quantizer and LDA files at the paths `config` names (relative to the working directory)."""
    rng = np.random.default_rng(0)
    networks = config["networks"]
    teacher = networks["teacher_net"]
    model = architectures.factory(architecture_name=teacher["def_file"], opt=teacher["opt"])
    Path(teacher["pretrained"]).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 240, "model": model.state_dict()}, teacher["pretrained"])
    vq = networks["vector_quantizer_target"]
    size, dim = vq["opt"]["num_embeddings"], vq["opt"]["embedding_dim"]
    quantizer = initialize_vector_quantizer(rng.random((size, dim), dtype=np.float32), [1] * size)
    vq_file = Path(vq["pretrained"].replace("*", "_.zip"))
    vq_file.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": "*", "network": quantizer.state_dict(), "metric": None}, vq_file)
    for net in networks.values():
        if not net["def_file"].endswith("valueLayer_subclass"):
            continue
        opt = net["opt"]
        Path(opt["lda_filename"]).parent.mkdir(parents=True, exist_ok=True)
        depth = dim  # in every paper pair the teacher hint has as many channels as the teacher's last map
        np.save(opt["lda_filename"] + "_scalings.npy", rng.standard_normal((depth, min(depth, LDA_RANK))))
        np.save(opt["lda_filename"] + "_xbar.npy", rng.random(depth))
        np.save(opt["centers_filename"], rng.standard_normal((opt["emb_size"], 60)))
        scores = rng.random((opt["emb_size"], opt["emb_size"]))
        np.save(opt["scores_filename"], scores / scores.sum(1, keepdims=True))


def letkd_step(name: str, config: dict[str, Any], batch: tuple[torch.Tensor, torch.Tensor], device: torch.device):
    """`train_step` of the letKD algorithm of `config`, with networks in their training modes."""
    algorithm = ALGORITHMS[name](config)
    algorithm.load_to_device(device)
    algorithm.init_all_optimizers()
    for key, network in algorithm.networks.items():
        network.train(algorithm.optimizers[key] is not None)
    return lambda: algorithm.train_step(batch)


def vanilla_step(config: dict[str, Any], batch: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> Callable:
    """The student's plain cross-entropy step with the configs' SGD settings (the reference figure)."""
    student = config["networks"]["student_net"]
    model = architectures.factory(architecture_name=student["def_file"], opt=student["opt"]).to(device).train()
    fe, clf = split_network(model, student["opt"]["extract_from"], student["opt"]["extract_after_relu"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    images, labels = batch

    def step() -> None:
        optimizer.zero_grad()
        F.cross_entropy(clf(fe(images)), labels).backward()
        optimizer.step()

    return step


def repeat(step: Callable[[], Any]) -> Callable[[int], None]:
    """`step` as the `run(n)` the shared timer calls."""

    def run(steps: int) -> None:
        for _ in range(steps):
            step()

    return run


def main(argv: Sequence[str] | None = None) -> None:
    """Print a markdown table: letKD-1 and letKD-2 train-step images/s beside the vanilla student's."""
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    batch = (
        torch.randn(args.batch_size, 3, 32, 32, device=device),
        torch.randint(0, 100, (args.batch_size,), device=device),
    )
    timing = {"warmup": args.warmup, "iters": args.iters, "items": args.batch_size, "device": device}
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"letKD train step on {args.pair}, batch {args.batch_size} of synthetic 32×32 images, {where}\n")
    print("| config | train step (img/s) | reference: vanilla student CE step (img/s) |")
    print("| --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(Path(tmp)):
        for name in ALGORITHMS:
            config = load_config(f"{args.pair}.{name}")
            config["exp_dir"] = str(Path(tmp) / "experiments" / name)
            write_stand_ins(config)
            letkd = throughput(repeat(letkd_step(name, config, batch, device)), **timing)
            reference = throughput(repeat(vanilla_step(config, batch, device)), **timing)
            print(f"| `{args.pair}.{name}` | {letkd:.1f} | {reference:.1f} |", flush=True)


if __name__ == "__main__":
    main()
