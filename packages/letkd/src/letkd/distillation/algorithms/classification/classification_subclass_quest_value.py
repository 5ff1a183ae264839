"""`ClassificationSubQUESTValue` = letKD-2: letKD-1 plus an intermediate KD layer after the first block of a stage.

With st/ss = `which_stage_t`/`which_stage_s` indexing the split teacher/student Sequentials, the hint is the output
of the first block of stage st (ss); the intermediate layer (BoW_predictor_0 + valueLayer_0) is supervised by the
teacher's sub-class decision target and adds its value to the student hint, which then runs through the rest of
the network; the penultimate layer (BoW_predictor_1 + valueLayer_1) is letKD-1's.
loss = cls_coef·CE + quest_coef·KL_penult + sub_coef·KL_inter.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from letkd.distillation.algorithms.classification.classification_quest_value import quest_dense_prediction
from letkd.distillation.algorithms.classification.utils import ClassificationAlgorithm, finish_step, vq_soft_targets

__all__ = ["ClassificationSubQUESTValue", "object_classification_with_subclass_quest", "quest_dense_prediction"]


def _stage_blocks(network: nn.Sequential, stage: int) -> nn.Module:
    """The block container of stage `stage`: the stage itself, or its `.layer` for WRN's NetworkBlock."""
    module = network[stage]
    return module.layer if next(iter(module._modules)) == "layer" else module


def _tail(network: nn.Sequential, stage: int) -> nn.Module:
    """The modules after stage `stage` (identity when it is the last)."""
    return network[stage + 1 :] if len(network) - stage > 1 else nn.Identity()


def _run_to_hint(network: nn.Sequential, stage: int, images: torch.Tensor) -> torch.Tensor:
    """The output of the first block of stage `stage`."""
    return _stage_blocks(network, stage)[0](network[0:stage](images))


def _run_from_hint(network: nn.Sequential, stage: int, hint: torch.Tensor) -> torch.Tensor:
    """The rest of stage `stage` and every later module, from the hint."""
    return _tail(network, stage)(_stage_blocks(network, stage)[1:](hint))


def object_classification_with_subclass_quest(  # noqa: PLR0917 - the original positional signature
    feature_extractor: nn.Sequential,
    feature_extractor_optimizer: torch.optim.Optimizer | None,
    classifier: nn.Module,
    classifier_optimizer: torch.optim.Optimizer | None,
    BoW_predictor: list[nn.Module],  # noqa: N803 - the original argument name
    BoW_predictor_optimizer: list[torch.optim.Optimizer | None],  # noqa: N803
    feature_extractor_target: nn.Sequential,
    vector_quantizer_target: Any,
    valueLayer: list[nn.Module],  # noqa: N803
    valueLayer_optimizer: list[torch.optim.Optimizer | None],  # noqa: N803
    which_stage_t: int,
    which_stage_s: int,
    images: torch.Tensor,
    labels: torch.Tensor,
    is_train: bool,
    quest_loss_coef: float = 1.0,
    sub_loss_coef: float = 1.0,
    cls_loss_coef: float = 1.0,
) -> dict[str, Any]:
    """One letKD-2 step; records perp_trg_0, mean_assign_dist_0, loss_sub, Accur_vword, loss_quest, loss_cls,
    loss_total, AccuracyTop1, Error (in that order). Index 0 of the lists is the intermediate level, 1 the
    penultimate one."""
    optimizers = [feature_extractor_optimizer, classifier_optimizer]
    for bow_optimizer, value_optimizer in zip(BoW_predictor_optimizer, valueLayer_optimizer, strict=True):
        optimizers += [bow_optimizer, value_optimizer]
    if is_train:
        for optimizer in optimizers:
            optimizer.zero_grad()
    record: dict[str, Any] = {}
    with torch.no_grad():
        feature_extractor_target.eval()
        hint_target = _run_to_hint(feature_extractor_target, which_stage_t, images)
        features_target = _run_from_hint(feature_extractor_target, which_stage_t, hint_target)
    encoding_targets = vq_soft_targets(vector_quantizer_target, features_target, record)
    with torch.set_grad_enabled(is_train):
        if len(feature_extractor) == 1:  # a single flattened Sequential (the original's ImageNet MobileNetV2 path)
            hint = feature_extractor[0][0 : which_stage_s + 1](images)
        else:
            hint = _run_to_hint(feature_extractor, which_stage_s, images)
        scores_hint = BoW_predictor[0](hint)
        hint, _, loss_sub, record = valueLayer[0](hint_target, scores_hint, hint, labels, record)
        if len(feature_extractor) == 1:
            features = feature_extractor[0][which_stage_s + 1 :](hint)
        else:
            features = _run_from_hint(feature_extractor, which_stage_s, hint)
        scores = BoW_predictor[1](features)
        features, _ = valueLayer[1](scores, features)
        loss_quest, _, record = quest_dense_prediction([scores], encoding_targets, record)
        scores_cls = classifier(features)
        loss_cls = F.cross_entropy(scores_cls, labels)
        record["loss_cls"] = loss_cls.item()
        loss_total = loss_cls * cls_loss_coef + loss_quest * quest_loss_coef + loss_sub * sub_loss_coef
        record["loss_total"] = loss_total.item()
    return finish_step(record, scores_cls, labels, loss_total, optimizers if is_train else None)


class ClassificationSubQUESTValue(ClassificationAlgorithm):
    """letKD-2 (`algorithm_type='subclass_quest_value'`); networks: teacher_net, vector_quantizer_target,
    student_net, BoW_predictor_0/1, valueLayer_0/1; config keys which_stage_t/s (default 5) and the loss coefs."""

    def __init__(self, opt: dict[str, Any], _run: Any = None, _log: Any = None) -> None:
        super().__init__(opt, _run, _log)
        self.quest_loss_coef = opt.get("quest_loss_coef", 1.0)
        self.sub_loss_coef = opt.get("sub_loss_coef", 1.0)
        self.cls_loss_coef = opt.get("cls_loss_coef", 1.0)
        self.which_stage_t = opt.get("which_stage_t", 5)
        self.which_stage_s = opt.get("which_stage_s", 5)

    def process_batch_classification_task(self, batch: Any, is_train: bool) -> dict[str, Any]:
        """The letKD-2 step on `batch`."""
        self.set_tensors(batch)
        levels = range(2)
        return object_classification_with_subclass_quest(
            feature_extractor=self.networks["feature_extractor"],
            feature_extractor_optimizer=self.optimizers.get("feature_extractor"),
            classifier=self.networks["classifier"],
            classifier_optimizer=self.optimizers.get("classifier"),
            BoW_predictor=[self.networks.get(f"BoW_predictor_{level}") for level in levels],
            BoW_predictor_optimizer=[self.optimizers.get(f"BoW_predictor_{level}") for level in levels],
            feature_extractor_target=self.networks.get("feature_extractor_target"),
            vector_quantizer_target=self.networks.get("vector_quantizer_target"),
            valueLayer=[self.networks.get(f"valueLayer_{level}") for level in levels],
            valueLayer_optimizer=[self.optimizers.get(f"valueLayer_{level}") for level in levels],
            which_stage_t=self.which_stage_t,
            which_stage_s=self.which_stage_s,
            images=self.tensors["images"],
            labels=self.tensors["labels"],
            is_train=is_train,
            quest_loss_coef=self.quest_loss_coef,
            sub_loss_coef=self.sub_loss_coef,
            cls_loss_coef=self.cls_loss_coef,
        )
