"""Shared pieces of the classification algorithms: feature extraction, the plain CE step, the batch buffers."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from letkd.distillation.algorithms.algorithm import Algorithm
from letkd.distillation.utils import accuracy, top1accuracy


def extract_features(
    feature_extractor: nn.Module, images: torch.Tensor, feature_name: str | list[str] | tuple[str, ...] | None = None
) -> Any:
    """`feature_extractor(images)`, or the named outputs (`out_feat_keys`) of a multi-output extractor."""
    if not feature_name:
        return feature_extractor(images)
    if isinstance(feature_name, str):
        feature_name = [feature_name]
    return feature_extractor(images, out_feat_keys=list(feature_name))


def object_classification(  # noqa: PLR0917 - the original positional signature
    feature_extractor: nn.Module,
    feature_extractor_optimizer: torch.optim.Optimizer | None,
    classifier: nn.Module,
    classifier_optimizer: torch.optim.Optimizer | None,
    images: torch.Tensor,
    labels: torch.Tensor,
    is_train: bool,
    criterions: dict[str, nn.Module] | None = None,
    feature_name: Any = None,
) -> dict[str, Any]:
    """Plain classification step: CE on `classifier(feature_extractor(images))`; records loss and top-1/top-5.

    `criterions` is accepted for the original signature; the loss is `F.cross_entropy` as there.
    """
    if is_train:
        feature_extractor_optimizer.zero_grad()
        classifier_optimizer.zero_grad()
    record: dict[str, Any] = {}
    with torch.set_grad_enabled(is_train):
        scores = classifier(extract_features(feature_extractor, images, feature_name=feature_name))
        loss = F.cross_entropy(scores, labels)
        record["loss"] = loss.item()
    top1, top5 = accuracy(scores, labels, topk=(1, 5))
    record["AccuracyTop1"] = np.float64(top1.item())
    record["AccuracyTop5"] = np.float64(top5.item())
    if is_train:
        loss.backward()
        feature_extractor_optimizer.step()
        classifier_optimizer.step()
    return record


class ClassificationAlgorithm(Algorithm):
    """An `Algorithm` fed `(images, labels)` batches through `images`/`labels` buffers on the algorithm's device;
    subclasses implement `process_batch_classification_task(batch, is_train)`. The best epoch is chosen by
    test `AccuracyTop1`."""

    def __init__(self, opt: dict[str, Any], _run: Any = None, _log: Any = None) -> None:
        super().__init__(opt, _run, _log)
        self.keep_best_model_metric_name = "AccuracyTop1"

    def allocate_tensors(self) -> None:
        """Float image and long label buffers."""
        self.tensors = {"images": torch.FloatTensor(), "labels": torch.LongTensor()}

    def set_tensors(self, batch: Any) -> str:
        """Copy a batch into the buffers (resized to fit)."""
        images, labels = batch
        self.tensors["images"].resize_(images.size()).copy_(images)
        self.tensors["labels"].resize_(labels.size()).copy_(labels)
        return "classification"

    def train_step(self, batch: Any) -> dict[str, Any]:
        """One optimisation step on `batch`."""
        return self.process_batch_classification_task(batch, is_train=True)

    def evaluation_step(self, batch: Any) -> dict[str, Any]:
        """The same computation without gradients or updates."""
        return self.process_batch_classification_task(batch, is_train=False)

    @abc.abstractmethod
    def process_batch_classification_task(self, batch: Any, is_train: bool) -> dict[str, Any]:
        """Run the algorithm's step on `batch` and return its record."""


def vq_soft_targets(
    vector_quantizer_target: nn.Module | list[nn.Module], features_target: Any, record: dict[str, Any]
) -> list[torch.Tensor]:
    """The penultimate targets: each codebook (eval mode) turns its teacher feature map into (B, H, W, K) soft
    assignments; records `perp_trg_<k>` and `mean_assign_dist_<k>`.

    Computed without autograd: the original let the targets carry history into the frozen codebook, which only
    filled that codebook's never-used `.grad`; the losses and the student's gradients are the same.
    """
    quantizers = (
        vector_quantizer_target if isinstance(vector_quantizer_target, list | tuple) else [vector_quantizer_target]
    )
    features = features_target if isinstance(features_target, list | tuple) else [features_target]
    targets = []
    with torch.no_grad():
        for level, (quantizer, feature) in enumerate(zip(quantizers, features, strict=False)):
            quantizer.eval()
            _, _, perplexity, _, encodings, mean_assign_score = quantizer(feature, True)
            targets.append(encodings)
            record[f"perp_trg_{level}"] = perplexity.item()
            record[f"mean_assign_dist_{level}"] = mean_assign_score.item()
    return targets


def dense_kl_prediction(
    scores: list[torch.Tensor], targets: list[torch.Tensor], record: dict[str, Any]
) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, Any]]:
    """Σ_levels KL(target ‖ softmax(scores)) per position, `batchmean` over the B·H·W positions (weights 1.0).

    `scores[i]` is (B, K, H, W), `targets[i]` (B, H, W, K). Records `loss_quest` and `Accur_vword` (100 × the
    fraction of positions whose predicted and target argmax agree), per level (`_l<i>`) when there are several.
    Returns the loss, the target argmax per position, and the record.
    """
    loss_total = 0.0
    hard_targets = []
    for level, (score, target) in enumerate(zip(scores, targets, strict=True)):
        if score.dim() != 4 or tuple(target.shape) != (score.size(0), score.size(2), score.size(3), score.size(1)):
            raise ValueError(
                f"scores {tuple(score.shape)} (B,K,H,W) do not match targets {tuple(target.shape)} (B,H,W,K)"
            )
        target_rows = target.view(-1, target.size(3))
        score_rows = score.permute(0, 2, 3, 1).contiguous().view(-1, score.size(1))
        loss = F.kl_div(F.log_softmax(score_rows, dim=1), target_rows, reduction="batchmean")
        loss_total = loss_total + loss
        if len(scores) > 1:
            record[f"loss_quest_l{level}"] = loss.item()
        with torch.no_grad():
            hard = target_rows.max(dim=1)[1]
            record["Accur_vword" if len(scores) == 1 else f"Accur_vword_l{level}"] = top1accuracy(score_rows, hard)
        hard_targets.append(hard)
    record["loss_quest"] = loss_total.item()
    return loss_total, hard_targets, record


def finish_step(
    record: dict[str, Any],
    scores_cls: torch.Tensor,
    labels: torch.Tensor,
    loss_total: torch.Tensor,
    optimizers: Iterable[torch.optim.Optimizer] | None,
) -> dict[str, Any]:
    """The letKD steps' common end: record AccuracyTop1 and Error, then (training: `optimizers` given) backpropagate
    `loss_total` and step every optimizer. Returns `record`."""
    with torch.no_grad():
        record["AccuracyTop1"] = top1accuracy(scores_cls, labels)
        record["Error"] = 100.0 - record["AccuracyTop1"]
    if optimizers is not None:
        loss_total.backward()
        for optimizer in optimizers:
            optimizer.step()
    return record
