import Foundation
import Testing

@testable import Checkpoint
@testable import convert_weights

/// `convert-weights` tested two ways: the built binary run as a user would (exit status, stdout,
/// stderr), and the argument parsing and report formatting in-process.
@Suite("CLI")
struct CLITests {
    // MARK: End to end

    @Test("--help lists the inspect subcommand")
    func helpListsInspect() throws {
        let result = try ConvertWeightsBinary.run(["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("inspect"))
        #expect(result.stdout.contains("Inspect, convert and verify checkpoint files"))
    }

    @Test("inspect --help lists its flags")
    func inspectHelp() throws {
        let result = try ConvertWeightsBinary.run(["inspect", "--help"])
        #expect(result.status == 0)
        for flag in ["--json", "--allow-module-pickle", "--no-verify-checksums", "--limit", "--sha256"] {
            #expect(result.stdout.contains(flag), "help lacks \(flag)")
        }
    }

    @Test("a missing file: exit 1, one line on stderr naming the path and io")
    func missingFile() throws {
        let dir = try CLITemporaryDirectory()
        let path = dir.url.appendingPathComponent("no-such-checkpoint.pth").path
        let result = try ConvertWeightsBinary.run(["inspect", path])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains(path))
        #expect(result.stderr.contains("error: io:"))
        #expect(result.stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1)
    }

    @Test("a file of random bytes: exit 1 with unknownFormat", arguments: ["", "--json"])
    func randomBytes(_ extraFlag: String) throws {
        let dir = try CLITemporaryDirectory()
        let file = dir.url.appendingPathComponent("random.pth")
        var generator = CLISplitMix64(seed: 0x5eed)
        // Starts with bytes no format's magic begins with, and no '{' at offset 8 (safetensors).
        var bytes = [0xde, 0xad, 0xbe, 0xef] + (0..<4096).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        bytes[8] = 0
        try Data(bytes).write(to: file)
        let result = try ConvertWeightsBinary.run(["inspect", file.path] + (extraFlag.isEmpty ? [] : [extraFlag]))
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("error: unknownFormat:"))
        #expect(result.stderr.contains(file.path))
    }

