import ArgumentParser
import Foundation
import NeuralNet
import VisionData
import VisionModels

/// The `classify` command: runs a model on images (top-k labels) or on CIFAR-10 (accuracy).
///
/// Thin by design: it parses arguments, calls VisionModels / VisionData and prints.
@main
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify images, or evaluate a CIFAR-10 model, with pretrained weights.",
        discussion: """
            Weights come from --weights FILE (any checkpoint format the package reads), or from the \
            registry (--pretrained NAME, default: the architecture's default weights), found in the \
            weights folder, the torch hub cache ($TORCH_HOME/hub/checkpoints) or the Keras cache \
            (~/.keras/models), and downloaded only with --download. Images are preprocessed as the \
            weights expect (torchvision's ImageClassification preset, Keras caffe mode, or CIFAR-10's \
            ToTensor + Normalize).
            """
    )

    @Option(help: ArgumentHelp("Architecture name (resnet50, densenet121, se_resnet50, resnet20, ...).", valueName: "name"))
    var model: String

    @Option(help: ArgumentHelp("A checkpoint file to load (no lookup, no hash check).", valueName: "file"), completion: .file())
    var weights: String?

    @Option(
        help: ArgumentHelp(
            "A registry entry: a tag (IMAGENET1K_V2, in1k), a name (ResNet50_Weights.IMAGENET1K_V1), a file name, or 'default'.",
            valueName: "name"))
    var pretrained: String?

    @Flag(help: "Allow downloading registry weights that are not found locally (integrity-checked).")
    var download = false

    @Option(
        help: ArgumentHelp("Evaluate on the CIFAR-10 data set in this folder (either official layout).", valueName: "dir"),
        completion: .directory)
    var cifar10: String?

    @Option(help: ArgumentHelp("CIFAR-10 split: test or train.", valueName: "split"))
    var split: String = "test"

    @Option(help: ArgumentHelp("Images per batch on a data set.", valueName: "n"))
    var batchSize: Int = 64

    @Option(help: ArgumentHelp("Evaluate only the first n images of the data set.", valueName: "n"))
    var limit: Int?

    @Option(help: ArgumentHelp("Labels to print per image.", valueName: "k"))
    var top: Int = 5

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(inversion: .prefixedNo, help: "Show a progress bar on standard error (data sets and downloads, on a terminal).")
    var progress = true

    @Flag(help: "Rotate images as their EXIF orientation says (torchvision's PIL path does not).")
    var exifOrientation = false

    @Option(help: ArgumentHelp("Folder of converted weights searched first.", valueName: "dir"), completion: .directory)
    var weightsDir: String = "weights"

    @Option(help: ArgumentHelp("torch hub home (default $TORCH_HOME, else ~/.cache/torch).", valueName: "dir"), completion: .directory)
    var torchHome: String?

    @Option(help: ArgumentHelp("Keras home (default $KERAS_HOME, else ~/.keras).", valueName: "dir"), completion: .directory)
    var kerasHome: String?

    @Argument(help: "Image files (JPEG or PNG).", completion: .file())
    var images: [String] = []

    func validate() throws {
        if weights != nil && pretrained != nil { throw ValidationError("Give --weights or --pretrained, not both.") }
        if cifar10 == nil && images.isEmpty { throw ValidationError("Give image files, or --cifar10 DIR.") }
        if cifar10 != nil && !images.isEmpty { throw ValidationError("Give image files or --cifar10, not both.") }
        if top < 1 { throw ValidationError("--top must be at least 1, not \(top).") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1, not \(batchSize).") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit).") }
        if CIFAR10.Split(rawValue: split) == nil { throw ValidationError("--split must be 'test' or 'train', not '\(split)'.") }
    }

    /// The architecture called `name`: a built-in one (Keras flavors included), or a CIFAR ResNet of
    /// any depth 6n+2 (`resnet8`).
    static func architecture(named name: String) -> Architecture? {
        if let a = Architecture.named(name) ?? Architecture.all.first(where: { $0.name == name }) { return a }
        if name.hasPrefix("resnet"), let depth = Int(name.dropFirst("resnet".count)) {
            return Architecture.cifarResNet(depth: depth)
        }
        return nil
    }

    /// The weight resolver these options describe.
    func resolver() -> WeightResolver {
        var environment = ProcessInfo.processInfo.environment
        if let torchHome { environment["TORCH_HOME"] = torchHome }
        if let kerasHome { environment["KERAS_HOME"] = kerasHome }
        var r = WeightResolver(environment: environment, weightsDirectory: weightsDir, allowDownload: download)
        if progress && ProgressBar.enabled {
            let bar = ProgressBar(label: "download")
            r.progress = { p in bar.update(Int(p.received), total: p.expected.map(Int.init), unit: "bytes") }
        }
        return r
    }

    /// The weight source these options describe.
    func source() -> PretrainedSource {
        if let weights { return .file(URL(fileURLWithPath: weights)) }
        let name = pretrained ?? "default"
        let base: PretrainedSource = name.lowercased() == "default" ? .default : .named(name)
        return base.using(resolver())
    }

    func run() throws {
        guard let architecture = Self.architecture(named: model) else {
            let known = Architecture.all.map(\.name).joined(separator: ", ")
            StandardError.print("classify: error: unknown architecture '\(model)' (known: \(known), or resnetN for a CIFAR ResNet)")
            throw ExitCode.failure
        }
        let loaded: Model
        var weightsPath = weights
        switch load(architecture) {
        case .success(let (model, path)):
            loaded = model
            weightsPath = path
        case .failure(let error):
            StandardError.print("classify: \(error)")
            throw ExitCode.failure
        }
        if let cifar10 {
            try evaluate(loaded, root: cifar10, weightsPath: weightsPath)
        } else {
            try classifyImages(loaded, weightsPath: weightsPath)
        }
    }

    /// Resolves the weights (reporting where they were found) and loads the model.
    func load(_ architecture: Architecture) -> Result<(Model, String?), ModelError> {
        do throws(ModelError) {
            var path = weights
            let source = source()
            if weights == nil, let r = try source.resolve(for: architecture) {
                path = r.path
                if !json {
                    StandardError.print(
                        "weights: \(r.entry.name) from \(r.path) (\(r.location.rawValue)\(r.verified ? ", \(r.entry.integrity) checked" : ""))"
                    )
                }
            }
            let model = try Model.load(architecture, pretrained: path.map { .file(URL(fileURLWithPath: $0)) } ?? source)
            return .success((model, path))
        } catch {
            return .failure(error)
        }
    }

    /// Decodes and classifies one image; the error as a printable line.
    func classifyOne(_ model: Model, _ path: String, _ options: ImageDecoder.Options, _ preprocessing: Preprocessing)
        -> Result<(RGBImage, [Prediction]), ClassifyFailure>
    {
        let image: RGBImage
        do throws(VisionDataError) {
            image = try ImageDecoder.load(path, options: options)
        } catch {
            return .failure(ClassifyFailure(message: error.description))
        }
        do throws(ModelError) {
            return .success((image, try model.classify(image, topK: top, preprocessing: preprocessing)))
        } catch {
            return .failure(ClassifyFailure(message: "\(path): \(error)"))
        }
    }

    // MARK: images

    func classifyImages(_ model: Model, weightsPath: String?) throws {
        var options = ImageDecoder.Options()
        options.applyEXIFOrientation = exifOrientation
        let preprocessing = model.defaultPreprocessing
        var results: [[String: Any]] = []
        var failed = false
        if !json {
            print("model: \(model.architecture.name), \(model.numClasses) classes; preprocessing: \(preprocessing.name)")
        }
        for path in images {
            switch classifyOne(model, path, options, preprocessing) {
            case .success(let (image, predictions)):
                if json {
                    results.append(["file": path, "width": image.width, "height": image.height, "top": predictions.map(Output.json)])
                } else {
                    print(Output.text(file: path, image: image, predictions: predictions))
                }
            case .failure(let failure):
                StandardError.print("classify: \(failure.message)")
                results.append(["file": path, "error": failure.message])
                failed = true
            }
        }
        if json {
            let object: [String: Any] = [
                "model": model.architecture.name, "weights": weightsPath ?? NSNull(), "num_classes": model.numClasses,
                "preprocessing": preprocessing.name, "images": results,
            ]
            print(Output.jsonString(object))
        }
        if failed { throw ExitCode.failure }
    }

    // MARK: CIFAR-10

    /// (predicted, true) label pairs of one batch.
    static func evaluateBatch(_ model: Model, _ loader: BatchLoader<CIFAR10>, _ indices: [Int]) -> Result<[(Int, Int)], ClassifyFailure> {
        let batch: BatchLoader<CIFAR10>.Batch
        do throws(VisionDataError) {
            batch = try loader.batch(indices: indices)
        } catch {
            return .failure(ClassifyFailure(message: error.description))
        }
        do throws(ModelError) {
            let predictions = try model.classify(batch: batch.images, topK: 1)
            return .success(zip(predictions, batch.labels).map { ($0.first?.index ?? -1, $1) })
        } catch {
            return .failure(ClassifyFailure(message: error.description))
        }
    }

    func evaluate(_ model: Model, root: String, weightsPath: String?) throws {
        let data: CIFAR10
        do throws(VisionDataError) {
            data = try CIFAR10(root: root, split: CIFAR10.Split(rawValue: split) ?? .test)
        } catch {
            StandardError.print("classify: \(error)")
            throw ExitCode.failure
        }
        guard model.numClasses == data.classNames.count else {
            StandardError.print(
                "classify: error: \(model.architecture.name) has \(model.numClasses) classes; CIFAR-10 has \(data.classNames.count)")
            throw ExitCode.failure
        }
        let preprocessing = model.defaultPreprocessing
        let count = min(limit ?? data.count, data.count)
        let loader: BatchLoader<CIFAR10>
        do throws(VisionDataError) {
            loader = try BatchLoader(data, batchSize: batchSize, preprocessing: preprocessing)
        } catch {
            StandardError.print("classify: \(error)")
            throw ExitCode.failure
        }
        let bar = progress && ProgressBar.enabled ? ProgressBar(label: "CIFAR-10 \(split)") : nil
        var correct = [Int](repeating: 0, count: data.classNames.count)
        var total = [Int](repeating: 0, count: data.classNames.count)
        var seen = 0
        let started = Date()
        let order = Array(0..<count)
        for start in stride(from: 0, to: count, by: batchSize) {
            let indices = Array(order[start..<min(start + batchSize, count)])
            switch Self.evaluateBatch(model, loader, indices) {
            case .success(let pairs):
                for (predicted, label) in pairs {
                    total[label] += 1
                    if predicted == label { correct[label] += 1 }
                }
            case .failure(let failure):
                StandardError.print("classify: \(failure.message)")
                throw ExitCode.failure
            }
            seen += indices.count
            bar?.update(seen, total: count, unit: "images")
        }
        bar?.finish()
        let seconds = Date().timeIntervalSince(started)
        let right = correct.reduce(0, +)
        if json {
            let perClass: [[String: Any]] = data.classNames.indices.map { i in
                [
                    "class": data.classNames[i], "correct": correct[i], "total": total[i],
                    "accuracy": total[i] > 0 ? Double(correct[i]) / Double(total[i]) : NSNull(),
                ]
            }
            print(
                Output.jsonString([
                    "model": model.architecture.name, "weights": weightsPath ?? NSNull(), "dataset": "cifar10", "split": split,
                    "layout": data.layout.rawValue, "images": seen, "correct": right,
                    "accuracy": seen > 0 ? Double(right) / Double(seen) : 0, "per_class": perClass, "preprocessing": preprocessing.name,
                ]))
        } else {
            print(
                Output.cifarTable(
                    model: model.architecture.name, split: split, layout: data.layout.rawValue, names: data.classNames,
                    correct: correct, total: total, seconds: seconds))
        }
    }
}

/// A failure already rendered as a diagnostic line.
struct ClassifyFailure: Error {
    let message: String
}
