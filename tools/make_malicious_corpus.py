#!/usr/bin/env python3
"""Writes the malicious-file corpus: Tests/Fixtures/malicious/*, plus manifest.json (issue 8).

Run from the repository root with the reference venv:

    /work/main/.venv-ref/bin/python tools/make_malicious_corpus.py

Every pickle here is assembled byte by byte and is never unpickled (not even by this script).
Code-running pickles point at a canary, `/tmp/pv_canary_<file stem>`; the tests check that no canary
exists after reading every file. Zip archives are assembled by hand (so that names, offsets and sizes
can lie); tar archives with Python's tarfile; HDF5 files with h5py (3.x), then byte-patched only in
their dataspace dimensions (declared sizes, not random header corruption).

manifest.json lists, per file: what it attacks, its container, and the typed error every reader must
give — `kind` (a `CheckpointError.Kind` case) and `contains` (a substring of the message). Files that
crash the current libhdf5-based reader are kept and marked `"needsNativeHDF5": true`.
Running the script twice gives byte-identical files.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import tarfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "Tests" / "Fixtures" / "malicious"

MANIFEST: list[dict] = []


def add(name: str, data: bytes, container: str, attack: str, kind: str, contains: str, **extra) -> None:
    (OUT / name).write_bytes(data)
    entry = {"file": name, "container": container, "attack": attack, "kind": kind, "contains": contains,
             "bytes": len(data)}
    entry.update(extra)
    MANIFEST.append(entry)


def canary(name: str) -> str:
    return "/tmp/pv_canary_" + name.split(".")[0]


# ---------------------------------------------------------------- pickle opcodes (assembled, never run)

def proto(p: int) -> bytes:
    return bytes([0x80, p])


def s(text: str | bytes) -> bytes:
    """SHORT_BINUNICODE / BINUNICODE of a str (bytes taken as already-encoded UTF-8)."""
    b = text.encode() if isinstance(text, str) else text
    return (b"\x8c" + bytes([len(b)]) + b) if len(b) < 256 else (b"X" + struct.pack("<I", len(b)) + b)


def glob(module: str, name: str) -> bytes:
    """GLOBAL (protocol 0 text form)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def sglob(module: str | bytes, name: str | bytes) -> bytes:
    """STACK_GLOBAL from two pushed strings."""
    return s(module) + s(name) + b"\x93"


def frame(body: bytes, claimed: int | None = None) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body) if claimed is None else claimed) + body


TUPLE1, TUPLE2, REDUCE, STOP, MARK = b"\x85", b"\x86", b"R", b".", b"("
EMPTY_DICT, EMPTY_TUPLE, EMPTY_LIST = b"}", b")", b"]"
NEWOBJ, BUILD, SETITEM = b"\x81", b"b", b"s"


def call(global_bytes: bytes, *args: bytes) -> bytes:
    """`global(*args)` by REDUCE."""
    return global_bytes + MARK + b"".join(args) + b"t" + REDUCE


def state_dict_around(evil: bytes) -> bytes:
    """A dict {'weight': <evil>} so the attack sits where a tensor would."""
    return EMPTY_DICT + s("weight") + evil + SETITEM


# ---------------------------------------------------------------- containers

def crc(b: bytes) -> int:
    return zlib.crc32(b) & 0xFFFFFFFF


def deflate(b: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(b) + c.flush()


def zip_bytes(members: list[dict], cd_offset_delta: int = 0, eocd_entries: int | None = None) -> bytes:
    """A hand-assembled zip. Each member: name, data, optional method (0/8), csize/usize overrides,
    local_name (different from the central one), crc, zip64 (dict of 64-bit sizes put in a ZIP64 extra field of the central entry)."""
    out = bytearray()
    central = bytearray()
    offsets: list[int] = []
    for m in members:
        name = m["name"].encode("utf-8")
        raw = m["data"]
        method = m.get("method", 0)
        payload = deflate(raw) if method == 8 else raw
        csize = m.get("csize", len(payload))
        usize = m.get("usize", len(raw))
        c = m.get("crc", crc(raw))
        offset = len(out)
        lname = m.get("local_name", m["name"]).encode("utf-8")
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x0800, method, 0, 0, c,
                           min(csize, 0xFFFFFFFF), min(usize, 0xFFFFFFFF), len(lname), 0)
        out += lname + payload
        offsets.append(offset)
        extra = b""
        csize32, usize32 = csize, usize
        if "zip64" in m:
            z = m["zip64"]
            body = struct.pack("<QQ", z["usize"], z["csize"])
            extra = struct.pack("<HH", 1, len(body)) + body
            csize32 = usize32 = 0xFFFFFFFF
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45 if extra else 20, 45 if extra else 20, 0x0800,
                               method, 0, 0, c, csize32, usize32, len(name), len(extra), 0, 0, 0, 0, offset)
        central += name + extra
    cd_offset = len(out)
    out += central
    n = len(members) if eocd_entries is None else eocd_entries
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_offset + cd_offset_delta, 0)
    return bytes(out)


