"""The sub-class target loss of letKD-2 as a stand-alone criterion (defined by the original, used by no config).

It computes the same target and KL as the intermediate value layer, without the value mapping.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from letkd.distillation.architectures.miscellaneous.valueLayer_subclass import (
    LDA_Layer,
    load_target_array,
    sub_dense_prediction,
    subclass_targets,
)

__all__ = ["LDA_Layer", "create_criterion", "sub_dense_prediction", "subclass_loss"]


class subclass_loss(nn.Module):  # noqa: N801 - the original class name
    """`forward(feature_teacher, scores, labels, record)` → `(loss_sub, record)`."""

    def __init__(
        self,
        num_classes: int,
        emb_size: int = 4096,
        centers_filename: str | None = None,
        lda_filename: str | None = None,
        scores_filename: str | None = None,
    ) -> None:
        super().__init__()
        cluster_centers = load_target_array(centers_filename)
        self.each_subclass = emb_size // num_classes
        self.num_classes = num_classes
        scalings = load_target_array(f"{lda_filename}_scalings.npy")
        self.LDA = LDA_Layer(scalings, load_target_array(f"{lda_filename}_xbar.npy"))
        self.LDA_comp = cluster_centers.shape[1]
        teacher_scores = load_target_array(scores_filename)
        self.register_buffer("cluster_centers", torch.from_numpy(cluster_centers).to(torch.float32), persistent=False)
        self.register_buffer("teacher_scores", torch.from_numpy(teacher_scores).to(torch.float32), persistent=False)

    def forward(
        self, feature_teacher: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, record: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        lda_features = self.LDA(feature_teacher)[:, : self.LDA_comp]
        target = subclass_targets(
            lda_features, labels, self.cluster_centers, self.teacher_scores, self.num_classes, self.each_subclass
        )
        loss_sub, _, record = sub_dense_prediction([scores], [target], record)
        return loss_sub, record


def create_criterion(opt: dict[str, Any]) -> subclass_loss:
    """Config keys: emb_size, num_classes, centers_filename, lda_filename (prefix), scores_filename."""
    return subclass_loss(
        num_classes=opt["num_classes"],
        emb_size=opt["emb_size"],
        centers_filename=opt["centers_filename"],
        lda_filename=opt["lda_filename"],
        scores_filename=opt["scores_filename"],
    )
