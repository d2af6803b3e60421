#!/usr/bin/env python3
"""Write Tests/Fixtures/manifests/<arch>.txt: every state_dict key and shape of the reference models.

Run from the repository root:
    .venv-ref/bin/python tools/make_manifests.py              # every architecture
    .venv-ref/bin/python tools/make_manifests.py seresnet50   # some

One line per state_dict entry, in the reference's order: `<key> <d0,d1,...>`; a 0-d tensor
(num_batches_tracked) is written `<key> -`. The first line is a header comment:
`# <arch> params=<sum of numel over model.parameters()> keys=<number of state_dict entries>`.

Reference models (`reference_model(arch)`):
  * torchvision 0.28: `torchvision.models.<arch>()` (TORCHVISION_ARCHS);
  * timm: `timm.create_model(<timm name>, pretrained=False)` for the SE networks, under our names
    (TIMM_SE_ARCHS: same name in timm; CADENE_SE_ARCHS: Cadene's names -> timm's `legacy_*`);
  * tools/cifar_resnet.py for the CIFAR ResNets (CIFAR_ARCHS).
The counts are checked against EXPECTED (shared/reference/FORMATS.md sections 2.1, 2.2, 3.3, 3.4 where
it has them; for the CIFAR nets a hand count in tools/cifar_resnet.py that agrees with the ResNet paper's
table 6). Every manifest is also checked structurally (SE widths, stride/kernel placement) by
`check_structure`, and the CIFAR depth-8 definition against weights/examples/cifar_resnet8_random.pth.
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "manifests"

TORCHVISION_ARCHS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet161", "densenet169", "densenet201",
]

# timm ResNets with SE (torchvision names + `se.fc1/fc2`): our name == timm's name.
TIMM_SE_ARCHS = {
    name: name for name in [
        "seresnet18", "seresnet34", "seresnet50", "seresnet101", "seresnet152",
        "seresnext50_32x4d", "seresnext101_32x4d",
    ]
}
# Cadene / timm-legacy SENets (`layer0`, `se_module`, `last_linear`): our name -> timm's name.
CADENE_SE_ARCHS = {
    "se_resnet50": "legacy_seresnet50",
    "se_resnet101": "legacy_seresnet101",
    "se_resnet152": "legacy_seresnet152",
    "se_resnext50_32x4d": "legacy_seresnext50_32x4d",
    "se_resnext101_32x4d": "legacy_seresnext101_32x4d",
    "senet154": "legacy_senet154",
    "legacy_seresnet18": "legacy_seresnet18",
    "legacy_seresnet34": "legacy_seresnet34",
}
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from cifar_resnet import CIFAR_ARCHS, CifarResNet, cifar_resnet, expected_params  # noqa: E402

SE_ARCHS = list(TIMM_SE_ARCHS) + list(CADENE_SE_ARCHS)
ARCHS = TORCHVISION_ARCHS + SE_ARCHS + list(CIFAR_ARCHS)

# (params, state_dict keys incl. num_batches_tracked, num_batches_tracked keys) from FORMATS.md 2.1/2.2.
EXPECTED = {
    "resnet18": (11_689_512, 122, 20),
    "resnet34": (21_797_672, 218, 36),
    "resnet50": (25_557_032, 320, 53),
    "resnet101": (44_549_160, 626, 104),
    "resnet152": (60_192_808, 932, 155),
    "resnext50_32x4d": (25_028_904, 320, 53),
    "resnext101_32x8d": (88_791_336, 626, 104),
    "resnext101_64x4d": (83_455_272, 626, 104),
    "wide_resnet50_2": (68_883_240, 320, 53),
    "wide_resnet101_2": (126_886_696, 626, 104),
    "densenet121": (7_978_856, 727, 121),
    "densenet161": (28_681_000, 967, 161),
    "densenet169": (14_149_480, 1015, 169),
    "densenet201": (20_013_928, 1207, 201),
    # timm 1.0.31. FORMATS.md 3.3/3.4 give legacy_seresnet18 11,778,592 / 154 keys, (legacy_)seresnet50
    # 28,088,024 / 384, legacy_senet154 115,088,984 / 1144; the others are timm's, cross-checked in
    # check_structure (torchvision count + SE params; timm vs legacy differ only by the 64-channel SE width).
    "seresnet18": (11_779_624, 154, 20),
    "seresnet34": (21_960_416, 282, 36),
    "seresnet50": (28_088_024, 384, 53),
    "seresnet101": (49_326_872, 758, 104),
    "seresnet152": (66_821_848, 1132, 155),
    "seresnext50_32x4d": (27_559_896, 384, 53),
    "seresnext101_32x4d": (48_955_416, 758, 104),
    "se_resnet50": (28_088_024, 384, 53),
    "se_resnet101": (49_326_872, 758, 104),
    "se_resnet152": (66_821_848, 1132, 155),
    "se_resnext50_32x4d": (27_559_896, 384, 53),
    "se_resnext101_32x4d": (48_955_416, 758, 104),
    "senet154": (115_088_984, 1144, 157),
    "legacy_seresnet18": (11_778_592, 154, 20),
    "legacy_seresnet34": (21_958_868, 282, 36),
    # CIFAR: expected_params() by hand (paper table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M);
    # keys = 5 per BN + 1 per conv + 2 for the head; option B adds a conv + BN in layer2.0 and layer3.0.
    **{name: (expected_params(depth, option),
              6 + 6 * (depth - 2) + 2 + (12 if option == "B" else 0),
              1 + (depth - 2) + (2 if option == "B" else 0))
       for name, (depth, option) in CIFAR_ARCHS.items()},
}


_TORCHVISION = None


def import_torchvision():
    """torchvision's wheel is a CUDA build whose compiled ops do not load against CPU torch; defining the
    two op schemas first lets `import torchvision` succeed (see shared/reference/REFERENCE-PYTHON.md).
    The returned Library object must stay alive. Idempotent."""
    global _TORCHVISION
    if _TORCHVISION is not None:
        return _TORCHVISION
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision  # noqa: F401

    _TORCHVISION = (lib, torchvision)
    return _TORCHVISION


_TIMM = None


def import_timm():
    """timm imports torchvision: apply the work-around first. Returns (library, timm)."""
    global _TIMM
    if _TIMM is None:
        lib, _ = import_torchvision()
        import timm

        _TIMM = (lib, timm)
    return _TIMM


def reference_model(arch: str):
    """The reference PyTorch module of `arch` (random init, train mode)."""
    if arch in TORCHVISION_ARCHS:
        _lib, torchvision = import_torchvision()
        return getattr(torchvision.models, arch)()
    if arch in TIMM_SE_ARCHS or arch in CADENE_SE_ARCHS:
        _lib, timm = import_timm()
        return timm.create_model(TIMM_SE_ARCHS.get(arch) or CADENE_SE_ARCHS[arch], pretrained=False)
    if arch in CIFAR_ARCHS:
        return cifar_resnet(arch)
    raise KeyError(arch)


def manifest_lines(arch: str, model) -> tuple[list[str], int, int, int]:
    sd = model.state_dict()
    params = sum(p.numel() for p in model.parameters())
    lines = [f"# {arch} params={params} keys={len(sd)}"]
    nbt = 0
    for key, t in sd.items():
        dims = ",".join(str(d) for d in t.shape) if t.dim() > 0 else "-"
        lines.append(f"{key} {dims}")
        nbt += key.endswith("num_batches_tracked")
    return lines, params, len(sd), nbt


def make_divisible(v: float, divisor: int = 8) -> int:
    """timm's make_divisible(v, divisor, round_limit=0) as SEModule calls it (re-implemented as a check)."""
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


