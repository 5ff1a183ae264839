"""letKD-1 (penultimate KD layer) for WRN40w2 -> WRN40w1 on CIFAR-100 (supplementary Table 1)."""

from letkd.configs.blocks import LUT_HOMOGENEOUS, cifar100_data, cosine_head, sgd, vq_options

config = {
    **cifar100_data(),
    "max_num_epochs": 240,
    "networks": {
        "teacher_net": {
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
        "vector_quantizer_target": {
            "def_file": "miscellaneous.vector_quantization",
            "pretrained": "./experiments/VQ/CIFAR100/WRN/WRN40w2/vector_quantizer_kmeansK4096_net_epoch*",
            "opt": vq_options(128),
            "optim_params": None,
        },
        "student_net": {
            "def_file": "feature_extractors.wide_resnet",
            "pretrained": None,
            "opt": {
                "depth": 40,
                "widen_Factor": 1,
                "dropRate": 0.0,
                "num_classes": 100,
                "extract_from": ["block3"],
                "extract_after_relu": [True],
                "classifier_options": {
                    "classifier_type": "linear",
                    "num_classes": 100,
                    "num_channels": 64,
                    "global_pooling": True,
                },
                "pool": "avg",
            },
            "optim_params": sgd(LUT_HOMOGENEOUS, with_classifier=True),
        },
        "BoW_predictor": {
            "def_file": "classifiers.classifier",
            "pretrained": None,
            "opt": cosine_head(64, 4096),
            "optim_params": sgd(LUT_HOMOGENEOUS),
        },
        "valueLayer": {
            "def_file": "miscellaneous.valueLayer",
            "pretrained": None,
            "opt": {
                "emb_size": 4096,
                "inp_size": 64,
            },
            "optim_params": sgd(LUT_HOMOGENEOUS),
        },
    },
    "criterions": {
        "loss": {
            "ctype": "CrossEntropyLoss",
            "opt": None,
        },
    },
    "algorithm_type": "quest_value",
    "quest_loss_coef": 1.0,
}
