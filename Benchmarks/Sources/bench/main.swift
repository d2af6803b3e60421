// The Swift side of the peer benchmark (driven by tools/bench_peers.py, see README.md).
//
//   bench serve                 line protocol on stdin/stdout (below), one architecture per process
//   bench load FILE ARCH [N]    time to read FILE vs. Model.load(ARCH, .file(FILE)) until it can infer
//
// serve commands, one per line, each answered by one line:
//   load ARCH [compact]         random (He-scaled) weights, batch norm at its defaults -> "ok SECONDS";
//                               compact: LoadOptions.memory = .compact (no Winograd copies)
//   bytes                       the model's parameterBytes -> "ok BYTES"
//   input PATH N H W            float32 NCHW [N, 3, H, W] from a raw little-endian file -> "ok"
//   run THREADS ITERS           -> "ok MS MS ..." (one wall time per inference)
//   peak-reset / peak           reset / read the peak RSS (VmHWM) -> "ok KIB"
//   rss                         the current RSS (VmRSS) -> "ok KIB"
//   quit
import Checkpoint
import Foundation
import NeuralNet
import VisionModels

#if canImport(Glibc)
    import Glibc
#endif

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// A field of /proc/self/status in KiB (VmHWM: the peak resident set; VmRSS: the current one).
func statusKiB(_ field: String) -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
    for line in s.split(separator: "\n") where line.hasPrefix(field) {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
    }
    return -1
}

/// Resets VmHWM to the current RSS (Linux: `5` written to clear_refs).
func resetPeak() {
    if let f = fopen("/proc/self/clear_refs", "w") {
        fputs("5", f)
        fclose(f)
    }
}

/// A deterministic generator (SplitMix64) for weights.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func uniform() -> Float { Float(Double(next() >> 11) / Double(1 << 52) - 1) }
}

/// Weights like torchvision's initialisation: convolutions He-uniform, batch norm gamma 1 / beta 0 /
/// mean 0 / var 1, linear layers uniform in +-1/sqrt(fan_in); activations stay in a normal range.
func randomModel(_ arch: Architecture, memory: LoadOptions.Memory) throws -> Model {
    var rng = SplitMix(state: 42)
    var entries: [(name: String, tensor: TensorData)] = []
    for spec in arch.parameters {
        let count = spec.shape.reduce(1, *)
        var values = [Float](repeating: 0, count: count)
        let n = spec.name
        if n.hasSuffix("running_var") || (spec.shape.count == 1 && n.hasSuffix(".weight")) {
            values = [Float](repeating: 1, count: count)
        } else if n.hasSuffix("num_batches_tracked") || n.hasSuffix("running_mean") || (spec.shape.count == 1 && n.hasSuffix(".bias")) {
            // zeros
        } else if spec.shape.count >= 2 {
            let fanIn = spec.shape.dropFirst().reduce(1, *)
            let bound = spec.shape.count == 4 ? (6.0 / Float(fanIn)).squareRoot() : 1 / Float(fanIn).squareRoot()
            for i in 0..<count { values[i] = rng.uniform() * bound }
        }
        entries.append((spec.name, try TensorData(float32: values, shape: spec.shape)))
    }
    var options = LoadOptions()
    options.memory = memory
    return try Model.load(arch, pretrained: .stateDict(StateDict(tensors: entries, name: "random:\(arch.name)")), options: options)
}

/// Prints one protocol line and flushes it at once.
func reply(_ line: String) {
    print(line)
    fflush(nil)
}

