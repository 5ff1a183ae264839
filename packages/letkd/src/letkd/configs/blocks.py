"""Building blocks the shipped configs share: CIFAR-100 data options, the SGD settings and their LR look-up tables.

Each helper returns a fresh dict in the key order of the original configs, so a config built from them is equal,
key order included, to the original module's ``config``.
"""

from __future__ import annotations

from typing import Any

# RepDistiller's schedule as (epoch bound, lr) pairs: the first bound above the epoch gives the lr.
LUT_HOMOGENEOUS = [(150, 0.05), (180, 0.005), (210, 0.0005), (240, 0.00005)]
LUT_HETEROGENEOUS = [(150, 0.01), (180, 0.001), (210, 0.0001), (240, 0.00001)]


def cifar100_data(batch_size: int = 64, test_batch_size: int = 100, epoch_size: int | None = None) -> dict[str, Any]:
    """``data_train_opt`` / ``data_test_opt`` of every CIFAR-100 config ('val' is the official test split).

    `epoch_size` None means the whole train set per epoch; a number draws that many random images each epoch.
    """
    return {
        "data_train_opt": {
            "dataset_name": "CIFAR100",
            "dataset_args": {"split": "train"},
            "epoch_size": epoch_size,
            "batch_size": batch_size,
        },
        "data_test_opt": {"dataset_name": "CIFAR100", "dataset_args": {"split": "val"}, "batch_size": test_batch_size},
    }


def sgd(lut: list[tuple[int, float]], with_classifier: bool = False) -> dict[str, Any]:
    """Nesterov SGD options (the nominal lr 0.1 is overridden by `lut` from epoch 0); the backbone also carries
    the options of its split-off classifier under ``classifier_optim``."""
    params: dict[str, Any] = {
        "optim_type": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "nesterov": True,
        "LUT_lr": list(lut),
    }
    if with_classifier:
        params["classifier_optim"] = sgd(lut)
    return params


def vq_options(embedding_dim: int, num_embeddings: int = 4096) -> dict[str, Any]:
    """Options of the frozen k-means quantizer that gives the penultimate targets (temperature 1)."""
    return {
        "num_embeddings": num_embeddings,
        "embedding_dim": embedding_dim,
        "commitment_cost": 0.25,
        "decay": 0.99,
        "epsilon": 1e-5,
        "temperature": 1,
    }


def cosine_head(num_channels: int, num_classes: int) -> dict[str, Any]:
    """Options of a BoW predictor: a 1×1 cosine conv with a learnable scale starting at 3."""
    return {
        "classifier_type": "conv_cosine",
        "num_classes": num_classes,
        "num_channels": num_channels,
        "scale_cls": 3.0,
        "learn_scale": True,
    }
