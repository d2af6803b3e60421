/// One object header message: its type, flags and body (a window into the file).
struct HDF5Message {
    /// Message type (0x01 dataspace, 0x03 datatype, 0x08 layout, 0x0C attribute, ...).
    let type: UInt16
    /// Message flags (bit 1: shared).
    let flags: UInt8
    /// The message body.
    let body: ByteSlice
    /// Absolute file offset of the body.
    let offset: Int

    /// Whether the body is a reference to a shared message elsewhere (committed datatypes, ...).
    var isShared: Bool { flags & 0x02 != 0 }
}

/// The messages of one object (NIL and continuation messages dropped), in file order.
struct HDF5ObjectHeader {
    /// Absolute file offset of the header.
    let address: Int
    /// Its messages, over all continuation blocks.
    let messages: [HDF5Message]

    /// The first message of `type`.
    func first(_ type: UInt16) -> HDF5Message? { messages.first { $0.type == type } }

    /// Every message of `type`.
    func all(_ type: UInt16) -> [HDF5Message] { messages.filter { $0.type == type } }
}
