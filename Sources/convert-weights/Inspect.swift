import ArgumentParser
import Checkpoint

/// `convert-weights inspect FILE`: what a checkpoint holds, as a table or as JSON.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a checkpoint's format, provenance, tensors and other values.",
        discussion: """
            The format is chosen from the file's first bytes, never from its extension. \
            A file that cannot be read gives a one-line error on standard error and exit status 1.
            """
    )

    @Argument(help: "The checkpoint file to read.", completion: .file())
    var file: String

    @Flag(help: "Print one JSON object (sorted keys, tensors in file order) instead of a table.")
    var json = false

    @Flag(help: "Harvest tensors from a whole pickled nn.Module (torch.save(model)) as inert records.")
    var allowModulePickle = false

    @Flag(inversion: .prefixedNo, help: "Check the CRC-32 of every zip record that has one.")
    var verifyChecksums = true

    @Flag(help: "Also print the file's SHA-256 and check it against a torch hub '<stem>-<hex>.pth' name.")
    var sha256 = false

    @Option(help: ArgumentHelp("Show at most this many tensors (totals still count all).", valueName: "n"))
    var limit: Int?

    func validate() throws {
        if let limit, limit < 0 {
            throw ValidationError("--limit must be zero or more, not \(limit).")
        }
    }

    /// The reader options these flags select.
    var readOptions: ReadOptions {
        var options = ReadOptions()
        options.allowModulePickle = allowModulePickle
        options.verifyChecksums = verifyChecksums
        return options
    }

    func run() throws {
        do {
            try inspect()
        } catch {
            StandardError.print(error.description)
            throw ExitCode.failure
        }
    }

    /// Reads, prints, and throws the first checkpoint problem (a hash mismatch after printing).
    private func inspect() throws(CheckpointError) {
        let stateDict = try CheckpointReader.read(file, options: readOptions)
        var report = InspectReport(stateDict, limit: limit)
        var mismatch: CheckpointError?
        if sha256 {
            let check = try HashCheck(path: file)
            report.hash = check
            if check.matches == false {
                mismatch = CheckpointError(
                    .integrity,
                    "SHA-256 \(check.digest) does not start with '\(check.namePrefix ?? "")' from the file name (torch hub rule)",
                    file: file)
            }
        }
        print(json ? report.json() : report.text(), terminator: json ? "\n" : "")
        if let mismatch { throw mismatch }
    }
}
