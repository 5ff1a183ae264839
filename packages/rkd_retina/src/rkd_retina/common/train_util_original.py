"""Training helpers and `train_model` of the original `common/train_util_original.py` (base and LK training).

`common/train_util.py` (Swin training) re-exports the helpers and runs the same epoch loop with knowledge-loss
logging. Logging goes to TensorBoard (`log_dir`, default `<model_save_path folder>/logs`) and, with `wandb: true`,
to W&B as originally; the PKE figures are logged instead of `plt.show()`.
"""

from __future__ import annotations

import math
import random
import shutil
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import scipy.stats as st
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torchvision import transforms as T
from tqdm import tqdm

from kdrepro_shared.checkpoints.io import save
from kdrepro_shared.errors import KdReproError
from kdrepro_shared.logging import create_summary_writer

AFFINE_RANGES = {
    # used_for: (degrees, translate fraction, scale range)
    "detector": ((-15.0, 15.0), (0.2, 0.2), (0.9, 1.35)),
    "descriptor": ((-3.0, 3.0), (0.1, 0.1), (0.9, 1.1)),
}
COLOR_JITTER_THRESHOLD = 0.4  # jitter when random.random() >= 0.4, i.e. with probability 0.6


def affine_theta(angle: float, translate: Sequence[float], scale: float, height: int, width: int) -> torch.Tensor:
    """The original's 3×3 θ from RandomAffine parameters: 1/s on the diagonal only, translation divided by H and W."""
    a = -angle * math.pi / 180
    return torch.tensor(
        [
            [1 / scale * math.cos(a), math.sin(-a), -translate[0] / height],
            [math.sin(a), 1 / scale * math.cos(a), -translate[1] / width],
            [0, 0, 1],
        ],
        dtype=torch.float,
    )


def affine_images(images: torch.Tensor, used_for: str = "detector") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Warp each image by a random affine ('detector' or 'descriptor' ranges); return (warped, grid, grid_inverse).

    Draws per image with `torchvision RandomAffine.get_params` (torch RNG); the 'descriptor' variant then, with
    Python-`random` probability 0.6, applies one ColorJitter to the whole batch through RGB and back to gray.
    """
    degrees, translate, scale_ranges = AFFINE_RANGES["detector" if used_for == "detector" else "descriptor"]
    h, w = images.shape[2:]
    thetas, thetas_inv = [], []
    for _ in range(len(images)):
        angle, shift, scale, _ = T.RandomAffine.get_params(
            degrees=list(degrees),
            translate=list(translate),
            scale_ranges=list(scale_ranges),
            shears=None,
            img_size=[h, w],
        )
        theta = affine_theta(angle, shift, scale, images.shape[2], images.shape[3]).to(images)
        thetas.append(theta[:2])
        thetas_inv.append(theta.inverse()[:2])
    grid = F.affine_grid(torch.stack(thetas), images.size(), align_corners=True).to(images)
    grid_inverse = F.affine_grid(torch.stack(thetas_inv), images.size(), align_corners=True).to(images)
    output = F.grid_sample(images, grid, align_corners=True)
    if used_for == "descriptor" and random.random() >= COLOR_JITTER_THRESHOLD:
        output = T.ColorJitter(brightness=0.4, contrast=0.3, saturation=0.3, hue=0.2)(output.repeat(1, 3, 1, 1))
        output = T.Grayscale()(output)
    return output.detach().clone(), grid, grid_inverse


def get_gaussian_kernel(kernlen: int = 21, nsig: float = 5) -> torch.Tensor:
    """1×1×k×k float32 heatmap kernel: sqrt of the outer product of normal-CDF differences, min-max scaled to [0, 1]."""
    interval = (2 * nsig + 1.0) / kernlen
    x = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, kernlen + 1)
    kern1d = np.diff(st.norm.cdf(x))
    kernel = np.sqrt(np.outer(kern1d, kern1d))
    kernel = torch.FloatTensor(kernel / kernel.sum())[None, None]
    return (kernel - kernel.min()) / (kernel.max() - kernel.min())


def _value_map_path(save_dir: str | Path, name: str) -> Path:
    """PNG path of a label's value map: `<save_dir>/<name up to its first dot>.png`."""
    return Path(save_dir) / (name.split(".", maxsplit=1)[0] + ".png")


