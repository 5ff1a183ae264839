"""Cross-rank gathering for the criteria that couple samples of a batch (DDP; identities on one process).

Under DDP every rank holds a shard of the global batch. CRD's memory and RRD's queue are updated with the gathered
global batch (rank order), so every rank's copy stays identical and equals the single-process update for that batch;
ICD's B×B logits are built from the gathered embeddings, with gradients flowing back to each rank's own rows.
"""

from __future__ import annotations

import torch

from kdrepro_shared.distributed import all_gather_uneven, get_rank, get_world_size


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of `tensor`, concatenated in rank order and detached (`tensor` itself on one process)."""
    if get_world_size() == 1:
        return tensor
    return torch.cat(all_gather_uneven(tensor.detach().contiguous()))


def gather_unique(index: torch.Tensor, *rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gathered `index` and `rows`, keeping each index's first occurrence (DistributedSampler pads with repeats)."""
    if get_world_size() == 1:
        return (index, *rows)
    index = gather_rows(index)
    order = torch.arange(len(index), device=index.device)
    _, inverse = torch.unique(index, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(index), device=index.device)
    keep = first.scatter_reduce(0, inverse, order, reduce="amin").sort().values
    return (index[keep], *(gather_rows(r)[keep] for r in rows))


class _GatherWithGrad(torch.autograd.Function):
    """All ranks' rows in rank order; the backward returns this rank's rows of the gradient × world size."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, tensor: torch.Tensor) -> torch.Tensor:
        parts = all_gather_uneven(tensor.detach().contiguous())
        start = sum(len(part) for part in parts[: get_rank()])
        ctx.rows = (start, start + len(tensor))
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        # Every rank computes the same loss of the gathered rows, and DDP averages the parameters' gradients over
        # the W ranks: scaling this rank's rows by W makes that average the single-process gradient.
        start, end = ctx.rows
        return grad[start:end] * get_world_size()


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of `tensor` in rank order, differentiable w.r.t. this rank's rows (`tensor` on one process)."""
    if get_world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)
