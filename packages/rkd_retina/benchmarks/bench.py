"""Training and matching throughput of the three RKD networks (SuperRetina, LKUNet, Swin student) on synthetic fundi.

"train images/s" times one optimiser step as the train scripts take it: batch 1 (config/train.yaml), Adam lr 1e-4,
the model's training forward with PKE on (`RetinaKeypointModel.training_losses`: the network, a no-grad pass on a
detector warp, PKE with the value map, a pass on a descriptor warp and the triplet loss; the Swin student adds the
frozen teacher's pass and the two reverse-distillation losses), backward and step. Its reference is the eval-mode,
no-grad forward of the same network (images/s). "predictor pairs/s" times `Predictor.compute_homography` on a
FIRE-sized synthetic pair (`synthetic_fundus` and its rotated, shifted copy): read and enhance both images, one
batch-2 forward, NMS, descriptor sampling, ratio matching and LMEDS; its reference is that batch-2 forward alone.
`test_on_FIRE` with the matching trick runs `compute_homography` twice per pair.

Weights are deterministic (seeded init); the Swin teacher is such a SuperRetina, saved to a temporary folder first.
The original wraps training in `torch.autograd.set_detect_anomaly(True)`; pass `--detect-anomaly` to time that too.

Run: `python packages/rkd_retina/benchmarks/bench.py [--device auto|cpu|cuda] [--size 768]`
(or `python3 noxfile.py -s "bench(package='rkd_retina')"`). The size is the paper's 768 everywhere; on two CPU cores
one 768² training step takes about a minute, so pass `--size 256` for a quick look.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image
from torch import nn
from torch.backends import cudnn
from torchvision import transforms

from kdrepro_shared.benchmark import device_name, throughput
from kdrepro_shared.device import resolve_device
from rkd_retina.common.common_util import pre_processing
from rkd_retina.dataset.fire import list_fire_pairs, write_fake_fire
from rkd_retina.dataset.procedural_fundus import draw_fundus
from rkd_retina.model.registry import get_model_class
from rkd_retina.predictor import Predictor

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
NETWORKS = ("SuperRetina", "LKUNet", "Swin")
FIRE_SIZE = 2912  # native FIRE resolution: the predictor enhances and matches at the raw size
LEARNING_RATE = 1e-4  # the train scripts' Adam
SEED = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; warm-up/timed iterations default to 1/2 on CPU and 5/20 on CUDA."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--size", type=int, default=768, help="model input size (the paper trains at 768)")
    parser.add_argument("--raw-size", type=int, default=FIRE_SIZE, help="size of the predictor's image pair")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations first (default: 1 CPU, 5 CUDA)")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations (default: 2 CPU, 20 CUDA)")
    parser.add_argument("--detect-anomaly", action="store_true", help="train under set_detect_anomaly(True)")
    return parser.parse_args(argv)


def train_config(size: int) -> dict[str, Any]:
    """config/train.yaml with its four sections merged into one flat dict (as the train scripts do), at `size`."""
    sections = yaml.safe_load((CONFIG_DIR / "train.yaml").read_text())
    flat = {key: value for section in sections.values() for key, value in section.items()}
    return flat | {"model_image_width": size, "model_image_height": size}


def predict_config(size: int, device: torch.device) -> dict[str, Any]:
    """config/test.yaml's PREDICT section at model size `size` on `device`."""
    config = yaml.safe_load((CONFIG_DIR / "test.yaml").read_text())
    config["PREDICT"] |= {"device": str(device), "model_image_width": size, "model_image_height": size}
    return config


def write_teacher(folder: Path) -> Path:
    """A `{'net', 'optimizer', 'epoch'}` SuperRetina checkpoint with seeded weights (the Swin student's teacher)."""
    torch.manual_seed(SEED)
    path = folder / "SuperRetina.pth"
    torch.save({"net": get_model_class("SuperRetina")().state_dict(), "optimizer": {}, "epoch": 0}, path)
    return path


def build_model(name: str, config: dict[str, Any], device: torch.device, teacher: Path) -> nn.Module:
    """Network `name` with seeded weights and its training attributes (`config`), on `device`."""
    torch.manual_seed(SEED)
    extra = {"img_size": (config["model_image_height"],) * 2, "teacher_path": teacher} if name == "Swin" else {}
    return get_model_class(name)(config, device, **extra)


