import Checkpoint
import Foundation

/// The CIFAR-10 data set (60,000 32x32 colour images in 10 classes) read from either official layout,
/// like torchvision's `datasets.CIFAR10(root, train:)` without the download:
///
/// - binary (`cifar-10-batches-bin/`): `data_batch_1.bin` ... `data_batch_5.bin`, `test_batch.bin`,
///   `batches.meta.txt`; each record is one label byte and 3,072 pixel bytes (1,024 R, G, B, row-major);
/// - python (`cifar-10-batches-py/`): `data_batch_1` ... `data_batch_5`, `test_batch`, `batches.meta`;
///   each a pickled dict whose `data` is a numpy uint8 array `[N, 3072]` and `labels` a list, read by
///   the Checkpoint module's allow-list unpickler as inert data (nothing is executed).
///
/// Images are kept as the files store them (planar CHW bytes) and handed out as `RGBImage`s.
public struct CIFAR10: ImageDataset, Sendable {
    /// Which examples.
    public enum Split: String, Sendable, CaseIterable {
        /// The five training batches, in order (50,000 images in the real data set).
        case train
        /// The test batch (10,000 images).
        case test
    }

    /// The two official file layouts.
    public enum Layout: String, Sendable, CaseIterable {
        /// `cifar-10-batches-bin`: fixed-size records.
        case binary
        /// `cifar-10-batches-py`: pickled dicts holding numpy arrays.
        case python
    }

    /// CIFAR-10's class names in label order.
    public static let classNames: [String] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    /// Image side in pixels.
    public static let side = 32
    /// Bytes per image (3 x 32 x 32).
    public static let imageBytes = 3072

    /// Per-channel mean and std used by the classic CIFAR-10 training recipes (Normalize's arguments).
    public static let mean: [Float] = [0.4914, 0.4822, 0.4465]
    /// See `mean`.
    public static let std: [Float] = [0.2023, 0.1994, 0.2010]

    /// The split read.
    public let split: Split
    /// The layout read.
    public let layout: Layout
    /// The folder holding the batch files.
    public let directory: String
    /// `count * 3072` bytes: each image's R plane, G plane, B plane (row-major), as stored.
    public let planarPixels: [UInt8]
    /// Labels 0...9, one per image.
    public let labels: [Int]
    /// Class names (from the meta file when present, else `CIFAR10.classNames`).
    public let classNames: [String]

    /// Number of images.
    public var count: Int { labels.count }

    /// The most images one batch file may hold (the real files hold 10,000).
    public static let maxImagesPerFile = 1_000_000

    /// Reads `split` from `root`, which may be the batch folder itself or a folder containing
    /// `cifar-10-batches-bin` or `cifar-10-batches-py` (as torchvision's `root`). With `layout` nil,
    /// the layout is detected from the files present (python first, as torchvision uses it).
    public init(root: String, split: Split = .train, layout: Layout? = nil) throws(VisionDataError) {
        let (folder, found) = try Self.locate(root: root, layout: layout)
        var pixels: [UInt8] = []
        var labels: [Int] = []
        for name in Self.fileNames(split: split, layout: found) {
            let path = (folder as NSString).appendingPathComponent(name)
            let batch = found == .binary ? try Self.readBinaryBatch(path) : try Self.readPythonBatch(path)
            pixels += batch.pixels
            labels += batch.labels
        }
        var names = Self.classNames
        let metaPath = (folder as NSString).appendingPathComponent(found == .binary ? "batches.meta.txt" : "batches.meta")
        if FileManager.default.fileExists(atPath: metaPath) {
            names = found == .binary ? try Self.readBinaryMeta(metaPath) : try Self.readPythonMeta(metaPath)
        }
        self.split = split
        self.layout = found
        self.directory = folder
        self.planarPixels = pixels
        self.labels = labels
        self.classNames = names
        for (i, l) in labels.enumerated() where l < 0 || l >= names.count {
            throw VisionDataError(.malformed, "label \(l) of image \(i) is outside 0..<\(names.count)", file: folder)
        }
    }

    /// The batch file names of a split, in torchvision's order.
    public static func fileNames(split: Split, layout: Layout) -> [String] {
        let suffix = layout == .binary ? ".bin" : ""
        switch split {
        case .train: return (1...5).map { "data_batch_\($0)\(suffix)" }
        case .test: return ["test_batch\(suffix)"]
        }
    }

