"""Teacher config RN56: the pretrained RepDistiller teacher, loaded as `student_net` (no optimizer).

Used with `evaluate=True`, `kmeans=4096` (penultimate targets) and `LDA=5` (intermediate targets).
"""

from letkd.configs.blocks import cifar100_data

config = {
    **cifar100_data(),
    "max_num_epochs": 240,
    "networks": {
        "student_net": {
            "def_file": "feature_extractors.resnet",
            "pretrained": "saved_models/resnet56_vanilla/ckpt_epoch_240.pth",
            "opt": {
                "depth": 56,
                "num_filters": [16, 16, 32, 64],
                "num_classes": 100,
                "extract_from": ["layer3"],
                "extract_after_relu": [False],
            },
            "optim_params": None,
            "force": True,
        },
    },
    "criterions": {
        "loss": {
            "ctype": "CrossEntropyLoss",
            "opt": None,
        },
    },
    "algorithm_type": "classification",
}
