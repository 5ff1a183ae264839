"""letKD-2 (intermediate + penultimate KD layers) for RN32x4 -> RN8x4 on CIFAR-100 (supplementary Table 1)."""

from letkd.configs.blocks import LUT_HOMOGENEOUS, cifar100_data, cosine_head, sgd, vq_options

config = {
    **cifar100_data(),
    "max_num_epochs": 240,
    "networks": {
        "teacher_net": {
            "def_file": "feature_extractors.resnet",
            "pretrained": "./saved_models/resnet32x4_vanilla/ckpt_epoch_240.pth",
            "opt": {
                "depth": 32,
                "num_filters": [32, 64, 128, 256],
                "num_classes": 100,
                "extract_from": ["layer3"],
                "extract_after_relu": [False],
            },
            "optim_params": None,
            "force": True,
        },
        "vector_quantizer_target": {
            "def_file": "miscellaneous.vector_quantization",
            "pretrained": "./experiments/VQ/CIFAR100/resnetv1/RN32x4/vector_quantizer_kmeansK4096_net_epoch*",
            "opt": vq_options(256),
            "optim_params": None,
        },
        "student_net": {
            "def_file": "feature_extractors.resnet",
            "pretrained": None,
            "opt": {
                "depth": 8,
                "num_filters": [32, 64, 128, 256],
                "num_classes": 100,
                "extract_from": ["layer3"],
                "extract_after_relu": [False],
                "classifier_options": {
                    "classifier_type": "linear",
                    "num_classes": 100,
                    "num_channels": 256,
                    "global_pooling": True,
                },
            },
            "optim_params": sgd(LUT_HOMOGENEOUS, with_classifier=True),
        },
        "BoW_predictor_0": {
            "def_file": "classifiers.classifier",
            "pretrained": None,
            "opt": cosine_head(256, 800),
            "optim_params": sgd(LUT_HOMOGENEOUS),
        },
        "BoW_predictor_1": {
            "def_file": "classifiers.classifier",
            "pretrained": None,
            "opt": cosine_head(256, 4096),
            "optim_params": sgd(LUT_HOMOGENEOUS),
        },
        "valueLayer_0": {
            "def_file": "miscellaneous.valueLayer_subclass",
            "pretrained": None,
            "opt": {
                "emb_size": 800,
                "inp_size": 256,
                "centers_filename": "./experiments/LDA/CIFAR100/resnetv1/RN32x4/centers_subclass_8.npy",
                "lda_filename": "./experiments/LDA/CIFAR100/resnetv1/RN32x4/lda_model",
                "scores_filename": "./experiments/LDA/CIFAR100/resnetv1/RN32x4/final_scores_8.npy",
                "num_classes": 100,
            },
            "optim_params": sgd(LUT_HOMOGENEOUS),
        },
        "valueLayer_1": {
            "def_file": "miscellaneous.valueLayer",
            "pretrained": None,
            "opt": {
                "emb_size": 4096,
                "inp_size": 256,
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
    "algorithm_type": "subclass_quest_value",
    "sub_loss_coef": 1.0,
    "quest_loss_coef": 1.0,
    "which_stage_t": 5,
    "which_stage_s": 5,
}
