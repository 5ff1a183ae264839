"""letKD-2 (intermediate + penultimate KD layers) for RN50 -> MNv2 on CIFAR-100 (supplementary Table 1)."""

from letkd.configs.blocks import LUT_HETEROGENEOUS, cifar100_data, cosine_head, sgd, vq_options

config = {
    **cifar100_data(),
    "max_num_epochs": 240,
    "networks": {
        "teacher_net": {
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
        "vector_quantizer_target": {
            "def_file": "miscellaneous.vector_quantization",
            "pretrained": "./experiments/VQ/CIFAR100/resnetv2/RN50_downscale/vector_quantizer_kmeansK4096_net_epoch*",
            "opt": vq_options(2048),
            "optim_params": None,
        },
        "student_net": {
            "def_file": "feature_extractors.mobilenetv2",
            "pretrained": None,
            "opt": {
                "num_classes": 100,
                "extract_from": ["conv2"],
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
            "opt": cosine_head(80, 800),
            "optim_params": sgd(LUT_HETEROGENEOUS),
        },
        "BoW_predictor_1": {
            "def_file": "classifiers.classifier",
            "pretrained": None,
            "opt": cosine_head(1280, 4096),
            "optim_params": sgd(LUT_HETEROGENEOUS),
        },
        "valueLayer_0": {
            "def_file": "miscellaneous.valueLayer_subclass",
            "pretrained": None,
            "opt": {
                "emb_size": 800,
                "inp_size": 80,
                "centers_filename": "./experiments/LDA/CIFAR100/resnetv2/RN50_downscale/centers_subclass_8_60.npy",
                "downscale": True,
                "value_ratio": 0.2,
                "lda_filename": "./experiments/LDA/CIFAR100/resnetv2/RN50_downscale/lda_model",
                "scores_filename": "./experiments/LDA/CIFAR100/resnetv2/RN50_downscale/final_scores_8_60.npy",
                "num_classes": 100,
            },
            "optim_params": sgd(LUT_HETEROGENEOUS),
        },
        "valueLayer_1": {
            "def_file": "miscellaneous.valueLayer",
            "pretrained": None,
            "opt": {
                "emb_size": 4096,
                "inp_size": 1280,
                "value_ratio": 0.1,
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
    "which_stage_t": 6,
    "which_stage_s": 8,
}
