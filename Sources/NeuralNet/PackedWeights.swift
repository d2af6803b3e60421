#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#elseif canImport(Musl)
    import Musl
#endif
import CKernels

/// A 64-byte aligned float buffer owned by one object (packed weights, transformed weights, biases).
/// Large buffers are pages mapped for them alone (`ck_buffer_alloc`), so that a buffer that is replaced
/// by a larger one (`ScratchBuffer`) gives its memory back instead of leaving a resident hole in the heap.
final class AlignedFloats: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    private let bytes: Int

    init(count: Int) {
        self.count = count
        bytes = max(64, (count * MemoryLayout<Float>.stride + 63) & ~63)
        guard let raw = ck_buffer_alloc(bytes) else { fatalError("out of memory: \(bytes) bytes") }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { ck_buffer_free(pointer, bytes) }
}

/// A convolution's weights in the engine's layout: packed GEMM panels, or the 36 Winograd F(4x4, 3x3)
/// (16 F(2x2, 3x3)) matrices for 3x3 stride-1 convolutions where that is faster. Built once, then read by
/// every call.
///
/// The GEMM and direct grouped layouts are exact re-orderings of the OIHW weights (`unpackedWeights`
/// recovers them bit for bit); a batch norm that follows the convolution is then applied as a
/// per-output-channel `scale` in the kernels' epilogue rather than folded into the weights.
final class ConvKernelWeights: @unchecked Sendable {
    let config: Conv2dConfig
    let packed: AlignedFloats
    let bias: AlignedFloats?
    /// Per output channel, multiplies the sums before the bias is added (nil: 1).
    let scale: AlignedFloats?

    /// Whether `packed` holds Winograd matrices instead of GEMM panels: the 36 of F(4x4, 3x3), or with
    /// `smallTiles` the 16 of F(2x2, 3x3).
    let winograd: Bool
    /// Whether the Winograd layout is F(2x2, 3x3) (`winograd2Eligible`).
    let smallTiles: Bool
    /// Whether `packed` holds reordered weights for the direct grouped kernel instead of GEMM panels.
    let grouped: Bool
    /// Whether `packed` holds channel-blocked weights for the direct (non-grouped) kernel instead of GEMM
    /// panels.
    let direct: Bool
    /// For a Winograd geometry prepared without the Winograd layout (`allowWinograd` false) on an AVX-512
    /// CPU (`directEligible`): the output tile size (4 or 2) of the Winograd kernel that calls with many
    /// tiles run on weights transformed per call into scratch memory (`ck_winograd_transient_forward`); 0
    /// elsewhere. The weights are then GEMM panels with more than 32 outputs (`transientFromPanels`), else
    /// direct weights. An F(2x2) geometry held as GEMM panels runs F(4x4) on calls with a full panel of
    /// 4x4 tiles (`transientCallTile`).
    let transientTile: Int
    /// Whether this layer, held for the direct kernel, has a geometry of 257 to 512 channels
    /// (`wideTransientEligible`) whose calls with one or two full panels of 4x4 tiles run as F(4x4) on
    /// weights transformed during the call from the direct kernel's layout (`transientCallTile`).
    let wideTransient: Bool

    /// Whether a Winograd geometry prepared without the Winograd layout keeps its weights as GEMM panels
    /// rather than in the direct kernel's layout (AVX-512): with more than 32 outputs (a multiple of 32
    /// for the direct kernel: more than one of its groups of outputs). The per-call
    /// transform reads a panel's 12 outputs of a channel's 9 taps as 108 consecutive floats there, against
    /// 12 of every row of 64 outputs, 9 rows 4 KiB apart, in the direct layout: measured on 256 -> 256 at
    /// 14x14, batch 1, two threads, the call 1.12x the prepared Winograd layer's time against 1.27x. Calls
    /// with few tiles then run the GEMM path, slower than the direct kernel on small planes (128 -> 128 at
    /// 7x7, batch 1: 0.13 against 0.08 ms), which ResNets at 224 x 224 never make on these layers.
    /// DenseNet's growth convolutions (32 outputs) keep the direct layout: at batch 1 their 14x14 and 7x7
    /// calls have few tiles, and the direct kernel runs them 3x as fast as the GEMM path.
    static func transientFromPanels(_ c: Conv2dConfig) -> Bool { c.outChannels > 32 }

