"""Demo letKD-1: digits ResNet-14 teacher -> ResNet-8 student with the penultimate KD layer (K = 256)."""

from letkd.configs.blocks import sgd
from letkd.configs.demo_blocks import (
    DEMO_EPOCHS,
    DEMO_KMEANS,
    DEMO_LUT,
    FILTERS,
    bow_predictor,
    demo_data,
    student,
    teacher,
    vector_quantizer,
)

config = {
    **demo_data(),
    "max_num_epochs": DEMO_EPOCHS,
    "networks": {
        "teacher_net": teacher(14),
        "vector_quantizer_target": vector_quantizer("RN14"),
        "student_net": student(8),
        "BoW_predictor": bow_predictor(DEMO_KMEANS),
        "valueLayer": {
            "def_file": "miscellaneous.valueLayer",
            "pretrained": None,
            "opt": {"emb_size": DEMO_KMEANS, "inp_size": FILTERS[3]},
            "optim_params": sgd(DEMO_LUT),
        },
    },
    "criterions": {"loss": {"ctype": "CrossEntropyLoss", "opt": None}},
    "algorithm_type": "quest_value",
    "quest_loss_coef": 1.0,
}
