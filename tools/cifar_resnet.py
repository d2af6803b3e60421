"""Reference PyTorch definition of the CIFAR ResNets (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016, section 4.2), in the layout most PyTorch checkpoints use
(akamaster/pytorch_resnet_cifar10):

    conv1   Conv2d(3, 16, 3, stride 1, padding 1, bias=False)      no max pool
    bn1     BatchNorm2d(16)                                         then ReLU
    layer1  n BasicBlocks, 16 channels, stride 1
    layer2  n BasicBlocks, 32 channels, the first with stride 2
    layer3  n BasicBlocks, 64 channels, the first with stride 2
    global average pool (adaptive, to 1x1), flatten
    linear  Linear(64, 10)              option A; option B names it `fc`

depth = 6n + 2: resnet20 (n=3), 32 (5), 44 (7), 56 (9), 110 (18), 1202 (200).

BasicBlock: conv1 3x3 (stride s, pad 1) -> bn1 -> ReLU -> conv2 3x3 -> bn2 -> + shortcut -> ReLU.
Shortcut when the shape changes (stride 2 and planes = 2 * in_planes):
  option A  `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))`: subsample by 2 (rows
            and columns 0, 2, 4, ...), zero-pad planes // 4 channels on each side; no parameters (the
            paper's option A, used for its CIFAR results).
  option B  `downsample = Sequential(Conv2d(in_planes, planes, 1, stride 2, bias=False), BatchNorm2d)`
            (keys `downsample.0.weight`, `downsample.1.*`), the paper's option B; head named `fc`.
Otherwise the shortcut is the identity.

`stem_width` / `stage_widths` default to the paper's 16 / (16, 32, 64); the small golden configurations
use narrower ones (option A then pads planes // 4 = (planes - in_planes) / 2 channels on each side,
which requires planes = 2 * in_planes at every stride-2 block).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# name -> (depth, option)
CIFAR_ARCHS = {
    "resnet20": (20, "A"),
    "resnet32": (32, "A"),
    "resnet44": (44, "A"),
    "resnet56": (56, "A"),
    "resnet110": (110, "A"),
    "resnet1202": (1202, "A"),
    "cifar_resnet20_b": (20, "B"),
    "cifar_resnet56_b": (56, "B"),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, option: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = None
        self.downsample = None
        if stride != 1 or in_planes != planes:
            if option == "A":
                assert stride == 2 and planes == 2 * in_planes, "option A needs stride 2 and doubled planes"
                self.pad = planes // 4
            elif option == "B":
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )
            else:
                raise ValueError(f"unknown shortcut option {option!r}")

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.pad is not None:
            shortcut = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0)
        elif self.downsample is not None:
            shortcut = self.downsample(x)
        else:
            shortcut = x
        return F.relu(out + shortcut)


class CifarResNet(nn.Module):
    """CIFAR ResNet-(6n+2) with shortcut option "A" or "B"."""

    def __init__(self, n: int, option: str = "A", num_classes: int = 10, stem_width: int = 16,
                 stage_widths=(16, 32, 64)):
        super().__init__()
        self.option = option
        self.conv1 = nn.Conv2d(3, stem_width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        in_planes = stem_width
        for s, planes in enumerate(stage_widths):
            stride = 1 if s == 0 else 2
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride if b == 0 else 1, option))
                in_planes = planes
            self.add_module(f"layer{s + 1}", nn.Sequential(*blocks))
        self.num_stages = len(stage_widths)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        head = nn.Linear(in_planes, num_classes)
        if option == "A":
            self.linear = head
        else:
            self.fc = head
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    @property
    def head(self) -> nn.Linear:
        return self.linear if self.option == "A" else self.fc

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for s in range(self.num_stages):
            x = getattr(self, f"layer{s + 1}")(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.head(x)


def depth_to_n(depth: int) -> int:
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1, got {depth}")
    return (depth - 2) // 6


def cifar_resnet(name: str) -> CifarResNet:
    depth, option = CIFAR_ARCHS[name]
    return CifarResNet(depth_to_n(depth), option)


def expected_params(depth: int, option: str, num_classes: int = 10) -> int:
    """Parameter count by hand (conv weights, BN gamma+beta, linear), independent of the module code."""
    n = depth_to_n(depth)
    total = 3 * 16 * 9 + 2 * 16  # conv1, bn1
    in_planes = 16
    for planes in (16, 32, 64):
        for b in range(n):
            total += in_planes * planes * 9 + planes * planes * 9 + 4 * planes
            if b == 0 and in_planes != planes and option == "B":
                total += in_planes * planes + 2 * planes
            in_planes = planes
    return total + 64 * num_classes + num_classes
