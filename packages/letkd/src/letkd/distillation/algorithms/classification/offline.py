"""The two offline modes of `main_classification`, written as methods of the algorithm classes.

`apply_kmeans_to_dataset` (``kmeans=K``, a method of `ClassificationQUEST`) clusters the teacher's last feature map
into K centroids and saves the initialised quantizer the letKD configs load. `apply_sublass` (``LDA=stage``, a method
of `Classification`) writes the LDA model, the per-class sub-class centers and the sub-class score table the
intermediate KD layer loads. Both take the algorithm as ``self`` (``networks``, ``logger``, ``curr_epoch``,
``_get_net_checkpoint_filename``) so the classes can bind them directly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kdrepro_shared.checkpoints import io as ckpt_io
from kdrepro_shared.errors import KdReproError
from letkd.distillation.algorithms.clustering import cluster_utils
from letkd.distillation.algorithms.subclass_decision import subclass_utils


def apply_kmeans_to_dataset(
    self: Any,
    dataloader: Any,
    num_embeddings: int,
    *,
    feature_name: Any = None,
    memmap: bool = False,
    memmap_dir: str | None = None,
) -> str:
    """k-means (faiss, K=`num_embeddings`) of every position of the teacher feature map over `dataloader`.

    Saves ``{'epoch', 'network': quantizer state_dict, 'metric': None}`` as
    ``<exp_dir>/vector_quantizer_kmeansK<K>_net_epoch<curr_epoch>`` (``curr_epoch`` is ``'*'`` for teacher configs,
    which the letKD configs' glob matches) and returns that path.
    """
    feature_extractor = self.networks["feature_extractor"]
    feature_extractor.eval()
    self.dloader = dataloader
    self.logger.info("==> Extract features from dataset.")
    if memmap and memmap_dir is not None:
        Path(memmap_dir).mkdir(parents=True, exist_ok=True)
    # The original set `tempfile.tempdir` process-wide; a per-call `dir` keeps later temporary files where they were.
    with tempfile.TemporaryFile(dir=memmap_dir if memmap else None) as fp:
        features, _ = cluster_utils.extract_features_from_dataset(
            feature_extractor=feature_extractor,
            dataloader_iterator=dataloader.get_iterator(),
            feature_name=feature_name,
            logger=self.logger,
            memmap_filename=fp if memmap else None,
        )
        self.logger.info("==> Apply kmeans to dataset")
        kmeans = cluster_utils.Kmeans(num_embeddings, preprocess=False)
        kmeans.cluster(features, verbose=True)
        quantizer = cluster_utils.initialize_vector_quantizer(
            centroids=kmeans.centroids, cluster_size=kmeans.cluster_size, commitment_cost=0.25, decay=0.99, epsilon=1e-5
        )
    filename = self._get_net_checkpoint_filename(f"vector_quantizer_kmeansK{num_embeddings}", self.curr_epoch)
    state = {"epoch": self.curr_epoch, "network": quantizer.state_dict(), "metric": None}
    self.logger.info(f"==> Saving vector quantizer with kmeans centroids to {filename}")
    ckpt_io.save(filename, state, meta=False)  # atomic: an interrupted run never leaves a truncated quantizer
    return str(filename)


def subclass_filename(directory: str | Path, stem: str, num_subclass: int, num_components: int) -> Path:
    """``<stem>_<S>_<C>.npy`` as the pipeline writes it, or the hand-renamed ``<stem>_<S>.npy`` if only that exists."""
    written = Path(directory) / f"{stem}_{num_subclass}_{num_components}.npy"
    renamed = Path(directory) / f"{stem}_{num_subclass}.npy"
    return renamed if not written.exists() and renamed.exists() else written


def _subclass_kmeans(
    features_lda: np.ndarray, labels: np.ndarray, num_classes: int, num_subclass: int
) -> tuple[np.ndarray, np.ndarray]:
    """faiss `num_subclass`-means within each class: (global sub-class id per row, S×components centers)."""
    predictions = np.zeros(labels.shape)
    centers = np.zeros((num_classes * num_subclass, features_lda.shape[1]))
    for cl in range(num_classes):
        index = np.where(labels == cl)[0]
        class_predictions, class_centers = subclass_utils.apply_KMeans(features_lda[index], num_subclass)
        predictions[index] = num_subclass * cl + class_predictions
        centers[cl * num_subclass : (cl + 1) * num_subclass] = class_centers
    return predictions, centers


def _subclass_scores(features_lda: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """The S×S table from the mean LDA feature of each predicted sub-class (not the k-means centers)."""
    num_subclasses = len(np.unique(predictions))
    prototypes = np.zeros((num_subclasses, features_lda.shape[1]))
    for s_cl in range(num_subclasses):
        prototypes[s_cl] = np.mean(features_lda[predictions == s_cl], axis=0)
    return subclass_utils.apply_NNCenter(features_lda, prototypes, predictions)


def apply_sublass(
    self: Any,
    dataloader: Any,
    num_components: int,
    num_subclass: int,
    *,
    which_stages: int | None = None,
    directory: str | Path | None = None,
    visualize: bool = False,
    downscale: bool = False,
) -> dict[str, str]:
    """LDA (`num_components`) of the first block of teacher stage `which_stages`, `num_subclass` sub-classes per class,
    and the sub-class score table, written to `directory` (existing files are reused, as in the original).

    `downscale` 2×2-pools the features first; the original hard-coded False although its ``*_downscale`` files were
    made from pooled features (the cross-model KD layer pools the teacher hint the same way). Returns the file paths.
    """
    if visualize:
        raise KdReproError("apply_sublass(visualize=True): the original's visualisation helpers are not reproduced")
    if directory is None or which_stages is None:
        raise KdReproError("apply_sublass needs which_stages (the LDA= stage) and the output directory")
    feature_extractor = self.networks["feature_extractor"]
    feature_extractor.eval()
    self.dloader = dataloader
    self.logger.info("==> Extract features from dataset.")
    features, _, labels = subclass_utils.extract_inner_features_from_dataset(
        feature_extractor=feature_extractor,
        dataloader_iterator=dataloader.get_iterator(),
        which_stages=which_stages,
        downscale=downscale,
        which_blocks=0,
        logger=self.logger,
    )
    self.logger.info("==> Apply LDA to dataset")
    features_lda = subclass_utils.apply_LDA(features, labels, num_components, directory)
    del features
    self.logger.info("==> Apply Divisive Clustering to dataset")
    num_classes = len(np.unique(labels))
    centers_file = subclass_filename(directory, "centers_subclass", num_subclass, num_components)
    if not centers_file.exists():
        predictions, centers = _subclass_kmeans(features_lda, labels, num_classes, num_subclass)
        np.save(centers_file, centers)
    else:
        centers = np.load(centers_file)
        predictions = subclass_utils.assign_within_class(features_lda, labels, centers, num_classes, num_subclass)
    self.logger.info("==> Apply Average Features")
    # The score table takes the name style of the centers it was computed from, so the pair always matches.
    scores_file = Path(directory) / centers_file.name.replace("centers_subclass", "final_scores", 1)
    if not scores_file.exists():
        np.save(scores_file, _subclass_scores(features_lda, predictions))
    scalings, xbar = subclass_utils.lda_filenames(directory)
    return {"scalings": str(scalings), "xbar": str(xbar), "centers": str(centers_file), "scores": str(scores_file)}
