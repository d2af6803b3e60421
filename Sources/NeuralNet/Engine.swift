import CKernels

/// Settings of the compute engine that every layer shares: how many threads the kernels use and which
/// instruction set they run.
///
/// The kernels pick AVX-512F, AVX2+FMA or portable C at run time from the CPU's features. Results do not
/// depend on the thread count (work is split over output tiles, never over a sum).
public enum Engine {
    /// Returns memory the allocator holds free to the system (glibc keeps freed heap memory resident,
    /// for example the transient copies a model load makes); a no-op where there is nothing to do.
    public static func releaseFreedMemory() { ck_release_free_memory() }

    /// Threads the kernels split their work over (1 ... 64). Defaults to the number of online CPUs.
    public static var threads: Int {
        get { Int(ck_threads()) }
        set { ck_set_threads(Int32(clamping: newValue)) }
    }

    /// The instruction sets the kernels can use, best last.
    public enum InstructionSet: Int, Sendable, Comparable, CaseIterable {
        /// Plain C, compiled for the baseline target.
        case portable = 0
        /// 256-bit AVX2 with fused multiply-add.
        case avx2 = 1
        /// 512-bit AVX-512F.
        case avx512 = 2

        /// Orders instruction sets from the baseline to the widest.
        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    /// The best instruction set this CPU supports.
    public static var supportedInstructionSet: InstructionSet {
        InstructionSet(rawValue: Int(ck_cpu_level())) ?? .portable
    }

    /// The instruction set in use: the supported one unless lowered (tests lower it to check every path).
    /// Setting a level the CPU lacks selects the best supported one.
    public static var instructionSet: InstructionSet {
        get { InstructionSet(rawValue: Int(ck_level())) ?? .portable }
        set { _ = ck_set_level(Int32(newValue.rawValue)) }
    }

    /// Runs `body` with the instruction set and / or thread count overridden for calls made from the
    /// calling thread only (other threads keep the global settings); the overrides end with `body`.
    /// Tests use it to run every code path while other work runs concurrently.
    public static func withOverrides<R>(
        instructionSet: InstructionSet? = nil, threads: Int? = nil, _ body: () throws -> R
    ) rethrows -> R {
        if let instructionSet { ck_set_local_level(Int32(instructionSet.rawValue)) }
        if let threads { ck_set_local_threads(Int32(clamping: max(1, threads))) }
        defer {
            ck_set_local_level(-1)
            ck_set_local_threads(0)
        }
        return try body()
    }
}
