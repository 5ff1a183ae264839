"""`--gpu_loader`: the CIFAR train set held on the device as uint8, augmented there batch by batch.

It keeps the seed's pipeline exactly: RandomCrop(32, padding=4) with zero fill on the raw image,
RandomHorizontalFlip(0.5), ToTensor (÷255) and Normalize with the seed's constants, in torchvision's float32 ops. The
batch order comes from an index-only DataLoader (the seed's shuffle, drop_last and, for CRD, its numpy negative sampler
in the workers), so every method gets the tuples it gets from the seed's loaders.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from distillers_icd_rrd.datasets._common import CIFAR_MEAN, CIFAR_STD, InstanceSampleMixin
from distillers_icd_rrd.datasets.cifar10 import CIFAR10Instance
from distillers_icd_rrd.datasets.cifar100 import CIFAR100Instance
from kdrepro_shared.seed import seed_worker

SIZE = 32
PADDING = 4


def draw_augment(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, (top, left) crop offsets in [0, 2·padding] and a horizontal-flip decision with p = 0.5."""
    device = generator.device
    offsets = torch.randint(0, 2 * PADDING + 1, (n, 2), generator=generator, device=device)
    flips = torch.rand(n, generator=generator, device=device) < 0.5
    return offsets, flips


def augment(
    images: torch.Tensor,
    offsets: torch.Tensor,
    flips: torch.Tensor,
    mean: Sequence[float] = CIFAR_MEAN,
    std: Sequence[float] = CIFAR_STD,
) -> torch.Tensor:
    """Zero-pad uint8 (N, 3, 32, 32) images by 4, crop 32×32 at `offsets`, flip where `flips`, ÷255, normalise."""
    padded = F.pad(images, (PADDING, PADDING, PADDING, PADDING))
    span = torch.arange(SIZE, device=images.device)
    rows = offsets[:, :1] + span
    cols = offsets[:, 1:] + torch.where(flips[:, None], SIZE - 1 - span, span)
    batch = torch.arange(images.shape[0], device=images.device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    crops = padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    return crops.float().div(255).sub(mean_t).div(std_t)


def item_kind(dataset: Dataset) -> str:
    """What the seed's loader yields for `dataset`: 'sample' (CRD), 'instance' (with the index) or 'plain'."""
    if isinstance(dataset, InstanceSampleMixin):
        return "sample" if dataset.is_sample else "instance"
    return "instance" if isinstance(dataset, CIFAR100Instance | CIFAR10Instance) else "plain"


class _Indices(Dataset):
    """The train set reduced to its indices, plus CRD's contrast indices drawn by the dataset's own sampler."""

    def __init__(self, dataset: Any, sample: bool) -> None:
        self.dataset = dataset
        self.sample = sample

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        """`index`, or (index, [positive, k negatives]) for CRD."""
        if not self.sample:
            return index
        return index, self.dataset.contrast_indices(index, self.dataset.targets[index])


class GpuCifarLoader:
    """Iterates like the seed's train DataLoader over a CIFAR set, with the images resident and augmented on `device`.

    Each epoch draws one seed from torch's global RNG (as a shuffling DataLoader does), which seeds the shuffle and the
    augmentation generators, so `torch.manual_seed` and `--resume` reproduce it. `sampler` (e.g. a DistributedSampler)
    replaces the shuffle; `set_epoch` is forwarded to it.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        *,
        device: torch.device,
        drop_last: bool,
        sampler: Sampler[int] | None = None,
        num_workers: int = 0,
        channels_last: bool = False,
    ) -> None:
        self.device = device
        self.kind = item_kind(dataset)
        self.images = torch.from_numpy(dataset.data).to(device).permute(0, 3, 1, 2).contiguous()
        self.targets = torch.as_tensor(dataset.targets, dtype=torch.long, device=device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.shuffle_generator = torch.Generator()
        self.augment_generator = torch.Generator(device=device)
        self.sampler = sampler
        self.indices = DataLoader(
            _Indices(dataset, self.kind == "sample"),
            batch_size=batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            num_workers=num_workers,
            drop_last=drop_last,
            generator=self.shuffle_generator,
            worker_init_fn=seed_worker,
        )

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to a DistributedSampler (its shuffle is seeded by seed + epoch)."""
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        self.shuffle_generator.manual_seed(seed)
        self.augment_generator.manual_seed(seed)
        for batch in self.indices:
            yield self._batch(*batch) if self.kind == "sample" else self._batch(batch)

    def _batch(self, index: torch.Tensor, contrast_idx: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The seed's tuple for one batch of dataset indices: (img, target[, index[, contrast_idx]])."""
        on_device = index.to(self.device, non_blocking=True)
        offsets, flips = draw_augment(len(index), self.augment_generator)
        images = augment(self.images[on_device], offsets, flips).contiguous(memory_format=self.memory_format)
        targets = self.targets[on_device]
        if self.kind == "plain":
            return images, targets
        if self.kind == "instance":
            return images, targets, index
        return images, targets, index, contrast_idx
