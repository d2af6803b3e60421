#!/usr/bin/env python3
"""Generate the PyTorch checkpoint fixtures in Tests/Fixtures/checkpoint and their expected values.

Run from the repository root with the reference venv (see shared/reference/REFERENCE-PYTHON.md):

    .venv-ref/bin/python tools/make_fixtures.py

Writes every fixture file and expected.json; first deletes the files the previous expected.json
lists (nothing else in that folder is touched).
The output is deterministic: fixed seeds, the random `.data/serialization_id` record of each zip is
rewritten to a value derived from the file name, and the pointer-valued storage keys of legacy
streams are renamed to fixed pointer-like numbers. Running the script twice gives byte-identical files.

After writing, the script reloads every fixture it can with the installed torch (never the malicious
ones: those are only disassembled with pickletools, which does not execute anything) and checks that
torch returns exactly the tensors recorded in expected.json.

Fixture kinds (see the README beside the fixtures for the per-file list):
  zip (torch >= 1.6), zip variants rewritten with Python's zipfile, big-endian zip, legacy
  magic-number streams (incl. synthesised big-endian-host and Python-2 era variants), legacy tar
  (torch <= 0.1.9, synthesised to torch's reader contract), zip-wrapped legacy stream, nested
  training checkpoints, dtype and view coverage, whole pickled nn.Modules, TorchScript, malicious
  pickles.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import pickletools
import struct
import sys
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "Tests" / "Fixtures" / "checkpoint"

warnings.filterwarnings("ignore")

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
MALICIOUS_COMMAND = "touch /tmp/pretrainedvision_pwned"


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


class ToyNet(nn.Module):
    """conv 3->4 3x3 (pad 1), BatchNorm2d(4), ReLU, adaptive avg pool to 2x2, Linear(16, 3)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class ToyNetCustom(ToyNet):
    """ToyNet plus things a whole-module pickle carries that a state dict does not:
    a non-persistent buffer (excluded from state_dict) and a plain Python attribute."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scratch", torch.zeros(2), persistent=False)
        self.note = "custom class defined in tools/make_fixtures.py"


class MaliciousPayload:
    """Pickles as GLOBAL 'posix system' + REDUCE. Only ever pickled here, never unpickled."""

    def __reduce__(self):
        return (os.system, (MALICIOUS_COMMAND,))


def fill_seeded(module: nn.Module, seed: int) -> nn.Module:
    """Overwrite every parameter and buffer with values from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif t.dtype.is_floating_point:
                t.copy_(torch.randn(t.shape, generator=g) * 0.2)
    return module.eval()


def toynet(seed: int = 1) -> ToyNet:
    torch.manual_seed(seed)
    return fill_seeded(ToyNet(), seed)


# ---------------------------------------------------------------------------------------------
# Expected values
# ---------------------------------------------------------------------------------------------


def dtype_name(dt: torch.dtype) -> str:
    return str(dt).replace("torch.", "")


def raw_le_bytes(t: torch.Tensor) -> bytes:
    c = t.detach().contiguous()
    if c.dtype == torch.bfloat16:
        c = c.view(torch.int16)
    if c.dtype == torch.uint16:
        c = c.view(torch.int16)
    a = c.numpy()
    if a.dtype.byteorder == ">":
        a = a.byteswap().view(a.dtype.newbyteorder("<"))
    return a.tobytes()


def tensor_entry(name: str, t: torch.Tensor) -> dict:
    t = t.detach()
    e = {
        "name": name,
        "dtype": dtype_name(t.dtype),
        "shape": list(t.shape),
        "contiguous": bool(t.is_contiguous()),
        "sha256_raw": hashlib.sha256(raw_le_bytes(t)).hexdigest(),
    }
    flat = t.contiguous().reshape(-1)
    if t.dtype.is_complex:
        e["sha256_f32"] = None
        first = torch.view_as_real(flat[:2]).reshape(-1).to(torch.float32)
    else:
        f32 = flat.to(torch.float32)
        e["sha256_f32"] = hashlib.sha256(f32.numpy().astype("<f4").tobytes()).hexdigest()
        first = f32[:4]
    e["first"] = [float(x) for x in first.tolist()]
    return e


def pickle_summary(program: bytes) -> dict:
    """Distinct GLOBALs and opcodes of a pickle program (pickletools only: nothing is executed)."""
    globals_, opcodes = [], []
    for op, arg, _pos in pickletools.genops(program):
        if op.name not in opcodes:
            opcodes.append(op.name)
        if op.name == "GLOBAL":
            g = arg.replace(" ", ".")
            if g not in globals_:
                globals_.append(g)
    return {"pickle_globals": sorted(globals_), "pickle_opcodes": sorted(opcodes)}


def metadata_json(sd) -> dict | None:
    md = getattr(sd, "_metadata", None)
    if md is None:
        return None
    return {k: dict(v) for k, v in md.items()}


# ---------------------------------------------------------------------------------------------
# Zip helpers (a minimal central-directory walker, enough to patch one record in place)
# ---------------------------------------------------------------------------------------------


def zip_central_entries(data: bytes) -> list[dict]:
    eocd = data.rfind(b"PK\x05\x06")
    assert eocd >= 0, "no end of central directory"
    (n_entries, cd_size, cd_offset) = struct.unpack_from("<HII", data, eocd + 10)
    if cd_offset == 0xFFFFFFFF or n_entries == 0xFFFF:
        loc = data.rfind(b"PK\x06\x07", 0, eocd)
        (z64_off,) = struct.unpack_from("<Q", data, loc + 8)
        n_entries, cd_size, cd_offset = struct.unpack_from("<QQQ", data, z64_off + 32)
    entries, p = [], cd_offset
    for _ in range(n_entries):
        assert data[p:p + 4] == b"PK\x01\x02"
        flags, method = struct.unpack_from("<HH", data, p + 8)
        crc, csize, usize = struct.unpack_from("<III", data, p + 16)
        nlen, xlen, clen = struct.unpack_from("<HHH", data, p + 28)
        (lho,) = struct.unpack_from("<I", data, p + 42)
        name = data[p + 46:p + 46 + nlen].decode("utf-8")
        extra = data[p + 46 + nlen:p + 46 + nlen + xlen]
        q = 0
        while q + 4 <= len(extra):  # zip64 extended information
            hid, hlen = struct.unpack_from("<HH", extra, q)
            if hid == 1:
                vals, r = [], q + 4
                for field in ("usize", "csize", "lho"):
                    cur = {"usize": usize, "csize": csize, "lho": lho}[field]
                    if cur == 0xFFFFFFFF:
                        vals.append(struct.unpack_from("<Q", extra, r)[0])
                        r += 8
                    else:
                        vals.append(cur)
                usize, csize, lho = vals
            q += 4 + hlen
        lnlen, lxlen = struct.unpack_from("<HH", data, lho + 26)
        entries.append(dict(name=name, flags=flags, method=method, crc=crc, csize=csize,
                            usize=usize, cd_pos=p, lho=lho,
                            data_pos=lho + 30 + lnlen + lxlen))
        p += 46 + nlen + xlen + clen
    return entries


