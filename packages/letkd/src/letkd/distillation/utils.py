"""Running meters and accuracy helpers shared by the algorithms (the original `distillation.utils`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class BaseMeter:
    """Running sum and count of a scalar or 1-D value; `avg` is the mean of everything added since the last reset."""

    def __init__(self, name: str | None = None, _run: Any = None) -> None:
        self.name = name
        self._run = _run
        self.reset()

    def reset(self) -> None:
        """Forget every value added so far."""
        self.val: np.ndarray | None = None
        self.sum: np.ndarray | None = None
        self.count = 0

    def update(self, array: Any) -> None:
        """Add one value (a number, a list or an array), accumulated in float64."""
        self.val = np.asarray(array).astype(np.float64)
        self.sum = np.copy(self.val) if self.count == 0 else self.sum + self.val
        self.count += 1

    @property
    def avg(self) -> Any:
        """The mean of the added values (a numpy float64 scalar for scalar inputs)."""
        return self.sum / self.count

    def log(self) -> None:
        """Send the average to sacred's `log_scalar` (one scalar per entry for 1-D values) when a run is attached."""
        if self.name is None or self._run is None or self.sum.ndim > 1:
            return
        average = self.avg
        if average.ndim == 0:
            self._run.log_scalar(self.name, average)
            return
        for index, scalar in enumerate(average):
            self._run.log_scalar(f"{self.name}_{index}", scalar)

    def __str__(self) -> str:
        average = self.avg
        if average.ndim == 0:
            return f"{average:.4f}"
        if average.ndim == 1:
            return " ".join(f"{scalar:.4f}" for scalar in average)
        raise TypeError("cannot print a meter whose values have more than one dimension")


class DAverageMeter:
    """A dict of meters keyed like the step records; nested dicts become nested `DAverageMeter`s."""

    def __init__(self, name: str | None = None, _run: Any = None) -> None:
        self.values: dict[str, BaseMeter | DAverageMeter] = {}
        self.name = name
        self._run = _run

    def reset(self) -> None:
        """Drop every meter."""
        self.values = {}

    def update(self, values: dict[str, Any]) -> None:
        """Add one record: numbers and lists go to `BaseMeter`s, dicts to nested `DAverageMeter`s."""
        if not isinstance(values, dict):
            raise TypeError(f"DAverageMeter.update expects a dict, got {type(values)}")
        for key, val in values.items():
            if isinstance(val, float | int | list):
                meter_type: type[BaseMeter] | type[DAverageMeter] = BaseMeter
            elif isinstance(val, dict):
                meter_type = DAverageMeter
            else:
                raise TypeError(f"Wrong type {type(val)}")
            if key not in self.values:
                self.values[key] = meter_type(self.make_name(key), self._run)
            self.values[key].update(val)

    def average(self) -> dict[str, Any]:
        """The averages, with the same (nested) keys as the records."""
        return {key: _average_of(meter) for key, meter in self.values.items()}

    def make_name(self, key: str) -> str:
        """The sacred metric name of entry `key`: `<meter name>_<key>`."""
        return f"{self.name}_{key}"

    def log(self) -> None:
        """Log every entry to sacred."""
        for meter in self.values.values():
            meter.log()

    def __str__(self) -> str:
        return str({key: str(meter) for key, meter in self.values.items()})


def _average_of(meter: BaseMeter | DAverageMeter) -> Any:
    """A meter's average: a dict for nested meters, an array or scalar otherwise."""
    return meter.average() if isinstance(meter, DAverageMeter) else meter.avg


def compute_top1_and_top5_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Top-1 and top-5 accuracy in percent, computed in numpy."""
    _, topk_labels = scores.topk(5, 1, True, True)
    label_ind = labels.cpu().numpy()
    topk_ind = topk_labels.cpu().numpy()
    top1_correct = topk_ind[:, 0] == label_ind
    top5_correct = np.sum(topk_ind == label_ind.reshape((-1, 1)), axis=1)
    return top1_correct.astype(float).mean() * 100, top5_correct.astype(float).mean() * 100


def top1accuracy_tensor(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """100 × the fraction of rows whose argmax equals the target, as a 0-d tensor."""
    pred = output.max(dim=1)[1].view(-1)
    return 100 * pred.eq(target.view(-1)).float().mean()


def top1accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Top-1 accuracy in percent as a python float."""
    return top1accuracy_tensor(output, target).item()


def accuracy(output: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1,)) -> list[torch.Tensor]:
    """Top-k accuracies in percent, one 1-element tensor per k (the torchvision ImageNet example's formula)."""
    with torch.no_grad():
        batch_size = target.size(0)
        _, pred = output.topk(max(topk), 1, True, True)
        correct = pred.t().eq(target.view(1, -1).expand(pred.size(1), -1))
        return [correct[:k].reshape(-1).float().sum(0, keepdim=True).mul_(100.0 / batch_size) for k in topk]
