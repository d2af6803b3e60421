import ArgumentParser
import Checkpoint
import Foundation
import VisionModels

/// `convert-weights convert IN --arch NAME`: any readable checkpoint to safetensors (or flat HDF5)
/// with the architecture's canonical names and PyTorch layouts.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint to safetensors with an architecture's canonical names.",
        discussion: """
            Reads any supported checkpoint (PyTorch zip / legacy stream / legacy tar, Keras or h5py HDF5, \
            safetensors), maps its keys and layouts to the architecture's names (as PyTorch names them), \
            checks every key and shape strictly and prints the load report. The output is written to a \
            temporary file beside the target and renamed into place only when complete; an existing file \
            is never replaced without --force. Its __metadata__ records the source file and SHA-256, the \
            source format, the architecture and flavor, the tensor layout and the expected preprocessing.
            """
    )

    @Argument(help: "The checkpoint to convert.", completion: .file())
    var input: String

    @Option(help: ArgumentHelp("The target architecture (e.g. resnet50, densenet121, keras_resnet50).", valueName: "name"))
    var arch: String

    @Option(help: ArgumentHelp("A JSON file describing the architecture (one config, or a map of name to config).", valueName: "file"))
    var archConfig: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Output file (default: the input's name with .safetensors).", valueName: "path"))
    var output: String?

    @Option(help: ArgumentHelp("Element type of floating-point tensors: f32, f16 or bf16.", valueName: "type"))
    var dtype: String = "f32"

    @Option(
        help: ArgumentHelp(
            "Output format: safetensors, or hdf5 (a flat h5py-style state dict). Default: by the output's extension.", valueName: "format"))
    var format: String?

    @Flag(help: "Write even if required keys are missing (they are left out of the output and listed in its metadata).")
    var allowMissing = false

    @Flag(help: "Replace an existing output file.")
    var force = false

    @Flag(help: "Harvest tensors from a whole pickled nn.Module (torch.save(model)) as inert records.")
    var allowModulePickle = false

    @Flag(help: "Load weights whose names show another flavor than the architecture's (see the load report).")
    var allowFlavorMismatch = false

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    func validate() throws {
        guard FloatStorage(rawValue: dtype) != nil else { throw ValidationError("--dtype must be f32, f16 or bf16, not '\(dtype)'.") }
        if let format, !["safetensors", "hdf5"].contains(format) {
            throw ValidationError("--format must be safetensors or hdf5, not '\(format)'.")
        }
    }

    /// The output path: `-o`, else the input's name with its checkpoint extension replaced.
    var outputPath: String {
        if let output { return output }
        var base = input
        for ext in [".weights.h5", ".pth.tar", ".pth", ".pt", ".th", ".tar", ".h5", ".hdf5", ".bin", ".ckpt", ".safetensors"]
        where base.hasSuffix(ext) {
            base = String(base.dropLast(ext.count))
            break
        }
        return base + (outputFormat == "hdf5" ? ".h5" : ".safetensors")
    }

    var outputFormat: String {
        if let format { return format }
        if let output, output.hasSuffix(".h5") || output.hasSuffix(".hdf5") { return "hdf5" }
        return "safetensors"
    }

    func run() throws {
        do {
            try ConvertRun(command: self).run()
        } catch {
            StandardError.print(error.description)
            throw ExitCode.failure
        }
    }
}

/// One conversion: read, map and validate through `Model.load`, write atomically.
struct ConvertRun {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let command: Convert