def zip_patch_record(data: bytes, name: str, content: bytes) -> bytes:
    """Replace a stored record's bytes by same-length bytes; fix its CRC wherever it is recorded
    (a CRC of 0, as written with set_crc32_options(False), stays 0)."""
    buf = bytearray(data)
    (e,) = [e for e in zip_central_entries(data) if e["name"] == name]
    assert e["method"] == 0 and e["usize"] == len(content)
    buf[e["data_pos"]:e["data_pos"] + len(content)] = content
    new_crc = 0 if e["crc"] == 0 else zlib.crc32(content)
    struct.pack_into("<I", buf, e["cd_pos"] + 16, new_crc)
    (local_crc,) = struct.unpack_from("<I", buf, e["lho"] + 14)
    if local_crc != 0:
        struct.pack_into("<I", buf, e["lho"] + 14, new_crc)
    if e["flags"] & 0x08:  # data descriptor follows the data
        dd = e["data_pos"] + e["csize"]
        if buf[dd:dd + 4] == b"PK\x07\x08":
            dd += 4
        struct.pack_into("<I", buf, dd, new_crc)
    return bytes(buf)


def fixed_serialization_id(fixture_name: str) -> bytes:
    n = int.from_bytes(hashlib.sha256(fixture_name.encode()).digest(), "big") % 10**40
    return str(n).zfill(40).encode()


def canonicalize_torch_zip(path: Path) -> None:
    data = path.read_bytes()
    names = [e["name"] for e in zip_central_entries(data)]
    sid = [n for n in names if n.endswith("/.data/serialization_id")]
    if sid:
        data = zip_patch_record(data, sid[0], fixed_serialization_id(path.name))
    path.write_bytes(data)


def torch_save_zip(obj, path: Path) -> None:
    torch.save(obj, path)
    canonicalize_torch_zip(path)


def zip_read(data: bytes, entry: dict) -> bytes:
    """A record's bytes without CRC checking (Python's zipfile rejects CRC-0 records)."""
    raw = data[entry["data_pos"]:entry["data_pos"] + entry["csize"]]
    if entry["method"] == 8:
        return zlib.decompressobj(-15).decompress(raw)
    assert entry["method"] == 0
    return raw


def zip_prefix(path: Path) -> str:
    names = [e["name"] for e in zip_central_entries(path.read_bytes())]
    (pkl,) = [x for x in names if x.endswith("/data.pkl")]
    return pkl[: -len("/data.pkl")]


def zip_data_pkl(path: Path) -> bytes:
    data = path.read_bytes()
    (e,) = [e for e in zip_central_entries(data) if e["name"].endswith("/data.pkl")]
    return zip_read(data, e)


# ---------------------------------------------------------------------------------------------
# Legacy magic-number stream helpers
# ---------------------------------------------------------------------------------------------


def pickle_end(data: bytes, start: int) -> int:
    for op, _arg, pos in pickletools.genops(data[start:]):
        if op.name == "STOP":
            return start + pos + 1
    raise ValueError("no STOP")