def torch_zip(pickle: bytes, extra: list[dict] | None = None, method: int = 0) -> bytes:
    """A torch-zip-shaped archive: archive/data.pkl, archive/byteorder, archive/version (+ extras)."""
    members = [
        {"name": "archive/data.pkl", "data": pickle, "method": method},
        {"name": "archive/byteorder", "data": b"little"},
        {"name": "archive/version", "data": b"3\n"},
    ]
    return zip_bytes(members + (extra or []))


LEGACY_MAGIC = bytes([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E])


def legacy_stream(pickle: bytes, keys: bytes = b"\x80\x02].") -> bytes:
    """torch's legacy magic-number stream: magic, protocol 1001, sys_info, the object, storage keys."""
    sys_info = (proto(2) + EMPTY_DICT + MARK + s("protocol_version") + b"M\xe9\x03" + s("little_endian") + b"\x88"
                + s("type_sizes") + EMPTY_DICT + b"u" + STOP)
    return LEGACY_MAGIC + proto(2) + b"M\xe9\x03" + STOP + sys_info + pickle + keys


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uname = info.gname = ""
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def legacy_tar(pickle: bytes) -> bytes:
    """torch <= 0.1.9: a tar of storages (none), tensors (none) and the object pickle."""
    none = proto(2) + b"K\x00" + STOP
    return tar_bytes([("sys_info", proto(2) + EMPTY_DICT + STOP), ("pickle", pickle),
                      ("storages", none + proto(2) + EMPTY_LIST + STOP), ("tensors", none)])


# ---------------------------------------------------------------- pickles that would run code

