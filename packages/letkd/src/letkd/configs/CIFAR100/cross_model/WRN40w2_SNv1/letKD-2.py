"""letKD-2 (intermediate + penultimate KD layers) for WRN40w2 -> SNv1 on CIFAR-100 (supplementary Table 1)."""

from letkd.configs.blocks import LUT_HETEROGENEOUS, cifar100_data, cosine_head, sgd, vq_options

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
                "extract_from": ["avgpool_2x2"],
                "extract_after_relu": [False],
                "pool": "avg",
                "downscale": True,
            },
            "optim_params": None,
            "force": True,
        },
        "vector_quantizer_target": {
            "def_file": "miscellaneous.vector_quantization",
            "pretrained": "./experiments/VQ/CIFAR100/WRN/WRN40w2_downscale/vector_quantizer_kmeansK4096_net_epoch*",
            "opt": vq_options(128),
            "optim_params": None,
        },
        "student_net": {
            "def_file": "feature_extractors.shufflev1",
            "pretrained": None,
            "opt": {
                "num_classes": 100,
                "extract_from": ["layer3"],
                "extract_after_relu": [False],
                "classifier_options": {
                    "classifier_type": "linear",
                    "num_classes": 100,
                    "num_channels": None,
                    "global_pooling": True,
                },
            },
            "optim_params": sgd(LUT_HETEROGENEOUS, with_classifier=True),
        },
        "BoW_predictor_0": {
            "def_file": "classifiers.classifier",
            "pretrained": None,
            "opt": cosine_head(960, 800),
            "optim_params": sgd(LUT_HETEROGENEOUS),
        },
        "BoW_predictor_1": {
            "def_file": "classifiers.classifier",
            "pretrained": None,
            "opt": cosine_head(960, 4096),
            "optim_params": sgd(LUT_HETEROGENEOUS),
        },
        "valueLayer_0": {
            "def_file": "miscellaneous.valueLayer_subclass",
            "pretrained": None,
            "opt": {
                "emb_size": 800,
                "inp_size": 960,
                "centers_filename": "./experiments/LDA/CIFAR100/WRN/WRN40w2_downscale/centers_subclass_8_60.npy",
                "lda_filename": "./experiments/LDA/CIFAR100/WRN/WRN40w2_downscale/lda_model",
                "scores_filename": "./experiments/LDA/CIFAR100/WRN/WRN40w2_downscale/final_scores_8_60.npy",
                "num_classes": 100,
                "downscale": True,
            },
            "optim_params": sgd(LUT_HETEROGENEOUS),
        },
        "valueLayer_1": {
            "def_file": "miscellaneous.valueLayer",
            "pretrained": None,
            "opt": {
                "emb_size": 4096,
                "inp_size": 960,
            },
            "optim_params": sgd(LUT_HETEROGENEOUS),
        },
    },
    "criterions": {
        "loss": {
            "ctype": "CrossEntropyLoss",
            "opt": None,
        },
    },
    "algorithm_type": "subclass_quest_value",
    "sub_loss_coef": 1.0,
    "quest_loss_coef": 1.0,
    "which_stage_t": 3,
    "which_stage_s": 5,
}
