import Checkpoint
import Foundation

/// Finds the file of a registry entry, in this order (the issue's resolution order):
///
/// 1. a converted file in the weights folder (`weights/<stem>.safetensors`, or the original file
///    name placed there);
/// 2. torch hub's cache, `$TORCH_HOME/hub/checkpoints/<file>` (`TORCH_HOME` defaults to
///    `$XDG_CACHE_HOME/torch`, else `~/.cache/torch`), under the same file names torchvision uses;
/// 3. Keras' cache, `$KERAS_HOME/models/<file>` (default `~/.keras/models`);
/// 4. only when `allowDownload` is set (off by default): a download into the publisher's cache
///    (torch hub's for torchvision, timm and Cadene files; Keras' for `.h5` files), integrity-checked
///    before it is renamed into place.
///
/// A file found in a cache is checked against the entry's integrity rule (SHA-256 prefix or MD5)
/// unless `verifyCachedFiles` is off. An explicit path (`PretrainedSource.file`) skips all of this.
public struct WeightResolver: Sendable {
    /// The weights folder searched first (nil: none).
    public var weightsDirectory: String?
    /// torch hub's home (`$TORCH_HOME`); checkpoints live in `hub/checkpoints` under it.
    public var torchHome: String
    /// Keras' home (`$KERAS_HOME`, `~/.keras`); files live in `models` under it.
    public var kerasHome: String
    /// Whether a missing file may be downloaded. Off by default (`--download` in the CLIs).
    public var allowDownload: Bool
    /// Whether files found in the weights folder or a cache are hashed and checked.
    public var verifyCachedFiles: Bool = true
    /// The download client (timeouts, size cap).
    public var downloader = Downloader()
    /// Receives download progress.
    public var progress: (@Sendable (DownloadProgress) -> Void)?
    /// Receives one line per step taken ("found ... in the torch hub cache").
    public var log: (@Sendable (String) -> Void)?

    /// A resolver configured from `environment` (`TORCH_HOME`, `XDG_CACHE_HOME`, `KERAS_HOME`, `HOME`)
    /// with the weights folder `weightsDirectory` (relative paths are relative to the working folder).
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment, weightsDirectory: String? = "weights",
        allowDownload: Bool = false
    ) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        if let t = environment["TORCH_HOME"], !t.isEmpty {
            torchHome = t
        } else {
            let cache =
                environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (home as NSString).appendingPathComponent(".cache")
            torchHome = (cache as NSString).appendingPathComponent("torch")
        }
        if let k = environment["KERAS_HOME"], !k.isEmpty {
            kerasHome = k
        } else {
            kerasHome = (home as NSString).appendingPathComponent(".keras")
        }
        self.weightsDirectory = weightsDirectory
        self.allowDownload = allowDownload
    }

    /// torch hub's checkpoint folder.
    public var torchHubCheckpoints: String { (torchHome as NSString).appendingPathComponent("hub/checkpoints") }
    /// Keras' model folder.
    public var kerasModels: String { (kerasHome as NSString).appendingPathComponent("models") }

    /// Where a file was found.
    public enum Location: String, Sendable, Equatable {
        case weightsDirectory = "weights folder"
        case torchHubCache = "torch hub cache"
        case kerasCache = "Keras cache"
        case downloaded = "download"
    }

    /// The outcome of resolving an entry.
    public struct Resolution: Sendable {
        /// The entry resolved.
        public let entry: WeightEntry
        /// The file to read.
        public let path: String
        /// Where it was found.
        public let location: Location
        /// Whether its integrity was checked (by hashing it now, or while downloading it).
        public let verified: Bool
    }

    /// The places looked at, in order, before any download.
    public func candidates(for entry: WeightEntry) -> [(location: Location, path: String)] {
        var out: [(Location, String)] = []
        if let dir = weightsDirectory {
            out.append((.weightsDirectory, (dir as NSString).appendingPathComponent(entry.stem + ".safetensors")))
            out.append((.weightsDirectory, (dir as NSString).appendingPathComponent(entry.fileName)))
        }
        out.append((.torchHubCache, (torchHubCheckpoints as NSString).appendingPathComponent(entry.fileName)))
        out.append((.kerasCache, (kerasModels as NSString).appendingPathComponent(entry.fileName)))
        return out
    }

    /// Where a download of `entry` is written.
    public func downloadDestination(for entry: WeightEntry) -> String {
        let folder = entry.origin == .keras ? kerasModels : torchHubCheckpoints
        return (folder as NSString).appendingPathComponent(entry.fileName)
    }

    /// Finds (or, if allowed, downloads) the file of `entry`.
    public func resolve(_ entry: WeightEntry) throws(ModelError) -> Resolution {
        var isDirectory: ObjCBool = false
        for (location, path) in candidates(for: entry)
        where FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue {
            // A converted safetensors file carries its own provenance; it is not the published file.
            let converted = location == .weightsDirectory && path.hasSuffix(".safetensors")
            if verifyCachedFiles && !converted {
                do throws(CheckpointError) {
                    try entry.integrity.verify(file: path)
                } catch {
                    var e = error
                    let twins = WeightRegistry.entries(fileName: entry.fileName).filter { $0.name != entry.name }
                    let twin = twins.first { other in (try? other.integrity.verify(file: path)) != nil }
                    e.message +=
                        twin.map { "; it is the file of \($0.name) instead" }
                        ?? "; the file in the \(location.rawValue) is not \(entry.name)'s (delete it, or pass it as an explicit path)"
                    throw ModelError(e)
                }
            }
            log?(
                "\(entry.name): found \(path) in the \(location.rawValue)\(verifyCachedFiles && !converted ? " (\(entry.integrity))" : "")")
            return Resolution(entry: entry, path: path, location: location, verified: verifyCachedFiles && !converted)
        }
        let looked = candidates(for: entry).map(\.path).joined(separator: ", ")
        guard allowDownload else {
            throw ModelError(
                CheckpointError(
                    .io,
                    "\(entry.name) not found (looked in \(looked)); downloads are off: pass --download, or "
                        + "WeightResolver(allowDownload: true), or fetch \(entry.url) into \(torchHubCheckpoints)", file: entry.fileName))
        }
        guard let url = URL(string: entry.url), url.scheme == "http" || url.scheme == "https" else {
            throw ModelError(CheckpointError(.io, "\(entry.name): not an http(s) URL: \(entry.url)"))
        }
        let destination = downloadDestination(for: entry)
        log?("\(entry.name): downloading \(entry.url) to \(destination)")
        do throws(CheckpointError) {
            let result = try downloader.download(url, to: destination, integrity: entry.integrity, progress: progress)
            log?("\(entry.name): downloaded \(result.bytes) bytes, \(entry.integrity) checked")
            return Resolution(entry: entry, path: result.path, location: .downloaded, verified: true)
        } catch {
            throw ModelError(error)
        }
    }
}
