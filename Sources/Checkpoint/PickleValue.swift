/// A value decoded from a pickle, as inert data. Nothing in it can run code.
///
/// Tensors appear as `.tensor`; objects of allow-listed classes that are not weights (an
/// `argparse.Namespace`, a numpy scalar's dtype) appear as `.object` records of their type name,
/// constructor arguments and state.
public indirect enum PickleValue: Sendable {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer too large for 64 bits: little-endian two's-complement bytes, as LONG1/LONG4 store it.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    case set([PickleValue])
    /// A dict or OrderedDict, in insertion order.
    case dict([DictEntry])
    case tensor(TensorData)
    /// An allow-listed global used as a value (a dtype such as `torch.float16`, a storage class).
    case global(module: String, name: String)
    /// An inert record of an object: its class, constructor arguments and `BUILD` state.
    case object(type: String, args: [PickleValue], state: PickleValue?)

    /// One key-value pair of a dict.
    public struct DictEntry: Sendable {
        public let key: PickleValue
        public let value: PickleValue
        public init(key: PickleValue, value: PickleValue) {
            self.key = key
            self.value = value
        }
    }

    /// The string if this is `.string` (or ASCII `.bytes`, as py2 pickles store text).
    public var stringValue: String? {
        switch self {
        case .string(let s): return s
        case .bytes(let b) where b.allSatisfy({ $0 < 0x80 }): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }

    /// The integer if this is `.int` or `.bool`.
    public var intValue: Int64? {
        switch self {
        case .int(let v): return v
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// The entries if this is a dict.
    public var dictEntries: [DictEntry]? {
        if case .dict(let entries) = self { return entries }
        return nil
    }

    /// The value under string key `key` if this is a dict.
    public subscript(key: String) -> PickleValue? {
        guard let entries = dictEntries else { return nil }
        return entries.first(where: { $0.key.stringValue == key })?.value
    }

    /// A short Python-like rendering for display, cut to about `limit` characters.
    public func render(limit: Int = 200) -> String {
        var out = ""
        render(into: &out, limit: limit)
        if out.count > limit { out = String(out.prefix(limit)) + "..." }
        return out
    }

    private func render(into out: inout String, limit: Int) {
        if out.count > limit { return }
        func seq(_ items: [PickleValue], _ open: String, _ close: String) {
            out += open
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                if out.count > limit { out += "..."; break }
                item.render(into: &out, limit: limit)
            }
            if open == "(" && items.count == 1 { out += "," }
            out += close
        }
        switch self {
        case .none: out += "None"
        case .bool(let b): out += b ? "True" : "False"
        case .int(let v): out += String(v)
        case .bigInt(let b): out += "<int of \(b.count) bytes>"
        case .float(let d): out += d == d.rounded() && abs(d) < 1e16 ? String(format: "%.1f", d) : "\(d)"
        case .string(let s): out += "'" + s + "'"
        case .bytes(let b): out += "b<\(b.count) bytes>"
        case .list(let items): seq(items, "[", "]")
        case .tuple(let items): seq(items, "(", ")")
        case .set(let items): seq(items, "{", "}")
        case .dict(let entries):
            out += "{"
            for (i, e) in entries.enumerated() {
                if i > 0 { out += ", " }
                if out.count > limit { out += "..."; break }
                e.key.render(into: &out, limit: limit)
                out += ": "
                e.value.render(into: &out, limit: limit)
            }
            out += "}"
        case .tensor(let t): out += "tensor(\(t.dtype.name), \(t.shape))"
        case .global(let m, let n): out += "\(m).\(n)"
        case .object(let type, let args, let state):
            out += type
            if let state, case .dict = state {
                out += "("
                if case .dict(let entries) = state {
                    for (i, e) in entries.enumerated() {
                        if i > 0 { out += ", " }
                        if out.count > limit { out += "..."; break }
                        out += e.key.stringValue ?? "?"
                        out += "="
                        e.value.render(into: &out, limit: limit)
                    }
                }
                out += ")"
            } else {
                seq(args, "(", ")")
            }
        }
    }
}

import Foundation