def value_map_load(
    save_dir: str | Path,
    names: Sequence[str],
    input_with_label: Sequence[bool],
    shape: tuple[int, int] = (768, 768),
    value_maps_running: MutableMapping[str, np.ndarray] | None = None,
) -> torch.Tensor:
    """B×1×H×W uint8 value maps: from the RAM dict, else from PNGs in `save_dir`, else zeros (always for unlabelled)."""
    maps = []
    for s, name in enumerate(names):
        path = _value_map_path(save_dir, name)
        if input_with_label[s] and value_maps_running is not None and name in value_maps_running:
            value_map = value_maps_running[name]
        elif input_with_label[s] and value_maps_running is None and path.exists():
            value_map = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        else:
            value_map = np.zeros(shape[:2], dtype=np.uint8)
        maps.append(torch.from_numpy(value_map)[None, None])
    return torch.cat(maps)


def value_map_save(
    save_dir: str | Path,
    names: Sequence[str],
    input_with_label: Sequence[bool],
    value_maps: torch.Tensor,
    value_maps_running: MutableMapping[str, np.ndarray] | None = None,
) -> None:
    """Store the value maps of labelled samples in the RAM dict, or as PNGs in `save_dir` when there is no dict."""
    for s, name in enumerate(names):
        if not input_with_label[s]:
            continue
        value_map = value_maps[s].squeeze().numpy()
        if value_maps_running is not None:
            value_maps_running[name] = value_map
        else:
            cv2.imwrite(str(_value_map_path(save_dir, name)), value_map)


@dataclass
class PhaseTotals:
    """Running sums of one phase, averaged as the original printed and logged them."""

    detector: float = 0.0
    descriptor: float = 0.0
    learned_points: int = 0
    labelled: int = 0
    descriptor_images: int = 0
    samples: int = 0
    knowledge_detect: list[float] = field(default_factory=list)
    knowledge_descript: list[float] = field(default_factory=list)

    @staticmethod
    def _mean(total: float, count: int) -> float:
        """`total / count`, NaN for an empty count (the original divided by zero)."""
        return total / count if count else math.nan

    def log_dict(self, phase: str, epoch: int) -> dict[str, float]:
        """The original's W&B dict of the phase (knowledge losses only when recorded, i.e. for the Swin model)."""
        detector = self._mean(self.detector, self.labelled)
        descriptor = self._mean(self.descriptor, self.samples)
        values = {
            f"{phase} overall loss": detector + descriptor,
            f"{phase} detector loss": detector,
            f"{phase} avg keypoints learned": self._mean(self.learned_points, self.labelled),
            f"{phase} descriptor loss": descriptor,
        }
        if phase == "train":
            values["global epoch"] = epoch
        if self.knowledge_detect:
            prefix = "" if phase == "train" else f"{phase} "
            values[f"{prefix}Knowledge_Loss_descript"] = float(np.mean(self.knowledge_descript))
            values[f"{prefix}Knowledge_Loss_detect"] = float(np.mean(self.knowledge_detect))
        return values

    def summary(self, phase: str) -> str:
        """The original's printed phase line (its overall loss includes the knowledge losses)."""
        detector = self._mean(self.detector, self.labelled)
        descriptor = self._mean(self.descriptor, self.samples)
        knowledge = (
            float(np.mean(self.knowledge_detect) + np.mean(self.knowledge_descript)) if self.knowledge_detect else 0
        )
        return (
            f"{phase} overall loss: {detector + descriptor + knowledge} detector_loss: {detector} of {self.labelled} "
            f"nums, #avg learned keypoints:{self._mean(self.learned_points, self.labelled)}  descriptor_loss: "
            f"{descriptor} of {self.descriptor_images} nums"
        )


@dataclass
class ShowSample:
    """One labelled sample kept for the PKE figures: input, initial and enhanced points, target and prediction."""

    name: str
    image: np.ndarray
    initial_points: np.ndarray
    label: np.ndarray
    prediction: np.ndarray
    enhanced_points: np.ndarray


