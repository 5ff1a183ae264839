# ruff: noqa: N999 (the original's module name is kept)
"""ICD, Invariant Consistency Distillation (Giakoumoglou & Stathaki, 2024), seed version of `distillers/ICD.py`."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from ..models.util import Normalize
from ._dist import gather_with_grad
from ._precision import float32_forward

__all__ = ["Embed", "ICDLoss", "LearnableParams", "Normalize"]


class ICDLoss(nn.Module):
    """CE(L, diag) + α·KL(softmax_cols(L)ᵀ ‖ softmax_rows(L)), L = τ·z_s z_tᵀ + b with τ = clamp(e^tau, 0, max_tau).

    `opt` needs s_dim, t_dim and feat_dim; τ and b are learnable (`params.tau`, `params.b`), as are both heads.
    """

    def __init__(
        self,
        opt: SimpleNamespace,
        max_tau: float = 10.0,
        alpha: float = 0.5,
        init_tau: float = 1.0,
        init_b: float = 0.0,
    ) -> None:
        super().__init__()
        self.params = LearnableParams(init_tau=init_tau, init_b=init_b)
        self.max_tau = max_tau
        self.alpha = alpha
        self.embed_s = Embed(opt.s_dim, opt.feat_dim)
        self.embed_t = Embed(opt.t_dim, opt.feat_dim)

    @float32_forward
    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """ICD loss of student features f_s (B, s_dim) and teacher features f_t (B, t_dim); nothing is detached.

        Under DDP the embeddings of all ranks are gathered (with gradient), so L is the global batch's B×B matrix.
        """
        f_s = gather_with_grad(F.normalize(self.embed_s(f_s), dim=1))
        f_t = gather_with_grad(F.normalize(self.embed_t(f_t), dim=1))
        n = f_s.size(0)

        tau = self.params.tau.exp().clamp(0, self.max_tau)
        logits = torch.mm(f_s, f_t.t()) * tau + self.params.b
        labels = torch.arange(n).to(logits.device)

        contrastive_loss = F.cross_entropy(logits, labels)
        p1 = F.log_softmax(logits, dim=1)
        p2 = F.softmax(logits, dim=0).t()
        invariance_loss = F.kl_div(p1, p2, reduction="batchmean")
        return contrastive_loss + self.alpha * invariance_loss


class LearnableParams(nn.Module):
    """Holder of the scalars `tau` (log-temperature) and `b` (logit bias), so their state keys are `params.*`."""

    def __init__(self, init_tau: float = 1.0, init_b: float = 0.0) -> None:
        super().__init__()
        self.tau = nn.Parameter(torch.tensor(init_tau))
        self.b = nn.Parameter(torch.tensor(init_b))


class Embed(nn.Module):
    """ICD head: flatten → `linear` → L2 normalise; CRD's Embed with the norm submodule named `norm`, not `l2norm`."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)
        self.norm = Normalize(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm embedding."""
        return self.norm(self.linear(x.view(x.shape[0], -1)))
