# ruff: noqa: N999 - the original module name, which config def_files name
"""The intermediate KD layer of letKD-2: the teacher's sub-class decision target, its KL loss, and the value layer.

Offline files (from `LDA=<stage>`): the LDA projection (`<lda>_scalings.npy`, `<lda>_xbar.npy`), the 8 sub-class
centers per class in LDA space, and the teacher's sub-class decision table (800×800, row-stochastic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdrepro_shared.errors import KdReproError
from letkd.distillation.architectures.miscellaneous.valueLayer import Classifier


def load_target_array(path: str | Path) -> np.ndarray:
    """Read one precomputed `.npy` file; a missing file names the `LDA=` run that writes it."""
    path = Path(path)
    if not path.is_file():
        parts = path.parts
        config = ".".join(parts[parts.index("LDA") + 1 : -1]) if "LDA" in parts[:-1] else "<teacher config>"
        raise KdReproError(
            f"precomputed sub-class target file {path} is missing; make it with `python main_classification.py "
            f"with config={config} LDA=<stage: 5 for ResNet, 3 for WRN, 6 for ResNet-50>`"
        )
    return np.load(path)


class _Projection(nn.Module):
    """A frozen 1×1 convolution z = W·f + b (weight (R, D, 1, 1), bias (R)); saved in checkpoints, never trained."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(weight).to(torch.float32)[..., None, None], requires_grad=False)
        self.bias = nn.Parameter(torch.from_numpy(bias).to(torch.float32), requires_grad=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.conv2d(features, self.weight, bias=self.bias, stride=1, padding=0)


class LDA_Layer(_Projection):  # noqa: N801 - the original class name
    """sklearn LDA's transform as a 1×1 conv: z = Sᵀ(f − x̄), with S = `scalings_` (D×R) and x̄ = `xbar_` (D)."""

    def __init__(self, scalings: np.ndarray, xbar: np.ndarray) -> None:
        weight = np.transpose(scalings)
        super().__init__(weight, -np.matmul(weight, xbar))


class PCA_Layer(_Projection):  # noqa: N801 - the original class name
    """sklearn PCA's transform as a 1×1 conv: z = P(f − μ), with P = `components_` (R×D) and μ = `mean_` (D)."""

    def __init__(self, components_: np.ndarray, mean_: np.ndarray) -> None:
        super().__init__(components_, -np.matmul(components_, mean_))


def sub_dense_prediction(
    scores: list[torch.Tensor], targets: list[torch.Tensor], record: dict[str, Any]
) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, Any]]:
    """Sum over levels of KL(target ‖ softmax(scores)) per position, `batchmean` over the B·H·W positions.

    `scores[i]` is (B, K, H, W) and `targets[i]` is (B·H·W, K); sets `record['loss_sub']` (and per level when >1).
    """
    loss_total = 0.0
    for level, (score, target) in enumerate(zip(scores, targets, strict=True)):
        rows = score.permute(0, 2, 3, 1).reshape(-1, score.size(1))
        loss = F.kl_div(F.log_softmax(rows, dim=1), target, reduction="batchmean")
        loss_total = loss_total + loss
        if len(scores) > 1:
            record[f"loss_sub_l{level}"] = loss.item()
    record["loss_sub"] = loss_total.item()
    return loss_total, targets, record


def subclass_targets(  # noqa: PLR0917 - called positionally like the original
    lda_features: torch.Tensor,
    labels: torch.Tensor,
    cluster_centers: torch.Tensor,
    teacher_scores: torch.Tensor,
    num_classes: int,
    each_subclass: int,
) -> torch.Tensor:
    """The teacher's decision row for each position: nearest sub-class of the ground-truth class, looked up.

    `lda_features` is (B, R, h, w) in LDA space; returns (B·h·w, num_classes·each_subclass). Rows are matched
    to centers by squared Euclidean distance among the `each_subclass` centers of the label (ties → first index,
    the all-equal degenerate case → center 0, as in the original's masked argmax).
    """
    flat = lda_features.permute(0, 2, 3, 1).reshape(-1, lda_features.size(1))
    positions = lda_features.size(2) * lda_features.size(3)
    distances = (
        torch.sum(flat**2, dim=1, keepdim=True)
        + torch.sum(cluster_centers**2, dim=1)
        - 2 * torch.matmul(flat, cluster_centers.t())
    )
    row_max = distances.max(dim=-1, keepdim=True).values
    mask = F.one_hot(labels, num_classes).repeat_interleave(each_subclass, dim=1).repeat_interleave(positions, dim=0)
    nearest = torch.argmax(mask * (row_max - distances), dim=1)
    return teacher_scores[nearest]


