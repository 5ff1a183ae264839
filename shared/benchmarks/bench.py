"""Throughput of kdrepro_shared's hot paths, each printed beside the figure it is compared to.

- fetch: streaming download + sha256 from a local HTTP server, against hashing the same bytes in memory;
- save: atomic checkpoint write (temp file, fsync, rename), against a plain `torch.save`;
- CIFAR-100 reader: images/s through a DataLoader with RepDistiller's train transform, against torchvision's
  CIFAR100 reading the same files.

Run: `python shared/benchmarks/bench.py` (or `python3 noxfile.py -s "bench(package='shared')"`).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import torch
import torchvision
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from kdrepro_shared.checkpoints import fetch, save
from kdrepro_shared.data import CIFAR100, write_fake_cifar

MB = 1 << 20


def best_of(repeats: int, run: Callable[[], None]) -> float:
    """Fastest wall time of `repeats` runs, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        """Keep the benchmark output to the table."""


def bench_fetch(work: Path, size_mb: int, repeats: int) -> tuple[float, float]:
    """MB/s of `fetch` over 127.0.0.1 and MB/s of sha256 over the same bytes in memory."""
    payload = torch.randint(0, 256, (size_mb * MB,), dtype=torch.uint8).numpy().tobytes()
    (work / "served").mkdir()
    (work / "served" / "blob.bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(work / "served")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/blob.bin"

    def one_fetch() -> None:
        dest = Path(tempfile.mkdtemp(dir=work))
        fetch(url, dest_dir=dest, sha256=digest, progress=False)

    try:
        fetch_s = best_of(repeats, one_fetch)
    finally:
        server.shutdown()
    hash_s = best_of(repeats, lambda: hashlib.sha256(payload).hexdigest())
    return size_mb / fetch_s, size_mb / hash_s


def bench_save(work: Path, size_mb: int, repeats: int) -> tuple[float, float]:
    """MB/s of the atomic `save` and of a plain `torch.save` of the same state dict."""
    state = {"model": {"weight": torch.randn(size_mb * MB // 4)}, "epoch": 1}
    atomic_s = best_of(repeats, lambda: save(work / "atomic.pth", state))
    plain_s = best_of(repeats, lambda: torch.save(state, work / "plain.pth"))
    return size_mb / atomic_s, size_mb / plain_s


def images_per_second(dataset: Dataset, batch_size: int, workers: int) -> float:
    """Images/s of one pass of a shuffled DataLoader over `dataset`."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)
    start = time.perf_counter()
    count = sum(len(images) for images, _ in loader)
    return count / (time.perf_counter() - start)


def bench_cifar(work: Path, n_train: int, workers: int) -> tuple[float, float]:
    """Images/s of our CIFAR-100 reader and of torchvision's, with RepDistiller's train transform."""
    write_fake_cifar(work / "cifar", num_classes=100, n_train=n_train, n_test=100)
    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
        ]
    )
    ours = images_per_second(CIFAR100(work / "cifar", train=True, transform=transform), 64, workers)
    # torchvision md5-checks the files, which a fake copy fails: skip that check only.
    with mock.patch.object(torchvision.datasets.cifar, "check_integrity", return_value=True):
        reference = torchvision.datasets.CIFAR100(work / "cifar", train=True, transform=transform)
    theirs = images_per_second(reference, 64, workers)
    return ours, theirs


def main() -> None:
    """Run the three benchmarks and print one markdown table."""
    parser = argparse.ArgumentParser(description="kdrepro_shared throughput")
    parser.add_argument("--size-mb", type=int, default=256, help="payload of the fetch and save benchmarks")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cifar-images", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fetch_mbs, hash_mbs = bench_fetch(work, args.size_mb, args.repeats)
        save_mbs, torch_save_mbs = bench_save(work, args.size_mb, args.repeats)
        ours, theirs = bench_cifar(work, args.cifar_images, args.workers)
    print("| path | kdrepro_shared | compared to | reference |")
    print("| --- | --- | --- | --- |")
    print(f"| fetch (127.0.0.1, sha256 streamed) | {fetch_mbs:.0f} MB/s | sha256 in memory | {hash_mbs:.0f} MB/s |")
    print(f"| atomic save (fsync + rename) | {save_mbs:.0f} MB/s | plain torch.save | {torch_save_mbs:.0f} MB/s |")
    print(f"| CIFAR-100 reader + train transform | {ours:.0f} img/s | torchvision CIFAR100 | {theirs:.0f} img/s |")


if __name__ == "__main__":
    main()