def collect_storages(obj, out: dict, seen: set) -> None:
    """Map str(untyped_storage._cdata) -> nbytes for every tensor reachable from obj."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        s = obj.untyped_storage()
        out[str(s._cdata)] = s.nbytes()
    elif isinstance(obj, nn.Module):
        for v in list(obj._parameters.values()) + list(obj._buffers.values()):
            if v is not None:
                collect_storages(v, out, seen)
        for m in obj._modules.values():
            collect_storages(m, out, seen)
    elif isinstance(obj, dict):
        for v in obj.values():
            collect_storages(v, out, seen)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            collect_storages(v, out, seen)


def legacy_key(i: int, n: int) -> str:
    """Storage key for the i-th of n storages (first-seen order in the pickle).

    torch writes str(storage._cdata), a decimal heap address, and sorts the keys as strings. Real
    files mix 14-digit heap addresses (0x55..., '94...') with 15-digit mmap addresses (0x7f...,
    '140...'), so string order, numeric order and pickle order all differ; these fixed keys do the
    same: every third storage gets a '140...' key, the rest '94...' keys in descending order."""
    if i % 3 == 1:
        return str(140_200_000_000_000 + 4096 * i)
    return str(94_800_000_000_000 + 112 * (n - i))


def split_legacy(data: bytes):
    p1 = pickle_end(data, 0)
    p2 = pickle_end(data, p1)
    p3 = pickle_end(data, p2)
    p4 = pickle_end(data, p3)
    p5 = pickle_end(data, p4)
    return data[:p1], data[p1:p2], data[p2:p3], data[p3:p4], data[p4:p5], p5


def rename_binunicode(program: bytes, mapping: dict[str, str]) -> bytes:
    out, ops = bytearray(), list(pickletools.genops(program))
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(program)
        if op.name == "BINUNICODE" and arg in mapping:
            enc = mapping[arg].encode("utf-8")
            out += b"X" + struct.pack("<I", len(enc)) + enc
        else:
            out += program[pos:end]
    return bytes(out)


def first_seen_storage_keys(program: bytes, keys: set[str]) -> list[str]:
    order = []
    for op, arg, _pos in pickletools.genops(program):
        if op.name == "BINUNICODE" and arg in keys and arg not in order:
            order.append(arg)
    return order


def torch_save_legacy(obj, path: Path, sys_info: dict | None = None, count_order: str = "<",
                      post=None) -> None:
    """torch.save(..., _use_new_zipfile_serialization=False), then make it deterministic by renaming
    the pointer-valued storage keys (and reordering the storage blocks to stay sorted by key).
    Optionally replace the sys_info pickle and/or write the 8-byte counts in another byte order."""
    nbytes: dict[str, int] = {}
    collect_storages(obj, nbytes, set())
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    magic, proto, sysinfo, main, keylist, blocks_at = split_legacy(data)

    old_sorted = sorted(first_seen_storage_keys(main, set(nbytes)))
    assert keylist == pickle.dumps(old_sorted, protocol=2), "unexpected storage key list"
    blocks, p = {}, blocks_at
    for k in old_sorted:
        (count,) = struct.unpack_from("<q", data, p)
        n = nbytes[k]
        assert count == 0 or n % count == 0
        blocks[k] = (count, data[p + 8:p + 8 + n])
        p += 8 + n
    assert p == len(data), "legacy stream walk did not end at EOF"

    order = first_seen_storage_keys(main, set(old_sorted))
    mapping = {k: legacy_key(i, len(order)) for i, k in enumerate(order)}
    main = rename_binunicode(main, mapping)
    if post is not None:
        main = post(main)
    new_sorted = sorted(mapping.values())
    old_of = {v: k for k, v in mapping.items()}
    if len(order) > 2:
        assert new_sorted != [mapping[k] for k in order]
        assert new_sorted != sorted(mapping.values(), key=int)
    if sys_info is not None:
        sysinfo = pickle.dumps(sys_info, protocol=2)
    out = bytearray(magic + proto + sysinfo + main + pickle.dumps(new_sorted, protocol=2))
    for new_key in new_sorted:
        count, raw = blocks[old_of[new_key]]
        out += struct.pack(count_order + "q", count) + raw
    path.write_bytes(bytes(out))


def legacy_main_pickle(path: Path) -> bytes:
    data = path.read_bytes()
    return split_legacy(data)[3]


MODERN_SYS_INFO = {"protocol_version": 1001, "little_endian": True,
                   "type_sizes": {"short": 2, "int": 4, "long": 4}}


# ---------------------------------------------------------------------------------------------
# A protocol-2 pickle assembler that emits what CPython 2.7's cPickle emitted for the types torch
# checkpoints of that era contained (py2 `str` -> SHORT_BINSTRING, ints beyond 32 bits -> INT text
# opcode, memo indices starting at 1, OrderedDict reduced to (cls, ([[k, v], ...],), state)).
# It is not byte-identical to a real py2 file (cPickle skips memoizing objects with refcount < 2,
# which depends on the caller), but every opcode sequence here is one cPickle produces.
# ---------------------------------------------------------------------------------------------


class Py2Global:
    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


class Py2Long:
    def __init__(self, value: int):
        self.value = value


class Py2Reduce:
    def __init__(self, func, args: tuple, state=None):
        self.func, self.args, self.state = func, args, state


class Py2Persistent:
    def __init__(self, pid):
        self.pid = pid


def py2_ordered_dict(items: list, state: dict | None = None) -> Py2Reduce:
    return Py2Reduce(Py2Global("collections", "OrderedDict"), ([[k, v] for k, v in items],), state)


class Py2Pickler:
    def __init__(self):
        self.out = bytearray()
        self.memo: dict = {}
        self.next_index = 1  # cPickle numbers its memo from 1 (pickle.py from 0)
        self.keep = []

    def dumps(self, obj) -> bytes:
        self.out += b"\x80\x02"
        self.save(obj)
        self.out += b"."
        return bytes(self.out)

    def _put(self, key):
        idx = self.next_index
        self.next_index += 1
        self.memo[key] = idx
        self.out += (b"q" + bytes([idx])) if idx < 256 else (b"r" + struct.pack("<I", idx))

    def _get(self, key) -> bool:
        if key in self.memo:
            idx = self.memo[key]
            self.out += (b"h" + bytes([idx])) if idx < 256 else (b"j" + struct.pack("<I", idx))
            return True
        return False

    def save(self, obj):
        if obj is None:
            self.out += b"N"
        elif obj is True:
            self.out += b"\x88"
        elif obj is False:
            self.out += b"\x89"
        elif isinstance(obj, int):
            if 0 <= obj <= 0xFF:
                self.out += b"K" + bytes([obj])
            elif 0 <= obj <= 0xFFFF:
                self.out += b"M" + struct.pack("<H", obj)
            elif -(2**31) <= obj < 2**31:
                self.out += b"J" + struct.pack("<i", obj)
            else:  # cPickle on a 64-bit long: text INT opcode
                self.out += b"I" + str(obj).encode() + b"\n"
        elif isinstance(obj, Py2Long):
            enc = pickle.encode_long(obj.value)
            self.out += b"\x8a" + bytes([len(enc)]) + enc
        elif isinstance(obj, float):
            self.out += b"G" + struct.pack(">d", obj)
        elif isinstance(obj, str):  # a py2 str (bytes)
            key = ("str", obj)
            if self._get(key):
                return
            b = obj.encode("ascii")
            if len(b) < 256:
                self.out += b"U" + bytes([len(b)]) + b
            else:
                self.out += b"T" + struct.pack("<i", len(b)) + b
            self._put(key)
        elif isinstance(obj, Py2Global):
            key = ("global", obj.module, obj.name)
            if self._get(key):
                return
            self.out += b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n"
            self._put(key)
        elif isinstance(obj, tuple):
            key = ("id", id(obj))
            self.keep.append(obj)
            if self._get(key):
                return
            if len(obj) == 0:
                self.out += b")"
                return  # the empty tuple is a singleton; cPickle does not memoize it
            if len(obj) <= 3:
                for x in obj:
                    self.save(x)
                self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(obj)]
            else:
                self.out += b"("
                for x in obj:
                    self.save(x)
                self.out += b"t"
            self._put(key)
        elif isinstance(obj, list):
            key = ("id", id(obj))
            self.keep.append(obj)
            if self._get(key):
                return
            self.out += b"]"
            self._put(key)
            if len(obj) == 1:
                self.save(obj[0])
                self.out += b"a"
            elif len(obj) > 1:
                for i in range(0, len(obj), 1000):
                    self.out += b"("
                    for x in obj[i:i + 1000]:
                        self.save(x)
                    self.out += b"e"
        elif isinstance(obj, dict):
            key = ("id", id(obj))
            self.keep.append(obj)
            if self._get(key):
                return
            self.out += b"}"
            self._put(key)
            items = list(obj.items())
            if len(items) == 1:
                self.save(items[0][0])
                self.save(items[0][1])
                self.out += b"s"
            elif len(items) > 1:
                for i in range(0, len(items), 1000):
                    self.out += b"("
                    for k, v in items[i:i + 1000]:
                        self.save(k)
                        self.save(v)
                    self.out += b"u"
        elif isinstance(obj, Py2Reduce):
            key = ("id", id(obj))
            self.keep.append(obj)
            if self._get(key):
                return
            self.save(obj.func)
            self.save(obj.args)
            self.out += b"R"
            self._put(key)
            if obj.state is not None:
                self.save(obj.state)
                self.out += b"b"
        elif isinstance(obj, Py2Persistent):
            self.save(obj.pid)
            self.out += b"Q"
        else:
            raise TypeError(f"Py2Pickler cannot save {type(obj)}")


STORAGE_CLASS = {
    torch.float64: "DoubleStorage", torch.float32: "FloatStorage", torch.float16: "HalfStorage",
    torch.bfloat16: "BFloat16Storage", torch.int64: "LongStorage", torch.int32: "IntStorage",
    torch.int16: "ShortStorage", torch.int8: "CharStorage", torch.uint8: "ByteStorage",
    torch.bool: "BoolStorage", torch.complex64: "ComplexFloatStorage",
}
TENSOR_CLASS = {k: v.replace("Storage", "Tensor") for k, v in STORAGE_CLASS.items()}


def storage_le_bytes(t: torch.Tensor) -> bytes:
    """The tensor's whole storage, little-endian (what torch's _write_file writes)."""
    c = t.detach()
    s = c.untyped_storage()
    return bytes(s)  # host is little-endian


def write_py2_legacy_stream(sd: "collections.OrderedDict", path: Path) -> None:
    """A torch 0.4.x checkpoint as written by Python 2.7 (torch.save -> legacy protocol 1001)."""
    storages = {}  # key -> tensor (each tensor of a state dict of that era owns its storage)
    order = []
    entries = []
    for name, t in sd.items():
        key = legacy_key(len(order), len(sd))
        order.append(key)
        storages[key] = t
        pid = Py2Persistent(("storage", Py2Global("torch", STORAGE_CLASS[t.dtype]), key, "cpu",
                             t.untyped_storage().nbytes() // t.element_size(), None))
        args = (pid, t.storage_offset(), tuple(t.shape), tuple(t.stride()), False,
                py2_ordered_dict([]))
        entries.append((name, Py2Reduce(Py2Global("torch._utils", "_rebuild_tensor_v2"), args)))
    md = [(k, dict(v)) for k, v in sd._metadata.items()]
    top = py2_ordered_dict(entries, {"_metadata": py2_ordered_dict(md)})
    out = bytearray()
    out += Py2Pickler().dumps(Py2Long(MAGIC_NUMBER))
    out += Py2Pickler().dumps(LEGACY_PROTOCOL_VERSION)
    out += Py2Pickler().dumps({"protocol_version": LEGACY_PROTOCOL_VERSION, "little_endian": True,
                               "type_sizes": {"short": 2, "int": 4, "long": 4}})
    out += Py2Pickler().dumps(top)
    out += Py2Pickler().dumps(sorted(order))
    for key in sorted(order):
        t = storages[key]
        out += struct.pack("<q", t.untyped_storage().nbytes() // t.element_size())
        out += storage_le_bytes(t)
    path.write_bytes(bytes(out))


# ---------------------------------------------------------------------------------------------
# Legacy tar (torch <= 0.1.9): members sys_info, pickle, tensors, storages, in that order
# ---------------------------------------------------------------------------------------------

TAR_MTIME = 1487000000.25  # a float, as os.stat gives: tarfile then adds a PAX 'mtime' record


def tar_members(sd: "collections.OrderedDict", py2: bool) -> list[tuple[str, bytes]]:
    tensor_keys, storage_keys = {}, {}
    for i, (name, t) in enumerate(sd.items()):
        tensor_keys[name] = 94_600_000_000_000 + 0xA0 * i   # tensor._cdata (a THTensor*)
        storage_keys[name] = 94_700_000_000_000 + 0x50 * i  # storage._cdata (a THStorage*)

    def dumps(obj):
        return Py2Pickler().dumps(obj) if py2 else pickle.dumps(obj, protocol=2)

    sys_info = {"protocol_version": 1000, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    if py2:
        pickled = Py2Pickler().dumps(py2_ordered_dict(
            [(name, Py2Persistent(str(tensor_keys[name]))) for name in sd]))
    else:
        by_id = {id(t): tensor_keys[name] for name, t in sd.items()}

        class P(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, torch.Tensor):
                    return str(by_id[id(obj)])
                return None

        b = io.BytesIO()
        P(b, protocol=2).dump(collections.OrderedDict(sd.items()))
        pickled = b.getvalue()

    tensors = bytearray(dumps(len(sd)))
    for name, t in sd.items():
        ttype = Py2Global("torch", TENSOR_CLASS[t.dtype]) if py2 else getattr(torch, TENSOR_CLASS[t.dtype])
        tensors += dumps((tensor_keys[name], storage_keys[name], ttype))
        nd = t.dim()
        tensors += struct.pack("<i", nd) + b"\0\0\0\0"  # ndim was written as 8 bytes from an int
        tensors += struct.pack(f"<{nd}q", *t.shape) + struct.pack(f"<{nd}q", *t.stride())
        tensors += struct.pack("<q", t.storage_offset())

    storages = bytearray(dumps(len(sd)))
    for name, t in sd.items():
        stype = Py2Global("torch", STORAGE_CLASS[t.dtype]) if py2 else getattr(torch, STORAGE_CLASS[t.dtype])
        storages += dumps((storage_keys[name], "cpu", stype))
        storages += struct.pack("<q", t.untyped_storage().nbytes() // t.element_size())
        storages += storage_le_bytes(t)
    storages += dumps([])  # storage views

    return [("sys_info", dumps(sys_info)), ("pickle", pickled), ("tensors", bytes(tensors)),
            ("storages", bytes(storages))]


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), TAR_MTIME, 0o600
            ti.uid = ti.gid = 1000
            ti.uname = ti.gname = "user"
            tar.addfile(ti, io.BytesIO(data))


# ---------------------------------------------------------------------------------------------
# Fixture construction
# ---------------------------------------------------------------------------------------------

EXPECTED: dict[str, dict] = {}
CHECKS: list = []  # (file name, callable returning the state dict torch loads, expected tensors)


def record(name: str, fmt: str, description: str, tensors: "collections.OrderedDict | None" = None,
           *, byte_order="little", archive_prefix=None, nesting_path=(), stripped_prefixes=(),
           extras=None, extras_keys=None, metadata=None, program: bytes | None = None, **more):
    path = OUT / name
    e = {"description": description, "format": fmt}
    e["file_size"] = path.stat().st_size
    e["file_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    if tensors is not None or archive_prefix is not None:
        e["archive_prefix"] = archive_prefix
    if tensors is not None:
        e["byte_order"] = byte_order
        e["nesting_path"] = list(nesting_path)
        e["stripped_prefixes"] = list(stripped_prefixes)
    e.update(more)
    if tensors is not None:
        e["metadata"] = metadata
        e["extras"] = extras if extras is not None else {}
        e["extras_keys"] = extras_keys if extras_keys is not None else []
        e["tensors"] = [tensor_entry(k, v) for k, v in tensors.items()]
    if program is not None:
        e.update(pickle_summary(program))
    EXPECTED[name] = e


def build_all() -> None:
    net = toynet(1)
    sd = net.state_dict()  # OrderedDict with _metadata, bn.num_batches_tracked

    # 1. torch 2.13 zip from a path
    n = "toynet_zip.pth"
    torch_save_zip(sd, OUT / n)
    record(n, "pytorch-zip", "torch 2.13 torch.save(state_dict, path): zip, prefix = file base name",
           sd, archive_prefix=zip_prefix(OUT / n), metadata=metadata_json(sd),
           program=zip_data_pkl(OUT / n))
    CHECKS.append((n, None))

    # 2. same through a BytesIO
    n = "toynet_zip_bytesio.pth"
    b = io.BytesIO()
    torch.save(sd, b)
    (OUT / n).write_bytes(b.getvalue())
    canonicalize_torch_zip(OUT / n)
    record(n, "pytorch-zip", "torch.save(state_dict, BytesIO) written out: prefix 'archive'",
           sd, archive_prefix="archive", metadata=metadata_json(sd), program=zip_data_pkl(OUT / n))
    CHECKS.append((n, None))

    # 3. rewritten with Python's zipfile: no byteorder record, reordered, stored, no alignment
    src = OUT / "toynet_zip.pth"
    n = "toynet_zip_pyzipfile_reordered_nobyteorder.pth"
    with zipfile.ZipFile(src) as zin:
        names = zin.namelist()
        prefix = zip_prefix(src)
        data_recs = [x for x in names if x.startswith(prefix + "/data/")]
        others = [x for x in names if x not in data_recs and not x.endswith("/byteorder")]
        first = [prefix + "/version"]
        rest = [x for x in others if x not in first]
        order = first + list(reversed(data_recs)) + rest
        with zipfile.ZipFile(OUT / n, "w", compression=zipfile.ZIP_STORED) as zout:
            for x in order:
                zi = zipfile.ZipInfo(x, date_time=(1980, 1, 1, 0, 0, 0))
                zi.compress_type = zipfile.ZIP_STORED
                zout.writestr(zi, zin.read(x))
    record(n, "pytorch-zip",
           "toynet_zip.pth rewritten by Python zipfile: no byteorder record (=> little), version "
           "first, data records reversed, stored, no 64-byte alignment, no data descriptors; the "
           "prefix inside is still 'toynet_zip' (not the file name)",
           sd, archive_prefix=prefix, metadata=metadata_json(sd), program=zip_data_pkl(OUT / n),
           record_order=order)
    CHECKS.append((n, None))

    # 4. re-zipped with deflate
    n = "toynet_zip_deflated.pth"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(OUT / n, "w", compression=zipfile.ZIP_DEFLATED,
                                                      compresslevel=9) as zout:
        for x in zin.namelist():
            zi = zipfile.ZipInfo(x, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(zi, zin.read(x))
    record(n, "pytorch-zip", "toynet_zip.pth re-zipped by Python zipfile with ZIP_DEFLATED (method 8) "
           "for every record, same record order", sd, archive_prefix=prefix,
           metadata=metadata_json(sd), program=zip_data_pkl(OUT / n))
    CHECKS.append((n, None))

    # 5. CRC 0
    n = "toynet_zip_crc0.pth"
    torch.serialization.set_crc32_options(False)
    try:
        torch_save_zip(sd, OUT / n)
    finally:
        torch.serialization.set_crc32_options(True)
    record(n, "pytorch-zip", "torch.save with torch.serialization.set_crc32_options(False): every "
           "record's CRC-32 is 0 in the data descriptor and central directory", sd,
           archive_prefix=zip_prefix(OUT / n), metadata=metadata_json(sd),
           program=zip_data_pkl(OUT / n))
    CHECKS.append((n, None))

    # 6. big-endian zip: byteorder 'big', every storage byte-swapped by element size
    n = "toynet_zip_bigendian.pth"
    g = torch.Generator().manual_seed(6)
    sd6 = collections.OrderedDict(sd.items())
    sd6._metadata = sd._metadata
    sd6["extra.float16"] = (torch.randn(5, generator=g)).to(torch.float16)
    sd6["extra.float64"] = torch.randn(2, 2, generator=g, dtype=torch.float64)
    sd6["extra.int16"] = torch.tensor([1, -2, 300, -32768], dtype=torch.int16)
    sd6["extra.int32"] = torch.tensor([[7, -70000], [65536, 2**31 - 1]], dtype=torch.int32)
    sd6["extra.bool"] = torch.tensor([True, False, True])
    sd6["extra.complex64"] = torch.randn(3, generator=g, dtype=torch.complex64)
    swapped = collections.OrderedDict()
    for k, v in sd6.items():
        c = v.detach().clone()
        c.untyped_storage().byteswap(c.dtype)  # what a big-endian host holds in memory
        swapped[k] = c
    swapped._metadata = sd._metadata
    saved_byteorder = sys.byteorder
    sys.byteorder = "big"  # torch's _save writes the 'byteorder' record from sys.byteorder
    try:
        torch_save_zip(swapped, OUT / n)
    finally:
        sys.byteorder = saved_byteorder
    record(n, "pytorch-zip", "zip as a big-endian host writes it: byteorder record 'big', every "
           "storage byte-swapped by element size (complex64: each 4-byte half swapped separately, as "
           "torch's UntypedStorage.byteswap does)", sd6, byte_order="big",
           archive_prefix=zip_prefix(OUT / n), metadata=metadata_json(sd),
           program=zip_data_pkl(OUT / n))
    CHECKS.append((n, None))

    # 7. legacy stream, little endian
    n = "toynet_legacy_stream.pth"
    torch_save_legacy(sd, OUT / n)
    record(n, "pytorch-legacy-stream", "torch.save(..., _use_new_zipfile_serialization=False): "
           "magic-number stream, protocol 1001, storage keys renamed to fixed pointer-like numbers",
           sd, metadata=metadata_json(sd), program=legacy_main_pickle(OUT / n),
           sys_info=MODERN_SYS_INFO)
    CHECKS.append((n, None))

    # 8. legacy stream written on a big-endian host
    n = "toynet_legacy_stream_bigendian_host.pth"
    be_info = dict(MODERN_SYS_INFO, little_endian=False)
    torch_save_legacy(sd, OUT / n, sys_info=be_info)
    record(n, "pytorch-legacy-stream", "legacy stream as current torch (incl. 2.13) writes it on a "
           "big-endian host: sys_info little_endian=False, but the 8-byte counts AND the element "
           "data are little-endian (THPStorage_writeFileRaw always encodes little-endian; torch's "
           "reader ignores sys_info). A reader must NOT byte-swap because of sys_info.",
           sd, metadata=metadata_json(sd), program=legacy_main_pickle(OUT / n), sys_info=be_info)
    CHECKS.append((n, None))

    n = "toynet_legacy_stream_bigendian_host_be_count.pth"
    torch_save_legacy(sd, OUT / n, sys_info=be_info, count_order=">")
    record(n, "pytorch-legacy-stream", "legacy stream as torch before the 2019 big-endian fixes "
           "(pytorch/pytorch#26266/#26383) wrote it on a big-endian host: sys_info "
           "little_endian=False, each 8-byte storage count in host (big-endian) order, element data "
           "little-endian (encoded LE since 2017, pytorch/pytorch#718). torch 2.13 cannot load it "
           "(reads the count little-endian: 'storage has wrong byte size'); a tolerant reader can "
           "accept a count that equals the pickle's numel only after byte-swapping.",
           sd, metadata=metadata_json(sd), program=legacy_main_pickle(OUT / n), sys_info=be_info,
           count_byte_order="big", torch_loads=False)

    # 9. legacy stream with type_sizes long = 8
    n = "toynet_legacy_stream_long8.pth"
    l8 = dict(MODERN_SYS_INFO, type_sizes={"short": 2, "int": 4, "long": 8})
    torch_save_legacy(sd, OUT / n, sys_info=l8)
    record(n, "pytorch-legacy-stream", "legacy stream whose sys_info says type_sizes long=8 "
           "(informational only: counts are always int64)", sd, metadata=metadata_json(sd),
           program=legacy_main_pickle(OUT / n), sys_info=l8)
    CHECKS.append((n, None))

    # 10. legacy tar (torch <= 0.1.9): no _metadata, no num_batches_tracked in that era
    old_sd = collections.OrderedDict((k, v) for k, v in sd.items() if "num_batches_tracked" not in k)
    for n, py2 in (("toynet_legacy_tar.pth", False), ("toynet_legacy_tar_py2.pth", True)):
        members = tar_members(old_sd, py2)
        write_tar(OUT / n, members)
        flavor = ("Python 2 cPickle opcodes: SHORT_BINSTRING ids, INT text opcode for 64-bit keys, "
                  "OrderedDict as REDUCE of a list of [key, value] lists, memo from 1"
                  if py2 else "Python 3 pickles (BINUNICODE ids, LONG1 keys)")
        record(n, "pytorch-legacy-tar", "torch <= 0.1.9 tar (PAX) with members sys_info, pickle, "
               "tensors, storages (that order); each preceded by a PAX 'mtime' header; pickle's "
               "persistent ids are str(tensor key) resolved via the tensors table; " + flavor,
               old_sd, metadata=None, program=members[1][1],
               tar_members=[m[0] for m in members])
        CHECKS.append((n, None))

    # 11. zip wrapping exactly one legacy stream file (torch.hub _legacy_zip_load)
    n = "toynet_zipped_legacy_stream.pth"
    inner = (OUT / "toynet_legacy_stream.pth").read_bytes()
    with zipfile.ZipFile(OUT / n, "w") as z:
        zi = zipfile.ZipInfo("toynet_legacy_stream.pth", date_time=(2019, 5, 1, 12, 0, 0))
        zi.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(zi, inner)
    record(n, "pytorch-zip-wrapped-legacy", "a plain zip (deflated) holding exactly one file, a "
           "legacy magic-number stream; torch.hub extracts it and torch.loads the member",
           sd, metadata=metadata_json(sd), program=legacy_main_pickle(OUT / "toynet_legacy_stream.pth"),
           wrapped_member="toynet_legacy_stream.pth", inner_format="pytorch-legacy-stream")
    CHECKS.append((n, "wrapped"))

    # 12. nested / prefixed checkpoints
    dp_sd = nn.DataParallel(net).state_dict()
    n = "nested_state_dict_module_prefix.pth"
    torch_save_zip({"epoch": 7, "arch": "toynet", "best_acc1": 0.5, "state_dict": dp_sd}, OUT / n)
    record(n, "pytorch-zip", "{'epoch','arch','best_acc1','state_dict'} with a DataParallel state "
           "dict ('module.' prefix)", sd, archive_prefix=zip_prefix(OUT / n),
           nesting_path=["state_dict"], stripped_prefixes=["module."], metadata=metadata_json(dp_sd),
           extras={"epoch": 7, "arch": "toynet", "best_acc1": 0.5},
           extras_keys=["epoch", "arch", "best_acc1"], program=zip_data_pkl(OUT / n))
    CHECKS.append((n, ("state_dict",), "module."))

    compiled_sd = torch.compile(net).state_dict()
    n = "nested_model_orig_mod_prefix.pth"
    torch_save_zip({"model": compiled_sd}, OUT / n)
    record(n, "pytorch-zip", "{'model': torch.compile(model).state_dict()} ('_orig_mod.' prefix)",
           sd, archive_prefix=zip_prefix(OUT / n), nesting_path=["model"],
           stripped_prefixes=["_orig_mod."], metadata=metadata_json(compiled_sd),
           program=zip_data_pkl(OUT / n))
    CHECKS.append((n, ("model",), "_orig_mod."))

    ema_sd = toynet(2).state_dict()
    n = "nested_ema_wins.pth"
    torch_save_zip({"state_dict_ema": ema_sd, "state_dict": sd}, OUT / n)
    record(n, "pytorch-zip", "{'state_dict_ema': A, 'state_dict': B}: timm priority picks the EMA "
           "weights A (seed 2); B is the seed-1 toynet", ema_sd, archive_prefix=zip_prefix(OUT / n),
           nesting_path=["state_dict_ema"], metadata=metadata_json(ema_sd),
           extras_keys=["state_dict"], program=zip_data_pkl(OUT / n))
    CHECKS.append((n, ("state_dict_ema",), ""))

    opt_net = toynet(1)
    opt = torch.optim.SGD(opt_net.parameters(), lr=0.1, momentum=0.9)
    for p in opt_net.parameters():
        p.grad = torch.ones_like(p) * 0.01
    opt.step()
    opt_net.eval()
    osd = opt_net.state_dict()
    n = "nested_model_state_dict_optimizer.pth"
    torch_save_zip({"model_state_dict": osd, "optimizer_state_dict": opt.state_dict()}, OUT / n)
    record(n, "pytorch-zip", "PyTorch-tutorial layout {'model_state_dict', 'optimizer_state_dict'}: "
           "the optimizer state has int keys and momentum_buffer tensors (not part of the model)",
           osd, archive_prefix=zip_prefix(OUT / n), nesting_path=["model_state_dict"],
           metadata=metadata_json(osd), extras_keys=["optimizer_state_dict"],
           program=zip_data_pkl(OUT / n))
    CHECKS.append((n, ("model_state_dict",), ""))

    both_sd = torch.compile(nn.DataParallel(net)).state_dict()
    n = "nested_state_dict_orig_mod_module_prefix.pth"
    torch_save_zip({"state_dict": both_sd, "epoch": 12}, OUT / n)
    record(n, "pytorch-zip", "{'state_dict': torch.compile(DataParallel(model)).state_dict(), "
           "'epoch'}: keys start with '_orig_mod.module.'", sd, archive_prefix=zip_prefix(OUT / n),
           nesting_path=["state_dict"], stripped_prefixes=["_orig_mod.", "module."],
           metadata=metadata_json(both_sd), extras={"epoch": 12}, extras_keys=["epoch"],
           program=zip_data_pkl(OUT / n))
    CHECKS.append((n, ("state_dict",), "_orig_mod.module."))

    # 13. dtypes
    g = torch.Generator().manual_seed(13)
    dt = collections.OrderedDict()
    dt["float64"] = torch.randn(2, 3, generator=g, dtype=torch.float64)
    dt["float32"] = torch.randn(3, 2, generator=g)
    dt["float16"] = torch.randn(4, generator=g).to(torch.float16)
    dt["bfloat16"] = torch.randn(2, 2, generator=g).to(torch.bfloat16)
    dt["int64"] = torch.tensor([0, -1, 2**40 + 3, -(2**62)], dtype=torch.int64)
    dt["int32"] = torch.tensor([[1, -2], [2**31 - 1, -(2**31)]], dtype=torch.int32)
    dt["int16"] = torch.tensor([5, -6, 32767], dtype=torch.int16)
    dt["int8"] = torch.tensor([-128, 0, 127, 9], dtype=torch.int8)
    dt["uint8"] = torch.tensor([0, 1, 254, 255, 17], dtype=torch.uint8)
    dt["bool"] = torch.tensor([[True, False], [False, True]])
    dt["scalar_0d"] = torch.tensor(3.5)
    dt["empty_0x3"] = torch.empty(0, 3)
    dt["complex64"] = torch.randn(2, 2, generator=g, dtype=torch.complex64)
    dt["uint16"] = torch.tensor([0, 1, 300, 65535], dtype=torch.uint16)
    n = "dtypes_zip.pth"
    torch_save_zip(dict(dt), OUT / n)
    record(n, "pytorch-zip", "plain dict (not OrderedDict) of one tensor per dtype, a 0-d scalar, "
           "an empty [0,3] tensor; uint16 is written with _rebuild_tensor_v3 + UntypedStorage + "
           "GLOBAL torch.uint16", dt, archive_prefix=zip_prefix(OUT / n),
           program=zip_data_pkl(OUT / n))
    CHECKS.append((n, None))

    dt_legacy = collections.OrderedDict((k, v) for k, v in dt.items() if k != "uint16")
    n = "dtypes_legacy_stream.pth"
    torch_save_legacy(dict(dt_legacy), OUT / n)
    record(n, "pytorch-legacy-stream", "the dtype dict in a legacy stream (without uint16: torch "
           "2.13 writes v3 dtypes into legacy streams but cannot read them back); storage counts "
           "are per element of the storage dtype", dt_legacy, program=legacy_main_pickle(OUT / n),
           sys_info=MODERN_SYS_INFO)
    CHECKS.append((n, None))

    # 14. views and strides
    g = torch.Generator().manual_seed(14)
    base = torch.randn(4, 6, generator=g)
    a = torch.randn(3, 5, generator=g)
    odd = torch.empty_strided((3, 1, 4), (4, 999, 1))
    odd.copy_(torch.randn(3, 1, 4, generator=g))
    fortran = torch.randn(3, 4, generator=g).t().contiguous().t()  # shape (3, 4), strides (1, 3)
    vw = collections.OrderedDict()
    vw["transposed"] = a.t()                                        # (5, 3) strides (1, 5)
    vw["channels_last"] = torch.randn(2, 3, 4, 5, generator=g).to(memory_format=torch.channels_last)
    vw["shared_base"] = base                                        # storage 24 floats
    vw["shared_rows_1_3"] = base[1:3]                               # offset 6, contiguous
    vw["shared_column_2"] = base[:, 2]                              # offset 2, stride (6,)
    vw["size1_odd_strides"] = odd                                   # contiguous per torch
    vw["fortran_order"] = fortran
    vw["expanded_stride0"] = torch.randn(3, 1, generator=g).expand(3, 4)  # strides (1, 0)
    n = "views_zip.pth"
    torch_save_zip(vw, OUT / n)
    layout = {k: {"stride": list(v.stride()), "storage_offset": v.storage_offset(),
                  "storage_numel": v.untyped_storage().nbytes() // v.element_size()}
              for k, v in vw.items()}
    record(n, "pytorch-zip", "views: transposed, channels-last, three tensors sharing one storage "
           "(offsets 0, 6, 2), size-1 dim with stride 999, Fortran order, expanded (stride 0)",
           vw, archive_prefix=zip_prefix(OUT / n), program=zip_data_pkl(OUT / n), layout=layout)
    CHECKS.append((n, None))

    n = "views_legacy_stream.pth"
    torch_save_legacy(vw, OUT / n)
    record(n, "pytorch-legacy-stream", "the same views in a legacy stream (shared storage written "
           "once)", vw, program=legacy_main_pickle(OUT / n), layout=layout,
           sys_info=MODERN_SYS_INFO)
    CHECKS.append((n, None))

    # 15. whole pickled nn.Module
    torch.manual_seed(15)
    seq = fill_seeded(nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                                    nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)), 15)
    n = "whole_module_sequential.pth"
    torch_save_zip(seq, OUT / n)
    record(n, "pytorch-zip", "torch.save(model) of an nn.Sequential of torch.nn layers (zip); conv "
           "has bias=False so its _parameters holds 'bias': None", seq.state_dict(),
           archive_prefix=zip_prefix(OUT / n), program=zip_data_pkl(OUT / n),
           whole_module={"class": "torch.nn.modules.container.Sequential"})
    CHECKS.append((n, "module"))

    n = "whole_module_sequential_legacy_stream.pth"
    torch_save_legacy(seq, OUT / n)
    record(n, "pytorch-legacy-stream", "torch.save(model, _use_new_zipfile_serialization=False): "
           "classes appear as ('module', class, source_file, source) persistent ids",
           seq.state_dict(), program=legacy_main_pickle(OUT / n), sys_info=MODERN_SYS_INFO,
           whole_module={"class": "torch.nn.modules.container.Sequential"})
    CHECKS.append((n, "module"))

    torch.manual_seed(16)
    custom = fill_seeded(ToyNetCustom(), 16)
    n = "whole_module_custom_class.pth"
    torch_save_zip(custom, OUT / n)
    record(n, "pytorch-zip", "torch.save(model) of a class defined in the generating script "
           "(GLOBAL '__main__ ToyNetCustom'); it has a non-persistent buffer 'scratch' that is in "
           "_buffers but not in state_dict (see _non_persistent_buffers_set)", custom.state_dict(),
           archive_prefix=zip_prefix(OUT / n), program=zip_data_pkl(OUT / n),
           whole_module={"class": f"{ToyNetCustom.__module__}.ToyNetCustom",
                         "non_persistent_buffers": ["scratch"]})
    CHECKS.append((n, "module"))

    # 16. malicious pickles: never unpickled here
    n = "malicious_posix_system_zip.pth"
    evil = collections.OrderedDict([("conv.weight", sd["conv.weight"]), ("payload", MaliciousPayload()),
                                    ("fc.bias", sd["fc.bias"])])
    torch_save_zip(evil, OUT / n)
    prog = zip_data_pkl(OUT / n)
    assert b"cposix\nsystem\n" in prog
    record(n, "pytorch-zip", "torch-written zip whose data.pkl calls posix.system('" +
           MALICIOUS_COMMAND + "') via GLOBAL+REDUCE between two real tensors; must be refused "
           "before anything is called", error="disallowedGlobal", error_contains="posix.system",
           program=prog, archive_prefix=zip_prefix(OUT / n))

    n = "malicious_os_system_legacy_stream.pth"
    torch_save_legacy(evil, OUT / n,
                      post=lambda p: p.replace(b"cposix\nsystem\n", b"cos\nsystem\n"))
    prog = legacy_main_pickle(OUT / n)
    assert b"cos\nsystem\n" in prog
    record(n, "pytorch-legacy-stream", "legacy stream whose object pickle calls os.system('" +
           MALICIOUS_COMMAND + "') via GLOBAL 'os system' + REDUCE; must be refused",
           error="disallowedGlobal", error_contains="os.system", program=prog)

    # 17. training checkpoint with argparse.Namespace and numpy scalars
    n = "training_ckpt_namespace_numpy.pth"
    ns = argparse.Namespace(lr=0.1, arch="toynet", epochs=90, nesterov=True)
    torch_save_zip({"state_dict": sd, "args": ns, "best_acc": np.float64(0.875), "epoch": 3,
                    "acc_np32": np.float32(0.25)}, OUT / n)
    record(n, "pytorch-zip", "training-script checkpoint: argparse.Namespace (NEWOBJ + BUILD), "
           "numpy float64/float32 scalars (numpy._core.multiarray.scalar + numpy.dtype + "
           "_codecs.encode bytes)", sd, archive_prefix=zip_prefix(OUT / n),
           nesting_path=["state_dict"], metadata=metadata_json(sd),
           extras={"args": {"__type__": "argparse.Namespace", "lr": 0.1, "arch": "toynet",
                            "epochs": 90, "nesterov": True},
                   "best_acc": 0.875, "epoch": 3, "acc_np32": 0.25},
           extras_keys=["args", "best_acc", "epoch", "acc_np32"], program=zip_data_pkl(OUT / n))
    CHECKS.append((n, ("state_dict",), ""))

    # 18. TorchScript
    n = "torchscript_toynet.pt"
    scripted = torch.jit.script(toynet(1))
    scripted.save(str(OUT / n))
    canonicalize_torch_zip(OUT / n)
    with zipfile.ZipFile(OUT / n) as z:
        ts_records = z.namelist()
    record(n, "torchscript", "torch.jit.script(ToyNet).save(): data.pkl holds __torch__.* objects "
           "(NEWOBJ + BUILD), constants.pkl present, code/ records are deflated",
           collections.OrderedDict(scripted.state_dict()), archive_prefix=zip_prefix(OUT / n),
           program=zip_data_pkl(OUT / n), records=ts_records)
    CHECKS.append((n, "torchscript"))

    # 19. Python-2-era legacy stream (torch 0.4.x on Python 2.7)
    n = "toynet_legacy_stream_py2.pth"
    write_py2_legacy_stream(sd, OUT / n)
    record(n, "pytorch-legacy-stream", "hand-assembled torch 0.4.1-on-Python-2.7 stream: py2 str as "
           "SHORT_BINSTRING (keys, 'storage', 'cpu', storage ids), memo from 1, OrderedDict as "
           "REDUCE(cls, ([[k, v], ...],)) + BUILD {'_metadata': ...}", sd,
           metadata=metadata_json(sd), program=split_legacy((OUT / n).read_bytes())[3],
           sys_info=MODERN_SYS_INFO)
    CHECKS.append((n, None))


# ---------------------------------------------------------------------------------------------
# Verification with the installed torch
# ---------------------------------------------------------------------------------------------


def verify() -> None:
    for check in CHECKS:
        name = check[0]
        path = OUT / name
        e = EXPECTED[name]
        if check[1] == "wrapped":
            with zipfile.ZipFile(path) as z, tempfile.TemporaryDirectory() as d:
                (member,) = z.infolist()
                z.extract(member, d)
                obj = torch.load(os.path.join(d, member.filename), weights_only=False)
            loaded = obj
        elif check[1] == "module":
            obj = torch.load(path, weights_only=False)
            assert isinstance(obj, nn.Module)
            loaded = obj.state_dict()
        elif check[1] == "torchscript":
            obj = torch.jit.load(str(path))
            loaded = obj.state_dict()
            assert isinstance(torch.load(path, weights_only=False), torch.jit.ScriptModule)
        else:
            obj = torch.load(path, weights_only=False)
            loaded = obj
            if check[1] is not None:
                for k in check[1]:
                    loaded = loaded[k]
                prefix = check[2]
                assert all(k.startswith(prefix) for k in loaded)
                loaded = collections.OrderedDict((k[len(prefix):], v) for k, v in loaded.items())
        names = [t["name"] for t in e["tensors"]]
        assert list(loaded.keys()) == names, (name, list(loaded.keys()), names)
        for t in e["tensors"]:
            got = tensor_entry(t["name"], loaded[t["name"]])
            assert got == t, (name, t["name"], got, t)
        if "layout" in e:
            for k, lay in e["layout"].items():
                v = loaded[k]
                assert list(v.stride()) == lay["stride"] and v.storage_offset() == lay["storage_offset"], (name, k)
        # extras
        for k, v in e.get("extras", {}).items():
            got = obj[k]
            if isinstance(got, argparse.Namespace):
                got = {"__type__": "argparse.Namespace", **vars(got)}
            elif isinstance(got, np.generic):
                got = got.item()
            assert got == v, (name, k, got, v)
        if e.get("nesting_path"):
            top = [k for k in obj.keys() if not e["nesting_path"] or k != e["nesting_path"][0]]
            assert top == e["extras_keys"], (name, top, e["extras_keys"])
        # weights_only: informative, recorded in expected.json
        if check[1] == "wrapped":
            with zipfile.ZipFile(path) as z, tempfile.TemporaryDirectory() as d:
                z.extract(z.infolist()[0], d)
                torch.load(os.path.join(d, z.infolist()[0].filename), weights_only=True)
            e["torch_weights_only_loads"] = True
        elif check[1] == "torchscript":
            e["torch_weights_only_loads"] = None
        else:
            try:
                torch.load(path, weights_only=True)
                e["torch_weights_only_loads"] = True
            except Exception:
                e["torch_weights_only_loads"] = False
        e["torch_loads"] = True

    # the big-endian-count stream: torch 2.13 must refuse it (documents the reason)
    name = "toynet_legacy_stream_bigendian_host_be_count.pth"
    try:
        torch.load(OUT / name, weights_only=False)
        raise AssertionError("expected torch to fail on " + name)
    except RuntimeError as err:
        assert "wrong byte size" in str(err) or "storage has wrong" in str(err), err
    # byte-swapping its counts must give exactly the little-endian-count stream
    be = (OUT / name).read_bytes()
    le = (OUT / "toynet_legacy_stream_bigendian_host.pth").read_bytes()
    assert len(be) == len(le) and be != le
    # self-consistency: every readable entry has hashes of the right length and names are unique
    for name, e in EXPECTED.items():
        if "tensors" in e:
            names = [t["name"] for t in e["tensors"]]
            assert len(set(names)) == len(names), name
            for t in e["tensors"]:
                assert len(t["sha256_raw"]) == 64
                n = 1
                for s in t["shape"]:
                    n *= s
                assert len(t["first"]) == min(4, n * (2 if t["dtype"].startswith("complex") else 1))
        else:
            assert "error" in e and "error_contains" in e


# ---------------------------------------------------------------------------------------------
# The example checkpoint in weights/examples (for the README's run command)
# ---------------------------------------------------------------------------------------------


class CifarBasicBlock(nn.Module):
    """BasicBlock of the CIFAR ResNets (He et al. 2016, sec. 4.2) in the layout of
    akamaster/pytorch_resnet_cifar10: option-A shortcut (stride-2 subsample + zero-pad channels),
    which has no parameters."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        self.pad = (planes - in_planes) // 2 if (stride != 1 or in_planes != planes) else None

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.pad is None else nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return torch.relu(out + sc)


