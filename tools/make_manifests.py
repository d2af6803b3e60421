#!/usr/bin/env python3
"""Write Tests/Fixtures/manifests/<arch>.txt: every state_dict key and shape of torchvision's models.

Run from the repository root:
    .venv-ref/bin/python tools/make_manifests.py

One line per state_dict entry, in torchvision's order: `<key> <d0,d1,...>`; a 0-d tensor
(num_batches_tracked) is written `<key> -`. The first line is a header comment:
`# <arch> params=<sum of numel over model.parameters()> keys=<number of state_dict entries>`.
The counts are checked against the tables of shared/reference/FORMATS.md sections 2.1 and 2.2.
"""

from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "manifests"

ARCHS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet161", "densenet169", "densenet201",
]

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
}


def import_torchvision():
    """torchvision's wheel is a CUDA build whose compiled ops do not load against CPU torch; defining the
    two op schemas first lets `import torchvision` succeed (see shared/reference/REFERENCE-PYTHON.md).
    The returned Library object must stay alive."""
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision  # noqa: F401

    return lib, torchvision


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


def main() -> int:
    _lib, torchvision = import_torchvision()
    OUT.mkdir(parents=True, exist_ok=True)
    ok = True
    for arch in ARCHS:
        model = getattr(torchvision.models, arch)()
        lines, params, keys, nbt = manifest_lines(arch, model)
        want = EXPECTED[arch]
        status = "ok" if (params, keys, nbt) == want else f"MISMATCH (FORMATS.md says {want})"
        ok &= status == "ok"
        (OUT / f"{arch}.txt").write_text("\n".join(lines) + "\n")
        print(f"{arch:18s} params={params:>11,d} keys={keys:4d} num_batches_tracked={nbt:3d}  {status}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
