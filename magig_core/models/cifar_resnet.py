"""The CIFAR-10 ResNets of He et al. (2016, section 4.2): 6n+2 layers on 32×32 images, no weights here.

Written to load Yerlan Idelbayev's pretrained checkpoints (github akamaster/pytorch_resnet_cifar10,
BSD-2-Clause) strictly: the module names match theirs. Where a stage changes shape, the shortcut is
"option A": subsample by 2 and zero-pad the new channels, so the shortcut has no weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

BLOCKS_PER_STAGE = {"resnet20": 3, "resnet56": 9}  # depth = 6n + 2


class PadShortcut(nn.Module):
    """Option A: ``x[:, :, ::2, ::2]`` with ``pad`` zero channels on each side (no parameters)."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        reshapes = stride != 1 or in_planes != planes
        self.shortcut: nn.Module = PadShortcut(planes // 4) if reshapes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """conv1-bn1-ReLU, three stages of ``n`` blocks (16/32/64 channels), global average pool, ``linear``."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._stage(16, 16, blocks_per_stage, stride=1)
        self.layer2 = self._stage(16, 32, blocks_per_stage, stride=2)
        self.layer3 = self._stage(32, 64, blocks_per_stage, stride=2)
        self.linear = nn.Linear(64, num_classes)

    @staticmethod
    def _stage(in_planes: int, planes: int, count: int, stride: int) -> nn.Sequential:
        blocks = [BasicBlock(in_planes, planes, stride)]
        blocks += [BasicBlock(planes, planes) for _ in range(count - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(out.mean(dim=(2, 3)))


def cifar_resnet(arch: str, num_classes: int = 10) -> CifarResNet:
    """``resnet20`` or ``resnet56`` by name."""
    if arch not in BLOCKS_PER_STAGE:
        raise ValueError(f"unknown CIFAR ResNet {arch!r}; choose one of {', '.join(BLOCKS_PER_STAGE)}")
    return CifarResNet(BLOCKS_PER_STAGE[arch], num_classes)
