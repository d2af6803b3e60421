import Testing

@testable import NeuralNet

/// The engine's kernels (`CKernels`) against the reference paths: the CBLAS im2col convolution
/// (`Conv2d.forwardReference`, which the torch goldens in ConvGoldenTests also pin) and the Tensor ops.
///
/// Bounds, as max |ours - reference| / max |reference|: 1e-5 for the packed GEMM and the direct grouped
/// kernel (they only reorder the same float32 sums; measured <= 4e-7), 2e-5 for Winograd F(4x4, 3x3)
/// (its transforms round differently; measured <= 8e-6 at 128 channels); pooling and copies exact.
/// Every convolution case runs at every instruction-set level this CPU has (AVX-512F, AVX2+FMA,
/// portable C) and with 1 and 2 threads; results must not depend on the thread count at all.
@Suite("Kernels", .serialized)
struct KernelTests {
    /// A deterministic pseudo-random vector in [-1, 1).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
        }
    }

    static func conv(_ c: Conv2dConfig, seed: UInt64 = 11, bias: Bool = true) throws -> Conv2d {
        let n = c.weightShape.reduce(1, *)
        let scale = 1 / Float(c.inChannelsPerGroup * c.kernelH * c.kernelW).squareRoot()
        return try Conv2d(
            config: c, weight: values(n, seed: seed).map { $0 * scale },
            bias: bias ? values(c.outChannels, seed: seed + 1) : nil)
    }

    /// A batch norm over `channels` with random statistics from four seeds (weight, bias, running mean,
    /// running variance): weights in [0.5, 1.5), variances in [0.2, 1.2), eps 1e-5.
    static func batchNorm(_ channels: Int, seeds s: (UInt64, UInt64, UInt64, UInt64)) throws -> BatchNorm2d {
        try BatchNorm2d(
            weight: values(channels, seed: s.0).map { 0.5 + abs($0) }, bias: values(channels, seed: s.1),
            runningMean: values(channels, seed: s.2), runningVar: values(channels, seed: s.3).map { 0.2 + abs($0) }, eps: 1e-5)
    }

    /// The CBLAS reference forward pass.
    static func reference(_ conv: Conv2d, _ x: Tensor, activation: Activation = .none) throws -> Tensor {
        let (n, _, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = try conv.config.outputSize(h: h, w: w)
        var out = [Float](repeating: 0, count: n * conv.config.outChannels * oh * ow)
        var scratch = [Float](repeating: 0, count: max(1, conv.scratchCount(outH: oh, outW: ow)))
        x.data.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { o in
                scratch.withUnsafeMutableBufferPointer { s in
                    conv.forwardReference(
                        images: n, h: h, w: w, outH: oh, outW: ow, input: input.baseAddress!, output: o.baseAddress!,
                        scratch: s.baseAddress, activation: activation)
                }
            }
        }
        return try Tensor(shape: [n, conv.config.outChannels, oh, ow], data: out)
    }

    /// max |a - b| / max |b|.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var diff = 0.0, scale = 0.0
        for i in 0..<a.count {
            diff = max(diff, abs(Double(a[i]) - Double(b[i])))
            scale = max(scale, abs(Double(b[i])))
        }
        return scale > 0 ? diff / scale : diff
    }

    /// Runs `body` at every instruction-set level the CPU supports and with 1 and 2 threads (overrides
    /// local to this thread, so concurrently running suites are unaffected).
    static func everyPath(_ body: (Engine.InstructionSet, Int) throws -> Void) rethrows {
        for set in Engine.InstructionSet.allCases where set <= Engine.supportedInstructionSet {
            for t in [1, 2] {
                try Engine.withOverrides(instructionSet: set, threads: t) { try body(set, t) }
            }
        }
    }

    /// (geometry, input [N, C, H, W]): every lowering of the packed GEMM, edge tiles in both directions,
    /// output channels that are not a multiple of the 12-row panel, several images with small planes
    /// (their columns are packed across images), column chunks narrowed for two threads, and grouped
    /// layers.
    static let cases: [(Conv2dConfig, [Int])] = [
        (Conv2dConfig(inChannels: 20, outChannels: 30, kernel: 1), [2, 20, 9, 7]),
        (Conv2dConfig(inChannels: 16, outChannels: 24, kernel: 1), [1, 16, 16, 16]),
        (Conv2dConfig(inChannels: 12, outChannels: 13, kernel: 1, stride: 2), [3, 12, 11, 10]),
        // 1x1 stride 2 onto rows of 35 columns: segments of up to 32 columns, packed 16 at a time on AVX-512
        (Conv2dConfig(inChannels: 24, outChannels: 20, kernel: 1, stride: 2), [2, 24, 9, 69]),
        (Conv2dConfig(inChannels: 9, outChannels: 25, kernel: 3, padding: 1), [2, 9, 13, 11]),
        (Conv2dConfig(inChannels: 8, outChannels: 16, kernel: 3, stride: 2, padding: 1), [1, 8, 17, 15]),
        (Conv2dConfig(inChannels: 3, outChannels: 16, kernel: 7, stride: 2, padding: 3), [2, 3, 23, 19]),
        // two depth blocks of 300 (blocks are at most 512 deep)
        (Conv2dConfig(inChannels: 600, outChannels: 14, kernel: 1), [1, 600, 5, 6]),
        (Conv2dConfig(inChannels: 32, outChannels: 32, kernel: 3, stride: 2, padding: 1, groups: 8), [2, 32, 9, 9]),
        (Conv2dConfig(inChannels: 64, outChannels: 64, kernel: 3, padding: 1, groups: 16), [1, 64, 10, 12]),
        (Conv2dConfig(inChannels: 6, outChannels: 6, kernel: 3, padding: 1, groups: 6), [1, 6, 8, 8]),
        (Conv2dConfig(inChannels: 5, outChannels: 7, kernel: 3, padding: 2, dilation: 2), [1, 5, 9, 9]),
        // three items that two threads cannot share: split into narrower column chunks (per image; and
        // over the batch, 19 panels of 14 x 14 columns)
        (Conv2dConfig(inChannels: 24, outChannels: 40, kernel: 1), [3, 24, 16, 16]),
        (Conv2dConfig(inChannels: 16, outChannels: 28, kernel: 1), [3, 16, 14, 14]),
    ]

    @Test("packed GEMM convolution matches the CBLAS reference at every level and thread count (1e-5)")
    func gemmConvolution() throws {
        var worst = 0.0
        for (i, (config, shape)) in Self.cases.enumerated() {
            let conv = try Self.conv(config, seed: UInt64(i + 1))
            let x = try Tensor(shape: shape, data: Self.values(shape.reduce(1, *), seed: UInt64(100 + i)))
            let ref = try Self.reference(conv, x, activation: .relu)
            var first: [Float]?
            try Self.everyPath { set, threads in
                let y = try conv(x, activation: .relu)
                let e = Self.relativeError(y.data, ref.data)
                worst = max(worst, e)
                #expect(e <= 1e-5, "case \(i) \(config) at \(set), \(threads) thread(s): relative error \(e)")
                if set == Engine.supportedInstructionSet {
                    if let f = first {
                        #expect(f.elementsEqual(y.data) { $0.bitPattern == $1.bitPattern }, "case \(i): thread count changed the result")
                    } else {
                        first = y.data
                    }
                }
            }
        }
        print("kernels: packed GEMM worst relative error \(worst)")
    }

    /// One image alone puts the last columns of a 14 x 14 or 7 x 7 plane in a narrow last panel (196 = 6 x
    /// 32 + 4, 49 = 32 + 17), which the AVX-512 kernel computes column by column; beside a second image
    /// the same columns sit inside full panels (packed across images). Both must give the same floats.
    @Test("a narrow last panel (4 or 17 columns) gives the same floats as the full tile, at every level")
    func narrowPanel() throws {
        let cases: [(Conv2dConfig, Int)] = [
            (Conv2dConfig(inChannels: 300, outChannels: 40, kernel: 1), 14),
            (Conv2dConfig(inChannels: 64, outChannels: 30, kernel: 3, padding: 1), 7),
        ]
        for (i, (config, side)) in cases.enumerated() {
            let conv = try Self.conv(config, seed: UInt64(50 + i))
            let plane = config.inChannels * side * side
            let two = try Tensor(shape: [2, config.inChannels, side, side], data: Self.values(2 * plane, seed: UInt64(60 + i)))
            let one = try Tensor(shape: [1, config.inChannels, side, side], data: Array(two.data[0..<plane]))
            let ref = try Self.reference(conv, one, activation: .relu)
            try Self.everyPath { set, threads in
                let alone = try conv(one, activation: .relu).data
                let beside = try conv(two, activation: .relu).data
                #expect(alone.count * 2 == beside.count)
                #expect(alone.elementsEqual(beside[0..<alone.count]) { $0.bitPattern == $1.bitPattern },
                        "case \(i) at \(set), \(threads) thread(s): the narrow panel changed the result")
                let e = Self.relativeError(alone, ref.data)
                #expect(e <= 1e-5, "case \(i) at \(set), \(threads) thread(s): relative error \(e)")
            }
        }
    }

    /// `relu(prepared(x))` for a whole NCHW tensor, through `PreparedConv2d.run` (outputs start as NaN).
    static func run(_ prepared: PreparedConv2d, _ x: Tensor) -> [Float] {
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = prepared.outputSize(height: h, width: w)
        let k = prepared.config.outChannels
        var out = [Float](repeating: .nan, count: n * k * oh * ow)
        x.data.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { o in
                prepared.run(batch: n, height: h, width: w, input: xp.baseAddress!, inputImageStride: x.shape[1] * h * w,
                             output: o.baseAddress!, outputImageStride: k * oh * ow, activation: .relu)
            }
        }
        return out
    }

    /// A prepared convolution with everything fused: `relu(conv(relu(x * s + t)) + residual)`, where x is
    /// a channel slice of a larger buffer and the output goes into a channel slice of another.
    static func preparedCase(_ config: Conv2dConfig, n: Int, h: Int, w: Int, prologue: Bool, seed: UInt64) throws -> (ours: [Float], reference: [Float], prepared: PreparedConv2d) {
        let conv = try Self.conv(config, seed: seed)
        let prepared = PreparedConv2d(conv)
        let (oh, ow) = prepared.outputSize(height: h, width: w)
        let cin = config.inChannels, cout = config.outChannels
        // Input: the first cin channels of a [n, cin + 3, h, w] buffer; output: channels 2 ..< 2 + cout of [n, cout + 5, oh, ow].
        let inStride = (cin + 3) * h * w, outStride = (cout + 5) * oh * ow
        let big = Self.values(n * inStride, seed: seed + 7)
        let scale = Self.values(cin, seed: seed + 8).map { 0.5 + abs($0) }
        let shift = Self.values(cin, seed: seed + 9).map { $0 * 0.3 }
        let residual = Self.values(n * cout * oh * ow, seed: seed + 10)
        var out = [Float](repeating: .nan, count: n * outStride)
        big.withUnsafeBufferPointer { x in
            scale.withUnsafeBufferPointer { s in
                shift.withUnsafeBufferPointer { t in
                    residual.withUnsafeBufferPointer { r in
                        out.withUnsafeMutableBufferPointer { o in
                            prepared.run(
                                batch: n, height: h, width: w, input: x.baseAddress!, inputImageStride: inStride,
                                output: o.baseAddress! + 2 * oh * ow, outputImageStride: outStride,
                                residual: r.baseAddress!, residualImageStride: cout * oh * ow,
                                inputScale: prologue ? s.baseAddress : nil, inputShift: prologue ? t.baseAddress : nil,
                                activation: .relu)
                        }
                    }
                }
            }
        }
        // Reference: slice, batch norm + ReLU (as BatchNorm2d applies it), CBLAS conv, add, ReLU.
        var sliced = [Float]()
        for i in 0..<n {
            let start: Int = i * inStride
            sliced += big[start..<(start + cin * h * w)]
        }
        var x = try Tensor(shape: [n, cin, h, w], data: sliced)
        if prologue {
            let bn = try BatchNorm2d(weight: scale, bias: shift, runningMean: [Float](repeating: 0, count: cin),
                                     runningVar: [Float](repeating: 1, count: cin), eps: 0)
            x = try bn(x, activation: .relu)
        }
        let y = try Ops.add(try Self.reference(conv, x), try Tensor(shape: [n, cout, oh, ow], data: residual), activation: .relu)
        var ours = [Float]()
        let plane = oh * ow
        for i in 0..<n {
            let start: Int = i * outStride + 2 * plane
            let end: Int = start + cout * plane
            ours += out[start..<end]
        }
        return (ours, y.data, prepared)
    }

    @Test("prepared convolutions: GEMM with input prologue, Winograd, direct grouped, direct blocked; strided slices, residual, ReLU")
    func prepared() throws {
        struct Case {
            let config: Conv2dConfig
            let n: Int, h: Int, w: Int
            let prologue: Bool, winograd: Bool
            let bound: Double
            var direct = false
        }
        let cases: [Case] = [
            Case(config: Conv2dConfig(inChannels: 40, outChannels: 24, kernel: 1), n: 2, h: 7, w: 9, prologue: true, winograd: false, bound: 1e-5),
            // a plane of a multiple of 16 values, which a 1x1 layer without a prologue reads in place
            Case(config: Conv2dConfig(inChannels: 40, outChannels: 24, kernel: 1), n: 1, h: 8, w: 8, prologue: true, winograd: false, bound: 1e-5),
            Case(config: Conv2dConfig(inChannels: 16, outChannels: 20, kernel: 3, padding: 1), n: 2, h: 13, w: 10, prologue: false, winograd: true, bound: 2e-5),
            Case(config: Conv2dConfig(inChannels: 128, outChannels: 32, kernel: 3, padding: 1), n: 1, h: 9, w: 9, prologue: false, winograd: true, bound: 2e-5),
            Case(config: Conv2dConfig(inChannels: 16, outChannels: 20, kernel: 3, padding: 1), n: 1, h: 10, w: 7, prologue: true, winograd: true, bound: 2e-5),
            Case(config: Conv2dConfig(inChannels: 64, outChannels: 64, kernel: 3, stride: 2, padding: 1, groups: 16), n: 2, h: 11, w: 9, prologue: false, winograd: false, bound: 1e-5),
            Case(config: Conv2dConfig(inChannels: 3, outChannels: 16, kernel: 7, stride: 2, padding: 3), n: 1, h: 21, w: 18, prologue: false, winograd: false, bound: 1e-5),
            // grouped rows of at most 8 columns with 32 or 64 outputs per group: outputs in the vectors
            Case(config: Conv2dConfig(inChannels: 64, outChannels: 64, kernel: 3, padding: 1, groups: 2), n: 2, h: 6, w: 7, prologue: false, winograd: false, bound: 1e-5),
            Case(config: Conv2dConfig(inChannels: 64, outChannels: 128, kernel: 3, stride: 2, padding: 1, groups: 2), n: 1, h: 9, w: 11, prologue: false, winograd: false, bound: 1e-5),
            // stride 1 onto rows wider than 16 columns, read from the input in place (no copy): blocks of 4
            // outputs over 64 columns, of 8 over 32 (three blocks a row, the last of 6 columns), and of 8
            // ending in a 16-output block for the last 8 columns (40 = 32 + 8)
            Case(config: Conv2dConfig(inChannels: 32, outChannels: 32, kernel: 3, padding: 1, groups: 8), n: 2, h: 9, w: 37, prologue: false, winograd: false, bound: 1e-5),
            Case(config: Conv2dConfig(inChannels: 64, outChannels: 64, kernel: 3, padding: 1, groups: 8), n: 1, h: 7, w: 70, prologue: false, winograd: false, bound: 1e-5),
            Case(config: Conv2dConfig(inChannels: 32, outChannels: 32, kernel: 3, padding: 1, groups: 2), n: 2, h: 5, w: 40, prologue: false, winograd: false, bound: 1e-5),
            // the same at stride 2 (each vector the even lanes of 32 inputs): rows of 23, 31 and 40 columns
            Case(config: Conv2dConfig(inChannels: 64, outChannels: 64, kernel: 3, stride: 2, padding: 1, groups: 16), n: 2, h: 7, w: 45, prologue: false, winograd: false, bound: 1e-5),
            Case(config: Conv2dConfig(inChannels: 64, outChannels: 64, kernel: 3, stride: 2, padding: 1, groups: 8), n: 1, h: 9, w: 61, prologue: false, winograd: false, bound: 1e-5),
            Case(config: Conv2dConfig(inChannels: 32, outChannels: 32, kernel: 3, stride: 2, padding: 1, groups: 2), n: 2, h: 6, w: 80, prologue: false, winograd: false, bound: 1e-5),
            // stride 2 onto rows of 9 to 16 columns with 16 outputs per group: 16 outputs in the vectors
            Case(config: Conv2dConfig(inChannels: 64, outChannels: 64, kernel: 3, stride: 2, padding: 1, groups: 4), n: 2, h: 9, w: 27, prologue: false, winograd: false, bound: 1e-5),
            // a stem whose rows end in a run of 8 columns after a 32-column block (40 = 32 + 8): 16-output blocks
            Case(config: Conv2dConfig(inChannels: 3, outChannels: 32, kernel: 7, stride: 2, padding: 3), n: 2, h: 9, w: 80, prologue: false, winograd: false, bound: 1e-5),
            Case(config: Conv2dConfig(inChannels: 260, outChannels: 36, kernel: 3, padding: 1), n: 1, h: 6, w: 5, prologue: false, winograd: false, bound: 1e-5),
            // The direct channel-blocked kernel (AVX-512F): groups of 64 and of 32 outputs, stride 1 and 2,
            // 3x3 / 5x5 / 7x7, position tiles that run past the end of the batch and across images.
            Case(config: Conv2dConfig(inChannels: 160, outChannels: 64, kernel: 3, padding: 1), n: 2, h: 9, w: 7, prologue: true, winograd: false, bound: 1e-5, direct: true),
            Case(config: Conv2dConfig(inChannels: 48, outChannels: 96, kernel: 3, stride: 2, padding: 1), n: 3, h: 11, w: 10, prologue: false, winograd: false, bound: 1e-5, direct: true),
            Case(config: Conv2dConfig(inChannels: 144, outChannels: 32, kernel: 3, padding: 1), n: 1, h: 5, w: 5, prologue: true, winograd: false, bound: 1e-5, direct: true),
            Case(config: Conv2dConfig(inChannels: 32, outChannels: 64, kernel: 5, padding: 2), n: 1, h: 8, w: 9, prologue: false, winograd: false, bound: 1e-5, direct: true),
            Case(config: Conv2dConfig(inChannels: 16, outChannels: 32, kernel: 7, stride: 2, padding: 3), n: 2, h: 13, w: 12, prologue: true, winograd: false, bound: 1e-5, direct: true),
            // Rows wider than 16 and 32: the input copy and the store transpose 16 columns at a time,
            // with a partial block at the end of each row.
            Case(config: Conv2dConfig(inChannels: 160, outChannels: 64, kernel: 3, padding: 1), n: 2, h: 5, w: 37, prologue: true, winograd: false, bound: 1e-5, direct: true),
            Case(config: Conv2dConfig(inChannels: 48, outChannels: 32, kernel: 3, stride: 2, padding: 1), n: 1, h: 6, w: 35, prologue: false, winograd: false, bound: 1e-5, direct: true),
            // 49 positions: a last tile of one position (the w 37 case above ends in one of four)
            Case(config: Conv2dConfig(inChannels: 160, outChannels: 64, kernel: 3, padding: 1), n: 1, h: 7, w: 7, prologue: false, winograd: false, bound: 1e-5, direct: true),
        ]
        var oneThread: [Int: [Float]] = [:]
        try Self.everyPath { set, threads in
            for (i, c) in cases.enumerated() {
                let r = try Self.preparedCase(c.config, n: c.n, h: c.h, w: c.w, prologue: c.prologue, seed: UInt64(30 + i))
                if threads == 1 {
                    oneThread[i] = r.ours
                } else if let one = oneThread[i] {
                    #expect(one.elementsEqual(r.ours) { $0.bitPattern == $1.bitPattern }, "prepared case \(i) at \(set): 2 threads differ from 1")
                }
                #expect(r.prepared.usesWinograd == c.winograd)
                #expect(r.prepared.usesDirectBlocked == (c.direct && set == .avx512), "prepared case \(i) at \(set): direct kernel")
                let e = Self.relativeError(r.ours, r.reference)
                #expect(e <= c.bound, "prepared case \(i) \(c.config) at \(set), \(threads) thread(s): relative error \(e)")
                if threads == 1 && set == Engine.supportedInstructionSet {
                    print("kernels: prepared case \(i) (winograd \(r.prepared.usesWinograd), direct grouped \(r.prepared.usesDirectGrouped), direct blocked \(r.prepared.usesDirectBlocked)) relative error \(e)")
                }
            }
        }
    }

    @Test("a batch norm applied in the epilogue equals conv then batch norm; the weights come back bit for bit")
    func epilogueBatchNorm() throws {
        // GEMM (two depth blocks, and a mixed-batch small plane), Winograd (folded instead), direct
        // grouped, the 3-channel stem, direct blocked (groups of 64 and 32 outputs).
        let cases: [(Conv2dConfig, n: Int, h: Int, w: Int, winograd: Bool, bias: Bool)] = [
            (Conv2dConfig(inChannels: 600, outChannels: 20, kernel: 1), 1, 9, 8, false, true),
            (Conv2dConfig(inChannels: 160, outChannels: 28, kernel: 3, padding: 1), 3, 5, 5, false, false),
            (Conv2dConfig(inChannels: 16, outChannels: 20, kernel: 3, padding: 1), 2, 9, 10, true, true),
            (Conv2dConfig(inChannels: 64, outChannels: 64, kernel: 3, stride: 2, padding: 1, groups: 16), 2, 11, 9, false, false),
            (Conv2dConfig(inChannels: 3, outChannels: 16, kernel: 7, stride: 2, padding: 3), 1, 21, 18, false, true),
            (Conv2dConfig(inChannels: 160, outChannels: 64, kernel: 3, stride: 2, padding: 1), 2, 9, 8, false, true),
            (Conv2dConfig(inChannels: 144, outChannels: 32, kernel: 3, padding: 1), 1, 6, 5, false, false),
        ]
        try Self.everyPath { set, threads in
            for (i, c) in cases.enumerated() {
                let (config, n, h, w) = (c.0, c.n, c.h, c.w)
                let conv = try Self.conv(config, seed: UInt64(60 + i), bias: c.bias)
                let k = config.outChannels
                let bn = try Self.batchNorm(k, seeds: (UInt64(70 + i), UInt64(80 + i), UInt64(90 + i), UInt64(100 + i)))
                let prepared = try PreparedConv2d(conv, batchNorm: bn)
                #expect(prepared.usesWinograd == c.winograd)
                #expect(prepared.weightsAsGiven().elementsEqual(conv.weight) { $0.bitPattern == $1.bitPattern }, "case \(i): weights changed")
                let x = try Tensor(shape: [n, config.inChannels, h, w], data: Self.values(n * config.inChannels * h * w, seed: UInt64(110 + i)))
                let reference = try bn(try Self.reference(conv, x), activation: .relu)
                let e = Self.relativeError(Self.run(prepared, x), reference.data)
                #expect(e <= 2e-5, "epilogue case \(i) \(config) at \(set), \(threads) thread(s): relative error \(e)")
            }
        }
    }

    @Test("Winograd F(4x4, 3x3) stays within 2e-5 of the direct method at 64 and 128 channels")
    func winogradWide() throws {
        // 7 x 7 = 49 tiles of 4x4: at least `fewTiles`, so Winograd runs (fewer go to the direct kernel).
        for (c, size) in [(64, 28), (128, 28)] {
            let r = try Self.preparedCase(
                Conv2dConfig(inChannels: c, outChannels: c, kernel: 3, padding: 1), n: 1, h: size, w: size,
                prologue: false, seed: UInt64(c))
            #expect(r.prepared.usesWinograd)
            #expect(r.prepared.usesWinograd(batch: 1, height: size, width: size))
            let e = Self.relativeError(r.ours, r.reference)
            print("kernels: winograd \(c) channels relative error \(e)")
            #expect(e <= 2e-5)
        }
    }

    @Test("a Winograd layer runs the direct kernel on calls with fewer than 48 tiles, with or without a batch norm")
    func winogradFewTiles() throws {
        let config = Conv2dConfig(inChannels: 128, outChannels: 32, kernel: 3, padding: 1)
        // (batch, size): 1 x 4 x 4 = 16 tiles and 3 x 2 x 2 = 12 (direct), 1 x 7 x 7 = 49 and 4 x 4 x 4 = 64 (Winograd).
        let calls = [(1, 14, true), (3, 7, true), (1, 28, false), (4, 14, false)]
        let direct = Engine.supportedInstructionSet == .avx512
        for (i, (n, size, few)) in calls.enumerated() {
            let r = try Self.preparedCase(config, n: n, h: size, w: size, prologue: i % 2 == 1, seed: UInt64(200 + i))
            #expect(r.prepared.usesWinograd)
            #expect(r.prepared.usesWinograd(batch: n, height: size, width: size) == !(few && direct), "call \(i)")
            #expect(r.prepared.weightsAsGiven().elementsEqual(try Self.conv(config, seed: UInt64(200 + i)).weight) { $0.bitPattern == $1.bitPattern })
            let e = Self.relativeError(r.ours, r.reference)
            #expect(e <= 2e-5, "call \(i) (batch \(n), \(size)x\(size)): relative error \(e)")
        }
        // With a batch norm: Winograd folds it into its weights, the direct copy applies it in the epilogue.
        let conv = try Self.conv(config, seed: 210)
        let bn = try Self.batchNorm(32, seeds: (211, 212, 213, 214))
        let prepared = try PreparedConv2d(conv, batchNorm: bn)
        #expect(prepared.weightsAsGiven().elementsEqual(conv.weight) { $0.bitPattern == $1.bitPattern })
        for (n, size) in [(1, 7), (2, 28)] {
            let x = try Tensor(shape: [n, 128, size, size], data: Self.values(n * 128 * size * size, seed: UInt64(215 + n)))
            let reference = try bn(try Self.reference(conv, x), activation: .relu)
            #expect(prepared.usesWinograd(batch: n, height: size, width: size) == (size == 28 || !direct))
            let e = Self.relativeError(Self.run(prepared, x), reference.data)
            #expect(e <= 2e-5, "batch norm, batch \(n), \(size)x\(size): relative error \(e)")
        }
    }

    @Test("Winograd F(2x2, 3x3) for 129 to 256 channels: within 2e-5 of the direct method, the direct kernel below 20 tiles, weights back bit for bit")
    func winogradSmallTiles() throws {
        // (config, batch, size, prologue, uses F(2x2)): 1 x 7 x 7 = 49 tiles of 2x2 and 2 x 5 x 4 = 40 (F(2x2));
        // 1 x 4 x 4 = 16 (the direct copy on AVX-512); 160 -> 256 with 32-output direct groups; an input
        // prologue (applied into a temporary first); 96 -> 256 and 260 -> 160 stay off F(2x2).
        let cases: [(Conv2dConfig, n: Int, size: Int, prologue: Bool, small: Bool)] = [
            (Conv2dConfig(inChannels: 256, outChannels: 256, kernel: 3, padding: 1), 1, 14, false, true),
            (Conv2dConfig(inChannels: 160, outChannels: 192, kernel: 3, padding: 1), 2, 9, false, true),
            (Conv2dConfig(inChannels: 192, outChannels: 160, kernel: 3, padding: 1), 1, 7, false, true),
            (Conv2dConfig(inChannels: 144, outChannels: 208, kernel: 3, padding: 1), 1, 13, true, true),
            (Conv2dConfig(inChannels: 96, outChannels: 256, kernel: 3, padding: 1), 1, 10, false, false),
            (Conv2dConfig(inChannels: 260, outChannels: 160, kernel: 3, padding: 1), 1, 6, false, false),
        ]
        let direct = Engine.supportedInstructionSet == .avx512
        var oneThread: [Int: [Float]] = [:]
        try Self.everyPath { set, threads in
            for (i, c) in cases.enumerated() {
                let r = try Self.preparedCase(c.0, n: c.n, h: c.size, w: c.size, prologue: c.prologue, seed: UInt64(300 + i))
                #expect(r.prepared.usesWinogradSmallTiles == c.small, "case \(i)")
                #expect(r.prepared.usesWinograd == c.small, "case \(i)")
                let tiles = c.n * ((c.size + 1) / 2) * ((c.size + 1) / 2)
                // the direct copy exists where the direct kernel runs: AVX-512, outputs a multiple of 32
                let few = c.small && tiles < 20 && set == .avx512 && c.0.outChannels % 32 == 0
                #expect(r.prepared.usesWinograd(batch: c.n, height: c.size, width: c.size) == (c.small && !few), "case \(i)")
                #expect(r.prepared.weightsAsGiven().elementsEqual(try Self.conv(c.0, seed: UInt64(300 + i)).weight) { $0.bitPattern == $1.bitPattern })
                if threads == 1 {
                    oneThread[i] = r.ours
                } else if let one = oneThread[i] {
                    #expect(one.elementsEqual(r.ours) { $0.bitPattern == $1.bitPattern }, "case \(i) at \(set): 2 threads differ from 1")
                }
                let e = Self.relativeError(r.ours, r.reference)
                #expect(e <= 2e-5, "case \(i) \(c.0) at \(set), \(threads) thread(s): relative error \(e)")
                if threads == 1 && set == Engine.supportedInstructionSet {
                    print("kernels: F(2x2) case \(i) (winograd \(r.prepared.usesWinograd(batch: c.n, height: c.size, width: c.size))) relative error \(e)")
                }
            }
        }
        // With a batch norm: folded into the F(2x2) weights; the direct copy applies it in the epilogue.
        let config = Conv2dConfig(inChannels: 192, outChannels: 256, kernel: 3, padding: 1)
        let conv = try Self.conv(config, seed: 320)
        let bn = try Self.batchNorm(256, seeds: (321, 322, 323, 324))
        let prepared = try PreparedConv2d(conv, batchNorm: bn)
        #expect(prepared.usesWinogradSmallTiles)
        #expect(prepared.weightsAsGiven().elementsEqual(conv.weight) { $0.bitPattern == $1.bitPattern })
        // (batch, size, tile on AVX-512): 49 and 48 tiles of 2x2 (F(2x2)); 9 (the copy as given, GEMM
        // path); 2 x 14 x 14 = 32 tiles of 4x4, a full panel: that copy's transient F(4x4)
        for (n, size, tile) in [(1, 14, 2), (1, 6, 0), (3, 8, 2), (2, 14, 4)] {
            let x = try Tensor(shape: [n, 192, size, size], data: Self.values(n * 192 * size * size, seed: UInt64(325 + n + size)))
            let reference = try bn(try Self.reference(conv, x), activation: .relu)
            let out = Self.run(prepared, x)
            #expect(prepared.winogradTile(batch: n, height: size, width: size) == (direct ? tile : 2), "batch \(n), \(size)x\(size)")
            #expect(prepared.usesWinograd(batch: n, height: size, width: size) == (tile != 0 || !direct))
            let e = Self.relativeError(out, reference.data)
            #expect(e <= 2e-5, "batch norm, batch \(n), \(size)x\(size): relative error \(e)")
        }
    }

    @Test("the direct kernel in passes of a few images: a batch gives the same bits as each image alone (prologue, residual, ReLU)")
    func directPasses() throws {
        guard Engine.supportedInstructionSet == .avx512 else { return }  // the direct kernel is AVX-512 only
        // 5x5 kernels (3x3 ones would be Winograd geometries). Floats per image (padded input + sums):
        // 16 x 44 x 44 + 1600 x 256 = 430 Ki (one image per pass of at most 512 Ki), 16 x 44 x 44 + 1600
        // x 128 = 230 Ki (two per pass: 2 + 1 at batch 3).
        for (i, cout) in [256, 128].enumerated() {
            let config = Conv2dConfig(inChannels: 16, outChannels: cout, kernel: 5, padding: 2)
            let conv = try Self.conv(config, seed: UInt64(400 + i))
            let prepared = PreparedConv2d(conv)
            let (n, h, w) = (3, 40, 40)
            let plane = h * w
            // Image strides larger than the data (a slice of a wider tensor), so that an offset image
            // pointer computed from the wrong stride shows.
            let inStride = (16 + 3) * plane, outStride = (cout + 5) * plane, resStride = (cout + 2) * plane
            let x = Self.values(n * inStride, seed: UInt64(410 + i))
            let residual = Self.values(n * resStride, seed: UInt64(420 + i))
            let scale = Self.values(16, seed: UInt64(430 + i)).map { 0.5 + abs($0) }, shift = Self.values(16, seed: UInt64(440 + i))
            func call(_ first: Int, _ count: Int, into out: inout [Float]) {
                x.withUnsafeBufferPointer { xp in
                    residual.withUnsafeBufferPointer { rp in
                        scale.withUnsafeBufferPointer { sp in
                            shift.withUnsafeBufferPointer { tp in
                                out.withUnsafeMutableBufferPointer { o in
                                    prepared.run(
                                        batch: count, height: h, width: w, input: xp.baseAddress! + first * inStride, inputImageStride: inStride,
                                        output: o.baseAddress! + first * outStride, outputImageStride: outStride,
                                        residual: rp.baseAddress! + first * resStride, residualImageStride: resStride,
                                        inputScale: sp.baseAddress, inputShift: tp.baseAddress, activation: .relu)
                                }
                            }
                        }
                    }
                }
            }
            try Self.everyPath { set, threads in
                guard set == .avx512 else { return }
                #expect(prepared.usesDirectBlocked)
                var batched = [Float](repeating: .nan, count: n * outStride)
                var alone = batched
                call(0, n, into: &batched)
                for img in 0..<n { call(img, 1, into: &alone) }
                for img in 0..<n {
                    let r = (img * outStride)..<(img * outStride + cout * plane)
                    #expect(batched[r].elementsEqual(alone[r]) { $0.bitPattern == $1.bitPattern }, "\(cout) outputs, image \(img), \(threads) thread(s)")
                    #expect(!batched[r].contains { $0.isNaN }, "\(cout) outputs, image \(img): unwritten outputs")
                }
            }
        }
    }

    @Test("winograd: false prepares an eligible 3x3 layer for the GEMM or direct kernel: one exact copy; with 32 outputs the bits of the Winograd layer's direct copy")
    func withoutWinograd() throws {
        // 64 -> 64 and 192 -> 256 (F(4x4) and F(2x2) geometries) hold GEMM panels, 128 -> 32 (DenseNet's
        // growth convolution) the direct kernel's layout on AVX-512; with and without a batch norm. At
        // 4x4 (16 and 4 tiles: too few) the calls run those kernels; with 32 outputs the Winograd layer's
        // own direct copy runs alike and must give the same bits.
        for (i, (cin, cout)) in [(64, 64), (192, 256), (128, 32)].enumerated() {
            let config = Conv2dConfig(inChannels: cin, outChannels: cout, kernel: 3, padding: 1)
            let conv = try Self.conv(config, seed: UInt64(450 + i))
            let bn = try Self.batchNorm(cout, seeds: (UInt64(460 + i), UInt64(470 + i), UInt64(480 + i), UInt64(490 + i)))
            for norm in [nil, bn] {
                let fast = try PreparedConv2d(conv, batchNorm: norm)
                let compact = try PreparedConv2d(conv, batchNorm: norm, winograd: false)
                #expect(fast.usesWinograd)
                let avx512 = Engine.supportedInstructionSet == .avx512
                let direct = avx512 && cout == 32
                // 2 x 14 x 14: 32 tiles of 4x4 (enough for GEMM panels, too few for the direct layout),
                // 98 of 2x2 (transient F(2x2) on AVX-512); 1 x 12 x 12: 9 tiles of 4x4 (too few)
                #expect(!compact.usesWinograd && compact.usesTransientWinograd == avx512)
                #expect(compact.usesWinograd(batch: 2, height: 14, width: 14) == (avx512 && !direct))
                #expect(compact.usesWinograd(batch: 1, height: 12, width: 12) == (avx512 && cin > 128))
                #expect(compact.weightsAsGiven().elementsEqual(conv.weight) { $0.bitPattern == $1.bitPattern })
                // One copy: the weights (packed with no padding for the direct kernel, or in panels of
                // 12 rows for the GEMM), the bias, and the batch norm's scale.
                let weightFloats = direct ? cout * cin * 9 : (cout + 11) / 12 * 12 * cin * 9
                #expect(compact.byteCount == (weightFloats + cout + (norm == nil ? 0 : cout)) * 4, "\(cin) -> \(cout)")
                #expect(fast.byteCount > compact.byteCount + cout * cin * 9 * 4 / 2)
                let x = try Tensor(shape: [2, cin, 4, 4], data: Self.values(2 * cin * 16, seed: UInt64(495 + i)))
                let reference = try (norm.map { try $0(try Self.reference(conv, x), activation: .relu) } ?? Self.reference(conv, x, activation: .relu))
                try Self.everyPath { set, threads in
                    let ours = Self.run(compact, x)
                    let e = Self.relativeError(ours, reference.data)
                    #expect(e <= 1e-5, "\(cin) -> \(cout) at \(set), \(threads) thread(s): relative error \(e)")
                    if direct && set == .avx512 {
                        #expect(ours.elementsEqual(Self.run(fast, x)) { $0.bitPattern == $1.bitPattern }, "\(cin) -> \(cout): not the direct copy's bits")
                    }
                }
            }
        }
    }

    /// Runs `prepared` on `x` (NCHW, contiguous) with `residual` added and ReLU, on every path at 1 and 2
    /// threads: within 2e-5 of `expected` (relative), and the same bits at both thread counts of a path.
    static func checkResidualReLU(_ prepared: PreparedConv2d, x: Tensor, residual r: Tensor, expected: [Float], _ label: String) throws {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let plane = r.shape[2] * r.shape[3], cout = r.shape[1]
        var oneThread: [Engine.InstructionSet: [Float]] = [:]
        try everyPath { set, threads in
            var out = [Float](repeating: .nan, count: expected.count)
            x.data.withUnsafeBufferPointer { xp in
                r.data.withUnsafeBufferPointer { rp in
                    out.withUnsafeMutableBufferPointer { o in
                        prepared.run(batch: n, height: h, width: w, input: xp.baseAddress!, inputImageStride: cin * h * w,
                                     output: o.baseAddress!, outputImageStride: cout * plane,
                                     residual: rp.baseAddress!, residualImageStride: cout * plane, activation: .relu)
                    }
                }
            }
            let e = relativeError(out, expected)
            #expect(e <= 2e-5, "\(label), \(set), \(threads) thread(s): \(e)")
            if let one = oneThread[set] {
                #expect(one.elementsEqual(out) { $0.bitPattern == $1.bitPattern }, "\(label) at \(set): 2 threads differ from 1")
            } else {
                oneThread[set] = out
            }
        }
    }

    @Test("winograd: false runs calls with many tiles as Winograd on weights transformed per call: within 2e-5 of the reference, both scheduling modes, the same bits at 1 and 2 threads")
    func transientWinograd() throws {
        guard Engine.supportedInstructionSet == .avx512 else { return } // the direct layout it reads is AVX-512 only
        // F(4x4): 64 -> 128 and 32 -> 96 (weights in GEMM panels of 12 rows, the last one part zero),
        // 128 -> 32 and 16 -> 32 (in the direct kernel's layout); F(2x2): 144 -> 160, which runs F(4x4)
        // from a full panel of 4x4 tiles (1 x 28 x 28: 49; 3 x 30 x 30: 192), F(2x2) below (1 x 13 x 13:
        // 16). Inputs with 2, 3 and 6 panels of 32 tiles: each task transforms its weight panels in its
        // own scratch (fused) with at most 2 panels per thread and at least 4 weight panels per thread
        // (not the direct layout's 3), else the layer's weights are transformed first: 2 x 24 x 24 runs
        // the second way at one thread and the first at two. With batch norm, residual and ReLU.
        let geometries = [(64, 128, 4), (32, 96, 4), (128, 32, 4), (16, 32, 4), (144, 160, 2)]
        for (i, (cin, cout, tile)) in geometries.enumerated() {
            let config = Conv2dConfig(inChannels: cin, outChannels: cout, kernel: 3, padding: 1)
            let conv = try Self.conv(config, seed: UInt64(700 + i))
            let bn = try Self.batchNorm(cout, seeds: (UInt64(710 + i), UInt64(720 + i), UInt64(730 + i), UInt64(740 + i)))
            for norm in [nil, bn] {
                let compact = try PreparedConv2d(conv, batchNorm: norm, winograd: false)
                #expect(compact.usesTransientWinograd && !compact.usesWinograd)
                for (n, size) in tile == 2 ? [(1, 13), (1, 28), (2, 24), (3, 30)] : [(1, 28), (2, 24), (3, 30)] {
                    #expect(compact.usesWinograd(batch: n, height: size, width: size), "\(cin) -> \(cout) at \(n) x \(size)")
                    #expect(compact.winogradTile(batch: n, height: size, width: size) == (size == 13 ? 2 : 4), "\(cin) -> \(cout) at \(n) x \(size)")
                    let x = try Tensor(shape: [n, cin, size, size], data: Self.values(n * cin * size * size, seed: UInt64(750 + i)))
                    let r = try Tensor(shape: [n, cout, size, size], data: Self.values(n * cout * size * size, seed: UInt64(760 + i)))
                    let direct = try Self.reference(conv, x)
                    let normed = try norm.map { try $0(direct) } ?? direct
                    let expected = zip(normed.data, r.data).map { max(0, $0 + $1) }
                    // both modes transform and sum alike: the same bits at any thread count
                    try Self.checkResidualReLU(compact, x: x, residual: r, expected: expected, "\(cin) -> \(cout), \(n) x \(size), bn \(norm != nil)")
                }
            }
        }
    }

    @Test("a direct layer of 257 to 512 channels runs one or two full panels of 4x4 tiles as F(4x4) on weights transformed from the direct layout: within 2e-5 of the reference, both memory modes, the same bits at 1 and 2 threads")
    func wideTransientWinograd() throws {
        // 272 -> 320 (direct groups of 64 outputs: weight panels 5 (outputs 60-71), 10 and 15 straddle
        // two groups) and 272 -> 288 (groups of 32: every third panel straddles), with batch norm,
        // residual and ReLU, at 2 x 16 x 16 (32 tiles of 4x4, one panel). 1 x 16 x 16 (16 tiles), 5 x 16
        // x 16 (80: more than two panels) run the direct kernel.
        let avx512 = Engine.supportedInstructionSet == .avx512
        for (i, cout) in [320, 288].enumerated() {
            let config = Conv2dConfig(inChannels: 272, outChannels: cout, kernel: 3, padding: 1)
            let conv = try Self.conv(config, seed: UInt64(770 + i))
            let bn = try Self.batchNorm(cout, seeds: (UInt64(771 + i), UInt64(772 + i), UInt64(773 + i), UInt64(774 + i)))
            let (n, size) = (2, 16)
            let x = try Tensor(shape: [n, 272, size, size], data: Self.values(n * 272 * size * size, seed: UInt64(775 + i)))
            let r = try Tensor(shape: [n, cout, size, size], data: Self.values(n * cout * size * size, seed: UInt64(776 + i)))
            let normed = try bn(try Self.reference(conv, x))
            let expected = zip(normed.data, r.data).map { max(0, $0 + $1) }
            for winograd in [true, false] {
                let prepared = try PreparedConv2d(conv, batchNorm: bn, winograd: winograd)
                #expect(!prepared.usesWinograd && !prepared.usesTransientWinograd && prepared.usesDirectBlocked == avx512)
                #expect(prepared.weightsAsGiven().elementsEqual(conv.weight) { $0.bitPattern == $1.bitPattern })
                #expect(prepared.winogradTile(batch: 2, height: 16, width: 16) == (avx512 ? 4 : 0), "\(cout), winograd \(winograd)")
                #expect(prepared.winogradTile(batch: 4, height: 16, width: 16) == (avx512 ? 4 : 0))
                #expect(prepared.winogradTile(batch: 8, height: 7, width: 7) == (avx512 ? 4 : 0))
                #expect(prepared.winogradTile(batch: 1, height: 16, width: 16) == 0)
                #expect(prepared.winogradTile(batch: 5, height: 16, width: 16) == 0)
                try Self.checkResidualReLU(prepared, x: x, residual: r, expected: expected, "272 -> \(cout), winograd \(winograd)")
            }
        }
    }

    @Test("raw pooling and element-wise kernels equal the Tensor ops")
    func rawOps() throws {
        let (n, c, h, w) = (2, 5, 11, 13)
        let x = try Tensor(shape: [n, c, h, w], data: Self.values(n * c * h * w, seed: 5))
        let scale = Self.values(c, seed: 6).map { 0.5 + abs($0) }, shift = Self.values(c, seed: 7)
        try Self.everyPath { _, _ in
            try x.data.withUnsafeBufferPointer { xp in
                let src = xp.baseAddress!
                // max pool 3x3/2 pad 1
                let mp = try Ops.maxPool2d(x, kernel: 3, stride: 2, padding: 1)
                var out = [Float](repeating: 0, count: mp.data.count)
                out.withUnsafeMutableBufferPointer {
                    RawOps.maxPool(src, inputImageStride: c * h * w, output: $0.baseAddress!, outputImageStride: c * mp.shape[2] * mp.shape[3],
                                   images: n, channels: c, height: h, width: w, outHeight: mp.shape[2], outWidth: mp.shape[3], kernel: 3, stride: 2, padding: 1)
                }
                #expect(out == mp.data)
                // avg pool 2x2
                let ap = try Ops.avgPool2d(x, kernel: 2, stride: 2)
                out = [Float](repeating: 0, count: ap.data.count)
                out.withUnsafeMutableBufferPointer {
                    RawOps.avgPool2x2(src, inputImageStride: c * h * w, output: $0.baseAddress!, outputImageStride: c * (h / 2) * (w / 2),
                                      images: n, channels: c, height: h, width: w)
                }
                #expect(out == ap.data)
                // batch norm + ReLU + avg pool in one pass
                let bn = try BatchNorm2d(weight: scale, bias: shift, runningMean: [Float](repeating: 0, count: c),
                                         runningVar: [Float](repeating: 1, count: c), eps: 0)
                let composed = try Ops.avgPool2d(try bn(x, activation: .relu), kernel: 2, stride: 2)
                try scale.withUnsafeBufferPointer { s in
                    try shift.withUnsafeBufferPointer { t in
                        out.withUnsafeMutableBufferPointer {
                            RawOps.affineReLUAvgPool2x2(src, inputImageStride: c * h * w, output: $0.baseAddress!, outputImageStride: c * (h / 2) * (w / 2),
                                                        images: n, channels: c, height: h, width: w, scale: s.baseAddress!, shift: t.baseAddress!)
                        }
                        #expect(Self.relativeError(out, composed.data) <= 1e-6)
                        // global average pool after batch norm + ReLU
                        let gap = try Ops.adaptiveAvgPool2d(try bn(x, activation: .relu), outputH: 1, outputW: 1)
                        var pooled = [Float](repeating: 0, count: n * c)
                        pooled.withUnsafeMutableBufferPointer {
                            RawOps.globalAvgPool(src, inputImageStride: c * h * w, output: $0.baseAddress!, images: n, channels: c,
                                                 plane: h * w, scale: s.baseAddress, shift: t.baseAddress, activation: .relu)
                        }
                        #expect(Self.relativeError(pooled, gap.data) <= 1e-6)
                    }
                }
                // squeeze-and-excitation scaling with residual and ReLU; plain add
                let gates = Self.values(n * c, seed: 8)
                let residual = try Tensor(shape: x.shape, data: Self.values(x.count, seed: 9))
                let expected = try Ops.add(try Ops.scaleChannels(x, by: try Tensor(shape: [n, c], data: gates)), residual, activation: .relu)
                var y = x.data
                y.withUnsafeMutableBufferPointer { yp in
                    residual.data.withUnsafeBufferPointer { r in
                        RawOps.scaleChannels(yp.baseAddress!, gates: gates, residual: r.baseAddress!, images: n, channels: c, plane: h * w, activation: .relu)
                    }
                }
                #expect(y == expected.data)
                var sum = [Float](repeating: 0, count: x.count)
                sum.withUnsafeMutableBufferPointer { o in
                    residual.data.withUnsafeBufferPointer { r in
                        RawOps.add(src, r.baseAddress!, output: o.baseAddress!, count: x.count, activation: .relu)
                    }
                }
                #expect(sum == (try Ops.add(x, residual, activation: .relu)).data)
            }
        }
    }

    @Test("raw max pooling propagates NaN like Ops.maxPool2d (3x3 stride 2 padding 1, stride 1, ceil-mode sizes)")
    func rawMaxPoolNaN() throws {
        let (n, c, h, w) = (1, 2, 9, 10)
        var data = Self.values(n * c * h * w, seed: 12)
        data[3] = .nan
        data[57] = .nan
        data[c * h * w - 1] = .nan
        let x = try Tensor(shape: [n, c, h, w], data: data)
        for (stride, padding, ceil) in [(2, 1, false), (1, 1, false), (2, 0, true)] {
            let ref = try Ops.maxPool2d(x, kernel: 3, stride: stride, padding: padding, ceilMode: ceil)
            let (oh, ow) = (ref.shape[2], ref.shape[3])
            var out = [Float](repeating: 0, count: ref.data.count)
            data.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer {
                    RawOps.maxPool(src.baseAddress!, inputImageStride: c * h * w, output: $0.baseAddress!, outputImageStride: c * oh * ow,
                                   images: n, channels: c, height: h, width: w, outHeight: oh, outWidth: ow, kernel: 3, stride: stride, padding: padding)
                }
            }
            #expect(out.elementsEqual(ref.data) { $0 == $1 || ($0.isNaN && $1.isNaN) }, "stride \(stride) padding \(padding)")
            #expect(out.contains { $0.isNaN })
        }
    }

    /// 1x1 stride-1 layers on planes of a multiple of 16 values, one image's columns per chunk, are read by
    /// the AVX-512 kernel straight from the input (no packing); other layouts pack. Both must give the
    /// same floats, with an input that is a channel slice of a larger buffer, two depth blocks (600
    /// inputs), a 16-column last panel, and a residual that is the output itself.
    @Test("1x1 layers read in place give the floats of the packed path, residual in place included")
    func pointwiseInPlace() throws {
        // (inputs, outputs, batch, h, w): 6 x 8 = 48 = 32 + 16 columns (alone: in place; beside a second
        // image: packed across images), 16 x 19 = 304 = 9 x 32 + 16 per image
        let cases = [(600, 30, 2, 6, 8), (40, 64, 2, 6, 8), (600, 30, 2, 16, 19), (24, 40, 1, 16, 16)]
        for (i, (cin, cout, n, h, w)) in cases.enumerated() {
            let conv = try Self.conv(Conv2dConfig(inChannels: cin, outChannels: cout, kernel: 1), seed: UInt64(70 + i))
            let prepared = PreparedConv2d(conv)
            let plane = h * w, inStride = (cin + 2) * plane, outStride = cout * plane
            let input = Self.values(n * inStride, seed: UInt64(80 + i))
            let residual = Self.values(n * outStride, seed: UInt64(90 + i))
            // images [first, first + count) of the input, the residual separate or in the output itself
            func run(first: Int, count: Int, inPlace: Bool) -> [Float] {
                var out = inPlace ? Array(residual[(first * outStride)..<((first + count) * outStride)])
                                  : [Float](repeating: .nan, count: count * outStride)
                input.withUnsafeBufferPointer { x in
                    residual.withUnsafeBufferPointer { r in
                        out.withUnsafeMutableBufferPointer { o in
                            prepared.run(batch: count, height: h, width: w, input: x.baseAddress! + first * inStride, inputImageStride: inStride,
                                         output: o.baseAddress!, outputImageStride: outStride,
                                         residual: inPlace ? UnsafePointer(o.baseAddress!) : r.baseAddress! + first * outStride,
                                         residualImageStride: outStride, inputScale: nil, inputShift: nil, activation: .relu)
                        }
                    }
                }
                return out
            }
            var sliced = [Float]()
            for img in 0..<n { sliced += input[(img * inStride)..<(img * inStride + cin * plane)] }
            let ref = try Ops.add(try Self.reference(conv, try Tensor(shape: [n, cin, h, w], data: sliced)),
                                  try Tensor(shape: [n, cout, h, w], data: residual), activation: .relu).data
            var atLevel: [Engine.InstructionSet: [Float]] = [:]
            try Self.everyPath { set, threads in
                let all = run(first: 0, count: n, inPlace: false)
                #expect(Self.relativeError(all, ref) <= 1e-5, "case \(i) at \(set), \(threads) thread(s)")
                #expect(run(first: 0, count: n, inPlace: true).elementsEqual(all) { $0.bitPattern == $1.bitPattern },
                        "case \(i) at \(set), \(threads) thread(s): residual in place")
                for img in 0..<n {
                    let alone = run(first: img, count: 1, inPlace: img == 1)
                    #expect(alone.elementsEqual(all[(img * outStride)..<((img + 1) * outStride)]) { $0.bitPattern == $1.bitPattern },
                            "case \(i) image \(img) at \(set), \(threads) thread(s): alone differs from the batch")
                }
                if set != .portable { atLevel[set] = all }
            }
            if let avx2 = atLevel[.avx2], let avx512 = atLevel[.avx512] {
                #expect(avx2.elementsEqual(avx512) { $0.bitPattern == $1.bitPattern }, "case \(i): AVX2 (packed) differs from AVX-512")
            }
        }
    }

    @Test("channel gating gives the same bits on every path, NaN and -0 through ReLU included")
    func rawScaleChannelsBits() throws {
        // two planes of 37 values (two full 16-value steps and a tail of 5)
        let (c, plane) = (2, 37)
        var x = Self.values(c * plane, seed: 31)
        x[3] = .nan
        x[17] = -0.0
        x[40] = -0.0
        x[70] = .nan
        let residual = Self.values(c * plane, seed: 32).map { $0 * 0.5 }
        let gates: [Float] = [0.75, 1.0]
        func run(_ res: Bool) -> [UInt32] {
            var y = x
            y.withUnsafeMutableBufferPointer { yp in
                residual.withUnsafeBufferPointer { r in
                    RawOps.scaleChannels(yp.baseAddress!, gates: gates, residual: res ? r.baseAddress! : nil, images: 1, channels: c,
                                         plane: plane, activation: .relu)
                }
            }
            return y.map(\.bitPattern)
        }
        for res in [false, true] {
            let portable = Engine.withOverrides(instructionSet: .portable) { run(res) }
            // the portable loop: x * g, then + r, then `v < 0 ? 0 : v`
            let expected = (0..<(c * plane)).map { i -> UInt32 in
                var v = x[i] * gates[i / plane]
                if res { v += residual[i] }
                return (v < 0 ? 0 : v).bitPattern
            }
            #expect(portable == expected)
            if !res { #expect(portable[17] == (-0.0 as Float).bitPattern && Float(bitPattern: portable[3]).isNaN) }
            try Self.everyPath { set, threads in
                #expect(run(res) == portable, "\(set), \(threads) threads, residual \(res)")
            }
        }
    }

    @Test("3x3 stride-2 max pooling on wide planes (16 outputs per vector step on AVX-512) equals Ops.maxPool2d on every path")
    func rawMaxPoolWide() throws {
        // 74 columns: with padding 1, 37 outputs (floor) or 38 (ceil: the last window holds one column);
        // without, 36 or 37 (ceil, SENet's stem pool). Three vector steps, the last one partial. NaNs at
        // column 31 (the last of the first step's 32 columns), column 32 (the 33rd, shared with the next
        // step), the last column and the first, and rows at the top and bottom edges.
        let (n, c, h, w) = (2, 3, 13, 74)
        var data = Self.values(n * c * h * w, seed: 21)
        for (img, ch, y, x) in [(0, 0, 4, 31), (0, 1, 7, 32), (1, 2, 12, 73), (1, 0, 0, 0), (0, 2, 5, 50)] {
            data[((img * c + ch) * h + y) * w + x] = .nan
        }
        let x = try Tensor(shape: [n, c, h, w], data: data)
        try Self.everyPath { set, threads in
            for (padding, ceil, width) in [(1, false, 37), (1, true, 38), (0, false, 36), (0, true, 37)] {
                let ref = try Ops.maxPool2d(x, kernel: 3, stride: 2, padding: padding, ceilMode: ceil)
                let (oh, ow) = (ref.shape[2], ref.shape[3])
                #expect(ow == width)
                var out = [Float](repeating: 0, count: ref.data.count)
                data.withUnsafeBufferPointer { src in
                    out.withUnsafeMutableBufferPointer {
                        RawOps.maxPool(src.baseAddress!, inputImageStride: c * h * w, output: $0.baseAddress!, outputImageStride: c * oh * ow,
                                       images: n, channels: c, height: h, width: w, outHeight: oh, outWidth: ow, kernel: 3,
                                       stride: 2, padding: padding)
                    }
                }
                let label = "\(set), \(threads) threads, padding \(padding), ceil \(ceil)"
                #expect(out.elementsEqual(ref.data) { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(label)")
                // windows that straddle two vector steps: with padding 1, outputs 15 and 16 of row 2 share
                // column 31 (channel 0, input row 4); without, outputs 15 and 16 of row 3 share column 32
                // (channel 1, input row 7)
                let at = padding == 1 ? 2 * ow : oh * ow + 3 * ow
                #expect(out[at + 15].isNaN && out[at + 16].isNaN, "\(label)")
                #expect(out.filter(\.isNaN).count == ref.data.filter(\.isNaN).count, "\(label)")
            }
        }
    }

    @Test("the engine reports its CPU level; overrides are scoped to the calling thread")
    func engineSettings() {
        Engine.withOverrides(instructionSet: .portable, threads: 3) {
            #expect(Engine.threads == 3)
            #expect(Engine.instructionSet == .portable)
        }
        Engine.withOverrides(threads: 0) { #expect(Engine.threads == 1) }
        #expect(Engine.instructionSet == Engine.supportedInstructionSet)
        print("kernels: CPU supports \(Engine.supportedInstructionSet)")
    }
}
