"""Deterministic "formula weights" for full-size golden tests (numpy float32, bit-exact with Swift).

Every state_dict value of an architecture is a pure function of
    p      the tensor's index in the manifest (torchvision's state_dict order, 0-based),
    i      the element's flat (row-major) index inside the tensor,
    key    the state_dict key (decides the role: conv / linear / BN gamma / ... ),
    shape  the tensor's shape (decides fan-in).
The Swift twin is Tests/VisionModelsTests/FormulaWeights.swift; both must produce the same float32 bit
patterns (pinned by Tests/Fixtures/golden/formula_samples.json, written by tools/make_goldens.py).

Only exactly reproducible arithmetic is used:
  * uint32 wrap-around integer hashing (Chris Wellons' "lowbias32" finaliser);
  * a 24-bit integer converted to float32 (exact) and scaled by a power of two (exact);
  * float32 multiply and add, one rounding each, in the same order in both languages (no FMA);
  * a scale computed as sqrt(G / fan_in) in float64 (IEEE division and sqrt are correctly rounded) and
    then rounded once to float32.

Formula (all arithmetic uint32 mod 2^32, then float32):
    mix(x)  = lowbias32: x ^= x>>16; x *= 0x7FEB352D; x ^= x>>15; x *= 0x846CA68B; x ^= x>>16
    k_p     = mix(p * 0x9E3779B9 + salt)                     (per-tensor key; salt = 0x632BE5AB, or
                                                              LINEAR_SALT for linear weights, see below)
    h       = mix(i ^ k_p)                                   (per-element hash)
    m       = h >> 8                                         (24-bit integer)
    u       = float32(m) * 2^-24                             in [0, 1), exact
    s       = float32(m) * 2^-23 - 1                         in [-1, 1), exact
Roles, by key suffix and shape (first match wins):
    *.num_batches_tracked            0
    *.running_mean                   s * 0.125
    *.running_var                    u + 0.5                 in [0.5, 1.5)
    *.weight, ndim 4 (conv)          s * f32(sqrt(6 / fan_in))    fan_in = shape[1]*shape[2]*shape[3]
    *.weight, ndim 2 (linear)        s * f32(sqrt(3 / fan_in))    fan_in = shape[1]
    *.weight, ndim 1 (norm gamma)    u * width + low, by the norm module's last name segment:
                                         bn2, bn3 -> [0.25, 0.5)  (the residual branch's BNs after the
                                                                    first: BasicBlock bn2, Bottleneck bn2+bn3),
                                                     or ARCH_RESIDUAL_GAMMA[arch] for the very deep
                                                     CIFAR nets (resnet110, resnet1202)
                                         else     -> [0.75, 1.25) (stem bn1, block bn1, downsample.1,
                                                                    DenseNet norm*)
    *.bias                           s * 0.125
    anything else                    s * 0.125
Linear weights use LINEAR_SALT = 1531 instead of 0x632BE5AB (the first salt for which all 14
torchvision architectures' top-6 logits are separated by > 1e-3 * max|logit| at both golden inputs),
except for the architectures listed in ARCH_LINEAR_SALTS, which use their own salt there (the
architecture's name is then an input of the formula: `values(key, shape, p, arch)`; it also selects
ARCH_RESIDUAL_GAMMA).
Input tensors (seed): k = mix(seed * 0x9E3779B9 + 0x7F4A7C15), e_i = s(mix(i ^ k)).
    Any shape but 4-D: value_i = e_i (uniform in [-1, 1)).
    NCHW ("image-like", so that global statistics differ between images):
        plane = n*C + c;  o = s(mix(plane ^ mix(k ^ 0x27D4EB2F)))                       per-plane offset
        j = plane << 16 | (y >> 4) << 8 | (x >> 4);  g = s(mix(j ^ mix(k ^ 0x5BD1E995)))  per 16x16 cell
        value = (o * 0.5 + g * 0.25) + e_i * 0.25            in [-1, 1)
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

TENSOR_SALT = 0x632BE5AB
# The salt of linear (classifier) weights. Chosen by `tools/make_goldens.py --search-linear-salt`: the
# first value from 0 up for which every architecture's logits at both golden inputs have their top 6
# separated by more than 1e-3 * max|logit|. It only changes the classifier, so the search reuses the
# pre-logits of one forward pass per architecture and input.
LINEAR_SALT = 1531
# Per-architecture classifier salts, for architectures added later for which LINEAR_SALT does not
# separate the top 6 (`tools/make_goldens.py --search-arch-salts`: the first salt from 0 that passes for
# that architecture). Architectures not listed use LINEAR_SALT; every other role ignores the architecture.
# Per-architecture (low, width) of the bn2/bn3 gamma, replacing (0.25, 0.25) for architectures whose
# residual stream would otherwise grow without bound: with 200 BasicBlocks per stage (resnet1202) the
# default range grows activations by ~1e9 per stage (max|logit| 1e28); resnet110 reaches max|tap| 175.
# Powers of two, so the float32 constants are exact in both languages.
ARCH_RESIDUAL_GAMMA: dict[str, tuple[float, float]] = {
    "resnet110": (0.125, 0.125),
    "resnet1202": (0.03125, 0.03125),
}
ARCH_LINEAR_SALTS: dict[str, int] = {
    "seresnet18": 1,
    "seresnet34": 1,
    "seresnet101": 0,
    "se_resnet50": 0,
    "se_resnext101_32x4d": 2,
}
INPUT_SALT = 0x7F4A7C15
GOLDEN = 0x9E3779B9

# (low, width) of BN gamma by the module's last name segment; other norms use DEFAULT_GAMMA.
GAMMA_RANGES = {"bn2": (0.25, 0.25), "bn3": (0.25, 0.25)}
DEFAULT_GAMMA = (0.75, 0.5)
SMALL = 0.125  # amplitude of running_mean, biases and the fallback role
CONV_G = 6.0   # conv weight bound sqrt(CONV_G / fan_in): He-uniform (gain sqrt 2)
LINEAR_G = 3.0  # linear weight bound sqrt(LINEAR_G / fan_in): unit variance per unit input power

_M32 = 0xFFFFFFFF


def _mix_array(x: np.ndarray) -> np.ndarray:
    """lowbias32 on a uint32 array (wrap-around)."""
    x = x.astype(np.uint32, copy=True)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def mix(x: int) -> int:
    """lowbias32 on a Python int (taken mod 2^32)."""
    x &= _M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & _M32
    x ^= x >> 16
    return x


def tensor_key(p: int, salt: int = TENSOR_SALT) -> int:
    return mix((p * GOLDEN + salt) & _M32)


def input_key(seed: int) -> int:
    return mix((seed * GOLDEN + INPUT_SALT) & _M32)


def _m24(key: int, count: int) -> np.ndarray:
    """The 24-bit integers m_i = mix(i ^ key) >> 8 for i in 0..<count, as float32 (exact)."""
    if count >= 1 << 32:
        raise ValueError("tensor too large for 32-bit element indices")
    i = np.arange(count, dtype=np.uint32)
    h = _mix_array(i ^ np.uint32(key))
    return (h >> np.uint32(8)).astype(np.float32)


def _unit(m: np.ndarray) -> np.ndarray:
    return m * np.float32(2.0**-24)


def _sym(m: np.ndarray) -> np.ndarray:
    return m * np.float32(2.0**-23) - np.float32(1.0)


def f32_sqrt_ratio(g: float, fan_in: int) -> np.float32:
    """float32(sqrt(g / fan_in)) with the division and sqrt in float64."""
    return np.float32(math.sqrt(g / float(fan_in)))


def role(key: str, shape) -> str:
    """The role name used by the formula (documentation and tests)."""
    nd = len(shape)
    last = key.rsplit(".", 1)[-1]
    if last == "num_batches_tracked":
        return "num_batches_tracked"
    if last == "running_mean":
        return "running_mean"
    if last == "running_var":
        return "running_var"
    if last == "weight" and nd == 4:
        return "conv_weight"
    if last == "weight" and nd == 2:
        return "linear_weight"
    if last == "weight" and nd == 1:
        return "norm_weight"
    if last == "bias":
        return "bias"
    return "other"


def gamma_range(key: str, arch: str | None = None):
    parts = key.split(".")
    module = parts[-2] if len(parts) >= 2 else ""
    if module in GAMMA_RANGES and arch in ARCH_RESIDUAL_GAMMA:
        return ARCH_RESIDUAL_GAMMA[arch]
    return GAMMA_RANGES.get(module, DEFAULT_GAMMA)


def linear_salt(arch: str | None = None) -> int:
    """The salt of linear weights of architecture `arch` (None: LINEAR_SALT)."""
    return ARCH_LINEAR_SALTS.get(arch, LINEAR_SALT) if arch is not None else LINEAR_SALT


def values(key: str, shape, p: int, arch: str | None = None) -> np.ndarray:
    """All values of state_dict entry `key` (manifest index p) of architecture `arch` as a flat float32
    array. `arch` only matters for linear weights of the architectures in ARCH_LINEAR_SALTS and the
    bn2/bn3 gamma of those in ARCH_RESIDUAL_GAMMA."""
    shape = tuple(int(d) for d in shape)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    r = role(key, shape)
    if r == "num_batches_tracked":
        return np.zeros(count, dtype=np.float32)
    salt = linear_salt(arch) if r == "linear_weight" else TENSOR_SALT
    m = _m24(tensor_key(p, salt), count)
    if r == "running_var":
        return _unit(m) + np.float32(0.5)
    if r == "norm_weight":
        low, width = gamma_range(key, arch)
        return _unit(m) * np.float32(width) + np.float32(low)
    if r == "conv_weight":
        fan_in = shape[1] * shape[2] * shape[3]
        return _sym(m) * f32_sqrt_ratio(CONV_G, fan_in)
    if r == "linear_weight":
        return _sym(m) * f32_sqrt_ratio(LINEAR_G, shape[1])
    # running_mean, bias, other
    return _sym(m) * np.float32(SMALL)


CELL_SHIFT = 4  # image-like input: coarse cells of 16x16 pixels
CELL_SALT = 0x5BD1E995
OFFSET_SALT = 0x27D4EB2F


def input_values(shape, seed: int) -> np.ndarray:
    """A flat float32 input tensor in [-1, 1).

    For an NCHW shape it is image-like: value = (0.5*o + 0.25*g) + 0.25*e, with o a per-(n, c)
    offset (brightness), g a per 16x16-cell value and e per-pixel noise, each uniform in [-1, 1).
    Other shapes get plain uniform noise e."""
    shape = tuple(int(d) for d in shape)
    count = int(np.prod(shape, dtype=np.int64))
    k = input_key(seed)
    e = _sym(_m24(k, count))
    if len(shape) != 4:
        return e
    n, c, h, w = shape
    if h > 4096 or w > 4096 or n * c >= 1 << 16:
        raise ValueError("input too large for the image-like formula")
    k_cell = mix(k ^ CELL_SALT)
    k_off = mix(k ^ OFFSET_SALT)
    plane = np.arange(n * c, dtype=np.uint32)
    o = _sym((_mix_array(plane ^ np.uint32(k_off)) >> np.uint32(8)).astype(np.float32))
    cy = (np.arange(h, dtype=np.uint32) >> np.uint32(CELL_SHIFT))
    cx = (np.arange(w, dtype=np.uint32) >> np.uint32(CELL_SHIFT))
    j = (plane[:, None, None] << np.uint32(16)) | (cy[None, :, None] << np.uint32(8)) | cx[None, None, :]
    g = _sym((_mix_array(j ^ np.uint32(k_cell)) >> np.uint32(8)).astype(np.float32))
    o = np.broadcast_to(o[:, None, None], (n * c, h, w))
    v = (o * np.float32(0.5) + g * np.float32(0.25)) + e.reshape(n * c, h, w) * np.float32(0.25)
    return v.reshape(-1).astype(np.float32, copy=False)


def state_dict(manifest, torch_module=None, arch: str | None = None):
    """{key: torch tensor} for a manifest [(key, shape)] of architecture `arch`, num_batches_tracked as
    int64 0."""
    import torch

    out = {}
    for p, (key, shape) in enumerate(manifest):
        if role(key, shape) == "num_batches_tracked":
            out[key] = torch.zeros(tuple(shape), dtype=torch.int64)
        else:
            out[key] = torch.from_numpy(values(key, shape, p, arch).reshape(tuple(shape)))
    return out


def input_tensor(shape, seed: int):
    import torch

    return torch.from_numpy(input_values(shape, seed).reshape(tuple(shape)))


def sha256_of_all(manifest, arch: str | None = None) -> str:
    """SHA-256 over every entry's float32 little-endian values, in manifest order (num_batches_tracked
    contributes its value 0 as one float32)."""
    h = hashlib.sha256()
    for p, (key, shape) in enumerate(manifest):
        h.update(values(key, shape, p, arch).astype("<f4").tobytes())
    return h.hexdigest()


def read_manifest(path):
    """[(key, shape tuple)] from Tests/Fixtures/manifests/<arch>.txt."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            key, _, dims = line.partition(" ")
            shape = () if dims in ("", "-") else tuple(int(d) for d in dims.split(","))
            out.append((key, shape))
    return out
