#!/usr/bin/env python3
"""Reference activations for `convert-weights verify`, computed by the reference framework itself.

Given any checkpoint and an architecture, runs the framework the weights come from on a deterministic
input and writes the input and every tap's activations to a safetensors file:

    .venv-ref/bin/python tools/reference_taps.py CHECKPOINT --arch NAME [--arch-config FILE.json]
        [-o REF.safetensors] [--batch 2] [--size 224x224] [--seed 1]

Then `convert-weights verify CHECKPOINT --arch NAME --reference REF.safetensors` compares the Swift model.

Frameworks (KERAS_BACKEND=torch is set here):
  * Keras HDF5 (`.h5`, `.weights.h5`) with a Keras flavor (keras_resnet50/101/152, keras_resnet50_caffe,
    keras_densenet121/169/201, or a config with "flavor": "keras" / "keras-caffe"): the keras.applications
    model (classifier_activation=None), `model.load_weights(CHECKPOINT)`, run in NHWC.
  * anything else (torch .pth of any layout torch.load reads, safetensors, flat h5py state dicts): the
    torchvision model (or, for Keras flavors, torchvision's modules arranged as Keras computes: stride on
    the first 1x1, conv biases, batch-norm eps), `load_state_dict(strict=True)`.

Output tensors (float32, NCHW like PyTorch): `input` [N, 3, H, W]; taps `stem`, `layer1..4` (ResNet) or
`denseblock1..4`, `transition1..3` (DenseNet), `prelogits` [N, C], `logits` [N, classes]. The header's
`__metadata__` records the architecture, checkpoint name and SHA-256, framework versions, seed and the
command. The input is `torch.randn` from a `torch.Generator` seeded with --seed, so reruns are identical.

Architecture configs (--arch-config) use Tests/Fixtures/golden/small/configs.json's fields (family, block,
layers, groups, width_per_group, stem_width, stage_widths, num_classes, growth_rate, block_config,
num_init_features, bn_size) plus "flavor" ("torchvision" default, "keras", "keras-caffe"); a file may hold
one config or a map of name -> config.
"""

from __future__ import annotations

import argparse
import re
import hashlib
import json
import os
import pathlib
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch

# torchvision's wheel is a CUDA build: define its two op schemas before import (REFERENCE-PYTHON.md).
_TV_LIB = torch.library.Library("torchvision", "DEF")
_TV_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_TV_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

KERAS_EPS = 1.001e-5
KERAS_DEFAULT_EPS = 1e-3

