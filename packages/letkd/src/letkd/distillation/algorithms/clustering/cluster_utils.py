"""faiss k-means over teacher feature maps and the quantizer it initialises (QuEST's offline step).

`run_kmeans` keeps the original's faiss settings (20 iterations, no subsampling, a seed drawn from numpy's global
RNG). It trains on a GPU flat index when faiss sees a GPU and on ``faiss.IndexFlatL2`` otherwise. faiss >= 1.8 stops
early once the objective stops changing (``early_stop_threshold`` 0); the threshold is set to -1 so that all 20
iterations run as in faiss 1.7.1, which the original was written against and whose loss read-out needs them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from logging import Logger
from typing import IO, Any

import faiss
import numpy as np
import torch
from tqdm import tqdm

from letkd.distillation.architectures.miscellaneous.vector_quantization import VectorQuantizerEMA

KMEANS_ITERATIONS = 20
MAX_POINTS_PER_CENTROID = 10_000_000


def preprocess_features(npdata: np.ndarray, pca: int = 256) -> np.ndarray:
    """PCA-whiten `npdata` (N×D) to `pca` dims with faiss, then L2-normalise each row."""
    _, ndim = npdata.shape
    npdata = npdata.astype("float32")
    mat = faiss.PCAMatrix(ndim, pca, eigen_power=-0.5)
    mat.train(npdata)
    npdata = mat.apply_py(npdata)
    return npdata / np.linalg.norm(npdata, axis=1)[:, np.newaxis]


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def flat_l2_index(d: int, use_float16: bool = False) -> tuple[Any, Any]:
    """(exact L2 index on GPU 0 when there is one, else on the CPU; the GPU resources to keep alive or None)."""
    if gpu_available():
        resources = faiss.StandardGpuResources()
        config = faiss.GpuIndexFlatConfig()
        config.useFloat16 = use_float16
        config.device = 0
        return faiss.GpuIndexFlatL2(resources, d, config), resources
    return faiss.IndexFlatL2(d), None


def run_kmeans(
    x: np.ndarray,
    nmb_clusters: int,
    verbose: bool = False,
    useFloat16: bool = False,  # noqa: N803 - the original name
) -> tuple[list[int], float, np.ndarray]:
    """k-means of the rows of `x` (float32 N×D): (nearest-centroid id per row, last mean objective, K×D centroids)."""
    n_data, d = x.shape
    print("==> Initialize faiss Clustering.")
    clus = faiss.Clustering(d, nmb_clusters)
    # A fresh seed per call (drawn from the sacred-seeded numpy RNG) so repeated runs start from different points.
    clus.seed = np.random.randint(1234)
    if verbose:
        print(f"==> k-means seed: {clus.seed}")
    clus.niter = KMEANS_ITERATIONS
    clus.max_points_per_centroid = MAX_POINTS_PER_CENTROID
    if hasattr(clus, "early_stop_threshold"):
        clus.early_stop_threshold = -1.0
    index, _resources = flat_l2_index(d, useFloat16)
    clus.train(x, index)
    _, assignment = index.search(x, 1)
    stats = clus.iteration_stats
    losses = np.array([stats.at(i).obj for i in range(stats.size())]) / n_data
    if verbose:
        print(f"==> k-means loss evolution: {losses}")
    centroids = faiss.vector_to_array(clus.centroids).reshape(nmb_clusters, d)
    return [int(row[0]) for row in assignment], losses[-1], centroids


def arrange_clustering(images_lists: Sequence[Sequence[int]]) -> np.ndarray:
    """Per-item cluster labels, in item order, from per-cluster item lists."""
    pseudolabels: list[int] = []
    image_indexes: list[int] = []
    for cluster, images in enumerate(images_lists):
        image_indexes.extend(images)
        pseudolabels.extend([cluster] * len(images))
    return np.asarray(pseudolabels)[np.argsort(image_indexes)]


class Kmeans:
    """k-means with `k` clusters; after `cluster`: ``centroids``, ``point2ids``, ``images_lists``, ``cluster_size``."""

    def __init__(self, k: int, preprocess: bool = False) -> None:
        self.k = k
        self.preprocess = preprocess

    def cluster(self, data: np.ndarray, verbose: bool = False) -> float:
        """Cluster the rows of `data` (N×D) and return the final mean objective."""
        start = time.time()
        if self.preprocess:
            print("==> Preprocess data...")
            xb = preprocess_features(data)
        else:
            print("==> Convert data to float32")
            xb = data if data.dtype == "float32" else data.astype("float32")
        print("==> Start kmeans clustering.")
        point2ids, loss, centroids = run_kmeans(xb, self.k, verbose)
        self.centroids = centroids
        self.point2ids = point2ids
        self.images_lists: list[list[int]] = [[] for _ in range(self.k)]
        for item, cluster_id in enumerate(point2ids):
            self.images_lists[cluster_id].append(item)
        self.cluster_size = [len(items) for items in self.images_lists]
        if verbose:
            print(f"k-means time: {time.time() - start:.0f} s")
        return loss


def _extract(feature_extractor: torch.nn.Module, images: torch.Tensor, feature_name: Any) -> torch.Tensor:
    """Output of the extractor, or of its named outputs when `feature_name` is given (one name)."""
    if not feature_name:
        return feature_extractor(images)
    names = [feature_name] if isinstance(feature_name, str) else list(feature_name)
    return feature_extractor(images, out_feat_keys=names)


def module_device(module: torch.nn.Module) -> torch.device:
    """Device of the module's first parameter (the original moved every batch with `.cuda()`)."""
    return next(module.parameters()).device


