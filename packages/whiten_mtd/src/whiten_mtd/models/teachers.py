"""The seven teachers, loaded from the authors' files in their original key layouts (strict), with the original's
key remapping. Every GeM power is forced to `gem_p` (the `-p` flag): learned powers in the files are discarded.

Files under `--path_to_pretrained_weights` (top level): see `TEACHER_FILES`. DELG/DOLG expect BGR input
(`needs_bgr`); `MultiTeacher` flips the channels for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdrepro_shared.errors import CheckpointError, KdReproError
from whiten_mtd.models.delg.model import R101_DELG
from whiten_mtd.models.dolg.model import DOLG
from whiten_mtd.models.gem_pooling import GeneralizedMeanPooling
from whiten_mtd.models.resnet import ResNet, resnet50, resnet101
from whiten_mtd.models.solar.networks import ResNetSOAs
from whiten_mtd.models.weight_files import PathLike, load_weight_file, weight_file

__all__ = [
    "TEACHER_ARTIFACTS",
    "TEACHER_FILES",
    "ResNet101_GeM",
    "ResNet101_SOLAR",
    "barlowtwins_head",
    "build_teacher",
    "mocov3_head",
    "needs_bgr",
    "teacher_models",
]

TEACHER_FILES: dict[str, str] = {
    "mocov3": "mocov3_1000ep.pth.tar",
    "barlowtwins": "barlowtwins_full.pth.tar",
    "resnet101_gem": "gl18-tl-resnet101-gem-w-a4d43db.pt",
    "resnet101_ap_gem": "Resnet101-AP-GeM-LM18.pt",
    "resnet101_solar": "resnet101-solar-best.pth",
    "resnet101_delg": "r101_delg_s512.pyth",
    "resnet101_dolg": "r101_dolg_512.pyth",
}
TEACHER_ARTIFACTS: dict[str, str] = {
    "mocov3": "whiten_mtd/mocov3",
    "barlowtwins": "whiten_mtd/barlowtwins",
    "resnet101_gem": "whiten_mtd/gem",
    "resnet101_ap_gem": "whiten_mtd/ap_gem",
    "resnet101_solar": "whiten_mtd/solar",
    "resnet101_delg": "whiten_mtd/delg",
    "resnet101_dolg": "whiten_mtd/dolg",
}


def needs_bgr(teacher: str) -> bool:
    """DELG and DOLG were trained on BGR input (normalised with the RGB mean/std first, then flipped)."""
    return teacher.endswith(("delg", "dolg"))


class ResNet101_GeM(nn.Module):  # noqa: N801 (the original class name)
    """Radenović's GeM teacher: ResNet-101 trunk (GeM, L2 inside) -> L2 -> `fc` (learned whitening)."""

    def __init__(self, backbone: ResNet, fc: nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.normalize(self.backbone(x), p=2, dim=-1))


class ResNet101_SOLAR(nn.Module):  # noqa: N801 (the original class name)
    """SOLAR teacher: ResNetSOAs feature map -> GeM(gem_p) -> L2 -> `fc` (SOLAR's whitening)."""

    def __init__(self, backbone: ResNetSOAs, fc: nn.Linear, gem_p: float) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = fc
        self.pool = GeneralizedMeanPooling(gem_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.normalize(self.pool(self.backbone(x)), p=2, dim=-1))


def _checkpoint(root: PathLike, teacher: str) -> dict[str, Any]:
    """Read a teacher's file (one-line error with the fetch command when it is missing)."""
    path = weight_file(Path(root) / TEACHER_FILES[teacher], TEACHER_ARTIFACTS[teacher])
    ckpt = load_weight_file(path, f"whiten_mtd {teacher} teacher checkpoint")
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} is not a {teacher} checkpoint (expected a dict, got {type(ckpt).__name__})")
    return ckpt


def _entry(ckpt: Mapping[str, Any], key: str, teacher: str) -> Any:
    """`ckpt[key]`, or a one-line error saying the file lacks the entry the original layout has."""
    try:
        return ckpt[key]
    except KeyError:
        found = ", ".join(map(str, ckpt))
        raise CheckpointError(f"the {teacher} checkpoint has no entry {key!r} (found: {found})") from None


