#!/usr/bin/env python3
"""Write a real-size torchvision resnet50 state dict for load-time benchmarks.

    .venv-ref/bin/python tools/make_bench_checkpoint.py            # -> bench-data/resnet50.pth

Random initialisation with a fixed seed (torch.manual_seed(0)): the file has the exact key set,
shapes, dtypes and byte layout of torchvision's ResNet50_Weights files (modern zip format,
~98 MB, 320 tensors incl. num_batches_tracked), only the values differ. bench-data/ is git-ignored.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def import_torchvision():
    # The torchvision wheel is a CUDA build whose C ops cannot load against CPU torch; define the two
    # op schemas it registers at import time and keep the library object alive (REFERENCE-PYTHON.md).
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision

    return torchvision, lib


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "bench-data" / "resnet50.pth")
    ap.add_argument("--legacy", action="store_true",
                    help="write the legacy magic-number stream instead of the zip format")
    args = ap.parse_args()

    torchvision, _lib = import_torchvision()
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    sd = model.state_dict()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, args.out, _use_new_zipfile_serialization=not args.legacy)

    loaded = torch.load(args.out, weights_only=True)
    assert list(loaded) == list(sd) and all(torch.equal(loaded[k], sd[k]) for k in sd)
    size = args.out.stat().st_size
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    n_params = sum(v.numel() for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    print(f"wrote {args.out} ({size} bytes, {len(sd)} tensors, {n_params} values, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
