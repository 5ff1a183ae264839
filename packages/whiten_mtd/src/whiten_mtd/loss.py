"""Multi-teacher similarity distillation loss of Whiten-MTD (original `loss.py`).

Each teacher gives a cross-view cosine-similarity matrix (rows: view 1, columns: view 2, diagonal: positive pairs);
the matrices are fused by a strategy and the student's matrix is matched to the fused one with a temperature softmax
and KL divergence, over rows and over columns. The sum is multiplied by the world size to undo DDP's gradient mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from kdrepro_shared.distributed import get_rank, get_world_size, is_dist_avail_and_initialized
from kdrepro_shared.errors import KdReproError

STRATEGIES = ("mean", "maxmin", "maxmean", "maxrand", "rand")


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` of every rank in rank order; only this rank's rows carry gradients (identity on one process)."""
    if not is_dist_avail_and_initialized() or get_world_size() == 1:
        return x
    parts = [torch.zeros_like(x) for _ in range(get_world_size())]
    dist.all_gather(parts, x)
    parts[get_rank()] = x
    return torch.cat(parts, dim=0)


def _random_pick(sims: torch.Tensor) -> torch.Tensor:
    """Take every entry of the fused matrix from a uniformly drawn teacher (one fresh draw per call)."""
    choice = torch.randint(0, len(sims), sims[0].size(), device=sims.device)
    one_hot = F.one_hot(choice, num_classes=len(sims)).permute(2, 0, 1)
    return (sims * one_hot).sum(dim=0)


class MultiTeacherDistillLoss(nn.Module):
    """KL between the student's and the fused teachers' softmaxed similarity matrices, rows plus columns.

    `st`/`tt` are the student/teacher temperatures, `s` the fusion strategy (one of `STRATEGIES`), `teachers` the
    teacher names (for the positive-win counter `pos_win_count`, which the max* strategies update on every call).
    """

    def __init__(
        self, st: float = 0.05, tt: float = 0.05, s: str | None = None, teachers: Sequence[str] | None = None
    ) -> None:
        super().__init__()
        if s not in STRATEGIES:
            raise KdReproError(f"fusion strategy {s!r} is not one of: {', '.join(STRATEGIES)}")
        if not teachers:
            raise KdReproError("MultiTeacherDistillLoss needs the list of teacher names")
        self.st = st
        self.tt = tt
        self.s = s
        self.teachers = list(teachers)
        self.distill_loss_fn = nn.KLDivLoss(reduction="batchmean")
        self.register_buffer("pos_win_count", torch.zeros(len(self.teachers), dtype=torch.long))

    def forward(
        self,
        stu1: torch.Tensor,
        stu2: torch.Tensor,
        tch1: Sequence[torch.Tensor],
        tch2: Sequence[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Loss for student views (B, D) and per-teacher views (lists of (B, D)); returns {"distill loss": value}."""
        stu1 = gather_with_grad(F.normalize(stu1, p=2, dim=-1))
        stu2 = gather_with_grad(F.normalize(stu2, p=2, dim=-1))
        tch1 = [gather_with_grad(F.normalize(t, p=2, dim=-1).contiguous()) for t in tch1]
        tch2 = [gather_with_grad(F.normalize(t, p=2, dim=-1).contiguous()) for t in tch2]

        stu_sim = stu1.mm(stu2.t())
        tch_sims = [t1.mm(t2.t()) for t1, t2 in zip(tch1, tch2, strict=True)]
        row_term = self.get_distill_loss(stu_sim, tch_sims, tt=self.tt, st=self.st)
        col_term = self.get_distill_loss(stu_sim.t(), [sim.t() for sim in tch_sims], tt=self.tt, st=self.st)
        return {"distill loss": (row_term + col_term) * get_world_size()}

    def get_distill_loss(
        self, stu_sim: torch.Tensor, tch_sims: Sequence[torch.Tensor], tt: float = 0.05, st: float = 0.05
    ) -> torch.Tensor:
        """Row-wise KL(softmax(fused / tt) || softmax(stu_sim / st)), averaged over rows ("batchmean")."""
        fuse: Callable[[torch.Tensor], torch.Tensor] = getattr(self, f"s_{self.s}")
        fused = fuse(torch.stack(list(tch_sims), dim=0))
        target = F.softmax(fused.div(tt), dim=-1)
        log_pred = F.log_softmax(stu_sim.div(st), dim=-1)
        return self.distill_loss_fn(log_pred, target)

    def _max_diagonal(self, sims: torch.Tensor) -> torch.Tensor:
        """Element-wise max over teachers; counts which teacher won each diagonal (positive) entry."""
        best, winner = sims.max(dim=0)
        self.pos_win_count += torch.bincount(winner.diagonal(), minlength=len(self.teachers))
        return best

    @staticmethod
    def _merge(diagonal: torch.Tensor, off_diagonal: torch.Tensor) -> torch.Tensor:
        """Diagonal entries from `diagonal`, all others from `off_diagonal`."""
        eye = torch.eye(diagonal.size(0), m=diagonal.size(1), dtype=torch.bool, device=diagonal.device)
        return diagonal * eye + off_diagonal * eye.logical_not()

    def s_mean(self, sims: torch.Tensor) -> torch.Tensor:
        """Mean over teachers."""
        return sims.mean(dim=0)

    def s_maxmin(self, sims: torch.Tensor) -> torch.Tensor:
        """Positives: max over teachers; negatives: min over teachers (the paper's default)."""
        return self._merge(self._max_diagonal(sims), sims.min(dim=0)[0])

    def s_maxmean(self, sims: torch.Tensor) -> torch.Tensor:
        """Positives: max over teachers; negatives: mean over teachers."""
        return self._merge(self._max_diagonal(sims), sims.mean(dim=0))

    def s_maxrand(self, sims: torch.Tensor) -> torch.Tensor:
        """Positives: max over teachers; each negative from a randomly drawn teacher."""
        diagonal = self._max_diagonal(sims)
        return self._merge(diagonal, _random_pick(sims))

    def s_rand(self, sims: torch.Tensor) -> torch.Tensor:
        """Every entry from a randomly drawn teacher."""
        return _random_pick(sims)

    def __repr__(self) -> str:
        shares = self.pos_win_count / self.pos_win_count.sum() * 100
        return "positive count: " + " | ".join(
            f"{name}: {share:.2f}%" for name, share in zip(self.teachers, shares.tolist(), strict=True)
        )
