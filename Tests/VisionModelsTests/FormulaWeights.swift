/// Deterministic "formula weights" and inputs for the full-size golden tests.
///
/// The twin of `tools/formula_weights.py`: both produce bit-identical float32 values, pinned by
/// `Tests/Fixtures/golden/formula_samples.json` (see `FormulaWeightsTests`). The full-size goldens in
/// `Tests/Fixtures/golden/full/` were computed by torchvision with exactly these weights and inputs, so
/// a Swift model loaded with `values(key:shape:index:)` for every manifest entry must reproduce them.
///
/// Only exactly reproducible arithmetic is used: `UInt32` wrap-around hashing, a 24-bit integer
/// converted to `Float` (exact) and scaled by a power of two (exact), single float32 multiplies and
/// adds in a fixed order (never fused), and `sqrt(G / fanIn)` computed in `Double` and rounded once.
///
/// ```
/// mix(x)  = lowbias32: x ^= x>>16; x &*= 0x7FEB352D; x ^= x>>15; x &*= 0x846CA68B; x ^= x>>16
/// k_p     = mix(p &* 0x9E3779B9 &+ salt)     salt = tensorSalt, or linearSalt(for: architecture) for
///                                            linear weights
/// m_i     = mix(UInt32(i) ^ k_p) >> 8        24 bits
/// u_i     = Float(m_i) * 2^-24               in [0, 1)
/// s_i     = Float(m_i) * 2^-23 - 1           in [-1, 1)
/// ```
/// Roles (``Role``) by key suffix and shape:
/// `num_batches_tracked` 0; `running_mean` 0.125·s; `running_var` u + 0.5;
/// 4-D `weight` s·Float(sqrt(6/fan_in)) with fan_in = shape[1]·shape[2]·shape[3];
/// 2-D `weight` s·Float(sqrt(3/shape[1])); 1-D `weight` u·width + low with [low, low+width) =
/// [0.25, 0.5) if the module's last name segment is `bn2` or `bn3` (or the architecture's entry in
/// ``architectureResidualGamma``), else [0.75, 1.25); `bias` and anything else 0.125·s.
/// The architecture's name matters only through ``architectureLinearSalts`` and
/// ``architectureResidualGamma``; `nil` (the three-argument `values`) means neither applies.
enum FormulaWeights {
    /// Salt of every tensor key except linear weights.
    static let tensorSalt: UInt32 = 0x632B_E5AB
    /// Salt of linear (classifier) weights, found by `tools/make_goldens.py --search-linear-salt` so that
    /// every architecture's top-6 logits are separated by more than 1e-3·max|logit| at both golden inputs.
    static let linearSalt: UInt32 = 1531
    /// Salts of linear weights for the architectures where `linearSalt` does not separate the top 6
    /// (added with the SE and CIFAR networks; `tools/make_goldens.py --search-arch-salts`: the first salt
    /// from 0 that passes). The twin of `ARCH_LINEAR_SALTS` in `tools/formula_weights.py`.
    static let architectureLinearSalts: [String: UInt32] = [
        "seresnet18": 1,
        "seresnet34": 1,
        "seresnet101": 0,
        "se_resnet50": 0,
        "se_resnext101_32x4d": 2,
    ]
    /// Salt of input keys.
    static let inputSalt: UInt32 = 0x7F4A_7C15
    /// Image-like inputs: salt of the per-cell hash (derived from the input key).
    static let cellSalt: UInt32 = 0x5BD1_E995
    /// Image-like inputs: salt of the per-plane offset hash (derived from the input key).
    static let offsetSalt: UInt32 = 0x27D4_EB2F
    /// Image-like inputs use square cells of `1 << cellShift` pixels.
    static let cellShift: UInt32 = 4
    static let golden: UInt32 = 0x9E37_79B9

    /// What a state-dict entry is, decided by its key's last segment and its rank.
    enum Role: String, Sendable, CaseIterable {
        case numBatchesTracked = "num_batches_tracked"
        case runningMean = "running_mean"
        case runningVar = "running_var"
        case convWeight = "conv_weight"
        case linearWeight = "linear_weight"
        case normWeight = "norm_weight"
        case bias = "bias"
        case other = "other"
    }

    /// The role of `key` with `shape` (first match wins, in the order of the cases).
    static func role(key: String, shape: [Int]) -> Role {
        let last = key.split(separator: ".", omittingEmptySubsequences: false).last.map(String.init) ?? key
        switch last {
        case "num_batches_tracked": return .numBatchesTracked
        case "running_mean": return .runningMean
        case "running_var": return .runningVar
        case "weight" where shape.count == 4: return .convWeight
        case "weight" where shape.count == 2: return .linearWeight
        case "weight" where shape.count == 1: return .normWeight
        case "bias": return .bias
        default: return .other
        }
    }