def code_pickles() -> list[tuple[str, bytes, str, str, str]]:
    """(stem, pickle, what it attacks, kind, message substring). Each is a complete pickle."""
    P = []

    def cmd(stem: str) -> bytes:
        return s("touch " + canary(stem))

    def add_p(stem, body, what, kind, contains, protocol=2):
        P.append((stem, proto(protocol) + body + STOP, what, kind, contains))

    add_p("os_system", state_dict_around(call(glob("os", "system"), cmd("os_system"))),
          "os.system(cmd) by GLOBAL + REDUCE", "disallowedGlobal", "'os.system'")
    add_p("posix_system", call(glob("posix", "system"), cmd("posix_system")),
          "posix.system(cmd) by GLOBAL + REDUCE", "disallowedGlobal", "'posix.system'")
    add_p("nt_system", call(glob("nt", "system"), cmd("nt_system")),
          "nt.system(cmd) by GLOBAL + REDUCE", "disallowedGlobal", "'nt.system'")
    add_p("subprocess_popen", call(glob("subprocess", "Popen"), EMPTY_LIST + MARK + s("touch") +
                                   s(canary("subprocess_popen")) + b"e"),
          "subprocess.Popen(['touch', path])", "disallowedGlobal", "'subprocess.Popen'")
    add_p("subprocess_call_stack_global", frame(call(sglob("subprocess", "call"), cmd("subprocess_call_stack_global"))),
          "subprocess.call by STACK_GLOBAL inside a protocol-4 FRAME", "disallowedGlobal", "'subprocess.call'", 4)
    add_p("builtins_eval", frame(call(sglob("builtins", "eval"), s("__import__('os').system('touch "
                                                                     + canary("builtins_eval") + "')"))),
          "builtins.eval(source) by STACK_GLOBAL", "disallowedGlobal", "'builtins.eval'", 4)
    add_p("builtins_exec", call(glob("builtins", "exec"), s("import os; os.system('touch " + canary("builtins_exec")
                                                             + "')")),
          "builtins.exec(source) by GLOBAL", "disallowedGlobal", "'builtins.exec'", 3)
    # Protocol 0 only: text opcodes end to end, as Python 2 wrote them.
    P.append(("builtin_eval_proto0", b"c__builtin__\neval\n(S'__import__(\"os\").system(\"touch " +
              canary("builtin_eval_proto0").encode() + b"\")'\ntR.",
              "__builtin__.eval in a pure protocol-0 pickle", "disallowedGlobal", "'__builtin__.eval'"))
    add_p("builtins_getattr_import", call(glob("builtins", "getattr"), call(glob("builtins", "__import__"), s("os")),
                                          s("system")),
          "getattr(__import__('os'), 'system')", "disallowedGlobal", "'builtins.getattr'")
    add_p("copyreg_reconstructor_popen", call(glob("copyreg", "_reconstructor"), glob("subprocess", "Popen"),
                                              glob("builtins", "object"), b"N"),
          "copyreg._reconstructor (allowed) of subprocess.Popen", "disallowedGlobal", "'subprocess.Popen'")
    add_p("copyreg_newobj", call(glob("copyreg", "__newobj__"), glob("os", "_wrap_close")),
          "copyreg.__newobj__ (not allowed)", "disallowedGlobal", "'copyreg.__newobj__'")
    add_p("functools_partial", call(call(glob("functools", "partial"), glob("os", "system"), cmd("functools_partial")),
                                    ),
          "functools.partial(os.system, cmd)()", "disallowedGlobal", "'functools.partial'")
    add_p("operator_attrgetter", call(call(glob("operator", "attrgetter"), s("system")), glob("os", "path")),
          "operator.attrgetter('system')(module)", "disallowedGlobal", "'operator.attrgetter'")
    add_p("rebuild_tensor_wrong_module", call(glob("torch.utils", "_rebuild_tensor"), cmd("rebuild_tensor_wrong_module")),
          "torch._utils._rebuild_tensor lookalike in module torch.utils", "disallowedGlobal",
          "'torch.utils._rebuild_tensor'")
    add_p("rebuild_tensor_attribute_chain", frame(call(sglob("torch._utils", "_rebuild_tensor.__globals__"),
                                                       EMPTY_TUPLE)),
          "allowed module with a dotted name reaching a function's globals", "disallowedGlobal",
          "'torch._utils._rebuild_tensor.__globals__'", 4)
    add_p("torch_load_reentry", call(glob("torch", "load"), s(canary("torch_load_reentry"))),
          "torch.load (a torch global that is not a tensor class)", "disallowedGlobal", "'torch.load'")
    # STACK_GLOBAL whose strings come from the memo, put there long before and under other indices.
    memo = (s("os") + b"q\x07" + b"0" + s("system") + b"r\xff\xff\x00\x00" + b"0" + EMPTY_DICT +
            s("weight") + b"h\x07" + b"j\xff\xff\x00\x00" + b"\x93" + cmd("memo_stack_global") + TUPLE1 + REDUCE +
            SETITEM)
    add_p("memo_stack_global", frame(memo), "STACK_GLOBAL of 'os' and 'system' fetched by BINGET/LONG_BINGET "
          "after being memoised and popped", "disallowedGlobal", "'os.system'", 4)
    add_p("memo_stack_global_non_string", s("os") + b"\x94" + b"K\x05\x94" + b"h\x00h\x01\x93",
          "STACK_GLOBAL of a string and an int from the memo", "malformed", "STACK_GLOBAL needs two strings", 4)
    add_p("global_newline_module", frame(call(sglob("builtins\neval", "x"), cmd("global_newline_module"))),
          "STACK_GLOBAL module containing a newline ('builtins\\neval')", "disallowedGlobal", "is not on the allow-list", 4)
    add_p("global_dotted_module", frame(call(sglob("os.path", "os.system"), cmd("global_dotted_module"))),
          "STACK_GLOBAL 'os.path' + 'os.system' (reaches os through a submodule)", "disallowedGlobal",
          "'os.path.os.system'", 4)
    add_p("global_allowed_prefix", frame(call(sglob("collections", "OrderedDict.__init__.__globals__"), EMPTY_TUPLE)),
          "allowed class name followed by an attribute chain", "disallowedGlobal",
          "'collections.OrderedDict.__init__.__globals__'", 4)
    add_p("inst_os_system", MARK + cmd("inst_os_system") + b"ios\nsystem\n",
          "INST os.system (call with arguments in one opcode)", "disallowedGlobal", "'os.system'", 0)
    add_p("inst_allowed_class", MARK + s("x") + b"icollections\nOrderedDict\n",
          "INST of an allowed class with arguments", "disallowedGlobal", "INST would call collections.OrderedDict")
    add_p("obj_os_system", MARK + glob("os", "system") + cmd("obj_os_system") + b"o",
          "OBJ with os.system as the class", "disallowedGlobal", "'os.system'")
    add_p("obj_allowed_class", MARK + glob("argparse", "Namespace") + s("x") + b"o",
          "OBJ of an allowed class with arguments", "disallowedGlobal", "OBJ would call argparse.Namespace")
    add_p("newobj_popen", glob("subprocess", "Popen") + MARK + cmd("newobj_popen") + b"t" + NEWOBJ,
          "NEWOBJ of subprocess.Popen", "disallowedGlobal", "'subprocess.Popen'")
    add_p("newobj_tensor_class", glob("torch", "Tensor") + MARK + cmd("newobj_tensor_class") + b"t" + NEWOBJ,
          "NEWOBJ of an allowed but unmodelled class (torch.Tensor)", "disallowedGlobal", "NEWOBJ of torch.Tensor")
    add_p("newobj_ex_kwargs", frame(sglob("argparse", "Namespace") + EMPTY_TUPLE + EMPTY_DICT + s("x") + s("y") +
                                    SETITEM + b"\x92"),
          "NEWOBJ_EX with keyword arguments", "malformed", "NEWOBJ_EX with keyword arguments", 4)
    add_p("build_setstate_wrap_close", glob("os", "_wrap_close") + EMPTY_TUPLE + NEWOBJ + EMPTY_DICT + BUILD,
          "BUILD on an os._wrap_close instance (its __setstate__ would run)", "disallowedGlobal", "'os._wrap_close'")
    add_p("build_on_class", glob("argparse", "Namespace") + N_STATE_SETATTR + BUILD,
          "BUILD on a class (setattr of __setstate__ / __reduce__ on the class itself)", "malformed", "BUILD on a")
    add_p("ext1", b"\x82\x01" + cmd("ext1") + TUPLE1 + REDUCE, "EXT1 copyreg extension code", "disallowedGlobal",
          "EXT opcode")
    add_p("ext2", b"\x83\x01\x01" + cmd("ext2") + TUPLE1 + REDUCE, "EXT2 copyreg extension code", "disallowedGlobal",
          "EXT opcode")
    add_p("ext4", b"\x84\x01\x01\x01\x01" + cmd("ext4") + TUPLE1 + REDUCE, "EXT4 copyreg extension code",
          "disallowedGlobal", "EXT opcode")
    add_p("persid_string", state_dict_around(b"P" + canary("persid_string").encode() + b"\n"),
          "PERSID with a string id (protocol 0 persistent load)", "malformed", "not a storage id", 0)
    add_p("binpersid_storage_class_os", state_dict_around(
        MARK + s("storage") + glob("os", "system") + s("0") + s("cpu") + b"K\x01t" + b"Q"),
          "BINPERSID storage id whose storage class is os.system", "disallowedGlobal", "'os.system'")
    add_p("binpersid_storage_class_ordereddict", state_dict_around(
        MARK + s("storage") + glob("collections", "OrderedDict") + s("0") + s("cpu") + b"K\x01t" + b"Q"),
          "BINPERSID storage id whose storage class is an allowed non-storage global", "malformed",
          "not a storage class")
    add_p("proto5_out_of_band", b"\x97", "NEXT_BUFFER (out-of-band buffer)", "unsupported", "out-of-band", 5)
    return P


