"""Fake teacher and PCA files in the authors' on-disk layouts, with deterministic weights, for tests and demos.

Every tensor is drawn from a generator seeded by crc32 of its on-disk key (`fill_value`), so a file's content does not
depend on construction order or on which code built the model. The parity fixtures were recorded by running the
original code on files written by this module.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from kdrepro_shared.checkpoints import save
from kdrepro_shared.errors import KdReproError
from whiten_mtd.models import teachers as T
from whiten_mtd.models.delg.model import R101_DELG
from whiten_mtd.models.dolg.model import DOLG
from whiten_mtd.models.pca_layer import PCA_DIR, pca_file_name
from whiten_mtd.models.resnet import resnet50, resnet101
from whiten_mtd.models.solar.networks import ResNetSOAs
from whiten_mtd.models.weight_files import PathLike
from whiten_mtd.utils import PCA

__all__ = [
    "FAKE_TEACHER_DIMS",
    "fake_checkpoint",
    "fake_state",
    "fill_value",
    "meta_value",
    "write_fake_pca",
    "write_fake_teacher",
    "write_fake_weights",
]

# Output width of each teacher as written here (the width its PCA file must take as input).
FAKE_TEACHER_DIMS: dict[str, int] = {
    "mocov3": 2048,
    "barlowtwins": 2048,
    "resnet101_gem": 2048,
    "resnet101_ap_gem": 2048,
    "resnet101_solar": 2048,
    "resnet101_delg": 512,
    "resnet101_dolg": 1024,
}


def fill_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Deterministic tensor for state entry `key`: U(-1,1)/sqrt(fan_in) for >=2-D weights, 1 +- 0.1 for 1-D weights
    (and GeM powers 3 +- 0.1), 0.1*U for biases and running means, values in [0.5, 1.5) for running variances."""
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    u = torch.rand(shape, generator=g) * 2 - 1
    if key.endswith("running_var"):
        return (u + 1) / 2 + 0.5
    if key.endswith(".p"):
        return 3 + 0.1 * u
    if len(shape) >= 2:
        return u / math.sqrt(math.prod(shape[1:]))
    return 1 + 0.1 * u if key.endswith("weight") else 0.1 * u


Fill = Callable[[str, tuple[int, ...]], torch.Tensor]


