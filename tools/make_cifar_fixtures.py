#!/usr/bin/env python3
"""Tiny CIFAR-10 fixtures in both official layouts, and numpy pickles for the unpickler tests.

Run from the repository root with the reference environment (../shared/reference/REFERENCE-PYTHON.md):
    .venv-ref/bin/python tools/make_cifar_fixtures.py

Writes Tests/Fixtures/cifar10/:
  cifar-10-batches-bin/  data_batch_1..5.bin, test_batch.bin, batches.meta.txt: records of one label
                         byte and 3072 pixel bytes (R, G, B planes), as the official binary release;
  cifar-10-batches-py/   data_batch_1..5, test_batch, batches.meta: the same images as Python 2
                         cPickle protocol-2 pickles, written opcode by opcode exactly as the official
                         python release is laid out (py2 str keys and data as SHORT_BINSTRING/BINSTRING,
                         numpy.core.multiarray._reconstruct + BUILD for the array);
  variants/              one batch re-pickled by Python 3 (protocols 2 and 4, numpy 2's own
                         __reduce__, `numpy._core.multiarray`), and numpy arrays of other dtypes,
                         orders and byte orders, plus files the unpickler must refuse;
  expected.json          labels, SHA-256 of every image's pixels, torchvision's CIFAR10 +
                         ToTensor + Normalize output for the first 4 test images (SHA-256 of the float32
                         bytes), and the values of the numpy variants.

The images are random (seeded): 12 training images in batches of 3, 2, 3, 2, 2 and 5 test images.
torchvision.datasets.CIFAR10 reads the python layout (its MD5 check of the real release is skipped).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "Tests" / "Fixtures" / "cifar10"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_COUNTS = [3, 2, 3, 2, 2]
TEST_COUNT = 5


class Py2Pickle:
    """Emits the protocol-2 opcodes Python 2's cPickle wrote for the CIFAR-10 batches."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")
        self.memo = 0

    def put(self) -> None:
        self.out += b"q" + bytes([self.memo]) if self.memo < 256 else b"r" + struct.pack("<I", self.memo)
        self.memo += 1

    def str_(self, s: bytes) -> None:  # a py2 str
        if len(s) < 256:
            self.out += b"U" + bytes([len(s)]) + s
        else:
            self.out += b"T" + struct.pack("<i", len(s)) + s
        self.put()

    def int_(self, v: int) -> None:
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.out += b"M" + struct.pack("<H", v)
        else:
            self.out += b"J" + struct.pack("<i", v)

    def global_(self, module: str, name: str) -> None:
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        self.put()

    def array_u1(self, a: np.ndarray) -> None:
        self.global_("numpy.core.multiarray", "_reconstruct")
        self.global_("numpy", "ndarray")
        self.int_(0)
        self.out += b"\x85"  # TUPLE1
        self.put()
        self.str_(b"b")
        self.out += b"\x87R"  # TUPLE3 REDUCE
        self.put()
        self.out += b"("  # MARK: state tuple
        self.int_(1)
        for d in a.shape:
            self.int_(d)
        self.out += b"\x86"  # TUPLE2 (shape)
        self.put()
        self.global_("numpy", "dtype")
        self.str_(b"u1")
        self.int_(0)
        self.int_(1)
        self.out += b"\x87R"
        self.put()
        self.out += b"("
        self.int_(3)
        self.str_(b"|")
        self.out += b"NNN"
        self.out += b"J" + struct.pack("<i", -1) + b"J" + struct.pack("<i", -1)
        self.int_(0)
        self.out += b"tb"  # TUPLE BUILD (dtype state)
        self.out += b"\x89"  # NEWFALSE (not Fortran order)
        self.str_(a.tobytes())
        self.out += b"tb"  # TUPLE BUILD (array state)

    def batch(self, label: bytes, labels: list[int], data: np.ndarray, filenames: list[bytes]) -> bytes:
        self.out += b"}"
        self.put()
        self.out += b"("
        self.str_(b"data")
        self.array_u1(data)
        self.str_(b"labels")
        self.out += b"]"
        self.put()
        self.out += b"("
        for v in labels:
            self.int_(v)
        self.out += b"e"  # APPENDS
        self.str_(b"batch_label")
        self.str_(label)
        self.str_(b"filenames")
        self.out += b"]"
        self.put()
        self.out += b"("
        for f in filenames:
            self.str_(f)
        self.out += b"e"
        self.out += b"u."  # SETITEMS STOP
        return bytes(self.out)

    def meta(self) -> bytes:
        self.out += b"}"
        self.put()
        self.out += b"("
        self.str_(b"num_cases_per_batch")
        self.int_(10000)
        self.str_(b"label_names")
        self.out += b"]"
        self.put()
        self.out += b"("
        for c in CLASSES:
            self.str_(c.encode())
        self.out += b"e"
        self.str_(b"num_vis")
        self.int_(3072)
        self.out += b"u."
        return bytes(self.out)


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def main() -> int:
    rng = np.random.default_rng(10)
    binary = OUT / "cifar-10-batches-bin"
    python = OUT / "cifar-10-batches-py"
    variants = OUT / "variants"
    for d in (binary, python, variants):
        shutil.rmtree(d, ignore_errors=True)  # the README beside them is kept
        d.mkdir(parents=True)

    def make(n: int) -> tuple[np.ndarray, list[int]]:
        # Smooth-ish images (so a resize or crop would be meaningful) plus noise, random labels.
        base = rng.integers(0, 256, size=(n, 3, 1, 1))
        y, x = np.mgrid[0:32, 0:32]
        img = base + 3 * (x + y)[None, None] + rng.integers(-20, 21, size=(n, 3, 32, 32))
        return np.clip(img, 0, 255).astype(np.uint8).reshape(n, 3072), [int(v) for v in rng.integers(0, 10, size=n)]

    expected: dict = {"generator": "tools/make_cifar_fixtures.py", "train": [], "test": []}
    batches = [(f"data_batch_{i + 1}", f"training batch {i + 1} of 5", *make(c)) for i, c in enumerate(TRAIN_COUNTS)]
    batches.append(("test_batch", "testing batch 1 of 1", *make(TEST_COUNT)))
    for name, label, data, labels in batches:
        records = b"".join(bytes([l]) + row.tobytes() for l, row in zip(labels, data))
        (binary / f"{name}.bin").write_bytes(records)
        filenames = [f"img_{name}_{i}.png".encode() for i in range(len(labels))]
        (python / name).write_bytes(Py2Pickle().batch(label.encode(), labels, data, filenames))
        split = "test" if name == "test_batch" else "train"
        for l, row in zip(labels, data):
            expected[split].append({"label": l, "sha256": sha256(row.tobytes())})
    (binary / "batches.meta.txt").write_text("\n".join(CLASSES) + "\n\n")
    (python / "batches.meta").write_bytes(Py2Pickle().meta())

    # The hand-written pickles load in Python exactly as the real ones do.
    with open(python / "data_batch_1", "rb") as f:
        d = pickle.load(f, encoding="bytes")
    assert d[b"labels"] == batches[0][3] and np.array_equal(d[b"data"], batches[0][2])

    # torchvision reads the python layout; its ToTensor + Normalize output is the golden.
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision
    import torchvision.transforms as T

    # The fixtures are not the real release: skip torchvision's MD5 checks of its files.
    torchvision.datasets.CIFAR10._check_integrity = lambda self: True
    torchvision.datasets.cifar.check_integrity = lambda *args, **kwargs: True
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    ds = torchvision.datasets.CIFAR10(str(OUT), train=False, transform=T.Compose([T.ToTensor(), T.Normalize(mean, std)]))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)
    images, labels = next(iter(loader))
    expected["torchvision_test_batch0"] = {
        "mean": mean, "std": std, "shape": list(images.shape), "labels": labels.tolist(),
        "sha256": sha256(images.numpy().astype("<f4").tobytes()),
        "first_values": [float(v) for v in images.reshape(-1)[:8]],
    }
    train = torchvision.datasets.CIFAR10(str(OUT), train=True)
    assert len(train) == sum(TRAIN_COUNTS) and train.targets == [e["label"] for e in expected["train"]]
    assert train.classes == CLASSES

    # Variants: Python 3 pickles of the same batch (numpy 2's own reduce), and other arrays.
    d3 = {"data": batches[0][2], "labels": batches[0][3], "batch_label": "training batch 1 of 5"}
    for protocol in (2, 4):
        (variants / f"data_batch_1_py3_protocol{protocol}").write_bytes(pickle.dumps(d3, protocol=protocol))
    arrays = {
        "f4_big_endian": np.arange(6, dtype=">f4").reshape(2, 3) / 4,
        "i8_fortran": np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4) - 5),
        "f8": np.array([1.5, -2.25, 1e100], dtype=np.float64),
        "bool": np.array([True, False, True]),
        "u1_scalar": np.array(7, dtype=np.uint8),
        "i2_empty": np.zeros((0, 3), dtype=np.int16),
        "f2": np.array([0.5, -1.0, 65504.0], dtype=np.float16),
    }
    (variants / "arrays_protocol2.pkl").write_bytes(pickle.dumps(arrays, protocol=2))
    (variants / "arrays_protocol4.pkl").write_bytes(pickle.dumps(arrays, protocol=4))
    expected["arrays"] = {k: {"shape": list(v.shape), "values": [float(x) for x in np.ravel(v, order="C")]}
                          for k, v in arrays.items()}
    # Refused: object arrays (their data is a list of arbitrary objects), structured dtypes, and
    # anything that calls a function off the allow-list.
    (variants / "refuse_object_array.pkl").write_bytes(pickle.dumps(np.array([1, "a", None], dtype=object), protocol=2))
    (variants / "refuse_structured.pkl").write_bytes(
        pickle.dumps(np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]), protocol=2))
    (variants / "refuse_frombuffer_protocol5.pkl").write_bytes(pickle.dumps(np.arange(3, dtype=np.int32), protocol=5))
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT.relative_to(REPO)} ({total} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
