"""Run meters and the SVD ranking score of the original `metric.py`.

`SmoothedValue`/`MetricLogger` keep the original's interface (`log_every` yields `(i, item)`, lines go to a
`logging.Logger` on rank 0, `sync()` all-reduces the global averages) but also run without CUDA or a process
group. `APScorer` is the AP used by the SVD evaluator: normalised by the relevant items inside the cut-off.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

import torch
from tqdm import tqdm

from kdrepro_shared import logging as kdrepro_logging

T = TypeVar("T")
_MB = 1024.0 * 1024.0


class SmoothedValue(kdrepro_logging.SmoothedValue):
    """The shared meter with the original's differences: an unbounded window by default, window statistics in
    float32 (the SVD evaluator reports `avg` over all queries), and `sync()` as the name of the rank all-reduce."""

    def __init__(self, window_size: int | None = None, fmt: str | None = None) -> None:
        super().__init__(window_size, "{median:.4f} ({global_avg:.4f})" if fmt is None else fmt)  # type: ignore[arg-type]

    def sync(self) -> None:
        """Sum count and total over ranks (float64, on the backend's device); the window stays local."""
        self.synchronize_between_processes()

    @property
    def median(self) -> float:
        """Median of the window in float32 (the lower middle value for even windows, as torch does)."""
        return torch.tensor(list(self.deque), dtype=torch.float32).median().item()

    @property
    def avg(self) -> float:
        """Mean of the window in float32."""
        return torch.tensor(list(self.deque), dtype=torch.float32).mean().item()


class MetricLogger:
    """Named meters plus a progress generator that logs to `logger` (None: silent, as on non-main ranks)."""

    def __init__(self, logger: logging.Logger | None, delimiter: str = "\t") -> None:
        self.meters: defaultdict[str, SmoothedValue] = defaultdict(SmoothedValue)
        self.delimiter = delimiter
        self.logger = logger

    def update(self, **kwargs: float | int | torch.Tensor) -> None:
        """Record one value per meter; 0-d tensors are read with `.item()`."""
        for name, value in kwargs.items():
            number = value.item() if isinstance(value, torch.Tensor) else value
            if not isinstance(number, (float, int)):
                raise TypeError(f"meter {name!r} takes a float or int, got {type(number).__name__}")
            self.meters[name].update(number)

    def __getattr__(self, name: str) -> SmoothedValue:
        meters = self.__dict__.get("meters", {})
        if name in meters:
            return meters[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __str__(self) -> str:
        return self.delimiter.join(f"{name}: {meter}" for name, meter in self.meters.items())

    def add_meter(self, name: str, meter: SmoothedValue) -> None:
        """Register a meter with its own window or format."""
        self.meters[name] = meter

    def sync(self) -> None:
        """All-reduce every meter's global statistics."""
        for meter in self.meters.values():
            meter.sync()

    def log_every(
        self, iterable: Iterable[T], log_freq: int, header: str | None = None, iterations: int | None = None
    ) -> Iterator[tuple[int, T]]:
        """Yield `(i, item)` for the first `iterations` items, logging a progress line every `log_freq` and last."""
        total = len(iterable) if iterations is None else iterations  # type: ignore[arg-type]
        items = islice(iterable, 0, total)
        if self.logger is None:
            yield from enumerate(items)
            return
        header = "" if header is None else header
        iter_time = SmoothedValue(fmt="{avg:.4f}")
        data_time = SmoothedValue(fmt="{avg:.4f}")
        start = end = time.time()
        with tqdm(items, total=total, desc=header or None, dynamic_ncols=True, leave=False) as bar:
            for i, item in enumerate(bar):
                data_time.update(time.time() - end)
                yield i, item
                iter_time.update(time.time() - end)
                if i == total - 1 or i % log_freq == 0:
                    self.logger.info(self._progress_line(header, i, total, iter_time, data_time))
                end = time.time()
        elapsed = time.time() - start
        self.logger.info(
            self.delimiter.join([header, f"Total time: {datetime.timedelta(seconds=int(elapsed))} "])
            + f"({elapsed / max(total, 1):.4f} s / it)"
        )

    def _progress_line(
        self, header: str, i: int, total: int, iter_time: SmoothedValue, data_time: SmoothedValue
    ) -> str:
        """The original's progress line: position, eta, meters, timings (and reserved GPU memory on CUDA)."""
        eta = datetime.timedelta(seconds=int(iter_time.global_avg * (total - i)))
        width = len(str(total))
        cuda = torch.cuda.is_available()
        parts = [header, f"{'Iter: ' if cuda else ''}[{i + 1:{width}d}/{total}]", f"eta: {eta}", str(self)]
        parts += [f"iter time: {iter_time}", f"data time: {data_time}"]
        if cuda:
            parts.append(f"gpu mem: {torch.cuda.memory_reserved() / _MB:.0f}MB")
        return self.delimiter.join(parts)


class MetricScorer:
    """A ranking score over labels sorted by decreasing similarity, cut at `k` (k <= 0: the whole list)."""

    def __init__(self, k: int = 0) -> None:
        self.k = k

    def score(self, sorted_labels: Sequence[Any]) -> float:
        """The base scorer scores every ranking 0."""
        return 0.0

    def length(self, sorted_labels: Sequence[Any]) -> int:
        """Number of ranked items the score looks at: `k`, or all when `k` is non-positive or too large."""
        return len(sorted_labels) if self.k <= 0 or self.k > len(sorted_labels) else self.k

    def set_length(self, k: int) -> None:
        """Change the cut-off."""
        self.k = k

    def name(self) -> str:
        """Short name, e.g. "AP" or "AP@100"."""
        base = type(self).__name__.replace("Scorer", "")
        return f"{base}@{self.k}" if self.k > 0 else base


class APScorer(MetricScorer):
    """Average precision of the first `length` items, divided by the relevant items among them (not all positives)."""

    def score(self, sorted_labels: Sequence[Any]) -> float:
        """AP@k as the original computes it; 0.0 when nothing relevant is ranked inside the cut-off."""
        head = list(sorted_labels[: self.length(sorted_labels)])
        hits = 0
        total = 0.0
        for position, label in enumerate(head, start=1):
            if label > 0:
                hits += 1
                total += hits / position
        return total / hits if hits else 0.0
