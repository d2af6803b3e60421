#!/usr/bin/env python3
"""Checks that a file written by `convert-weights convert` loads in Python and computes what the source
checkpoint computes.

    .venv-ref/bin/python tools/check_roundtrip.py SOURCE CONVERTED.safetensors --arch NAME [--arch-config FILE]
        [--size HxW] [--batch N] [--seed S] [--dtype-tolerance]

1. `safetensors.torch.load_file(CONVERTED)` and its `__metadata__` (printed);
2. the PyTorch module of the architecture — torchvision's, or for Keras flavors torchvision's modules
   arranged as Keras computes (tools/reference_taps.py) — `load_state_dict(..., strict=True)`;
3. the SOURCE run by its own framework (Keras for Keras HDF5, else torch) on the same deterministic input;
4. every tap compared: max |converted - source| / max |source| must be <= 1e-4 (the numerics bound of
   DESIGN.md; with --dtype-tolerance, 1e-2 for f16/bf16 outputs), and the top-5 classes identical.
Prints one line per tap and PASS/FAIL; exit status 0 only on PASS.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import reference_taps as rt  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source")
    p.add_argument("converted")
    p.add_argument("--arch", required=True)
    p.add_argument("--arch-config")
    p.add_argument("--size", default="224x224")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dtype-tolerance", action="store_true", help="accept 1e-2 relative error (f16/bf16 outputs)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line too")
    a = p.parse_args(argv)
    c = rt.full_config(a.arch, a.arch_config)
    h, w = (int(v) for v in a.size.lower().split("x"))
    torch.set_num_threads(2)

    with safe_open(a.converted, "pt") as f:
        metadata = f.metadata() or {}
    state = load_file(a.converted)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    model = rt.torch_model(c)
    result = model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
    model.eval()
    x = rt.deterministic_input(a.batch, h, w, a.seed)
    ours = rt.torch_taps(model, c, x)
    _, source, framework = rt.reference(a.source, c, a.batch, h, w, a.seed)

    bound = 1e-2 if a.dtype_tolerance else 1e-4
    ok = True
    rows = []
    print(f"{a.converted}: {len(state)} tensors, load_state_dict(strict=True): {result}")
    print(f"metadata: {json.dumps(metadata, sort_keys=True)}")
    print(f"source {a.source} run by {framework}")
    for tap in rt.tap_names(c):
        if tap not in source:
            continue
        r, s = ours[tap], source[tap]
        scale = float(s.abs().max())
        err = float((r - s).abs().max())
        rel = err / scale if scale > 0 else err
        good = rel <= bound
        ok = ok and good
        rows.append(dict(tap=tap, max_abs=err, rel=rel))
        print(f"  {tap:12s} {str(list(s.shape)):18s} max|src| {scale:10.4g}  max abs err {err:.3e}  rel {rel:.3e}  {'ok' if good else 'FAIL'}")
    k = min(5, ours["logits"].shape[1])
    top_ours = ours["logits"].topk(k, dim=1).indices
    top_src = source["logits"].topk(k, dim=1).indices
    same = bool((top_ours == top_src).all())
    ok = ok and same
    print(f"  top-{k} identical: {same}")
    print("PASS" if ok else "FAIL")
    if a.json:
        print(json.dumps(dict(converted=a.converted, arch=a.arch, ok=ok, top5=same, taps=rows)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
