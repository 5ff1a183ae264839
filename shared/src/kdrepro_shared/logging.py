"""Run logging: TensorBoard events on the main process, DeiT-style smoothed metrics behind a tqdm bar, args.yaml."""

from __future__ import annotations

import argparse
import os
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import yaml
from tensorboardX import SummaryWriter
from tqdm import tqdm

from kdrepro_shared.distributed import comm_device, is_dist_avail_and_initialized, is_main_process
from kdrepro_shared.plain import args_to_dict

T = TypeVar("T")


class NullSummaryWriter:
    """Stands in for `SummaryWriter` on non-main ranks or when logging is off: every `add_*` call does nothing."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        """Ignore a scalar."""

    def add_scalars(self, *args: Any, **kwargs: Any) -> None:
        """Ignore a group of scalars."""

    def add_histogram(self, *args: Any, **kwargs: Any) -> None:
        """Ignore a histogram."""

    def __getattr__(self, name: str) -> Any:
        """Any other `add_*` method of `SummaryWriter` (add_image, add_text, ...) is a no-op too."""
        if name.startswith("add_"):
            return self.add_scalar
        raise AttributeError(name)

    def flush(self) -> None:
        """Nothing to flush."""

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> NullSummaryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def create_summary_writer(log_dir: str | os.PathLike[str], enabled: bool = True) -> SummaryWriter | NullSummaryWriter:
    """A tensorboardX `SummaryWriter` into `log_dir` on the main process, a `NullSummaryWriter` elsewhere or if off."""
    if enabled and is_main_process():
        return SummaryWriter(logdir=str(log_dir))
    return NullSummaryWriter()


class SmoothedValue:
    """A metric's recent window (median, avg, max, value) and its whole-run average (global_avg), as in DeiT."""

    def __init__(self, window_size: int = 20, fmt: str = "{median:.4f} ({global_avg:.4f})") -> None:
        self.deque: deque[float] = deque(maxlen=window_size)
        self.total = 0.0
        self.count = 0
        self.fmt = fmt

    def update(self, value: float, n: int = 1) -> None:
        """Record `value`, standing for `n` samples in the global average."""
        self.deque.append(value)
        self.count += n
        self.total += value * n

    def synchronize_between_processes(self) -> None:
        """Sum count and total over all ranks so `global_avg` covers the whole job (the window stays local)."""
        if not is_dist_avail_and_initialized():
            return
        stats = torch.tensor([self.count, self.total], dtype=torch.float64, device=comm_device())
        dist.all_reduce(stats)
        self.count = int(stats[0].item())
        self.total = stats[1].item()

    @property
    def median(self) -> float:
        """Median of the window (the lower one for an even window, as torch computes it)."""
        return torch.tensor(list(self.deque)).median().item()

    @property
    def avg(self) -> float:
        """Mean of the window."""
        return torch.tensor(list(self.deque), dtype=torch.float64).mean().item()

    @property
    def global_avg(self) -> float:
        """Mean over every update since creation, weighted by `n`."""
        return self.total / self.count

    @property
    def max(self) -> float:
        """Largest value in the window."""
        return max(self.deque)

    @property
    def value(self) -> float:
        """The latest value."""
        return self.deque[-1]

    def __str__(self) -> str:
        return self.fmt.format(
            median=self.median, avg=self.avg, global_avg=self.global_avg, max=self.max, value=self.value
        )


class MetricLogger:
    """Named `SmoothedValue` meters, shown in a tqdm bar's postfix while iterating (DeiT's MetricLogger with tqdm)."""

    def __init__(self, delimiter: str = "  ", window_size: int = 20) -> None:
        self.meters: defaultdict[str, SmoothedValue] = defaultdict(lambda: SmoothedValue(window_size))
        self.delimiter = delimiter

    def update(self, **kwargs: float | torch.Tensor) -> None:
        """Record one value per meter name (0-d tensors are read with `.item()`); weight one with `meters[name]`."""
        for name, value in kwargs.items():
            self.meters[name].update(value.item() if isinstance(value, torch.Tensor) else float(value))

    def add_meter(self, name: str, meter: SmoothedValue) -> None:
        """Register a meter with its own window or format."""
        self.meters[name] = meter

    def __getattr__(self, name: str) -> SmoothedValue:
        meters = self.__dict__.get("meters", {})
        if name in meters:
            return meters[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __str__(self) -> str:
        return self.delimiter.join(f"{name}: {meter}" for name, meter in self.meters.items() if meter.deque)

    def synchronize_between_processes(self) -> None:
        """Synchronise every meter's global average across ranks."""
        for meter in self.meters.values():
            meter.synchronize_between_processes()

    def log_every(self, iterable: Iterable[T], print_freq: int, header: str | None = None) -> Iterator[T]:
        """Yield from `iterable` behind a tqdm bar titled `header` (shown on the main process only).

        After every `print_freq`-th step and the last one, the bar's postfix shows the meters' current values.
        """
        with tqdm(iterable, desc=header, disable=not is_main_process(), dynamic_ncols=True) as bar:
            for step, item in enumerate(bar):
                yield item
                if self.meters and (step % print_freq == 0 or step + 1 == bar.total):
                    bar.set_postfix_str(str(self), refresh=False)


def save_args_yaml(args: argparse.Namespace | Mapping[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write the run's resolved arguments to `out_dir/args.yaml` (in their given order) and return that path."""
    path = Path(out_dir) / "args.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(args_to_dict(args), sort_keys=False), encoding="utf-8")
    return path