def training_batch(size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(image, label map, uint8 value map, learn_index) of one labelled synthetic fundus, as the train loop feeds it."""
    fundus = draw_fundus(size, SEED)
    image = transforms.ToTensor()(Image.fromarray(pre_processing(fundus.image[:, :, 1])))[None]
    labels = torch.zeros_like(image)
    cols, rows = fundus.keypoints.astype(np.int64).T
    labels[0, 0, rows, cols] = 1
    value_map = torch.zeros(image.shape, dtype=torch.uint8)
    learn_index = torch.where(torch.tensor([True]))
    return image.to(device), labels.to(device), value_map.to(device), learn_index


def train_runner(model: nn.Module, size: int, device: torch.device) -> Callable[[int], None]:
    """n training steps (zero_grad, training forward with PKE on, backward, Adam step) on one fixed batch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    image, labels, value_map, learn_index = training_batch(size, device)
    model.PKE_learn = True

    def run(steps: int) -> None:
        model.train()
        for _ in range(steps):
            optimizer.zero_grad()
            loss = model(image, labels, value_map, learn_index)[0]
            loss.backward()
            optimizer.step()

    return run


def forward_runner(model: nn.Module, batch: int, size: int, device: torch.device) -> Callable[[int], None]:
    """n eval-mode, no-grad forwards of a batch of `batch` images."""
    images = torch.rand(batch, 1, size, size, device=device)

    def run(steps: int) -> None:
        model.eval()
        with torch.no_grad():
            for _ in range(steps):
                model(images)

    return run


def predictor_runner(model: nn.Module, config: dict[str, Any], pair_dir: Path) -> Callable[[int], None]:
    """n `Predictor.compute_homography` calls on the synthetic FIRE-style pair in `pair_dir`."""
    predictor = Predictor(config, model=model)
    pair = list_fire_pairs(pair_dir / "FIRE")[0]

    def run(steps: int) -> None:
        for _ in range(steps):
            predictor.compute_homography(str(pair.query_path), str(pair.refer_path))

    return run


def measure_network(name: str, args: argparse.Namespace, device: torch.device, scratch: Path) -> dict[str, Any]:
    """Parameters and the four throughputs of one network."""
    config = train_config(args.size)
    model = build_model(name, config, device, scratch / "SuperRetina.pth")
    timing = {"warmup": args.warmup, "iters": args.iters, "device": device}
    row: dict[str, Any] = {"network": name, "params": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    with torch.autograd.set_detect_anomaly(args.detect_anomaly):
        row["train"] = throughput(train_runner(model, args.size, device), items=1, **timing)
    row["forward"] = throughput(forward_runner(model, 1, args.size, device), items=1, **timing)
    row["pair_forward"] = throughput(forward_runner(model, 2, args.size, device), items=1, **timing)
    predictor = predictor_runner(model, predict_config(args.size, device), scratch)
    row["predictor"] = throughput(predictor, items=1, **timing)
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: training and predictor throughput, each beside its forward-only reference."""
    lines = [
        "| network | trainable params | train images/s | eval forward images/s (reference) | predictor pairs/s "
        "| batch-2 forward pairs/s (reference) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['network']} | {r['params']:,} | {r['train']:.3f} | {r['forward']:.3f} | {r['predictor']:.3f} "
        f"| {r['pair_forward']:.3f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Measure every network and print the table (the models' and predictor's own prints are swallowed)."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    on_cuda = device.type == "cuda"
    args.warmup = args.warmup if args.warmup is not None else (5 if on_cuda else 1)
    args.iters = args.iters if args.iters is not None else (20 if on_cuda else 2)
    cudnn.deterministic = True  # as the train scripts set it
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
        scratch = Path(folder)
        write_teacher(scratch)
        write_fake_fire(scratch, pairs=["S01"], size=args.raw_size)
        rows = [measure_network(name, args, device, scratch) for name in args.networks]
    print(
        f"\nRKD networks at {args.size}×{args.size}, batch 1 (predictor: one {args.raw_size}² pair), "
        f"{device_name(device)}, {args.warmup} warm-up + {args.iters} timed iterations"
    )
    print(f"\n{format_table(rows)}")


if __name__ == "__main__":
    main()
