#!/usr/bin/env python3
"""Generate the NeuralNet golden fixtures in Tests/Fixtures/neuralnet (inputs, parameters and the
outputs PyTorch computes for them).

Run from the repository root with the reference venv (see shared/reference/REFERENCE-PYTHON.md):

    .venv-ref/bin/python tools/make_neuralnet_goldens.py

Every file is `torch.save(dict_of_tensors)` of float32 tensors named `<case>.<role>`:
  <case>.input / .weight / .bias / ...   what the Swift op receives,
  <case>.output (and .output_relu, ...)  what torch computed,
  <case>.config                          the op's integer arguments as an int64 vector (see below).
Deterministic: fixed seeds, and the random `.data/serialization_id` record of each zip is replaced by
one derived from the file name (helper shared with tools/make_fixtures.py).
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import torch_save_zip  # noqa: E402  (deterministic torch.save)

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "Tests" / "Fixtures" / "neuralnet"

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def rand(gen: torch.Generator, *shape, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).contiguous()


def ints(values) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.int64)


def save(name: str, tensors: "collections.OrderedDict[str, torch.Tensor]") -> None:
    clean = collections.OrderedDict((k, v.detach().clone().contiguous()) for k, v in tensors.items())
    path = OUT / name
    torch_save_zip(clean, path)
    back = torch.load(path)
    assert list(back) == list(clean) and all(torch.equal(back[k], clean[k]) for k in clean), path
    print(f"{path.relative_to(REPO)}: {len(clean)} tensors, {path.stat().st_size} bytes")


# -------------------------------------------------------------------------------------------------
# Convolutions: config = [kernelH, kernelW, strideH, strideW, padH, padW, dilationH, dilationW, groups]
# -------------------------------------------------------------------------------------------------

CONV_CASES = [
    # name, N, Cin, H, W, Cout, kernel, stride, padding, dilation, groups, bias
    ("conv3x3", 2, 8, 13, 17, 16, (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    ("conv7x7s2", 1, 3, 33, 29, 8, (7, 7), (2, 2), (3, 3), (1, 1), 1, False),
    ("conv1x1", 2, 16, 9, 11, 24, (1, 1), (1, 1), (0, 0), (1, 1), 1, True),
    ("conv1x1s2", 2, 16, 13, 17, 32, (1, 1), (2, 2), (0, 0), (1, 1), 1, False),
    ("conv1x1_groups2", 1, 16, 7, 9, 8, (1, 1), (1, 1), (0, 0), (1, 1), 2, True),
    ("conv3x3_groups4_s2", 2, 16, 13, 17, 32, (3, 3), (2, 2), (1, 1), (1, 1), 4, True),
    ("conv3x3_depthwise", 1, 12, 13, 17, 12, (3, 3), (1, 1), (1, 1), (1, 1), 12, False),
    ("conv3x3_dilation2", 1, 8, 17, 13, 8, (3, 3), (1, 1), (2, 2), (2, 2), 1, True),
    ("conv_rect_1x3", 2, 4, 11, 10, 6, (1, 3), (2, 1), (0, 1), (1, 1), 1, True),
    ("conv3x3_nopad_s2", 1, 5, 14, 15, 7, (3, 3), (2, 2), (0, 0), (1, 1), 1, False),
]


def conv_goldens(gen: torch.Generator) -> collections.OrderedDict:
    out = collections.OrderedDict()
    for (name, n, cin, h, w, cout, k, s, p, d, g, has_bias) in CONV_CASES:
        x = rand(gen, n, cin, h, w)
        fan_in = cin // g * k[0] * k[1]
        weight = rand(gen, cout, cin // g, k[0], k[1], scale=fan_in ** -0.5)
        bias = rand(gen, cout, scale=0.1) if has_bias else None
        y = F.conv2d(x, weight, bias, stride=s, padding=p, dilation=d, groups=g)
        out[f"{name}.config"] = ints([k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], g])
        out[f"{name}.input"] = x
        out[f"{name}.weight"] = weight
        if bias is not None:
            out[f"{name}.bias"] = bias
        out[f"{name}.output"] = y
        out[f"{name}.output_relu"] = torch.relu(y)
    return out


# -------------------------------------------------------------------------------------------------
# Norms and linear: conv followed by BatchNorm2d in eval mode (folding), batchnorm alone, linear
# -------------------------------------------------------------------------------------------------


def bn_params(gen: torch.Generator, c: int, prefix: str, out: collections.OrderedDict) -> torch.nn.BatchNorm2d:
    bn = torch.nn.BatchNorm2d(c, eps=1e-5).eval()
    with torch.no_grad():
        bn.weight.copy_(1 + rand(gen, c, scale=0.3))
        bn.bias.copy_(rand(gen, c, scale=0.2))
        bn.running_mean.copy_(rand(gen, c, scale=0.5))
        bn.running_var.copy_(torch.rand(c, generator=gen) * 2 + 0.05)
    out[f"{prefix}.bn.weight"] = bn.weight
    out[f"{prefix}.bn.bias"] = bn.bias
    out[f"{prefix}.bn.running_mean"] = bn.running_mean
    out[f"{prefix}.bn.running_var"] = bn.running_var
    return bn


def norm_goldens(gen: torch.Generator) -> collections.OrderedDict:
    out = collections.OrderedDict()
    with torch.no_grad():
        # Conv (config as for convolutions) then BN, with and without a conv bias.
        for name, cin, cout, k, s, p, g, has_bias in [
            ("fold3x3", 8, 16, 3, 1, 1, 1, False),
            ("fold1x1_bias", 16, 12, 1, 2, 0, 1, True),
            ("fold3x3_groups4", 16, 16, 3, 1, 1, 4, True),
        ]:
            conv = torch.nn.Conv2d(cin, cout, k, stride=s, padding=p, groups=g, bias=has_bias).eval()
            conv.weight.copy_(rand(gen, *conv.weight.shape, scale=(cin // g * k * k) ** -0.5))
            if has_bias:
                conv.bias.copy_(rand(gen, cout, scale=0.1))
            x = rand(gen, 2, cin, 9, 10)
            out[f"{name}.config"] = ints([k, k, s, s, p, p, 1, 1, g])
            out[f"{name}.input"] = x
            out[f"{name}.weight"] = conv.weight
            if has_bias:
                out[f"{name}.bias"] = conv.bias
            bn = bn_params(gen, cout, name, out)
            y = bn(conv(x))
            out[f"{name}.output"] = y
            out[f"{name}.output_relu"] = torch.relu(y)

        x = rand(gen, 2, 8, 5, 7)
        out["batchnorm.input"] = x
        bn = bn_params(gen, 8, "batchnorm", out)
        out["batchnorm.output"] = bn(x)
        out["batchnorm.output_relu"] = torch.relu(bn(x))

        for name, n, fin, fout, has_bias in [("linear", 3, 20, 10, True), ("linear_nobias", 2, 64, 5, False)]:
            lin = torch.nn.Linear(fin, fout, bias=has_bias)
            lin.weight.copy_(rand(gen, fout, fin, scale=fin ** -0.5))
            x = rand(gen, n, fin)
            out[f"{name}.input"] = x
            out[f"{name}.weight"] = lin.weight
            if has_bias:
                lin.bias.copy_(rand(gen, fout, scale=0.1))
                out[f"{name}.bias"] = lin.bias
            out[f"{name}.output"] = lin(x)
    return out


# -------------------------------------------------------------------------------------------------
# Pooling: config = [kernel, stride, padding, ceil_mode] (max/avg), [outH, outW] (adaptive)
# -------------------------------------------------------------------------------------------------

MAX_CASES = [
    # name, input shape, kernel, stride, padding, ceil
    ("maxpool_3x3s2p1_112", (1, 2, 112, 112), 3, 2, 1, False),
    ("maxpool_3x3s2p1_odd", (2, 3, 13, 17), 3, 2, 1, False),
    ("maxpool_3x3s2_ceil_112", (1, 2, 112, 112), 3, 2, 0, True),
    ("maxpool_3x3s2_ceil_13", (2, 3, 13, 14), 3, 2, 0, True),
    ("maxpool_2x2s2p1_ceil_drop", (1, 2, 5, 6), 2, 2, 1, True),  # ceil rule drops the last window
    ("maxpool_2x2s2", (2, 2, 7, 8), 2, 2, 0, False),
]

AVG_CASES = [
    ("avgpool_2x2s2", (2, 4, 14, 15), 2, 2, 0, False),
    ("avgpool_2x2s2_ceil", (1, 3, 7, 9), 2, 2, 0, True),
    ("avgpool_3x3s2p1_ceil", (1, 2, 13, 13), 3, 2, 1, True),  # divisor clipped to the padded input
    ("avgpool_2x2s2p1_ceil_drop", (1, 2, 5, 6), 2, 2, 1, True),
]

ADAPTIVE_CASES = [
    ("adaptive_7x7_to_1x1", (2, 8, 7, 7), (1, 1)),
    ("adaptive_7x7_to_3x3", (1, 4, 7, 7), (3, 3)),
    ("adaptive_10x13_to_3x3", (2, 3, 10, 13), (3, 3)),
    ("adaptive_10x13_to_4x5", (1, 2, 10, 13), (4, 5)),
    ("adaptive_3x2_to_5x4", (1, 2, 3, 2), (5, 4)),  # output larger than input: overlapping windows
]


def pool_goldens(gen: torch.Generator) -> collections.OrderedDict:
    out = collections.OrderedDict()
    for name, shape, k, s, p, ceil in MAX_CASES:
        x = rand(gen, *shape)
        out[f"{name}.config"] = ints([k, s, p, int(ceil)])
        out[f"{name}.input"] = x
        out[f"{name}.output"] = F.max_pool2d(x, k, s, p, ceil_mode=ceil)
    for name, shape, k, s, p, ceil in AVG_CASES:
        x = rand(gen, *shape)
        out[f"{name}.config"] = ints([k, s, p, int(ceil)])
        out[f"{name}.input"] = x
        out[f"{name}.output"] = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=True)
    for name, shape, size in ADAPTIVE_CASES:
        x = rand(gen, *shape)
        out[f"{name}.config"] = ints(size)
        out[f"{name}.input"] = x
        out[f"{name}.output"] = F.adaptive_avg_pool2d(x, size)
    return out


# -------------------------------------------------------------------------------------------------
# Element-wise and shape ops
# -------------------------------------------------------------------------------------------------


def elementwise_goldens(gen: torch.Generator) -> collections.OrderedDict:
    out = collections.OrderedDict()
    x = rand(gen, 2, 3, 4, 5)
    out["relu.input"] = x
    out["relu.output"] = torch.relu(x)
    out["flatten.input"] = x
    out["flatten.output"] = torch.flatten(x, 1)

    xs = [rand(gen, 2, c, 4, 5) for c in (3, 5, 1)]
    for i, t in enumerate(xs):
        out[f"concat.input{i}"] = t
    out["concat.output"] = torch.cat(xs, dim=1)

    a, b = rand(gen, 2, 4, 5, 6), rand(gen, 2, 4, 5, 6)
    out["add.a"], out["add.b"] = a, b
    out["add.output"] = a + b
    out["add.output_relu"] = torch.relu(a + b)

    g = rand(gen, 2, 8, 1, 1, scale=6.0)
    g[0, 0, 0, 0], g[0, 1, 0, 0], g[1, 0, 0, 0] = 30.0, -30.0, 0.0  # saturation and the midpoint
    out["sigmoid.input"] = g
    out["sigmoid.output"] = torch.sigmoid(g)

    x = rand(gen, 2, 8, 5, 6)
    gates = torch.sigmoid(rand(gen, 2, 8, 1, 1, scale=2.0))
    out["scale_channels.input"] = x
    out["scale_channels.gates"] = gates
    out["scale_channels.output"] = x * gates
    return out


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        save("conv.pth", conv_goldens(torch.Generator().manual_seed(20240501)))
        save("norm_linear.pth", norm_goldens(torch.Generator().manual_seed(20240502)))
        save("pool.pth", pool_goldens(torch.Generator().manual_seed(20240503)))
        save("elementwise.pth", elementwise_goldens(torch.Generator().manual_seed(20240504)))
    total = sum(p.stat().st_size for p in OUT.glob("*.pth"))
    print(f"total {total} bytes")
    assert total < 1_000_000, "keep the NeuralNet fixtures under 1 MB"
    return 0


if __name__ == "__main__":
    sys.exit(main())
