"""Re-save the small DenseNet golden checkpoint the way the released torchvision DenseNet files and
old training scripts look: legacy (non-zip) torch.save stream, pre-0.4 layer names (`norm.1`,
`conv.2`, ...), no `num_batches_tracked`, wrapped as {'state_dict': {'module.' + key: ...}, 'epoch': 90}.

Run from the repository root with the reference environment (torch 2.13):
    .venv-ref/bin/python tools/make_legacy_densenet_fixture.py
Reads Tests/Fixtures/golden/small/small_densenet.pth, writes
Tests/Fixtures/golden/legacy/small_densenet_legacy.pth.
"""
import re
from collections import OrderedDict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
src = ROOT / "Tests/Fixtures/golden/small/small_densenet.pth"
dst = ROOT / "Tests/Fixtures/golden/legacy/small_densenet_legacy.pth"

sd = torch.load(src, weights_only=True)
pattern = re.compile(r"^(.*denselayer\d+\.)(norm|relu|conv)([12])\.(weight|bias|running_mean|running_var)$")
old = OrderedDict()
for k, v in sd.items():
    if k.endswith("num_batches_tracked"):
        continue
    m = pattern.match(k)
    key = f"{m.group(1)}{m.group(2)}.{m.group(3)}.{m.group(4)}" if m else k
    old["module." + key] = v.clone()
dst.parent.mkdir(parents=True, exist_ok=True)
torch.save({"epoch": 90, "state_dict": old}, dst, _use_new_zipfile_serialization=False)
print(f"wrote {dst.relative_to(ROOT)} ({dst.stat().st_size} bytes, {len(old)} tensors)")
