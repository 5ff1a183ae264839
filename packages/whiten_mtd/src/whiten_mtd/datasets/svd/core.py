"""SVD (short-video near-duplicate) data: metadata parsing, frame / video datasets and the training augmentations.

Frames live at `<frame_root_path>/<video_id>/<%04d>.jpg`; the metadata files are those named in `config/svd.yaml`
(id lists, `<query> <candidate> <label>` ground-truth lines, `<video_id> <n_frames>` counts).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps
from torch.utils.data import Dataset

from kdrepro_shared.errors import DatasetLayoutError

__all__ = ["Frame", "GaussianBlur", "MetaData", "Solarize", "TwoCropsTransform", "Video"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _open_frame(path: Path) -> Image.Image:
    """Read one frame as RGB; a missing file names the expected layout."""
    if not path.is_file():
        raise DatasetLayoutError(f"frame {path} not found; expected <frame_root_path>/<video_id>/<%04d>.jpg")
    return Image.open(path).convert("RGB")


class Frame(Dataset):
    """One frame per item, keyed by (video_id, frame_index); returns the transform's outputs, then "video/%04d.jpg".

    With `TwoCropsTransform` an item is (view1, view2, frame name).
    """

    def __init__(self, root_path: str | Path, frm_cnt: Mapping[str, int], transform: Callable[[Image.Image], Any]):
        super().__init__()
        self._root_path = Path(root_path)
        self._frm_cnt = frm_cnt
        self.t = transform

    def __getitem__(self, k: tuple[str, int]) -> tuple[Any, ...]:
        video_id, frame_id = k
        if not 0 <= frame_id < self._frm_cnt[video_id]:
            raise IndexError(f"frame {frame_id} of video {video_id} is outside its {self._frm_cnt[video_id]} frames")
        frame_file = f"{frame_id:04d}.jpg"
        return *self.t(_open_frame(self._root_path / video_id / frame_file)), f"{video_id}/{frame_file}"


class Video(Dataset):
    """The first `max_frames` frames of a video (every `stride`-th) as (F x C x H x W, video_id, F)."""

    def __init__(
        self,
        root_path: str | Path,
        frm_cnt: Mapping[str, int],
        transform: Callable[[Image.Image], torch.Tensor],
        max_frames: int = 60,
        stride: int = 1,
    ) -> None:
        super().__init__()
        self._root_path = Path(root_path)
        self._frm_cnt = frm_cnt
        self._max_frames = max_frames
        self._stride = stride
        self.t = transform

    def __getitem__(self, k: str) -> tuple[torch.Tensor, str, int]:
        video_id = k
        indices = range(0, min(self._frm_cnt[video_id], self._max_frames), self._stride)
        frames = torch.stack([self.t(_open_frame(self._root_path / video_id / f"{i:04d}.jpg")) for i in indices])
        return frames, video_id, frames.size(0)

    @property
    def max_frames(self) -> int:
        """Frames kept per video at most."""
        return self._max_frames


def _require(path: str | Path, what: str) -> Path:
    """`path` as a Path if it is a file, else a one-line layout error naming the svd.yaml key."""
    path = Path(path)
    if not path.is_file():
        raise DatasetLayoutError(f"SVD {what} file {path} not found (set it in the dataset meta yaml, -dm)")
    return path


class MetaData:
    """Lazy views of the SVD metadata named in the svd.yaml config dict (`utils.load_config(-dm)`)."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self._cfg = cfg
        self._cache: dict[str, Any] = {}

    def _load_ids(self, key: str) -> list[str]:
        """Video ids of an id-list file, one per line, with any `.mp4` removed."""
        text = _require(self._cfg[key], key).read_text(encoding="utf-8")
        return [line.strip().replace(".mp4", "") for line in text.splitlines(keepends=True)]

    def _load_groundtruth(self, key: str) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
        """(queries in first-appearance order, candidates in order, query -> {candidate: label})."""
        queries: dict[str, None] = {}
        labeled: dict[str, None] = {}
        truth: defaultdict[str, dict[str, int]] = defaultdict(dict)
        for line in _require(self._cfg[key], key).read_text(encoding="utf-8").splitlines():
            fields = line.strip().split(" ")
            qid, cid = fields[0].replace(".mp4", ""), fields[1].replace(".mp4", "")
            truth[qid][cid] = int(fields[2])
            queries.setdefault(qid)
            labeled.setdefault(cid)
        return list(queries), list(labeled), truth

    def _cached(self, name: str, build: Callable[[], Any]) -> Any:
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    def _test(self) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
        return self._cached("test", lambda: self._load_groundtruth("test_groundtruth"))

    @property
    def query_ids(self) -> list[str]:
        """All query video ids (`query_id` file)."""
        return self._cached("query_ids", lambda: self._load_ids("query_id"))

    @property
    def labeled_ids(self) -> list[str]:
        """All labeled video ids (`labeled_id` file)."""
        return self._cached("labeled_ids", lambda: self._load_ids("labeled_id"))

    @property
    def unlabeled_ids(self) -> list[str]:
        """The unlabeled distractor video ids (`unlabeled_id` file)."""
        return self._cached("unlabeled_ids", lambda: self._load_ids("unlabeled_id"))

    @property
    def all_video_ids(self) -> list[str]:
        """Queries, then labeled, then unlabeled ids."""
        return self.query_ids + self.labeled_ids + self.unlabeled_ids

    @property
    def test_groundtruth(self) -> dict[str, dict[str, int]]:
        """query -> {candidate: 0/1} of the test split."""
        return self._test()[2]

    @property
    def test_query_ids(self) -> list[str]:
        """Test queries in order of first appearance."""
        return self._test()[0]

    @property
    def test_labeled_ids(self) -> list[str]:
        """Test candidates in order of first appearance."""
        return self._test()[1]

    @property
    def train_groundtruth(self) -> dict[str, dict[str, int]]:
        """query -> {candidate: 0/1} of the train split."""
        return self._cached("train", lambda: self._load_groundtruth("train_groundtruth")[2])

    @property
    def train_groups(self) -> list[set[str]]:
        """Greedy groups of positives (a query joins the last group holding it or one of its positives)."""
        return self._cached("train_groups", self._build_groups)

    def _build_groups(self) -> list[set[str]]:
        groups: list[set[str]] = []
        for qid, candidates in self.train_groundtruth.items():
            positives = [cid for cid, label in candidates.items() if label]
            group = next((g for g in groups if qid in g), None)
            for cid in positives:
                group = next((g for g in groups if cid in g), group)
            if group is None:
                group = set()
                groups.append(group)
            group.add(qid)
            group.update(positives)
        return groups

    @property
    def train_pairs(self) -> list[tuple[str, str]]:
        """Positive (query, candidate) pairs of the train split."""
        truth = self.train_groundtruth
        return self._cached("train_pairs", lambda: [(q, c) for q, cs in truth.items() for c, lab in cs.items() if lab])

    @property
    def train_ids(self) -> list[str]:
        """Every video of the train ground truth (query, then its candidates), first appearance order."""

        def build() -> list[str]:
            ids: dict[str, None] = {}
            for qid, candidates in self.train_groundtruth.items():
                ids.setdefault(qid)
                for cid in candidates:
                    ids.setdefault(cid)
            return list(ids)

        return self._cached("train_ids", build)

    @property
    def frm_cnt(self) -> dict[str, int]:
        """video id -> number of extracted frames (`frame_count_file`)."""

        def build() -> dict[str, int]:
            text = _require(self._cfg["frame_count_file"], "frame_count_file").read_text(encoding="utf-8")
            return {fields[0]: int(fields[1]) for fields in (line.strip().split(" ") for line in text.splitlines())}

        return self._cached("frm_cnt", build)

    @property
    def frm_root_path(self) -> str:
        """Folder of the extracted frames."""
        return self._cfg["frame_root_path"]


