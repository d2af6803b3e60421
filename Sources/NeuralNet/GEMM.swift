#if canImport(Accelerate)
    import Accelerate
#else
    import CBLAS
#endif

/// Single-precision matrix multiply through CBLAS (OpenBLAS on Linux, Accelerate on Apple platforms).
///
/// All matrices are row-major. Callers check their dimensions once with `check` (CBLAS takes 32-bit
/// sizes) before entering unchecked loops.
enum GEMM {
    /// The largest dimension or leading dimension CBLAS and the C kernels (32-bit sizes) accept.
    static let maxDimension = Int(Int32.max)

    /// Throws unless every value fits the 32-bit integer arguments of CBLAS and the C kernels.
    static func check(_ op: String, _ dims: Int...) throws(NeuralNetError) {
        for d in dims where d < 0 || d > maxDimension {
            throw NeuralNetError("\(op): matrix dimension \(d) exceeds the 32-bit sizes the kernels accept (\(maxDimension))")
        }
    }

    /// `C[m x n] = A[m x k] * op(B)`, where `op(B)` is `B[k x n]`, or `B[n x k]` transposed when `transB`.
    ///
    /// Every size must have passed `check`. `C` is fully overwritten (beta = 0) and may be uninitialised.
    @inline(__always)
    static func multiply(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, transB: Bool = false,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
            return
        }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(truncatingIfNeeded: m), Int32(truncatingIfNeeded: n), Int32(truncatingIfNeeded: k),
            1, a, Int32(truncatingIfNeeded: lda),
            b, Int32(truncatingIfNeeded: ldb),
            0, c, Int32(truncatingIfNeeded: ldc))
    }
}
