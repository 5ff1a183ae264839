"""SOLAR backbone (Ng et al. 2020): torchvision ResNet with second-order attention (SOA) blocks after stages 4 and 5."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

__all__ = ["ResNetSOAs", "SOABlock"]


def _kaiming_conv(module: nn.Module) -> None:
    """SOLAR's init of the f/g/h branches: Kaiming-normal conv weights, zero bias."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.kaiming_normal_(module.weight.data)
        nn.init.constant_(module.bias.data, 0.0)


def _zero_conv(module: nn.Module) -> None:
    """SOLAR's init of the output projection v: all zeros, so a fresh block is the identity."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.constant_(module.weight.data, 0.0)
        nn.init.constant_(module.bias.data, 0.0)


def _conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, (1, 1), (1, 1)), nn.BatchNorm2d(out_ch), nn.ReLU())


class SOABlock(nn.Module):
    """Second-order attention: softmax(mid^-1/2 f^T g) over positions mixes h, projected back by v, plus x."""

    def __init__(self, in_ch: int, k: int) -> None:
        super().__init__()
        self.in_ch = in_ch
        self.out_ch = in_ch
        self.mid_ch = in_ch // k
        self.f = _conv_bn_relu(self.in_ch, self.mid_ch)
        self.g = _conv_bn_relu(self.in_ch, self.mid_ch)
        self.h = nn.Conv2d(self.in_ch, self.mid_ch, (1, 1), (1, 1))
        self.v = nn.Conv2d(self.mid_ch, self.out_ch, (1, 1), (1, 1))
        self.softmax = nn.Softmax(dim=-1)
        for branch in (self.f, self.g, self.h):
            branch.apply(_kaiming_conv)
        self.v.apply(_zero_conv)

    def forward(self, x: torch.Tensor, vis_mode: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (x + v(attended h), attention map (B, N, N)); `vis_mode` uses SOLAR's mid^-3/4 drawing scale."""
        b, _, height, width = x.shape
        n = height * width
        f_x = self.f(x).view(b, self.mid_ch, n)
        g_x = self.g(x).view(b, self.mid_ch, n)
        h_x = self.h(x).view(b, self.mid_ch, n)
        scale = self.mid_ch ** (-0.75 if vis_mode else -0.5)
        attn = self.softmax(scale * torch.bmm(f_x.permute(0, 2, 1), g_x))
        z = torch.bmm(attn, h_x.permute(0, 2, 1)).permute(0, 2, 1).view(b, self.mid_ch, height, width)
        return self.v(z) + x, attn


class ResNetSOAs(nn.Module):
    """torchvision ResNet trunk split into conv1/conv2_x..conv5_x, with SOA blocks after conv4_x and conv5_x.

    The stem and stages 1-3 run under no_grad (as in SOLAR); the output is the (B, C, h, w) feature map.
    """

    def __init__(self, architecture: str = "resnet101", soa_layers: str = "45") -> None:
        super().__init__()
        base = getattr(torchvision.models, architecture)(weights=None)
        width = base.inplanes
        self.conv1 = nn.Sequential(base.conv1, base.bn1)
        self.conv2_x = nn.Sequential(base.relu, base.maxpool, base.layer1)
        self.conv3_x = base.layer2
        self.conv4_x = base.layer3
        self.conv5_x = base.layer4
        self.soa_layers = soa_layers
        if "4" in soa_layers:
            self.soa4 = SOABlock(in_ch=width // 2, k=4)
        if "5" in soa_layers:
            self.soa5 = SOABlock(in_ch=width, k=2)
        self.embed_dim = width

    def forward(self, x: torch.Tensor, mode: str = "test") -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Feature map; `mode='draw'` also returns the two attention maps (SOLAR's visualisation path)."""
        draw = mode == "draw"
        with torch.no_grad():
            x = self.conv4_x(self.conv3_x(self.conv2_x(self.conv1(x))))
        attn4 = attn5 = None
        if "4" in self.soa_layers:
            x, attn4 = self.soa4(x, draw)
        x = self.conv5_x(x)
        if "5" in self.soa_layers:
            x, attn5 = self.soa5(x, draw)
        if draw:
            return x, attn4, attn5
        return x
