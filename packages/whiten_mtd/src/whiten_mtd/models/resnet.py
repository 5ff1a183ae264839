"""torchvision ResNets as the original modified them: optional fc (Identity when num_classes <= 0), an `embed_dim`
attribute, and an L2 normalisation between the pooling and the fc layer.

State-dict keys are exactly torchvision's. `pretrained=True` loads torchvision's V1 ImageNet weights without `fc.*`
(non-strict, as the original), fetched once into the kd-repro cache (or taken from torch.hub's cache if present).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from kdrepro_shared.checkpoints import fetch, load

__all__ = ["IMAGENET_URLS", "ResNet", "imagenet_state_dict", "resnet18", "resnet34", "resnet50", "resnet101"]

IMAGENET_URLS: dict[str, str] = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
}
_SPECS: dict[str, tuple[type[nn.Module], list[int]]] = {
    "resnet18": (tv_resnet.BasicBlock, [2, 2, 2, 2]),
    "resnet34": (tv_resnet.BasicBlock, [3, 4, 6, 3]),
    "resnet50": (tv_resnet.Bottleneck, [3, 4, 6, 3]),
    "resnet101": (tv_resnet.Bottleneck, [3, 4, 23, 3]),
}
_log = logging.getLogger(__name__)


class ResNet(tv_resnet.ResNet):
    """torchvision ResNet whose forward L2-normalises the pooled feature before `fc`; `fc` is Identity if
    `num_classes <= 0`. `embed_dim` is the output width (512 * expansion without fc, else num_classes)."""

    def __init__(self, block: type[nn.Module], layers: list[int], num_classes: int = 1000, **kwargs: Any) -> None:
        super().__init__(block, layers, num_classes=max(num_classes, 1), **kwargs)
        width = 512 * block.expansion
        if num_classes <= 0:
            self.fc = nn.Identity()
            self.embed_dim = width
        else:
            self.embed_dim = num_classes

    def _forward_impl(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(nn.functional.normalize(x, dim=1, p=2))


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """torchvision ImageNet weights of `arch`: torch.hub's cached copy if any, else fetched (sha256 prefix checked)."""
    url = IMAGENET_URLS[arch]
    file_name = url.rsplit("/", 1)[1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / file_name
    sha_prefix = file_name.rsplit("-", 1)[1].split(".")[0]
    path = fetch(cached if cached.is_file() else url, sha256=sha_prefix)
    return load(path)


def _resnet(arch: str, pretrained: bool, num_classes: int, **kwargs: Any) -> ResNet:
    """Build `arch`; with `pretrained`, load the ImageNet trunk (fc dropped, non-strict) and log the key report."""
    block, layers = _SPECS[arch]
    model = ResNet(block, layers, num_classes=num_classes, **kwargs)
    if pretrained:
        state = imagenet_state_dict(arch)
        state.pop("fc.weight")
        state.pop("fc.bias")
        _log.info("%s ImageNet init: %s", arch, model.load_state_dict(state, strict=False))
    return model


def resnet18(pretrained: bool = False, num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-18 (BasicBlock [2, 2, 2, 2])."""
    return _resnet("resnet18", pretrained, num_classes, **kwargs)


def resnet34(pretrained: bool = False, num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-34 (BasicBlock [3, 4, 6, 3])."""
    return _resnet("resnet34", pretrained, num_classes, **kwargs)


def resnet50(pretrained: bool = False, num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-50 (Bottleneck v1.5 [3, 4, 6, 3])."""
    return _resnet("resnet50", pretrained, num_classes, **kwargs)


def resnet101(pretrained: bool = False, num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-101 (Bottleneck v1.5 [3, 4, 23, 3])."""
    return _resnet("resnet101", pretrained, num_classes, **kwargs)
