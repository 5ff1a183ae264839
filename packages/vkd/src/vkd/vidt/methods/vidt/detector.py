"""ViDT detector as VkD runs it (`methods/vidt/detector.py` + the projectors of `vidt/main.py`).

Swin-with-RAM backbone → 1×1 conv + GroupNorm projections of the [PATCH] maps and [DET] tokens → encoder-free
deformable decoder → per-level class and box heads (iterative box refinement, auxiliary outputs). With a teacher
(`distil`), the outputs carry `distil_tokens`: the projected [PATCH] maps, the backbone [DET] tokens and all
decoder states; a student with VkD's six orthogonal projectors attached (`attach_projectors`) returns them
flattened to rows and projected, a teacher returns them raw.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from kdrepro_shared.errors import KdReproError
from vkd.vidt.methods.swin_w_ram import BACKBONES, SwinTransformer, swin_base_win7, swin_nano, swin_small, swin_tiny
from vkd.vidt.methods.vidt.deformable_transformer import DeformableTransformer, build_deformable_transformer
from vkd.vidt.util.misc import inverse_sigmoid, nested_tensor_from_tensor_list

__all__ = [
    "MLP",
    "NUM_CLASSES",
    "PROJECTOR_NAMES",
    "TEACHERS",
    "Detector",
    "OrthogonalLinear",
    "attach_projectors",
    "build",
    "build_teacher",
]

# COCO category ids are used directly as class indices (focal loss over 91 sigmoid logits)
NUM_CLASSES = {"coco": 91}
# `--distil_model` → teacher backbone (built without ImageNet weights; the teacher checkpoint holds them)
TEACHERS = {"vidt_nano": swin_nano, "vidt_tiny": swin_tiny, "vidt_small": swin_small, "vidt_base": swin_base_win7}
# VkD's projectors, in the order `vidt/main.py` creates them (this order fixes their random initialisation)
PROJECTOR_NAMES = (
    "patch_projector_1",
    "patch_projector_2",
    "patch_projector_3",
    "patch_projector_4",
    "neck_det_projector",
    "body_det_projector",
)


class OrthogonalLinear(nn.Module):
    """y = weight ⊙ (x Qᵀ) + bias with Q orthogonal (torch's parametrisation; square → matrix-exp map).

    Keys: `projector.parametrizations.weight.{original,0.base}`, `weight` (scale, init 1), `bias` (init 0).
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.projector = parametrizations.orthogonal(nn.Linear(in_dim, out_dim, bias=False))
        self.weight = nn.Parameter(torch.ones(out_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.weight * self.projector(x)
        return x + self.bias if self.bias is not None else x


class MLP(nn.Module):
    """Stack of Linear layers with ReLU between them (the box head: 256 → 256 → 256 → 4)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        hidden = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Linear(n, k) for n, k in zip([input_dim, *hidden], [*hidden, output_dim], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


def _conv_gn(in_channels: int, out_channels: int) -> nn.Sequential:
    """1×1 convolution (xavier, zero bias) + GroupNorm(32): the channel reductions in front of the decoder."""
    block = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1), nn.GroupNorm(32, out_channels))
    return block


def _xavier_zero(conv: nn.Module) -> None:
    nn.init.xavier_uniform_(conv.weight, gain=1)
    nn.init.constant_(conv.bias, 0)


class Detector(nn.Module):
    """Swin with RAM + neck-free deformable decoder (ViDT), with VkD's distillation outputs.

    `has_projections` is True once `attach_projectors` gave the model VkD's six projectors (the student);
    a model without them (the teacher) returns raw distillation tokens.
    """

    def __init__(  # noqa: PLR0917 -- the original's positional signature
        self,
        backbone: SwinTransformer,
        transformer: DeformableTransformer,
        num_classes: int,
        num_queries: int,
        aux_loss: bool = False,
        with_box_refine: bool = False,
        iou_aware: bool = False,
        token_label: bool = False,
        distil: bool = False,
    ) -> None:
        super().__init__()
        self.num_queries = num_queries
        self.transformer = transformer
        hidden_dim = transformer.d_model
        # registered before the backbone, as in the original (same state_dict order)
        self.class_embed: nn.Module = nn.Linear(hidden_dim, num_classes)
        self.bbox_embed: nn.Module = MLP(hidden_dim, hidden_dim, 4, 3)
        class_embed, bbox_embed = self.class_embed, self.bbox_embed
        self.backbone = backbone
        self.aux_loss = aux_loss
        self.with_box_refine = with_box_refine
        self.iou_aware = iou_aware
        self.token_label = token_label
        self.distil = distil
        self.has_projections = False

        self.input_proj = nn.ModuleList(_conv_gn(ch, hidden_dim) for ch in backbone.num_channels)
        for proj in self.input_proj:
            _xavier_zero(proj[0])
        self.tgt_proj = _conv_gn(backbone.num_channels[-2], hidden_dim)
        self.query_pos_proj = _conv_gn(hidden_dim, hidden_dim)

        prior_prob = 0.01
        class_embed.bias.data = torch.ones(num_classes) * -math.log((1 - prior_prob) / prior_prob)
        nn.init.constant_(bbox_embed.layers[-1].weight.data, 0)
        nn.init.constant_(bbox_embed.layers[-1].bias.data, 0)
        _xavier_zero(self.tgt_proj[0])
        _xavier_zero(self.query_pos_proj[0])

        # one prediction from the backbone [DET] tokens + one per decoder layer
        num_pred = transformer.decoder.num_layers + 1
        if with_box_refine:
            self.class_embed = nn.ModuleList(copy.deepcopy(class_embed) for _ in range(num_pred))
            self.bbox_embed = nn.ModuleList(copy.deepcopy(bbox_embed) for _ in range(num_pred))
            nn.init.constant_(self.bbox_embed[0].layers[-1].bias.data[2:], -2.0)
            # the decoder refines its references with the same heads (their keys appear twice in state_dict)
            self.transformer.decoder.bbox_embed = self.bbox_embed
        else:
            nn.init.constant_(bbox_embed.layers[-1].bias.data[2:], -2.0)
            self.class_embed = nn.ModuleList([class_embed] * num_pred)
            self.bbox_embed = nn.ModuleList([bbox_embed] * num_pred)
            self.transformer.decoder.bbox_embed = None
        if iou_aware:
            iou_embed = MLP(hidden_dim, hidden_dim, 1, 3)
            if with_box_refine:
                self.iou_embed = nn.ModuleList(copy.deepcopy(iou_embed) for _ in range(num_pred))
            else:
                self.iou_embed = nn.ModuleList([iou_embed] * num_pred)

    def _predict(
        self, hs: torch.Tensor, init_reference: torch.Tensor, inter_references: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits and sigmoid boxes for every level of `hs`: (levels, B, D, classes), (levels, B, D, 4)."""
        classes, boxes = [], []
        for lvl in range(hs.shape[0]):
            reference = inverse_sigmoid(init_reference if lvl == 0 else inter_references[lvl - 1])
            delta = self.bbox_embed[lvl](hs[lvl])
            if reference.shape[-1] == 4:
                delta = delta + reference
            else:
                delta = torch.cat([delta[..., :2] + reference, delta[..., 2:]], dim=-1)
            classes.append(self.class_embed[lvl](hs[lvl]))
            boxes.append(delta.sigmoid())
        return torch.stack(classes), torch.stack(boxes)

    def _distil_tokens(
        self, srcs: list[torch.Tensor], det_tgt: torch.Tensor, hs: torch.Tensor
    ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """The tokens VkD matches: raw, or (with projectors) flattened to rows (b, y, x order) and projected."""
        if not self.has_projections:
            return {"patch_token": srcs, "body_det_token": det_tgt, "neck_det_token": hs}
        patch_projectors = [getattr(self, name) for name in PROJECTOR_NAMES[:4]]
        patch = [
            projector(src.permute(0, 2, 3, 1).reshape(-1, src.shape[1]))
            for projector, src in zip(patch_projectors, srcs, strict=True)
        ]
        body = self.body_det_projector(det_tgt.reshape(-1, det_tgt.shape[-1]))
        neck = self.neck_det_projector(hs.reshape(-1, hs.shape[-1]))
        return {"patch_token": patch, "body_det_token": body, "neck_det_token": neck}

    def forward(self, samples: Any) -> dict[str, Any]:
        """Detect on a NestedTensor (`tensors` (B, 3, H, W), `mask` (B, H, W) True on padding) or a list of images.

        Returns `pred_logits` (B, D, classes), `pred_boxes` (B, D, 4) normalised cxcywh, `aux_outputs` (one dict
        per earlier level, with `aux_loss`), `pred_ious` (with `iou_aware`), `enc_tokens` (with `token_label`)
        and `distil_tokens` {`patch_token`, `body_det_token`, `neck_det_token`} (with `distil`).
        """
        if isinstance(samples, (list, torch.Tensor)):
            samples = nested_tensor_from_tensor_list(samples)
        x, mask = samples.tensors, samples.mask
        features, det_tgt, det_pos = self.backbone(x, mask)
        det_tgt = self.tgt_proj(det_tgt.unsqueeze(-1)).squeeze(-1).permute(0, 2, 1)
        det_pos = self.query_pos_proj(det_pos.unsqueeze(-1)).squeeze(-1).permute(0, 2, 1)
        srcs = [proj(src) for proj, src in zip(self.input_proj, features, strict=True)]
        masks = [F.interpolate(mask[None].float(), size=src.shape[-2:]).to(torch.bool)[0] for src in srcs]

        hs, init_reference, inter_references, token_logits = self.transformer(srcs, masks, det_tgt, det_pos)
        outputs_class, outputs_coord = self._predict(hs, init_reference, inter_references)
        out: dict[str, Any] = {"pred_logits": outputs_class[-1], "pred_boxes": outputs_coord[-1]}
        if self.aux_loss and self.transformer.decoder.num_layers > 0:
            out["aux_outputs"] = [
                {"pred_logits": a, "pred_boxes": b} for a, b in zip(outputs_class[:-1], outputs_coord[:-1], strict=True)
            ]
        if self.iou_aware:
            outputs_iou = torch.stack([self.iou_embed[lvl](hs[lvl]) for lvl in range(hs.shape[0])])
            out["pred_ious"] = outputs_iou[-1]
            if self.aux_loss:
                for i, aux in enumerate(out["aux_outputs"]):
                    aux["pred_ious"] = outputs_iou[i]
        if self.token_label:
            out["enc_tokens"] = {"pred_logits": token_logits}
        if self.distil:
            out["distil_tokens"] = self._distil_tokens(srcs, det_tgt, hs)
        return out


def attach_projectors(model: Detector, dim: int = 256) -> Detector:
    """Give the student VkD's six `OrthogonalLinear(dim, dim)` projectors and mark `has_projections`."""
    for name in PROJECTOR_NAMES:
        setattr(model, name, OrthogonalLinear(dim, dim))
    model.has_projections = True
    return model


def _num_classes(args) -> int:
    if args.dataset_file not in NUM_CLASSES:
        raise KdReproError(f"--dataset_file {args.dataset_file!r} is not supported; valid: {', '.join(NUM_CLASSES)}")
    return NUM_CLASSES[args.dataset_file]


def _check_supported(args) -> None:
    if args.method != "vidt":
        raise KdReproError(f"--method {args.method!r} is not supported; valid: vidt")
    if getattr(args, "cross_scale_fusion", False):
        raise KdReproError("--cross_scale_fusion True is not supported (VkD never uses it); valid: False")


def _assemble(args, backbone: SwinTransformer, distil: bool) -> Detector:
    """finetune_det on `backbone`, then the decoder and the detector, in the original's construction order."""
    backbone.finetune_det(
        method=args.method, det_token_num=args.det_token_num, pos_dim=args.reduced_dim, cross_indices=args.cross_indices
    )
    transformer = build_deformable_transformer(args)
    return Detector(
        backbone,
        transformer,
        num_classes=_num_classes(args),
        num_queries=args.det_token_num,
        aux_loss=args.aux_loss,
        with_box_refine=args.with_box_refine,
        iou_aware=args.iou_aware,
        token_label=args.token_label,
        distil=distil,
    )


def build(args) -> Detector:
    """The student detector for `--backbone_name` with its `--pre_trained` backbone (no projectors yet)."""
    _check_supported(args)
    if args.backbone_name not in BACKBONES:
        raise KdReproError(f"--backbone_name {args.backbone_name!r} is not supported; valid: {', '.join(BACKBONES)}")
    backbone, _ = BACKBONES[args.backbone_name](pretrained=args.pre_trained)
    return _assemble(args, backbone, distil=args.distil_model is not None)


def build_teacher(args) -> Detector:
    """The `--distil_model` teacher (same decoder flags as the student, no backbone weights, raw distil tokens)."""
    _check_supported(args)
    if args.distil_model not in TEACHERS:
        raise KdReproError(f"--distil_model {args.distil_model!r} is not supported; valid: {', '.join(TEACHERS)}")
    backbone, _ = TEACHERS[args.distil_model]()
    return _assemble(args, backbone, distil=True)