    /// `(low, width)` of the `bn2`/`bn3` gamma for architectures whose residual stream would otherwise
    /// grow without bound (resnet1202: ~1e9 per stage with the default [0.25, 0.5)). Powers of two.
    /// The twin of `ARCH_RESIDUAL_GAMMA` in `tools/formula_weights.py`.
    static let architectureResidualGamma: [String: (low: Float, width: Float)] = [
        "resnet110": (0.125, 0.125),
        "resnet1202": (0.03125, 0.03125),
    ]

    /// `(low, width)` of a norm weight of `architecture`: gamma is uniform in [low, low + width).
    static func gammaRange(key: String, architecture: String? = nil) -> (low: Float, width: Float) {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        let module = parts.count >= 2 ? String(parts[parts.count - 2]) : ""
        switch module {
        case "bn2", "bn3": return architecture.flatMap { architectureResidualGamma[$0] } ?? (0.25, 0.25)
        default: return (0.75, 0.5)
        }
    }

    /// The salt of linear weights of `architecture`: its entry in ``architectureLinearSalts``, else
    /// ``linearSalt`` (also for `nil`).
    static func linearSalt(for architecture: String?) -> UInt32 {
        architecture.flatMap { architectureLinearSalts[$0] } ?? linearSalt
    }

    /// lowbias32 (Chris Wellons), wrap-around `UInt32` arithmetic.
    @inline(__always)
    static func mix(_ value: UInt32) -> UInt32 {
        var x = value
        x ^= x >> 16
        x &*= 0x7FEB_352D
        x ^= x >> 15
        x &*= 0x846C_A68B
        x ^= x >> 16
        return x
    }

    /// The per-tensor key `mix(p * 0x9E3779B9 + salt)` (mod 2^32).
    static func tensorKey(index p: Int, salt: UInt32) -> UInt32 {
        mix(UInt32(truncatingIfNeeded: p) &* golden &+ salt)
    }

    /// The per-input key `mix(seed * 0x9E3779B9 + inputSalt)` (mod 2^32).
    static func inputKey(seed: UInt32) -> UInt32 {
        mix(seed &* golden &+ inputSalt)
    }

    /// `Float(sqrt(g / fanIn))`, the division and square root in `Double`, rounded once.
    static func sqrtRatio(_ g: Double, _ fanIn: Int) -> Float {
        Float((g / Double(fanIn)).squareRoot())
    }

    @inline(__always)
    static func unit(_ h: UInt32) -> Float { Float(h >> 8) * 0x1p-24 }

    @inline(__always)
    static func symmetric(_ h: UInt32) -> Float { Float(h >> 8) * 0x1p-23 - 1 }

    /// Number of elements of `shape` (1 for a 0-d tensor).
    static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Every value of the state-dict entry `key` (shape `shape`, manifest index `p`), row-major, with
    /// the default classifier salt ``linearSalt`` (right for the 14 torchvision architectures and every
    /// architecture without an entry in ``architectureLinearSalts``).
    /// `num_batches_tracked` (an int64 0 in torch) is returned as `0`.
    static func values(key: String, shape: [Int], index p: Int) -> [Float] {
        values(key: key, shape: shape, index: p, architecture: nil)
    }