class valueLayer(nn.Module):  # noqa: N801 - the original class name, which configs reach through create_model
    """Intermediate KD layer: loss_sub from the teacher hint, then x̂ = α·CosConv(ReLU(BN(scores))) + x.

    `forward(feature_teacher, scores, in_block, labels, record)` returns `(x̂, value, loss_sub, record)`.
    The centers and the decision table are non-persistent buffers: they follow `.to(device)` and stay out of the
    state_dict, whose keys are the original's (`conv_value.layers.*`, `bn.*`, `LDA.weight`, `LDA.bias`).
    """

    def __init__(  # noqa: PLR0917 - the original positional signature
        self,
        inp_size: int,
        num_classes: int,
        emb_size: int = 4096,
        centers_filename: str | None = None,
        lda_filename: str | None = None,
        scores_filename: str | None = None,
        pca_filename: str | None = None,
        downscale: bool = False,
        value_ratio: float = 1.0,
    ) -> None:
        super().__init__()
        self.downscale = downscale
        self.value_ratio = value_ratio
        self.is_pca = bool(pca_filename)
        self.conv_value = Classifier(emb_size, inp_size, scale=1, learn_scale=True)
        self.bn = nn.BatchNorm2d(emb_size)
        self.relu = nn.ReLU(inplace=True)
        if self.is_pca:
            self.PCA = PCA_Layer(
                load_target_array(f"{pca_filename}_components.npy"), load_target_array(f"{pca_filename}_mean.npy")
            )
        cluster_centers = load_target_array(centers_filename)
        self.each_subclass = emb_size // num_classes
        self.num_classes = num_classes
        scalings = load_target_array(f"{lda_filename}_scalings.npy")
        self.LDA = LDA_Layer(scalings, load_target_array(f"{lda_filename}_xbar.npy"))
        self.LDA_comp = cluster_centers.shape[1]
        teacher_scores = load_target_array(scores_filename)
        total = self.each_subclass * num_classes
        if cluster_centers.shape[0] != total or teacher_scores.shape != (total, total):
            raise KdReproError(
                f"sub-class files do not fit emb_size={emb_size}, num_classes={num_classes}: expected {total} centers "
                f"and a {total}x{total} score table, got {cluster_centers.shape} and {teacher_scores.shape}"
            )
        self.register_buffer("cluster_centers", torch.from_numpy(cluster_centers).to(torch.float32), persistent=False)
        self.register_buffer("teacher_scores", torch.from_numpy(teacher_scores).to(torch.float32), persistent=False)

    def teacher_target(self, feature_teacher: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The (B·h·w, K) target rows from the teacher hint (pooled 2×2 first when `downscale`)."""
        if self.downscale:
            feature_teacher = F.avg_pool2d(feature_teacher, (2, 2), stride=(2, 2))
        if self.is_pca:
            feature_teacher = self.PCA(feature_teacher)
        lda_features = self.LDA(feature_teacher)[:, : self.LDA_comp]
        return subclass_targets(
            lda_features, labels, self.cluster_centers, self.teacher_scores, self.num_classes, self.each_subclass
        )

    def forward(
        self,
        feature_teacher: torch.Tensor,
        scores: torch.Tensor,
        in_block: torch.Tensor,
        labels: torch.Tensor,
        record: dict[str, Any],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        target = self.teacher_target(feature_teacher, labels)
        loss_sub, _, record = sub_dense_prediction([scores], [target], record)
        value = self.conv_value(self.relu(self.bn(scores)))
        return self.value_ratio * value + in_block, value, loss_sub, record


def create_model(opt: dict[str, Any]) -> valueLayer:
    """Config keys: emb_size, inp_size, num_classes, centers_filename, lda_filename (prefix), scores_filename;
    optional downscale, pca_filename, value_ratio."""
    return valueLayer(
        inp_size=opt["inp_size"],
        num_classes=opt["num_classes"],
        emb_size=opt["emb_size"],
        centers_filename=opt["centers_filename"],
        lda_filename=opt["lda_filename"],
        scores_filename=opt["scores_filename"],
        pca_filename=opt.get("pca_filename"),
        downscale=opt.get("downscale", False),
        value_ratio=opt.get("value_ratio", 1.0),
    )