def check_structure(arch: str, model) -> list[str]:
    """Assert the facts the Swift graph relies on for the SE and CIFAR variants; returns them as text."""
    import torch.nn as nn

    facts = []
    sd = model.state_dict()
    if arch in TIMM_SE_ARCHS:
        mp = model.maxpool
        assert isinstance(mp, nn.MaxPool2d) and (mp.kernel_size, mp.stride, mp.padding, mp.ceil_mode) == (3, 2, 1, False)
        facts.append("stem conv1 7x7 s2 p3; maxpool 3x3 s2 p1 floor")
        widths = set()
        for name, m in model.named_modules():
            if name.endswith(".se"):
                c = m.fc1.in_channels
                assert m.fc1.out_channels == make_divisible(c / 16, 8) and m.fc1.bias is not None, name
                assert isinstance(m.bn, nn.Identity)
                widths.add((c, m.fc1.out_channels))
        facts.append("SE fc1 C->make_divisible(C/16, 8): " + ", ".join(f"{c}->{r}" for c, r in sorted(widths)))
        b = model.layer2[0]
        if hasattr(b, "conv3"):
            assert b.conv1.stride == (1, 1) and b.conv2.stride == (2, 2)
            facts.append(f"stride on the 3x3 (conv2), groups {b.conv2.groups}")
        else:
            assert b.conv1.stride == (2, 2)
            facts.append("BasicBlock: stride on conv1 (3x3)")
        for s in (2, 3, 4):
            assert getattr(model, f"layer{s}")[0].downsample[0].kernel_size == (1, 1)
        facts.append("downsample 1x1 in every stage; head fc")
    elif arch in CADENE_SE_ARCHS:
        p0 = model.pool0
        assert (p0.kernel_size, p0.stride, p0.padding, p0.ceil_mode) == (3, 2, 0, True)
        deep = hasattr(model.layer0, "conv3")
        if deep:
            convs = [model.layer0.conv1, model.layer0.conv2, model.layer0.conv3]
            assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [((3, 3), (2, 2), (1, 1)), ((3, 3), (1, 1), (1, 1)), ((3, 3), (1, 1), (1, 1))]
            facts.append("layer0: 3x(3x3 conv+BN+ReLU) " + "->".join(str(c) for c in [3] + [c.out_channels for c in convs])
                         + ", first stride 2; pool0 3x3 s2 p0 ceil")
        else:
            c = model.layer0.conv1
            assert (c.kernel_size, c.stride, c.padding) == ((7, 7), (2, 2), (3, 3))
            facts.append("layer0: conv1 7x7 s2 p3 + bn1 + relu; pool0 3x3 s2 p0 ceil")
        widths = set()
        for name, m in model.named_modules():
            if name.endswith(".se_module"):
                c = m.fc1.in_channels
                assert m.fc1.out_channels == c // 16 and m.fc1.bias is not None, name
                widths.add((c, m.fc1.out_channels))
        facts.append("SE fc1 C->C//16: " + ", ".join(f"{c}->{r}" for c, r in sorted(widths)))
        b = model.layer2[0]
        kind = type(b).__name__
        if kind == "SEResNetBottleneck":
            assert b.conv1.stride == (2, 2) and b.conv2.stride == (1, 1)
            facts.append("SEResNetBottleneck: stride on conv1 (first 1x1)")
        elif kind in ("SEResNeXtBottleneck", "SEBottleneck"):
            assert b.conv1.stride == (1, 1) and b.conv2.stride == (2, 2)
            facts.append(f"{kind}: stride on conv2 (3x3), groups {b.conv2.groups}, widths conv1 {b.conv1.out_channels} "
                         f"conv2 {b.conv2.out_channels} conv3 {b.conv3.out_channels} (planes 128)")
        else:
            assert kind == "SEResNetBlock" and b.conv1.stride == (2, 2)
            facts.append("SEResNetBlock: stride on conv1 (3x3); ReLU after bn2 BEFORE the SE module")
        ks = []
        for s in (1, 2, 3, 4):
            ds = getattr(model, f"layer{s}")[0].downsample
            ks.append("-" if ds is None else f"{ds[0].kernel_size[0]}x{ds[0].kernel_size[0]} s{ds[0].stride[0]} p{ds[0].padding[0]}")
        facts.append("downsample per stage: " + ", ".join(ks))
        assert "last_linear.weight" in sd and type(model.global_pool).__name__ == "SelectAdaptivePool2d"
        facts.append(f"head: adaptive avg pool + last_linear (dropout {model.drop_rate}, inactive in eval)")
    elif arch in CIFAR_ARCHS:
        depth, option = CIFAR_ARCHS[arch]
        n = (depth - 2) // 6
        assert [len(getattr(model, f"layer{s}")) for s in (1, 2, 3)] == [n, n, n]
        head = "linear" if option == "A" else "fc"
        assert f"{head}.weight" in sd and not any(k.startswith("maxpool") for k in sd)
        ds = sorted({k.rsplit(".downsample", 1)[0] for k in sd if ".downsample." in k})
        assert ds == ([] if option == "A" else ["layer2.0", "layer3.0"])
        facts.append(f"n={n}; option {option}: " + ("zero-pad shortcut, no params" if option == "A" else
                                                   "downsample.0/1 (1x1 s2 + BN) in layer2.0, layer3.0") + f"; head {head}")
    return facts


