"""DETR's joint image + target transforms with ViDT's resize, whose output (h, w) is floored to multiples of 16.

Targets are dicts with xyxy `boxes` (absolute pixels until `Normalize`), `labels`, `area`, `iscrowd`, optional
`masks` (N, H, W) bool, and `size` (h, w). Randomness comes from python `random` and torchvision's crop sampler
(torch RNG), in the same order as the original, so seeded runs draw the same augmentations.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

from vkd.vidt.util.box_ops import box_xyxy_to_cxcywh
from vkd.vidt.util.misc import interpolate

Target = dict[str, torch.Tensor]
MULTIPLE = 16


def crop(image: Image.Image, target: Target, region: tuple[int, int, int, int]) -> tuple[Image.Image, Target]:
    """Crop `region` = (top, left, h, w); boxes are shifted and clipped, instances left with no area are dropped."""
    top, left, h, w = region
    target = target.copy()
    target["size"] = torch.tensor([h, w])
    fields = ["labels", "area", "iscrowd"]
    if "boxes" in target:
        shifted = target["boxes"] - torch.as_tensor([left, top, left, top])
        corners = torch.min(shifted.reshape(-1, 2, 2), torch.as_tensor([w, h], dtype=torch.float32)).clamp(min=0)
        target["boxes"] = corners.reshape(-1, 4)
        target["area"] = (corners[:, 1, :] - corners[:, 0, :]).prod(dim=1)
        fields.append("boxes")
    if "masks" in target:
        target["masks"] = target["masks"][:, top : top + h, left : left + w]
        fields.append("masks")
    if "boxes" in target or "masks" in target:
        if "boxes" in target:
            corners = target["boxes"].reshape(-1, 2, 2)
            keep = torch.all(corners[:, 1, :] > corners[:, 0, :], dim=1)
        else:
            keep = target["masks"].flatten(1).any(1)
        for field in fields:
            target[field] = target[field][keep]
    return F.crop(image, *region), target


def hflip(image: Image.Image, target: Target) -> tuple[Image.Image, Target]:
    """Mirror the image, its boxes and masks left-right."""
    w, _ = image.size
    target = target.copy()
    if "boxes" in target:
        boxes = target["boxes"][:, [2, 1, 0, 3]]
        target["boxes"] = boxes * torch.as_tensor([-1, 1, -1, 1]) + torch.as_tensor([w, 0, w, 0])
    if "masks" in target:
        target["masks"] = target["masks"].flip(-1)
    return F.hflip(image), target


def _floor16(value: int) -> int:
    return value - value % MULTIPLE


def resized_hw(image_size: tuple[int, int], size: int, max_size: int | None = None) -> tuple[int, int]:
    """ViDT's output (h, w) for short side `size` (capped so the long side stays ≤ `max_size`), floored to ×16.

    The floor also applies when the short side already equals `size`, so even an unscaled image may lose a few
    pixels (a slight aspect change) — kept because it changes results.
    """
    w, h = image_size
    if max_size is not None:
        short, long = float(min(w, h)), float(max(w, h))
        if long / short * size > max_size:
            size = round(max_size * short / long)
    if (w <= h and w == size) or (h <= w and h == size):
        return _floor16(h), _floor16(w)
    if w < h:
        return _floor16(int(size * h / w)), _floor16(size)
    return _floor16(size), _floor16(int(size * w / h))


def resize(
    image: Image.Image, target: Target | None, size: int | Sequence[int], max_size: int | None = None
) -> tuple[Image.Image, Target | None]:
    """Resize to `size` (a short side, see `resized_hw`, or an explicit (w, h)); boxes, area and masks follow."""
    out_hw = tuple(size[::-1]) if isinstance(size, (list, tuple)) else resized_hw(image.size, size, max_size)
    resized = F.resize(image, list(out_hw))
    if target is None:
        return resized, None
    ratio_w, ratio_h = (float(new) / float(old) for new, old in zip(resized.size, image.size, strict=True))
    target = target.copy()
    if "boxes" in target:
        target["boxes"] = target["boxes"] * torch.as_tensor([ratio_w, ratio_h, ratio_w, ratio_h])
    if "area" in target:
        target["area"] = target["area"] * (ratio_w * ratio_h)
    target["size"] = torch.tensor(list(out_hw))
    if "masks" in target:
        target["masks"] = interpolate(target["masks"][:, None].float(), out_hw, mode="nearest")[:, 0] > 0.5
    return resized, target


def pad(image: Image.Image, target: Target | None, padding: tuple[int, int]) -> tuple[Image.Image, Target | None]:
    """Pad `padding` = (x, y) pixels at the bottom-right corner."""
    padded = F.pad(image, [0, 0, padding[0], padding[1]])
    if target is None:
        return padded, None
    target = target.copy()
    target["size"] = torch.tensor(padded.size[::-1])
    if "masks" in target:
        target["masks"] = torch.nn.functional.pad(target["masks"], (0, padding[0], 0, padding[1]))
    return padded, target


class RandomCrop:
    """Crop a random region of fixed (h, w) `size`."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, img: Image.Image, target: Target) -> tuple[Image.Image, Target]:
        return crop(img, target, T.RandomCrop.get_params(img, self.size))


