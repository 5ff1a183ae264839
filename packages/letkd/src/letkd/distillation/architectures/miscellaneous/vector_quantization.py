"""The k-means codebook of letKD-1's penultimate target (QuEST's VectorQuantizerEMA).

The offline `kmeans=` run fills the codebook; during distillation it stays in eval mode and turns each teacher
position f into the soft assignment softmax_k(−T·‖f − ρ_k‖²) over the K centroids.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kdrepro_shared.errors import KdReproError


class VectorQuantizerEMA(nn.Module):
    """K×D codebook `_embedding.weight` with the EMA statistics `_ema_w` (K×D) and `_ema_cluster_size` (K)."""

    def __init__(  # noqa: PLR0917 - the original positional signature
        self,
        num_embeddings: int,
        embedding_dim: int,
        commitment_cost: float,
        decay: float,
        epsilon: float = 1e-5,
        temperature: float | None = None,
    ) -> None:
        super().__init__()
        self._embedding_dim = embedding_dim
        self._num_embeddings = num_embeddings
        self._embedding = nn.Embedding(num_embeddings, embedding_dim)
        self._embedding.weight.data.normal_()
        self._commitment_cost = commitment_cost
        self.register_buffer("_ema_cluster_size", torch.zeros(num_embeddings))
        self._ema_w = nn.Parameter(torch.empty(num_embeddings, embedding_dim).normal_())
        self._decay = decay
        self._epsilon = epsilon
        if temperature is not None and (not isinstance(temperature, float | int) or temperature <= 0.0):
            raise KdReproError(f"VectorQuantizerEMA temperature must be a positive number or None, got {temperature!r}")
        self._temperature = temperature

    def _ema_update(self, encodings: torch.Tensor, flat_input: torch.Tensor) -> None:
        """One EMA step of the cluster sizes (Laplace-smoothed) and centroid sums; the codebook becomes their ratio."""
        with torch.no_grad():
            size = self._ema_cluster_size * self._decay + (1 - self._decay) * torch.sum(encodings, 0)
            total = torch.sum(size)
            self._ema_cluster_size = (size + self._epsilon) / (total + self._num_embeddings * self._epsilon) * total
            dw = torch.matmul(encodings.t(), flat_input)
            self._ema_w.copy_(self._ema_w * self._decay + (1 - self._decay) * dw)
            self._embedding.weight.copy_(self._ema_w / self._ema_cluster_size.unsqueeze(1))

    def forward(self, inputs: torch.Tensor, encodings_out: bool = False) -> tuple[Any, ...]:
        """`(None, loss, perplexity, indices (B,1,H,W))`, plus `(encodings (B,H,W,K), mean_assign_score)` if asked.

        `encodings` are the soft targets when a temperature is set (hard one-hots otherwise); `perplexity` is
        measured on the hard assignments; `loss` is the commitment loss (computed, unused by letKD).
        """
        inputs = inputs.permute(0, 2, 3, 1).contiguous()
        batch, height, width, _ = inputs.shape
        flat_input = inputs.view(-1, self._embedding_dim)
        codebook = self._embedding.weight
        distances = (
            torch.sum(flat_input**2, dim=1, keepdim=True)
            + torch.sum(codebook**2, dim=1)
            - 2 * torch.matmul(flat_input, codebook.t())
        )
        encoding_indices = torch.argmin(distances, dim=1).unsqueeze(1)
        encodings = distances.new_zeros((encoding_indices.shape[0], self._num_embeddings))
        encodings.scatter_(1, encoding_indices, 1)
        if self.training:
            self._ema_update(encodings, flat_input)
        quantized = torch.matmul(encodings, self._embedding.weight).view(inputs.shape)
        loss = self._commitment_cost * torch.mean((quantized.detach() - inputs) ** 2)
        avg_probs = torch.mean(encodings, dim=0)
        perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        encoding_indices = encoding_indices.view(batch, 1, height, width)
        if not encodings_out:
            return None, loss, perplexity, encoding_indices
        if self._temperature is None:
            raise KdReproError("VectorQuantizerEMA(encodings_out=True) needs a temperature; the letKD configs set 1")
        encodings = F.softmax(-self._temperature * distances, dim=1)
        mean_assign_score = encodings.max(dim=1)[0].mean()
        return None, loss, perplexity, encoding_indices, encodings.view(batch, height, width, -1), mean_assign_score


def create_model(opt: dict[str, Any]) -> VectorQuantizerEMA:
    """Config keys: num_embeddings, embedding_dim, commitment_cost; optional decay (0), epsilon (1e-5), temperature."""
    return VectorQuantizerEMA(
        opt["num_embeddings"],
        opt["embedding_dim"],
        opt["commitment_cost"],
        opt.get("decay", 0.0),
        opt.get("epsilon", 1e-5),
        opt.get("temperature"),
    )
