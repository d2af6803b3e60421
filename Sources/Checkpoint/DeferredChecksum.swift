import Foundation

/// A CRC-32 check of a stored zip record, run once when its bytes are first used.
///
/// Reading a checkpoint then costs what mapping it costs (`inspect` on a 100 MB file reads only its
/// pickle), while any tensor whose bytes are used is still verified before they are handed out.
final class DeferredChecksum: @unchecked Sendable {
    let expected: UInt32
    let member: String
    let offset: Int
    private let lock = NSLock()
    private var file: String?
    private var outcome: CheckpointError??  // nil: not yet run; .some(nil): passed

    init(expected: UInt32, member: String, offset: Int) {
        self.expected = expected
        self.member = member
        self.offset = offset
    }

    /// Names the file in a later error (the reader learns the name after the record is made).
    func name(file: String) {
        lock.lock()
        defer { lock.unlock() }
        if self.file == nil { self.file = file }
    }

    func verify(_ bytes: ByteSlice) throws(CheckpointError) {
        lock.lock()
        defer { lock.unlock() }
        if outcome == nil {
            let actual = Inflate.crc32(bytes)
            outcome = .some(
                actual == expected
                    ? nil
                    : CheckpointError(
                        .integrity, String(format: "CRC-32 is %08x but the central directory says %08x", actual, expected),
                        offset: offset, member: member, file: file))
        }
        if case .some(.some(let error)) = outcome { throw error }
    }
}
