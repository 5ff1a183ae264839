"""`Classification`: the plain CE algorithm (teacher configs), used to evaluate a teacher and for the `LDA=` run."""

from __future__ import annotations

from typing import Any

from kdrepro_shared.errors import KdReproError
from letkd.distillation.algorithms.classification.utils import ClassificationAlgorithm, object_classification

__all__ = ["Classification", "apply_sublass"]


def apply_sublass(  # noqa: PLR0917 - the original positional signature
    self: Any,
    dataloader: Any,
    num_components: int,
    num_subclass: int,
    which_stages: int | None = None,
    directory: Any = None,
    visualize: bool = False,
    downscale: bool = False,
) -> dict[str, str]:
    """The `LDA=<stage>` run (a method of `Classification`): see `classification.offline.apply_sublass`.

    Imported on call, so that training does not pay for importing faiss and scikit-learn.
    """
    from letkd.distillation.algorithms.classification import offline  # noqa: PLC0415

    return offline.apply_sublass(
        self,
        dataloader,
        num_components,
        num_subclass,
        which_stages=which_stages,
        directory=directory,
        visualize=visualize,
        downscale=downscale,
    )


class Classification(ClassificationAlgorithm):
    """CE on the student's `classifier(feature_extractor(x))`; records loss, AccuracyTop1 and AccuracyTop5."""

    def __init__(self, opt: dict[str, Any], _run: Any = None, _log: Any = None) -> None:
        super().__init__(opt, _run, _log)
        self.feature_name = opt.get("feature_name")

    def process_batch_classification_task(self, batch: Any, is_train: bool) -> dict[str, Any]:
        """The plain classification step on `batch`."""
        self.set_tensors(batch)
        if is_train and self.optimizers.get("feature_extractor") is None:
            raise KdReproError(
                "this config's student_net has no optim_params, so it cannot be trained; use it with evaluate=True, "
                "kmeans=<K> or LDA=<stage>"
            )
        return object_classification(
            feature_extractor=self.networks["feature_extractor"],
            feature_extractor_optimizer=self.optimizers.get("feature_extractor"),
            classifier=self.networks["classifier"],
            classifier_optimizer=self.optimizers.get("classifier"),
            images=self.tensors["images"],
            labels=self.tensors["labels"],
            is_train=is_train,
            criterions=self.criterions,
            feature_name=self.feature_name,
        )

    apply_sublass = apply_sublass