def check_cifar_example() -> str:
    """weights/examples/cifar_resnet8_random.pth (tools/make_fixtures.py, akamaster layout, `module.` prefix,
    nested in `state_dict`) has exactly our depth-8 option-A names, order and shapes, and computes the same."""
    import torch

    path = ROOT / "weights" / "examples" / "cifar_resnet8_random.pth"
    if not path.exists():
        return f"{path.relative_to(ROOT)} not found: skipped"
    ckpt = torch.load(path, weights_only=True)
    ex = {k[len("module."):]: v for k, v in ckpt["state_dict"].items()}
    model = CifarResNet(1, "A")
    ours = model.state_dict()
    assert list(ex) == list(ours), "key names or order differ"
    assert all(ex[k].shape == ours[k].shape for k in ours)
    model.load_state_dict(ex, strict=True)
    model.eval()
    import make_fixtures  # the definition that wrote the example

    theirs = make_fixtures.CifarResNet(n=1)
    theirs.load_state_dict(ex, strict=True)
    theirs.eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        same = torch.equal(model(x), theirs(x))
    assert same
    return f"{path.relative_to(ROOT)}: {len(ours)} keys, names/order/shapes = tools/cifar_resnet.py n=1, identical logits"


def main() -> int:
    only = sys.argv[1:]
    unknown = [a for a in only if a not in ARCHS]
    if unknown:
        print(f"unknown architectures: {unknown}")
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    ok = True
    for arch in only or ARCHS:
        model = reference_model(arch)
        lines, params, keys, nbt = manifest_lines(arch, model)
        want = EXPECTED[arch]
        status = "ok" if (params, keys, nbt) == want else f"MISMATCH (expected {want})"
        ok &= status == "ok"
        (OUT / f"{arch}.txt").write_text("\n".join(lines) + "\n")
        print(f"{arch:20s} params={params:>11,d} keys={keys:4d} num_batches_tracked={nbt:4d}  {status}")
        for fact in check_structure(arch, model):
            print(f"{'':22s}{fact}")
    print(check_cifar_example())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