def _allocate(shape: list[int], memmap_filename: str | IO[bytes] | None, logger: Logger | None) -> Any:
    """A zero float32 array, or a writable memmap over `memmap_filename`, for all extracted rows."""
    if memmap_filename is None:
        return np.zeros(shape, dtype="float32")
    if logger:
        logger.info(f"Use memmap with file: {memmap_filename}")
    return np.memmap(memmap_filename, shape=tuple(shape), dtype="float32", mode="w+")


def extract_features_from_dataset(
    feature_extractor: torch.nn.Module,
    dataloader_iterator: Iterable[Any],
    feature_name: Any = None,
    *,
    downsample2: bool = False,
    logger: Logger | None = None,
    memmap_filename: str | IO[bytes] | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Teacher features of every image, one row per spatial position (N·H·W × D float32, or a memmap).

    Returns the rows and the per-image ``[1, H, W]`` shape. 1×1 maps give one row per image; `downsample2` keeps
    one random phase of a 2× subsampling per batch.
    """
    if isinstance(feature_name, list | tuple) and len(feature_name) != 1:
        raise ValueError(f"feature_name must name one output, got {feature_name!r}")
    feature_extractor.eval()
    device = module_device(feature_extractor)
    all_features: Any = None
    count = 0
    shape_per_img = [1, 1]
    dataset_shape: list[int] = []
    for batch in tqdm(dataloader_iterator):
        with torch.no_grad():
            images = (batch[0] if isinstance(batch, list | tuple) else batch).to(device)
            features = _extract(feature_extractor, images, feature_name)
            if features.dim() == 4 and features.size(2) == 1 and features.size(3) == 1:
                features = features.view(features.size(0), -1)
            elif features.dim() == 4:
                if downsample2:
                    x_offset = 0 if random.uniform(0, 1) < 0.5 else 1
                    y_offset = 0 if random.uniform(0, 1) < 0.5 else 1
                    features = features[:, :, y_offset::2, x_offset::2].contiguous()
                features = features.permute(0, 2, 3, 1).contiguous()
                shape_per_img = [1, features.size(1), features.size(2)]
                features = features.view(-1, features.size(3))
            rows = features.size(0)
            features = features.cpu().numpy()
        if all_features is None:
            dataset_shape = [len(dataloader_iterator) * rows, *features.shape[1:]]
            all_features = _allocate(dataset_shape, memmap_filename, logger)
            if logger:
                logger.info(f"image size: {images.size()}")
                logger.info(f"feature shape: {list(features.shape[1:])}")
                logger.info(f"max count: {dataset_shape[0]}")
                logger.info(f"batch size: {rows}")
        all_features[count : count + rows] = features
        count += rows
    if memmap_filename is None:
        all_features = all_features[:count]
    else:
        dataset_shape[0] = count
        all_features.flush()
        del all_features
        all_features = np.memmap(memmap_filename, shape=tuple(dataset_shape), dtype="float32", mode="r")
    if logger:
        logger.info(f"Shape of extracted dataset: {all_features.shape}")
    return all_features, shape_per_img


def initialize_vector_quantizer(
    centroids: np.ndarray,
    cluster_size: Sequence[int],
    commitment_cost: float = 0.25,
    decay: float = 0.99,
    epsilon: float = 1e-5,
) -> VectorQuantizerEMA:
    """A quantizer (eval mode) whose codebook is `centroids`, with EMA statistics consistent with `cluster_size`."""
    quantizer = VectorQuantizerEMA(
        num_embeddings=centroids.shape[0],
        embedding_dim=centroids.shape[1],
        commitment_cost=commitment_cost,
        decay=decay,
        epsilon=epsilon,
    )
    quantizer.eval()
    with torch.no_grad():
        weights = torch.from_numpy(centroids)
        sizes = torch.Tensor(cluster_size)
        quantizer._embedding.weight.copy_(weights)
        quantizer._ema_cluster_size.copy_(sizes)
        quantizer._ema_w.copy_(weights * sizes.unsqueeze(1))
    return quantizer
