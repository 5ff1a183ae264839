"""Students, the frozen multi-teacher (L2 -> PCA-whitening per teacher) and the distillation model.

Student = ResNet-18/34 trunk -> GeM(p) -> L2 -> fc Linear(512, 512); its state_dict keys are torchvision's
(`conv1.weight`, ..., `fc.bias`). Checkpoints hold only the student (`base_encoder.*`, `module.`-prefixed under DDP).
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdrepro_shared.checkpoints import fetch, list_artifacts
from kdrepro_shared.errors import CheckpointError, KdReproError
from whiten_mtd.models.gem_pooling import GeneralizedMeanPooling
from whiten_mtd.models.pca_layer import pca_layers
from whiten_mtd.models.resnet import ResNet, resnet18, resnet34
from whiten_mtd.models.teachers import needs_bgr, teacher_models
from whiten_mtd.models.weight_files import PathLike, load_weight_file

__all__ = [
    "RELEASED_STUDENTS",
    "STUDENT_PREFIX",
    "MultiTeacher",
    "MultiTeacherDistillModel",
    "archs",
    "build_student",
    "load_student_checkpoint",
    "resolve_student_checkpoint",
    "student_state_from_checkpoint",
]

archs: dict[str, Callable[..., ResNet]] = {"resnet18": resnet18, "resnet34": resnet34}
STUDENT_PREFIX = "module.base_encoder."
STUDENT_WIDTH = 512
RELEASED_STUDENTS: tuple[str, ...] = tuple(
    a.name for a in list_artifacts("whiten_mtd") if "ep" in a.name.rsplit("_", 1)[-1]
)


def _check_arch(arch: str, embed_dim: int) -> None:
    """Only ResNet-18/34 with a 512-d embedding exist (the fc is Linear(embed_dim, embed_dim) on a 512-d trunk)."""
    if arch not in archs:
        raise KdReproError(f"unknown student arch {arch!r} (valid: {', '.join(archs)})")
    if embed_dim != STUDENT_WIDTH:
        raise KdReproError(
            f"--embed_dim {embed_dim} is not supported for {arch}: the student fc maps the 512-d trunk feature to "
            f"embed_dim inputs, so only --embed_dim {STUDENT_WIDTH} works (as in the original)"
        )


def build_student(arch: str, embed_dim: int = STUDENT_WIDTH, p: float = 3.0, pretrained: bool = False) -> ResNet:
    """Student `arch` with GeM(p) pooling; `pretrained` loads the ImageNet trunk (training) and puts a fresh
    Linear(512, embed_dim) fc on top, as `MultiTeacherDistillModel` does; without it, the evaluation-time model."""
    _check_arch(arch, embed_dim)
    student = archs[arch](pretrained=pretrained, num_classes=embed_dim)
    student.avgpool = GeneralizedMeanPooling(p)
    if pretrained:
        student.fc = nn.Linear(student.embed_dim, embed_dim)
    return student


def student_state_from_checkpoint(ckpt: Mapping[str, Any], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The student weights of a training checkpoint: `state_dict` entries under `module.base_encoder.` unprefixed."""
    if "state_dict" not in ckpt:
        raise CheckpointError(f"{source} has no 'state_dict' entry (found: {', '.join(map(str, ckpt))})")
    state = {k[len(STUDENT_PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(STUDENT_PREFIX)}
    if not state:
        raise CheckpointError(f"{source} holds no student weights (no 'state_dict' key starts with {STUDENT_PREFIX!r})")
    return state


def resolve_student_checkpoint(source: PathLike) -> Path:
    """A checkpoint file, or a released student by name (`ro_re_to_r18_ep3k` or `whiten_mtd/ro_re_to_r18_ep3k`),
    fetched into the kd-repro cache; anything else is a one-line error."""
    path = Path(source)
    if path.is_file():
        return path
    name = str(source) if str(source).startswith("whiten_mtd/") else f"whiten_mtd/{source}"
    if name in RELEASED_STUDENTS:
        return fetch(name)
    raise CheckpointError(
        f"student checkpoint {source} not found (give a file or a released student: {', '.join(RELEASED_STUDENTS)})"
    )


def load_student_checkpoint(source: PathLike, arch: str, embed_dim: int = STUDENT_WIDTH, p: float = 3.0) -> ResNet:
    """Evaluation student loaded strictly from a trained or released checkpoint (as oxford_paris_eval/svd_eval);
    `source` is a file or a released student's name (see `resolve_student_checkpoint`)."""
    path = resolve_student_checkpoint(source)
    ckpt = load_weight_file(path, "whiten_mtd student checkpoint")
    state = student_state_from_checkpoint(ckpt, str(path))
    student = build_student(arch, embed_dim, p)
    try:
        student.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path} does not fit a {arch} student: {str(err).splitlines()[1].strip()}") from None
    return student


class MultiTeacher(nn.Module):
    """Frozen teachers with their PCA-whitening: forward(x) -> [PCA_k(L2(teacher_k(x)))] (not re-normalised).

    DELG/DOLG get the channel-flipped (BGR) batch. `embed_dims` are the PCA output widths.
    """

    def __init__(self, path_to_pretrained_weights: PathLike, *teachers: str, p: float = 3.0, embed_dim: int = 512):
        super().__init__()
        unknown = [t for t in teachers if t not in teacher_models]
        if unknown or not teachers:
            raise KdReproError(
                f"unknown or no teachers {unknown or list(teachers)} (valid: {', '.join(teacher_models)})"
            )
        self.teachers = teachers
        self.encoders = nn.ModuleList(
            teacher_models[t](path_to_pretrained_weights, pretrained=True, gem_p=p) for t in teachers
        )
        self.norm_layers = nn.ModuleList(
            pca_layers[t](path_to_pretrained_weights, embed_dim=embed_dim) for t in teachers
        )
        for teacher, encoder, layer in zip(teachers, self.encoders, self.norm_layers, strict=True):
            if int(layer.dim1) != encoder.embed_dim:
                raise KdReproError(
                    f"the PCA layer of {teacher} takes {int(layer.dim1)}-d input but {teacher} gives "
                    f"{encoder.embed_dim}-d descriptors: relearn it with the *_pca_learn.py script"
                )
        self.embed_dims = [int(layer.dim2) for layer in self.norm_layers]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for teacher, encoder, pca in zip(self.teachers, self.encoders, self.norm_layers, strict=True):
            feature = encoder(x[:, [2, 1, 0]] if needs_bgr(teacher) else x)
            out.append(pca(nn.functional.normalize(feature, p=2, dim=-1)))
        return out


class MultiTeacherDistillModel(nn.Module):
    """Student (`base_encoder`, ImageNet-initialised) + frozen `teacher_encoders` (MultiTeacher).

    `args` needs arch, embed_dim, p, teachers, path_to_pretrained_weights (the training CLI namespace).
    forward(x1, x2) -> (stu1, stu2, tch1, tch2); `state_dict` holds only the student; teachers stay in eval mode.
    `imagenet_init=False` skips the ImageNet trunk download (tests, demo).
    """

    def __init__(self, args: Namespace, imagenet_init: bool = True) -> None:
        super().__init__()
        _check_arch(args.arch, args.embed_dim)
        self.base_encoder = archs[args.arch](pretrained=imagenet_init, num_classes=args.embed_dim)
        self.base_encoder.avgpool = GeneralizedMeanPooling(args.p)
        self.base_encoder.fc = nn.Linear(self.base_encoder.embed_dim, args.embed_dim)
        self.embed_dim = self.base_encoder.embed_dim
        self.teacher_encoders = MultiTeacher(
            args.path_to_pretrained_weights, *_teacher_names(args.teachers), p=args.p, embed_dim=args.embed_dim
        )
        for param in self.teacher_encoders.parameters():
            param.requires_grad = False

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Student embeddings of each view (separate passes: per-view BN statistics) and the teachers' under no_grad."""
        stu1 = self.base_encoder(x1)
        stu2 = self.base_encoder(x2)
        with torch.no_grad():
            tch1 = self.teacher_encoders(x1)
            tch2 = self.teacher_encoders(x2)
        return stu1, stu2, tch1, tch2

    def train(self, mode: bool = True) -> MultiTeacherDistillModel:
        """Only the student follows `mode`; the teachers never leave eval mode."""
        self.training = mode
        self.teacher_encoders.train(False)
        self.base_encoder.train(mode)
        return self

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
        """The student's entries only (`<prefix>base_encoder.*`): teachers and PCA layers are never saved."""
        state = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        for key in [k for k in state if k.startswith(prefix + "teacher_encoders.")]:
            del state[key]
        return state


def _teacher_names(teachers: str | Sequence[str]) -> list[str]:
    """Accept a list of names (the CLI's `-ts a b`) or a single name."""
    return [teachers] if isinstance(teachers, str) else list(teachers)