    /// Every value of the state-dict entry `key` (shape `shape`, manifest index `p`) of the architecture
    /// named `architecture` (the manifest's name, e.g. `"seresnet50"`), row-major. The name only changes
    /// linear weights, through ``linearSalt(for:)``, and the `bn2`/`bn3` gamma of the architectures in
    /// ``architectureResidualGamma``; `nil` means neither (the torchvision formula).
    static func values(key: String, shape: [Int], index p: Int, architecture: String?) -> [Float] {
        let n = count(shape)
        return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            fill(buffer, key: key, shape: shape, index: p, architecture: architecture)
            initialized = n
        }
    }

    /// Writes the values of `values(key:shape:index:architecture:)` into `out` (which must hold exactly
    /// `count(shape)` elements).
    static func fill(_ out: UnsafeMutableBufferPointer<Float>, key: String, shape: [Int], index p: Int,
                     architecture: String? = nil) {
        precondition(out.count == count(shape), "buffer size \(out.count) != element count of \(shape)")
        precondition(out.count <= Int(UInt32.max), "tensor too large for 32-bit element indices")
        let role = role(key: key, shape: shape)
        if role == .numBatchesTracked {
            for i in out.indices { out[i] = 0 }
            return
        }
        let k = tensorKey(index: p, salt: role == .linearWeight ? linearSalt(for: architecture) : tensorSalt)
        guard let base = out.baseAddress else { return }
        let n = out.count
        switch role {
        case .runningVar:
            let half: Float = 0.5
            for i in 0..<n { base[i] = unit(mix(UInt32(truncatingIfNeeded: i) ^ k)) + half }
        case .normWeight:
            let (low, width) = gammaRange(key: key, architecture: architecture)
            for i in 0..<n { base[i] = unit(mix(UInt32(truncatingIfNeeded: i) ^ k)) * width + low }
        case .convWeight:
            let scale = sqrtRatio(6, shape[1] * shape[2] * shape[3])
            for i in 0..<n { base[i] = symmetric(mix(UInt32(truncatingIfNeeded: i) ^ k)) * scale }
        case .linearWeight:
            let scale = sqrtRatio(3, shape[1])
            for i in 0..<n { base[i] = symmetric(mix(UInt32(truncatingIfNeeded: i) ^ k)) * scale }
        case .runningMean, .bias, .other, .numBatchesTracked:
            let small: Float = 0.125
            for i in 0..<n { base[i] = symmetric(mix(UInt32(truncatingIfNeeded: i) ^ k)) * small }
        }
    }

    /// An input tensor (row-major) in [-1, 1).
    ///
    /// For an NCHW shape it is image-like: `(0.5·o + 0.25·g) + 0.25·e`, with `o` a per-(n, c) offset,
    /// `g` a per 16×16-cell value and `e` per-pixel noise, each a symmetric uniform from its own hash:
    /// `e_i = s(mix(i ^ k))`, `g = s(mix(((n·C + c) << 16 | (y >> 4) << 8 | (x >> 4)) ^ mix(k ^ cellSalt)))`,
    /// `o = s(mix((n·C + c) ^ mix(k ^ offsetSalt)))`, `k = inputKey(seed)`. Other ranks get `e` alone.
    /// Requires H, W <= 4096 and N·C < 65536 for a 4-D shape.
    static func input(shape: [Int], seed: UInt32) -> [Float] {
        let n = count(shape)
        precondition(n <= Int(UInt32.max), "input too large for 32-bit element indices")
        let k = inputKey(seed: seed)
        guard shape.count == 4 else {
            return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
                for i in 0..<n { buffer[i] = symmetric(mix(UInt32(truncatingIfNeeded: i) ^ k)) }
                initialized = n
            }
        }
        let planes = shape[0] * shape[1]
        let (h, w) = (shape[2], shape[3])
        precondition(h <= 4096 && w <= 4096 && planes < 1 << 16, "input too large for the image-like formula")
        let kCell = mix(k ^ cellSalt)
        let kOffset = mix(k ^ offsetSalt)
        let half: Float = 0.5
        let quarter: Float = 0.25
        return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            var i = 0
            for plane in 0..<planes {
                let o = symmetric(mix(UInt32(plane) ^ kOffset))
                let planeBits = UInt32(plane) << 16
                for y in 0..<h {
                    let rowBits = planeBits | (UInt32(y) >> cellShift) << 8
                    for x in 0..<w {
                        let g = symmetric(mix((rowBits | UInt32(x) >> cellShift) ^ kCell))
                        let e = symmetric(mix(UInt32(truncatingIfNeeded: i) ^ k))
                        buffer[i] = (o * half + g * quarter) + e * quarter
                        i += 1
                    }
                }
            }
            initialized = n
        }
    }

    /// Parses a manifest (`Tests/Fixtures/manifests/<arch>.txt`): one `<key> <d0,d1,...>` per line
    /// (`-` for a 0-d tensor), `#` comment lines skipped. Returns nil on a malformed line.
    static func parseManifest(_ text: String) -> [(key: String, shape: [Int])]? {
        var entries: [(key: String, shape: [Int])] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("#") { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, !fields[0].isEmpty else { return nil }
            if fields[1] == "-" {
                entries.append((String(fields[0]), []))
                continue
            }
            var shape: [Int] = []
            for d in fields[1].split(separator: ",", omittingEmptySubsequences: false) {
                guard let v = Int(d), v >= 0 else { return nil }
                shape.append(v)
            }
            entries.append((String(fields[0]), shape))
        }
        return entries
    }
}