    @Test("an empty file: exit 1 with a one-line error")
    func emptyFile() throws {
        let dir = try CLITemporaryDirectory()
        let file = dir.url.appendingPathComponent("empty.pth")
        try Data().write(to: file)
        let result = try ConvertWeightsBinary.run(["inspect", file.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains(file.path))
        #expect(result.stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1)
    }

    @Test("a directory: exit 1 with io")
    func directory() throws {
        let dir = try CLITemporaryDirectory()
        let result = try ConvertWeightsBinary.run(["inspect", dir.url.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("error: io:"))
    }

    @Test("argument errors are ArgumentParser's: no file, bad --limit, unknown flag")
    func argumentErrors() throws {
        for arguments in [["inspect"], ["inspect", "x.pth", "--limit", "-3"], ["inspect", "x.pth", "--bogus"]] {
            let result = try ConvertWeightsBinary.run(arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.status != 1 || result.stderr.contains("Usage") || result.stderr.contains("Error"), "\(arguments)")
            #expect(!result.stderr.contains("error: io"), "\(arguments) reached the reader")
        }
    }

    // MARK: End to end on committed fixtures (Tests/Fixtures/checkpoint, see expected.json)

    @Test(
        "inspect --json --sha256 agrees with expected.json",
        arguments: [
            "toynet_zip.pth", "toynet_zip_bigendian.pth", "toynet_zip_deflated.pth", "toynet_legacy_stream.pth",
            "toynet_legacy_tar.pth", "toynet_zipped_legacy_stream.pth", "nested_state_dict_module_prefix.pth",
            "nested_state_dict_orig_mod_module_prefix.pth", "training_ckpt_namespace_numpy.pth", "views_zip.pth",
            "dtypes_zip.pth",
        ]
    )
    func inspectFixtureJSON(_ name: String) throws {
        let expected = try #require(CLIFixtures.expected[name], "\(name) is not in expected.json")
        let path = CLIFixtures.path(name)
        let result = try ConvertWeightsBinary.run(["inspect", path, "--json", "--sha256"])
        try #require(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stderr.isEmpty)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])

        #expect(object["file"] as? String == path)
        #expect(object["format"] as? String == expected["format"] as? String)
        #expect(object["byteOrder"] as? String == expected["byte_order"] as? String)
        #expect(object["archivePrefix"] as? String == expected["archive_prefix"] as? String)
        #expect(object["nestingPath"] as? [String] == expected["nesting_path"] as? [String])
        #expect(object["strippedPrefixes"] as? [String] == expected["stripped_prefixes"] as? [String])

        let tensors = try #require(object["tensors"] as? [[String: Any]])
        let expectedTensors = try #require(expected["tensors"] as? [[String: Any]])
        let names: [String] = tensors.compactMap { $0["name"] as? String }
        #expect(names == expectedTensors.compactMap { $0["name"] as? String })
        for (got, want) in zip(tensors, expectedTensors) {
            let name = want["name"] as? String ?? "?"
            #expect(got["dtype"] as? String == want["dtype"] as? String, "\(name)")
            #expect(got["shape"] as? [Int] == want["shape"] as? [Int], "\(name)")
            #expect(got["contiguous"] as? Bool == want["contiguous"] as? Bool, "\(name)")
            let shape = want["shape"] as? [Int] ?? []
            #expect(got["elements"] as? Int == shape.reduce(1, *), "\(name)")
        }
        let totals = try #require(object["totals"] as? [String: Any])
        #expect(totals["tensors"] as? Int == expectedTensors.count)
        #expect(totals["parameters"] as? Int == expectedTensors.reduce(0) { $0 + ($1["shape"] as? [Int] ?? []).reduce(1, *) })

        let extras = try #require(object["extras"] as? [[String: Any]])
        let extraNames: [String] = extras.compactMap { $0["name"] as? String }
        #expect(extraNames == expected["extras_keys"] as? [String])

        let hash = try #require(object["hash"] as? [String: Any])
        #expect(hash["sha256"] as? String == expected["file_sha256"] as? String)
        #expect(hash["namePrefix"] == nil)  // fixture names carry no torch hub hash
    }

    @Test("inspect prints the table, totals and extras of a training checkpoint")
    func inspectFixtureText() throws {
        let result = try ConvertWeightsBinary.run(["inspect", CLIFixtures.path("training_ckpt_namespace_numpy.pth")])
        try #require(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("format:") && $0.hasSuffix("pytorch-zip") })
        #expect(lines.contains { $0.hasPrefix("nesting path:") && $0.hasSuffix("state_dict") })
        #expect(
            lines.contains {
                $0.split(separator: " ", omittingEmptySubsequences: true)
                    == ["conv.weight", "float32", "[4,", "3,", "3,", "3]", "108", "432", "contiguous"]
            })
        #expect(lines.contains("totals: 9 tensors, 180 parameters, 724 bytes (724 B)"))
        #expect(lines.contains { $0.hasPrefix("  args = argparse.Namespace(") && $0.contains("arch='toynet'") })
        #expect(lines.contains("  epoch = 3"))
    }

    @Test("--limit cuts the table, not the totals")
    func inspectLimit() throws {
        let result = try ConvertWeightsBinary.run(["inspect", CLIFixtures.path("toynet_zip.pth"), "--limit", "2"])
        try #require(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("conv.bias"))
        #expect(!result.stdout.contains("bn.weight"))
        #expect(result.stdout.contains("... 7 more tensors not shown (--limit)"))
        #expect(result.stdout.contains("totals: 9 tensors, 180 parameters"))
    }

    @Test(
        "pickles that would run a command are refused, and nothing runs",
        arguments: [
            ("malicious_posix_system_zip.pth", "posix.system"), ("malicious_os_system_legacy_stream.pth", "os.system"),
        ])
    func inspectMalicious(_ name: String, _ global: String) throws {
        let marker = "/tmp/pretrainedvision_pwned"
        try? FileManager.default.removeItem(atPath: marker)
        for flags in [[], ["--allow-module-pickle"]] {
            let result = try ConvertWeightsBinary.run(["inspect", CLIFixtures.path(name)] + flags)
            #expect(result.status == 1)
            #expect(result.stdout.isEmpty)
            #expect(result.stderr.contains("error: disallowedGlobal:"))
            #expect(result.stderr.contains(global))
            #expect(result.stderr.contains(name))
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("a whole pickled module needs --allow-module-pickle")
    func inspectWholeModule() throws {
        let path = CLIFixtures.path("whole_module_sequential.pth")
        let refused = try ConvertWeightsBinary.run(["inspect", path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("error: disallowedGlobal:"))
        let allowed = try ConvertWeightsBinary.run(["inspect", path, "--allow-module-pickle", "--json"])
        try #require(allowed.status == 0, "stderr: \(allowed.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(allowed.stdout.utf8)) as? [String: Any])
        let expectedCount = (CLIFixtures.expected["whole_module_sequential.pth"]?["tensors"] as? [Any])?.count
        #expect((object["tensors"] as? [Any])?.count == expectedCount)
    }

    @Test("--sha256 checks a torch hub style name: match exits 0, mismatch prints the report then exits 1")
    func inspectHashName() throws {
        let dir = try CLITemporaryDirectory()
        let source = URL(fileURLWithPath: CLIFixtures.path("toynet_zip.pth"))
        let digest = try #require(CLIFixtures.expected["toynet_zip.pth"]?["file_sha256"] as? String)

        let good = dir.url.appendingPathComponent("toynet-\(digest.prefix(8)).pth")
        try FileManager.default.copyItem(at: source, to: good)
        let ok = try ConvertWeightsBinary.run(["inspect", good.path, "--sha256"])
        #expect(ok.status == 0, "stderr: \(ok.stderr)")
        #expect(ok.stdout.contains(digest))
        #expect(ok.stdout.contains("\(digest.prefix(8)) (matches)"))

        let bad = dir.url.appendingPathComponent("toynet-0123abcd.pth")
        try FileManager.default.copyItem(at: source, to: bad)
        let mismatch = try ConvertWeightsBinary.run(["inspect", bad.path, "--sha256"])
        #expect(mismatch.status == 1)
        #expect(mismatch.stdout.contains("0123abcd (DOES NOT MATCH)"))
        #expect(mismatch.stderr.contains("error: integrity:"))
        #expect(mismatch.stderr.contains(bad.path))

        // Without --sha256 the name is not checked.
        let unchecked = try ConvertWeightsBinary.run(["inspect", bad.path])
        #expect(unchecked.status == 0)
    }

    @Test("the README's run command: inspect weights/examples/cifar_resnet8_random.pth")
    func readmeExample() throws {
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = package.appendingPathComponent("weights/examples/cifar_resnet8_random.pth").path
        let result = try ConvertWeightsBinary.run(["inspect", path, "--sha256"])
        try #require(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("nesting path:") && $0.hasSuffix("state_dict") })
        #expect(lines.contains { $0.hasPrefix("stripped prefixes:") && $0.hasSuffix("module.") })
        #expect(lines.contains("totals: 44 tensors, 75,777 parameters, 303,136 bytes (296.0 KiB)"))
        #expect(lines.contains("  epoch = 20"))
        // The digest weights/README.md states for this file.
        #expect(lines.contains { $0.hasSuffix("eb5d2f62a4e39cd7524a9986550dd9684f6f59b6a6d70f9b2be546391a477636") })
    }

    // MARK: In-process: flags

    @Test("flags map to reader options")
    func flagsToOptions() throws {
        let defaults = try Inspect.parse(["model.pth"])
        #expect(defaults.file == "model.pth")
        #expect(defaults.json == false)
        #expect(defaults.sha256 == false)
        #expect(defaults.limit == nil)
        #expect(defaults.readOptions.verifyChecksums == true)
        #expect(defaults.readOptions.allowModulePickle == false)

        let all = try Inspect.parse(["model.pth", "--json", "--allow-module-pickle", "--no-verify-checksums", "--limit", "5", "--sha256"])
        #expect(all.json)
        #expect(all.sha256)
        #expect(all.limit == 5)
        #expect(all.readOptions.verifyChecksums == false)
        #expect(all.readOptions.allowModulePickle == true)

        let command = try ConvertWeights.parseAsRoot(["inspect", "a.pth", "--json"])
        #expect((command as? Inspect)?.json == true)
        #expect(throws: (any Error).self) { try Inspect.parse(["model.pth", "--limit", "-1"]) }
    }

    // MARK: In-process: torch hub name rule

    @Test(
        "torch hub hash prefix from a file name",
        arguments: [
            ("resnet50-0676ba61.pth", "0676ba61"),
            ("/cache/checkpoints/densenet121-a639ec97.pth", "a639ec97"),
            ("resnext50_32x4d-7cdf4587.pth", "7cdf4587"),
            ("wide_resnet50_2-95faca4d.pth", "95faca4d"),
            ("se_resnet50-ce0d4300.pth", "ce0d4300"),
            ("resnet50.pth", nil),
            ("resnet50-V2.pth", nil),  // upper case is not in [a-f0-9]
            ("model-.pth", nil),  // empty match: nothing to check
            ("a-b-c0ffee.pth", "c0ffee"),  // first match where the hex run ends at '.'
            ("x-abc.tar.gz", "abc"),
            ("dir-abc.d/model.pth", nil),  // only the base name counts
        ] as [(String, String?)]
    )
    func torchHubPrefix(_ name: String, _ expected: String?) {
        #expect(HashCheck.torchHubPrefix(fileName: name) == expected)
    }

    @Test("hash check matches only when the digest starts with the name's prefix")
    func hashCheckMatches() {
        #expect(HashCheck(digest: "0676ba61ffff", namePrefix: "0676ba61").matches == true)
        #expect(HashCheck(digest: "1676ba61ffff", namePrefix: "0676ba61").matches == false)
        #expect(HashCheck(digest: "0676ba61ffff", namePrefix: nil).matches == nil)
    }

    // MARK: In-process: report formatting

    @Test("the text report: header, aligned table, totals, extras")
    func textReport() throws {
        let report = InspectReport(try Self.sampleStateDict())
        let text = report.text()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains { $0.hasPrefix("format:") && $0.hasSuffix("pytorch-zip") })
        #expect(lines.contains { $0.hasPrefix("format version:") && $0.hasSuffix(".format_version = 1, version = 3") })
        #expect(lines.contains { $0.hasPrefix("nesting path:") && $0.hasSuffix("state_dict") })
        #expect(lines.contains { $0.hasPrefix("stripped prefixes:") && $0.hasSuffix("module.") })
        #expect(lines.contains { $0.hasPrefix("archive prefix:") && $0.hasSuffix("archive") })
        #expect(lines.contains { $0.hasPrefix("note:") && $0.hasSuffix("skipped _metadata") })

        let header = try #require(lines.firstIndex { $0.hasPrefix("name ") })
        let rows = Array(lines[(header + 2)..<(header + 5)])
        #expect(
            rows[0].split(separator: " ", omittingEmptySubsequences: true)
                == ["conv1.weight", "float32", "[4,", "3,", "1,", "1]", "12", "48", "contiguous"])
        #expect(rows[1].contains("[3, 4]") && rows[1].hasSuffix("strided"))
        #expect(rows[2].contains("[]") && rows[2].contains("int64"))
        // Columns line up: every row is as wide as the header up to the last column's start.
        let layoutColumn = try #require(lines[header].range(of: "layout")).lowerBound.utf16Offset(in: lines[header])
        for row in rows {
            let start = row.index(row.startIndex, offsetBy: layoutColumn)
            #expect(row[start...].hasPrefix("contiguous") || row[start...].hasPrefix("strided"), "\(row)")
        }

        #expect(text.contains("totals: 3 tensors, 25 parameters, 104 bytes (104 B)"))
        #expect(text.contains("  epoch = 90\n"))
        #expect(text.contains("  best_acc1 = 76.13\n"))
    }

    @Test("--limit shows the first N tensors; totals still count all")
    func limitedReport() throws {
        let report = InspectReport(try Self.sampleStateDict(), limit: 1)
        #expect(report.tensors.map(\.name) == ["conv1.weight"])
        #expect(report.omittedTensors == 2)
        #expect(report.totals.tensors == 3)
        #expect(report.text().contains("... 2 more tensors not shown (--limit)"))
    }

    @Test("the JSON report: one object, sorted keys, tensors in file order")
    func jsonReport() throws {
        var report = InspectReport(try Self.sampleStateDict())
        report.hash = HashCheck(digest: "abcd", namePrefix: "ab")
        let json = report.json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["format"] as? String == "pytorch-zip")
        #expect(object["byteOrder"] as? String == "little")
        #expect(object["archivePrefix"] as? String == "archive")
        #expect(object["nestingPath"] as? [String] == ["state_dict"])
        #expect(object["formatVersion"] as? [String: String] == ["version": "3", ".format_version": "1"])
        let tensors = try #require(object["tensors"] as? [[String: Any]])
        #expect(tensors.map { $0["name"] as? String } == ["conv1.weight", "fc.weight", "num_batches_tracked"])
        #expect(tensors[0]["shape"] as? [Int] == [4, 3, 1, 1])
        #expect(tensors[1]["contiguous"] as? Bool == false)
        #expect(tensors[1]["strides"] as? [Int] == [1, 3])
        let totals = try #require(object["totals"] as? [String: Any])
        #expect(totals["parameters"] as? Int == 25)
        #expect(totals["bytes"] as? Int == 104)
        let extras = try #require(object["extras"] as? [[String: Any]])
        #expect(extras.map { $0["name"] as? String } == ["epoch", "best_acc1"])
        let hash = try #require(object["hash"] as? [String: Any])
        #expect(hash["nameMatches"] as? Bool == true)
        // Keys are sorted: "archivePrefix" comes first, "totals" last at the top level.
        let topKeys = json.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map { $0.split(separator: "\"")[1] }
        #expect(topKeys == topKeys.sorted())
    }

    @Test("number and size formatting")
    func formatting() {
        #expect(InspectReport.grouped(0) == "0")
        #expect(InspectReport.grouped(999) == "999")
        #expect(InspectReport.grouped(1000) == "1,000")
        #expect(InspectReport.grouped(25_557_032) == "25,557,032")
        #expect(InspectReport.humanBytes(1023) == "1023 B")
        #expect(InspectReport.humanBytes(102_228_128) == "97.5 MiB")
        #expect(InspectReport.shapeText([]) == "[]")
        #expect(InspectReport.shapeText([64, 3, 7, 7]) == "[64, 3, 7, 7]")
    }

    /// Three tensors (contiguous, transposed view, 0-d int64) in one file-like state dict.
    static func sampleStateDict() throws -> StateDict {
        let floats = ByteBuffer(copying: [UInt8](repeating: 0, count: 24 * 4))
        let storage = try StorageData(key: "0", dtype: .float32, elementCount: 24, byteOrder: .little, bytes: floats.all)
        let ints = ByteBuffer(copying: [UInt8](repeating: 0, count: 8))
        let intStorage = try StorageData(key: "1", dtype: .int64, elementCount: 1, byteOrder: .little, bytes: ints.all)
        let conv = try TensorData(dtype: .float32, shape: [4, 3, 1, 1], strides: [3, 1, 1, 1], storageOffset: 0, storage: storage)
        let fc = try TensorData(dtype: .float32, shape: [3, 4], strides: [1, 3], storageOffset: 12, storage: storage)
        let count = try TensorData(dtype: .int64, shape: [], strides: [], storageOffset: 0, storage: intStorage)
        let provenance = Provenance(
            file: "model.pth", format: .torchZip, formatVersion: [".format_version": "1", "version": "3"],
            byteOrder: .little, nestingPath: ["state_dict"], strippedPrefixes: ["module."], archivePrefix: "archive",
            notes: ["skipped _metadata"])
        return try StateDict(
            entries: [("conv1.weight", conv), ("fc.weight", fc), ("num_batches_tracked", count)],
            extras: [("epoch", .int(90)), ("best_acc1", .float(76.13))],
            provenance: provenance)
    }
}

// MARK: - Fixtures

/// The committed checkpoint fixtures and their expected values, found from this source file.
enum CLIFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/checkpoint")

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// expected.json: fixture name → its entry.
    nonisolated(unsafe) static let expected: [String: [String: Any]] = {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("expected.json")),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]]
        else { return [:] }
        return object
    }()
}