class RunLogger:
    """TensorBoard always, W&B when `wandb: true` (project/run from `wandb_project`/`wandb_run_name`)."""

    def __init__(self, train_config: Mapping[str, Any], project: str, run_name: str) -> None:
        log_dir = train_config.get("log_dir") or Path(train_config["model_save_path"]).parent / "logs"
        self.writer = create_summary_writer(log_dir)
        self.wandb = None
        if train_config.get("wandb", False):
            try:
                import wandb  # noqa: PLC0415 (optional dependency)
            except ImportError:
                raise KdReproError("wandb: true needs W&B: pip install 'rkd-retina[wandb]'") from None
            wandb.init(
                project=train_config.get("wandb_project", project), name=train_config.get("wandb_run_name", run_name)
            )
            self.wandb = wandb

    def scalars(self, values: Mapping[str, float], epoch: int) -> None:
        """Log one phase's values at step `epoch` (one `wandb.log` call, as originally)."""
        for key, value in values.items():
            self.writer.add_scalar(key, value, epoch)
        if self.wandb is not None:
            self.wandb.log(dict(values))

    def figure(self, tag: str, figure: Figure, epoch: int) -> None:
        """Log a matplotlib figure."""
        if self.wandb is not None:
            self.wandb.log({tag: self.wandb.Image(figure)})
        self.writer.add_figure(tag, figure, epoch)

    def close(self) -> None:
        """Flush TensorBoard and finish the W&B run."""
        self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()


def keypoint_figure(sample: ShowSample, epoch: int, phase: str) -> Figure:
    """The input with its initial (blue) and enhanced (green) keypoints."""
    figure = Figure(dpi=100)
    axis = figure.add_subplot()
    axis.imshow(sample.image, "gray")
    axis.set_title(f"epoch:{epoch}, phase:{phase}, name:{sample.name}")
    axis.axis("off")
    for points, colour in ((sample.enhanced_points, "springgreen"), (sample.initial_points, "b")):
        y, x = np.nonzero(points == 1)
        axis.scatter(x, y, s=2, c=colour)
    return figure


def prediction_figure(sample: ShowSample) -> Figure:
    """The detector prediction next to its (enhanced) heatmap target."""
    figure = Figure(dpi=200)
    for position, image in ((121, sample.prediction), (122, sample.label)):
        figure.add_subplot(position).imshow(image, "gray")
    return figure


