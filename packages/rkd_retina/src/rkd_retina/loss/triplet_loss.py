"""Descriptor losses of the original `loss/triplet_loss.py`: triplet margin with 1 − cos distance and GOR.

`triplet_margin_loss_gor` (margin 0.8 at the call sites) is the one SuperRetina/RKD train with; the single-negative
variant and the SOSNet regulariser are kept because the original module exports them.
"""

from __future__ import annotations

import torch


def pairwise_distance(x1: torch.Tensor, x2: torch.Tensor, p: float = 2, eps: float = 1e-6) -> torch.Tensor:
    """Row-wise `1 − cos(x1, x2)` of two N×D matrices; `p` and `eps` are unused, as in the original."""
    del p, eps
    assert x1.size() == x2.size(), "Input sizes must be equal."
    assert x1.dim() == 2, "Input must be a 2D matrix."
    return 1 - torch.cosine_similarity(x1, x2, dim=1)


def triplet_margin_loss_gor_one(  # noqa: PLR0917 (the original positional order)
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    beta: float = 1.0,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
) -> torch.Tensor:
    """Triplet hinge with one negative plus `beta` × GOR term mean((a·n)²)."""
    del swap
    assert anchor.size() == positive.size(), "Input sizes between positive and negative must be equal."
    assert anchor.size() == negative.size(), "Input sizes between anchor and negative must be equal."
    assert anchor.dim() == 2, "Input must be a 2D matrix."
    assert margin > 0.0, "Margin should be positive value."
    d_p = pairwise_distance(anchor, positive, p, eps)
    d_n = pairwise_distance(anchor, negative, p, eps)
    dist_hinge = torch.clamp(margin + d_p - d_n, min=0.0)
    gor = torch.mean(torch.pow(torch.sum(torch.mul(anchor, negative), 1), 2))
    return torch.mean(dist_hinge) + beta * gor


def triplet_margin_loss_gor(  # noqa: PLR0917 (the original positional order)
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative1: torch.Tensor,
    negative2: torch.Tensor,
    beta: float = 1.0,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
) -> torch.Tensor:
    """mean(max(0, margin + d(a,p) − ½(d(a,n1) + d(a,n2)))) + beta·(mean((a·n1)²) + mean((a·n2)²)), d = 1 − cos."""
    del swap
    assert anchor.size() == positive.size(), "Input sizes between positive and negative must be equal."
    assert anchor.size() == negative1.size(), "Input sizes between anchor and negative must be equal."
    assert positive.size() == negative2.size(), "Input sizes between positive and negative must be equal."
    assert anchor.dim() == 2, "Input must be a 2D matrix."
    assert margin > 0.0, "Margin should be positive value."
    d_p = pairwise_distance(anchor, positive, p, eps)
    d_n1 = pairwise_distance(anchor, negative1, p, eps)
    d_n2 = pairwise_distance(anchor, negative2, p, eps)
    dist_hinge = torch.clamp(margin + d_p - 0.5 * (d_n1 + d_n2), min=0.0)
    gor1 = torch.mean(torch.pow(torch.sum(torch.mul(anchor, negative1), 1), 2))
    gor2 = torch.mean(torch.pow(torch.sum(torch.mul(anchor, negative2), 1), 2))
    return torch.mean(dist_hinge) + beta * (gor1 + gor2)


def distance_matrix_vector(anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Euclidean distance matrix between the rows of `anchor` and `positive`, 1e-3 added under the square root."""
    d1_sq = torch.sum(anchor * anchor, dim=1).unsqueeze(-1)
    d2_sq = torch.sum(positive * positive, dim=1).unsqueeze(-1)
    cross = torch.bmm(anchor.unsqueeze(0), torch.t(positive).unsqueeze(0)).squeeze(0)
    squared = d1_sq.repeat(1, positive.size(0)) + torch.t(d2_sq.repeat(1, anchor.size(0))) - 2.0 * cross
    return torch.sqrt(squared + 1e-3)


def percentile(t: torch.Tensor, q: float) -> float:
    """The `q`-th percentile of the flattened tensor, nearest rank without interpolation (via `kthvalue`)."""
    k = 1 + round(0.01 * float(q) * (t.numel() - 1))
    return t.view(-1).kthvalue(int(k)).values.item()


def sos_reg(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    KNN: bool = True,  # noqa: N803 (the original keyword)
    k: float = 1,
    eps: float = 1e-8,
) -> torch.Tensor:
    """SOSNet second-order similarity regulariser between anchor and positive distance matrices (unused)."""
    dist_matrix_a = distance_matrix_vector(anchor, anchor) + eps
    dist_matrix_b = distance_matrix_vector(positive, positive) + eps
    if KNN:
        mask = dist_matrix_b.lt(percentile(dist_matrix_b, k)).int().float()
        dist_matrix_a = dist_matrix_a * mask
        dist_matrix_b = dist_matrix_b * mask
    return torch.mean(torch.sqrt(torch.sum(torch.pow(dist_matrix_a - dist_matrix_b, 2))))
