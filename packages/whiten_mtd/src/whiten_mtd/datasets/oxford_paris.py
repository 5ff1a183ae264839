"""ROxford5k / RParis6k (+ R1M distractors) in the revisitop layout, and the revisitop mAP / mP@k computation.

The config dict is revisitop's `configdataset`; `compute_ap`/`compute_map` follow revisitop's `evaluate.py` step for
step (with `np.isin` for the `np.in1d` that numpy 2.4 removed). As in the original evaluation, query images are used
whole; `crop_query=True` applies the `bbx` crop that the standard revisitop protocol prescribes.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFile
from torch.utils.data import Dataset

from kdrepro_shared.errors import DatasetLayoutError, KdReproError

DATASETS = ("roxford5k", "rparis6k", "revisitop1m")
SETUPS = ("easy", "medium", "hard")
KAPPAS = (1, 5, 10)


def config_imname(cfg: dict[str, Any], i: int) -> str:
    """Path of database image `i`."""
    return str(Path(cfg["dir_images"]) / (cfg["imlist"][i] + cfg["ext"]))


def config_qimname(cfg: dict[str, Any], i: int) -> str:
    """Path of query image `i`."""
    return str(Path(cfg["dir_images"]) / (cfg["qimlist"][i] + cfg["qext"]))


def read_imlist(imlist_fn: str | Path) -> list[str]:
    """One image name per line (R1M's `revisitop1m.txt`)."""
    return Path(imlist_fn).read_text(encoding="utf-8").splitlines()


def configdataset(dataset: str, dir_main: str | Path) -> dict[str, Any]:
    """revisitop's dataset config: the gnd pickle (or R1M list) plus paths, counts and name functions."""
    if dataset not in DATASETS:
        raise KdReproError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    dir_data = Path(dir_main) / dataset
    if dataset == "revisitop1m":
        list_fname = dir_data / f"{dataset}.txt"
        if not list_fname.is_file():
            raise DatasetLayoutError(f"{list_fname} not found; R1M needs <data_path>/revisitop1m/revisitop1m.txt, jpg/")
        cfg: dict[str, Any] = {"imlist_fname": str(list_fname), "imlist": read_imlist(list_fname), "qimlist": []}
        cfg.update(ext="", qext="")
    else:
        gnd_fname = dir_data / f"gnd_{dataset}.pkl"
        if not gnd_fname.is_file():
            raise DatasetLayoutError(f"{gnd_fname} not found; expected <data_path>/{dataset}/gnd_{dataset}.pkl, jpg/")
        with gnd_fname.open("rb") as file:
            cfg = pickle.load(file)
        cfg.update(gnd_fname=str(gnd_fname), ext=".jpg", qext=".jpg")
    cfg["dir_data"] = str(dir_data)
    cfg["dir_images"] = str(dir_data / "jpg")
    cfg["n"] = len(cfg["imlist"])
    cfg["nq"] = len(cfg["qimlist"])
    cfg["im_fname"] = config_imname
    cfg["qim_fname"] = config_qimname
    cfg["dataset"] = dataset
    return cfg


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as RGB, tolerating truncated files as revisitop's loader does."""
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    with Path(path).open("rb") as file:
        return Image.open(file).convert("RGB")


class OxfordParisDataset(Dataset):
    """Query (`split="query"`) or database (any other split) images of one revisitop dataset, as (tensor, index)."""

    def __init__(
        self,
        dir_main: str | Path,
        dataset: str,
        split: str,
        transform: Callable[[Image.Image], Any] | None = None,
        imsize: int | None = None,
        *,
        crop_query: bool = False,
    ) -> None:
        self.cfg = configdataset(dataset, dir_main)
        self.split = split
        self.transform = transform
        self.imsize = imsize
        self.crop_query = crop_query and split == "query"
        self.n_samples = self.cfg["nq"] if split == "query" else self.cfg["n"]

    def __len__(self) -> int:
        return self.n_samples

    def path(self, index: int) -> str:
        """File of item `index` of this split."""
        return config_qimname(self.cfg, index) if self.split == "query" else config_imname(self.cfg, index)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        img = load_rgb(self.path(index))
        if self.crop_query:
            img = img.crop(tuple(self.cfg["gnd"][index]["bbx"]))
        if self.imsize is not None:
            img.thumbnail((self.imsize, self.imsize), Image.LANCZOS)  # LANCZOS is what ANTIALIAS aliased
        if self.transform is not None:
            img = self.transform(img)
        return img, index


def compute_ap(ranks: np.ndarray, nres: int) -> float:
    """Trapezoidal AP from the 0-based (junk-adjusted) ranks of the retrieved positives out of `nres` positives."""
    recall_step = 1.0 / nres
    ap = 0.0
    for j, rank in enumerate(ranks):
        precision_0 = 1.0 if rank == 0 else float(j) / rank
        precision_1 = float(j + 1) / (rank + 1)
        ap += (precision_0 + precision_1) * recall_step / 2.0
    return ap


def _drop_junk(pos: np.ndarray, junk: np.ndarray) -> np.ndarray:
    """Move each positive up by the number of junk images ranked before it."""
    shift = np.searchsorted(junk, pos, side="left")
    return pos - shift


def compute_map(
    ranks: np.ndarray, gnd: Sequence[dict[str, Any]], kappas: Sequence[int] = ()
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """revisitop's mAP, per-query APs, mean precision@k and per-query precision@k; `ranks` is (db_size, n_queries).

    Queries without positives get NaN and are left out of the means.
    """
    nq = len(gnd)
    aps = np.zeros(nq)
    prs = np.zeros((nq, len(kappas)))
    total_ap = 0.0
    pr = np.zeros(len(kappas))
    nempty = 0
    positions = np.arange(ranks.shape[0])
    for i in range(nq):
        qgnd = np.array(gnd[i]["ok"])
        if qgnd.shape[0] == 0:
            aps[i] = float("nan")
            prs[i, :] = float("nan")
            nempty += 1
            continue
        qgndj = np.array(gnd[i].get("junk", np.empty(0)))
        pos = positions[np.isin(ranks[:, i], qgnd)]
        junk = positions[np.isin(ranks[:, i], qgndj)]
        if len(junk):
            pos = _drop_junk(pos, junk)
        ap = compute_ap(pos, len(qgnd))
        total_ap += ap
        aps[i] = ap
        pos = pos + 1
        for j, kappa in enumerate(kappas):
            kq = min(max(pos), kappa)
            prs[i, j] = (pos <= kq).sum() / kq
        pr = pr + prs[i, :]
    return total_ap / (nq - nempty), aps, pr / (nq - nempty), prs


def protocol_gnd(gnd: Sequence[dict[str, Any]], setup: str) -> list[dict[str, np.ndarray]]:
    """The positives/junk of one revisited setup: easy (E / J+H), medium (E+H / J) or hard (H / J+E)."""
    parts = {"easy": (("easy",), ("junk", "hard")), "medium": (("easy", "hard"), ("junk",))}
    parts["hard"] = (("hard",), ("junk", "easy"))
    if setup not in parts:
        raise KdReproError(f"unknown setup {setup!r}; expected one of {', '.join(SETUPS)}")
    ok_keys, junk_keys = parts[setup]
    return [
        {"ok": np.concatenate([g[key] for key in ok_keys]), "junk": np.concatenate([g[key] for key in junk_keys])}
        for g in gnd
    ]


def evaluate_ranks(
    ranks: np.ndarray, gnd: Sequence[dict[str, Any]], kappas: Sequence[int] = KAPPAS
) -> dict[str, tuple[float, np.ndarray]]:
    """mAP and mP@k of every setup, keyed "easy", "medium", "hard"."""
    results = {}
    for setup in SETUPS:
        mean_ap, _, mean_pr, _ = compute_map(ranks, protocol_gnd(gnd, setup), kappas)
        results[setup] = (mean_ap, mean_pr)
    return results


def rank_database(
    database: torch.Tensor, queries: torch.Tensor, backend: str = "torch", query_chunk: int = 16
) -> np.ndarray:
    """Database indices sorted by decreasing inner product, one column per query: (n_db, n_q) int64.

    `torch` is the original's dense `argsort(-DB @ Q^T, dim=0)`; `faiss` runs an exact flat inner-product search
    over the whole database, `query_chunk` queries at a time, so R1M never needs the dense similarity matrix twice.
    """
    if backend == "torch":
        sim = torch.mm(database, queries.T)
        return torch.argsort(-sim, dim=0).cpu().numpy()
    if backend != "faiss":
        raise KdReproError(f"unknown search backend {backend!r}; expected torch or faiss")
    import faiss  # noqa: PLC0415 -- only the R1M path needs it

    index = faiss.IndexFlatIP(database.shape[1])
    index.add(np.ascontiguousarray(database.detach().cpu().numpy(), dtype=np.float32))
    qs = np.ascontiguousarray(queries.detach().cpu().numpy(), dtype=np.float32)
    ranks = np.empty((database.shape[0], qs.shape[0]), dtype=np.int64)
    for start in range(0, qs.shape[0], query_chunk):
        _, ids = index.search(qs[start : start + query_chunk], database.shape[0])
        ranks[:, start : start + query_chunk] = ids.T
    return ranks