# BUILD's (None, slot state) form, which Python applies with setattr on the target (here a class).
N_STATE_SETATTR = (b"N" + EMPTY_DICT + s("__reduce__") + s("os.system") + SETITEM + TUPLE2)


# ---------------------------------------------------------------- pickles that exhaust resources

def resource_pickles() -> list[tuple[str, bytes, str, str, str, str]]:
    """(stem, pickle, attack, kind, substring, containers): "both" (stored zip and legacy stream),
    "legacy" (legacy stream only, for the large ones) or "deflated" (deflated zip only)."""
    R = []
    # Nesting: a million tuples, each wrapping the last (1 byte per level), deflated to a few hundred bytes.
    # Amplification: a few hundred bytes of deflate that inflate to a megabyte of pickle opcodes
    # (a million nested tuples; a million memo entries). Refused before inflating: a compressed
    # data.pkl may expand at most 32:1.
    R.append(("depth_tuple1_million", proto(2) + EMPTY_TUPLE + TUPLE1 * 1_000_000 + STOP,
              "1,000,000 nested 1-tuples, deflated 1000:1 into data.pkl", "limitExceeded",
              "compressed pickle declares 1000004 bytes", "deflated"))
    R.append(("memo_flood", proto(4) + b"N" + b"\x94" * 1_100_000 + STOP,
              "1,100,000 MEMOIZE opcodes, deflated 1000:1 into data.pkl", "limitExceeded",
              "compressed pickle declares 1100004 bytes", "deflated"))
    # Nesting that overflowed the stack when freed (Swift frees nested values recursively).
    R.append(("depth_tuple1", proto(2) + EMPTY_TUPLE + TUPLE1 * 60_000 + STOP,
              "60,000 nested 1-tuples (stack/destructor depth bomb)", "limitExceeded", "nested deeper", "legacy"))
    R.append(("depth_list_append", proto(2) + EMPTY_LIST * 30_000 + b"a" * 29_999 + STOP,
              "30,000 nested lists by EMPTY_LIST ... APPEND", "limitExceeded", "nested deeper", "legacy"))
    R.append(("depth_list_reverse_appends", proto(2) + b"".join(EMPTY_LIST + b"r" + struct.pack("<I", i) + b"0"
                                                          for i in range(8000))
              + b"".join(b"j" + struct.pack("<I", i + 1) + b"j" + struct.pack("<I", i) + b"a0"
                         for i in reversed(range(7999)))
              + b"j" + struct.pack("<I", 7999) + STOP,
              "8,000 memoised lists, each appended into the next in reverse order (nesting grows after capture)",
              "limitExceeded", "nested deeper", "legacy"))
    R.append(("depth_dict_small", proto(2) + (EMPTY_DICT + s("k")) * 250 + b"N" + SETITEM * 250 + STOP,
              "250 nested dicts (just over the depth cap)", "limitExceeded", "nested deeper", "both"))
    R.append(("mark_bomb", proto(2) + MARK * 10_000 + STOP, "10,000 open MARKs", "limitExceeded",
              "too many open MARKs", "legacy"))
    R.append(("memo_huge_index", proto(2) + b"N" + b"r\xff\xff\xff\xff" + b"j\xfe\xff\xff\xff" + STOP,
              "LONG_BINPUT at index 2^32-1, then LONG_BINGET of an undefined index", "malformed",
              "was never defined", "both"))
    R.append(("billion_laughs", proto(2) + EMPTY_LIST + b"q\x00" + (b"0" + MARK + b"h\x00" * 10 + b"l" + b"q\x00") * 12
              + STOP,
              "lists of 10 references to the previous list, 12 levels (10^12 values if copied)", "limitExceeded",
              "more values than its size allows", "both"))
    R.append(("self_containing_list", proto(2) + EMPTY_LIST + b"2" + b"a" + STOP,
              "a list that contains itself", "malformed", "contains itself", "both"))
    R.append(("long4_huge", proto(2) + b"\x8b\xff\xff\xff\x7f" + b"\x00" * 16 + STOP,
              "LONG4 claiming 2 GiB of digits", "limitExceeded", "integer of 2147483647 bytes", "both"))
    R.append(("long_text_huge", proto(0) + b"L" + b"9" * 5000 + b"L\n" + STOP,
              "protocol-0 LONG of 5000 digits", "limitExceeded", "digits", "both"))
    R.append(("binunicode8_lying", proto(4) + b"\x8d" + struct.pack("<Q", 1 << 62) + b"abc" + STOP,
              "BINUNICODE8 claiming 2^62 bytes", "truncated", "declares 4611686018427387904 bytes", "both"))
    R.append(("binbytes8_lying", proto(4) + b"\x8e" + struct.pack("<Q", 0xFFFFFFFFFFFFFFFF) + b"abc" + STOP,
              "BINBYTES8 claiming 2^64-1 bytes", "truncated", "declares 18446744073709551615 bytes", "both"))
    R.append(("bytearray8_lying", proto(5) + b"\x96" + struct.pack("<Q", 1 << 40) + STOP,
              "BYTEARRAY8 claiming 2^40 bytes", "truncated", "declares 1099511627776 bytes", "both"))
    R.append(("binunicode_lying", proto(2) + b"X\xff\xff\xff\xff" + b"abc" + STOP,
              "BINUNICODE claiming 4 GiB", "truncated", "declares 4294967295 bytes", "both"))
    R.append(("frame_lying", proto(4) + frame(b"N" + STOP, claimed=1 << 60),
              "FRAME claiming 2^60 bytes around a tiny pickle (the object is None)", "noStateDict", "holds a None", "both"))
    R.append(("binstring_negative", proto(1) + b"T\xff\xff\xff\xff" + STOP,
              "BINSTRING with a negative length", "malformed", "negative length", "both"))
    R.append(("stack_underflow_reduce", proto(2) + REDUCE + STOP, "REDUCE on an empty stack", "malformed",
              "stack underflow", "both"))
    R.append(("invalid_utf8_unicode", proto(2) + b"X\x02\x00\x00\x00\xc3\x28" + STOP,
              "BINUNICODE holding invalid UTF-8", "malformed", "not valid UTF-8", "both"))
    return R


