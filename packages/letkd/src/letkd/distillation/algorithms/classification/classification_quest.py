"""`ClassificationQUEST`: QuEST's step (CE + KL to the k-means soft targets, no value layer); the `kmeans=` run."""

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

__all__ = [
    "ClassificationQUEST",
    "apply_kmeans_to_dataset",
    "object_classification_with_quest",
    "quest_dense_prediction",
]


def apply_kmeans_to_dataset(  # noqa: PLR0917 - the original positional signature
    self: Any,
    dataloader: Any,
    num_embeddings: int,
    feature_name: Any = None,
    memmap: bool = False,
    memmap_dir: str | None = None,
) -> str:
    """The `kmeans=<K>` run (a method of `ClassificationQUEST`): see `classification.offline.apply_kmeans_to_dataset`.

    Imported on call, so that training does not pay for importing faiss.
    """
    from letkd.distillation.algorithms.classification import offline  # noqa: PLC0415

    return offline.apply_kmeans_to_dataset(
        self, dataloader, num_embeddings, feature_name=feature_name, memmap=memmap, memmap_dir=memmap_dir
    )


def quest_dense_prediction(
    predictor: nn.Module, features: Any, targets: Any, record: dict[str, Any]
) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor], dict[str, Any]]:
    """Score the student features with the BoW predictor and take the dense KL to the targets.

    Returns `(scores, loss_quest, target argmax, record)`.
    """
    features = list(features) if isinstance(features, list | tuple) else [features]
    targets = list(targets) if isinstance(targets, list | tuple) else [targets]
    scores = [predictor(features[0])] if len(features) == 1 else predictor(features)
    loss, hard_targets, record = dense_kl_prediction(scores, targets, record)
    return scores, loss, hard_targets, record


def object_classification_with_quest(  # noqa: PLR0917 - the original positional signature
    feature_extractor: nn.Module,
    feature_extractor_optimizer: torch.optim.Optimizer | None,
    classifier: nn.Module,
    classifier_optimizer: torch.optim.Optimizer | None,
    BoW_predictor: nn.Module,  # noqa: N803 - the original argument name
    BoW_predictor_optimizer: torch.optim.Optimizer | None,  # noqa: N803
    feature_extractor_target: nn.Module,
    vector_quantizer_target: Any,
    images: torch.Tensor,
    labels: torch.Tensor,
    is_train: bool,
    feature_name: Any = None,
    quest_loss_coef: float = 1.0,
    cls_loss_coef: float = 1.0,
) -> dict[str, Any]:
    """QuEST step: logits = classifier(x); loss = cls_coef·CE + quest_coef·KL(t ‖ softmax(BoW(x)))."""
    optimizers = (feature_extractor_optimizer, classifier_optimizer, BoW_predictor_optimizer)
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
        features = list(features) if isinstance(features, list | tuple) else [features]
        scores_cls = classifier(features[-1])
        loss_cls = F.cross_entropy(scores_cls, labels)
        record["loss_cls"] = loss_cls.item()
        _, loss_quest, _, record = quest_dense_prediction(BoW_predictor, features, encoding_targets, record)
        loss_total = loss_cls * cls_loss_coef + loss_quest * quest_loss_coef
        record["loss_total"] = loss_total.item()
    return finish_step(record, scores_cls, labels, loss_total, optimizers if is_train else None)


class ClassificationQUEST(ClassificationAlgorithm):
    """QuEST training (`algorithm_type='quest'`), and with a teacher config the `kmeans=<K>` target run."""

    def __init__(self, opt: dict[str, Any], _run: Any = None, _log: Any = None) -> None:
        super().__init__(opt, _run, _log)
        self.quest_loss_coef = opt.get("quest_loss_coef", 1.0)
        self.cls_loss_coef = opt.get("cls_loss_coef", 1.0)
        self.feature_name = opt.get("feature_name")

    def _vector_quantizers(self) -> Any:
        """The codebook network, or one per feature name when several levels are distilled."""
        if isinstance(self.feature_name, list | tuple) and len(self.feature_name) > 1:
            return [self.networks.get(f"vector_quantizer_target_{key}") for key in self.feature_name]
        return self.networks.get("vector_quantizer_target")

    def process_batch_classification_task(self, batch: Any, is_train: bool) -> dict[str, Any]:
        """The QuEST step on `batch`."""
        self.set_tensors(batch)
        return object_classification_with_quest(
            feature_extractor=self.networks["feature_extractor"],
            feature_extractor_optimizer=self.optimizers.get("feature_extractor"),
            classifier=self.networks["classifier"],
            classifier_optimizer=self.optimizers.get("classifier"),
            BoW_predictor=self.networks.get("BoW_predictor"),
            BoW_predictor_optimizer=self.optimizers.get("BoW_predictor"),
            feature_extractor_target=self.networks.get("feature_extractor_target"),
            vector_quantizer_target=self._vector_quantizers(),
            images=self.tensors["images"],
            labels=self.tensors["labels"],
            is_train=is_train,
            feature_name=self.feature_name,
            quest_loss_coef=self.quest_loss_coef,
            cls_loss_coef=self.cls_loss_coef,
        )

    apply_kmeans_to_dataset = apply_kmeans_to_dataset
