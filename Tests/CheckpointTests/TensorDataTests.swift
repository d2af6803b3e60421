import Testing

@testable import Checkpoint

/// Views, strides, byte order and dtype conversion of `TensorData`, on storages built in memory.
@Suite("TensorData")
struct TensorDataTests {
    static func storage(_ floats: [Float], order: ByteOrder = .little) throws -> StorageData {
        var bytes: [UInt8] = []
        for f in floats {
            let b = f.bitPattern
            let le = [UInt8(b & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b >> 16 & 0xFF), UInt8(b >> 24)]
            bytes += order == .little ? le : le.reversed()
        }
        return try StorageData(key: "0", dtype: .float32, elementCount: floats.count, byteOrder: order, bytes: ByteBuffer(copying: bytes).all)
    }

    @Test("a transposed view gathers in row-major order")
    func transposed() throws {
        let s = try Self.storage((0..<6).map(Float.init))
        // storage is a 2x3 matrix; view it transposed as 3x2 with strides (1, 3)
        let t = try TensorData(dtype: .float32, shape: [3, 2], strides: [1, 3], storageOffset: 0, storage: s)
        #expect(!t.isContiguous)
        #expect(try t.floats() == [0, 3, 1, 4, 2, 5])
    }

    @Test("offset views and size-1 dimensions with odd strides")
    func offsetsAndSizeOne() throws {
        let s = try Self.storage((0..<10).map(Float.init))
        let t = try TensorData(dtype: .float32, shape: [2, 1, 3], strides: [3, 99, 1], storageOffset: 4, storage: s)
        #expect(t.isContiguous)
        #expect(try t.floats() == [4, 5, 6, 7, 8, 9])
        // zero-copy: the bytes are a window of the storage
        #expect(try t.contiguousBytes().buffer === s.bytes.buffer)
    }

    @Test("a view reaching past its storage is refused", arguments: [
        ([4, 3], [3, 1], 0), ([2, 3], [3, 1], 6), ([3], [6], 0), ([1], [1], 11), ([0], [1], 12),
    ])
    func outOfBounds(_ shape: [Int], _ strides: [Int], _ offset: Int) throws {
        let s = try Self.storage((0..<11).map(Float.init))
        #expect(throws: CheckpointError.self) {
            _ = try TensorData(dtype: .float32, shape: shape, strides: strides, storageOffset: offset, storage: s)
        }
    }

    @Test("negative and overflowing shapes are refused")
    func hostileShapes() throws {
        let s = try Self.storage([1, 2])
        #expect(throws: CheckpointError.self) { _ = try TensorData(dtype: .float32, shape: [-1], strides: [1], storageOffset: 0, storage: s) }
        #expect(throws: CheckpointError.self) {
            _ = try TensorData(dtype: .float32, shape: [Int.max / 2, 4], strides: [4, 1], storageOffset: 0, storage: s)
        }
        #expect(throws: CheckpointError.self) {
            _ = try TensorData(dtype: .float32, shape: [2, 2], strides: [Int.max, 1], storageOffset: 0, storage: s)
        }
    }

    @Test("a storage whose bytes do not match its element count is refused")
    func storageSize() throws {
        #expect(throws: CheckpointError.self) {
            _ = try StorageData(key: "0", dtype: .float32, elementCount: 3, byteOrder: .little, bytes: ByteBuffer(copying: [UInt8](repeating: 0, count: 8)).all)
        }
    }

    @Test("big-endian storages are byte-swapped on conversion")
    func bigEndian() throws {
        let s = try Self.storage([1.5, -2, 3.25], order: .big)
        let t = try TensorData(dtype: .float32, shape: [3], strides: [1], storageOffset: 0, storage: s)
        #expect(try t.floats() == [1.5, -2, 3.25])
    }

    @Test("half, bfloat16, integer and bool conversion are exact")
    func conversions() throws {
        func tensor(_ dtype: DType, _ bytes: [UInt8]) throws -> TensorData {
            let n = bytes.count / dtype.byteSize
            let s = try StorageData(key: "0", dtype: dtype, elementCount: n, byteOrder: .little, bytes: ByteBuffer(copying: bytes).all)
            return try TensorData(dtype: dtype, shape: [n], strides: [1], storageOffset: 0, storage: s)
        }
        // f16: 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), inf
        let h = try tensor(.float16, [0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00, 0x00, 0x7C])
        #expect(try h.floats() == [1, -2, 65504, 5.9604645e-08, .infinity])
        let bf = try tensor(.bfloat16, [0x80, 0x3F, 0x49, 0x40])  // 1.0, 3.140625
        #expect(try bf.floats() == [1, 3.140625])
        let i64 = try tensor(.int64, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 7, 0, 0, 0, 0, 0, 0, 0])
        #expect(try i64.floats() == [-1, 7])
        let b = try tensor(.bool, [0, 1, 1])
        #expect(try b.floats() == [0, 1, 1])
        let c = try tensor(.complex64, [UInt8](repeating: 0, count: 16))
        #expect(throws: CheckpointError.self) { _ = try c.floats() }
    }
}
