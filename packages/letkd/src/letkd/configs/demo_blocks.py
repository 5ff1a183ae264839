"""Sizes of the demo-size configs under ``CIFAR100/demo`` (the embedded digits in the CIFAR-100 layout, 10 classes).

The demo teacher is a CIFAR ResNet-14 trained by `letkd.demo` itself (there is no downloadable digits teacher) and
exported in the RepDistiller file format to `DEMO_TEACHER_FILE`, which its teacher config loads like the paper ones.
"""

from __future__ import annotations

from typing import Any

from letkd.configs.blocks import cifar100_data, cosine_head, sgd, vq_options

DEMO_CLASSES = 10
DEMO_EPOCHS = 8
DEMO_LUT = [(6, 0.05), (8, 0.005)]
DEMO_KMEANS = 256  # penultimate k-means size (the paper: 4096)
DEMO_SUBCLASSES = 8  # as the paper; 10 classes allow at most 9 LDA components (the paper: 60)
DEMO_LDA_COMPONENTS = 9
DEMO_TEACHER_FILE = "./saved_models/demo_resnet14_digits/ckpt_epoch_8.pth"
FILTERS = [8, 8, 16, 32]  # half the paper ResNets' widths, for two CPU cores
DEMO_EPOCH_SIZE = 1280  # random train images per epoch (20 batches of 64)


def demo_data() -> dict[str, Any]:
    """CIFAR-100-layout data options with `DEMO_EPOCH_SIZE` random training images per epoch."""
    return cifar100_data(epoch_size=DEMO_EPOCH_SIZE)


def resnet_opt(depth: int) -> dict[str, object]:
    """A CIFAR ResNet v1 of `depth` split after layer3 (as the paper's ResNet configs)."""
    return {
        "depth": depth,
        "num_filters": list(FILTERS),
        "num_classes": DEMO_CLASSES,
        "extract_from": ["layer3"],
        "extract_after_relu": [False],
    }


def student(depth: int) -> dict[str, object]:
    """The trained student network entry."""
    return {
        "def_file": "feature_extractors.resnet",
        "pretrained": None,
        "opt": resnet_opt(depth),
        "optim_params": sgd(DEMO_LUT, with_classifier=True),
    }


def teacher(depth: int) -> dict[str, object]:
    """The frozen demo teacher, loaded from the file `letkd.demo` exports."""
    return {
        "def_file": "feature_extractors.resnet",
        "pretrained": DEMO_TEACHER_FILE,
        "opt": resnet_opt(depth),
        "optim_params": None,
        "force": True,
    }


def vector_quantizer(teacher_name: str) -> dict[str, object]:
    """The k-means quantizer the ``kmeans=`` run of the demo teacher config writes."""
    return {
        "def_file": "miscellaneous.vector_quantization",
        "pretrained": f"./experiments/VQ/CIFAR100/demo/{teacher_name}/vector_quantizer_kmeansK{DEMO_KMEANS}_net_epoch*",
        "opt": vq_options(FILTERS[3], DEMO_KMEANS),
        "optim_params": None,
    }


def bow_predictor(num_classes: int) -> dict[str, object]:
    """A cosine BoW predictor on the student's 64-channel maps."""
    return {
        "def_file": "classifiers.classifier",
        "pretrained": None,
        "opt": cosine_head(FILTERS[3], num_classes),
        "optim_params": sgd(DEMO_LUT),
    }