def save_checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, prefix: str | Path) -> Path:
    """Atomically write `{'net', 'optimizer', 'epoch'}` to `<prefix>_<epoch>` (creating its folder)."""
    path = Path(f"{prefix}_{epoch}")
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"save model for epoch {epoch}")
    return save(path, {"net": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, meta=False)


def value_map_store(train_config: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """A RAM dict for the value maps, or None after emptying `value_map_save_dir` when `is_value_map_save`."""
    if not train_config["is_value_map_save"]:
        return {}
    save_dir = Path(train_config["value_map_save_dir"])
    shutil.rmtree(save_dir, ignore_errors=True)
    save_dir.mkdir(parents=True)
    return None


def pick_show_samples(
    outputs: Sequence[Any], batch: Sequence[Any], show_list: Sequence[str], have_one: bool
) -> list[ShowSample]:
    """Samples of this batch to visualise: those named in `show_list`, else the first labelled one of the phase."""
    images, input_with_label, keypoint_positions, label_names = batch
    enhanced_label_pts, enhanced_label, detector_pred = outputs[4], outputs[5], outputs[6]
    if enhanced_label_pts is None:
        enhanced_label_pts = keypoint_positions
    stems = [Path(name).name.split(".")[0] for name in label_names]
    maps = (images, keypoint_positions, enhanced_label, detector_pred, enhanced_label_pts)
    if show_list:
        indices = [i for i, stem in enumerate(stems) if stem in show_list]
    else:
        labelled = torch.where(input_with_label)[0].tolist()
        indices = labelled[:1] if labelled and not have_one else []
    return [ShowSample(stems[i], *(t[i][0].detach().cpu().numpy() for t in maps)) for i in indices]


@dataclass
class PhaseContext:
    """What one phase needs besides its batches."""

    phase: str
    device: torch.device
    train_config: Mapping[str, Any]
    value_maps_running: dict[str, np.ndarray] | None
    knowledge: bool


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: Sequence[Any], context: PhaseContext
) -> tuple[tuple[Any, ...], tuple[torch.Tensor, ...]]:
    """One batch: load value maps, forward with losses (backward + step in 'train'), store value maps."""
    images, input_with_label, keypoint_positions, label_names = batch
    learn_index = torch.where(input_with_label)
    images = images.to(context.device)
    value_map_dir = context.train_config["value_map_save_dir"]
    value_maps = value_map_load(
        value_map_dir, label_names, input_with_label, images.shape[-2:], context.value_maps_running
    ).to(context.device)
    keypoint_positions = keypoint_positions.to(context.device)
    optimizer.zero_grad()
    training = "train" in context.phase
    with torch.set_grad_enabled(training):
        outputs = model(images, keypoint_positions, value_maps, learn_index)
        if training:
            outputs[0].backward()
            optimizer.step()
    if len(learn_index[0]) != 0:
        value_map_save(value_map_dir, label_names, input_with_label, value_maps.cpu(), context.value_maps_running)
    return outputs, learn_index


def run_phase(
    model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, context: PhaseContext
) -> tuple[PhaseTotals, list[ShowSample]]:
    """All batches of one phase; returns the loss totals and the samples picked for the PKE figures."""
    totals, shows = PhaseTotals(), []
    show = context.train_config["pke_show"]
    for batch in tqdm(loader, desc=context.phase):
        outputs, learn_index = train_step(model, optimizer, batch, context)
        if show:
            shows += pick_show_samples(outputs, batch, context.train_config["pke_show_list"], bool(shows))
        batch_size = len(batch[0])
        totals.detector += float(outputs[2]) * len(learn_index[0])
        totals.descriptor += float(outputs[3]) * batch_size
        totals.labelled += outputs[7]
        totals.learned_points += int(outputs[1])
        totals.descriptor_images += outputs[8]
        totals.samples += batch_size
        if context.knowledge:
            detect, descript = model.return_knowledge_losses()
            totals.knowledge_detect.append(float(detect))
            totals.knowledge_descript.append(float(descript))
    return totals, shows


def run_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    dataloaders: Mapping[str, DataLoader],
    *,
    device: torch.device,
    num_epochs: int,
    train_config: Mapping[str, Any],
    knowledge: bool,
    logger: RunLogger,
    start_epoch: int = 0,
) -> nn.Module:
    """The original epoch loop: per epoch set PKE_learn, then each phase (the val phase saves a checkpoint first)."""
    value_maps_running = value_map_store(train_config)
    for epoch in range(start_epoch, num_epochs):
        print(f"Epoch {epoch}/{num_epochs - 1}")
        model.PKE_learn = epoch >= train_config["pke_start_epoch"]
        for phase, loader in dataloaders.items():
            if "val" in phase and epoch % train_config["model_save_epoch"] == 0:
                save_checkpoint(model, optimizer, epoch, train_config["model_save_path"])
            print("-" * 10 + f"phase:{phase}\t PKE_learn:{model.PKE_learn}" + "-" * 10)
            if "train" in phase:
                for param_group in optimizer.param_groups:
                    print("LR", param_group["lr"])
            model.train("train" in phase)
            context = PhaseContext(phase, device, train_config, value_maps_running, knowledge)
            totals, shows = run_phase(model, optimizer, loader, context)
            print(totals.summary(phase))
            logger.scalars(totals.log_dict(phase, epoch), epoch)
            if epoch % train_config["pke_show_epoch"] == 0:
                for sample in shows:
                    tag = f"{phase}/{{}}/{sample.name}"
                    logger.figure(tag.format("image_with_keypoints"), keypoint_figure(sample, epoch, phase), epoch)
                    logger.figure(tag.format("pred_label"), prediction_figure(sample), epoch)
    return model


def run_training(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    dataloaders: Mapping[str, DataLoader],
    *,
    wandb_names: tuple[str, str],
    **loop: Any,
) -> nn.Module:
    """`run_epochs` with a `RunLogger` (W&B default project and run name `wandb_names`) closed at the end."""
    logger = RunLogger(loop["train_config"], *wandb_names)
    try:
        return run_epochs(model, optimizer, dataloaders, logger=logger, **loop)
    finally:
        logger.close()


def train_model(  # noqa: PLR0917 (the original positional signature)
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    dataloaders: Mapping[str, DataLoader],
    device: torch.device,
    num_epochs: int,
    train_config: Mapping[str, Any],
    start_epoch: int = 0,
) -> nn.Module:
    """Train base/LK models: train and val phases per epoch, checkpoint `<model_save_path>_<epoch>` each epoch."""
    return run_training(
        model, optimizer, dataloaders, wandb_names=("Project_name", "Project_Run_Final"), device=device,
        num_epochs=num_epochs, train_config=train_config, knowledge=False, start_epoch=start_epoch,
    )  # fmt: skip