    /// Whether a geometry may run as Winograd: 3x3, stride 1, padding 1, no dilation or groups, and either
    /// at most 128 channels in and out (F(4x4, 3x3)) or 129 to 256 in and out (F(2x2, 3x3),
    /// `winograd2Eligible`). Wider layers occur at 7x7 in these networks, where few tiles share each
    /// transformed weight: the direct kernel is faster there at batch 1, and the weight memory would grow.
    static func winogradEligible(_ c: Conv2dConfig) -> Bool {
        winogradGeometry(c) && ((c.inChannels <= 128 && c.outChannels <= 128) || winograd2Eligible(c))
    }

    /// Whether Winograd F(m x m, 3x3) computes this convolution, whatever its channels: 3x3, stride 1,
    /// padding 1, no dilation or groups.
    static func winogradGeometry(_ c: Conv2dConfig) -> Bool {
        c.kernelH == 3 && c.kernelW == 3 && c.strideH == 1 && c.strideW == 1 && c.padH == 1 && c.padW == 1
            && c.dilationH == 1 && c.dilationW == 1 && c.groups == 1
    }

    /// Whether a Winograd geometry runs as F(2x2, 3x3) (2.25x fewer multiplications than the direct method)
    /// rather than F(4x4, 3x3) (4x): 129 to 256 channels in and out, which these networks use at 14x14.
    /// There a plane is 49 tiles of 2x2 but only 16 of 4x4, half of a 32-tile panel. Measured on 256
    /// channels at 14x14, batch 1: F(2x2) 1.01 ms at one thread and 0.74 at two, F(4x4) 1.21 and 0.89, the
    /// direct kernel 1.47 and 1.03. The transformed weights take 16/9 of the original size (F(4x4): 4x),
    /// besides the copy as given a prepared layer keeps (GEMM panels: `PreparedConv2d.few`) for calls with
    /// few tiles, for calls with a full panel of 4x4 tiles (batch 2 and up at 14x14), which it runs as
    /// F(4x4) on weights transformed per call, and to give the weights back: ResNet-152 holds about 150
    /// MB more than with one copy.
    static func winograd2Eligible(_ c: Conv2dConfig) -> Bool {
        c.inChannels > 128 && c.inChannels <= 256 && c.outChannels > 128 && c.outChannels <= 256
    }

    /// Whether a geometry held for the direct kernel runs calls with one or two full panels of 4x4 tiles
    /// (`fullPanelTiles` to twice that) as F(4x4, 3x3) on weights transformed per call (in either memory
    /// mode; no transformed copy is held): 3x3, stride 1, padding 1, no dilation or groups, 257 to 512
    /// channels in and out, `directEligible`. These are ResNet's last-stage layers, 512 -> 512 at 7x7, which
    /// at two threads take 4.4 ms at batch 8 (32 tiles) against the direct kernel's 6.2, 7.3 against 12.1
    /// at batch 16; at batch 1 (4 tiles) the direct kernel is about 3.5x faster. Relative error on that
    /// layer against a double-precision sum 1.3e-5 (the direct kernel's 1.7e-6). More than two panels
    /// would need the whole layer's transformed weights at once (36 MiB at 512 channels): those calls stay
    /// on the direct kernel.
    static func wideTransientEligible(_ c: Conv2dConfig) -> Bool {
        winogradGeometry(c) && c.inChannels > 256 && c.inChannels <= 512 && c.outChannels > 256 && c.outChannels <= 512
            && directEligible(c)
    }

