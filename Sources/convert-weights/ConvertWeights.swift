import ArgumentParser

/// The `convert-weights` command: inspect, convert and verify checkpoint files.
///
/// Thin by design: each subcommand parses its arguments, calls the Checkpoint library and prints.
@main
struct ConvertWeights: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert-weights",
        abstract: "Inspect, convert and verify checkpoint files.",
        discussion: """
            Reads PyTorch checkpoints (.pth/.pt/.th) of every historical layout without Python and \
            without running any code stored in them.
            """,
        subcommands: [Inspect.self, Convert.self, Verify.self]
    )
}
