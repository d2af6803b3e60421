/// Reads PyTorch's zip format (torch >= 1.6): `<prefix>/data.pkl` plus one `<prefix>/data/<key>`
/// record per storage, found through the central directory (FORMATS.md §1.1). Stored records become
/// zero-copy views into the mapped file. Also recognises a zip that wraps one legacy file (as
/// torch.hub accepts) and TorchScript archives.
enum TorchZipReader {
    /// Most a compressed data.pkl may expand, as a multiple of its compressed size.
    static let maxDeflatedPickleRatio = 32
    /// A compressed data.pkl may always expand to this many bytes.
    static let maxDeflatedPickleFloor = 16 << 10

    static func read(_ data: ByteSlice, options: ReadOptions) throws(CheckpointError) -> LoadedObject {
        let zip = try ZipArchive(data)
        // torch never writes such names; refuse them rather than pass them on to anything that extracts.
        if let unsafe = zip.entries.first(where: \.hasUnsafeName) {
            throw CheckpointError(
                .malformed,
                "unsafe member name \(String(reflecting: unsafe.name)) (absolute, '..', backslash, drive letter or NUL)",
                offset: unsafe.localHeaderOffset)
        }
        let pickles = zip.entries.filter { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }
        guard !pickles.isEmpty else {
            let files = zip.entries.filter { !$0.name.hasSuffix("/") }
            if files.count == 1 { return try readWrappedLegacy(zip, files[0], options: options) }
            let names = zip.entries.prefix(8).map(\.name).joined(separator: ", ")
            throw CheckpointError(.malformed, "zip archive has no data.pkl record and is not a single wrapped file (records: \(names))")
        }
        // The top-level record folder: torch derives it from the first record; take the shallowest data.pkl.
        let depth = { (name: String) in name.split(separator: "/", omittingEmptySubsequences: false).count }
        let shallowest = pickles.map { depth($0.name) }.min()!
        let candidates = pickles.filter { depth($0.name) == shallowest }
        guard candidates.count == 1 else {
            throw CheckpointError(.malformed, "zip archive has \(candidates.count) data.pkl records: \(candidates.map(\.name).joined(separator: ", "))")
        }
        let pickleEntry = candidates[0]
        let prefix = String(pickleEntry.name.dropLast("data.pkl".count))

        func record(_ name: String) throws(CheckpointError) -> ByteSlice? {
            guard let e = zip.entry(named: prefix + name) else { return nil }
            return try zip.contents(of: e, verifyCRC: options.verifyChecksums)
        }
        func text(_ name: String) throws(CheckpointError) -> String? {
            guard let r = try record(name) else { return nil }
            guard r.count <= 64 else { throw CheckpointError(.malformed, "record '\(name)' is \(r.count) bytes", member: prefix + name) }
            return String(decoding: r.raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        let isTorchScript = zip.entry(named: prefix + "constants.pkl") != nil
        var formatVersion: [String: String] = [:]
        if let v = try text("version") { formatVersion["version"] = v }
        if let v = try text(".format_version") { formatVersion[".format_version"] = v }
        if let v = try text(".storage_alignment") { formatVersion[".storage_alignment"] = v }
        var notes: [String] = []
        var byteOrder = ByteOrder.little
        if let order = try text("byteorder") {
            guard let o = ByteOrder(rawValue: order) else {
                throw CheckpointError(.malformed, "byteorder record says '\(order.prefix(16))', expected 'little' or 'big'", member: prefix + "byteorder")
            }
            byteOrder = o
        } else {
            notes.append("no byteorder record: little-endian assumed, as torch does")
        }

        var refs: [String: StorageRef] = [:]
        let load: Unpickler.PersistentLoad = { pid, offset throws(CheckpointError) in
            guard let id = try TorchPickle.storageID(pid, offset: offset) else {
                throw CheckpointError(.malformed, "persistent id is a \(pid.typeName), not a storage id", offset: offset)
            }
            if let existing = refs[id.key] {
                guard existing.dtype == id.dtype, existing.elementCount == id.elementCount else {
                    throw CheckpointError(.malformed, "storage '\(id.key)' is declared twice with different types or sizes", offset: offset)
                }
                return .storage(existing)
            }
            let name = prefix + "data/" + id.key
            guard let entry = zip.entry(named: name) else {
                throw CheckpointError(.malformed, "storage '\(id.key)' has no record '\(name)'", offset: offset)
            }
            // Stored records are checked on first use of their bytes (deflated ones are checked as they inflate).
            let deferCheck = options.verifyChecksums && options.deferStorageChecksums && entry.method == 0 && entry.crc32 != 0
            let bytes = try zip.contents(of: entry, verifyCRC: options.verifyChecksums && !deferCheck)
            let checksum = deferCheck ? DeferredChecksum(expected: entry.crc32, member: name, offset: entry.dataOffset) : nil
            let ref = StorageRef(key: id.key, dtype: id.dtype, elementCount: id.elementCount, location: id.location)
            do throws(CheckpointError) {
                ref.data = try StorageData(
                    key: id.key, dtype: id.dtype, elementCount: id.elementCount, byteOrder: byteOrder, bytes: bytes, checksum: checksum)
            } catch {
                throw error.inMember(name)
            }
            refs[id.key] = ref
            return .storage(ref)
        }
        // torch stores data.pkl uncompressed; a re-zipped one deflates about 4:1. A pickle costs up to
        // a few hundred bytes of memory per byte, so a deflated one may not expand beyond 32:1 (16 KiB
        // at least): a 1 KB file must not become a megabyte of pickle opcodes.
        if pickleEntry.method != 0 {
            let allowed = max(maxDeflatedPickleFloor, pickleEntry.compressedSize.multipliedReportingOverflow(by: maxDeflatedPickleRatio).partialValue)
            guard pickleEntry.uncompressedSize <= allowed else {
                throw CheckpointError(
                    .limitExceeded,
                    "compressed pickle declares \(pickleEntry.uncompressedSize) bytes from \(pickleEntry.compressedSize); "
                        + "at most \(maxDeflatedPickleRatio):1 (or \(maxDeflatedPickleFloor) bytes) is allowed",
                    offset: pickleEntry.localHeaderOffset, member: pickleEntry.name)
            }
        }
        let pickle = try zip.contents(of: pickleEntry, verifyCRC: options.verifyChecksums)
        let root: PickleValue
        do throws(CheckpointError) {
            let (node, _) = try TorchPickle.run(
                pickle, options: options, allowOpaque: options.allowModulePickle || isTorchScript, persistentLoad: load)
            root = try TorchPickle.freeze(node, pickleLength: pickle.count, options: options)
        } catch {
            if isTorchScript, error.kind == .disallowedGlobal || error.kind == .malformed {
                throw CheckpointError(
                    .torchScript,
                    "TorchScript archive whose module pickle could not be walked (\(error.message)); in Python run torch.jit.load(path).state_dict() and torch.save it",
                    offset: error.offset, member: pickleEntry.name)
            }
            throw error.inMember(pickleEntry.name)
        }
        let deferred = refs.values.filter { $0.data?.checksum != nil }.count
        if deferred > 0 {
            notes.append("CRC-32 of \(deferred) storage records is checked when their bytes are first used")
        }
        return LoadedObject(
            root: root, format: isTorchScript ? .torchScript : .torchZip, formatVersion: formatVersion, byteOrder: byteOrder,
            archivePrefix: prefix.isEmpty ? nil : String(prefix.dropLast()), notes: notes)
    }

    /// A zip holding exactly one legacy-format file (torch.hub's `_legacy_zip_load`).
    private static func readWrappedLegacy(_ zip: ZipArchive, _ entry: ZipEntry, options: ReadOptions) throws(CheckpointError) -> LoadedObject {
        let inner = try zip.contents(of: entry, verifyCRC: options.verifyChecksums)
        // Tensor data may compress far better than pickles do: bound each pickle inside, not the record.
        var options = options
        if entry.method != 0 {
            options.limits.maxPickleBytes = max(
                maxDeflatedPickleFloor, entry.compressedSize.multipliedReportingOverflow(by: maxDeflatedPickleRatio).partialValue)
        }
        var loaded: LoadedObject
        do throws(CheckpointError) {
            switch FormatSniffer.sniff(inner) {
            case .torchLegacyStream: loaded = try LegacyStreamReader.read(inner, options: options)
            case .tar: loaded = try LegacyTarReader.read(inner, options: options)
            case let other:
                throw CheckpointError(.unknownFormat, "the zip's only record is \(other.description), not a legacy torch file")
            }
        } catch {
            throw error.inMember(entry.name)
        }
        loaded.formatVersion["wrapped.format"] = loaded.format.rawValue
        loaded.format = .torchZipWrappedLegacy
        loaded.formatVersion["wrapped.member"] = entry.name
        return loaded
    }
}

import Foundation
