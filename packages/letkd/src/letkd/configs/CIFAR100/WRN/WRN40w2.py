"""Teacher config WRN40w2: the pretrained RepDistiller teacher, loaded as `student_net` (no optimizer).

Used with `evaluate=True`, `kmeans=4096` (penultimate targets) and `LDA=3` (intermediate targets).
"""

from letkd.configs.blocks import cifar100_data

config = {
    **cifar100_data(),
    "networks": {
        "student_net": {
            "def_file": "feature_extractors.wide_resnet",
            "pretrained": "./saved_models/wrn_40_2_vanilla/ckpt_epoch_240.pth",
            "opt": {
                "depth": 40,
                "widen_Factor": 2,
                "dropRate": 0.0,
                "num_classes": 100,
                "extract_from": ["block3"],
                "extract_after_relu": [True],
                "pool": "avg",
            },
            "optim_params": None,
            "force": True,
        },
    },
    "algorithm_type": "classification",
}
