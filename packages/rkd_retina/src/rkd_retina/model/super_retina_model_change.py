"""The RKD Swin student (original `model/super_retina_model_change.py`), the model of `SwinEncoder.pth`.

A 2-D SwinUNETR-style network (feature size 24, drop rate 0.5) with SuperRetina's descriptor head, trained with the
SuperRetina losses plus two reverse-distillation losses towards a frozen, smaller `SuperRetinaTeacher`: Dice
between teacher and student detector maps (L1) and a triplet loss anchored on teacher descriptors (L2).

The original copies MONAI 1.1's Swin code into the file; the copied pieces (`SwinTransformer`, `BasicLayer`,
`SwinTransformerBlock`, `WindowAttention`, `PatchMerging`) are taken here from `monai.networks.nets.swin_unetr`,
which builds the same modules, state_dict keys and math (checked against the original by the parity tests).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrUpBlock
from monai.networks.nets.swin_unetr import MERGING_MODE, SwinTransformer
from monai.utils import ensure_tuple_rep, look_up_option
from torch import nn

from kdrepro_shared.checkpoints.io import load as load_checkpoint
from kdrepro_shared.errors import CheckpointError
from rkd_retina.common.common_util import sample_descriptors_knowledge
from rkd_retina.loss.dice_loss import DiceLoss
from rkd_retina.model.super_retina import SuperRetinaTeacher
from rkd_retina.model.superRetina import (
    RetinaKeypointModel,
    TrainingOutputs,
    add_heads,
    descriptor_head,
    mined_triplet_loss,
)

logger = logging.getLogger(__name__)

TEACHER_PATH = "./save/SuperRetina.pth"
SWIN_BLOCK_KEYS = (
    "norm1.weight",
    "norm1.bias",
    "attn.relative_position_bias_table",
    "attn.relative_position_index",
    "attn.qkv.weight",
    "attn.qkv.bias",
    "attn.proj.weight",
    "attn.proj.bias",
    "norm2.weight",
    "norm2.bias",
    "mlp.linear1.weight",
    "mlp.linear1.bias",
    "mlp.linear2.weight",
    "mlp.linear2.bias",
)


def build_teacher(state: Mapping[str, torch.Tensor]) -> SuperRetinaTeacher:
    """A frozen `SuperRetinaTeacher` holding `state` (strict load)."""
    teacher = SuperRetinaTeacher()
    teacher.load_state_dict(state)
    for param in teacher.parameters():
        param.requires_grad = False
    return teacher


def load_teacher(path: str | Path, device: str | torch.device) -> SuperRetinaTeacher:
    """Build the frozen SuperRetina teacher from the `{'net': state_dict}` checkpoint at `path` (strict load)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"teacher checkpoint {path.absolute()} not found: the Swin student needs the SuperRetina weights there "
            "(models.zip of the original README, or set `teacher_path`)"
        )
    return build_teacher(load_checkpoint(path, map_location=device)["net"])