def _build(build: Callable[[], nn.Module], on_meta: bool) -> nn.Module:
    """Build a model; `on_meta` skips the random init of weights the checkpoint will replace (strict, assign=True)."""
    if not on_meta:
        return build()
    with torch.device("meta"):
        return build()


def _load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], teacher: str) -> None:
    """Strict load (tensors assigned, so meta-built modules become real) with a one-line CheckpointError naming
    the first offending keys on mismatch."""
    reference = module.state_dict()
    expected = reference.keys()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"the {teacher} checkpoint does not match the model: {len(missing)} missing keys {missing[:3]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:3]}"
        )
    try:
        # cast/copy as a plain (copying) load would: the model's dtype, contiguous memory
        state = {k: v.to(dtype=reference[k].dtype).contiguous() for k, v in state.items()}
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        reason = str(err).splitlines()[-1].strip()
        raise CheckpointError(f"the {teacher} checkpoint does not fit the model: {reason}") from None


def remap_ap_gem(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """AP-GeM: keep `module.*` keys without the prefix, except the learned power `module.adpool.p`; drop the rest."""
    return {k[len("module.") :]: v for k, v in state.items() if k.startswith("module") and k != "module.adpool.p"}


def split_head(state: Mapping[str, torch.Tensor], weight: str, bias: str, teacher: str) -> tuple[dict, dict]:
    """Take `weight`/`bias` out of `state` as the teacher's fc; return (rest, fc state)."""
    rest = dict(state)
    fc = {"weight": _entry(rest, weight, teacher), "bias": _entry(rest, bias, teacher)}
    del rest[weight], rest[bias]
    return rest, fc


def remap_solar(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """SOLAR: drop `pool.p`, take `whiten.*` as fc, strip `features.` from the rest -> (backbone state, fc state)."""
    _entry(state, "pool.p", "resnet101_solar")
    rest, fc = split_head(state, "whiten.weight", "whiten.bias", "resnet101_solar")
    del rest["pool.p"]
    return {k[len("features.") :]: v for k, v in rest.items()}, fc


def remap_delg(state: Mapping[str, torch.Tensor], gem_p: float) -> dict[str, torch.Tensor]:
    """DELG: keep `globalmodel.*` (local branch dropped) and set the head's GeM power to `gem_p`."""
    kept = {k: v for k, v in state.items() if k.startswith("globalmodel")}
    kept["globalmodel.head.pool.p"] = torch.tensor([gem_p], dtype=torch.float32)
    return kept


def remap_dolg(state: Mapping[str, torch.Tensor], gem_p: float) -> dict[str, torch.Tensor]:
    """DOLG: drop the stored `pool1.p`, set `pool_g.p` to `gem_p`; every other entry is kept (strict load)."""
    _entry(state, "pool1.p", "resnet101_dolg")
    kept = {k: v for k, v in state.items() if k != "pool1.p"}
    kept["pool_g.p"] = torch.tensor([gem_p], dtype=torch.float32)
    return kept


def remap_mocov3(state: Mapping[str, torch.Tensor], with_head: bool = False) -> dict[str, torch.Tensor]:
    """MoCo v3: `module.base_encoder.*` without the prefix (its `fc.*` projector only `with_head`); with the head,
    `module.predictor.<i>.*` becomes `fc.<i+5>.*`; momentum encoder and the rest are dropped."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k.startswith("module.base_encoder"):
            if k.startswith("module.base_encoder.fc") and not with_head:
                continue
            out[k[len("module.base_encoder.") :]] = v
        elif k.startswith("module.predictor") and with_head:
            index = int(k[len("module.predictor.") :][0])
            out[f"fc.{index + 5}{k[len('module.predictor.0') :]}"] = v
    return out


def remap_barlowtwins(state: Mapping[str, torch.Tensor], with_head: bool = False) -> dict[str, torch.Tensor]:
    """Barlow Twins: `module.backbone.*` without the prefix; with the head, `module.projector.*` -> `fc.*` and the
    final `module.bn.*` -> `fc.7.*`; everything else is dropped."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k.startswith("module.backbone"):
            out[k[len("module.backbone.") :]] = v
        elif k.startswith("module.projector") and with_head:
            out["fc." + k[len("module.projector.") :]] = v
        elif k.startswith("module.bn") and with_head:
            out["fc.7." + k[len("module.bn.") :]] = v
    return out


def resnet101_gem(path_to_pretrained_weights: PathLike, gem_p: float = 3.0, **_: Any) -> ResNet101_GeM:
    """GeM teacher from `gl18-tl-resnet101-gem-w-a4d43db.pt` ({"meta": {"outputdim"}, "state_dict"})."""
    ckpt = _checkpoint(path_to_pretrained_weights, "resnet101_gem")
    out_dim = _entry(_entry(ckpt, "meta", "resnet101_gem"), "outputdim", "resnet101_gem")
    backbone = _build(lambda: resnet101(pretrained=False, num_classes=0), on_meta=True)
    backbone.avgpool = GeneralizedMeanPooling(gem_p)
    model = ResNet101_GeM(backbone, _build(lambda: nn.Linear(backbone.embed_dim, out_dim), on_meta=True))
    model.embed_dim = out_dim
    rest, fc = split_head(_entry(ckpt, "state_dict", "resnet101_gem"), "fc.weight", "fc.bias", "resnet101_gem")
    _load_strict(model.backbone, rest, "resnet101_gem")
    _load_strict(model.fc, fc, "resnet101_gem")
    return model


def resnet101_ap_gem(path_to_pretrained_weights: PathLike, gem_p: float = 3.0, **_: Any) -> ResNet:
    """AP-GeM teacher from `Resnet101-AP-GeM-LM18.pt` ({"model_options": {"out_dim"}, "state_dict"})."""
    ckpt = _checkpoint(path_to_pretrained_weights, "resnet101_ap_gem")
    out_dim = _entry(_entry(ckpt, "model_options", "resnet101_ap_gem"), "out_dim", "resnet101_ap_gem")
    model = _build(lambda: resnet101(pretrained=False, num_classes=out_dim), on_meta=True)
    model.avgpool = GeneralizedMeanPooling(gem_p)
    _load_strict(model, remap_ap_gem(_entry(ckpt, "state_dict", "resnet101_ap_gem")), "resnet101_ap_gem")
    model.embed_dim = out_dim
    return model


def resnet101_solar(path_to_pretrained_weights: PathLike, gem_p: float = 3.0, **_: Any) -> ResNet101_SOLAR:
    """SOLAR teacher from `resnet101-solar-best.pth` ({"meta": {"outputdim"}, "state_dict"} in SOLAR's layout)."""
    ckpt = _checkpoint(path_to_pretrained_weights, "resnet101_solar")
    out_dim = _entry(_entry(ckpt, "meta", "resnet101_solar"), "outputdim", "resnet101_solar")
    backbone = _build(ResNetSOAs, on_meta=True)
    model = ResNet101_SOLAR(backbone, _build(lambda: nn.Linear(backbone.embed_dim, out_dim), on_meta=True), gem_p)
    model.embed_dim = out_dim
    rest, fc = remap_solar(_entry(ckpt, "state_dict", "resnet101_solar"))
    _load_strict(model.backbone, rest, "resnet101_solar")
    _load_strict(model.fc, fc, "resnet101_solar")
    return model


def resnet101_delg(path_to_pretrained_weights: PathLike, pretrained: bool = True, gem_p: float = 3.0) -> R101_DELG:
    """DELG global teacher (512-d) from `r101_delg_s512.pyth` ({"model_state"}); BGR input."""
    model = _build(R101_DELG, on_meta=pretrained)
    if pretrained:
        ckpt = _checkpoint(path_to_pretrained_weights, "resnet101_delg")
        _load_strict(model, remap_delg(_entry(ckpt, "model_state", "resnet101_delg"), gem_p), "resnet101_delg")
    return model


def resnet101_dolg(path_to_pretrained_weights: PathLike, pretrained: bool = True, gem_p: float = 3.0) -> DOLG:
    """DOLG global-branch teacher (1024-d) from `r101_dolg_512.pyth` ({"model_state"}); BGR input."""
    model = _build(DOLG, on_meta=pretrained)
    if pretrained:
        ckpt = _checkpoint(path_to_pretrained_weights, "resnet101_dolg")
        _load_strict(model, remap_dolg(_entry(ckpt, "model_state", "resnet101_dolg"), gem_p), "resnet101_dolg")
    return model


def mocov3_head() -> nn.Sequential:
    """MoCo v3 projector (2048-4096-256, last BN without affine) followed by its predictor (256-4096-256)."""
    return nn.Sequential(
        nn.Linear(2048, 4096, bias=False),
        nn.BatchNorm1d(4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, 256, bias=False),
        nn.BatchNorm1d(256, affine=False),
        nn.Linear(256, 4096, bias=False),
        nn.BatchNorm1d(4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, 256, bias=False),
    )


def barlowtwins_head() -> nn.Sequential:
    """Barlow Twins projector 2048-8192-8192-8192 and its final affine-free BN."""
    return nn.Sequential(
        nn.Linear(2048, 8192, bias=False),
        nn.BatchNorm1d(8192),
        nn.ReLU(inplace=True),
        nn.Linear(8192, 8192, bias=False),
        nn.BatchNorm1d(8192),
        nn.ReLU(inplace=True),
        nn.Linear(8192, 8192, bias=False),
        nn.BatchNorm1d(8192, affine=False),
    )


def mocov3(
    path_to_pretrained_weights: PathLike, pretrained: bool = True, with_head: bool = False, gem_p: float = 3.0
) -> ResNet:
    """MoCo v3 ResNet-50 teacher (2048-d, GeM -> L2) from `mocov3_1000ep.pth.tar` ({"state_dict"}).

    `with_head` appends the projector + predictor (256-d output), as the original allows (no script uses it).
    """
    model = _build(lambda: resnet50(pretrained=False, num_classes=0), on_meta=pretrained)
    model.avgpool = GeneralizedMeanPooling(gem_p)
    if with_head:
        model.fc = _build(mocov3_head, on_meta=pretrained)
        model.embed_dim = 256
    if pretrained:
        ckpt = _checkpoint(path_to_pretrained_weights, "mocov3")
        _load_strict(model, remap_mocov3(_entry(ckpt, "state_dict", "mocov3"), with_head), "mocov3")
    return model


def barlowtwins(
    path_to_pretrained_weights: PathLike, pretrained: bool = True, with_head: bool = False, gem_p: float = 3.0
) -> ResNet:
    """Barlow Twins ResNet-50 teacher (2048-d, GeM -> L2) from `barlowtwins_full.pth.tar` ({"model"}).

    `with_head` appends the projector (8192-d output), as the original allows (no script uses it).
    """
    model = _build(lambda: resnet50(pretrained=False, num_classes=0), on_meta=pretrained)
    model.avgpool = GeneralizedMeanPooling(gem_p)
    if with_head:
        model.fc = _build(barlowtwins_head, on_meta=pretrained)
        model.embed_dim = 8192
    if pretrained:
        ckpt = _checkpoint(path_to_pretrained_weights, "barlowtwins")
        _load_strict(model, remap_barlowtwins(_entry(ckpt, "model", "barlowtwins"), with_head), "barlowtwins")
    return model


teacher_models: dict[str, Callable[..., nn.Module]] = {
    "mocov3": mocov3,
    "barlowtwins": barlowtwins,
    "resnet101_gem": resnet101_gem,
    "resnet101_ap_gem": resnet101_ap_gem,
    "resnet101_solar": resnet101_solar,
    "resnet101_delg": resnet101_delg,
    "resnet101_dolg": resnet101_dolg,
}


def build_teacher(name: str, path_to_pretrained_weights: PathLike, gem_p: float = 3.0) -> nn.Module:
    """The pretrained teacher `name` with every GeM power set to `gem_p`; an unknown name is a one-line error."""
    if name not in teacher_models:
        raise KdReproError(f"unknown teacher {name!r} (valid: {', '.join(teacher_models)})")
    return teacher_models[name](path_to_pretrained_weights, pretrained=True, gem_p=gem_p)