class RandomSizeCrop:
    """Crop a random region whose h and w are drawn in [min_size, min(image side, max_size)]."""

    def __init__(self, min_size: int, max_size: int) -> None:
        self.min_size = min_size
        self.max_size = max_size

    def __call__(self, img: Image.Image, target: Target) -> tuple[Image.Image, Target]:
        w = random.randint(self.min_size, min(img.width, self.max_size))
        h = random.randint(self.min_size, min(img.height, self.max_size))
        return crop(img, target, T.RandomCrop.get_params(img, [h, w]))


class CenterCrop:
    """Crop the central (h, w) `size` region."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, img: Image.Image, target: Target) -> tuple[Image.Image, Target]:
        width, height = img.size
        crop_h, crop_w = self.size
        top, left = round((height - crop_h) / 2.0), round((width - crop_w) / 2.0)
        return crop(img, target, (top, left, crop_h, crop_w))


class RandomHorizontalFlip:
    """`hflip` with probability `p`."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: Image.Image, target: Target) -> tuple[Image.Image, Target]:
        return hflip(img, target) if random.random() < self.p else (img, target)


class RandomResize:
    """`resize` to a short side chosen uniformly from `sizes`."""

    def __init__(self, sizes: Sequence[int], max_size: int | None = None) -> None:
        if not isinstance(sizes, (list, tuple)):
            raise TypeError("RandomResize needs a list or tuple of sizes")
        self.sizes = sizes
        self.max_size = max_size

    def __call__(self, img: Image.Image, target: Target | None = None) -> tuple[Image.Image, Target | None]:
        return resize(img, target, random.choice(self.sizes), self.max_size)


class RandomPad:
    """Pad up to `max_pad` random pixels at the bottom and right."""

    def __init__(self, max_pad: int) -> None:
        self.max_pad = max_pad

    def __call__(self, img: Image.Image, target: Target) -> tuple[Image.Image, Target]:
        return pad(img, target, (random.randint(0, self.max_pad), random.randint(0, self.max_pad)))


class RandomSelect:
    """`transforms1` with probability `p`, else `transforms2`."""

    def __init__(self, transforms1: Callable, transforms2: Callable, p: float = 0.5) -> None:
        self.transforms1 = transforms1
        self.transforms2 = transforms2
        self.p = p

    def __call__(self, img: Image.Image, target: Target) -> tuple[Image.Image, Target]:
        return self.transforms1(img, target) if random.random() < self.p else self.transforms2(img, target)


class ToTensor:
    """PIL image to a float tensor in [0, 1]."""

    def __call__(self, img: Image.Image, target: Target) -> tuple[torch.Tensor, Target]:
        return F.to_tensor(img), target


class RandomErasing:
    """torchvision's RandomErasing on the image tensor."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.eraser = T.RandomErasing(*args, **kwargs)

    def __call__(self, img: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        return self.eraser(img), target


class Normalize:
    """Normalise the image; boxes become cxcywh divided by the image (w, h)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = mean
        self.std = std

    def __call__(self, image: torch.Tensor, target: Target | None = None) -> tuple[torch.Tensor, Target | None]:
        image = F.normalize(image, mean=self.mean, std=self.std)
        if target is None:
            return image, None
        target = target.copy()
        h, w = image.shape[-2:]
        if "boxes" in target:
            target["boxes"] = box_xyxy_to_cxcywh(target["boxes"]) / torch.tensor([w, h, w, h], dtype=torch.float32)
        return image, target


class Compose:
    """Apply joint transforms in order."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = transforms

    def __call__(self, image: object, target: Target) -> tuple[object, Target]:
        for transform in self.transforms:
            image, target = transform(image, target)
        return image, target

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({inner}\n)"
