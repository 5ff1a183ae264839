"""Demo teacher config (as `CIFAR100.resnetv1.RN56`): the exported digits ResNet-14, for evaluate/kmeans=/LDA=5.

The digits have 10 classes, so the LDA keeps 9 components (the paper's configs use the original's fixed 60).
"""

from letkd.configs.demo_blocks import DEMO_EPOCHS, DEMO_LDA_COMPONENTS, DEMO_SUBCLASSES, demo_data, teacher

config = {
    **demo_data(),
    "max_num_epochs": DEMO_EPOCHS,
    "networks": {"student_net": teacher(14)},
    "criterions": {"loss": {"ctype": "CrossEntropyLoss", "opt": None}},
    "algorithm_type": "classification",
    "lda_num_components": DEMO_LDA_COMPONENTS,
    "lda_num_subclass": DEMO_SUBCLASSES,
}
