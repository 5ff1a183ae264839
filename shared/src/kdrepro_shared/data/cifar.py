"""CIFAR-10/100 in the python-pickle layout torchvision writes: checksum-free readers and a writer of (tiny) copies.

torchvision's own classes md5-check every file even with ``download=False``, so they reject tiny or re-written
copies; these read the same files with the same attributes and items, and never download.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from PIL import Image
from torchvision.datasets import VisionDataset

from kdrepro_shared.data._io import (
    brace,
    check_images,
    check_labels,
    layout_error,
    missing_files,
    publish_files,
    random_images,
)

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"
CIFAR10_TRAIN_BATCHES = 5


class CIFAR10(VisionDataset):
    """CIFAR-10 read from ``root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``.

    Drop-in for ``torchvision.datasets.CIFAR10`` without md5 check or download: same ``root`` (the folder that
    *contains* the dataset folder, not the dataset folder itself; the error says so), ``train``, ``transform``,
    ``target_transform``, ``data`` (N×32×32×3 uint8, HWC), ``targets`` (list[int]), ``classes``, ``class_to_idx``,
    and ``(PIL image, target)`` items. Subclasses may override ``__getitem__`` (e.g. to also return the index).
    """

    display_name: ClassVar[str] = "CIFAR-10"
    base_folder: ClassVar[str] = CIFAR10_FOLDER
    train_files: ClassVar[tuple[str, ...]] = tuple(f"data_batch_{i}" for i in range(1, CIFAR10_TRAIN_BATCHES + 1))
    test_files: ClassVar[tuple[str, ...]] = ("test_batch",)
    meta_file: ClassVar[str] = "batches.meta"
    meta_key: ClassVar[str] = "label_names"
    label_key: ClassVar[str] = "labels"
    layout: ClassVar[str] = "{data_batch_1..5,test_batch,batches.meta}"

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable[..., Any] | None = None,
        target_transform: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        files = self.train_files if train else self.test_files
        self._check_layout((*files, self.meta_file))
        batches = [self._load(name, ("data", self.label_key)) for name in files]
        self.data: np.ndarray = np.vstack([b["data"] for b in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        self.targets: list[int] = [int(y) for b in batches for y in b[self.label_key]]
        if len(self.targets) != len(self.data):
            raise layout_error(f"{self.dataset_dir}: {len(self.data)} images but {len(self.targets)} labels")
        self.classes: list[str] = list(self._load(self.meta_file, (self.meta_key,))[self.meta_key])
        self.class_to_idx: dict[str, int] = {name: i for i, name in enumerate(self.classes)}

    @property
    def dataset_dir(self) -> Path:
        """The dataset folder, ``root/<base_folder>``."""
        return Path(self.root) / self.base_folder

    def _check_layout(self, needed: Sequence[str]) -> None:
        """Raise one line naming the expected layout (and what to pass instead) when files are missing."""
        missing = missing_files(self.dataset_dir, needed)
        if not missing:
            return
        root = Path(self.root)
        hint = f"; missing {', '.join(missing)}"
        if root.name == self.base_folder or (root / self.meta_file).is_file():
            hint = f"; {root} looks like the {self.base_folder} folder itself: pass its parent {root.parent}"
        raise layout_error(
            f"{self.display_name} not found under {root}: expected {root}/{self.base_folder}/{self.layout} "
            f"(the python-pickle layout torchvision writes){hint}"
        )

    def _load(self, name: str, keys: Sequence[str]) -> dict[str, Any]:
        """Unpickle one file (latin1, as the Python-2 originals need) and check it holds `keys`."""
        path = self.dataset_dir / name
        try:
            with path.open("rb") as f:
                entry = pickle.load(f, encoding="latin1")
        except (pickle.UnpicklingError, EOFError) as err:
            raise layout_error(f"{path} is not a {self.display_name} pickle ({err})") from err
        lacking = [k for k in keys if not isinstance(entry, dict) or k not in entry]
        if lacking:
            raise layout_error(f"{path} is not a {self.display_name} pickle: no key {', '.join(lacking)}")
        if "data" in keys and (np.ndim(entry["data"]) != 2 or np.shape(entry["data"])[1] != 3 * 32 * 32):
            raise layout_error(f"{path}: 'data' must be N×3072 uint8, got shape {np.shape(entry['data'])}")
        return entry

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """Return ``(image, target)`` with the transforms applied; the image is a PIL RGB image."""
        img, target = Image.fromarray(self.data[index]), self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        """Number of images in the split."""
        return len(self.data)

    def extra_repr(self) -> str:
        """The split line of ``repr``, as torchvision prints it."""
        return f"Split: {'Train' if self.train else 'Test'}"


class CIFAR100(CIFAR10):
    """CIFAR-100 read from ``root/cifar-100-python/{train,test,meta}``; targets are the fine labels.

    Same attributes and items as `CIFAR10` and ``torchvision.datasets.CIFAR100``; ``classes`` are the fine label names.
    """

    display_name: ClassVar[str] = "CIFAR-100"
    base_folder: ClassVar[str] = CIFAR100_FOLDER
    train_files: ClassVar[tuple[str, ...]] = ("train",)
    test_files: ClassVar[tuple[str, ...]] = ("test",)
    meta_file: ClassVar[str] = "meta"
    meta_key: ClassVar[str] = "fine_label_names"
    label_key: ClassVar[str] = "fine_labels"
    layout: ClassVar[str] = brace(("train", "test", "meta"))


def _pickled(obj: dict[str, Any]) -> bytes:
    """Pickle with protocol 2, readable by the Python-2-era loaders like the original files."""
    return pickle.dumps(obj, protocol=2)


def _batch(images: np.ndarray, labels: dict[str, list[int]], names: list[str], batch_label: str) -> bytes:
    """One pickled batch: N×3072 uint8 rows (R, G, B planes of a row-major 32×32 image), labels and file names."""
    data = np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1))
    return _pickled({"batch_label": batch_label, **labels, "data": data, "filenames": names})


def _cifar10_files(split: dict[str, tuple[np.ndarray, list[int], list[str]]], names: list[str]) -> dict[str, bytes]:
    """CIFAR-10 layout: the train split spread over five data_batch files, one test_batch, batches.meta."""
    images, labels, files = split["train"]
    chunks = np.array_split(np.arange(len(images)), CIFAR10_TRAIN_BATCHES)
    out = {
        f"data_batch_{b}": _batch(
            images[idx], {"labels": [labels[i] for i in idx]}, [files[i] for i in idx], f"training batch {b} of 5"
        )
        for b, idx in enumerate(chunks, start=1)
    }
    images, labels, files = split["test"]
    out["test_batch"] = _batch(images, {"labels": labels}, files, "testing batch 1 of 1")
    out["batches.meta"] = _pickled({"num_cases_per_batch": len(chunks[0]), "label_names": names, "num_vis": 3072})
    return out


def _cifar100_files(
    split: dict[str, tuple[np.ndarray, list[int], list[str]]], names: list[str], coarse_of: Sequence[int] | None
) -> dict[str, bytes]:
    """CIFAR-100 layout: train, test (fine and coarse labels) and meta; coarse = fine when no mapping is given."""
    coarse_of = list(range(len(names))) if coarse_of is None else [int(c) for c in coarse_of]
    if len(coarse_of) != len(names) or min(coarse_of) < 0:
        raise ValueError(f"coarse_labels must give a coarse class >= 0 for each of the {len(names)} fine classes")
    coarse_names = names if coarse_of == list(range(len(names))) else [f"coarse_{k}" for k in range(max(coarse_of) + 1)]
    out = {}
    for tag, batch_label in (("train", "training batch 1 of 1"), ("test", "testing batch 1 of 1")):
        images, labels, files = split[tag]
        coarse = [coarse_of[y] for y in labels]
        out[tag] = _batch(images, {"fine_labels": labels, "coarse_labels": coarse}, files, batch_label)
    out["meta"] = _pickled({"fine_label_names": names, "coarse_label_names": coarse_names})
    return out


def write_cifar(
    root: str | Path,
    images_train: np.ndarray,
    labels_train: Sequence[int],
    images_test: np.ndarray,
    labels_test: Sequence[int],
    *,
    num_classes: int = 100,
    class_names: Sequence[str] | None = None,
    coarse_labels: Sequence[int] | None = None,
    layout: Literal["cifar10", "cifar100"] | None = None,
) -> Path:
    """Write N×32×32×3 uint8 images and labels in torchvision's CIFAR pickle layout under `root`; return the folder.

    ``layout`` defaults to ``"cifar10"`` (``cifar-10-batches-py``) when ``num_classes == 10``, else ``"cifar100"``
    (``cifar-100-python``). ``class_names`` default to ``class_<i>``; ``coarse_labels`` maps each fine class to its
    coarse class (CIFAR-100 only; default: coarse = fine, with the fine names). An identical existing copy is left
    alone; a different non-empty folder is never overwritten (`DatasetExistsError`).
    """
    layout = layout or ("cifar10" if num_classes == 10 else "cifar100")
    names = [str(c) for c in class_names] if class_names is not None else [f"class_{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"class_names has {len(names)} names for num_classes={num_classes}")
    split = {}
    for tag, given_images, given_labels in (("train", images_train, labels_train), ("test", images_test, labels_test)):
        images = check_images(given_images, f"images_{tag}", (32, 32))
        labels = check_labels(given_labels, len(images), num_classes, f"labels_{tag}")
        files = [f"{names[y].replace(' ', '_')}_s_{i:06d}.png" for i, y in enumerate(labels)]
        split[tag] = images, labels, files
    if layout == "cifar10":
        if coarse_labels is not None:
            raise ValueError("coarse_labels only exist in the CIFAR-100 layout")
        return publish_files(Path(root) / CIFAR10_FOLDER, _cifar10_files(split, names))
    return publish_files(Path(root) / CIFAR100_FOLDER, _cifar100_files(split, names, coarse_labels))


def write_fake_cifar(
    root: str | Path, num_classes: int = 100, *, n_train: int = 200, n_test: int = 100, seed: int = 0
) -> Path:
    """Write a tiny CIFAR-10 (``num_classes=10``) or CIFAR-100 copy of random images for tests; return the folder.

    Labels cycle through the classes, so they are balanced when the sizes are multiples of ``num_classes``
    (CRD's negative sampler needs equal class counts).
    """
    rng = np.random.default_rng(seed)
    return write_cifar(
        root,
        random_images(rng, n_train, (32, 32)),
        np.arange(n_train) % num_classes,
        random_images(rng, n_test, (32, 32)),
        np.arange(n_test) % num_classes,
        num_classes=num_classes,
    )
