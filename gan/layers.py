"""GAN building blocks: spectrally normalized residual blocks going down (discriminator) and
conditionally normalized residual blocks going up (generator)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv(c_in: int, c_out: int, k: int = 3) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, k, padding=k // 2))


class DownBlock(nn.Module):
    """Residual: relu -> conv -> relu -> conv -> avgpool, plus a 1x1 shortcut; spectral norm throughout
    (the BigGAN / SNGAN discriminator block). `first` skips the leading relu (on the image itself)."""

    def __init__(self, c_in: int, c_out: int, first: bool = False):
        super().__init__()
        self.first = first
        self.conv1, self.conv2 = sn_conv(c_in, c_out), sn_conv(c_out, c_out)
        self.skip = spectral_norm(nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.skip(x), 2)


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine; the scale and shift come from a condition vector (BigGAN)."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.affine = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(cond)[:, :, None, None].chunk(2, dim=1)
        return self.bn(x) * (1 + gamma) + beta


class UpBlock(nn.Module):
    """Residual: cbn -> relu -> upsample -> conv -> cbn -> relu -> conv, plus an upsampled 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm(c_in, cond_dim), ConditionalBatchNorm(c_out, cond_dim)
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class SPADE(nn.Module):
    """Spatially-adaptive normalisation (Park et al. 2019): BatchNorm without its own affine; a scale
    and a shift per pixel from the layout (1x1 convolutions: the layout already says where)."""

    def __init__(self, channels: int, layout_dim: int, hidden: int = 32):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(layout_dim, hidden, 1), nn.ReLU())
        self.affine = nn.Conv2d(hidden, 2 * channels, 1)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, layouts: dict[int, torch.Tensor]) -> torch.Tensor:
        """layouts: the layout at each resolution (side -> (B, D, side, side)), see layout_pyramid."""
        gamma, beta = self.affine(self.shared(layouts[x.shape[-1]])).chunk(2, dim=1)
        return self.bn(x) * (1 + gamma) + beta


def layout_pyramid(layout: torch.Tensor, smallest: int) -> dict[int, torch.Tensor]:
    """The layout (B, D, S, S) average-pooled by 2 down to smallest x smallest: {side: layout at side}."""
    out = {layout.shape[-1]: layout}
    while layout.shape[-1] > smallest:
        layout = F.avg_pool2d(layout, 2)
        out[layout.shape[-1]] = layout
    return out


class SPADEUpBlock(nn.Module):
    """UpBlock with SPADE in place of conditional BatchNorm: the layout decides each pixel's scale and shift."""

    def __init__(self, c_in: int, c_out: int, layout_dim: int):
        super().__init__()
        self.norm1, self.norm2 = SPADE(c_in, layout_dim), SPADE(c_out, layout_dim)
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, layouts: dict[int, torch.Tensor]) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, layouts)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), layouts)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))