    /// The folder and layout for `root`.
    static func locate(root: String, layout: Layout?) throws(VisionDataError) -> (String, Layout) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw VisionDataError(
                .io, "not a folder (expected a CIFAR-10 root with cifar-10-batches-py or cifar-10-batches-bin)", file: root)
        }
        let order: [Layout] = layout.map { [$0] } ?? [.python, .binary]
        for l in order {
            let marker = l == .binary ? "test_batch.bin" : "test_batch"
            let sub = (root as NSString).appendingPathComponent(l == .binary ? "cifar-10-batches-bin" : "cifar-10-batches-py")
            for folder in [root, sub] where fm.fileExists(atPath: (folder as NSString).appendingPathComponent(marker)) {
                return (folder, l)
            }
        }
        let wanted =
            layout.map { $0 == .binary ? "cifar-10-batches-bin/test_batch.bin" : "cifar-10-batches-py/test_batch" }
            ?? "cifar-10-batches-py/test_batch or cifar-10-batches-bin/test_batch.bin"
        throw VisionDataError(.io, "no CIFAR-10 batches found (looked for \(wanted), in the folder or beneath it)", file: root)
    }

    /// Reads one binary batch file: records of 1 label byte + 3,072 pixel bytes.
    public static func readBinaryBatch(_ path: String) throws(VisionDataError) -> (pixels: [UInt8], labels: [Int]) {
        try readBinaryBatch(readFile(path), name: path)
    }

    /// Reads one binary batch held in memory (records of 1 label byte + 3,072 pixel bytes); `name`
    /// is the file named in errors.
    public static func readBinaryBatch(_ data: Data, name path: String) throws(VisionDataError) -> (pixels: [UInt8], labels: [Int]) {
        let record = 1 + imageBytes
        guard !data.isEmpty else { throw VisionDataError(.truncated, "the file is empty", file: path, offset: 0) }
        guard data.count % record == 0 else {
            throw VisionDataError(
                .truncated,
                "\(data.count) bytes is not a whole number of \(record)-byte records (last record has \(data.count % record) bytes)",
                file: path, offset: data.count - data.count % record)
        }
        let n = data.count / record
        guard n <= maxImagesPerFile else { throw VisionDataError(.limitExceeded, "\(n) records (limit \(maxImagesPerFile))", file: path) }
        var pixels = [UInt8](repeating: 0, count: n * imageBytes)
        var labels = [Int](repeating: 0, count: n)
        data.withUnsafeBytes { raw in
            pixels.withUnsafeMutableBytes { out in
                for i in 0..<n {
                    labels[i] = Int(raw[i * record])
                    out.baseAddress!.advanced(by: i * imageBytes).copyMemory(
                        from: raw.baseAddress!.advanced(by: i * record + 1), byteCount: imageBytes)
                }
            }
        }
        for (i, l) in labels.enumerated() where l >= 10 {
            throw VisionDataError(.malformed, "record \(i) has label \(l); CIFAR-10 labels are 0...9", file: path, offset: i * record)
        }
        return (pixels, labels)
    }

    /// Reads `batches.meta.txt`: one class name per line.
    public static func readBinaryMeta(_ path: String) throws(VisionDataError) -> [String] {
        try readBinaryMeta(readFile(path), name: path)
    }

    /// Reads a `batches.meta.txt` held in memory; `name` is the file named in errors.
    public static func readBinaryMeta(_ data: Data, name path: String) throws(VisionDataError) -> [String] {
        let names = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard names.count == 10 else { throw VisionDataError(.malformed, "expected 10 class names, found \(names.count)", file: path) }
        return names
    }

    /// Reads one python batch (a pickled dict with `data` and `labels`).
    public static func readPythonBatch(_ path: String) throws(VisionDataError) -> (pixels: [UInt8], labels: [Int]) {
        try readPythonBatch(readFile(path), name: path)
    }

    /// Reads one python batch held in memory (the bytes of a pickled dict with `data` and `labels`);
    /// `name` is the file named in errors.
    public static func readPythonBatch(_ bytes: Data, name path: String) throws(VisionDataError) -> (pixels: [UInt8], labels: [Int]) {
        let root = try unpickle(bytes, name: path)
        guard let data = root["data"] else {
            throw VisionDataError(.malformed, "the pickled dict has no 'data' entry (keys: \(keys(root)))", file: path)
        }
        guard let labelsValue = root["labels"] ?? root["fine_labels"] else {
            throw VisionDataError(.malformed, "the pickled dict has no 'labels' entry (keys: \(keys(root)))", file: path)
        }
        guard case .object("numpy.ndarray", _, .tensor(let t)?) = data else {
            throw VisionDataError(.malformed, "'data' is \(data.render(limit: 80)), expected a numpy array", file: path)
        }
        guard t.dtype == .uint8, t.shape.count == 2, t.shape[1] == imageBytes else {
            throw VisionDataError(
                .malformed, "'data' is a \(t.dtype.name) array of shape \(t.shape), expected uint8 [N, \(imageBytes)]", file: path)
        }
        let n = t.shape[0]
        guard n <= maxImagesPerFile else { throw VisionDataError(.limitExceeded, "\(n) images (limit \(maxImagesPerFile))", file: path) }
        let pixels: [UInt8]
        do throws(CheckpointError) {
            pixels = try t.contiguousBytes().bytes
        } catch {
            throw VisionDataError(.malformed, "'data': \(error.message)", file: path)
        }
        let items: [PickleValue]
        switch labelsValue {
        case .list(let l), .tuple(let l): items = l
        case .object("numpy.ndarray", _, .tensor(let lt)?):
            // Some re-pickled copies store labels as an int array.
            do throws(CheckpointError) {
                items = try lt.floats().map { .int(Int64($0)) }
            } catch {
                throw VisionDataError(.malformed, "'labels': \(error.message)", file: path)
            }
        default:
            throw VisionDataError(.malformed, "'labels' is \(labelsValue.render(limit: 80)), expected a list of ints", file: path)
        }
        guard items.count == n else {
            throw VisionDataError(.malformed, "\(items.count) labels for \(n) images", file: path)
        }
        var labels: [Int] = []
        labels.reserveCapacity(n)
        for (i, item) in items.enumerated() {
            guard let v = item.intValue, v >= 0, v < 10 else {
                throw VisionDataError(.malformed, "label \(i) is \(item.render(limit: 40)); CIFAR-10 labels are 0...9", file: path)
            }
            labels.append(Int(v))
        }
        return (pixels, labels)
    }

    /// Reads `batches.meta` (a pickled dict with `label_names`).
    public static func readPythonMeta(_ path: String) throws(VisionDataError) -> [String] {
        try readPythonMeta(readFile(path), name: path)
    }

    /// Reads a `batches.meta` held in memory (a pickled dict with `label_names`); `name` is the file
    /// named in errors.
    public static func readPythonMeta(_ bytes: Data, name path: String) throws(VisionDataError) -> [String] {
        let root = try unpickle(bytes, name: path)
        guard case .list(let items)? = root["label_names"] else {
            throw VisionDataError(.malformed, "the pickled dict has no 'label_names' list (keys: \(keys(root)))", file: path)
        }
        let names = items.compactMap(\.stringValue)
        guard names.count == 10, names.count == items.count else {
            throw VisionDataError(.malformed, "expected 10 class names, found \(items.count)", file: path)
        }
        return names
    }

    private static func unpickle(_ bytes: Data, name path: String) throws(VisionDataError) -> PickleValue {
        let value: PickleValue
        do throws(CheckpointError) {
            value = try CheckpointReader.readPickle(ByteBuffer(copying: bytes).all, name: path)
        } catch {
            let kind: VisionDataError.Kind
            switch error.kind {
            case .io: kind = .io
            case .truncated: kind = .truncated
            case .limitExceeded: kind = .limitExceeded
            case .unsupported: kind = .unsupported
            default: kind = .malformed
            }
            throw VisionDataError(kind, "\(error.kind.rawValue): \(error.message)", file: path, offset: error.offset)
        }
        guard value.dictEntries != nil else {
            throw VisionDataError(.malformed, "the pickle holds \(value.render(limit: 60)), expected a dict", file: path)
        }
        return value
    }

    private static func keys(_ v: PickleValue) -> String {
        (v.dictEntries ?? []).map { $0.key.stringValue ?? "?" }.joined(separator: ", ")
    }

    static func readFile(_ path: String) throws(VisionDataError) -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw VisionDataError(.io, "cannot read the file: \(error.localizedDescription)", file: path)
        }
    }

    /// Image `index` as an `RGBImage` (what torchvision's `Image.fromarray` makes of it).
    public func image(at index: Int) -> RGBImage {
        let plane = Self.side * Self.side
        var out = [UInt8](repeating: 0, count: Self.imageBytes)
        planarPixels.withUnsafeBufferPointer { src in
            let base = index * Self.imageBytes
            for i in 0..<plane {
                out[3 * i] = src[base + i]
                out[3 * i + 1] = src[base + plane + i]
                out[3 * i + 2] = src[base + 2 * plane + i]
            }
        }
        return RGBImage(unchecked: Self.side, Self.side, out)
    }

    /// Example `index`: its image and label.
    public func example(at index: Int) -> (image: RGBImage, label: Int) {
        (image(at: index), labels[index])
    }
}
