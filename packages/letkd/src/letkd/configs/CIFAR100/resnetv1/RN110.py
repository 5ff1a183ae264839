"""Teacher config RN110: the pretrained RepDistiller teacher, loaded as `student_net` (no optimizer).

Used with `evaluate=True`, `kmeans=4096` (penultimate targets) and `LDA=5` (intermediate targets).
"""

from letkd.configs.blocks import cifar100_data

config = {
    **cifar100_data(),
    "networks": {
        "student_net": {
            "def_file": "feature_extractors.resnet",
            "pretrained": "./saved_models/resnet110_vanilla/ckpt_epoch_240.pth",
            "opt": {
                "depth": 110,
                "num_filters": [16, 16, 32, 64],
                "num_classes": 100,
                "extract_from": ["layer3"],
                "extract_after_relu": [False],
            },
            "optim_params": None,
            "force": True,
        },
    },
    "keep_border": True,
    "criterions": {},
    "algorithm_type": "classification",
}
