"""SVD retrieval evaluation (`DistEvaluator`): video descriptors, query-candidate similarities, per-query AP.

Each query is ranked against the labeled candidates annotated for it (0/1 labels) and, in a full evaluation, every
unlabeled video (label 0). Similarity functions: `fme`/`fmx` = cosine of mean / max pooled frame features; `sme`,
`smx`, `cf` = mean, max and Chamfer (mean over query frames of the best candidate frame) of frame-to-frame cosines.
The validity mask is built in one vectorised step (the original looped over query x candidate pairs).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from kdrepro_shared.distributed import barrier, get_rank, get_world_size, is_dist_avail_and_initialized
from kdrepro_shared.errors import KdReproError
from whiten_mtd.metric import APScorer, MetricLogger, SmoothedValue

__all__ = ["SIM_FNS", "DistEvaluator", "cal_sim_chamfer", "cal_sim_max", "cal_sim_mean", "frame_mask"]

SIM_FNS = ("fme", "fmx", "sme", "smx", "cf")
Ranking = list[tuple[float, str, int]]


def frame_mask(qlens: torch.Tensor, clens: torch.Tensor, max_frames: int) -> torch.Tensor:
    """(Q, C, F, F) bool: query frame i < qlens[q] and candidate frame j < clens[c]."""
    frames = torch.arange(max_frames, device=qlens.device)
    query_ok = frames[None, :] < qlens[:, None]  # Q x F
    cand_ok = frames[None, :] < clens.to(qlens.device)[:, None]  # C x F
    return query_ok[:, None, :, None] & cand_ok[None, :, None, :]


def cal_sim_chamfer(sim_mat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid query frames of the max over valid candidate frames (Q x C)."""
    best = sim_mat.masked_fill(~mask, float("-inf")).max(dim=-1)[0]
    is_inf = best.isinf()
    return best.masked_fill(is_inf, 0).sum(dim=-1).div((~is_inf).sum(dim=-1))