class GaussianBlur:
    """PIL Gaussian blur with a radius drawn from U[sigma] by python `random` (MoCo v2's augmentation)."""

    def __init__(self, sigma: Sequence[float] = (0.1, 2.0)) -> None:
        self.sigma = sigma

    def __call__(self, x: Image.Image) -> Image.Image:
        return x.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.sigma[0], self.sigma[1])))


class Solarize:
    """PIL solarize at threshold 128 (BYOL's augmentation)."""

    def __call__(self, x: Image.Image) -> Image.Image:
        return ImageOps.solarize(x)


def _view(blur_p: float, solarize_p: float | None) -> T.Compose:
    """224 random-resized crop, colour jitter, grayscale, blur(p), [solarize(p)], flip, tensor, ImageNet norm."""
    steps: list[Any] = [
        T.RandomResizedCrop(224, scale=(0.4, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([GaussianBlur([0.1, 2.0])], p=blur_p),
    ]
    if solarize_p is not None:
        steps.append(T.RandomApply([Solarize()], p=solarize_p))
    steps += [T.RandomHorizontalFlip(p=0.5), T.ToTensor(), T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)]
    return T.Compose(steps)


def pca_learning_transform() -> T.Compose:
    """svd_pca_learn's single-view augmentation: blur with p=0.5 and solarize with p=0.2."""
    return _view(0.5, 0.2)


class TwoCropsTransform:
    """Two augmented views of one frame: view 1 always blurred; view 2 blurred with p=0.1 and solarized with p=0.2."""

    def __init__(self) -> None:
        self.transform1 = _view(1.0, None)
        self.transform2 = _view(0.1, 0.2)

    def __call__(self, x: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform1(x), self.transform2(x)