// MARK: - Running the built binary

/// What a run of the binary produced.
struct CLIProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Finds and runs the `convert-weights` binary that `swift test` built next to the test bundle.
enum ConvertWeightsBinary {
    /// The binary, found once.
    static let url: URL? = locate()

    /// Where to look, best first:
    /// 1. `$CONVERT_WEIGHTS` if set;
    /// 2. the products directory: the folder holding the `.xctest` bundle (macOS) or the running test
    ///    executable (Linux, where the `.xctest` is itself an executable);
    /// 3. `<package>/.build/debug/convert-weights`, found by walking up from this source file.
    static func candidates() -> [URL] {
        var urls: [URL] = []
        if let override = ProcessInfo.processInfo.environment["CONVERT_WEIGHTS"], !override.isEmpty {
            urls.append(URL(fileURLWithPath: override))
        }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            urls.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("convert-weights"))
        }
        #if os(Linux)
            if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
                urls.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("convert-weights"))
            }
        #endif
        urls.append(Bundle.main.bundleURL.appendingPathComponent("convert-weights"))
        if let arg0 = CommandLine.arguments.first, arg0.contains("/") {
            let executable = URL(fileURLWithPath: arg0).resolvingSymlinksInPath()
            urls.append(executable.deletingLastPathComponent().appendingPathComponent("convert-weights"))
        }
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                urls.append(dir.appendingPathComponent(".build/debug/convert-weights"))
                break
            }
            dir.deleteLastPathComponent()
        }
        return urls
    }

    static func locate() -> URL? {
        candidates().first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// Runs the binary with `arguments`; fails if it cannot be found or runs longer than `timeout`.
    static func run(_ arguments: [String], timeout: TimeInterval = 120) throws -> CLIProcessResult {
        let binary = try #require(url, "convert-weights binary not found; looked at \(candidates().map(\.path))")
        let dir = try CLITemporaryDirectory()
        let outURL = dir.url.appendingPathComponent("stdout")
        let errURL = dir.url.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)

        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline {
            usleep(5_000)
        }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            Issue.record("convert-weights \(arguments) ran longer than \(timeout) s")
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        return CLIProcessResult(
            status: process.terminationStatus,
            stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}

/// A fresh directory under the system's temporary folder, removed when the value goes away.
final class CLITemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("convert-weights-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
}

/// A small deterministic generator for test bytes.
struct CLISplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49eb_133f_d111
        return z ^ (z >> 31)
    }
}