class CifarResNet(nn.Module):
    """CIFAR ResNet-(6n+2): conv 3->16, three stages of n blocks (16, 32, 64 channels), linear 64->10."""

    def __init__(self, n: int = 1, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(*[CifarBasicBlock(16, 16) for _ in range(n)])
        self.layer2 = nn.Sequential(CifarBasicBlock(16, 32, 2), *[CifarBasicBlock(32, 32) for _ in range(n - 1)])
        self.layer3 = nn.Sequential(CifarBasicBlock(32, 64, 2), *[CifarBasicBlock(64, 64) for _ in range(n - 1)])
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


EXAMPLE_NAME = "cifar_resnet8_random.pth"


def write_example(folder: Path) -> dict:
    """A ResNet-8 for CIFAR-10 with seeded random weights, saved the way training scripts save:
    {'epoch', 'state_dict' (DataParallel: 'module.' prefix), 'best_acc1'} in a modern zip."""
    torch.manual_seed(2024)
    model = CifarResNet(n=1)
    g = torch.Generator().manual_seed(2024)
    with torch.no_grad():
        for name, t in model.named_parameters():
            if t.dim() > 1:
                nn.init.kaiming_normal_(t, generator=g)
            elif name.endswith("weight"):
                t.copy_(1 + 0.1 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
        for name, t in model.named_buffers():
            if name.endswith("running_mean"):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith("num_batches_tracked"):
                t.fill_(7820)  # 20 epochs x 391 iterations of batch 128
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / EXAMPLE_NAME
    ckpt = {"epoch": 20, "state_dict": nn.DataParallel(model).state_dict(), "best_acc1": 10.0}
    torch_save_zip(ckpt, path)
    loaded = torch.load(path, weights_only=True)
    ref = model.state_dict()
    assert [k[len("module."):] for k in loaded["state_dict"]] == list(ref)
    assert all(torch.equal(loaded["state_dict"]["module." + k], v) for k, v in ref.items())
    x = torch.linspace(-1, 1, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    logits = model(x)
    return {"file": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
            "size": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "tensors": len(ref), "values": sum(v.numel() for v in ref.values()),
            "logits_linspace_input": [[round(float(v), 6) for v in row] for row in logits.tolist()]}


def dump_expected(expected: dict) -> str:
    """JSON with one line per tensor entry (readable diffs, smaller file)."""
    for name, entry in expected.items():
        # Whole pickled modules name arbitrary classes: the reader harvests them only when asked.
        if name.startswith("whole_module_") and "error" not in entry:
            entry["needs_option"] = "allow_module_pickle"
    tokens = {}

    def tokenize(obj):
        if isinstance(obj, dict):
            if "sha256_raw" in obj:
                tok = f"@@T{len(tokens)}@@"
                tokens[tok] = json.dumps(obj)
                return tok
            return {k: tokenize(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [tokenize(v) for v in obj]
        return obj

    text = json.dumps(tokenize(expected), indent=1)
    for tok, line in tokens.items():
        text = text.replace(f'"{tok}"', line)
    assert json.loads(text) == expected
    return text + "\n"


def main() -> int:
    global OUT
    if os.environ.get("PYTHONHASHSEED") != "0":
        # TorchScript's code/ records list class constants in set order, which follows the string
        # hash seed: pin it so that two runs give identical bytes.
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--example-dir", type=Path, default=REPO / "weights" / "examples",
                    help="where the example training checkpoint goes (default: %(default)s)")
    args = ap.parse_args()
    OUT = args.out
    OUT.mkdir(parents=True, exist_ok=True)
    previous = OUT / "expected.json"
    if previous.exists():  # remove only what an earlier run of this script wrote
        for name in json.loads(previous.read_text()):
            (OUT / name).unlink(missing_ok=True)
        previous.unlink()
    if torch.__version__.split("+")[0] != "2.13.0":
        print(f"warning: fixtures were made with torch 2.13.0, this is {torch.__version__}",
              file=sys.stderr)
    build_all()
    verify()
    (OUT / "expected.json").write_text(dump_expected(EXPECTED))
    ex = write_example(args.example_dir)
    print(f"example checkpoint: {json.dumps(ex)}")
    total = sum(f.stat().st_size for f in OUT.iterdir() if f.is_file())
    print(f"wrote {len(EXPECTED)} fixtures + expected.json to {OUT} ({total} bytes); "
          f"{len(CHECKS)} reloaded with torch {torch.__version__} and matched")
    return 0


if __name__ == "__main__":
    sys.exit(main())
