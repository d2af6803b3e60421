#!/usr/bin/env python3
"""Writes the small zip and tar fixtures in Tests/Fixtures/archive/ with Python's own zipfile and
tarfile modules, so the Swift readers are tested against a second, independent writer.

Run from the package root:  python3 tools/make_archive_fixtures.py
Only the standard library is needed. The output is deterministic (fixed dates, owners and contents);
Tests/CheckpointTests/ZipArchiveTests.swift and TarArchiveTests.swift assert the exact contents below.
"""
import io
import os
import tarfile
import zipfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "archive")
DATE = (2020, 1, 2, 3, 4, 6)
MTIME = 1577934246

# Contents shared with the Swift tests (keep in sync).
STORED = b"hello, stored member\n"
REPEATED = b"PretrainedVision " * 400           # compresses well
BINARY = bytes(range(256)) * 4                   # 1024 bytes, every byte value
LONG_NAME = "archive/" + "very_long_directory_name/" * 6 + "tensor_data.bin"   # > 100 bytes
UNICODE_NAME = "archive/na\u00efve-\u00fcber.txt"
USTAR_PREFIXED = "prefix/" + "p" * 100 + "/file.txt"   # 100 < len <= 255: fits ustar prefix + name


def zip_member(zf, name, data, method):
    info = zipfile.ZipInfo(name, date_time=DATE)
    info.compress_type = method
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def write_plain_zip():
    """Stored and deflated members, an empty member of each kind, a directory, a UTF-8 name, a comment."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zip_member(zf, "archive/stored.txt", STORED, zipfile.ZIP_STORED)
        zip_member(zf, "archive/repeated.txt", REPEATED, zipfile.ZIP_DEFLATED)
        zip_member(zf, "archive/binary.bin", BINARY, zipfile.ZIP_DEFLATED)
        zip_member(zf, "archive/empty_stored", b"", zipfile.ZIP_STORED)
        zip_member(zf, "archive/empty_deflated", b"", zipfile.ZIP_DEFLATED)
        zip_member(zf, "archive/dir/", b"", zipfile.ZIP_STORED)
        zip_member(zf, UNICODE_NAME, STORED, zipfile.ZIP_STORED)
        zf.comment = b"fixture comment"
    return buf.getvalue()


def write_force_zip64():
    """Members written through ZipFile.open(force_zip64=True): ZIP64 extra fields in the local headers."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, method in [
            ("archive/stored.txt", STORED, zipfile.ZIP_STORED),
            ("archive/repeated.txt", REPEATED, zipfile.ZIP_DEFLATED),
        ]:
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.compress_type = method
            with zf.open(info, "w", force_zip64=True) as f:
                f.write(data)
    return buf.getvalue()


class Unseekable(io.RawIOBase):
    """A write-only stream that cannot seek, so zipfile writes data descriptors (flag bit 3)."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.data += b
        return len(b)

    def tell(self):
        return len(self.data)

    def seekable(self):
        return False


def write_streamed_zip():
    """Local headers with zero CRC and sizes followed by data descriptors, as PyTorch writes them."""
    sink = Unseekable()
    with zipfile.ZipFile(sink, "w") as zf:
        for name, data, method in [
            ("archive/stored.txt", STORED, zipfile.ZIP_STORED),
            ("archive/repeated.txt", REPEATED, zipfile.ZIP_DEFLATED),
            ("archive/binary.bin", BINARY, zipfile.ZIP_DEFLATED),
        ]:
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.compress_type = method
            with zf.open(info, "w") as f:
                f.write(data)
    return bytes(sink.data)


def tar_member(tf, name, data, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = MTIME
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.linkname = linkname
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    else:
        tf.addfile(info)


def write_tar(fmt):
    """The PyTorch legacy member names, a directory, a symlink, a long name and a non-ASCII name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        tar_member(tf, "storages", REPEATED)
        tar_member(tf, "dir", b"", tarfile.DIRTYPE)
        tar_member(tf, "tensors", BINARY)
        tar_member(tf, "link", b"", tarfile.SYMTYPE, linkname="tensors")
        tar_member(tf, "pickle", STORED)
        tar_member(tf, "empty", b"")
        tar_member(tf, LONG_NAME, STORED)
        if fmt != tarfile.USTAR_FORMAT:
            tar_member(tf, UNICODE_NAME, BINARY[:100])
        else:
            tar_member(tf, USTAR_PREFIXED, BINARY[:100])
    return buf.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    outputs = {
        "plain.zip": write_plain_zip(),
        "force_zip64.zip": write_force_zip64(),
        "streamed.zip": write_streamed_zip(),
        "pax.tar": write_tar(tarfile.PAX_FORMAT),
        "gnu.tar": write_tar(tarfile.GNU_FORMAT),
        "ustar.tar": write_tar(tarfile.USTAR_FORMAT),
    }
    for name, data in outputs.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