    func run() throws(Failure) {
        let c = command
        let architecture: Architecture
        do throws(ConvertArchitecture.Failure) {
            architecture = try ConvertArchitecture.resolve(c.arch, configFile: c.archConfig)
        } catch {
            throw Failure(description: error.description)
        }
        let out = c.outputPath
        guard URL(fileURLWithPath: out).standardizedFileURL.path != URL(fileURLWithPath: c.input).standardizedFileURL.path else {
            throw Failure(description: "\(out): error: io: the output would replace the input; give another path with -o")
        }
        // Refuse early, before any work, when the target exists (the write refuses again atomically).
        if !c.force, FileManager.default.fileExists(atPath: out) {
            throw Failure(description: "\(out): error: io: already exists; refusing to overwrite it (use --force to replace it)")
        }
        // The source's SHA-256 (for the provenance) is the slowest step; it runs on the other core
        // while the file is read, mapped and validated.
        let hash = ConvertHashJob(path: c.input)
        var readOptions = ReadOptions()
        readOptions.allowModulePickle = c.allowModulePickle
        let stateDict: StateDict
        do throws(CheckpointError) {
            stateDict = try CheckpointReader.read(c.input, options: readOptions)
        } catch {
            throw Failure(description: error.description)
        }

        let mapped = try ConvertMapping.map(
            stateDict, to: architecture, allowMissing: c.allowMissing, allowFlavorMismatch: c.allowFlavorMismatch)
        if !c.quiet { print(mapped.report.description) }

        let floatStorage = FloatStorage(rawValue: c.dtype) ?? .float32
        var metadata: [String: String] = [
            "format": "pt",
            "converted_by": "convert-weights (PretrainedVision)",
            "architecture": mapped.architecture.name,
            "flavor": mapped.architecture.flavorName,
            "num_classes": String(mapped.architecture.defaultNumClasses),
            "tensor_layout": "pytorch: conv weight [out, in/groups, kh, kw] (OIHW), linear weight [out, in]",
            "preprocessing": mapped.architecture.expectedPreprocessing,
            "dtype": floatStorage.rawValue,
            "source_file": URL(fileURLWithPath: c.input).lastPathComponent,
            "source_format": stateDict.provenance.format.rawValue,
        ]
        let versions = stateDict.provenance.formatVersion.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        if !versions.isEmpty { metadata["source_format_version"] = versions.joined(separator: ", ") }
        if !stateDict.provenance.nestingPath.isEmpty {
            metadata["source_nesting_path"] = stateDict.provenance.nestingPath.joined(separator: ".")
        }
        if !stateDict.provenance.strippedPrefixes.isEmpty {
            metadata["source_stripped_prefixes"] = stateDict.provenance.strippedPrefixes.joined(separator: ",")
        }
        if !mapped.leftOut.isEmpty { metadata["missing"] = mapped.leftOut.joined(separator: ",") }
        do throws(CheckpointError) {
            metadata["source_sha256"] = try hash.result()
        } catch {
            throw Failure(description: error.description)
        }

        let started = Date()
        var progress = ConvertProgress(path: out, enabled: !c.quiet)
        var written = 0
        do throws(CheckpointError) {
            if c.outputFormat == "hdf5" {
                try HDF5Writer.write(mapped.entries, metadata: metadata, floatStorage: floatStorage, to: out, overwrite: c.force)
                written = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
            } else {
                let writer = try SafetensorsWriter(mapped.entries, metadata: metadata, floatStorage: floatStorage)
                written = writer.fileSize
                try writer.write(to: out, overwrite: c.force) { done, total in progress.update(done, total) }
            }
        } catch {
            throw Failure(description: error.description)
        }
        progress.finish()
        if !c.quiet {
            let seconds = Date().timeIntervalSince(started)
            print(
                "wrote \(out): \(mapped.entries.count) tensors, \(written) bytes, \(c.outputFormat), \(floatStorage.rawValue)"
                    + String(format: " (%.2f s)", seconds))
        }
    }
}

/// The state dict mapped onto an architecture through the one remap/validate path, `Model.load`.
enum ConvertMapping {
    struct Mapped {
        var architecture: Architecture
        var report: LoadReport
        /// Entries in the architecture's order, with PyTorch names and layouts.
        var entries: [(name: String, tensor: TensorData)]
        /// Required keys the checkpoint lacked (only with `allowMissing`); not in `entries`.
        var leftOut: [String]
    }

