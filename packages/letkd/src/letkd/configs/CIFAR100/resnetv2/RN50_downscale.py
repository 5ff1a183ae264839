"""Teacher config RN50_downscale: the pretrained RepDistiller teacher, loaded as `student_net` (no optimizer).

Used with `evaluate=True`, `kmeans=4096` (penultimate targets) and `LDA=6` (intermediate targets).
"""

from letkd.configs.blocks import cifar100_data

config = {
    **cifar100_data(),
    "networks": {
        "student_net": {
            "def_file": "feature_extractors.resnetv2",
            "pretrained": "./saved_models/ResNet50_vanilla/ckpt_epoch_240.pth",
            "opt": {
                "depth": 50,
                "num_filters": [3, 4, 6, 3],
                "num_classes": 100,
                "extract_from": ["avgpool_2x2"],
                "extract_after_relu": [False],
                "downscale": True,
            },
            "optim_params": None,
            "force": True,
        },
    },
    "keep_border": True,
    "criterions": {},
    "algorithm_type": "classification",
}
