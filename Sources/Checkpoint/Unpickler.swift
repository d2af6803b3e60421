import Foundation

/// An allow-list pickle machine. It decodes protocol 0-4 data opcodes into inert `PickleNode`s and
/// never runs code: a GLOBAL is resolved against `PickleAllowList` and, for the callables it allows
/// (tensor and storage rebuilders, OrderedDict, ...), REDUCE is interpreted by this reader, not called.
/// Every size is bounded by the bytes present; memo size, nesting depth and integer length are capped.
struct Unpickler {
    /// Called for BINPERSID / PERSID with the persistent id; returns the object it names.
    typealias PersistentLoad = (_ pid: PickleNode, _ offset: Int) throws(CheckpointError) -> PickleNode

    private var reader: ByteReader
    private let limits: PickleLimits
    private let allowOpaqueClasses: Bool
    private let persistentLoad: PersistentLoad
    private var stack: [PickleNode] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleNode] = [:]
    /// Byte offset where the current opcode started.
    private var opOffset = 0
    /// Every container (list, dict, set, object) pushed during this run, once each. A pickle can
    /// make a container hold itself, a cycle reference counting never frees; `load` empties what
    /// the caller does not receive so that no input leaks memory.
    private var containers: [PickleNode] = []
    private var containerIDs: Set<ObjectIdentifier> = []
    /// Nesting depth of each live non-empty tuple this run pushed, by the address of its items.
    /// Tuples are immutable, so their depth is known when they are made; `pushTuple` caps it,
    /// because releasing a chain of nested values recurses once per level (a deep enough chain
    /// would overflow the stack when it is freed).
    private var tupleDepths: [UnsafeRawPointer: Int] = [:]

    /// Prepares to read one pickle starting at `position` of `data`.
    init(_ data: ByteSlice, position: Int = 0, limits: PickleLimits, allowOpaqueClasses: Bool, persistentLoad: @escaping PersistentLoad) {
        self.reader = ByteReader(data, position: position)
        self.limits = limits
        self.allowOpaqueClasses = allowOpaqueClasses
        self.persistentLoad = persistentLoad
    }

    /// Position after the last STOP read.
    var position: Int { reader.position }

    /// Runs to STOP and returns the pickled value.
    ///
    /// The value's containers never form a cycle: a pickle whose result contains itself is refused
    /// here (freezing would refuse it too), and every container the result does not reach, or every
    /// container at all when the pickle is refused, is emptied so that cycles among them are freed.
    mutating func load() throws(CheckpointError) -> PickleNode {
        let start = reader.position
        defer {
            containers.removeAll()
            containerIDs.removeAll()
            tupleDepths.removeAll()
        }
        do throws(CheckpointError) {
            let result = try run()
            try releaseUnreachable(from: result, pickleLength: reader.position - start)
            return result
        } catch {
            for c in containers { c.emptyContainer() }
            throw error
        }
    }

    /// Walks the containers reachable from `result` (each once, tuples followed, iteratively) and
    /// empties every other container this run made. Throws if a reachable container contains
    /// itself, if the value is nested deeper than `maxDepth` (freeing so deep a graph would recurse
    /// once per level), or if the walk exceeds the node budget freezing would apply to this pickle;
    /// freezing refuses all three too.
    private func releaseUnreachable(from result: PickleNode, pickleLength: Int) throws(CheckpointError) {
        let (scaled, overflow) = pickleLength.multipliedReportingOverflow(by: limits.maxObjectsPerByte)
        var budget = overflow ? Int.max : scaled + 4096
        var depthOf: [ObjectIdentifier: Int] = [:]  // 0: on the current path; otherwise its depth
        // A frame per container or tuple being walked; the bottom one holds the result.
        var frames: [(id: ObjectIdentifier?, children: [PickleNode], next: Int, deepest: Int)] = [(nil, [result], 0, 0)]
        while var frame = frames.popLast() {
            guard frame.next < frame.children.count else {
                let depth = frame.deepest + 1
                if let id = frame.id { depthOf[id] = depth }
                guard !frames.isEmpty else { break }  // the bottom frame is not a value
                guard depth <= limits.maxDepth else {
                    throw error(.limitExceeded, "values nested deeper than \(limits.maxDepth) levels")
                }
                frames[frames.count - 1].deepest = max(frames[frames.count - 1].deepest, depth)
                continue
            }
            let child = frame.children[frame.next]
            frame.next += 1
            budget -= 1
            guard budget >= 0 else {
                throw error(.limitExceeded, "the pickle expands to more values than its size allows (shared references)")
            }
            if let id = child.containerID {
                switch depthOf[id] {
                case 0?: throw error(.malformed, "a container contains itself")
                case let depth?:
                    frame.deepest = max(frame.deepest, depth)
                    frames.append(frame)
                case nil:
                    depthOf[id] = 0
                    frames.append(frame)
                    frames.append((id, child.containerChildren, 0, 0))
                }
            } else if case .tuple(let items) = child {
                frames.append(frame)
                frames.append((nil, items, 0, 0))
            } else {
                frame.deepest = max(frame.deepest, 1)
                frames.append(frame)
            }
        }
        for c in containers {
            if let id = c.containerID, depthOf[id] == nil { c.emptyContainer() }
        }
    }

    /// The opcode loop of `load`.
    private mutating func run() throws(CheckpointError) -> PickleNode {
        stack.removeAll(keepingCapacity: true)
        marks.removeAll()
        memo.removeAll()
        let start = reader.position
        while true {
            opOffset = reader.position
            guard opOffset - start < limits.maxPickleBytes else {
                throw error(.limitExceeded, "pickle longer than \(limits.maxPickleBytes) bytes, the most its compressed record allows")
            }
            let op = try reader.u8("an opcode")
            if op == 0x2E {  // STOP
                guard marks.isEmpty else { throw error(.malformed, "STOP with an open MARK") }
                guard stack.count == 1, let result = stack.last else {
                    throw error(.malformed, "STOP with \(stack.count) values on the stack (expected 1)")
                }
                return result
            }
            try execute(op)
        }
    }

    private func error(_ kind: CheckpointError.Kind, _ message: String) -> CheckpointError {
        CheckpointError(kind, message, offset: opOffset)
    }

    // MARK: stack helpers

    private mutating func push(_ node: PickleNode) {
        if let id = node.containerID, containerIDs.insert(id).inserted { containers.append(node) }
        if case .tuple(let items) = node, let key = Self.address(items) { tupleDepths[key] = tupleDepth(items) }
        stack.append(node)
    }

    /// The address of a non-empty array's elements (its identity while it is alive).
    private static func address(_ items: [PickleNode]) -> UnsafeRawPointer? {
        items.isEmpty ? nil : items.withUnsafeBufferPointer { $0.baseAddress.map { UnsafeRawPointer($0) } }
    }

    /// 1 + the depth of the deepest tuple among `items` (tuples inside containers are not counted:
    /// `load` takes containers apart one by one when it refuses a pickle).
    private func tupleDepth(_ items: [PickleNode]) -> Int {
        var depth = 1
        for item in items {
            if case .tuple(let inner) = item, let key = Self.address(inner) { depth = max(depth, 1 + (tupleDepths[key] ?? 1)) }
        }
        return depth
    }

    /// Pushes a tuple made by a TUPLE opcode, refusing tuples nested deeper than `maxDepth`.
    private mutating func pushTuple(_ items: [PickleNode]) throws(CheckpointError) {
        let depth = tupleDepth(items)
        guard depth <= limits.maxDepth else {
            throw error(.limitExceeded, "tuples nested deeper than \(limits.maxDepth) levels")
        }
        push(.tuple(items))
    }

    private mutating func pop() throws(CheckpointError) -> PickleNode {
        let floor = marks.last ?? 0
        guard stack.count > floor, let v = stack.popLast() else { throw error(.malformed, "stack underflow") }
        return v
    }

    private func top() throws(CheckpointError) -> PickleNode {
        let floor = marks.last ?? 0
        guard stack.count > floor, let v = stack.last else { throw error(.malformed, "stack underflow") }
        return v
    }

    /// Pops everything above the last MARK, and the mark.
    private mutating func popMark() throws(CheckpointError) -> [PickleNode] {
        guard let m = marks.popLast() else { throw error(.malformed, "no MARK on the stack") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private mutating func memoPut(_ index: Int) throws(CheckpointError) {
        guard index >= 0 else { throw error(.malformed, "negative memo index \(index)") }
        if memo[index] == nil, memo.count >= limits.maxMemoEntries {
            throw error(.limitExceeded, "more than \(limits.maxMemoEntries) memo entries")
        }
        memo[index] = try top()
    }

    private mutating func memoGet(_ index: Int) throws(CheckpointError) {
        guard let v = memo[index] else { throw error(.malformed, "memo index \(index) was never defined") }
        push(v)
    }

    /// Reads a text line (protocol 0 opcodes), without the newline; bounded by the bytes present.
    private mutating func line(_ what: String) throws(CheckpointError) -> String {
        var bytes: [UInt8] = []
        while true {
            let b = try reader.u8(what)
            if b == 0x0A { break }
            bytes.append(b)
            if bytes.count > 1 << 16 { throw error(.limitExceeded, "\(what) longer than 64 KiB") }
        }
        if bytes.last == 0x0D { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    private mutating func length(_ value: UInt64, _ what: String) throws(CheckpointError) -> Int {
        guard value <= UInt64(reader.remaining) else {
            throw CheckpointError(.truncated, "\(what) declares \(value) bytes but \(reader.remaining) remain", offset: opOffset)
        }
        return Int(value)
    }

    private mutating func utf8(_ n: Int, _ what: String) throws(CheckpointError) -> String {
        let slice = try reader.slice(n, what)
        guard let s = String(validating: slice.raw, as: UTF8.self) else {
            throw error(.malformed, "\(what) is not valid UTF-8")
        }
        return s
    }

    // MARK: integers

    private func decodeLong(_ bytes: [UInt8]) -> PickleNode {
        if bytes.isEmpty { return .int(0) }
        if bytes.count <= 8 {
            var v: UInt64 = 0
            for (i, b) in bytes.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            if bytes.count < 8, bytes.last! & 0x80 != 0 {
                v |= ~UInt64(0) << (8 * UInt64(bytes.count))  // sign-extend
            }
            return .int(Int64(bitPattern: v))
        }
        // Longer encodings may still fit in 64 bits (redundant sign bytes).
        let signByte: UInt8 = bytes.last! & 0x80 != 0 ? 0xFF : 0x00
        if bytes[8...].allSatisfy({ $0 == signByte }), (bytes[7] & 0x80 != 0) == (signByte == 0xFF) {
            return decodeLong(Array(bytes[..<8]))
        }
        return .bigInt(bytes)
    }

    private func decodeDecimal(_ text: String, _ what: String) throws(CheckpointError) -> PickleNode {
        var t = text
        if t.hasSuffix("L") { t.removeLast() }
        guard t.count <= limits.maxIntegerBytes * 3 else {
            throw error(.limitExceeded, "\(what) has \(t.count) digits (limit \(limits.maxIntegerBytes * 3))")
        }
        if let v = Int64(t) { return .int(v) }
        guard !t.isEmpty, t.drop(while: { $0 == "-" || $0 == "+" }).allSatisfy(\.isNumber) else {
            throw error(.malformed, "\(what) '\(t.prefix(40))' is not an integer")
        }
        return .bigInt(Array(t.utf8))  // kept as digits; only displayed
    }

    // MARK: the machine

    private mutating func execute(_ op: UInt8) throws(CheckpointError) {
        switch op {
        case 0x80:  // PROTO
            let p = try reader.u8("protocol")
            guard p <= 5 else { throw error(.malformed, "unsupported pickle protocol \(p)") }
        case 0x95:  // FRAME (protocol 4): an 8-byte length we do not need
            _ = try reader.u64le("frame length")
        case 0x28:  // MARK
            guard marks.count < limits.maxDepth * 16 else { throw error(.limitExceeded, "too many open MARKs") }
            marks.append(stack.count)
        case 0x30:  // POP
            if let m = marks.last, m == stack.count {
                marks.removeLast()
            } else {
                _ = try pop()
            }
        case 0x31:  // POP_MARK
            _ = try popMark()
        case 0x32:  // DUP
            push(try top())
        case 0x4E: push(.none)  // NONE
        case 0x88: push(.bool(true))  // NEWTRUE
        case 0x89: push(.bool(false))  // NEWFALSE
        case 0x4B: push(.int(Int64(try reader.u8("BININT1"))))
        case 0x4D: push(.int(Int64(try reader.u16le("BININT2"))))
        case 0x4A: push(.int(Int64(Int32(bitPattern: try reader.u32le("BININT")))))
        case 0x8A, 0x8B:  // LONG1, LONG4
            let n = op == 0x8A ? UInt64(try reader.u8("LONG1 length")) : UInt64(try reader.u32le("LONG4 length"))
            guard n <= UInt64(limits.maxIntegerBytes) else {
                throw error(.limitExceeded, "integer of \(n) bytes (limit \(limits.maxIntegerBytes))")
            }
            push(decodeLong(try reader.bytes(try length(n, "LONG"), "LONG digits")))
        case 0x49:  // INT (text); "I01"/"I00" are py2 booleans
            let t = try line("INT")
            if t == "01" { push(.bool(true)) } else if t == "00" { push(.bool(false)) } else { push(try decodeDecimal(t, "INT")) }
        case 0x4C:  // LONG (text)
            push(try decodeDecimal(try line("LONG"), "LONG"))
        case 0x47:  // BINFLOAT: big-endian IEEE double
            push(.float(Double(bitPattern: try reader.u64be("BINFLOAT"))))
        case 0x46:  // FLOAT (text)
            let t = try line("FLOAT")
            guard let d = Double(t) else { throw error(.malformed, "FLOAT '\(t.prefix(40))' is not a number") }
            push(.float(d))
        case 0x58:  // BINUNICODE
            push(.string(try utf8(try length(UInt64(try reader.u32le("BINUNICODE length")), "BINUNICODE"), "BINUNICODE")))
        case 0x8C:  // SHORT_BINUNICODE
            push(.string(try utf8(try length(UInt64(try reader.u8("SHORT_BINUNICODE length")), "SHORT_BINUNICODE"), "SHORT_BINUNICODE")))
        case 0x8D:  // BINUNICODE8
            push(.string(try utf8(try length(try reader.u64le("BINUNICODE8 length"), "BINUNICODE8"), "BINUNICODE8")))
        case 0x56:  // UNICODE (text, raw-unicode-escape; plain ASCII in practice)
            push(.string(try line("UNICODE")))
        case 0x55:  // SHORT_BINSTRING (py2 str)
            push(.bytes(try reader.bytes(try length(UInt64(try reader.u8("SHORT_BINSTRING length")), "SHORT_BINSTRING"))))
        case 0x54:  // BINSTRING
            let n = Int32(bitPattern: try reader.u32le("BINSTRING length"))
            guard n >= 0 else { throw error(.malformed, "BINSTRING with negative length \(n)") }
            push(.bytes(try reader.bytes(try length(UInt64(n), "BINSTRING"))))
        case 0x43:  // SHORT_BINBYTES
            push(.bytes(try reader.bytes(try length(UInt64(try reader.u8("SHORT_BINBYTES length")), "SHORT_BINBYTES"))))
        case 0x42:  // BINBYTES
            push(.bytes(try reader.bytes(try length(UInt64(try reader.u32le("BINBYTES length")), "BINBYTES"))))
        case 0x8E:  // BINBYTES8
            push(.bytes(try reader.bytes(try length(try reader.u64le("BINBYTES8 length"), "BINBYTES8"))))
        case 0x96:  // BYTEARRAY8
            push(.bytes(try reader.bytes(try length(try reader.u64le("BYTEARRAY8 length"), "BYTEARRAY8"))))
        case 0x53:  // STRING (text, quoted repr)
            push(.bytes(try unquote(try line("STRING"))))
        case 0x29: push(.tuple([]))  // EMPTY_TUPLE
        case 0x85: try pushTuple([try pop()])  // TUPLE1
        case 0x86:  // TUPLE2
            let b = try pop(), a = try pop()
            try pushTuple([a, b])
        case 0x87:  // TUPLE3
            let c = try pop(), b = try pop(), a = try pop()
            try pushTuple([a, b, c])
        case 0x74: try pushTuple(try popMark())  // TUPLE
        case 0x5D: push(.list(PickleList()))  // EMPTY_LIST
        case 0x6C:  // LIST
            let l = PickleList()
            l.items = try popMark()
            push(.list(l))
        case 0x7D: push(.dict(PickleDict()))  // EMPTY_DICT
        case 0x64:  // DICT
            let items = try popMark()
            guard items.count % 2 == 0 else { throw error(.malformed, "DICT with an odd number of items") }
            let d = PickleDict()
            for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
            push(.dict(d))
        case 0x8F: push(.set(PickleSet()))  // EMPTY_SET
        case 0x91:  // FROZENSET
            let s = PickleSet()
            s.items = try popMark()
            push(.set(s))
        case 0x90:  // ADDITEMS
            let items = try popMark()
            guard case .set(let s) = try top() else { throw error(.malformed, "ADDITEMS on a \(try top().typeName), not a set") }
            s.items.append(contentsOf: items)
        case 0x61:  // APPEND
            let v = try pop()
            guard case .list(let l) = try top() else { throw error(.malformed, "APPEND to a \(try top().typeName), not a list") }
            l.items.append(v)
        case 0x65:  // APPENDS
            let items = try popMark()
            guard case .list(let l) = try top() else { throw error(.malformed, "APPENDS to a \(try top().typeName), not a list") }
            l.items.append(contentsOf: items)
        case 0x73:  // SETITEM
            let v = try pop(), k = try pop()
            guard case .dict(let d) = try top() else { throw error(.malformed, "SETITEM on a \(try top().typeName), not a dict") }
            d.set(k, v)
        case 0x75:  // SETITEMS
            let items = try popMark()
            guard items.count % 2 == 0 else { throw error(.malformed, "SETITEMS with an odd number of items") }
            guard case .dict(let d) = try top() else { throw error(.malformed, "SETITEMS on a \(try top().typeName), not a dict") }
            for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
        case 0x71: try memoPut(Int(try reader.u8("BINPUT index")))
        case 0x72: try memoPut(Int(try reader.u32le("LONG_BINPUT index")))
        case 0x94: try memoPut(memo.count)  // MEMOIZE
        case 0x70:  // PUT (text)
            guard let i = Int(try line("PUT")) else { throw error(.malformed, "PUT index is not a number") }
            try memoPut(i)
        case 0x68: try memoGet(Int(try reader.u8("BINGET index")))
        case 0x6A: try memoGet(Int(try reader.u32le("LONG_BINGET index")))
        case 0x67:  // GET (text)
            guard let i = Int(try line("GET")) else { throw error(.malformed, "GET index is not a number") }
            try memoGet(i)
        case 0x63:  // GLOBAL
            let module = try line("GLOBAL module")
            let name = try line("GLOBAL name")
            push(.global(try resolve(module: module, name: name)))
        case 0x93:  // STACK_GLOBAL
            let nameNode = try pop(), moduleNode = try pop()
            guard case .string(let name) = nameNode, case .string(let module) = moduleNode else {
                throw error(.malformed, "STACK_GLOBAL needs two strings, found \(moduleNode.typeName) and \(nameNode.typeName)")
            }
            push(.global(try resolve(module: module, name: name)))
        case 0x69, 0x6F:  // INST, OBJ: instantiate with arguments
            let g: PickleGlobal
            if op == 0x69 {
                let module = try line("INST module")
                let name = try line("INST name")
                g = try resolve(module: module, name: name)
                _ = try popMark()
            } else {
                let items = try popMark()
                guard case .global(let cls)? = items.first else { throw error(.malformed, "OBJ without a class") }
                g = cls
            }
            throw error(.disallowedGlobal, "\(op == 0x69 ? "INST" : "OBJ") would call \(g.qualifiedName) with arguments (global at offset \(g.offset)); not allowed")
        case 0x82, 0x83, 0x84:  // EXT1/2/4
            throw error(.disallowedGlobal, "EXT opcode names a global through the copyreg extension registry; not allowed")
        case 0x97, 0x98:
            throw error(.unsupported, "out-of-band buffers (pickle protocol 5) are not supported")
        case 0x51:  // BINPERSID
            let pid = try pop()
            push(try persistentLoad(pid, opOffset))
        case 0x50:  // PERSID (text)
            push(try persistentLoad(.string(try line("PERSID")), opOffset))
        case 0x52:  // REDUCE
            let args = try pop(), callable = try pop()
            guard case .tuple(let argList) = args else { throw error(.malformed, "REDUCE arguments are a \(args.typeName), not a tuple") }
            guard case .global(let g) = callable else { throw error(.malformed, "REDUCE on a \(callable.typeName), not a global") }
            push(try reduce(g, argList))
        case 0x81:  // NEWOBJ
            let args = try pop(), cls = try pop()
            guard case .tuple(let argList) = args else { throw error(.malformed, "NEWOBJ arguments are a \(args.typeName), not a tuple") }
            push(try newObject(cls, argList))
        case 0x92:  // NEWOBJ_EX
            let kwargs = try pop(), args = try pop(), cls = try pop()
            guard case .tuple(let argList) = args, case .dict(let kw) = kwargs, kw.keys.isEmpty else {
                throw error(.malformed, "NEWOBJ_EX with keyword arguments is not supported")
            }
            push(try newObject(cls, argList))
        case 0x62:  // BUILD
            let state = try pop()
            try build(try top(), state)
        default:
            throw error(.malformed, String(format: "unknown pickle opcode 0x%02X", op))
        }
    }

    /// Decodes a protocol-0 quoted string (`'abc\n'` with Python escapes).
    private func unquote(_ text: String) throws(CheckpointError) -> [UInt8] {
        let b = Array(text.utf8)
        guard b.count >= 2, let q = b.first, (q == 0x27 || q == 0x22), b.last == q else {
            throw error(.malformed, "STRING argument is not quoted")
        }
        var out: [UInt8] = []
        var i = 1
        while i < b.count - 1 {
            if b[i] == 0x5C, i + 1 < b.count - 1 {
                let e = b[i + 1]
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A); i += 2
                case UInt8(ascii: "r"): out.append(0x0D); i += 2
                case UInt8(ascii: "t"): out.append(0x09); i += 2
                case UInt8(ascii: "x") where i + 3 < b.count:
                    guard let v = UInt8(String(decoding: b[(i + 2)...(i + 3)], as: UTF8.self), radix: 16) else {
                        throw error(.malformed, "bad \\x escape in STRING")
                    }
                    out.append(v); i += 4
                default: out.append(e); i += 2
                }
            } else {
                out.append(b[i]); i += 1
            }
        }
        return out
    }

    // MARK: globals

    private func resolve(module: String, name: String) throws(CheckpointError) -> PickleGlobal {
        if let kind = PickleAllowList.kind(module: module, name: name) {
            return PickleGlobal(module: module, name: name, kind: kind, offset: opOffset)
        }
        if allowOpaqueClasses, Self.looksLikeClass(module: module, name: name) {
            return PickleGlobal(module: module, name: name, kind: .opaqueClass, offset: opOffset)
        }
        throw error(.disallowedGlobal, "global '\(module).\(name)' is not on the allow-list; nothing was executed")
    }

    /// Module-pickle mode admits class names only: never the modules Python reaches the system through.
    private static func looksLikeClass(module: String, name: String) -> Bool {
        let root = module.split(separator: ".").first.map(String.init) ?? module
        let blocked: Set<String> = [
            "os", "posix", "nt", "sys", "subprocess", "builtins", "__builtin__", "shutil", "socket", "importlib",
            "runpy", "pickle", "_pickle", "marshal", "types", "ctypes", "code", "codeop", "pty", "io", "functools",
            "operator", "webbrowser", "multiprocessing", "signal", "commands", "pdb", "timeit", "tempfile",
        ]
        guard !blocked.contains(root), !module.isEmpty, !name.isEmpty else { return false }
        let identifier = { (s: Substring) in !s.isEmpty && s.allSatisfy { $0 == "_" || $0.isLetter || $0.isNumber } }
        return module.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(identifier)
            && name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(identifier)
    }

    private func int(_ node: PickleNode, _ what: String) throws(CheckpointError) -> Int {
        guard let v = node.intValue, let i = Int(exactly: v) else {
            throw error(.malformed, "\(what) is a \(node.typeName), expected an int")
        }
        return i
    }

    private func ints(_ node: PickleNode, _ what: String) throws(CheckpointError) -> [Int] {
        switch node {
        case .tuple(let items):
            var out: [Int] = []
            for item in items { out.append(try int(item, what)) }
            return out
        case .list(let l):
            var out: [Int] = []
            for item in l.items { out.append(try int(item, what)) }
            return out
        default:
            throw error(.malformed, "\(what) is a \(node.typeName), expected a tuple of ints")
        }
    }

    private func storageRef(_ node: PickleNode, _ g: PickleGlobal) throws(CheckpointError) -> StorageRef {
        guard case .storage(let s) = node else {
            throw error(.malformed, "\(g.name) expects a storage, found \(node.typeName)")
        }
        return s
    }

    private func tensorView(storage: PickleNode, offset: PickleNode, size: PickleNode, stride: PickleNode, dtype: DType?, _ g: PickleGlobal) throws(CheckpointError) -> PickleNode {
        let s = try storageRef(storage, g)
        let dt = dtype ?? s.dtype
        guard dt != .untyped else { throw error(.malformed, "\(g.name): untyped storage '\(s.key)' without a dtype") }
        return .tensor(TensorView(
            storage: s, dtype: dt, offset: try int(offset, "storage offset"),
            shape: try ints(size, "tensor size"), strides: try ints(stride, "tensor stride"), pickleOffset: opOffset))
    }

    /// Interprets REDUCE of an allow-listed global. Nothing is called.
    private func reduce(_ g: PickleGlobal, _ args: [PickleNode]) throws(CheckpointError) -> PickleNode {
        func need(_ n: Int) throws(CheckpointError) {
            guard args.count >= n else { throw error(.malformed, "\(g.qualifiedName) needs \(n) arguments, got \(args.count)") }
        }
        switch g.kind {
        case .rebuildTensor:
            try need(4)
            return try tensorView(storage: args[0], offset: args[1], size: args[2], stride: args[3], dtype: nil, g)
        case .rebuildTensorV2:
            try need(6)
            return try tensorView(storage: args[0], offset: args[1], size: args[2], stride: args[3], dtype: nil, g)
        case .rebuildTensorV3:
            try need(7)
            guard case .global(let dg) = args[6], case .dtype(let dtype) = dg.kind else {
                throw error(.malformed, "_rebuild_tensor_v3 expects a dtype as 7th argument, found \(args[6].typeName)")
            }
            guard let dtype else { throw error(.unsupported, "tensor of dtype torch.\(dg.name) is not supported") }
            return try tensorView(storage: args[0], offset: args[1], size: args[2], stride: args[3], dtype: dtype, g)
        case .rebuildParameter, .rebuildParameterWithState:
            try need(g.kind == .rebuildParameter ? 3 : 4)
            guard case .tensor = args[0] else { throw error(.malformed, "\(g.name) expects a tensor, found \(args[0].typeName)") }
            return args[0]
        case .rebuildFromTypeV2:
            try need(4)
            guard case .global(let inner) = args[0], case .tuple(let innerArgs) = args[2] else {
                throw error(.malformed, "_rebuild_from_type_v2 expects (function, type, args, state)")
            }
            switch inner.kind {
            case .rebuildTensor, .rebuildTensorV2, .rebuildTensorV3, .rebuildParameter, .rebuildParameterWithState, .unsupportedRebuild:
                return try reduce(inner, innerArgs)
            default:
                throw error(.malformed, "_rebuild_from_type_v2 wraps \(inner.qualifiedName), not a tensor rebuild function")
            }
        case .unsupportedRebuild:
            throw error(.unsupported, "\(g.qualifiedName) (sparse, quantized, nested or meta tensors) is not supported")
        case .orderedDict, .counter:
            let d = PickleDict()
            if let first = args.first {
                switch first {
                case .list(let l):
                    for item in l.items {
                        // pairs are tuples (py3) or two-element lists (py2 OrderedDict.__reduce__)
                        switch item {
                        case .tuple(let kv) where kv.count == 2: d.set(kv[0], kv[1])
                        case .list(let kv) where kv.items.count == 2: d.set(kv.items[0], kv.items[1])
                        default: throw error(.malformed, "\(g.name) items must be pairs, found a \(item.typeName)")
                        }
                    }
                case .dict(let src):
                    for (k, v) in zip(src.keys, src.values) { d.set(k, v) }
                case .tuple(let items) where items.isEmpty:
                    break
                default:
                    throw error(.malformed, "\(g.name) built from a \(first.typeName)")
                }
            }
            return .dict(d)
        case .builtinSet, .builtinFrozenSet:
            let s = PickleSet()
            if let first = args.first {
                switch first {
                case .list(let l): s.items = l.items
                case .tuple(let items): s.items = items
                case .set(let other): s.items = other.items
                default: throw error(.malformed, "set built from a \(first.typeName)")
                }
            }
            return .set(s)
        case .builtinByteArray:
            guard let first = args.first else { return .bytes([]) }
            if case .bytes(let b) = first { return .bytes(b) }
            if case .string(let s) = first { return .bytes(try latin1(s)) }
            throw error(.malformed, "bytearray built from a \(first.typeName)")
        case .builtinComplex:
            return .object(PickleObject(type: "complex", args: args))
        case .codecsEncode:
            try need(1)
            guard case .string(let s) = args[0] else { throw error(.malformed, "_codecs.encode of a \(args[0].typeName)") }
            let encoding = args.count > 1 ? args[1].stringValue?.lowercased() ?? "" : "utf-8"
            if encoding == "latin1" || encoding == "latin-1" || encoding == "iso-8859-1" { return .bytes(try latin1(s)) }
            if encoding == "utf-8" || encoding == "utf8" { return .bytes(Array(s.utf8)) }
            throw error(.unsupported, "_codecs.encode with encoding '\(encoding)'")
        case .torchSize:
            try need(1)
            return .tuple(try ints(args[0], "torch.Size").map { .int(Int64($0)) })
        case .torchDevice:
            return .object(PickleObject(type: "torch.device", args: args))
        case .numpyDtype:
            return .object(PickleObject(type: "numpy.dtype", args: args))
        case .numpyScalar:
            try need(1)
            return try numpyScalar(args)
        case .copyregReconstructor:
            try need(1)
            if g.name == "_reconstruct" {
                // numpy's array reconstructor: only for numpy.ndarray itself.
                guard case .global(let cls) = args[0], cls.qualifiedName == "numpy.ndarray" else {
                    throw error(.disallowedGlobal, "\(g.qualifiedName) of a \(args[0].typeName), not numpy.ndarray; not allowed")
                }
            }
            return try newObject(args[0], [])
        case .jitList:
            // torch.jit._pickle.build_intlist([...]) and friends: the list itself.
            try need(1)
            return args[0]
        case .namespace, .opaqueClass, .parameterClass, .tensorClass, .storageClass, .dtype:
            throw error(.disallowedGlobal, "REDUCE would call \(g.qualifiedName) (global at offset \(g.offset)); only instantiation without arguments is modelled")
        }
    }

    private func latin1(_ s: String) throws(CheckpointError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.unicodeScalars.count)
        for u in s.unicodeScalars {
            guard u.value < 256 else { throw error(.malformed, "latin-1 text with a character above U+00FF") }
            out.append(UInt8(u.value))
        }
        return out
    }

    /// NEWOBJ: instantiation of an allowed class without running its code.
    private func newObject(_ cls: PickleNode, _ args: [PickleNode]) throws(CheckpointError) -> PickleNode {
        guard case .global(let g) = cls else { throw error(.malformed, "NEWOBJ on a \(cls.typeName), not a class") }
        switch g.kind {
        case .namespace, .opaqueClass:
            return .object(PickleObject(type: g.qualifiedName, args: args))
        case .orderedDict, .counter, .builtinSet, .builtinFrozenSet:
            return try reduce(g, args)
        case .parameterClass:
            // Parameter.__new__(cls, data, requires_grad): the tensor is the data.
            if case .tensor? = args.first { return args[0] }
            throw error(.malformed, "Parameter created without a tensor")
        default:
            throw error(.disallowedGlobal, "NEWOBJ of \(g.qualifiedName) (global at offset \(g.offset)) is not modelled")
        }
    }

    /// BUILD: set state on the object below. Only dicts (attributes, e.g. `_metadata`), inert
    /// objects and tensors (Python attributes, ignored) accept it.
    private func build(_ target: PickleNode, _ state: PickleNode) throws(CheckpointError) {
        switch target {
        case .dict(let d):
            guard case .dict(let s) = state else { throw error(.malformed, "BUILD on a dict with a \(state.typeName) state") }
            for (k, v) in zip(s.keys, s.values) {
                guard let name = k.stringValue else { throw error(.malformed, "BUILD attribute name is a \(k.typeName)") }
                d.attributes.append((name, v))
            }
        case .object(let o) where o.type == "numpy.ndarray":
            guard o.state == nil else { throw error(.malformed, "BUILD on a numpy array that already has its data") }
            o.state = try numpyArray(state)
        case .object(let o):
            if case .dict(let new) = state, case .dict(let old)? = o.state {
                for (k, v) in zip(new.keys, new.values) { old.set(k, v) }
            } else if case .tuple(let parts) = state, parts.count == 2, case .dict(let new) = parts[0], case .none = parts[1] {
                if case .dict(let old)? = o.state {
                    for (k, v) in zip(new.keys, new.values) { old.set(k, v) }
                } else {
                    o.state = .dict(new)
                }
            } else {
                o.state = state
            }
        case .tensor:
            break  // Python-level tensor attributes: not weights
        default:
            throw error(.malformed, "BUILD on a \(target.typeName)")
        }
    }

    /// The state `ndarray.__setstate__` takes — `([version,] shape, dtype, is_fortran, raw bytes)` —
    /// as an inert tensor over a copy of the bytes. Only fixed-size numeric and bool dtypes are
    /// accepted (object, string and structured arrays are refused), and the bytes must be exactly
    /// `product(shape) * itemsize`.
    private func numpyArray(_ state: PickleNode) throws(CheckpointError) -> PickleNode {
        guard case .tuple(var parts) = state, parts.count == 4 || parts.count == 5 else {
            throw error(.malformed, "numpy array state is a \(state.typeName), expected (version, shape, dtype, is_fortran, data)")
        }
        if parts.count == 5 { parts.removeFirst() }
        let shape = try ints(parts[0], "numpy array shape")
        var count = 1
        for d in shape {
            guard d >= 0 else { throw error(.malformed, "numpy array shape \(shape) has a negative dimension") }
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw error(.limitExceeded, "numpy array shape \(shape) has too many elements") }
            count = p
        }
        guard case .object(let dt) = parts[1], dt.type == "numpy.dtype", let code = dt.args.first?.stringValue else {
            throw error(.malformed, "numpy array dtype is a \(parts[1].typeName), not a numpy.dtype")
        }
        // dtype state: (version, byte order, subarray, names, fields, elsize, alignment, flags).
        var byteOrder = ByteOrder.little
        if case .tuple(let st)? = dt.state {
            if st.count > 1, st[1].stringValue == ">" { byteOrder = .big }
            if st.count > 3 {
                guard case .none = st[3] else {
                    throw error(.unsupported, "numpy structured arrays (dtype with fields) are not supported")
                }
            }
        }
        let dtype: DType
        switch code.hasPrefix("<") || code.hasPrefix(">") || code.hasPrefix("|") || code.hasPrefix("=") ? String(code.dropFirst()) : code {
        case "b1": dtype = .bool
        case "i1": dtype = .int8
        case "u1": dtype = .uint8
        case "i2": dtype = .int16
        case "u2": dtype = .uint16
        case "i4": dtype = .int32
        case "u4": dtype = .uint32
        case "i8": dtype = .int64
        case "u8": dtype = .uint64
        case "f2": dtype = .float16
        case "f4": dtype = .float32
        case "f8": dtype = .float64
        case "c8": dtype = .complex64
        case "c16": dtype = .complex128
        default: throw error(.unsupported, "numpy arrays of dtype '\(code)' are not supported (object, string and void arrays are refused)")
        }
        let fortran = parts[2].intValue.map { $0 != 0 } ?? false
        guard case .bytes(let raw) = parts[3] else {
            throw error(.unsupported, "numpy array data is a \(parts[3].typeName), expected bytes (object arrays are refused)")
        }
        let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, raw.count == expected else {
            throw error(.malformed, "numpy array of shape \(shape) and dtype '\(code)' needs \(overflow ? "too many" : String(expected)) bytes, its data has \(raw.count)")
        }
        var strides = [Int](repeating: 1, count: shape.count)
        if fortran {
            for i in shape.indices.dropFirst() { strides[i] = strides[i - 1] * max(shape[i - 1], 1) }
        } else {
            for i in shape.indices.reversed().dropFirst() { strides[i] = strides[i + 1] * max(shape[i + 1], 1) }
        }
        let key = "numpy@\(opOffset)"
        let storage = StorageRef(key: key, dtype: dtype, elementCount: count, location: "cpu")
        storage.data = try StorageData(key: key, dtype: dtype, elementCount: count, byteOrder: byteOrder, bytes: raw.withUnsafeBytes { ByteBuffer(copying: $0) }.all)
        return .tensor(TensorView(storage: storage, dtype: dtype, offset: 0, shape: shape, strides: strides, pickleOffset: opOffset))
    }

    /// `numpy.core.multiarray.scalar(dtype, bytes)` → the number, decoded without numpy.
    private func numpyScalar(_ args: [PickleNode]) throws(CheckpointError) -> PickleNode {
        guard case .object(let dt) = args[0], dt.type == "numpy.dtype", let code = dt.args.first?.stringValue else {
            throw error(.malformed, "numpy scalar without a dtype")
        }
        guard args.count > 1, case .bytes(let raw) = args[1] else { return .object(PickleObject(type: "numpy.\(code)", args: args)) }
        // The byte order is the second field of the dtype's BUILD state: '<', '>', '|' or '='.
        var bigEndian = false
        if case .tuple(let st)? = dt.state, st.count > 1, st[1].stringValue == ">" { bigEndian = true }
        let bytes = bigEndian ? Array(raw.reversed()) : raw
        func le<T: FixedWidthInteger>(_ type: T.Type) -> T? {
            guard bytes.count == MemoryLayout<T>.size else { return nil }
            var v: T = 0
            for (i, b) in bytes.enumerated() { v |= T(truncatingIfNeeded: b) << (8 * i) }
            return v
        }
        switch code {
        case "f8": if let b = le(UInt64.self) { return .float(Double(bitPattern: b)) }
        case "f4": if let b = le(UInt32.self) { return .float(Double(Float(bitPattern: b))) }
        case "f2": if let b = le(UInt16.self) { return .float(Double(Float16Bits.toFloat(b))) }
        case "i8": if let v = le(Int64.self) { return .int(v) }
        case "i4": if let v = le(Int32.self) { return .int(Int64(v)) }
        case "i2": if let v = le(Int16.self) { return .int(Int64(v)) }
        case "i1": if let v = le(Int8.self) { return .int(Int64(v)) }
        case "u1": if let v = le(UInt8.self) { return .int(Int64(v)) }
        case "u2": if let v = le(UInt16.self) { return .int(Int64(v)) }
        case "u4": if let v = le(UInt32.self) { return .int(Int64(v)) }
        case "u8": if let v = le(UInt64.self), let i = Int64(exactly: v) { return .int(i) }
        case "b1": if bytes.count == 1 { return .bool(bytes[0] != 0) }
        default: break
        }
        return .object(PickleObject(type: "numpy.\(code)", args: args))
    }
}

extension CheckpointReader {
    /// Reads a plain Python pickle (a `pickle.dump` of data, such as CIFAR-10's python batches) as
    /// inert values, with the same allow-list and caps as checkpoint pickles. numpy arrays become
    /// `.object(type: "numpy.ndarray", args: [], state: .tensor(...))`; nothing is executed.
    public static func readPickle(_ path: String, options: ReadOptions = ReadOptions()) throws(CheckpointError) -> PickleValue {
        do throws(CheckpointError) {
            let buffer = try ByteBuffer(mapping: path)
            return try readPickle(buffer.all, name: path, options: options)
        } catch {
            throw error.inFile(path)
        }
    }

    /// Reads a plain Python pickle held in memory; `name` is used in error messages.
    public static func readPickle(_ data: ByteSlice, name: String, options: ReadOptions = ReadOptions()) throws(CheckpointError) -> PickleValue {
        do throws(CheckpointError) {
            guard data.count > 0 else { throw CheckpointError(.truncated, "the file is empty", offset: 0) }
            let (node, end) = try TorchPickle.run(data, options: options)
            return try TorchPickle.freeze(node, pickleLength: end, options: options)
        } catch {
            throw error.inFile(name)
        }
    }
}
