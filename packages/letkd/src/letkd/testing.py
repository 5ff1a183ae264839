"""Stand-in precomputed targets and deterministic weights for the algorithm tests (spec §7.3).

The golden fixtures were recorded by running the original code on exactly these stand-ins, so the tests rebuild
them here instead of shipping the large files: a k-means quantizer file, the LDA / sub-class files, and
state_dict values that depend only on (network key, entry name), never on initialisation order.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

_SKIPPED_SUFFIXES = ("num_batches_tracked", "scale")
_FROZEN_PREFIXES = ("LDA.", "PCA.")
# The pickled storage-location strings (BINUNICODE opcode, 4-byte little-endian length, text).
_CPU_LOCATION = b"X\x03\x00\x00\x00cpu"
_CUDA_LOCATION = b"X\x06\x00\x00\x00cuda:0"


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with `seed`."""
    return torch.Generator().manual_seed(seed)


def fake_vq_state(num_embeddings: int, embedding_dim: int, seed: int = 11) -> dict[str, torch.Tensor]:
    """A VectorQuantizerEMA state_dict: centroids U(0, 2), cluster sizes in [1, 100), `_ema_w` = centroid × size."""
    g = generator(seed)
    weight = torch.rand(num_embeddings, embedding_dim, generator=g) * 2.0
    sizes = torch.randint(1, 100, (num_embeddings,), generator=g).float()
    return {"_ema_w": weight * sizes[:, None], "_ema_cluster_size": sizes, "_embedding.weight": weight}


def write_fake_vq(
    path: str | Path, num_embeddings: int, embedding_dim: int, *, seed: int = 11, cuda_saved: bool = False
) -> Path:
    """Write a quantizer file in the `kmeans=` run's format ({'epoch': '*', 'network': ..., 'metric': None}).

    `cuda_saved` tags every storage with location `cuda:0`, as in the shipped files (saved on a GPU): such a file
    loads on a CPU-only machine only with `map_location`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"epoch": "*", "network": fake_vq_state(num_embeddings, embedding_dim, seed), "metric": None}
    torch.save(state, path)
    if cuda_saved:
        _tag_storages_as_cuda(path)
    return path


def _tag_storages_as_cuda(path: Path) -> None:
    """Rewrite the storage locations recorded in a torch zip checkpoint from `cpu` to `cuda:0`."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info.filename)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            if info.filename.endswith("/data.pkl"):
                archive.writestr(info, data.replace(_CPU_LOCATION, _CUDA_LOCATION))
            else:
                archive.writestr(info, data)


def write_fake_lda(
    folder: str | Path, dim: int, rank: int, *, suffix: str = "_8", seed: int = 21, num_classes: int = 100
) -> dict[str, str]:
    """Write the `LDA=` run's files for features of `dim` channels: scalings (dim×rank), xbar, 8 sub-class centers
    per class in 60-d LDA space, and a row-stochastic score table (5·I + 0.01·U, rows normalised).

    Returns the valueLayer_subclass options naming them (`centers_filename`, `lda_filename`, `scores_filename`).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    g = generator(seed)
    subclasses = num_classes * 8
    scalings = (torch.randn(dim, rank, generator=g) * 0.3).double().numpy()
    xbar = (torch.rand(dim, generator=g) * 0.5).double().numpy()
    centers = torch.randn(subclasses, 60, generator=g).double().numpy()
    scores = 5 * torch.eye(subclasses, dtype=torch.float64) + 0.01 * torch.rand(
        subclasses, subclasses, generator=g, dtype=torch.float64
    )
    np.save(folder / "lda_model_scalings.npy", scalings)
    np.save(folder / "lda_model_xbar.npy", xbar)
    np.save(folder / f"centers_subclass{suffix}.npy", centers)
    np.save(folder / f"final_scores{suffix}.npy", (scores / scores.sum(1, keepdim=True)).numpy())
    return {
        "centers_filename": str(folder / f"centers_subclass{suffix}.npy"),
        "lda_filename": str(folder / "lda_model"),
        "scores_filename": str(folder / f"final_scores{suffix}.npy"),
    }


def fill_deterministic(module: nn.Module, tag: str) -> nn.Module:
    """Overwrite every state_dict entry from a generator seeded by crc32(`<tag>/<name>`): He-scaled normal
    weights, BN affine near (1, 0), running stats mean ~0 / var in [0.5, 1.5). Cosine scales, step counters and
    the frozen LDA/PCA projections keep their values."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith(_SKIPPED_SUFFIXES) or name.startswith(_FROZEN_PREFIXES):
                continue
            g = generator(zlib.crc32(f"{tag}/{name}".encode()))
            if name.endswith("running_var"):
                value = 0.5 + torch.rand(tensor.shape, generator=g)
            elif name.endswith("running_mean"):
                value = 0.1 * torch.randn(tensor.shape, generator=g)
            elif tensor.dim() == 1:
                noise = torch.randn(tensor.shape, generator=g)
                value = 1 + 0.1 * noise if name.endswith("weight") else 0.05 * noise
            else:
                value = torch.randn(tensor.shape, generator=g) * math.sqrt(2.0 / (tensor.numel() // tensor.shape[0]))
            tensor.copy_(value)
    return module
