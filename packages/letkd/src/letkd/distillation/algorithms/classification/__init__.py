"""The classification algorithms: plain CE, QuEST, letKD-1 (`ClassificationQUESTValue`) and letKD-2
(`ClassificationSubQUESTValue`)."""

from letkd.distillation.algorithms.classification.classification import Classification
from letkd.distillation.algorithms.classification.classification_quest import ClassificationQUEST
from letkd.distillation.algorithms.classification.classification_quest_value import ClassificationQUESTValue
from letkd.distillation.algorithms.classification.classification_subclass_quest_value import (
    ClassificationSubQUESTValue,
)

__all__ = ["Classification", "ClassificationQUEST", "ClassificationQUESTValue", "ClassificationSubQUESTValue"]
