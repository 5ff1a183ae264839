"""The teachers' PCA-whitening layers: file names under `<weights>/pca_weights/` and their loaders.

A PCA file is the flat state_dict of `whiten_mtd.utils.PCA` (eight buffers: dim1, dim2, whit, d, v, n_0, mean, dvt),
as `gld_pca_learn.py` / `svd_pca_learn.py` save it; loading builds `PCA(dim1, dim2)` and loads it strictly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kdrepro_shared.errors import CheckpointError, KdReproError
from whiten_mtd.models.weight_files import PathLike, load_weight_file, weight_file
from whiten_mtd.utils import PCA

__all__ = ["PCA_BUFFERS", "PCA_DIR", "load_pca_file", "pca_file_name", "pca_layers", "pca_path"]

PCA_DIR = "pca_weights"
PCA_BUFFERS: tuple[str, ...] = ("dim1", "dim2", "whit", "d", "v", "n_0", "mean", "dvt")
# GLDv2 teachers: the output dim is part of the name; SVD teachers: always the 512-d file.
_GLD_NAMES: dict[str, str] = {
    "resnet101_gem": "resnet101_gem_pca_{d}d_gldv2_512x512_p3_randcrop.pt",
    "resnet101_ap_gem": "resnet101_ap_gem_pca_{d}d_gldv2_512x512_p3_randcrop.pt",
    "resnet101_solar": "resnet101_solar_pca_{d}d_gldv2_512x512_p3_randcrop.pt",
    "resnet101_delg": "resnet101_delg_pca_{d}d_gldv2_512x512_p3_randcrop.pt",
    "resnet101_dolg": "resnet101_dolg_pca_{d}d_gldv2_512x512_p3_global_randcrop.pt",
}
_SVD_NAMES: dict[str, str] = {
    "mocov3": "mocov3_pca_512d_svd_224x224_p1.pt",
    "barlowtwins": "barlowtwins_pca_512d_svd_224x224_p1.pt",
}
RELEASED_DIM = 512


def pca_file_name(teacher: str, embed_dim: int = RELEASED_DIM) -> str:
    """File name of a teacher's PCA layer (the SVD teachers ignore `embed_dim`, as in the original)."""
    if teacher in _SVD_NAMES:
        return _SVD_NAMES[teacher]
    if teacher in _GLD_NAMES:
        return _GLD_NAMES[teacher].format(d=embed_dim)
    raise KdReproError(f"no PCA layer for teacher {teacher!r} (valid: {', '.join([*_SVD_NAMES, *_GLD_NAMES])})")


def pca_path(path_to_pretrained_weights: PathLike, teacher: str, embed_dim: int = RELEASED_DIM) -> Path:
    """`<weights>/pca_weights/<file name>` of a teacher's PCA layer."""
    return Path(path_to_pretrained_weights) / PCA_DIR / pca_file_name(teacher, embed_dim)


def load_pca_file(path: PathLike) -> PCA:
    """Build `PCA(dim1, dim2)` from a saved PCA state_dict and load all eight buffers strictly."""
    state = load_weight_file(Path(path), "whiten_mtd PCA state_dict")
    if not isinstance(state, dict) or set(state) != set(PCA_BUFFERS):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a PCA file: expected the buffers {', '.join(PCA_BUFFERS)}, got {found}")
    layer = PCA(dim1=int(state["dim1"].item()), dim2=int(state["dim2"].item()))
    layer.load_state_dict(state, strict=True)
    return layer


def _loader(teacher: str) -> Callable[..., PCA]:
    """The original's per-teacher loader `(path_to_pretrained_weights, embed_dim=512) -> PCA`."""

    def load_teacher_pca(path_to_pretrained_weights: PathLike, embed_dim: int = RELEASED_DIM, **_: object) -> PCA:
        path = pca_path(path_to_pretrained_weights, teacher, embed_dim)
        released = teacher in _SVD_NAMES or embed_dim == RELEASED_DIM
        hint = f"learn it with {'svd' if teacher in _SVD_NAMES else 'gld'}_pca_learn.py -t {teacher} --dump_to {path}"
        return load_pca_file(weight_file(path, f"whiten_mtd/pca_{teacher}" if released else None, hint))

    load_teacher_pca.__name__ = f"{teacher}_pca_layer"
    load_teacher_pca.__doc__ = f"Load the PCA-whitening layer of {teacher} from <weights>/{PCA_DIR}/."
    return load_teacher_pca


pca_layers: dict[str, Callable[..., PCA]] = {name: _loader(name) for name in (*_SVD_NAMES, *_GLD_NAMES)}
