import Checkpoint
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Progress of a download, reported as bytes arrive.
public struct DownloadProgress: Sendable {
    /// The file being written (its final name).
    public let fileName: String
    /// Bytes received so far.
    public let received: Int64
    /// Bytes expected (the `Content-Length`), if the server said.
    public let expected: Int64?
}

/// Downloads one file the way torch hub's `download_url_to_file` does: into a temporary file in the
/// destination folder, hashing as it goes, then checks the integrity rule and renames the file into
/// place only when it is complete and verified. On any failure (HTTP error, dropped connection,
/// short body, timeout, wrong hash) the temporary file is removed and nothing is left behind.
public struct Downloader: Sendable {
    /// Longest wait for the next bytes (seconds).
    public var idleTimeout: TimeInterval = 60
    /// Longest time for the whole download (seconds).
    public var totalTimeout: TimeInterval = 6 * 3600
    /// Refuse bodies larger than this (bytes): a cap on a misbehaving server.
    public var maxBytes: Int64 = 8 << 30

    /// Default limits.
    public init() {}

    /// What a finished download produced.
    public struct Result: Sendable {
        /// The final path.
        public let path: String
        /// Bytes written.
        public let bytes: Int64
        /// Hex SHA-256 of the file ("" when the rule needed only MD5).
        public let sha256: String
        /// Hex MD5 of the file ("" when the rule did not need it).
        public let md5: String
    }

    /// Downloads `url` to `destination` (a file path), checking `integrity`.
    public func download(
        _ url: URL, to destination: String, integrity: IntegrityRule,
        progress: (@Sendable (DownloadProgress) -> Void)? = nil
    ) throws(CheckpointError) -> Result {
        let folder = (destination as NSString).deletingLastPathComponent
        let name = (destination as NSString).lastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder.isEmpty ? "." : folder, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError(.io, "cannot create the folder: \(error.localizedDescription)", file: folder)
        }
        let temporary = (folder as NSString).appendingPathComponent(".\(name).\(UUID().uuidString).partial")
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
            let handle = FileHandle(forWritingAtPath: temporary)
        else {
            throw CheckpointError(.io, "cannot create a temporary file in the folder", file: temporary)
        }
        let sink = DownloadSink(
            handle: handle, fileName: name, maxBytes: maxBytes, progress: progress,
            digests: FileDigests(sha256: integrity.needs.sha256 || integrity == .none, md5: integrity.needs.md5))
        let outcome = run(url, sink: sink)
        try? handle.close()
        func fail(_ e: CheckpointError) -> CheckpointError {
            try? FileManager.default.removeItem(atPath: temporary)
            var e = e
            if e.file == nil { e.file = url.absoluteString }
            return e
        }
        if let error = outcome { throw fail(error) }
        var digests = sink.takeDigests()
        let (sha, md5) = digests.finalize()
        guard integrity.accepts(sha256: sha, md5: md5) else {
            let found: String
            if case .md5 = integrity { found = "MD5 \(md5)" } else { found = "SHA-256 \(sha)" }
            throw fail(
                CheckpointError(
                    .integrity,
                    "downloaded \(sink.received) bytes but expected \(integrity.description), found \(found); the file was discarded"))
        }
        guard rename(temporary, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            throw fail(CheckpointError(.io, "cannot move the download into place: \(reason)", file: destination))
        }
        return Result(path: destination, bytes: sink.received, sha256: sha, md5: md5)
    }

    /// Runs the transfer synchronously; nil on success.
    private func run(_ url: URL, sink: DownloadSink) -> CheckpointError? {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = idleTimeout
        configuration.timeoutIntervalForResource = totalTimeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let session = URLSession(configuration: configuration, delegate: sink, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let task = session.dataTask(with: URLRequest(url: url))
        task.resume()
        if sink.done.wait(timeout: .now() + totalTimeout + 5) == .timedOut {
            task.cancel()
            return CheckpointError(.io, "the download did not finish within \(Int(totalTimeout)) s")
        }
        return sink.failure
    }
}

/// Receives a transfer's bytes: writes them, hashes them, reports progress, and records the outcome.
final class DownloadSink: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle
    private let fileName: String
    private let maxBytes: Int64
    private let progress: (@Sendable (DownloadProgress) -> Void)?
    private var digests: FileDigests
    private var expected: Int64?
    private var _received: Int64 = 0
    private var _failure: CheckpointError?
    let done = DispatchSemaphore(value: 0)

    init(handle: FileHandle, fileName: String, maxBytes: Int64, progress: (@Sendable (DownloadProgress) -> Void)?, digests: FileDigests) {
        self.digests = digests
        self.handle = handle
        self.fileName = fileName
        self.maxBytes = maxBytes
        self.progress = progress
    }

    var received: Int64 { lock.withLock { _received } }
    var failure: CheckpointError? { lock.withLock { _failure } }

    func takeDigests() -> FileDigests { lock.withLock { digests } }

    private func record(_ error: CheckpointError) {
        lock.withLock { if _failure == nil { _failure = error } }
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
    ) {
        if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            record(CheckpointError(.io, "HTTP \(http.statusCode) \(HTTPURLResponse.localizedString(forStatusCode: http.statusCode))"))
            completionHandler(.cancel)
            return
        }
        let length = response.expectedContentLength
        if length > maxBytes {
            record(CheckpointError(.limitExceeded, "the server announces \(length) bytes, more than the limit of \(maxBytes)"))
            completionHandler(.cancel)
            return
        }
        lock.withLock { expected = length >= 0 ? length : nil }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let (total, limitHit, wanted): (Int64, Bool, Int64?) = lock.withLock {
            _received += Int64(data.count)
            return (_received, _received > maxBytes, expected)
        }
        if limitHit {
            record(CheckpointError(.limitExceeded, "more than \(maxBytes) bytes received"))
            dataTask.cancel()
            return
        }
        do {
            try handle.write(contentsOf: data)
        } catch {
            record(CheckpointError(.io, "cannot write the download: \(error.localizedDescription)"))
            dataTask.cancel()
            return
        }
        lock.withLock { data.withUnsafeBytes { digests.update($0) } }
        progress?(DownloadProgress(fileName: fileName, received: total, expected: wanted))
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        if let error {
            let got = received
            record(CheckpointError(.io, "the transfer failed after \(got) bytes: \(error.localizedDescription)"))
        } else {
            let (got, wanted) = lock.withLock { (_received, expected) }
            if let wanted, got != wanted {
                record(CheckpointError(.truncated, "the connection ended after \(got) of \(wanted) bytes"))
            }
        }
        done.signal()
    }
}
