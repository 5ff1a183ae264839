# ruff: noqa: N999 (the original's module name is kept)
"""RRD, Relational Representation Distillation (Giakoumoglou & Stathaki, 2024), seed version of `distillers/RRD.py`."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from ..models.util import Embed, Normalize
from ._dist import gather_rows
from ._precision import float32_forward

__all__ = ["Embed", "Normalize", "RCDLoss", "RRDLoss"]


class RRDLoss(nn.Module):
    """Soft-target CE between queue similarities: −mean_i Σ_k softmax(ℓ_t/τ_t)_ik · log_softmax(ℓ_s/τ_s)_ik.

    `opt` needs s_dim, t_dim, feat_dim, nce_k (queue length K), nce_t_s (τ_s, 0.04) and nce_t_t (τ_t, 0.1).
    The teacher embeddings are enqueued (FIFO) after the loss, so `embed_t` never receives a gradient. Under DDP the
    gathered global batch (rank order) is enqueued on every rank, so the queues stay identical.
    """

    def __init__(self, opt: SimpleNamespace) -> None:
        super().__init__()
        self.nce_k = opt.nce_k
        self.nce_t_s = opt.nce_t_s
        self.nce_t_t = opt.nce_t_t
        self.embed_s = Embed(opt.s_dim, opt.feat_dim)
        self.embed_t = Embed(opt.t_dim, opt.feat_dim)
        # columns (not rows) are unit-norm, as in the original
        self.register_buffer("queue", F.normalize(torch.randn(opt.nce_k, opt.feat_dim), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @float32_forward
    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """RRD loss of student f_s (B, s_dim) and teacher f_t (B, t_dim); the teacher batch is enqueued afterwards."""
        f_s = self.embed_s(f_s)
        f_t = self.embed_t(f_t)
        queue = self.queue.clone().detach()
        l_s = torch.einsum("nc,kc->nk", [f_s, queue])
        l_t = torch.einsum("nc,kc->nk", [f_t, queue])
        loss = -torch.sum(
            F.softmax(l_t.detach() / self.nce_t_t, dim=1) * F.log_softmax(l_s / self.nce_t_s, dim=1), dim=1
        ).mean()
        self._dequeue_and_enqueue(gather_rows(f_t))
        return loss

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        """Overwrite the oldest B rows with `keys`; requires K % B == 0.

        The original enqueues with grad enabled, which chains every step's graph onto the queue (a memory leak); the
        values are identical under no_grad.
        """
        batch_size = keys.shape[0]
        ptr = int(self.queue_ptr)
        assert self.nce_k % batch_size == 0
        self.queue[ptr : ptr + batch_size] = keys
        self.queue_ptr[0] = (ptr + batch_size) % self.nce_k


RCDLoss = RRDLoss
"""The original's `RCD.py` is a verbatim copy of RRDLoss under this name (called by `run_cifar_distill.sh` as `rcd`)."""
