"""letKD-2's offline steps: inner teacher features, LDA, per-class sub-class k-means and the sub-class score table.

Numerics follow the original exactly, including its chunking: the projection, the label-masked assignment and the
nearest-prototype search walk the rows in 10,000 chunks of ``N // 10,000`` rows, so the last ``N % 10,000`` rows keep
their zero initialisation (projected features 0, sub-class / prototype 0). Use N a multiple of 10,000 to avoid it.
The original's visualisation helpers (cv2, imageio, matplotlib) are not reproduced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from logging import Logger
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from tqdm import tqdm

from letkd.distillation.algorithms.clustering import cluster_utils

NUM_CHUNKS = 10_000
BLOCK_ROWS = 16_384


def covered_blocks(num_rows: int) -> list[slice]:
    """Row blocks covering the rows the original's 10,000 chunks of ``num_rows // 10,000`` rows reach.

    Rows are processed independently, so larger blocks give the same values with far fewer Python iterations.
    """
    covered = NUM_CHUNKS * (num_rows // NUM_CHUNKS)
    return [slice(start, min(start + BLOCK_ROWS, covered)) for start in range(0, covered, BLOCK_ROWS)]


def split_features_block(model: torch.nn.Sequential, images: torch.Tensor, which_stages: int, which_blocks: int):
    """Output of blocks ``0..which_blocks`` of stage `which_stages` of a split extractor (WRN stages via ``.layer``).

    The original took ``.layer`` of any single-child stage, which crashes on a one-block ResNet stage (depth 8).
    """
    features = model[0:which_stages](images)
    stage = model[which_stages]
    blocks = stage.layer if len(stage._modules) <= 1 and hasattr(stage, "layer") else stage
    return blocks[0 : which_blocks + 1](features)


def extract_inner_features_from_dataset(
    feature_extractor: torch.nn.Sequential,
    dataloader_iterator: Iterable[Any],
    which_stages: int,
    *,
    downscale: bool = False,
    which_blocks: int = 0,
    logger: Logger | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows = positions of the inner feature map, per-image labels, per-row labels), all float32.

    `downscale` average-pools the map 2×2 first, as the cross-model KD layer does with its teacher hint.
    """
    feature_extractor.eval()
    device = cluster_utils.module_device(feature_extractor)
    all_features: np.ndarray | None = None
    all_targets = all_targets_repeated = np.zeros(0, dtype="float32")
    count = count_im = 0
    for batch in tqdm(dataloader_iterator):
        with torch.no_grad():
            images = (batch[0] if isinstance(batch, list | tuple) else batch).to(device)
            targets = batch[1].cpu().numpy()
            features = split_features_block(feature_extractor, images, which_stages, which_blocks)
            batch_size = features.size(0)
            if downscale:
                features = F.avg_pool2d(features, (2, 2), stride=(2, 2))
            side = features.size(2)
            features = features.permute(0, 2, 3, 1).contiguous()
            features = features.view(-1, features.size(3)).cpu().numpy()
        rows = features.shape[0]
        if all_features is None:
            all_features = np.zeros((len(dataloader_iterator) * rows, features.shape[1]), dtype="float32")
            all_targets = np.zeros(batch_size * len(dataloader_iterator), dtype="float32")
            all_targets_repeated = np.zeros(len(dataloader_iterator) * rows, dtype="float32")
        all_features[count : count + rows] = features
        all_targets[count_im : count_im + batch_size] = targets
        all_targets_repeated[count : count + rows] = np.repeat(targets, side**2, axis=0)
        count += rows
        count_im += batch_size
    if all_features is None:
        raise ValueError("the data loader yielded no batch")
    all_features = all_features[:count]
    if logger:
        logger.info(f"Shape of extracted dataset: {all_features.shape}")
    return all_features, all_targets[:count_im], all_targets_repeated[:count]


def lda_filenames(directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Paths of the saved LDA ``scalings_`` and ``xbar_`` (what the KD layer's ``lda_filename`` prefix expands to)."""
    return Path(directory) / "lda_model_scalings.npy", Path(directory) / "lda_model_xbar.npy"


def apply_LDA(  # noqa: N802 - the original name
    features: np.ndarray, targets: np.ndarray, num_components: int, directory: str | os.PathLike[str]
) -> np.ndarray:
    """Fit sklearn's LDA (svd solver) and save it, or reuse the saved one; return the projected rows (N×components)."""
    filename_scalings, filename_xbar = lda_filenames(directory)
    if not filename_scalings.exists():
        lda = LinearDiscriminantAnalysis(n_components=num_components)
        transformed = lda.fit_transform(features, targets)
        np.save(filename_scalings, lda.scalings_)
        np.save(filename_xbar, lda.xbar_)
        return transformed
    scalings = np.load(filename_scalings)
    xbar = np.load(filename_xbar)
    transformed = np.zeros((features.shape[0], num_components))
    for rows in covered_blocks(features.shape[0]):
        transformed[rows] = np.dot(features[rows] - xbar, scalings)[:, :num_components]
    return transformed


def apply_KMeans(  # noqa: N802 - the original name
    features: np.ndarray, k_centers: int
) -> tuple[np.ndarray, np.ndarray]:
    """faiss k-means with `k_centers` clusters (same settings as the penultimate k-means): (labels, centers)."""
    clustering = cluster_utils.Kmeans(k_centers, preprocess=False)
    clustering.cluster(features, verbose=True)
    return np.array(clustering.point2ids), clustering.centroids


def squared_distances(rows: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """‖r‖² + ‖c‖² − 2 r·c for every row/center pair."""
    return np.sum(rows**2, axis=1, keepdims=True) + np.sum(centers**2, axis=1) - 2 * np.matmul(rows, centers.T)


def assign_within_class(
    features: np.ndarray, labels: np.ndarray, centers: np.ndarray, num_classes: int, num_subclass: int
) -> np.ndarray:
    """Nearest center among the `num_subclass` centers of each row's own class (chunked as the original)."""
    predictions = np.zeros(labels.shape)
    for rows in covered_blocks(features.shape[0]):
        distances = squared_distances(features[rows], centers)
        row_labels = labels[rows]
        mask = np.zeros((row_labels.size, num_classes))
        mask[np.arange(row_labels.size), row_labels.astype("int")] = 1
        mask = mask.repeat(num_subclass, axis=1)
        predictions[rows] = np.argmax(mask * (np.max(distances, axis=-1)[:, None] - distances), axis=1)
    return predictions


def apply_NNCenter(  # noqa: N802 - the original name
    all_features: np.ndarray, subclass_centers: np.ndarray, predictions: np.ndarray
) -> np.ndarray:
    """S×S table: row s = fraction of sub-class s's rows whose nearest prototype (over all S) is each s'."""
    nearest = np.zeros((all_features.shape[0], 1))
    for rows in covered_blocks(all_features.shape[0]):
        nearest[rows] = np.argpartition(squared_distances(all_features[rows], subclass_centers), 1)[:, :1]
    num_subclasses = len(np.unique(predictions))
    scores = np.zeros((num_subclasses, num_subclasses))
    nearest_ids = nearest[:, 0].astype(np.int64)
    for s_cl in range(num_subclasses):
        members = nearest_ids[predictions == s_cl]
        counts = np.bincount(members[members < num_subclasses], minlength=num_subclasses)
        scores[s_cl] = counts / np.int64(members.shape[0])
    return scores