# ---------------------------------------------------------------- zip attacks

def zip_attacks() -> None:
    good = proto(2) + EMPTY_DICT + STOP  # an empty state dict: the container is what attacks
    for stem, name, what in [
        ("zip_traversal_dotdot", "../../pv_canary_zip_traversal_dotdot", "member named ../../x"),
        ("zip_traversal_absolute", "/tmp/pv_canary_zip_traversal_absolute", "member with an absolute path"),
        ("zip_traversal_backslash", "..\\..\\pv_canary_zip_traversal_backslash", "member with backslashes"),
        ("zip_traversal_drive", "C:/pv_canary_zip_traversal_drive", "member with a drive letter"),
        ("zip_traversal_inner", "archive/data/../../../pv_canary_zip_traversal_inner", "member with .. inside"),
        ("zip_traversal_nul", "archive/data/0\x00.pkl", "member name containing NUL"),
    ]:
        data = torch_zip(good, [{"name": name, "data": b"touch " + canary(stem).encode()}])
        add(stem + ".pth", data, "zip", "path traversal: " + what, "malformed", "unsafe member name")
    for stem, name in [("tar_traversal_dotdot", "../../pv_canary_tar_traversal_dotdot"),
                       ("tar_traversal_absolute", "/tmp/pv_canary_tar_traversal_absolute")]:
        members = [("sys_info", proto(2) + EMPTY_DICT + STOP), ("pickle", good),
                   ("storages", proto(2) + b"K\x00" + STOP + proto(2) + EMPTY_LIST + STOP),
                   ("tensors", proto(2) + b"K\x00" + STOP), (name, b"touch " + canary(stem).encode())]
        add(stem + ".pth", tar_bytes(members), "tar", "legacy tar with a member named " + name, "malformed",
            "unsafe member name")
    add("zip_traversal_data_pkl.pth", zip_bytes([{"name": "../archive/data.pkl", "data": good},
                                                 {"name": "../archive/byteorder", "data": b"little"}]),
        "zip", "path traversal in the data.pkl record itself", "malformed", "unsafe member name")

    add("zip_overlap_local_header.pth", overlapped_zip(good), "zip",
        "two central entries pointing into one another's data (overlapping local records)", "malformed", "overlaps")
    add("zip_cd_past_eof.pth", zip_bytes([{"name": "archive/data.pkl", "data": good}], cd_offset_delta=1 << 20),
        "zip", "central directory offset past the end of the file", "malformed", "central directory")
    add("zip_eocd_entry_count.pth", zip_bytes([{"name": "archive/data.pkl", "data": good}], eocd_entries=65000),
        "zip", "end record claiming 65000 entries in a one-entry directory", "malformed", "entries need at least")
    add("zip_eocd_zip64_sentinel.pth", zip_bytes([{"name": "archive/data.pkl", "data": good}], eocd_entries=0xFFFF),
        "zip", "end record deferring to a ZIP64 record that is not there", "malformed", "no ZIP64 locator")
    # Deflate bombs. zeros: 4 MiB of zeros deflates to about 4 KB.
    zeros = b"\x00" * (4 << 20)
    add("zip_bomb_declared_1gib.pth", zip_bytes([
        {"name": "archive/data.pkl", "data": zeros, "method": 8, "usize": 1 << 30},
        {"name": "archive/byteorder", "data": b"little"}]),
        "zip", "deflated data.pkl declaring 1 GiB from a few KB", "limitExceeded",
        "compressed pickle declares 1073741824 bytes from")
    add("zip_bomb_undeclared.pth", zip_bytes([
        {"name": "archive/data.pkl", "data": zeros, "method": 8, "usize": 64, "crc": 0},
        {"name": "archive/byteorder", "data": b"little"}]),
        "zip", "deflated data.pkl declaring 64 bytes that inflates to 4 MiB", "integrity",
        "inflates to more than the declared 64 bytes")
    add("zip_bomb_storage.pth", torch_zip(
        proto(2) + EMPTY_DICT + s("w") + glob("torch._utils", "_rebuild_tensor_v2") + MARK + MARK + s("storage") +
        glob("torch", "FloatStorage") + s("0") + s("cpu") + b"J\x00\x00\x00\x10" + b"t" + b"Q" + b"K\x00" +
        b"J\x00\x00\x00\x10" + TUPLE1 + b"K\x01" + TUPLE1 + b"\x89" + glob("collections", "OrderedDict") +
        EMPTY_TUPLE + REDUCE + b"t" + REDUCE + SETITEM + STOP,
        [{"name": "archive/data/0", "data": zeros, "method": 8, "usize": 1 << 30}]),
        "zip", "storage record declaring 1 GiB (2^28 floats) deflated from a few KB", "limitExceeded", "1032:1")
    add("zip64_sizes_beyond_file.pth", zip_bytes([
        {"name": "archive/data.pkl", "data": good, "zip64": {"usize": 1 << 62, "csize": 1 << 62}}]),
        "zip", "ZIP64 extra field declaring 2^62-byte sizes", "malformed", "cannot fit before the central directory")
    add("zip64_uncompressed_huge_stored.pth", zip_bytes([
        {"name": "archive/data.pkl", "data": good, "zip64": {"usize": 1 << 40, "csize": len(good)}}]),
        "zip", "stored member whose ZIP64 uncompressed size (2^40) differs from its compressed size",
        "malformed", "stored member has compressed size")
    add("zip_duplicate_names.pth", zip_bytes([
        {"name": "archive/data.pkl", "data": good},
        {"name": "archive/data.pkl", "data": proto(2) + call(glob("os", "system"), s("touch " + canary("zip_duplicate_names")))
         + STOP}]),
        "zip", "two members named archive/data.pkl (the second would run os.system)", "malformed",
        "duplicate entry name")
    add("zip_local_central_mismatch.pth", zip_bytes([
        {"name": "archive/data.pkl", "data": good, "local_name": "archive/evil.pkl"},
        {"name": "archive/byteorder", "data": b"little"}]),
        "zip", "local header name differs from the central directory name", "malformed",
        "central directory names 'archive/data.pkl'")