    /// Whether the direct grouped kernel runs this geometry on this CPU (groups > 1 with a multiple of 4
    /// outputs per group, AVX-512F).
    static func groupedEligible(_ c: Conv2dConfig) -> Bool {
        ck_grouped_supported(
            Int32(c.groups), Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW),
            Int32(c.strideH), Int32(c.strideW), Int32(c.dilationH), Int32(c.dilationW)) != 0
    }

    /// Whether the direct channel-blocked kernel runs this geometry on this CPU (AVX-512F, no groups, input
    /// channels a multiple of 16, output channels a multiple of 32, kernels of 3x3 and up, stride 1 or 2):
    /// it convolves without the im2col packing that dominates the GEMM path's time on such layers.
    static func directEligible(_ c: Conv2dConfig) -> Bool {
        ck_direct_supported(
            Int32(c.groups), Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW),
            Int32(c.strideH), Int32(c.strideW), Int32(c.dilationH), Int32(c.dilationW)) != 0
    }

    /// Packs `weight` (OIHW). With `specialize`, a geometry that has a faster dedicated path is prepared
    /// for it: Winograd for eligible 3x3 stride-1 layers, the direct kernel for grouped layers, the direct
    /// channel-blocked kernel for other eligible ones (`directEligible`).
    ///
    /// `scale` (one value per output channel, or nil) multiplies each output's sums before the bias; it
    /// is not supported for Winograd (`winogradEligible` with `specialize`): fold it into `weight` there.
    ///
    /// `directOnly` prepares the direct channel-blocked kernel whatever else would apply (the geometry
    /// must be `directEligible`): Winograd layers keep such a copy for calls with few tiles.
    ///
    /// `allowWinograd` false keeps a Winograd geometry on the other paths (`specialize` still picks the
    /// direct kernels): one exact copy of the weights, at the cost of the 3x3 layers' speed.
    init(
        config c: Conv2dConfig, weight: UnsafePointer<Float>, scale: UnsafePointer<Float>? = nil, bias: UnsafePointer<Float>?,
        specialize: Bool = false, directOnly: Bool = false, allowWinograd: Bool = true
    ) {
        config = c
        winograd = specialize && allowWinograd && !directOnly && Self.winogradEligible(c)
        smallTiles = winograd && Self.winograd2Eligible(c)
        precondition(!(winograd && scale != nil), "ConvKernelWeights: Winograd takes folded weights, not an output scale")
        grouped = specialize && !directOnly && !winograd && Self.groupedEligible(c)
        let transient = specialize && !allowWinograd && !directOnly && Self.winogradEligible(c) && Self.directEligible(c)
        direct = directOnly || (specialize && !winograd && !grouped && Self.directEligible(c)
            && !(transient && Self.transientFromPanels(c)))
        precondition(!directOnly || Self.directEligible(c), "ConvKernelWeights: directOnly needs a directEligible geometry")
        transientTile = transient ? (Self.winograd2Eligible(c) ? 2 : 4) : 0
        wideTransient = direct && specialize && !directOnly && Self.wideTransientEligible(c)
        if direct {
            packed = AlignedFloats(count: ck_direct_packed_count(
                Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW)))
            ck_direct_pack(weight, Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW), packed.pointer)
        } else if grouped {
            packed = AlignedFloats(count: ck_grouped_packed_count(
                Int32(c.groups), Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW)))
            ck_grouped_pack(
                weight, Int32(c.groups), Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW),
                packed.pointer)
        } else if smallTiles {
            packed = AlignedFloats(count: ck_winograd2_packed_count(Int32(c.outChannels), Int32(c.inChannels)))
            ck_winograd2_pack(weight, Int32(c.outChannels), Int32(c.inChannels), packed.pointer)
        } else if winograd {
            packed = AlignedFloats(count: ck_winograd_packed_count(Int32(c.outChannels), Int32(c.inChannels)))
            ck_winograd_pack(weight, Int32(c.outChannels), Int32(c.inChannels), packed.pointer)
        } else {
            let count = ck_conv_packed_count(
                Int32(c.groups), Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW))
            packed = AlignedFloats(count: count)
            ck_conv_pack(
                weight, Int32(c.groups), Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW),
                packed.pointer)
        }
        if let bias {
            let b = AlignedFloats(count: c.outChannels)
            b.pointer.update(from: bias, count: c.outChannels)
            self.bias = b
        } else {
            self.bias = nil
        }
        if let scale {
            let s = AlignedFloats(count: c.outChannels)
            s.pointer.update(from: scale, count: c.outChannels)
            self.scale = s
        } else {
            self.scale = nil
        }
    }

    /// Bytes held.
    var byteCount: Int { (packed.count + (bias?.count ?? 0) + (scale?.count ?? 0)) * MemoryLayout<Float>.stride }

    /// The OIHW weights this object was packed from, bit for bit; nil for Winograd (its transform is not
    /// invertible exactly).
    func unpackedWeights() -> [Float]? {
        guard !winograd else { return nil }
        let c = config
        let count = c.outChannels * (c.inChannels / c.groups) * c.kernelH * c.kernelW
        return [Float](unsafeUninitializedCapacity: count) { buffer, n in
            if direct {
                ck_direct_unpack(
                    packed.pointer, Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW),
                    buffer.baseAddress!)
            } else if grouped {
                ck_grouped_unpack(
                    packed.pointer, Int32(c.groups), Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW),
                    buffer.baseAddress!)
            } else {
                ck_conv_unpack(
                    packed.pointer, Int32(c.groups), Int32(c.outChannels), Int32(c.inChannels), Int32(c.kernelH), Int32(c.kernelW),
                    buffer.baseAddress!)
            }
            n = count
        }
    }

    /// Runs the convolution on raw NCHW buffers (see `ck_conv_io`); sizes must be validated by the caller.
    func run(
        batch: Int, h: Int, w: Int, outH: Int, outW: Int,
        input: UnsafePointer<Float>, inputImageStride: Int,
        output: UnsafeMutablePointer<Float>, outputImageStride: Int,
        residual: UnsafePointer<Float>?, residualImageStride: Int,
        inputScale: UnsafePointer<Float>?, inputShift: UnsafePointer<Float>?,
        relu: Bool
    ) {
        let c = config
        var cv = ck_conv(
            groups: Int32(c.groups), in_channels: Int32(c.inChannels), out_channels: Int32(c.outChannels),
            kh: Int32(c.kernelH), kw: Int32(c.kernelW), sh: Int32(c.strideH), sw: Int32(c.strideW),
            ph: Int32(c.padH), pw: Int32(c.padW), dh: Int32(c.dilationH), dw: Int32(c.dilationW),
            packed: UnsafePointer(packed.pointer), scale: scale.map { UnsafePointer($0.pointer) },
            bias: bias.map { UnsafePointer($0.pointer) })
        var io = ck_conv_io(
            batch: Int32(batch), h: Int32(h), w: Int32(w), oh: Int32(outH), ow: Int32(outW),
            in: input, in_batch_stride: inputImageStride,
            out: output, out_batch_stride: outputImageStride,
            residual: residual, residual_batch_stride: residualImageStride,
            in_scale: inputScale, in_shift: inputShift, relu: relu ? 1 : 0)
        let tile = inputScale == nil ? transientCallTile(batch: batch, outH: outH, outW: outW) : 0
        if tile != 0 {
            ck_winograd_transient_forward(Int32(tile), direct ? 1 : 0, &cv, &io)
        } else if direct {
            ck_direct_forward(&cv, &io)
        } else if !winograd && !grouped {
            ck_conv_forward(&cv, &io)
        } else if inputScale == nil {
            runSpecial(&cv, &io)
        } else {
            // These paths take no input prologue: apply it into a temporary first (no graph does this).
            let plane = h * w
            var staged = [Float](repeating: 0, count: batch * c.inChannels * plane)
            staged.withUnsafeMutableBufferPointer { t in
                ck_affine_channels(
                    input, inputImageStride, t.baseAddress!, c.inChannels * plane, Int32(batch), Int32(c.inChannels), plane,
                    inputScale, inputShift, 1)
                io.in = UnsafePointer(t.baseAddress!)
                io.in_batch_stride = c.inChannels * plane
                io.in_scale = nil
                io.in_shift = nil
                runSpecial(&cv, &io)
            }
        }
    }

    /// The output tile (4 or 2) of the Winograd kernel a call (without an input prologue) of `batch` images
    /// with an `outH` x `outW` output runs on weights transformed during the call, or 0 when it runs this
    /// object's other kernel (the GEMM path for GEMM panels, else the direct kernel): a Winograd geometry
    /// prepared without the Winograd layout (`transientTile`) and enough tiles. An F(2x2) geometry held as
    /// GEMM panels runs F(4x4) once its 4x4 tiles fill a panel (`fullPanelTiles`); a wide direct layer
    /// (`wideTransient`) runs F(4x4) on one or two full panels of 4x4 tiles.
    func transientCallTile(batch: Int, outH: Int, outW: Int) -> Int {
        if wideTransient {
            let tiles = Self.tileCount(tile: 4, batch: batch, outH: outH, outW: outW)
            return tiles >= Self.fullPanelTiles && tiles <= 2 * Self.fullPanelTiles ? 4 : 0
        }
        guard transientTile != 0 else { return 0 }
        if transientTile == 2 && !direct
            && Self.manyTiles(tile: 4, batch: batch, outH: outH, outW: outW, least: Self.fullPanelTiles) {
            return 4
        }
        // GEMM panels: the calls with fewer tiles run the GEMM path, not the direct kernel
        let many = Self.manyTiles(
            tile: transientTile, batch: batch, outH: outH, outW: outW,
            least: transientTile == 4 && !direct ? Self.fewPanelTiles : nil)
        return many ? transientTile : 0
    }

    /// An F(2x2, 3x3) geometry (129 to 256 channels) with its weights held as GEMM panels runs calls with
    /// at least this many tiles of 4x4 (one full panel of the Winograd GEMMs) as F(4x4, 3x3) on weights
    /// transformed during the call, faster there than F(2x2) on prepared weights. Measured on 256 -> 256
    /// (2 threads; 1 thread in brackets), F(4x4) transient against F(2x2) prepared: at 14x14, batch 2 (32
    /// tiles) 0.92 against 1.10 ms (1.89 against 2.17), batch 8 3.35 against 3.66 (6.48 against 6.99); at
    /// 28x28, batch 1 (49 tiles) 1.69 against 2.19. With fewer tiles F(2x2) is faster or even: 14x14 at
    /// batch 1 (16 tiles) 0.95 against 0.57 ms, 18x18 (25 tiles) 0.94 against 0.95 (1.93 against 1.64).
    static let fullPanelTiles = 32

    /// Calls of a Winograd F(4x4, 3x3) geometry held as GEMM panels (`transientFromPanels`) with fewer
    /// output tiles than this run the GEMM path; from it on, Winograd on transient weights, which is
    /// faster than the GEMM path there (measured at two threads, batch 1: 64 -> 64 at 14x14, 16 tiles,
    /// 0.098 against 0.134 ms, 128 -> 128 0.263 against 0.343; at 12x12, 9 tiles, about equal: 0.094
    /// against 0.107 and 0.265 against 0.269; at 7x7 and 8x8, 4 tiles, the GEMM path 0.054 and 0.131
    /// against 0.095 and 0.258).
    static let fewPanelTiles = 16

    /// Whether a call of `batch` images with an `outH` x `outW` output has enough output tiles of
    /// `tile` x `tile` for Winograd to be faster than the direct kernel: at least `fewTiles` of 4x4 or
    /// `fewSmallTiles` of 2x2 (measured on these networks' layers; see `PreparedConv2d`), or `least`
    /// where another kernel is the alternative.
    static func manyTiles(tile: Int, batch: Int, outH: Int, outW: Int, least: Int? = nil) -> Bool {
        tileCount(tile: tile, batch: batch, outH: outH, outW: outW) >= (least ?? (tile == 2 ? fewSmallTiles : fewTiles))
    }

    /// Output tiles of `tile` x `tile` of a call of `batch` images with an `outH` x `outW` output (partial
    /// tiles at the edges counted whole).
    static func tileCount(tile: Int, batch: Int, outH: Int, outW: Int) -> Int {
        batch * ((outH + tile - 1) / tile) * ((outW + tile - 1) / tile)
    }

    /// Calls of a Winograd F(4x4, 3x3) layer with fewer output tiles than this (over the batch) run the
    /// direct kernel.
    static let fewTiles = 48
    /// The same for F(2x2, 3x3): measured on 256 channels at two threads, the direct kernel is faster on a
    /// 7x7 plane at batch 1 (16 tiles: 0.33 against 0.39 ms), F(2x2) from 25 tiles (10x10: 0.35 against
    /// 0.54 ms).
    static let fewSmallTiles = 20

    /// The Winograd or direct grouped kernel (which take no input prologue).
    private func runSpecial(_ cv: inout ck_conv, _ io: inout ck_conv_io) {
        if smallTiles {
            ck_winograd2_forward(&cv, &io)
        } else if winograd {
            ck_winograd_forward(&cv, &io)
        } else {
            ck_grouped_forward(&cv, &io)
        }
    }
}

/// Packs a convolution's weights on first use, once, safely from any thread.
final class ConvKernelCache: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var value: ConvKernelWeights?

    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    func get(_ make: () -> ConvKernelWeights) -> ConvKernelWeights {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if let value { return value }
        let made = make()
        value = made
        return made
    }
}