def default_device() -> str:
    """`cuda` when available, else `cpu` (the original defaulted to `cuda` and failed on CPU-only machines)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


class SuperRetina(RetinaKeypointModel):
    """Swin UNETR student with a frozen SuperRetina teacher (205 keys: 167 student + 38 `teacher.*`)."""

    def __init__(  # noqa: PLR0917 (the original's positional signature)
        self,
        config: Mapping[str, Any] | None = None,
        device: str | torch.device | None = None,
        n_class: int = 1,
        img_size: Sequence[int] | int = (768, 768),
        in_channels: int = 1,
        out_channels: int = 1,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        feature_size: int = 24,
        norm_name: tuple | str = "instance",
        drop_rate: float = 0.5,
        attn_drop_rate: float = 0.0,
        dropout_path_rate: float = 0.0,
        normalize: bool = True,
        use_checkpoint: bool = False,
        spatial_dims: int = 2,
        downsample: str | type[nn.Module] = "merging",
        use_v2: bool = False,
        teacher_path: str | Path | None = None,
        teacher_state: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """Build the student; load the teacher from `teacher_path`, else `config['teacher_path']`, else the original
        `./save/SuperRetina.pth` — or take its weights from `teacher_state` without reading any file (inference from
        a student checkpoint, whose `teacher.*` keys hold them). `n_class` is accepted and unused, as originally.
        """
        super().__init__()
        del n_class
        device = default_device() if device is None else device
        img_size = ensure_tuple_rep(img_size, spatial_dims)
        patch_size = ensure_tuple_rep(2, spatial_dims)
        window_size = ensure_tuple_rep(7, spatial_dims)
        if spatial_dims not in {2, 3}:
            raise ValueError("spatial dimension should be 2 or 3.")
        for m, p in zip(img_size, patch_size, strict=True):
            if any(m % np.power(p, i + 1) != 0 for i in range(5)):
                raise ValueError("input image size (img_size) should be divisible by stage-wise image resolution.")
        for name, rate in (
            ("dropout", drop_rate),
            ("attention dropout", attn_drop_rate),
            ("drop path", dropout_path_rate),
        ):
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} rate should be between 0 and 1.")
        if feature_size % 12 != 0:
            raise ValueError("feature_size should be divisible by 12.")

        self.normalize = normalize
        logger.info("Drop Rate : %s", drop_rate)
        self.swinViT = SwinTransformer(
            in_chans=in_channels,
            embed_dim=feature_size,
            window_size=window_size,
            patch_size=patch_size,
            depths=depths,
            num_heads=num_heads,
            mlp_ratio=4.0,
            qkv_bias=True,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=dropout_path_rate,
            norm_layer=nn.LayerNorm,
            use_checkpoint=use_checkpoint,
            spatial_dims=spatial_dims,
            downsample=look_up_option(downsample, MERGING_MODE) if isinstance(downsample, str) else downsample,
            use_v2=use_v2,
        )

        def basic(c_in: int, c_out: int) -> UnetrBasicBlock:
            return UnetrBasicBlock(
                spatial_dims, c_in, c_out, kernel_size=3, stride=1, norm_name=norm_name, res_block=True
            )

        def up(c_in: int, c_out: int) -> UnetrUpBlock:
            return UnetrUpBlock(
                spatial_dims, c_in, c_out, kernel_size=3, upsample_kernel_size=2, norm_name=norm_name, res_block=True
            )

        fs = feature_size
        self.encoder1 = basic(in_channels, fs)
        self.encoder2 = basic(fs, fs)
        self.encoder3 = basic(2 * fs, 2 * fs)
        self.encoder4 = basic(4 * fs, 4 * fs)
        self.encoder10 = basic(16 * fs, 16 * fs)
        self.decoder5 = up(16 * fs, 8 * fs)
        self.decoder4 = up(8 * fs, 4 * fs)
        self.decoder3 = up(4 * fs, 2 * fs)
        self.decoder2 = up(2 * fs, fs)
        self.decoder1 = up(fs, fs)

        self.relu = nn.ReLU(inplace=True)
        add_heads(self, 96, 256, 256, 256)
        self.out = UnetOutBlock(spatial_dims=spatial_dims, in_channels=feature_size, out_channels=out_channels)

        if teacher_state is not None:
            self.teacher = build_teacher(teacher_state)
        else:
            if teacher_path is None:
                teacher_path = config.get("teacher_path", TEACHER_PATH) if config is not None else TEACHER_PATH
            self.teacher = load_teacher(teacher_path, device)
        self.teacher_detector_loss = DiceLoss()
        self.l1: torch.Tensor | float = 0
        self.l2: torch.Tensor | float = 0
        self.init_training(config, device)
        self.to(device)

    def load_from(self, weights: Mapping[str, Any]) -> None:
        """Copy Swin encoder weights from `weights['state_dict']` keyed `swinViT.…` (the original's SSL loader)."""
        state = weights["state_dict"]
        with torch.no_grad():
            for key in ("swinViT.patch_embed.proj.weight", "swinViT.patch_embed.proj.bias"):
                self.get_parameter(key).copy_(state[key])
            for layer in ("layers1", "layers2", "layers3", "layers4"):
                stage = getattr(self.swinViT, layer)[0]
                for n_block, block in stage.blocks.named_children():
                    root = f"swinViT.{layer}.0.blocks.{n_block}."
                    targets = {**dict(block.named_parameters()), **dict(block.named_buffers())}
                    for key in SWIN_BLOCK_KEYS:
                        targets[key].copy_(state[root + key])
                for key in ("reduction.weight", "norm.weight", "norm.bias"):
                    stage.downsample.get_parameter(key).copy_(state[f"swinViT.{layer}.0.downsample.{key}"])

    def network(self, x_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (sigmoid detector map B×1×H×W, descriptor map B×256×h×w) of the student."""
        hidden_states_out = self.swinViT(x_in, self.normalize)
        enc0 = self.encoder1(x_in)
        enc1 = self.encoder2(hidden_states_out[0])
        enc2 = self.encoder3(hidden_states_out[1])
        enc3 = self.encoder4(hidden_states_out[2])
        dec4 = self.encoder10(hidden_states_out[4])
        dec3 = self.decoder5(dec4, hidden_states_out[3])
        dec2 = self.decoder4(dec3, enc3)
        desc = descriptor_head(self, dec2, self.relu)
        dec1 = self.decoder3(dec2, enc2)
        dec0 = self.decoder2(dec1, enc1)
        out = self.decoder1(dec0, enc0)
        semi = torch.sigmoid(self.out(out))
        return semi, desc

    def knowledge_forward(self, xin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher (detector map, descriptor map) of the same input, without gradients."""
        with torch.no_grad():
            return self.teacher.forward1(xin)

    def descriptor_knowledge_loss(
        self,
        detector_pred: torch.Tensor,
        label_point_positions: torch.Tensor,
        descriptor_pred: torch.Tensor,
        affine_descriptor_pred: torch.Tensor,
        affine_detector_pred: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, bool]:
        """L2: triplet loss with teacher descriptors as anchors and student descriptors at the same points.

        Keypoints are the teacher's NMS maxima plus the human labels (score 10, written into `detector_pred`).
        """
        detector_pred[label_point_positions == 1] = 10
        descriptors, affine_descriptors, _ = sample_descriptors_knowledge(
            detector_pred,
            descriptor_pred,
            affine_descriptor_pred,
            nms_size=self.nms_size,
            nms_thresh=self.nms_thresh,
            scale=self.scale,
            affine_detector_pred=affine_detector_pred,
        )
        return mined_triplet_loss(descriptors, affine_descriptors, descriptor_pred)

    def forward(
        self,
        x: torch.Tensor,
        label_point_positions: torch.Tensor | None = None,
        value_map: torch.Tensor | None = None,
        learn_index: tuple[torch.Tensor, ...] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor] | TrainingOutputs:
        """As `RetinaKeypointModel.forward`, plus the teacher pass: sets `l1` always, `l2` when training.

        The training loss is detector + descriptor + L1 + L2 (all weight 1).
        """
        detector_pred, descriptor_pred = self.network(x)
        s_teacher, d_teacher = self.knowledge_forward(x)
        self.l1 = self.teacher_detector_loss(s_teacher, detector_pred)
        if label_point_positions is None:
            return detector_pred, descriptor_pred
        outputs = self.training_losses(x, detector_pred, descriptor_pred, label_point_positions, value_map, learn_index)
        self.l2, _ = self.descriptor_knowledge_loss(
            s_teacher.clone().detach(), label_point_positions, d_teacher, descriptor_pred
        )
        return (outputs[0] + self.l1 + self.l2, *outputs[1:])

    def return_knowledge_losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(L1, L2) of the last forward as CPU tensors without grad, for logging."""
        return self.l1.cpu().data.sum(), self.l2.cpu().data.sum()