def overlapped_zip(good: bytes) -> bytes:
    """Member B's local header lies inside member A's data (A claims more compressed bytes)."""
    a_name, b_name = b"archive/data.pkl", b"archive/byteorder"
    b_local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x0800, 0, 0, 0, crc(b"little"), 6, 6, len(b_name), 0) \
        + b_name + b"little"
    a_data = good + b_local  # A's declared data swallows B's record
    a_local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x0800, 0, 0, 0, 0, len(a_data), len(a_data),
                          len(a_name), 0) + a_name
    body = a_local + a_data
    b_offset = len(a_local) + len(good)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0x0800, 0, 0, 0, 0, len(a_data), len(a_data),
                          len(a_name), 0, 0, 0, 0, 0, 0) + a_name
    central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0x0800, 0, 0, 0, crc(b"little"), 6, 6,
                           len(b_name), 0, 0, 0, 0, 0, b_offset) + b_name
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, len(central), len(body), 0)
    return body + central + eocd


# ---------------------------------------------------------------- safetensors attacks

def st(header: bytes | str, data: bytes = b"", length: int | None = None) -> bytes:
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def safetensors_attacks() -> None:
    f4 = b"\x00\x00\x80\x3f" * 2
    A = lambda stem, data, what, kind, contains: add(stem + ".safetensors", data, "safetensors", what, kind, contains)
    A("st_header_beyond_file", st('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f4, length=4096),
      "header length 4096 in a 72-byte file", "truncated", "header size 4096 but only")
    A("st_header_2pow63", st('{}', length=1 << 63), "header length 2^63", "limitExceeded", "exceeds the 100000000-byte limit")
    A("st_offsets_overflow_int", st('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999999]}}', f4),
      "data_offsets beyond Int", "limitExceeded", "integer too large")
    A("st_offsets_2pow53", st('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,9007199254740992]}}', f4),
      "end offset 2^53 far beyond the data", "truncated", "tensors need 9007199254740992 buffer bytes")
    A("st_begin_after_end", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                               '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}', f4),
      "begin > end", "malformed", "ends (4) before it begins (8)")
    A("st_end_beyond_data", st('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', f4),
      "end offset beyond the data", "truncated", "tensors need 16 buffer bytes but the file has 8")
    A("st_overlapping", st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                           '"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f4),
      "two tensors sharing bytes", "malformed", "overlapping")
    A("st_duplicate_name", st('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                              '"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f4),
      "the same tensor name twice", "malformed", "names 'w' twice")
    A("st_negative_shape", st('{"w":{"dtype":"F32","shape":[-1,-2],"data_offsets":[0,8]}}', f4),
      "negative shape entries", "malformed", "expected a non-negative integer")
    A("st_huge_shape", st('{"w":{"dtype":"F32","shape":[9007199254740992],"data_offsets":[0,8]}}', f4),
      "shape [2^53] over 8 bytes", "integrity", "needs 36028797018963968 bytes but its offsets span 8")
    A("st_shape_product_overflow", st('{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],'
                                      '"data_offsets":[0,8]}}', f4),
      "shape product overflows Int", "limitExceeded", "overflows")
    A("st_empty_shape_overflow", st('{"w":{"dtype":"F32","shape":[0,9007199254740992,9007199254740992,'
                                    '9007199254740992],"data_offsets":[0,0]}}'),
      "zero-element tensor whose other dimensions multiply past Int (contiguous strides overflow)",
      "limitExceeded", "overflows")
    A("st_dtype_size_mismatch", st('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', f4),
      "F32 [3] in 8 bytes", "integrity", "needs 12 bytes but its offsets span 8")
    A("st_unknown_dtype", st('{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,8]}}', f4),
      "unknown dtype", "malformed", "unknown dtype 'F128'")
    A("st_non_utf8_name", st(b'{"\xff\xfe":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f4),
      "tensor name that is not UTF-8", "malformed", "UTF-8")
    A("st_deep_json_nesting", st('{"w":' + "[" * 20_000 + "]" * 20_000 + "}"),
      "20,000 nested JSON arrays", "malformed", "expected '{'")
    A("st_deep_json_shape", st('{"w":{"dtype":"F32","shape":' + "[" * 20_000 + "]" * 20_000 + ',"data_offsets":[0,0]}}'),
      "20,000 nested arrays where the shape goes", "malformed", "expected a non-negative integer")
    A("st_metadata_not_string_map", st('{"__metadata__":{"a":{"b":1}}}'),
      "__metadata__ holding an object", "malformed", "is not a string")
    A("st_metadata_list", st('{"__metadata__":["a","b"]}'),
      "__metadata__ that is a list", "malformed", "expected '{'")
    A("st_hidden_bytes", st('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f4),
      "bytes after the last tensor (hidden payload)", "malformed", "not covered by the header")
    A("st_too_many_dims", st('{"w":{"dtype":"F32","shape":[' + ",".join(["1"] * 100) + '],"data_offsets":[0,4]}}',
                             f4[:4]),
      "100 dimensions", "limitExceeded", "more than 64 integers")


# ---------------------------------------------------------------- HDF5 (h5py-made, dimensions patched)

def hdf5_attacks() -> None:
    import h5py  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    def make(build) -> bytes:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "f.h5"
            with h5py.File(p, "w", libver="earliest", track_order=False) as f:
                build(f)
            return p.read_bytes()

    def patch_dims(data: bytes, old: tuple[int, ...], new: tuple[int, ...], expect: int) -> bytes:
        """Replaces the dataspace dimension run `old` (8-byte little-endian each) by `new`, `expect` times
        (dims and max dims)."""
        a = b"".join(struct.pack("<Q", d) for d in old)
        b = b"".join(struct.pack("<Q", d) for d in new)
        assert data.count(a) == expect, (old, data.count(a))
        return data.replace(a, b)

    def ds(f, name, shape, **kw):
        f.create_dataset(name, data=np.arange(int(np.prod(shape)), dtype="<f4").reshape(shape), track_times=False, **kw)

    H = lambda stem, data, what, kind, contains, **kw: add(stem + ".h5", data, "hdf5", what, kind, contains, **kw)

    # A chunked dataset h5py creates without writing: 2^40 float32 elements declared, none stored.
    data = make(lambda f: f.create_dataset("w", shape=(1 << 40,), chunks=(1024,), dtype="<f4", track_times=False))
    H("h5_chunked_2pow40_unwritten", data, "chunked dataset declaring 2^40 float32 elements, no chunk written",
      "truncated", "needs 4398046511104 bytes")
    # A contiguous dataset whose dataspace is patched from [3, 5, 7] to [2^40, 1, 1].
    data = patch_dims(make(lambda f: ds(f, "w", (3, 5, 7))), (3, 5, 7), (1 << 40, 1, 1), 2)
    H("h5_contiguous_dims_2pow40", data, "contiguous dataset patched to declare [2^40, 1, 1] float32",
      "truncated", "needs 4398046511104 bytes")
    # Dimensions whose product overflows Int64.
    data = patch_dims(make(lambda f: ds(f, "w", (3, 5, 7))), (3, 5, 7), (1 << 32, 1 << 32, 1 << 32), 2)
    H("h5_dims_product_overflow", data, "dataset patched to [2^32, 2^32, 2^32] (product overflows)",
      "limitExceeded", "element count of shape [4294967296, 4294967296, 4294967296] overflows")

    # A Keras 2 weights file (save_weights layout) whose Dense kernel claims a shape whose product overflows.
    def keras2(f):
        f.attrs["layer_names"] = np.array([b"dense"])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        g = f.create_group("dense")
        g.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
        ds(g, "dense/kernel:0", (3, 11))
        ds(g, "dense/bias:0", (13,))
    data = patch_dims(make(keras2), (3, 11), (1 << 33, 1 << 33), 2)
    H("keras2_kernel_shape_overflow", data, "Keras 2 .h5 whose dense kernel declares [2^33, 2^33]",
      "limitExceeded", "element count of shape [8589934592, 8589934592] overflows")
    data = patch_dims(make(keras2), (3, 11), (1 << 20, 1 << 20), 2)
    H("keras2_kernel_1tib", data, "Keras 2 .h5 whose dense kernel declares [2^20, 2^20] float32 (4 TiB)",
      "truncated", "needs 4398046511104 bytes")

    # Keras 3 .weights.h5 layout: layers/<name>/vars/<i>.
    def keras3(f):
        f.attrs["date_saved"] = "2026-01-01@00:00:00"
        v = f.create_group("layers").create_group("dense").create_group("vars")
        ds(v, "0", (3, 17))
        ds(v, "1", (17,))
        f.create_group("vars")
    data = patch_dims(make(keras3), (3, 17), (1 << 40, 17), 2)
    H("keras3_vars_2pow40", data, "Keras 3 .weights.h5 whose layers/dense/vars/0 declares [2^40, 17]",
      "truncated", "needs 74766790688768 bytes")


# ---------------------------------------------------------------- main

def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        if old.name != "README.md":
            old.unlink()
    for stem, pkl, what, kind, contains in code_pickles():
        add(stem + "_zip.pth", torch_zip(pkl), "zip", what + " (torch zip data.pkl)", kind, contains)
        add(stem + "_legacy.pth", legacy_stream(pkl), "legacy", what + " (legacy stream object pickle)", kind, contains)
    # The same attacks through the other containers, for a representative few.
    for stem, pkl, what, kind, contains in code_pickles():
        if stem in ("os_system", "builtins_eval", "memo_stack_global", "inst_os_system", "ext1", "subprocess_popen"):
            add(stem + "_tar.pth", legacy_tar(pkl), "tar", what + " (legacy tar 'pickle' member)", kind, contains)
        if stem in ("posix_system", "builtin_eval_proto0"):
            inner = legacy_stream(pkl)
            add(stem + "_zipped_legacy.pth", zip_bytes([{"name": "model.pth", "data": inner}]), "zip",
                what + " (legacy stream wrapped in a zip)", kind, contains)
    # The amplification bombs again, as a legacy stream deflated inside a zip (torch.hub's zipped legacy
    # files): the tensor data in such a record may compress 1000:1, so each pickle inside is bounded.
    for stem, pkl, what, contains in [
        ("depth_tuple1_million", proto(2) + EMPTY_TUPLE + TUPLE1 * 1_000_000 + STOP, "1,000,000 nested 1-tuples",
         "nested deeper"),
        ("memo_flood", proto(4) + b"N" + b"\x94" * 1_000_000 + STOP, "1,000,000 MEMOIZE opcodes", "pickle longer than"),
    ]:
        add(stem + "_zipped_legacy.pth", zip_bytes([{"name": "model.pth", "data": legacy_stream(pkl), "method": 8}]),
            "zip", what + " in a legacy stream deflated 1000:1 inside a zip", "limitExceeded", contains)
    # A legacy tar whose persistent ids ask for a pickled module's source.
    add("tar_module_persid.pth", legacy_tar(proto(2) + MARK + s("module") + glob("os", "system") + s("src") + b"t" +
                                           b"Q" + STOP), "tar",
        "legacy tar persistent id ('module', ...) carrying source code", "disallowedGlobal", "'os.system'")
    # The magic-number pickle itself replaced by a code-running one (sniffed as a bare pickle: refused).
    add("legacy_magic_replaced.pth", proto(2) + call(glob("os", "system"), s("touch " + canary("legacy_magic_replaced")))
        + STOP, "bare", "a bare pickle calling os.system where the magic number should be", "unknownFormat",
        "bare Python pickle")
    for stem, pkl, what, kind, contains, containers in resource_pickles():
        if containers in ("both", "deflated"):
            add(stem + "_zip.pth", torch_zip(pkl, method=8 if containers == "deflated" else 0), "zip",
                what + " (torch zip data.pkl)", kind, contains)
        if containers in ("both", "legacy"):
            add(stem + "_legacy.pth", legacy_stream(pkl), "legacy", what + " (legacy stream object pickle)", kind,
                contains)
    zip_attacks()
    safetensors_attacks()
    hdf5_attacks()
    for e in MANIFEST:
        e["small"] = e["bytes"] <= 1024
        e.setdefault("needsNativeHDF5", False)
    MANIFEST.sort(key=lambda e: e["file"])
    (OUT / "manifest.json").write_text(json.dumps(MANIFEST, indent=1, sort_keys=True) + "\n")
    total = sum(e["bytes"] for e in MANIFEST)
    print(f"{len(MANIFEST)} files, {total} bytes in {OUT.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    main()