def cal_sim_max(sim_mat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over all valid frame pairs (Q x C)."""
    return sim_mat.masked_fill(~mask, float("-inf")).flatten(2).max(dim=-1)[0]


def cal_sim_mean(sim_mat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over all valid frame pairs (Q x C)."""
    return sim_mat.masked_fill(~mask, 0).sum(dim=(2, 3)).div(mask.sum(dim=(2, 3)))


_FRAME_SIMS = {"cf": cal_sim_chamfer, "sme": cal_sim_mean, "smx": cal_sim_max}


class DistEvaluator:
    """Distributed SVD evaluation; `__call__` returns {"top-k": mAP, ..., "top-inf": mAP} on rank 0, else None."""

    def __init__(
        self,
        device: torch.device,
        test_groundtruth: Mapping[str, Mapping[str, int]],
        topk: Sequence[int],
        max_frames: int,
    ) -> None:
        self.rank = get_rank()
        self.world_size = get_world_size()
        self.device = device
        self.gdtruth = test_groundtruth
        self.ranks: defaultdict[str, Ranking] = defaultdict(list)
        self.max_frames = max_frames
        self.topk = [int(k) for k in topk]
        self.scorer = APScorer()
        self.res: OrderedDict[str, SmoothedValue] = OrderedDict(
            (name, SmoothedValue(window_size=None)) for name in [*(f"top-{k}" for k in self.topk), "top-inf"]
        )
        self.logger = logging.getLogger(f"svd.dist_eval.{self.rank}")
        self.aps: defaultdict[str, OrderedDict[str, float]] = defaultdict(OrderedDict)

    @torch.no_grad()
    def __call__(  # noqa: PLR0917 -- the original's signature
        self,
        model: nn.Module,
        query_loader: Iterable,
        labeled_loader: Iterable,
        unlabeled_loader: Iterable,
        full_eval: bool,
        sim_fn: str,
        dump_to: str | Path | None = None,
    ) -> dict[str, float] | None:
        if sim_fn not in SIM_FNS:
            raise KdReproError(f"unknown similarity function {sim_fn!r}; expected one of {', '.join(SIM_FNS)}")
        main = self.rank == 0
        metric_logger = MetricLogger(self.logger if main else None, delimiter="  ")
        if main:
            self.logger.info("Start evaluation.")
            self.logger.info("Processing Query Samples...")
        barrier()
        qfeats, qlens, qids = [], [], []
        for _, batch in metric_logger.log_every(query_loader, 16):
            feats, lens, ids = self.forward_batch(model, batch, sim_fn)
            qfeats.append(feats)
            qlens.append(lens)
            qids += ids
        self.gather_query(self._cat(qfeats, sim_fn), self._cat(qlens, None), qids)
        if main:
            self.logger.info(f"Query gathered to all workers, totally {len(self.qfeats)} queries.")
            self.logger.info("Processing Labaled Samples.")
        for _, batch in metric_logger.log_every(labeled_loader, 16):
            feats, lens, ids = self.forward_batch(model, batch, sim_fn)
            self.handle_labeled(self.cal_sim(feats, lens, sim_fn), ids)
        if full_eval:
            if main:
                self.logger.info("Processing Features of UnLabaled Samples.")
            for _, batch in metric_logger.log_every(unlabeled_loader, 1024):
                feats, lens, ids = self.forward_batch(model, batch, sim_fn)
                self.handle_unlabeled(self.cal_sim(feats, lens, sim_fn), ids)
        self.sync_ranks()
        if not main:
            return None
        result = self.score()
        self.logger.info(" | ".join(f"{k} mAP: {v:.4f}" for k, v in result.items()))
        if dump_to is not None:
            self.dump(dump_to)
        return result

    def _cat(self, parts: list[torch.Tensor], sim_fn: str | None) -> torch.Tensor:
        """Concatenate per-batch tensors; an empty rank gets a correctly shaped empty tensor."""
        if parts:
            return torch.cat(parts, dim=0)
        if sim_fn is None:
            return torch.zeros(0, dtype=torch.long, device=self.device)
        raise KdReproError("this rank received no query videos; use fewer processes than test queries")

    def forward_batch(self, model: nn.Module, batch: Any, sim_fn: str) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Per-frame model outputs pooled per video (fme/fmx) or zero-padded to max_frames (sme/smx/cf), then L2."""
        frames, n_frames, ids = batch
        frames = model(frames.to(self.device))
        n_frames = n_frames.to(self.device)
        counts = n_frames.tolist()
        if sim_fn in ("fme", "fmx"):
            chunks = frames.split(counts, dim=0)
            pooled = [c.mean(dim=0) if sim_fn == "fme" else c.max(dim=0)[0] for c in chunks]
            out = torch.stack(pooled, dim=0)
        else:
            out = frames.new_zeros(len(counts), self.max_frames, frames.size(1))
            for i, chunk in enumerate(frames.split(counts, dim=0)):
                out[i, : chunk.size(0)] = chunk
        return nn.functional.normalize(out, p=2, dim=-1), n_frames, ids

    def cal_sim(self, feats: torch.Tensor, lens: torch.Tensor, sim_fn: str) -> torch.Tensor:
        """Q x C similarities of all (gathered) queries to this batch of candidates."""
        if sim_fn in ("fme", "fmx"):
            return self.qfeats.mm(feats.t())
        sims = self.qfeats.unsqueeze(1).matmul(feats.transpose(1, 2))  # Q x C x F x F
        return _FRAME_SIMS[sim_fn](sims, frame_mask(self.qlens, lens, self.max_frames))

    def gather_query(self, feats: torch.Tensor, lens: torch.Tensor, ids: Sequence[str]) -> None:
        """Every rank gets all queries' features, frame counts and ids, in rank order."""
        if not is_dist_avail_and_initialized():
            self.qfeats, self.qlens, self.qids = feats, lens, list(ids)
            return
        count = torch.tensor(feats.size(0), dtype=torch.long, device=self.device)
        counts = [torch.zeros_like(count) for _ in range(self.world_size)]
        dist.all_gather(counts, count)
        qfeats, qlens = [], []
        for src, n in enumerate(counts):
            part = feats if src == self.rank else feats.new_zeros(int(n), *feats.shape[1:])
            part_lens = lens if src == self.rank else lens.new_zeros(int(n))
            dist.broadcast(part, src=src)
            dist.broadcast(part_lens, src=src)
            qfeats.append(part)
            qlens.append(part_lens)
        self.qfeats, self.qlens = torch.cat(qfeats, dim=0), torch.cat(qlens, dim=0)
        ids_all: list[Any] = [None] * self.world_size
        dist.all_gather_object(ids_all, list(ids))
        self.qids = [qid for part in ids_all for qid in part]

    def sync_ranks(self) -> None:
        """Collect every rank's (similarity, candidate, label) lists on rank 0, query by query, in rank order."""
        if not is_dist_avail_and_initialized():
            return
        for qid in self.qids:
            gathered: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
            dist.gather_object(self.ranks[qid], object_gather_list=gathered, dst=0)
            if self.rank == 0:
                self.ranks[qid] = [item for part in gathered for item in part]
            dist.barrier()

    def handle_labeled(self, sims: torch.Tensor, ids: Sequence[str]) -> None:
        """Append the candidates annotated for each query, with their labels."""
        rows = sims.cpu().tolist()
        for i, qid in enumerate(self.qids):
            truth = self.gdtruth[qid]
            self.ranks[qid] += [(rows[i][j], cid, truth[cid]) for j, cid in enumerate(ids) if cid in truth]

    def handle_unlabeled(self, sims: torch.Tensor, ids: Sequence[str]) -> None:
        """Append every unlabeled video as a negative of every query."""
        rows = sims.cpu().tolist()
        for i, qid in enumerate(self.qids):
            self.ranks[qid] += list(zip(rows[i], ids, [0] * len(ids), strict=True))

    def score(self) -> dict[str, float]:
        """Sort each query's list by similarity (stable, descending) and average AP@k / AP over queries."""
        for qid in self.qids:
            self.ranks[qid].sort(key=lambda item: item[0], reverse=True)
            labels = [label for _, _, label in self.ranks[qid]]
            for k in self.topk:
                ap = self.scorer.score(labels[:k])
                self.aps[qid][f"top-{k}"] = ap
                self.res[f"top-{k}"].update(ap)
            ap = self.scorer.score(labels)
            self.aps[qid]["top-inf"] = ap
            self.res["top-inf"].update(ap)
        return {name: meter.avg for name, meter in self.res.items()}

    def dump(self, dump_to: str | Path, topk: int = 100) -> Path:
        """Write `ret_res.json`: per query its APs, top-`topk` ranking and the ranks of its positives (worst first)."""
        records = []
        for qid in self.qids:
            positives = {cid for cid, label in self.gdtruth[qid].items() if label}
            ranking = self.ranks[qid]
            records.append(
                {
                    "qid": qid,
                    "ap": self.aps[qid],
                    "ranking": [{"score": s, "id": vid, "label": lab} for s, vid, lab in ranking[:topk]],
                    "positive": [
                        {"id": vid, "rank": i, "score": s} for i, (s, vid, _) in enumerate(ranking) if vid in positives
                    ],
                }
            )
        records.sort(key=lambda record: record["ap"]["top-inf"])
        folder = Path(dump_to)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "ret_res.json"
        path.write_text(json.dumps(records, sort_keys=True, indent=4), encoding="utf-8")
        return path
