import Foundation
import VisionData
import VisionModels

/// Text and JSON rendering of results.
enum Output {
    /// One image's top-k as an indented list with percentages.
    static func text(file: String, image: RGBImage, predictions: [Prediction]) -> String {
        var lines = ["\(file) (\(image.width)x\(image.height))"]
        let width = max(12, predictions.map(\.label.count).max() ?? 0)
        for (rank, p) in predictions.enumerated() {
            let label = p.label.padding(toLength: width, withPad: " ", startingAt: 0)
            lines.append(String(format: "  %d. %@  %7.3f%%  (class %d)", rank + 1, label, Double(p.probability) * 100, p.index))
        }
        return lines.joined(separator: "\n")
    }

    static func json(_ p: Prediction) -> [String: Any] {
        ["index": p.index, "label": p.label, "probability": Double(p.probability)]
    }

    /// Accuracy and a per-class table.
    static func cifarTable(model: String, split: String, layout: String, names: [String], correct: [Int], total: [Int], seconds: Double)
        -> String
    {
        let n = total.reduce(0, +), right = correct.reduce(0, +)
        var lines = [
            String(
                format: "%@ on CIFAR-10 %@ (%@ layout): accuracy %.2f%% (%d/%d) in %.2f s",
                model, split, layout, n > 0 ? 100 * Double(right) / Double(n) : 0, right, n, seconds)
        ]
        lines.append("")
        lines.append("class        correct  total  accuracy")
        lines.append("-----------  -------  -----  --------")
        for (i, name) in names.enumerated() {
            let acc = total[i] > 0 ? String(format: "%7.2f%%", 100 * Double(correct[i]) / Double(total[i])) : "       -"
            lines.append(
                name.padding(toLength: 11, withPad: " ", startingAt: 0) + String(format: "  %7d  %5d  ", correct[i], total[i]) + acc)
        }
        return lines.joined(separator: "\n")
    }

    /// Sorted-key JSON.
    static func jsonString(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Writing diagnostics to standard error.
enum StandardError {
    static func print(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// A one-line progress bar on standard error, drawn only when standard error is a terminal.
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let lock = NSLock()
    private var lastDraw = Date.distantPast

    /// Whether standard error is a terminal.
    static var enabled: Bool { isatty(2) != 0 }

    init(label: String) { self.label = label }

    func update(_ done: Int, total: Int?, unit: String) {
        lock.withLock {
            let now = Date()
            let finished = total.map { done >= $0 } ?? false
            guard finished || now.timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = now
            var line = "\r\(label) "
            if let total, total > 0 {
                let fraction = min(1, Double(done) / Double(total))
                let filled = Int(fraction * 30)
                line += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled) + "]"
                line += String(format: " %3d%% %d/%d %@", Int(fraction * 100), done, total, unit)
            } else {
                line += "\(done) \(unit)"
            }
            FileHandle.standardError.write(Data(line.utf8))
            if finished { FileHandle.standardError.write(Data("\n".utf8)) }
        }
    }

    func finish() {}
}
