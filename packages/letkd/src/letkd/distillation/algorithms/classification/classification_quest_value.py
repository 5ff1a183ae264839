"""`ClassificationQUESTValue` = letKD-1: the penultimate KD layer, supervised by the k-means soft targets.

Step: x = student_fe(img); s = BoW(x); x̂ = x + α·value(s); logits = classifier(x̂);
loss = cls_coef·CE(logits, y) + quest_coef·KL(t ‖ softmax(s)), t = the teacher's soft assignments.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from letkd.distillation.algorithms.classification.utils import (
    ClassificationAlgorithm,
    dense_kl_prediction,
    extract_features,
    finish_step,
    vq_soft_targets,
)


def quest_dense_prediction(
    scores: list[torch.Tensor], targets: list[torch.Tensor], record: dict[str, Any]
) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, Any]]:
    """Dense KL between precomputed scores (B,K,H,W) and targets (B,H,W,K): `(loss_quest, target argmax, record)`."""
    return dense_kl_prediction(scores, targets, record)


def object_classification_with_quest(  # noqa: PLR0917 - the original positional signature
    feature_extractor: nn.Module,
    feature_extractor_optimizer: torch.optim.Optimizer | None,
    classifier: nn.Module,
    classifier_optimizer: torch.optim.Optimizer | None,
    BoW_predictor: nn.Module,  # noqa: N803 - the original argument name
    BoW_predictor_optimizer: torch.optim.Optimizer | None,  # noqa: N803
    feature_extractor_target: nn.Module,
    vector_quantizer_target: Any,
    valueLayer: nn.Module,  # noqa: N803
    valueLayer_optimizer: torch.optim.Optimizer | None,  # noqa: N803
    images: torch.Tensor,
    labels: torch.Tensor,
    is_train: bool,
    feature_name: Any = None,
    quest_loss_coef: float = 1.0,
    cls_loss_coef: float = 1.0,
) -> dict[str, Any]:
    """One letKD-1 step; records perp_trg_0, mean_assign_dist_0, Accur_vword, loss_quest, loss_cls, loss_total,
    AccuracyTop1, Error (in that order)."""
    optimizers = (feature_extractor_optimizer, classifier_optimizer, BoW_predictor_optimizer, valueLayer_optimizer)
    if is_train:
        for optimizer in optimizers:
            optimizer.zero_grad()
    record: dict[str, Any] = {}
    with torch.no_grad():
        feature_extractor_target.eval()
        features_target = extract_features(feature_extractor_target, images, feature_name)
    encoding_targets = vq_soft_targets(vector_quantizer_target, features_target, record)
    with torch.set_grad_enabled(is_train):
        features = extract_features(feature_extractor, images, feature_name)
        features = features[-1] if isinstance(features, list | tuple) else features
        scores = BoW_predictor(features)
        loss_quest, _, record = quest_dense_prediction([scores], encoding_targets, record)
        features, _ = valueLayer(scores, features)
        scores_cls = classifier(features)
        loss_cls = F.cross_entropy(scores_cls, labels)
        record["loss_cls"] = loss_cls.item()
        loss_total = loss_cls * cls_loss_coef + loss_quest * quest_loss_coef
        record["loss_total"] = loss_total.item()
    return finish_step(record, scores_cls, labels, loss_total, optimizers if is_train else None)


class ClassificationQUESTValue(ClassificationAlgorithm):
    """letKD-1 (`algorithm_type='quest_value'`); networks: teacher_net, vector_quantizer_target, student_net,
    BoW_predictor, valueLayer."""

    def __init__(self, opt: dict[str, Any], _run: Any = None, _log: Any = None) -> None:
        super().__init__(opt, _run, _log)
        self.quest_loss_coef = opt.get("quest_loss_coef", 1.0)
        self.cls_loss_coef = opt.get("cls_loss_coef", 1.0)
        self.feature_name = opt.get("feature_name")

    def process_batch_classification_task(self, batch: Any, is_train: bool) -> dict[str, Any]:
        """The letKD-1 step on `batch`."""
        self.set_tensors(batch)
        if isinstance(self.feature_name, list | tuple) and len(self.feature_name) > 1:
            quantizers: Any = [self.networks.get(f"vector_quantizer_target_{key}") for key in self.feature_name]
        else:
            quantizers = self.networks.get("vector_quantizer_target")
        return object_classification_with_quest(
            feature_extractor=self.networks["feature_extractor"],
            feature_extractor_optimizer=self.optimizers.get("feature_extractor"),
            classifier=self.networks["classifier"],
            classifier_optimizer=self.optimizers.get("classifier"),
            BoW_predictor=self.networks.get("BoW_predictor"),
            BoW_predictor_optimizer=self.optimizers.get("BoW_predictor"),
            feature_extractor_target=self.networks.get("feature_extractor_target"),
            vector_quantizer_target=quantizers,
            valueLayer=self.networks.get("valueLayer"),
            valueLayer_optimizer=self.optimizers.get("valueLayer"),
            images=self.tensors["images"],
            labels=self.tensors["labels"],
            is_train=is_train,
            feature_name=self.feature_name,
            quest_loss_coef=self.quest_loss_coef,
            cls_loss_coef=self.cls_loss_coef,
        )
