import Foundation
import Testing

@testable import Checkpoint

/// The HDF5 reader on files made by h5py 3.16 and Keras 3.15 (tools/make_hdf5_fixtures.py).
@Suite("HDF5 reader")
struct HDF5ReaderTests {
    static let dir = Fixtures.root.appendingPathComponent("hdf5")
    static func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// The five files holding the same tiny Keras ResNet, written every way Keras writes weights.
    static let kerasResNetFiles = [
        "keras3_resnet.weights.h5", "keras3_legacy_resnet.h5", "keras3_full_resnet.h5", "keras2_resnet_tf.h5",
    ]

    @Test("flat h5py file: every dtype, byte order and storage path, values as h5py wrote them")
    func flatDtypes() throws {
        let data = try Data(contentsOf: Self.dir.appendingPathComponent("flat_dtypes.json"))
        let expected = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        let sd = try CheckpointReader.read(Self.path("flat_dtypes.h5"))
        #expect(sd.provenance.format == .hdf5)
        #expect(Set(sd.names) == Set(expected.keys))
        let dtypeNames = [
            "float32": DType.float32, "float16": .float16, "float64": .float64, "int64": .int64, "bool": .bool, "uint8": .uint8,
            "int32": .int32,
        ]
        for (name, e) in expected {
            let t = try #require(sd[name])
            #expect(t.shape == (e["shape"] as? [Int] ?? [-1]), "\(name) shape")
            #expect(t.dtype == dtypeNames[e["dtype"] as? String ?? ""], "\(name) dtype \(t.dtype)")
            let values = (e["values"] as? [Double] ?? []).map { Float($0) }
            #expect(try t.floats() == values, "\(name) values")
        }
        #expect(sd["d.be_f32"]?.storage.byteOrder == .big)
        #expect(sd["a.f32"]?.storage.byteOrder == .little)
        // Root string attributes (variable- and fixed-length) become extras.
        let extras = Dictionary(sd.extras.map { ($0.name, $0.value.stringValue ?? "") }, uniquingKeysWith: { a, _ in a })
        #expect(extras["source"] == "tools/make_hdf5_fixtures.py")
        #expect(extras["note"] == "fixed-length bytes")
    }

    @Test("contiguous datasets are zero-copy windows into the mapped file; compressed ones are read by libhdf5")
    func zeroCopy() throws {
        let buffer = try ByteBuffer(mapping: Self.path("flat_dtypes.h5"))
        let sd = try CheckpointReader.read(buffer.all, name: "flat_dtypes.h5")
        #expect(sd["a.f32"]?.storage.bytes.buffer === buffer)
        #expect(sd["d.be_f32"]?.storage.bytes.buffer === buffer)
        #expect(sd["i.chunked_gzip"]?.storage.bytes.buffer !== buffer)
        #expect(sd["i.chunked_gzip"]?.shape == [8, 5])
    }

    @Test("a flat torch state dict: dotted names, 0-d num_batches_tracked")
    func flatStateDict() throws {
        let sd = try CheckpointReader.read(Self.path("flat_small_densenet.h5"))
        #expect(sd.provenance.format == .hdf5)
        #expect(sd.names.contains("features.conv0.weight"))
        let tracked = try #require(sd["features.norm0.num_batches_tracked"])
        #expect(tracked.shape == [] && tracked.dtype == .int64)
    }

    @Test("Keras ResNet written four ways reads to the same keys and values", arguments: kerasResNetFiles)
    func kerasVariantsAgree(_ file: String) throws {
        let reference = try CheckpointReader.read(Self.path("keras3_legacy_resnet.h5"))
        let sd = try CheckpointReader.read(Self.path(file))
        #expect(sd.names.sorted() == reference.names.sorted())
        #expect(sd.names.contains("conv1_conv/kernel") && sd.names.contains("predictions/kernel"))
        #expect(!sd.names.contains { $0.hasSuffix(":0") })
        for name in reference.names {
            #expect(try sd[name]?.floats() == reference[name]?.floats(), "\(file): \(name)")
        }
        #expect(sd["conv1_conv/kernel"]?.shape == [7, 7, 3, 64])
    }

    @Test("formats, versions and notes of each Keras layout")
    func kerasProvenance() throws {
        let k2 = try CheckpointReader.read(Self.path("keras2_resnet_tf.h5"))
        #expect(k2.provenance.format == .kerasH5)
        #expect(k2.provenance.formatVersion["keras_version"] == "2.2.4")
        #expect(k2.provenance.formatVersion["backend"] == "tensorflow")
        #expect(k2["conv1_conv/kernel"]?.dtype == .float64)
        #expect(k2["conv2_block1_2_conv/kernel"]?.dtype == .float16)
        #expect(k2["conv2_block1_1_conv/kernel"]?.storage.byteOrder == .big)
        let full = try CheckpointReader.read(Self.path("keras3_full_resnet.h5"))
        #expect(full.provenance.notes.contains { $0.contains("model_weights") })
        let k3 = try CheckpointReader.read(Self.path("keras3_resnet.weights.h5"))
        #expect(k3.provenance.format == .keras3)
        #expect(k3.provenance.formatVersion["model name"] == "resnet")
        let caffe = try CheckpointReader.read(Self.path("keras22_resnet_caffe.h5"))
        #expect(caffe.names.contains("res2a_branch2a/kernel") && caffe.names.contains("bn2a_branch2a/moving_variance"))
        let keras1 = try CheckpointReader.read(Self.path("keras1_channels_first.h5"))
        #expect(keras1.provenance.notes.contains { $0.contains("Keras 1") })
    }

