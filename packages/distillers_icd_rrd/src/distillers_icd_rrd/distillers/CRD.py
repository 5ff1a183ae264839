# ruff: noqa: N999 (the original's module name is kept)
"""CRD (Tian et al., ICLR 2020): NCE over a momentum memory bank of student and teacher embeddings.

Embed/Normalize are the shared heads of `models.util` (the original's copies are identical).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from kdrepro_shared.distributed import all_reduce_mean

from ..models.util import Embed, Normalize
from ._dist import gather_unique
from ._precision import float32_forward

__all__ = ["AliasMethod", "CRDLoss", "ContrastLoss", "ContrastMemory", "Embed", "Normalize"]

eps = 1e-7


class CRDLoss(nn.Module):
    """Symmetric CRD loss: NCE with the teacher as anchor plus NCE with the student as anchor (Eq. 18, both sides).

    `opt` needs s_dim, t_dim, feat_dim, nce_k, nce_t, nce_m and n_data (the memory holds n_data × feat_dim rows).
    """

    def __init__(self, opt: SimpleNamespace) -> None:
        super().__init__()
        self.embed_s = Embed(opt.s_dim, opt.feat_dim)
        self.embed_t = Embed(opt.t_dim, opt.feat_dim)
        self.contrast = ContrastMemory(opt.feat_dim, opt.n_data, opt.nce_k, opt.nce_t, opt.nce_m)
        self.criterion_t = ContrastLoss(opt.n_data)
        self.criterion_s = ContrastLoss(opt.n_data)

    @float32_forward
    def forward(
        self, f_s: torch.Tensor, f_t: torch.Tensor, idx: torch.Tensor, contrast_idx: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Loss of shape (1,) for features f_s (B, s_dim), f_t (B, t_dim), dataset indices idx (B,), and
        contrast_idx (B, K+1) with the positive first (drawn from the alias sampler when None)."""
        f_s = self.embed_s(f_s)
        f_t = self.embed_t(f_t)
        out_s, out_t = self.contrast(f_s, f_t, idx, contrast_idx)
        return self.criterion_s(out_s) + self.criterion_t(out_t)