BUILTIN = {
    # name: config (torchvision names; Keras flavors map onto the same graphs)
    "resnet18": dict(family="resnet", block="BasicBlock", layers=[2, 2, 2, 2]),
    "resnet34": dict(family="resnet", block="BasicBlock", layers=[3, 4, 6, 3]),
    "resnet50": dict(family="resnet", block="Bottleneck", layers=[3, 4, 6, 3]),
    "resnet101": dict(family="resnet", block="Bottleneck", layers=[3, 4, 23, 3]),
    "resnet152": dict(family="resnet", block="Bottleneck", layers=[3, 8, 36, 3]),
    "densenet121": dict(family="densenet", growth_rate=32, block_config=[6, 12, 24, 16], num_init_features=64),
    "densenet161": dict(family="densenet", growth_rate=48, block_config=[6, 12, 36, 24], num_init_features=96),
    "densenet169": dict(family="densenet", growth_rate=32, block_config=[6, 12, 32, 32], num_init_features=64),
    "densenet201": dict(family="densenet", growth_rate=32, block_config=[6, 12, 48, 32], num_init_features=64),
    "keras_resnet50": dict(family="resnet", block="Bottleneck", layers=[3, 4, 6, 3], flavor="keras"),
    "keras_resnet101": dict(family="resnet", block="Bottleneck", layers=[3, 4, 23, 3], flavor="keras"),
    "keras_resnet152": dict(family="resnet", block="Bottleneck", layers=[3, 8, 36, 3], flavor="keras"),
    "keras_resnet50_caffe": dict(family="resnet", block="Bottleneck", layers=[3, 4, 6, 3], flavor="keras-caffe"),
    "keras_densenet121": dict(family="densenet", growth_rate=32, block_config=[6, 12, 24, 16], num_init_features=64, flavor="keras"),
    "keras_densenet169": dict(family="densenet", growth_rate=32, block_config=[6, 12, 32, 32], num_init_features=64, flavor="keras"),
    "keras_densenet201": dict(family="densenet", growth_rate=32, block_config=[6, 12, 48, 32], num_init_features=64, flavor="keras"),
}
TORCHVISION_EXTRA = ["resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]


def cifar_depth(name: str) -> int | None:
    """The depth of a CIFAR ResNet name (resnet8, resnet20, ..., cifar_resnet20_b), if it is one."""
    depth = int(re.sub(r"\D", "", name))
    return depth if depth >= 8 and (depth - 2) % 6 == 0 and name not in BUILTIN else None


def full_config(name: str, config_file: str | None) -> dict:
    """The configuration of `name`: from --arch-config, else built in (torchvision defaults filled in)."""
    if config_file:
        data = json.loads(pathlib.Path(config_file).read_text())
        c = data if "family" in data else data[name]
    elif name in BUILTIN:
        c = BUILTIN[name]
    elif name in TORCHVISION_EXTRA:
        return dict(family="torchvision-builtin", name=name, num_classes=1000)
    elif re.fullmatch(r"resnet\d+|cifar_resnet\d+_b", name) and cifar_depth(name) is not None:
        return dict(family="cifar", depth=cifar_depth(name), option="B" if name.endswith("_b") else "A", num_classes=10, flavor="torchvision")
    else:
        sys.exit(f"unknown architecture {name!r}; give --arch-config")
    c = dict(c)
    c.setdefault("flavor", "torchvision")
    c.setdefault("num_classes", 1000)
    if c["family"] == "resnet":
        c.setdefault("groups", 1)
        c.setdefault("width_per_group", 64)
        c.setdefault("stem_width", 64)
        c.setdefault("stage_widths", [64, 128, 256, 512])
        if c.get("groups") is None:
            c["groups"] = 1
        if c.get("width_per_group") is None:
            c["width_per_group"] = 64
    else:
        c.setdefault("bn_size", 4)
        if c.get("bn_size") is None:
            c["bn_size"] = 4
    c["name"] = name
    return c


def tap_names(c: dict) -> list[str]:
    if c["family"] == "densenet":
        n = len(c["block_config"])
        names = ["stem"]
        for i in range(1, n + 1):
            names.append(f"denseblock{i}")
            if i < n:
                names.append(f"transition{i}")
        return names + ["prelogits", "logits"]
    if c["family"] == "cifar":
        return ["stem", "layer1", "layer2", "layer3", "prelogits", "logits"]
    return ["stem"] + [f"layer{i}" for i in range(1, len(c["layers"]) + 1)] + ["prelogits", "logits"]


# ---------------------------------------------------------------------------------------------------
# torch models


class ConfigurableResNet(torchvision.models.resnet.ResNet):
    """torchvision's ResNet with configurable stem and stage widths (torchvision's own blocks)."""

    def __init__(self, c: dict):
        block = torchvision.models.resnet.BasicBlock if c["block"].lower().startswith("basic") else torchvision.models.resnet.Bottleneck
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = c["stem_width"]
        self.dilation = 1
        self.groups = c["groups"]
        self.base_width = c["width_per_group"]
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        w = c["stage_widths"]
        self.layer1 = self._make_layer(block, w[0], c["layers"][0])
        self.layer2 = self._make_layer(block, w[1], c["layers"][1], stride=2)
        self.layer3 = self._make_layer(block, w[2], c["layers"][2], stride=2)
        self.layer4 = self._make_layer(block, w[3], c["layers"][3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(w[3] * block.expansion, c["num_classes"])


def kerasify_resnet(model: nn.Module, eps: float) -> nn.Module:
    """torchvision modules arranged as Keras's ResNet v1 computes: stride on the first 1x1 (and the
    shortcut), a bias on every convolution, batch-norm `eps`."""
    for m in model.modules():
        if isinstance(m, torchvision.models.resnet.Bottleneck):
            s = m.conv2.stride
            m.conv2.stride = (1, 1)
            m.conv1.stride = s
        if isinstance(m, nn.Conv2d) and m.bias is None:
            m.bias = nn.Parameter(torch.zeros(m.out_channels))
        if isinstance(m, nn.BatchNorm2d):
            m.eps = eps
    return model


def torch_model(c: dict) -> nn.Module:
    if c["family"] == "cifar":
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
        from cifar_resnet import CifarResNet, depth_to_n

        return CifarResNet(depth_to_n(c["depth"]), c["option"], num_classes=c["num_classes"])
    if c["family"] == "torchvision-builtin":
        return getattr(torchvision.models, c["name"])()
    if c["family"] == "resnet":
        model = ConfigurableResNet(c)
        if c["flavor"] in ("keras", "keras-caffe"):
            kerasify_resnet(model, KERAS_DEFAULT_EPS if c["flavor"] == "keras-caffe" else KERAS_EPS)
        return model
    model = torchvision.models.DenseNet(
        growth_rate=c["growth_rate"], block_config=tuple(c["block_config"]), num_init_features=c["num_init_features"],
        bn_size=c["bn_size"], num_classes=c["num_classes"])
    if c["flavor"] == "keras":
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = KERAS_EPS
    return model


def torch_taps(model: nn.Module, c: dict, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    hooks = []

    def keep(name):
        def hook(_m, _i, o):
            out[name] = o.detach().clone()
        return hook

    def keep_input(name):
        def hook(_m, i):
            out[name] = i[0].detach().clone()
        return hook

    if c["family"] == "cifar":
        hooks.append(model.bn1.register_forward_hook(lambda _m, _i, o: out.__setitem__("stem", torch.relu(o).detach().clone())))
        for i in range(1, model.num_stages + 1):
            hooks.append(getattr(model, f"layer{i}").register_forward_hook(keep(f"layer{i}")))
        hooks.append(model.head.register_forward_pre_hook(keep_input("prelogits")))
    elif c["family"] == "densenet":
        f = model.features
        hooks.append(f.pool0.register_forward_hook(keep("stem")))
        n = len(c["block_config"])
        for i in range(1, n + 1):
            hooks.append(getattr(f, f"denseblock{i}").register_forward_hook(keep(f"denseblock{i}")))
            if i < n:
                hooks.append(getattr(f, f"transition{i}").register_forward_hook(keep(f"transition{i}")))
        hooks.append(model.classifier.register_forward_pre_hook(keep_input("prelogits")))
    else:
        hooks.append(model.maxpool.register_forward_hook(keep("stem")))
        for i in range(1, 5):
            hooks.append(getattr(model, f"layer{i}").register_forward_hook(keep(f"layer{i}")))
        hooks.append(model.fc.register_forward_pre_hook(keep_input("prelogits")))
    with torch.no_grad():
        out["logits"] = model(x).detach().clone()
    for h in hooks:
        h.remove()
    return out


def load_torch_state(path: str) -> dict[str, torch.Tensor]:
    """A state dict from a torch file, a safetensors file or a flat h5py file; unwraps common nestings
    and `module.` / `_orig_mod.` prefixes."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        import h5py

        sd = {}
        with h5py.File(path, "r") as h:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    sd[name] = torch.from_numpy(np.array(obj))
            h.visititems(visit)
        return sd
    if len(head) > 8 and head[8:9] == b"{":
        from safetensors.torch import load_file

        return load_file(path)
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ["state_dict_ema", "model_ema", "state_dict", "model_state_dict", "model", "net"]:
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    sd = dict(obj)
    for prefix in ["module.", "_orig_mod."]:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


# ---------------------------------------------------------------------------------------------------
# Keras models


def keras_resnet_caffe(layers_per_stage, stage_widths, classes, input_shape):
    """keras-applications 1.0.8 `resnet50.py` (Keras <= 2.2.4) rebuilt in Keras 3 with its layer names
    (`conv1`, `bn_conv1`, `res2a_branch2a`, `bn2a_branch2a`, `res2a_branch1`, `fc1000`), Keras's default
    batch-norm epsilon (1e-3), stride on the first 1x1, and blocks named a, b, c, ... per stage."""
    import keras
    from keras import layers

    def block(x, filters, stage, letter, stride, shortcut):
        f1, f2, f3 = filters
        conv, bn = f"res{stage}{letter}_branch", f"bn{stage}{letter}_branch"
        y = layers.Conv2D(f1, 1, strides=stride, name=conv + "2a")(x)
        y = layers.BatchNormalization(axis=3, name=bn + "2a")(y)
        y = layers.Activation("relu")(y)
        y = layers.Conv2D(f2, 3, padding="same", name=conv + "2b")(y)
        y = layers.BatchNormalization(axis=3, name=bn + "2b")(y)
        y = layers.Activation("relu")(y)
        y = layers.Conv2D(f3, 1, name=conv + "2c")(y)
        y = layers.BatchNormalization(axis=3, name=bn + "2c")(y)
        if shortcut:
            s = layers.Conv2D(f3, 1, strides=stride, name=conv + "1")(x)
            s = layers.BatchNormalization(axis=3, name=bn + "1")(s)
        else:
            s = x
        y = layers.add([y, s])
        return layers.Activation("relu", name=f"res{stage}{letter}_out")(y)

    inputs = keras.Input(shape=input_shape)
    x = layers.ZeroPadding2D(padding=(3, 3), name="conv1_pad")(inputs)
    x = layers.Conv2D(64, (7, 7), strides=(2, 2), padding="valid", name="conv1")(x)
    x = layers.BatchNormalization(axis=3, name="bn_conv1")(x)
    x = layers.Activation("relu")(x)
    x = layers.ZeroPadding2D(padding=(1, 1), name="pool1_pad")(x)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), name="pool1")(x)
    for s, (count, width) in enumerate(zip(layers_per_stage, stage_widths)):
        for b in range(count):
            x = block(x, [width, width, 4 * width], s + 2, "abcdefghijklmnopqrstuvwxyz"[b], (1 if s == 0 else 2) if b == 0 else 1, b == 0)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(classes, name="fc1000")(x)
    return keras.Model(inputs, x, name="resnet50")


def keras_model(c: dict, input_shape):
    """The Keras model of a Keras-flavor config (keras.applications code where it exists)."""
    import keras
    from keras.src.applications import densenet as kd
    from keras.src.applications import resnet as kr

    if c["family"] == "resnet" and c["flavor"] == "keras-caffe":
        return keras_resnet_caffe(c["layers"], c["stage_widths"], c["num_classes"], input_shape)
    if c["family"] == "resnet":
        assert c["stem_width"] == 64, "keras.applications ResNets have a 64-channel stem"

        def stack_fn(x):
            for s, (count, width) in enumerate(zip(c["layers"], c["stage_widths"])):
                x = kr.stack_residual_blocks_v1(x, width, count, stride1=1 if s == 0 else 2, name=f"conv{s + 2}")
            return x

        return kr.ResNet(stack_fn, False, True, include_top=True, weights=None, input_shape=input_shape, classes=c["num_classes"],
                         classifier_activation=None, name="resnet")
    assert c["num_init_features"] == 64 and c["bn_size"] == 4, "keras.applications DenseNets have 64 initial features, bn_size 4"
    growth = c["growth_rate"]
    original = kd.dense_block

    def dense_block(x, blocks, name):  # keras.applications' dense_block, with the configured growth rate
        for i in range(blocks):
            x = kd.conv_block(x, growth, name=f"{name}_block{i + 1}")
        return x

    kd.dense_block = dense_block
    try:
        return kd.DenseNet(list(c["block_config"]), include_top=True, weights=None, input_shape=input_shape, classes=c["num_classes"],
                           classifier_activation=None)
    finally:
        kd.dense_block = original


def keras_tap_layers(model, c: dict) -> list[str]:
    """Keras layer names whose outputs are the taps, in tap order."""
    if c["family"] == "densenet":
        n = len(c["block_config"])
        names = ["pool1"]
        for i in range(1, n + 1):
            names.append(f"conv{i + 1}_block{c['block_config'][i - 1]}_concat")
            if i < n:
                names.append(f"pool{i + 1}_pool")
        return names + ["avg_pool", "predictions"]
    if c["flavor"] == "keras-caffe":
        letters = "abcdefghijklmnopqrstuvwxyz"
        return ["pool1"] + [f"res{s + 2}{letters[n - 1]}_out" for s, n in enumerate(c["layers"])] + ["avg_pool", "fc1000"]
    return ["pool1_pool"] + [f"conv{s + 2}_block{n}_out" for s, n in enumerate(c["layers"])] + ["avg_pool", "predictions"]


def keras_taps(model, c: dict, x_nchw: torch.Tensor) -> dict[str, torch.Tensor]:
    import keras

    names = keras_tap_layers(model, c)
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    x = np.ascontiguousarray(x_nchw.permute(0, 2, 3, 1).numpy())
    outs = probe.predict(x, verbose=0)
    result = {}
    for tap, o in zip(tap_names(c), outs):
        t = torch.from_numpy(np.array(o, dtype=np.float32))
        if t.dim() == 4:
            t = t.permute(0, 3, 1, 2).contiguous()
        result[tap] = t
    return result


# ---------------------------------------------------------------------------------------------------


def deterministic_input(batch: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, h, w, generator=g, dtype=torch.float32)


def is_hdf5(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def is_keras_hdf5(path: str) -> bool:
    if not is_hdf5(path):
        return False
    import h5py

    with h5py.File(path, "r") as h:
        return "layer_names" in h.attrs or "layer_names0" in h.attrs or "model_weights" in h or "layers" in h


def reference(checkpoint: str, c: dict, batch: int, h: int, w: int, seed: int) -> tuple[torch.Tensor, dict, str]:
    x = deterministic_input(batch, h, w, seed)
    if c["flavor"] in ("keras", "keras-caffe") and is_keras_hdf5(checkpoint):
        import keras

        model = keras_model(c, (h, w, 3))
        model.load_weights(checkpoint)
        return x, keras_taps(model, c, x), f"keras {keras.__version__} ({os.environ['KERAS_BACKEND']} backend)"
    torch.set_num_threads(2)
    model = torch_model(c)
    model.load_state_dict(load_torch_state(checkpoint), strict=True)
    model.eval()
    return x, torch_taps(model, c, x), f"torch {torch.__version__}, torchvision {torchvision.__version__}"


def write_reference(path: str, x: torch.Tensor, taps: dict, metadata: dict) -> None:
    from safetensors.torch import save_file

    tensors = {"input": x.contiguous()}
    for k, v in taps.items():
        tensors[k] = v.to(torch.float32).contiguous()
    save_file(tensors, path, metadata={k: str(v) for k, v in metadata.items()})


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--arch", required=True)
    p.add_argument("--arch-config")
    p.add_argument("-o", "--output")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", default="224x224", help="HxW")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    c = full_config(a.arch, a.arch_config)
    h, w = (int(v) for v in a.size.lower().split("x"))
    x, taps, framework = reference(a.checkpoint, c, a.batch, h, w, a.seed)
    out = a.output or str(pathlib.Path(a.checkpoint).with_suffix("")) + f".{a.arch}.ref.safetensors"
    command = "tools/reference_taps.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_reference(out, x, taps, {
        "arch": a.arch, "checkpoint": os.path.basename(a.checkpoint), "checkpoint_sha256": sha256(a.checkpoint),
        "framework": framework, "input": f"torch.randn({a.batch}, 3, {h}, {w}) from torch.Generator seed {a.seed}",
        "taps": ",".join(t for t in tap_names(c) if t in taps), "command": command,
    })
    print(f"{out}: {', '.join(f'{k} {list(v.shape)}' for k, v in taps.items())} ({framework})")


if __name__ == "__main__":
    main()