    static func map(_ stateDict: StateDict, to architecture: Architecture, allowMissing: Bool, allowFlavorMismatch: Bool) throws(ConvertRun
        .Failure) -> Mapped
    {
        var options = LoadOptions()
        options.allowFlavorMismatch = allowFlavorMismatch
        var model: Model
        var leftOut: [String] = []
        do throws(ModelError) {
            model = try Model.load(architecture, pretrained: .stateDict(stateDict), options: options)
        } catch {
            // With --allow-missing, stand zeros in for missing keys (nothing else may be wrong), load,
            // and leave those keys out of the output.
            guard allowMissing, error.kind == .incompatibleWeights, let report = error.report, !report.missing.isEmpty,
                report.shapeMismatches.isEmpty, report.unexpected.isEmpty
            else { throw ConvertRun.Failure(description: error.description) }
            leftOut = report.missing
            let target = architecture.withNumClasses(report.numClasses)
            let shapes = Dictionary(target.parameters.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
            var filled = stateDict
            do throws(CheckpointError) {
                for key in leftOut {
                    let shape = shapes[key] ?? []
                    try filled.append(key, try TensorData(float32: [Float](repeating: 0, count: shape.reduce(1, *)), shape: shape))
                }
            } catch {
                throw ConvertRun.Failure(description: error.description)
            }
            do throws(ModelError) {
                model = try Model.load(architecture, pretrained: .stateDict(filled), options: options)
            } catch {
                throw ConvertRun.Failure(description: error.description)
            }
        }
        var report = model.report
        report.missing = leftOut
        var entries: [(name: String, tensor: TensorData)] = []
        let left = Set(leftOut)
        for spec in model.architecture.parameters where !left.contains(spec.name) {
            if let t = model.parameter(named: spec.name) {
                entries.append((spec.name, t))
            } else if spec.isOptional {
                // num_batches_tracked: a 0-d int64 zero, so the output holds every key PyTorch's module has.
                do throws(CheckpointError) {
                    let storage = try StorageData(
                        key: spec.name, dtype: .int64, elementCount: 1, byteOrder: .little,
                        bytes: ByteBuffer(copying: [UInt8](repeating: 0, count: 8)).all)
                    entries.append((spec.name, try TensorData(dtype: .int64, shape: [], strides: [], storageOffset: 0, storage: storage)))
                } catch {
                    throw ConvertRun.Failure(description: error.description)
                }
            }
        }
        return Mapped(architecture: model.architecture, report: report, entries: entries, leftOut: leftOut)
    }
}

/// A progress line on standard error for outputs over 64 MiB, redrawn in place on a terminal.
struct ConvertProgress {
    let path: String
    let enabled: Bool
    private var lastPercent = -1
    private var shown = false
    private let isTerminal = isatty(2) != 0

    init(path: String, enabled: Bool) {
        self.path = path
        self.enabled = enabled
    }

    mutating func update(_ done: Int, _ total: Int) {
        guard enabled, total >= 64 << 20 else { return }
        let percent = total > 0 ? done * 100 / total : 100
        let step = isTerminal ? 1 : 25
        guard percent / step != lastPercent / step || lastPercent < 0 else { return }
        lastPercent = percent
        let line = String(
            format: "writing %@: %3d%% (%.1f of %.1f MiB)", path, percent, Double(done) / 1_048_576, Double(total) / 1_048_576)
        FileHandle.standardError.write(Data((isTerminal ? "\r" + line : line + "\n").utf8))
        shown = true
    }

    mutating func finish() {
        if enabled && shown && isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Hashes a file on a background thread; `result()` waits for it.
final class ConvertHashJob: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var outcome: Result<String, CheckpointError> = .failure(CheckpointError(.io, "not hashed"))

    init(path: String) {
        let thread = Thread { [self] in
            do throws(CheckpointError) {
                outcome = .success(try SHA256.hashFile(path: path))
            } catch {
                outcome = .failure(error)
            }
            done.signal()
        }
        thread.start()
    }

    /// The lower-case hex digest (waits for the hash to finish).
    func result() throws(CheckpointError) -> String {
        done.wait()
        done.signal()
        return try outcome.get()
    }
}