class ContrastLoss(nn.Module):
    """NCE loss (Eq. 18): −[log D1(x₀) + Σ_j log D0(x_j)] / B with P_n = 1/N and m = K."""

    def __init__(self, n_data: int) -> None:
        super().__init__()
        self.n_data = n_data

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Loss of shape (1,) for scores x of shape (B, K+1, 1), positive first."""
        bsz = x.shape[0]
        m = x.size(1) - 1
        pn = 1 / float(self.n_data)
        p_pos = x.select(1, 0)
        log_d1 = torch.div(p_pos, p_pos.add(m * pn + eps)).log_()
        p_neg = x.narrow(1, 1, m)
        log_d0 = torch.div(p_neg.clone().fill_(m * pn), p_neg.add(m * pn + eps)).log_()
        return -(log_d1.sum(0) + log_d0.view(-1, 1).sum(0)) / bsz


class ContrastMemory(nn.Module):
    """Memory bank of N unit rows per view, scoring K+1 rows per sample and updated with momentum.

    Buffer `params` = [K, T, Z_v1, Z_v2, momentum]; Z_v1/Z_v2 start at −1 and are set once, on the first call.
    Under DDP, Z is the mean over ranks (equal first shards: the global batch's mean) and the memory update uses the
    gathered (index, v1, v2) of the global batch, so every rank's memory stays identical to a single process's.
    """

    def __init__(self, inputSize: int, outputSize: int, K: int, T: float = 0.07, momentum: float = 0.5) -> None:  # noqa: N803
        super().__init__()
        self.nLem = outputSize
        self.unigrams = torch.ones(self.nLem)
        # the original moves the sampler to CUDA here; it is moved lazily to the memory's device in `forward`
        self.multinomial = AliasMethod(self.unigrams)
        self.K = K

        self.register_buffer("params", torch.tensor([K, T, -1, -1, momentum]))
        stdv = 1.0 / math.sqrt(inputSize / 3)
        self.register_buffer("memory_v1", torch.rand(outputSize, inputSize).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_v2", torch.rand(outputSize, inputSize).mul_(2 * stdv).add_(-stdv))

    def forward(
        self, v1: torch.Tensor, v2: torch.Tensor, y: torch.Tensor, idx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(out_v1, out_v2), each (B, K+1, 1): exp(⟨memory_v2[idx], v1⟩/T)/Z_v1 and exp(⟨memory_v1[idx], v2⟩/T)/Z_v2."""
        k = int(self.params[0].item())
        t = self.params[1].item()
        z_v1 = self.params[2].item()
        z_v2 = self.params[3].item()
        momentum = self.params[4].item()
        batch_size = v1.size(0)
        output_size = self.memory_v1.size(0)
        input_size = self.memory_v1.size(1)

        if idx is None:
            self.multinomial.to(self.memory_v1.device)
            idx = self.multinomial.draw(batch_size * (self.K + 1)).view(batch_size, -1)
            idx.select(1, 0).copy_(y.data)
        weight_v1 = torch.index_select(self.memory_v1, 0, idx.view(-1)).detach()
        weight_v1 = weight_v1.view(batch_size, k + 1, input_size)
        out_v2 = torch.exp(torch.div(torch.bmm(weight_v1, v2.view(batch_size, input_size, 1)), t))
        weight_v2 = torch.index_select(self.memory_v2, 0, idx.view(-1)).detach()
        weight_v2 = weight_v2.view(batch_size, k + 1, input_size)
        out_v1 = torch.exp(torch.div(torch.bmm(weight_v2, v1.view(batch_size, input_size, 1)), t))

        # Z is set from the first batch only (the original writes the graph-attached mean; the value is the same)
        if z_v1 < 0:
            self.params[2] = all_reduce_mean(out_v1.detach().mean()) * output_size
            z_v1 = self.params[2].item()
            print(f"normalization constant Z_v1 is set to {z_v1:.1f}")
        if z_v2 < 0:
            self.params[3] = all_reduce_mean(out_v2.detach().mean()) * output_size
            z_v2 = self.params[3].item()
            print(f"normalization constant Z_v2 is set to {z_v2:.1f}")

        out_v1 = torch.div(out_v1, z_v1).contiguous()
        out_v2 = torch.div(out_v2, z_v2).contiguous()

        with torch.no_grad():
            y, v1, v2 = gather_unique(y, v1, v2)
            self._update(self.memory_v1, v1, y, momentum)
            self._update(self.memory_v2, v2, y, momentum)
        return out_v1, out_v2

    @staticmethod
    def _update(memory: torch.Tensor, v: torch.Tensor, y: torch.Tensor, momentum: float) -> None:
        """memory[y] ← normalize(momentum·memory[y] + (1 − momentum)·v), written with `index_copy_`."""
        pos = torch.index_select(memory, 0, y.view(-1))
        pos.mul_(momentum)
        pos.add_(torch.mul(v, 1 - momentum))
        norm = pos.pow(2).sum(1, keepdim=True).pow(0.5)
        memory.index_copy_(0, y, pos.div(norm))


class AliasMethod:
    """Walker's alias sampler for a discrete distribution (O(1) per draw), with the original's table construction."""

    def __init__(self, probs: torch.Tensor) -> None:
        if probs.sum() > 1:
            probs = probs / probs.sum()
        k = len(probs)
        # float32 numpy scalars reproduce the original's float32 tensor arithmetic in the loop below, only faster
        prob = (k * probs).numpy().astype(np.float32)
        alias = np.zeros(k, dtype=np.int64)
        smaller = [kk for kk in range(k) if prob[kk] < 1.0]
        larger = [kk for kk in range(k) if not prob[kk] < 1.0]
        while len(smaller) > 0 and len(larger) > 0:
            small = smaller.pop()
            large = larger.pop()
            alias[small] = large
            prob[large] = (prob[large] - np.float32(1.0)) + prob[small]
            if prob[large] < 1.0:
                smaller.append(large)
            else:
                larger.append(large)
        for last_one in smaller + larger:
            prob[last_one] = 1
        self.prob = torch.from_numpy(prob)
        self.alias = torch.from_numpy(alias)

    def to(self, device: torch.device | str) -> AliasMethod:
        """Move the tables to `device` (replaces the original's unconditional `.cuda()`)."""
        self.prob = self.prob.to(device)
        self.alias = self.alias.to(device)
        return self

    def draw(self, N: int) -> torch.Tensor:  # noqa: N803
        """N samples: uniform bucket kk, then kk with probability prob[kk], else alias[kk]."""
        k = self.alias.size(0)
        kk = torch.zeros(N, dtype=torch.long, device=self.prob.device).random_(0, k)
        prob = self.prob.index_select(0, kk)
        alias = self.alias.index_select(0, kk)
        b = torch.bernoulli(prob)
        return kk.mul(b.long()) + alias.mul((1 - b).long())
