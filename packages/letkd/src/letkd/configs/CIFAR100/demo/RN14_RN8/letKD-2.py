"""Demo letKD-2: digits ResNet-14 -> ResNet-8 with the intermediate (8 sub-classes × 10) and penultimate KD layers.

Like the paper's homogeneous configs it names ``centers_subclass_8.npy`` / ``final_scores_8.npy``; the ``LDA=`` run
writes ``*_8_9.npy`` and `letkd.precomputed` resolves one name to the other.
"""

from letkd.configs.blocks import sgd
from letkd.configs.demo_blocks import (
    DEMO_CLASSES,
    DEMO_EPOCHS,
    DEMO_KMEANS,
    DEMO_LUT,
    DEMO_SUBCLASSES,
    FILTERS,
    bow_predictor,
    demo_data,
    student,
    teacher,
    vector_quantizer,
)

LDA_DIR = "./experiments/LDA/CIFAR100/demo/RN14"

config = {
    **demo_data(),
    "max_num_epochs": DEMO_EPOCHS,
    "networks": {
        "teacher_net": teacher(14),
        "vector_quantizer_target": vector_quantizer("RN14"),
        "student_net": student(8),
        "BoW_predictor_0": bow_predictor(DEMO_SUBCLASSES * DEMO_CLASSES),
        "BoW_predictor_1": bow_predictor(DEMO_KMEANS),
        "valueLayer_0": {
            "def_file": "miscellaneous.valueLayer_subclass",
            "pretrained": None,
            "opt": {
                "emb_size": DEMO_SUBCLASSES * DEMO_CLASSES,
                "inp_size": FILTERS[3],
                "centers_filename": f"{LDA_DIR}/centers_subclass_{DEMO_SUBCLASSES}.npy",
                "lda_filename": f"{LDA_DIR}/lda_model",
                "scores_filename": f"{LDA_DIR}/final_scores_{DEMO_SUBCLASSES}.npy",
                "num_classes": DEMO_CLASSES,
            },
            "optim_params": sgd(DEMO_LUT),
        },
        "valueLayer_1": {
            "def_file": "miscellaneous.valueLayer",
            "pretrained": None,
            "opt": {"emb_size": DEMO_KMEANS, "inp_size": FILTERS[3]},
            "optim_params": sgd(DEMO_LUT),
        },
    },
    "criterions": {"loss": {"ctype": "CrossEntropyLoss", "opt": None}},
    "algorithm_type": "subclass_quest_value",
    "sub_loss_coef": 1.0,
    "quest_loss_coef": 1.0,
    "which_stage_t": 5,
    "which_stage_s": 5,
}