    @Test("a Keras 3 file without layer names keeps Keras's automatic names, numbered in order")
    func kerasAutomaticNames() throws {
        let sd = try CheckpointReader.read(Self.path("keras3_resnet_noname.weights.h5"))
        #expect(sd.names.contains("conv2d/kernel") && sd.names.contains("conv2d_10/bias"))
        #expect(sd.names.contains("batch_normalization_9/moving_variance") && sd.names.contains("dense/kernel"))
        #expect(sd.provenance.notes.contains { $0.contains("no name attribute") })
        let named = try CheckpointReader.read(Self.path("keras3_resnet.weights.h5"))
        #expect(try sd["conv2d/kernel"]?.floats() == named["conv1_conv/kernel"]?.floats())
    }

    @Test("Keras 3 DenseNet: positional variables named by layer class")
    func kerasDenseNet() throws {
        let sd = try CheckpointReader.read(Self.path("keras3_densenet.weights.h5"))
        for name in [
            "conv1_conv/kernel", "conv2_block1_0_bn/gamma", "conv2_block1_0_bn/moving_variance", "pool2_conv/kernel", "bn/beta",
            "predictions/bias",
        ] {
            #expect(sd[name] != nil, "\(name)")
        }
        #expect(sd["conv1_conv/bias"] == nil)  // DenseNet convolutions have no bias
    }

    @Test("a Theano-backend Keras file is refused, saying why")
    func theanoRefused() {
        #expect {
            try CheckpointReader.read(Self.path("keras2_theano.h5"))
        } throws: { error in
            guard let e = error as? CheckpointError else { return false }
            return e.kind == .unsupported && e.message.contains("Theano") && e.description.contains("keras2_theano.h5")
        }
    }

    @Test("soft and external links are not followed")
    func linksRefused() {
        #expect {
            try CheckpointReader.read(Self.path("flat_links.h5"))
        } throws: { error in
            guard let e = error as? CheckpointError else { return false }
            return e.kind == .unsupported && e.message.contains("link")
        }
    }

    @Test("truncated HDF5 files and a damaged superblock give typed errors")
    func corruptFiles() throws {
        let original = try Data(contentsOf: Self.dir.appendingPathComponent("keras3_legacy_resnet.h5"))
        var rng = SplitMix64(seed: 0x4844_4635)
        // Truncations at assorted points.
        for cut in [8, 64, 512, 2048, original.count / 3, original.count / 2, original.count - 100] {
            let bytes = Array(original.prefix(cut))
            let buffer = ByteBuffer(copying: bytes)
            do {
                let sd = try CheckpointReader.read(buffer.all, name: "truncated-\(cut).h5")
                for e in sd.entries { _ = try? e.tensor.floats() }
            } catch {
                #expect(error.file == "truncated-\(cut).h5")
            }
        }
        // A damaged superblock (version byte, then the end-of-file address) is refused by libhdf5.
        // (Arbitrary damage deeper in the object headers can crash libhdf5 1.10 itself, e.g. in
        // H5HG_read on a forged variable-length type: the HDF5 path relies on libhdf5's own checks.)
        for (offset, value) in [(8, UInt8(9)), (40, UInt8(0xFF)), (41, UInt8(0xFF))] {
            var bytes = Array(original)
            bytes[offset] = value
            do {
                let sd = try CheckpointReader.read(ByteBuffer(copying: bytes).all, name: "superblock.h5")
                for e in sd.entries { _ = try? e.tensor.floats() }
            } catch {
                #expect(error.file == "superblock.h5")
            }
        }
    }

    @Test("concurrent reads through the one HDF5 lock agree")
    func concurrentReads() async throws {
        let expected = try fingerprint(try CheckpointReader.read(Self.path("keras2_resnet_tf.h5")))
        try await withThrowingTaskGroup(of: [String].self) { group in
            for i in 0..<8 {
                let file = i % 2 == 0 ? "keras2_resnet_tf.h5" : "flat_dtypes.h5"
                group.addTask { try fingerprint(try CheckpointReader.read(Self.path(file))) }
            }
            var agreeing = 0
            for try await f in group where f == expected { agreeing += 1 }
            #expect(agreeing == 4)
        }
    }

    @Test("HDF5 writer: flat state dict round trip through the reader (every dtype, metadata as attributes)")
    func writerRoundTrip() throws {
        let source = try CheckpointReader.read(Self.path("flat_dtypes.h5"))
        let entries = source.entries.filter { $0.name != "i.chunked_gzip" }
        let image = try HDF5Writer.bytes(entries, metadata: ["architecture": "none", "source_sha256": "abc"])
        let back = try CheckpointReader.read(ByteBuffer(copying: image).all, name: "written.h5")
        #expect(back.names.sorted() == entries.map(\.name).sorted())
        for (name, t) in entries {
            #expect(try back[name]?.floats() == t.floats(), "\(name)")
            #expect(back[name]?.shape == t.shape)
            #expect(back[name]?.storage.byteOrder == .little)
        }
        #expect(back.extras.contains { $0.name == "architecture" && $0.value.stringValue == "none" })
        // float16 and bfloat16 storage.
        let half = try HDF5Writer.bytes(entries, floatStorage: .float16)
        #expect(try CheckpointReader.read(ByteBuffer(copying: half).all, name: "half.h5")["a.f32"]?.dtype == .float16)
        let bf = try HDF5Writer.bytes(entries, floatStorage: .bfloat16)
        let bfRead = try CheckpointReader.read(ByteBuffer(copying: bf).all, name: "bf.h5")
        #expect(bfRead["c.f64"]?.dtype == .bfloat16)
        #expect(bfRead["f.scalar_i64"]?.dtype == .int64)
    }
}
