#!/usr/bin/env python3
"""HDF5 files for the Swift HDF5 parser's own tests (HDF5NativeTests): newer-format files it must read,
hand-made hostile files it must refuse with an exact typed error, and SHA-256 digests of every
dataset of every HDF5 fixture, as h5py reads them.

Run from the repository root with the reference environment (h5py 3.16, bundling HDF5 2.0):
    /work/main/.venv-ref/bin/python tools/make_hdf5_hostile.py

Writes Tests/Fixtures/hdf5-hostile/:
  * valid files in formats the Keras fixtures do not use:
      latest_features.h5   libver 'latest': superblock 3, version-2 object headers (lookup3 checksums),
                           compact and dense links (fractal heap + v2 B-tree), dense attributes,
                           layout 5 (single-chunk filtered, implicit index, fixed array
                           unfiltered and gzip), compact layout, '>f2'
      v108_userblock.h5    libver 'v108' (superblock 2) behind a 512-byte userblock
      dense_links.h5       300 hard links in a group, 40 root attributes: indirect fractal heap blocks,
                           v2 B-trees of depth 1
      group_cycle.h5       a group holding a hard link to itself (legal HDF5; the reader refuses the cycle)
  * byte-patched hostile files (each from a small h5py file; the patch is described in expected.json):
      truncated.h5, continuation_past_eof.h5, continuation_cycle.h5, gcol_lying_size.h5,
      dataset_too_big.h5, zero_dim_overflow.h5, chunk_btree_cycle.h5, ohdr_checksum.h5, fletcher32.h5,
      extensible_array_index.h5
  * expected.json: file -> {"kind", "message"} the Swift reader must throw (exact), or {"ok": true}
  * digests.json: file -> dataset path -> {"dtype", "shape", "sha256"} of the stored bytes (in the
    file's byte order), for every file in Tests/Fixtures/hdf5/ and the valid files above.
Deterministic: fixed data, track_times=False.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import struct

import h5py
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "hdf5-hostile"
FIXTURES = ROOT / "Tests" / "Fixtures" / "hdf5"


def values(n: int, dtype="<f4", seed=0) -> np.ndarray:
    return (np.arange(n, dtype=np.float64) * 0.25 - seed).astype(dtype)


def addr(obj) -> int:
    return h5py.h5o.get_info(obj.id).addr


def latest_features(path: pathlib.Path) -> None:
    with h5py.File(path, "w", libver=("latest", "latest"), track_order=False) as f:
        f.attrs["source"] = "tools/make_hdf5_hostile.py"
        f.attrs["fixed"] = np.bytes_("fixed-length")
        many = f.create_group("many")
        for i in range(20):
            many.create_dataset(f"d{i:02d}", data=values(3 + i, seed=i), track_times=False)
        few = f.create_group("few")
        for i in range(3):
            few.create_dataset(f"x{i}", data=values(4, "<f8", seed=i), track_times=False)
        d = f.create_dataset("attrs_dense", data=values(6).reshape(2, 3), track_times=False)
        for i in range(12):
            d.attrs[f"a{i:02d}"] = f"value {i}"
        f.create_dataset(
            "chunked_single", data=values(60).reshape(6, 10), chunks=(6, 10), compression="gzip", shuffle=True, track_times=False
        )
        f.create_dataset("be_f16", data=values(10, ">f2"), track_times=False)
        # Several chunks of a fixed-size dataset: a fixed array index (unfiltered and filtered).
        f.create_dataset("fixed_array", data=values(20).reshape(4, 5), chunks=(2, 5), track_times=False)
        f.create_dataset("fixed_array_gzip", data=values(21 * 5).reshape(21, 5), chunks=(4, 3), compression="gzip", track_times=False)
        # Compact layout and an implicit chunk index need the low-level API.
        space = h5py.h5s.create_simple((5,))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        dcpl.set_obj_track_times(False)
        dset = h5py.h5d.create(f.id, b"compact", h5py.h5t.STD_I32LE, space, dcpl=dcpl)
        dset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([5, -4, 3, -2, 1], "<i4"))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((2, 2))
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        dcpl.set_obj_track_times(False)
        space = h5py.h5s.create_simple((3, 5))
        dset = h5py.h5d.create(f.id, b"implicit", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
        dset.write(h5py.h5s.ALL, h5py.h5s.ALL, values(15).reshape(3, 5))


def v108_userblock(path: pathlib.Path) -> None:
    with h5py.File(path, "w", libver=("v108", "v108"), userblock_size=512) as f:
        f.attrs["note"] = "behind a userblock"
        f.create_dataset("w", data=values(12).reshape(3, 4), track_times=False)
        f.create_dataset("z", data=values(40).reshape(8, 5), chunks=(3, 2), compression="gzip", track_times=False)
        f.create_dataset("g/i64", data=np.arange(7, dtype="<i8"), track_times=False)


def dense_links(path: pathlib.Path) -> None:
    """300 hard links in one group and 40 root attributes: fractal heaps with indirect root blocks and
    v2 B-trees of depth 1 (checked below)."""
    with h5py.File(path, "w", libver="latest") as f:
        d = f.create_dataset("data", data=values(6), track_times=False)
        g = f.create_group("g")
        for i in range(300):
            g[f"h{i:03d}"] = d
        for i in range(40):
            f.attrs[f"attr{i:02d}"] = f"v{i}" * 20
    data = path.read_bytes()
    rows = []
    at = data.find(b"FRHP")
    while at >= 0:
        rows.append(struct.unpack_from("<H", data, at + 4 + 10 + 8 * 4 + 8 * 8 + 30)[0])
        at = data.find(b"FRHP", at + 1)
    depths = []
    at = data.find(b"BTHD")
    while at >= 0:
        depths.append(struct.unpack_from("<H", data, at + 12)[0])
        at = data.find(b"BTHD", at + 1)
    assert len(rows) == 2 and min(rows) >= 1 and depths == [1, 1], (rows, depths)


def group_cycle(path: pathlib.Path) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("a/x", data=values(3), track_times=False)
        f["a/loop"] = f["a"]


def small_flat(path: pathlib.Path, **extra) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["source"] = "tools/make_hdf5_hostile.py"
        f.create_dataset("a", data=values(37 * 11).reshape(37, 11), track_times=False)
        if extra.get("chunked"):
            f.create_dataset("c", data=values(64 * 64).reshape(64, 64), chunks=(16, 16), track_times=False)
        if extra.get("attributes"):
            d = f["a"]
            for i in range(40):
                d.attrs[f"long_attribute_{i:02d}"] = np.bytes_(b"x" * 100)


def v1_continuations(data: bytes, header: int) -> list[int]:
    """Offsets of the continuation messages in the first block of the v1 object header at `header`."""
    assert data[header] == 1
    size = struct.unpack_from("<I", data, header + 8)[0]
    pos, end, out = header + 16, header + 16 + size, []
    while pos + 8 <= end:
        mtype, msize = struct.unpack_from("<HH", data, pos)
        if mtype == 0x10:
            out.append(pos)
        pos += 8 + msize
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    expected: dict[str, dict] = {}

    latest_features(OUT / "latest_features.h5")
    v108_userblock(OUT / "v108_userblock.h5")
    expected["latest_features.h5"] = {"ok": True}
    expected["v108_userblock.h5"] = {"ok": True}
    dense_links(OUT / "dense_links.h5")
    expected["dense_links.h5"] = {"ok": True}
    group_cycle(OUT / "group_cycle.h5")
    with h5py.File(OUT / "group_cycle.h5") as f:
        a = addr(f["a"])
    expected["group_cycle.h5"] = {
        "kind": "malformed",
        "message": f"group cycle: 'a/loop' links back to its own ancestor (object header at byte {a})",
        "patch": "none: h5py f['a/loop'] = f['a']",
    }

    base = OUT / "_base.h5"

    # Truncated: the superblock's end-of-file address says more than is there.
    small_flat(base)
    data = base.read_bytes()
    cut = data[: len(data) * 6 // 10]
    (OUT / "truncated.h5").write_bytes(cut)
    expected["truncated.h5"] = {
        "kind": "truncated",
        "message": f"the superblock says the file is {len(data)} bytes long; only {len(cut)} are present",
        "patch": "first 60% of a small h5py file",
    }

    # A dataset whose dataspace declares more elements than the file holds.
    data = bytearray(base.read_bytes())
    dims = struct.pack("<QQ", 37, 11)
    at = data.find(dims)
    # The dataspace message stores the dimensions, then the same maximum dimensions.
    assert at > 0 and data.find(dims, at + 1) == at + 16 and data.find(dims, at + 17) < 0
    struct.pack_into("<QQQQ", data, at, 1 << 40, 11, 1 << 40, 11)
    (OUT / "dataset_too_big.h5").write_bytes(data)
    expected["dataset_too_big.h5"] = {
        "kind": "truncated",
        "message": f"dataset of shape [{1 << 40}, 11] needs {(1 << 40) * 11 * 4} bytes; the file has {len(data)}",
        "patch": f"dataspace dimensions and maximum dimensions (37, 11) at byte {at} set to (2^40, 11)",
    }

    # Zero elements, but dimensions whose product overflows (strides would overflow).
    with h5py.File(OUT / "zero_dim_overflow.h5", "w") as f:
        f.create_dataset("z", shape=(0, 5, 7), dtype="<f4", track_times=False)
    data = bytearray((OUT / "zero_dim_overflow.h5").read_bytes())
    dims = struct.pack("<QQQ", 0, 5, 7)
    at = data.find(dims)
    assert at > 0 and data.find(dims, at + 1) == at + 24
    struct.pack_into("<QQQQQQ", data, at, 0, 1 << 40, 1 << 40, 0, 1 << 40, 1 << 40)
    (OUT / "zero_dim_overflow.h5").write_bytes(data)
    expected["zero_dim_overflow.h5"] = {
        "kind": "limitExceeded",
        "message": f"element count of shape [0, {1 << 40}, {1 << 40}] overflows",
        "patch": f"dataspace (0, 5, 7) at byte {at} set to (0, 2^40, 2^40), maximum dimensions too",
    }

    # Global heap collection with a lying size (the variable-length 'source' attribute lives there).
    data = bytearray(base.read_bytes())
    g = data.find(b"GCOL")
    assert g > 0
    struct.pack_into("<Q", data, g + 8, 0x7FFF_FFFF_FFFF)
    (OUT / "gcol_lying_size.h5").write_bytes(data)
    expected["gcol_lying_size.h5"] = {
        "kind": "truncated",
        "message": f"global heap collection at byte {g} declares {0x7FFF_FFFF_FFFF} bytes; {len(data) - g} remain in the file",
        "patch": f"collection size at byte {g + 8} set to 0x7fffffffffff",
    }

    # Continuation blocks: past the end of the file, and pointing back at the header's own block.
    small_flat(base, attributes=True)
    with h5py.File(base) as f:
        header = addr(f["a"])
    data = bytearray(base.read_bytes())
    conts = v1_continuations(bytes(data), header)
    assert conts, "no continuation message"
    m = conts[0]
    patched = bytearray(data)
    struct.pack_into("<Q", patched, m + 8, len(data) + 4096)
    (OUT / "continuation_past_eof.h5").write_bytes(patched)
    expected["continuation_past_eof.h5"] = {
        "kind": "truncated",
        "message": f"object header continuation block address {len(data) + 4096} lies past the end of the file ({len(data)} bytes)",
        "patch": f"continuation message at byte {m} of the object header at {header} points past the end",
    }
    size = struct.unpack_from("<I", data, header + 8)[0]
    patched = bytearray(data)
    struct.pack_into("<QQ", patched, m + 8, header + 16, size)
    (OUT / "continuation_cycle.h5").write_bytes(patched)
    expected["continuation_cycle.h5"] = {
        "kind": "malformed",
        "message": f"object header continuation cycle: the block at byte {header + 16} is reached twice",
        "patch": f"continuation message at byte {m} points at the first block of its own header ({header + 16}, {size} bytes)",
    }

    # A chunk B-tree whose root claims level 1 and lists itself as its first child.
    small_flat(base, chunked=True)
    data = bytearray(base.read_bytes())
    node = -1
    pos = 0
    while True:
        pos = data.find(b"TREE", pos)
        assert pos >= 0
        if data[pos + 4] == 1:
            node = pos
            break
        pos += 4
    data[node + 5] = 1
    struct.pack_into("<Q", data, node + 24 + 8 + 8 * 3, node)
    (OUT / "chunk_btree_cycle.h5").write_bytes(data)
    expected["chunk_btree_cycle.h5"] = {
        "kind": "malformed",
        "message": f"chunk B-tree cycle: the node at byte {node} is reached twice",
        "patch": f"chunk B-tree node at byte {node}: level 1, first child = itself",
    }

    # A flipped byte inside a version-2 object header: the lookup3 checksum catches it.
    data = bytearray((OUT / "latest_features.h5").read_bytes())
    with h5py.File(OUT / "latest_features.h5") as f:
        o = addr(f["few"]["x1"])
    assert data[o : o + 4] == b"OHDR"
    flags = data[o + 5]
    p = o + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 3)
    chunk0 = int.from_bytes(data[p : p + width], "little")
    end = p + width + chunk0
    data[end - 1] ^= 0x5A
    (OUT / "ohdr_checksum.h5").write_bytes(data)
    stored = struct.unpack_from("<I", data, end)[0]
    expected["ohdr_checksum.h5"] = {
        "kind": "integrity",
        "message_prefix": f"object header at byte {o}: stored checksum 0x{stored:x}, computed 0x",
        "patch": f"byte {end - 1} (last of the first block of /few/x1's object header) xor 0x5a",
    }

    # Filters and chunk indexes the reader does not implement.
    with h5py.File(OUT / "fletcher32.h5", "w") as f:
        f.create_dataset("f", data=values(20).reshape(4, 5), chunks=(2, 5), fletcher32=True, track_times=False)
    expected["fletcher32.h5"] = {"kind": "unsupported", "message": "unsupported HDF5 feature: filter 3 (fletcher32)"}
    with h5py.File(OUT / "extensible_array_index.h5", "w", libver="latest") as f:
        f.create_dataset("f", data=values(20).reshape(4, 5), chunks=(2, 5), maxshape=(None, 5), track_times=False)
    expected["extensible_array_index.h5"] = {
        "kind": "unsupported",
        "message": "unsupported HDF5 feature: chunk index type 4 (extensible array)",
    }
    base.unlink()

    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")

    # Digests of every dataset h5py reads, in stored byte order.
    digests: dict[str, dict] = {}
    files = sorted(FIXTURES.glob("*.h5")) + [OUT / n for n in ("latest_features.h5", "v108_userblock.h5", "dense_links.h5")]
    for path in files:
        entry: dict[str, dict] = {}
        with h5py.File(path) as f:

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    arr = np.asarray(obj[()])
                    entry[name] = {
                        "dtype": arr.dtype.str,
                        "shape": list(arr.shape),
                        "sha256": hashlib.sha256(arr.tobytes(order="C")).hexdigest(),
                    }

            f.visititems(visit)
        digests[path.name] = entry
    (OUT / "digests.json").write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    for p in sorted(OUT.glob("*.h5")):
        print(f"{p.name:28s} {p.stat().st_size:8d} bytes")


if __name__ == "__main__":
    main()