def meta_value(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A data-less stand-in for `fill_value`: gives a checkpoint's layout (keys, shapes) at no cost."""
    return torch.empty(shape, device="meta")


def fake_state(module: nn.Module, prefix: str = "", fill: Fill = fill_value) -> dict[str, torch.Tensor]:
    """`fill` for every state entry of `module` under its on-disk key `prefix + key` (BN counters stay 0)."""
    state = {}
    for key, value in module.state_dict().items():
        disk_key = prefix + key
        if key.endswith("num_batches_tracked"):
            state[disk_key] = torch.zeros((), dtype=torch.long)
        else:
            state[disk_key] = fill(disk_key, tuple(value.shape))
    return state


def _meta(build: Callable[[], nn.Module]) -> nn.Module:
    """Build a model on the meta device: only its keys and shapes are needed."""
    with torch.device("meta"):
        return build()


def _fake_tensors(keys: Iterable[tuple[str, tuple[int, ...]]], fill: Fill) -> dict[str, torch.Tensor]:
    return {k: fill(k, shape) for k, shape in keys}


def _gem(fill: Fill) -> dict:
    backbone = fake_state(_meta(lambda: resnet101(num_classes=0)), fill=fill)
    head = _fake_tensors([("fc.weight", (2048, 2048)), ("fc.bias", (2048,))], fill)
    return {"meta": {"architecture": "resnet101", "pooling": "gem", "outputdim": 2048}, "state_dict": backbone | head}


def _ap_gem(fill: Fill) -> dict:
    state = fake_state(_meta(lambda: resnet101(num_classes=2048)), prefix="module.", fill=fill)
    state["module.adpool.p"] = torch.tensor([3.0])
    return {"model_options": {"arch": "resnet101_rmac", "out_dim": 2048}, "state_dict": state}


def _solar(fill: Fill) -> dict:
    state = fake_state(_meta(ResNetSOAs), prefix="features.", fill=fill)
    state |= _fake_tensors([("whiten.weight", (2048, 2048)), ("whiten.bias", (2048,))], fill)
    state["pool.p"] = torch.tensor([3.0])
    return {"meta": {"architecture": "resnet101", "pooling": "gem", "outputdim": 2048}, "state_dict": state}


def _delg(fill: Fill) -> dict:
    state = fake_state(_meta(R101_DELG), fill=fill)
    # the local-attention / autoencoder branch of the real file: dropped by the loader
    state |= _fake_tensors(
        [("localmodel.attn.conv1.weight", (16, 8, 1, 1)), ("localmodel.autoenc.fc.bias", (16,))], fill
    )
    return {"epoch": 0, "model_state": state}


def _dolg(fill: Fill) -> dict:
    state = fake_state(_meta(DOLG), fill=fill)
    state["pool1.p"] = torch.tensor([3.0])
    return {"epoch": 0, "model_state": state}


def _mocov3(fill: Fill) -> dict:
    def encoder() -> nn.Module:
        model = resnet50(num_classes=0)
        model.fc = T.mocov3_head()[:5]  # the projector; the loader keeps it only `with_head`
        return model

    state = fake_state(_meta(encoder), prefix="module.base_encoder.", fill=fill)
    state |= fake_state(_meta(lambda: nn.Sequential(*list(T.mocov3_head())[5:])), prefix="module.predictor.", fill=fill)
    state |= _fake_tensors([("module.momentum_encoder.conv1.weight", (64, 3, 7, 7))], fill)
    return {"epoch": 1000, "arch": "resnet50", "state_dict": state}


def _barlowtwins(fill: Fill) -> dict:
    state = fake_state(_meta(lambda: resnet50(num_classes=0)), prefix="module.backbone.", fill=fill)
    # a slice of the 8192-d projector (the full one is 600 MB): dropped by the loader without `with_head`
    state |= _fake_tensors([("module.projector.0.weight", (16, 2048)), ("module.bn.running_mean", (16,))], fill)
    return {"epoch": 1000, "model": state}


_LAYOUTS: dict[str, Callable[[Fill], dict]] = {
    "mocov3": _mocov3,
    "barlowtwins": _barlowtwins,
    "resnet101_gem": _gem,
    "resnet101_ap_gem": _ap_gem,
    "resnet101_solar": _solar,
    "resnet101_delg": _delg,
    "resnet101_dolg": _dolg,
}


def fake_checkpoint(name: str, fill: Fill = fill_value) -> dict:
    """The checkpoint dict of teacher `name` in the authors' layout, every tensor made by `fill(key, shape)`."""
    if name not in _LAYOUTS:
        raise KdReproError(f"unknown teacher {name!r} (valid: {', '.join(_LAYOUTS)})")
    return _LAYOUTS[name](fill)


def write_fake_teacher(name: str, weights_dir: PathLike) -> Path:
    """Write teacher `name`'s file (`TEACHER_FILES[name]`) into `weights_dir` in the authors' layout."""
    return save(Path(weights_dir) / T.TEACHER_FILES[name], fake_checkpoint(name), meta=False)


def write_fake_pca(name: str, weights_dir: PathLike, embed_dim: int = 512, dim1: int | None = None) -> Path:
    """Write a PCA file for teacher `name` into `<weights_dir>/pca_weights/`: eight buffers with deterministic values
    (`mean` small, d increasing as eigh returns it, `dvt` = diag(d_top^-1/2) @ v_top^T of a random v)."""
    dim1 = FAKE_TEACHER_DIMS[name] if dim1 is None else dim1
    if not 0 < embed_dim <= dim1:
        raise KdReproError(f"a PCA layer on {dim1}-d input has 1 to {dim1} outputs, got embed_dim {embed_dim}")
    g = torch.Generator().manual_seed(zlib.crc32(f"pca/{name}/{dim1}/{embed_dim}".encode()))
    layer = PCA(dim1=dim1, dim2=embed_dim)
    v = torch.randn(dim1, dim1, generator=g) / math.sqrt(dim1)
    d = (torch.linspace(1e-3, 1.0, dim1) * (1 + 0.1 * torch.rand(dim1, generator=g))).sort().values
    layer.d.copy_(d)
    layer.v.copy_(v)
    layer.mean.copy_(0.01 * torch.randn(1, dim1, generator=g))
    top = torch.arange(dim1 - 1, dim1 - 1 - embed_dim, -1)
    layer.dvt.copy_(torch.diag(d[top] ** -0.5) @ v[:, top].T)
    path = Path(weights_dir) / PCA_DIR / pca_file_name(name, embed_dim)
    return save(path, layer.state_dict(), meta=False)


def write_fake_weights(weights_dir: PathLike, teachers: Iterable[str], embed_dim: int = 512) -> Path:
    """Write the teacher and PCA files of `teachers` into `weights_dir` (the `--path_to_pretrained_weights` layout)."""
    for name in teachers:
        write_fake_teacher(name, weights_dir)
        write_fake_pca(name, weights_dir, embed_dim)
    return Path(weights_dir)