func serve() {
    // The harness's own reply path (reading /proc, formatting times) is run once before the first
    // command, so that the RSS each engine reports before loading its model already holds its code:
    // the model's memory is what the process grows by after that.
    _ = statusKiB("VmRSS:")
    _ = String(format: "%.3f", now())
    var model: Model?
    var input: Tensor?
    while let line = readLine() {
        let w = line.split(separator: " ").map(String.init)
        guard let cmd = w.first else { continue }
        do {
            switch cmd {
            case "load":
                guard let arch = Architecture(named: w[1]) else { reply("error unknown architecture \(w[1])"); continue }
                let t0 = now()
                model = try randomModel(arch, memory: w.count > 2 && w[2] == "compact" ? .compact : .fast)
                // The random state dict was this process's own transient, not the model's: give its
                // freed heap back so that peak RSS counts what the model keeps.
                Engine.releaseFreedMemory()
                reply("ok \(now() - t0)")
            case "input":
                let (n, h, wd) = (Int(w[2])!, Int(w[3])!, Int(w[4])!)
                // Read straight into the tensor's array: a `Data` in between would leave its freed pages
                // in the heap, counted in this process's peak RSS.
                let count = n * 3 * h * wd
                guard let f = fopen(w[1], "rb") else { reply("error cannot open \(w[1])"); continue }
                let floats = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    initialized = fread(buffer.baseAddress!, MemoryLayout<Float>.stride, count, f)
                }
                fclose(f)
                guard floats.count == count else { reply("error \(w[1]) holds fewer than \(count) floats"); continue }
                input = try Tensor(shape: [n, 3, h, wd], data: floats)
                Engine.releaseFreedMemory()  // the previous input's pages
                reply("ok")
            case "run":
                guard let model, let input else { reply("error no model or input"); continue }
                Engine.threads = Int(w[1])!
                var times: [String] = []
                for _ in 0..<Int(w[2])! {
                    let t0 = now()
                    let y = try model(input)
                    let t = now() - t0
                    precondition(y.data[0].isFinite, "non-finite logits")
                    times.append(String(format: "%.3f", t * 1000))
                }
                reply("ok " + times.joined(separator: " "))
            case "subnormals":  // diagnostics: subnormal values per tap
                guard let model, let input else { reply("error no model or input"); continue }
                let taps = try model.features(input)
                reply("ok " + taps.map { "\($0.name)=\($0.tensor.data.filter { $0.isSubnormal }.count)/\($0.tensor.data.count)" }.joined(separator: " "))
            case "peak-reset":
                resetPeak()
                reply("ok \(statusKiB("VmHWM:"))")
            case "peak":
                reply("ok \(statusKiB("VmHWM:"))")
            case "rss":
                reply("ok \(statusKiB("VmRSS:"))")
            case "bytes":
                guard let model else { reply("error no model"); continue }
                reply("ok \(model.parameterBytes)")
            case "quit":
                return
            default:
                reply("error unknown command \(cmd)")
            }
        } catch {
            reply("error \(error)".replacingOccurrences(of: "\n", with: " "))
        }
    }
}

/// Reads the file (page-cached) into fresh memory, then times Model.load until the model can infer.
func loadBenchmark(path: String, archName: String, repeats: Int) throws {
    guard let arch = Architecture(named: archName) else { throw NeuralNetError("unknown architecture \(archName)") }
    var reads: [Double] = []
    var loads: [Double] = []
    for _ in 0..<repeats {
        let t0 = now()
        let fd = open(path, O_RDONLY)
        precondition(fd >= 0, "cannot open \(path)")
        var st = stat()
        fstat(fd, &st)
        let size = Int(st.st_size)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        var done = 0
        while done < size {
            let r = read(fd, buffer + done, size - done)
            precondition(r > 0, "read failed")
            done += r
        }
        close(fd)
        reads.append(now() - t0)
        buffer.deallocate()
        let t1 = now()
        let model = try Model.load(arch, pretrained: .file(URL(fileURLWithPath: path)))
        loads.append(now() - t1)
        _ = model.numClasses
    }
    reads.sort()
    loads.sort()
    print(String(format: "ok read_ms %.2f %.2f load_ms %.2f %.2f", reads[0] * 1000, reads[reads.count / 2] * 1000,
                 loads[0] * 1000, loads[loads.count / 2] * 1000))
}

let args = CommandLine.arguments
if args.count >= 2 && args[1] == "serve" {
    serve()
} else if args.count >= 4 && args[1] == "load" {
    do {
        try loadBenchmark(path: args[2], archName: args[3], repeats: args.count > 4 ? Int(args[4])! : 5)
    } catch {
        print("error \(error)")
        exit(1)
    }
} else {
    FileHandle.standardError.write("usage: bench serve | bench load FILE ARCH [REPEATS]\n".data(using: .utf8)!)
    exit(2)
}
