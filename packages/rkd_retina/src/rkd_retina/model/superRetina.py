# ruff: noqa: N999 (module name kept from the original `model/superRetina.py`)
"""SuperRetina (original `model/superRetina.py`): the base keypoint network and its semi-supervised training losses.

`RetinaKeypointModel` holds what every RKD model shares — the training-mode forward (PKE detector loss plus the
triplet descriptor loss between an image and its random affine warp); subclasses only build layers and `network`.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from rkd_retina.common.common_util import sample_descriptors
from rkd_retina.common.train_util import affine_images, get_gaussian_kernel
from rkd_retina.loss.dice_loss import DiceLoss
from rkd_retina.loss.triplet_loss import triplet_margin_loss_gor
from rkd_retina.model.pke_module import pke_learn

DESCRIPTOR_MARGIN = 0.8
MAX_DESCRIPTOR_POINTS = 1000  # a batch with more points in any image skips the descriptor loss (OOM guard)

TrainingOutputs = tuple[
    torch.Tensor, int, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor, int, int
]


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3×3 conv + ReLU layers (Sequential indices 0 and 2 hold the weights)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )


def _random_negatives(n: int) -> list[int]:
    """For each of n anchors, another index drawn by `random.randint` rejection sampling ([0] when n == 1)."""
    if n == 1:
        return [0]
    indices = []
    for j in range(n):
        t = j
        while t == j:
            t = random.randint(0, n - 1)
        indices.append(t)
    return indices


def mined_triplet_loss(
    descriptors: list[torch.Tensor], affine_descriptors: list[torch.Tensor], reference: torch.Tensor
) -> tuple[torch.Tensor, bool]:
    """Triplet + GOR loss (margin 0.8) over per-image C×N anchor/positive descriptor sets, with mined negatives.

    Per image: hard negative = nearest other positive to each anchor; random negative = another index drawn with
    Python `random.randint` (rejection sampling, as originally). Returns (0, False) when no image has points or
    any image has more than 1000; `reference` gives the dtype/device of that zero loss.
    """
    positive, anchor, negatives_hard, negatives_random = [], [], [], []
    dim = reference.shape[1]
    for image_descriptors, image_affine_descriptors in zip(descriptors, affine_descriptors, strict=True):
        n = image_affine_descriptors.shape[1]
        if n == 0:
            continue
        if n > MAX_DESCRIPTOR_POINTS:
            return torch.tensor(0.0, requires_grad=True).to(reference), False
        descriptor = image_descriptors.view(dim, -1, 1)
        affine_descriptor = image_affine_descriptors.view(dim, 1, -1)
        ar = torch.arange(n)

        neg_index2 = torch.tensor(_random_negatives(n), dtype=torch.long).to(affine_descriptor)

        with torch.no_grad():
            dis = torch.norm(descriptor - affine_descriptor, dim=0)
            dis[ar, ar] = dis.max() + 1
            neg_index1 = dis.argmin(axis=1)

        positive.append(affine_descriptor[:, 0, :].permute(1, 0))
        anchor.append(descriptor[:, :, 0].permute(1, 0))
        negatives_hard.append(affine_descriptor[:, 0, neg_index1.long()].permute(1, 0))
        negatives_random.append(affine_descriptor[:, 0, neg_index2.long()].permute(1, 0))

    if not positive:
        return torch.tensor(0.0, requires_grad=True).to(reference), False
    sets = [F.normalize(torch.cat(s), dim=-1, p=2) for s in (positive, anchor, negatives_hard, negatives_random)]
    positive_n, anchor_n, hard_n, random_n = sets
    return triplet_margin_loss_gor(anchor_n, positive_n, hard_n, random_n, margin=DESCRIPTOR_MARGIN), True


class RetinaKeypointModel(nn.Module, abc.ABC):
    """Training-mode forward shared by SuperRetina, LKUNET and the Swin student; subclasses define `network`."""

    PKE_learn: bool

    def init_training(self, config: Mapping[str, Any] | None, device: str | torch.device) -> None:
        """Store the training attributes (`config`, NMS settings, Dice loss, Gaussian kernel) when `config` is given.

        The kernel is a plain tensor attribute on `device`, not a buffer, so it never enters the state_dict.
        """
        self.PKE_learn = True
        if config is not None:
            self.config = config
            self.nms_size = config["nms_size"]
            self.nms_thresh = config["nms_thresh"]
            self.scale = 8
            self.dice = DiceLoss()
            self.kernel = get_gaussian_kernel(kernlen=config["gaussian_kernel_size"], nsig=config["gaussian_sigma"]).to(
                device
            )

    @abc.abstractmethod
    def network(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (detector probability map B×1×H×W, descriptor map B×256×h×w); each architecture defines it."""

    def descriptor_loss(  # noqa: PLR0917 (the original positional order)
        self,
        detector_pred: torch.Tensor,
        label_point_positions: torch.Tensor,
        descriptor_pred: torch.Tensor,
        affine_descriptor_pred: torch.Tensor,
        grid_inverse: torch.Tensor,
        affine_detector_pred: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, bool]:
        """Triplet loss between descriptors at keypoints and at their warped positions; (loss, trained flag).

        Keypoints are the human labels (score 10) plus, when PKE is on, the model's own NMS maxima; `detector_pred`
        is overwritten in place, as originally (callers pass a detached copy).
        """
        if not self.PKE_learn:
            detector_pred[:] = 0
        detector_pred[label_point_positions == 1] = 10
        descriptors, affine_descriptors, _ = sample_descriptors(
            detector_pred,
            descriptor_pred,
            affine_descriptor_pred,
            grid_inverse,
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
        """Inference: (det map, desc map). Training (labels given): the 9-tuple of `training_losses`."""
        detector_pred, descriptor_pred = self.network(x)
        if label_point_positions is None:
            return detector_pred, descriptor_pred
        return self.training_losses(x, detector_pred, descriptor_pred, label_point_positions, value_map, learn_index)

    def training_losses(  # noqa: PLR0917 (mirrors forward's arguments)
        self,
        x: torch.Tensor,
        detector_pred: torch.Tensor,
        descriptor_pred: torch.Tensor,
        label_point_positions: torch.Tensor,
        value_map: torch.Tensor | None,
        learn_index: tuple[torch.Tensor, ...] | None,
    ) -> TrainingOutputs:
        """Detector (PKE) + descriptor losses of one batch; updates `value_map[learn_index]` in place when PKE is on.

        Returns (loss, #learned − #initial points, detector loss, descriptor loss, enhanced point map, enhanced
        heatmap, detector_pred, #labelled images, #images in the descriptor loss), as the original `forward`.
        """
        assert learn_index is not None, "training forward needs learn_index (indices of labelled images)"
        n_labelled = len(learn_index[0])
        loss_detector_num = n_labelled
        loss_descriptor_num = x.shape[0] if self.PKE_learn else n_labelled

        number_pts = 0
        value_map_update = None
        enhanced_label_pts = None
        enhanced_label = None
        loss_detector = torch.tensor(0.0, requires_grad=True).to(x)

        with torch.no_grad():
            affine_x, _, grid_inverse = affine_images(x, used_for="detector")
            affine_detector_pred, affine_descriptor_pred = self.network(affine_x)
        if n_labelled != 0:
            loss_detector, number_pts, value_map_update, enhanced_label_pts, enhanced_label = pke_learn(
                detector_pred[learn_index],
                descriptor_pred[learn_index],
                grid_inverse[learn_index],
                affine_detector_pred[learn_index],
                affine_descriptor_pred[learn_index],
                self.kernel,
                self.dice,
                label_point_positions[learn_index],
                value_map[learn_index],
                self.config,
                self.PKE_learn,
            )
        if enhanced_label_pts is not None:
            full = label_point_positions.clone()
            full[learn_index] = enhanced_label_pts
            enhanced_label_pts = full
        if enhanced_label is not None:
            full = label_point_positions.clone()
            full[learn_index] = enhanced_label
            enhanced_label = full

        detector_pred_copy = detector_pred.clone().detach()
        affine_x_for_desc, _, grid_inverse_for_desc = affine_images(x, used_for="descriptor")
        _, affine_descriptor_pred_for_desc = self.network(affine_x_for_desc)
        loss_descriptor, _ = self.descriptor_loss(
            detector_pred_copy, label_point_positions, descriptor_pred, affine_descriptor_pred_for_desc,
            grid_inverse_for_desc,
        )  # fmt: skip

        if self.PKE_learn and n_labelled != 0:
            value_map[learn_index] = value_map_update
        loss = loss_detector + loss_descriptor
        return (
            loss,
            number_pts,
            loss_detector.cpu().data.sum(),
            loss_descriptor.cpu().data.sum(),
            enhanced_label_pts,
            enhanced_label,
            detector_pred,
            loss_detector_num,
            loss_descriptor_num,
        )


class SuperRetina(RetinaKeypointModel):
    """The SuperRetina network: VGG-like encoder, full-resolution UNet detector head, 1/8 descriptor head."""

    def __init__(self, config: Mapping[str, Any] | None = None, device: str | torch.device = "cpu", n_class: int = 1):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        c1, c2, c3, c4, c5, d1, d2 = 64, 64, 128, 128, 256, 256, 256
        self.conv1a = nn.Conv2d(1, c1, kernel_size=3, stride=1, padding=1)
        self.conv1b = nn.Conv2d(c1, c1, kernel_size=3, stride=1, padding=1)
        self.conv2a = nn.Conv2d(c1, c2, kernel_size=3, stride=1, padding=1)
        self.conv2b = nn.Conv2d(c2, c2, kernel_size=3, stride=1, padding=1)
        self.conv3a = nn.Conv2d(c2, c3, kernel_size=3, stride=1, padding=1)
        self.conv3b = nn.Conv2d(c3, c3, kernel_size=3, stride=1, padding=1)
        self.conv4a = nn.Conv2d(c3, c4, kernel_size=3, stride=1, padding=1)
        self.conv4b = nn.Conv2d(c4, c4, kernel_size=3, stride=1, padding=1)
        add_heads(self, c4, c5, d1, d2)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.dconv_up3 = double_conv(c3 + c4, c3)
        self.dconv_up2 = double_conv(c2 + c3, c2)
        self.dconv_up1 = double_conv(c1 + c2, c1)
        self.conv_last = nn.Conv2d(c1, n_class, kernel_size=1)
        self.init_training(config, device)
        self.to(device)

    def network(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (sigmoid detector map B×1×H×W, descriptor map B×256×h×w), h = 2·floor((H/8 − 4)/2 + 1)."""
        x = self.relu(self.conv1a(x))
        conv1 = self.relu(self.conv1b(x))
        x = self.pool(conv1)
        x = self.relu(self.conv2a(x))
        conv2 = self.relu(self.conv2b(x))
        x = self.pool(conv2)
        x = self.relu(self.conv3a(x))
        conv3 = self.relu(self.conv3b(x))
        x = self.pool(conv3)
        x = self.relu(self.conv4a(x))
        x = self.relu(self.conv4b(x))
        desc = descriptor_head(self, x, self.relu)
        semi = detector_head(self, x, conv1, conv2, conv3)
        return semi, desc


def add_heads(model: nn.Module, c4: int, c5: int, d1: int, d2: int) -> None:
    """Register the descriptor head (`convDa`, `convDb`, `convDc`, `trans_conv`) on `model` under the original names."""
    model.convDa = nn.Conv2d(c4, c5, kernel_size=3, stride=1, padding=1)
    model.convDb = nn.Conv2d(c5, d1, kernel_size=4, stride=2, padding=0)
    model.convDc = nn.Conv2d(d1, d2, kernel_size=1, stride=1, padding=0)
    model.trans_conv = nn.ConvTranspose2d(d1, d2, 2, stride=2)


def descriptor_head(model: nn.Module, x: torch.Tensor, act: nn.Module) -> torch.Tensor:
    """convDa → act → convDb → act → convDc → divide by the channel L2 norm (no epsilon) → trans_conv (×2 upsample).

    The output of `trans_conv` is not re-normalised; descriptors are normalised after sampling.
    """
    desc = model.convDc(act(model.convDb(act(model.convDa(x)))))
    desc = desc.div(torch.unsqueeze(torch.norm(desc, p=2, dim=1), 1))
    return model.trans_conv(desc)


def detector_head(
    model: nn.Module, x: torch.Tensor, conv1: torch.Tensor, conv2: torch.Tensor, conv3: torch.Tensor
) -> torch.Tensor:
    """UNet decoder: upsample and concatenate the skips, three double convs, 1×1 conv, sigmoid."""
    c_pa = model.dconv_up3(torch.cat([model.upsample(x), conv3], dim=1))
    c_pa = model.dconv_up2(torch.cat([model.upsample(c_pa), conv2], dim=1))
    c_pa = model.dconv_up1(torch.cat([model.upsample(c_pa), conv1], dim=1))
    return torch.sigmoid(model.conv_last(c_pa))
