import Testing

@testable import NeuralNet

/// `Linear`'s kernel (`ck_linear` in CKernels) against a double-precision reference, at every instruction-set
/// level this CPU has (AVX-512F, AVX2+FMA, portable C) and with 1 and 2 threads.
///
/// Bound, per output element: |ours - exact| <= gamma(in + 1) * S + in * 2^-53 * S, where S = sum_k |x_k w_k| + |b|,
/// u = 2^-24 and gamma(m) = m u / (1 - m u). The first term is the classical worst-case bound of a float32 dot
/// product of `in` terms plus a bias, in any summation order, with or without fused multiply-add (Higham,
/// "Accuracy and Stability of Numerical Algorithms", 2nd ed., section 3.1), so it holds for each level's lane
/// layout; the second covers the Double reference's own rounding. The measured worst error is printed per input
/// size as a fraction of that bound: close to it for 1 term (x * w + b rounded twice without FMA), far below it
/// for long sums, which the lanes split into short ones.
///
/// Each output is summed by one thread in a fixed order, so 1 and 2 threads must agree bit for bit, and so must
/// a row computed alone and the same row inside a batch.
@Suite("Linear kernel", .serialized)
struct LinearKernelTests {
    static let batchSizes = [1, 3, 8, 9]
    /// 1 and 7: only a partial vector; 64 and 2048: whole vectors; 100: both (6 x 16 + 4, 12 x 8 + 4).
    static let inFeatures = [1, 7, 64, 100, 2048]
    static let outFeatures = [1, 5, 33, 1000]

    /// A layer with weights scaled by 1 / sqrt(in) (as PyTorch initialises them) and an optional bias.
    static func layer(in inCount: Int, out outCount: Int, bias: Bool, seed: UInt64) throws -> Linear {
        let scale = 1 / Float(inCount).squareRoot()
        return try Linear(
            weight: KernelTests.values(inCount * outCount, seed: seed).map { $0 * scale },
            bias: bias ? KernelTests.values(outCount, seed: seed + 1) : nil, inFeatures: inCount,
            outFeatures: outCount)
    }

    /// The exact result rounded to Double (`value`) and S = sum |x w| + |b| (`magnitude`), per output.
    static func reference(_ layer: Linear, _ x: Tensor) -> (value: [Double], magnitude: [Double]) {
        let n = x.shape[0], k = layer.inFeatures, m = layer.outFeatures
        var value = [Double](repeating: 0, count: n * m), magnitude = value
        x.data.withUnsafeBufferPointer { xs in
            layer.weight.withUnsafeBufferPointer { ws in
                for i in 0..<n {
                    for o in 0..<m {
                        var sum = layer.bias.map { Double($0[o]) } ?? 0
                        var mag = abs(sum)
                        for j in 0..<k {
                            let p = Double(xs[i * k + j]) * Double(ws[o * k + j])  // exact in Double
                            sum += p
                            mag += abs(p)
                        }
                        value[i * m + o] = sum
                        magnitude[i * m + o] = mag
                    }
                }
            }
        }
        return (value, magnitude)
    }

    /// The bound above for a dot product of `inCount` terms plus a bias.
    static func bound(inFeatures inCount: Int, magnitude: Double) -> Double {
        let u = 0x1p-24, terms = Double(inCount + 1)
        return (terms * u / (1 - terms * u) + Double(inCount) * 0x1p-53) * magnitude
    }

    static func bitIdentical(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && a.elementsEqual(b) { $0.bitPattern == $1.bitPattern }
    }

    @Test("Linear matches a Double reference within the float32 dot-product bound, every level and thread count")
    func matchesReference() throws {
        var seed: UInt64 = 1
        for inCount in Self.inFeatures {
            var worstFraction = 0.0, worstRelative = 0.0
            for outCount in Self.outFeatures {
                for withBias in [false, true] {
                    seed += 2
                    let layer = try Self.layer(in: inCount, out: outCount, bias: withBias, seed: seed)
                    for n in Self.batchSizes {
                        let x = try Tensor(shape: [n, inCount], data: KernelTests.values(n * inCount, seed: seed + 1000))
                        let ref = Self.reference(layer, x)
                        let label = "n \(n), in \(inCount), out \(outCount), bias \(withBias)"
                        var oneThread: [Float]?
                        try KernelTests.everyPath { set, threads in
                            let y = try layer(x)
                            #expect(y.shape == [n, outCount], "\(label)")
                            guard y.data.count == n * outCount else { return }
                            var fraction = 0.0
                            for i in 0..<y.data.count {
                                let error = abs(Double(y.data[i]) - ref.value[i])
                                let bound = Self.bound(inFeatures: inCount, magnitude: ref.magnitude[i])
                                fraction = max(fraction, bound > 0 ? error / bound : (error == 0 ? 0 : .infinity))
                                if ref.magnitude[i] > 0 { worstRelative = max(worstRelative, error / ref.magnitude[i]) }
                            }
                            worstFraction = max(worstFraction, fraction)
                            #expect(fraction <= 1, "\(label) at \(set), \(threads) thread(s): error is \(fraction) x the bound")
                            if threads == 1 {
                                oneThread = y.data
                            } else if let first = oneThread {
                                #expect(
                                    Self.bitIdentical(first, y.data),
                                    "\(label) at \(set): 2 threads differ from 1 thread")
                            }
                        }
                    }
                }
            }
            print("linear kernel, in \(inCount): worst error \(worstFraction) x the bound, \(worstRelative) x sum |terms|")
        }
    }

    @Test("A row's output does not depend on the batch it is in (bit for bit), every level and thread count")
    func batchIndependent() throws {
        let n = 9, inCount = 300, outCount = 37
        let layer = try Self.layer(in: inCount, out: outCount, bias: true, seed: 77)
        let x = try Tensor(shape: [n, inCount], data: KernelTests.values(n * inCount, seed: 78))
        try KernelTests.everyPath { set, threads in
            let batch = try layer(x)
            for i in 0..<n {
                let row = try Tensor(shape: [1, inCount], data: Array(x.data[i * inCount..<(i + 1) * inCount]))
                let alone = try layer(row)
                #expect(
                    Self.bitIdentical(alone.data, Array(batch.data[i * outCount..<(i + 1) * outCount])),
                    "row \(i) at \(set), \(threads) thread(s): differs inside the batch")
            }
        }
    }

    @Test("NaN and infinity reach only their own row's outputs, also from the partial last vector")
    func nonFinitePropagation() throws {
        let inCount = 21, outCount = 40  // 21 = 16 + 5 = 2 x 8 + 5: the specials sit in the masked tail
        let layer = try Self.layer(in: inCount, out: outCount, bias: true, seed: 91)
        var data = KernelTests.values(3 * inCount, seed: 92)
        data[0 * inCount + 20] = .nan
        data[2 * inCount + 19] = .infinity
        let x = try Tensor(shape: [3, inCount], data: data)
        try KernelTests.everyPath { set, threads in
            let y = try layer(x)
            let rows = (0..<3).map { i in Array(y.data[i * outCount..<(i + 1) * outCount]) }
            #expect(rows[0].allSatisfy { $0.isNaN }, "\(set), \(threads) thread(s): NaN row")
            #expect(rows[1].allSatisfy { $0.isFinite }, "\(set), \(threads) thread(s): finite row")
            // inf * w is +-inf by w's sign (no weight here is 0), and the finite terms do not change it
            for o in 0..<outCount {
                let w = layer.weight[o * inCount + 19]
                #expect(rows[2][o] == (w > 0 ? Float.infinity : -Float.infinity), "\(set), \(threads): output \(o)")
            }
        }
    }
}
