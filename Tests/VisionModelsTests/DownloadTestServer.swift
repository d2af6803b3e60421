import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A tiny HTTP/1.1 server for the download tests, written with plain sockets: it binds 127.0.0.1 only,
/// on a port the kernel picks, serves a fixed table of routes, and is stopped by the test. Every
/// connection is served on its own thread with socket timeouts, so nothing can hang a test run.
final class DownloadTestServer: @unchecked Sendable {
    /// What a path answers.
    enum Route: Sendable {
        /// 200 with the body and its Content-Length.
        case file(Data)
        /// 200 announcing the full length, then the first `sent` bytes, then the connection is closed.
        case drop(Data, sent: Int)
        /// A bare status with an empty body.
        case status(Int)
        /// Reads the request and answers nothing until the server stops (or 10 s pass).
        case stall
    }

    let port: UInt16
    private let listener: Int32
    private let routes: [String: Route]
    private let lock = NSLock()
    private var stopped = false
    private var _requests: [String] = []

    /// Paths requested so far.
    var requests: [String] { lock.withLock { _requests } }

    init(routes: [String: Route]) throws {
        self.routes = routes
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        listener = fd
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// `http://127.0.0.1:<port>/`.
    var base: String { "http://127.0.0.1:\(port)/" }

    /// Stops accepting; connection threads finish on their own.
    func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 100)
            if ready <= 0 { continue }
            let client = accept(listener, nil, nil)
            if client < 0 { continue }
            let t = Thread { [self] in serve(client) }
            t.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 65536 {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return }
            request += buffer[0..<n]
            if request.count >= 4, request.suffix(from: 0).windowContains([13, 10, 13, 10]) { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let path = parts.count > 1 ? String(parts[1]) : "/"
        lock.withLock { _requests.append(path) }
        switch routes[path] {
        case .file(let body)?:
            send(fd, header(200, "OK", length: body.count) + Array(body))
        case .drop(let body, let sent)?:
            send(fd, header(200, "OK", length: body.count) + Array(body.prefix(sent)))
        case .status(let code)?:
            send(fd, header(code, code == 404 ? "Not Found" : "Error", length: 0))
        case .stall?:
            let deadline = Date().addingTimeInterval(10)
            while !isStopped && Date() < deadline { usleep(20_000) }
        case nil:
            send(fd, header(404, "Not Found", length: 0))
        }
    }

    private func header(_ code: Int, _ reason: String, length: Int) -> [UInt8] {
        Array(
            "HTTP/1.1 \(code) \(reason)\r\nContent-Length: \(length)\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
                .utf8)
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            #if os(Linux)
                let flags = Int32(MSG_NOSIGNAL)
            #else
                let flags: Int32 = 0
            #endif
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, flags) }
            if n <= 0 { return }
            offset += n
        }
    }
}

extension Array where Element == UInt8 {
    func windowContains(_ needle: [UInt8]) -> Bool {
        guard count >= needle.count else { return false }
        for i in 0...(count - needle.count) where Array(self[i..<(i + needle.count)]) == needle { return true }
        return false
    }
}

extension ArraySlice where Element == UInt8 {
    func windowContains(_ needle: [UInt8]) -> Bool { Array(self).windowContains(needle) }
}
