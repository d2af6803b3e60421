/* The x86 micro-kernels: AVX-512F (12 x 32 in 24 zmm accumulators) and AVX2+FMA (the same tile as four
 * 6 x 16 blocks of 12 ymm accumulators). Compiled for their ISA with target attributes and only called
 * after the run-time CPU check in ck_kernel(). */
#include "ck_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define CK_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define CK_AVX2 __attribute__((target("avx2,fma")))

/* Steps ahead at which the AVX-512 kernels fetch A (the weights), which streams from memory where a panel
 * meets few B panels (Winograd's GEMMs, 14 x 14 and 7 x 7 planes at batch 1). 16 at first; 40 measured
 * about 2% faster on ResNet-50, ResNet-152 and DenseNet-121 at batch 1 (whole network, interleaved),
 * unchanged at batch 8; 64 about the same as 40. */
#define CK_A_AHEAD 40

/* Widest last panel (in columns) that the AVX-512 kernel computes column by column: about (nv + 1) / 2
 * cycles per step against the full tile's 12, so still about a sixth cheaper at 20. */
#define CK_NARROW_MAX 20

CK_AVX512 static inline __m512 finish512(__m512 v, const float *c, __mmask16 m, int first, int last, float scale,
                                         float bias, const float *res, int relu) {
    if (!first) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, c), v);
    if (last) {
        v = _mm512_fmadd_ps(v, _mm512_set1_ps(scale), _mm512_set1_ps(bias)); /* scale 1: exactly v + bias */
        if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res));
        if (relu) v = _mm512_max_ps(_mm512_setzero_ps(), v);
    }
    return v;
}

/* The masks of the first nv columns of a 32-column tile: columns 0-15 and 16-31. */
CK_AVX512 static inline void column_masks(int nv, __mmask16 *m0, __mmask16 *m1) {
    *m0 = nv >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nv) - 1);
    *m1 = nv >= 32 ? (__mmask16)0xFFFF : nv > 16 ? (__mmask16)((1u << (nv - 16)) - 1) : (__mmask16)0;
}

#define ROW512(r)                                                                                           \
    do {                                                                                                    \
        __m512 ar = _mm512_set1_ps(a[r]);                                                                   \
        c##r##0 = _mm512_fmadd_ps(ar, b0, c##r##0);                                                         \
        c##r##1 = _mm512_fmadd_ps(ar, b1, c##r##1);                                                         \
    } while (0)

#define STORE512(r)                                                                                         \
    if (r < mv) {                                                                                           \
        float *cr = c + (ptrdiff_t)(r) * ldc;                                                               \
        const float *rr = res ? res + (ptrdiff_t)(r) * ldr : NULL;                                          \
        float bv = bias ? bias[r] : 0.0f, sv = scale ? scale[r] : 1.0f;                                                                   \
        _mm512_mask_storeu_ps(cr, m0, finish512(c##r##0, cr, m0, first, last, sv, bv, rr, relu));               \
        _mm512_mask_storeu_ps(cr + 16, m1, finish512(c##r##1, cr + 16, m1, first, last, sv, bv, rr ? rr + 16 : NULL, relu)); \
    }

/* Fewer rows for the last panel of a layer whose output channels are not a multiple of 12 (64 = 5 x 12 +
 * 4, 32 = 2 x 12 + 8): the same sums per element, without the zero rows. */
#define SMALL512(R)                                                                                         \
    CK_AVX512 static void kernel512_##R(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,    \
                                        int mv, int nv, int first, int last, const float *scale, const float *bias, \
                                        const float *res, ptrdiff_t ldr, int relu) {                       \
        __m512 acc[R][2];                                                                                  \
        for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();                           \
        for (int k = 0; k < kc; k++) {                                                                     \
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);                                    \
            for (int r = 0; r < R; r++) {                                                                  \
                __m512 ar = _mm512_set1_ps(a[r]);                                                          \
                acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);                                            \
                acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);                                            \
            }                                                                                              \
            a += CK_MR;                                                                                    \
            b += ldb;                                                                                    \
        }                                                                                                  \
        __mmask16 m0, m1;                                                                                  \
        column_masks(nv, &m0, &m1);                                                                        \
        for (int r = 0; r < R && r < mv; r++) {                                                            \
            float *cr = c + (ptrdiff_t)r * ldc;                                                            \
            const float *rr = res ? res + (ptrdiff_t)r * ldr : NULL;                                       \
            float bv = bias ? bias[r] : 0.0f, sv = scale ? scale[r] : 1.0f;                                                              \
            _mm512_mask_storeu_ps(cr, m0, finish512(acc[r][0], cr, m0, first, last, sv, bv, rr, relu));         \
            _mm512_mask_storeu_ps(cr + 16, m1,                                                             \
                                  finish512(acc[r][1], cr + 16, m1, first, last, sv, bv, rr ? rr + 16 : NULL, relu)); \
        }                                                                                                  \
    }

SMALL512(4)
SMALL512(8)

/* Few columns (the last panel of a plane that is not a multiple of 32 wide: 196 = 6 x 32 + 4 at 14 x 14,
 * 49 = 32 + 17 at 7 x 7): the 12 rows in the lanes of one vector, one accumulator per column, each step
 * one load of A and NV multiply-adds with B broadcast from memory, so the step costs about NV / 2 cycles
 * instead of the full tile's 12. Every element is the same chain of fused multiply-adds over k as in the
 * full tile (lane r of column j: fma(a[r], b[j], sum)), so the results are bit-identical. The sums are
 * turned into rows through a small buffer and finished with the full tile's epilogue. */
#define NARROW512(NV)                                                                                       \
    CK_AVX512 static void narrow512_##NV(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,   \
                                         int mv, int nv, int first, int last, const float *scale,          \
                                         const float *bias, const float *res, ptrdiff_t ldr, int relu) {    \
        __m512 acc[NV];                                                                                    \
        _Pragma("clang loop unroll(full)") for (int j = 0; j < NV; j++) acc[j] = _mm512_setzero_ps();      \
        for (int k = 0; k < kc; k++) {                                                                     \
            _mm_prefetch((const char *)(a + CK_A_AHEAD * CK_MR), _MM_HINT_T0);                                     \
            const __m512 av = _mm512_maskz_loadu_ps((__mmask16)0x0FFF, a);                                 \
            _Pragma("clang loop unroll(full)") for (int j = 0; j < NV; j++)                                 \
                acc[j] = _mm512_fmadd_ps(av, _mm512_set1_ps(b[j]), acc[j]);                                \
            a += CK_MR;                                                                                    \
            b += ldb;                                                                                    \
        }                                                                                                  \
        finish_narrow512(acc, NV, c, ldc, mv, nv, first, last, scale, bias, res, ldr, relu);               \
    }

CK_AVX512 static void finish_narrow512(const __m512 *acc, int n, float *c, ptrdiff_t ldc, int mv, int nv,
                                       int first, int last, const float *scale, const float *bias,
                                       const float *res, ptrdiff_t ldr, int relu) {
    /* column j's sums at t[16 j ... 16 j + 11]; row r of columns 0-15 and 16-31 gathered at stride 16 */
    float t[32 * 16] __attribute__((aligned(64)));
    for (int j = 0; j < n; j++) _mm512_store_ps(t + 16 * j, acc[j]);
    const __m512i idx = _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
    __mmask16 m0, m1;
    column_masks(nv, &m0, &m1);
    for (int r = 0; r < mv; r++) {
        float *cr = c + (ptrdiff_t)r * ldc;
        const float *rr = res ? res + (ptrdiff_t)r * ldr : NULL;
        const float bv = bias ? bias[r] : 0.0f, sv = scale ? scale[r] : 1.0f;
        const __m512 v0 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m0, idx, t + r, 4);
        _mm512_mask_storeu_ps(cr, m0, finish512(v0, cr, m0, first, last, sv, bv, rr, relu));
        if (m1) {
            const __m512 v1 = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m1, idx, t + 256 + r, 4);
            _mm512_mask_storeu_ps(cr + 16, m1, finish512(v1, cr + 16, m1, first, last, sv, bv, rr ? rr + 16 : NULL, relu));
        }
    }
}

NARROW512(2)
NARROW512(4)
NARROW512(6)
NARROW512(8)
NARROW512(10)
NARROW512(12)
NARROW512(14)
NARROW512(16)
NARROW512(18)
NARROW512(20)

CK_AVX512 void ck_kernel_avx512(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int mv, int nv,
                                int first, int last, const float *scale, const float *bias, const float *res, ptrdiff_t ldr,
                                int relu) {
    if (nv <= CK_NARROW_MAX) {
        static void (*const narrow[CK_NARROW_MAX / 2])(int, const float *, const float *, ptrdiff_t, float *, ptrdiff_t, int, int,
                                                       int, int, const float *, const float *, const float *,
                                                       ptrdiff_t, int) = {
            narrow512_2, narrow512_4, narrow512_6, narrow512_8, narrow512_10,
            narrow512_12, narrow512_14, narrow512_16, narrow512_18, narrow512_20};
        narrow[(nv - 1) / 2](kc, a, b, ldb, c, ldc, mv, nv, first, last, scale, bias, res, ldr, relu);
        return;
    }
    if (mv <= 4) {
        kernel512_4(kc, a, b, ldb, c, ldc, mv, nv, first, last, scale, bias, res, ldr, relu);
        return;
    }
    if (mv <= 8) {
        kernel512_8(kc, a, b, ldb, c, ldc, mv, nv, first, last, scale, bias, res, ldr, relu);
        return;
    }
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
           c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00,
           c80 = c00, c81 = c00, c90 = c00, c91 = c00, c100 = c00, c101 = c00, c110 = c00, c111 = c00;
    for (int k = 0; k < kc; k++) {
        /* B streams from L2 (a packed block is reused across weight panels, but one panel outgrows L1
         * beside the others): fetch its rows 16 steps ahead (past the panel's end that is the next
         * panel, which the next call reads). Measured at 8 steps 2-8% faster per 1x1 layer of ResNet-50
         * at batch 1; 16 against 8: batch 8 1-4% faster (ResNet-50, ResNeXt-50), batch 1 unchanged.
         * A, the weights, streams from memory where a panel meets few B panels (Winograd's GEMMs, 7x7
         * planes): fetch it CK_A_AHEAD steps ahead. Measured (at 16 steps) 8-16% faster on ResNet-50's
         * F(2x2) layers and 14% on its 7x7 1x1 layers at batch 1; 8% off the whole network at batch 8. */
        _mm_prefetch((const char *)(b + 16 * ldb), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 16 * ldb + 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + CK_A_AHEAD * CK_MR), _MM_HINT_T0);
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        ROW512(0); ROW512(1); ROW512(2); ROW512(3); ROW512(4); ROW512(5);
        ROW512(6); ROW512(7); ROW512(8); ROW512(9); ROW512(10); ROW512(11);
        a += CK_MR;
        b += ldb;
    }
    __mmask16 m0, m1;
    column_masks(nv, &m0, &m1);
    STORE512(0) STORE512(1) STORE512(2) STORE512(3) STORE512(4) STORE512(5)
    STORE512(6) STORE512(7) STORE512(8) STORE512(9) STORE512(10) STORE512(11)
}

/* One row at a time, every panel's 32 floats by two (masked) loads and two aligned stores: the packing
 * of a 1x1 layer's input in a chunk of one image, where the generic loop in ck_conv.c copied each
 * 32-float run with a call per run and zeroed the last panel's tail with another. */
CK_AVX512 void ck_pack_rows_avx512(const float *src, ptrdiff_t stride, int kc, int ncols, float *dst) {
    const int panels = (ncols + CK_NR - 1) / CK_NR, full = ncols / CK_NR;
    __mmask16 m0, m1;
    column_masks(ncols - full * CK_NR, &m0, &m1);
    const size_t step = (size_t)kc * CK_NR;
    for (int k = 0; k < kc; k++) {
        const float *s = src + (ptrdiff_t)k * stride;
        float *d = dst + (size_t)k * CK_NR;
        int q = 0;
        for (; q < full; q++, s += CK_NR, d += step) {
            _mm512_store_ps(d, _mm512_loadu_ps(s));
            _mm512_store_ps(d + 16, _mm512_loadu_ps(s + 16));
        }
        if (q < panels) {
            _mm512_store_ps(d, _mm512_maskz_loadu_ps(m0, s));
            _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(m1, s + 16));
        }
    }
}

/* dst[k * dstride + x] = src[k * stride + 2 x] for k < kc, x < cnt (ck_internal.h). 16 columns from 32
 * consecutive inputs, the even ones through one permute; the loads are masked to the 2 cnt - 1 inputs
 * read, so that nothing past a row's last input is touched. */
CK_AVX512 void ck_pack_even_avx512(const float *src, ptrdiff_t stride, int kc, int cnt, float *dst, ptrdiff_t dstride) {
    for (int x0 = 0; x0 < cnt; x0 += 16) {
        const int n = cnt - x0 < 16 ? cnt - x0 : 16, used = 2 * n - 1;
        const __mmask16 m0 = ck_lanes16(used), m1 = ck_lanes16(used - 16), m = ck_lanes16(n);
        const float *s = src + 2 * x0;
        float *d = dst + x0;
        for (int k = 0; k < kc; k++, s += stride, d += dstride)
            _mm512_mask_storeu_ps(d, m, ck_even16(s, m0, m1));
    }
}

/* AVX2: one 6 x 16 block; a has row stride CK_MR, b column stride CK_NR. */
CK_AVX2 static inline __m256 finish256(__m256 v, float *c, __m256i m, int full, int first, int last, float scale,
                                       float bias, const float *res, int relu) {
    if (!first) v = _mm256_add_ps(full ? _mm256_loadu_ps(c) : _mm256_maskload_ps(c, m), v);
    if (last) {
        v = _mm256_fmadd_ps(v, _mm256_set1_ps(scale), _mm256_set1_ps(bias)); /* scale 1: exactly v + bias */
        if (res) v = _mm256_add_ps(v, full ? _mm256_loadu_ps(res) : _mm256_maskload_ps(res, m));
        if (relu) v = _mm256_max_ps(_mm256_setzero_ps(), v);
    }
    return v;
}

CK_AVX2 static inline __m256i mask256(int n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

#define ROW256(r)                                                                                           \
    do {                                                                                                    \
        __m256 ar = _mm256_broadcast_ss(a + r);                                                             \
        c##r##0 = _mm256_fmadd_ps(ar, b0, c##r##0);                                                         \
        c##r##1 = _mm256_fmadd_ps(ar, b1, c##r##1);                                                         \
    } while (0)

#define STORE256(r)                                                                                         \
    if (r < mv) {                                                                                           \
        float *cr = c + (ptrdiff_t)(r) * ldc;                                                               \
        const float *rr = res ? res + (ptrdiff_t)(r) * ldr : NULL;                                          \
        float bv = bias ? bias[r] : 0.0f, sv = scale ? scale[r] : 1.0f;                                                                   \
        if (nv > 0) {                                                                                       \
            __m256 v = finish256(c##r##0, cr, mk0, nv >= 8, first, last, sv, bv, rr, relu);                      \
            if (nv >= 8) _mm256_storeu_ps(cr, v); else _mm256_maskstore_ps(cr, mk0, v);                     \
        }                                                                                                   \
        if (nv > 8) {                                                                                       \
            __m256 v = finish256(c##r##1, cr + 8, mk1, nv >= 16, first, last, sv, bv, rr ? rr + 8 : NULL, relu); \
            if (nv >= 16) _mm256_storeu_ps(cr + 8, v); else _mm256_maskstore_ps(cr + 8, mk1, v);            \
        }                                                                                                   \
    }

CK_AVX2 static void kernel6x16(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int mv, int nv,
                               int first, int last, const float *scale, const float *bias, const float *res, ptrdiff_t ldr, int relu) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
           c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        ROW256(0); ROW256(1); ROW256(2); ROW256(3); ROW256(4); ROW256(5);
        a += CK_MR;
        b += ldb;
    }
    __m256i mk0 = mask256(nv), mk1 = mask256(nv - 8);
    STORE256(0) STORE256(1) STORE256(2) STORE256(3) STORE256(4) STORE256(5)
}

CK_AVX2 void ck_kernel_avx2(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int mv, int nv,
                            int first, int last, const float *scale, const float *bias, const float *res, ptrdiff_t ldr, int relu) {
    for (int half = 0; half < 2; half++) {
        int rows = mv - half * 6;
        if (rows <= 0) break;
        if (rows > 6) rows = 6;
        const float *ah = a + half * 6;
        float *ch = c + (ptrdiff_t)half * 6 * ldc;
        const float *bh = bias ? bias + half * 6 : NULL;
        const float *sh = scale ? scale + half * 6 : NULL;
        const float *rh = res ? res + (ptrdiff_t)half * 6 * ldr : NULL;
        for (int col = 0; col < 2; col++) {
            int cols = nv - col * 16;
            if (cols <= 0) break;
            if (cols > 16) cols = 16;
            kernel6x16(kc, ah, b + col * 16, ldb, ch + col * 16, ldc, rows, cols, first, last, sh, bh,
                       rh ? rh + col * 16 : NULL, ldr, relu);
        }
    }
}

CK_AVX512 void ck_epilogue_avx512(const float *src, float *dst, const float *res, int n, float scale, float bias,
                                  int relu) {
    const __m512 s = _mm512_set1_ps(scale), b = _mm512_set1_ps(bias), z = _mm512_setzero_ps();
    int x = 0;
    for (; x + 16 <= n; x += 16) {
        __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(src + x), s, b);
        if (res) v = _mm512_add_ps(v, _mm512_loadu_ps(res + x));
        if (relu) v = _mm512_max_ps(z, v);
        _mm512_storeu_ps(dst + x, v);
    }
    if (x < n) {
        const __mmask16 m = (__mmask16)((1u << (n - x)) - 1);
        __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, src + x), s, b);
        if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res + x));
        if (relu) v = _mm512_max_ps(z, v);
        _mm512_mask_storeu_ps(dst + x, m, v);
    }
}

CK_AVX2 void ck_epilogue_avx2(const float *src, float *dst, const float *res, int n, float scale, float bias,
                              int relu) {
    const __m256 s = _mm256_set1_ps(scale), b = _mm256_set1_ps(bias), z = _mm256_setzero_ps();
    int x = 0;
    for (; x + 8 <= n; x += 8) {
        __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(src + x), s, b);
        if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res + x));
        if (relu) v = _mm256_max_ps(z, v);
        _mm256_storeu_ps(dst + x, v);
    }
    if (x < n) {
        const __m256i m = mask256(n - x);
        __m256 v = _mm256_fmadd_ps(_mm256_maskload_ps(src + x, m), s, b);
        if (res) v = _mm256_add_ps(v, _mm256_maskload_ps(res + x, m));
        if (relu) v = _mm256_max_ps(z, v);
        _mm256_maskstore_ps(dst + x, m, v);
    }
}

#else
void ck_epilogue_avx2(const float *src, float *dst, const float *res, int n, float scale, float bias, int relu) {
    ck_epilogue_portable(src, dst, res, n, scale, bias, relu);
}
void ck_epilogue_avx512(const float *src, float *dst, const float *res, int n, float scale, float bias, int relu) {
    ck_epilogue_portable(src, dst, res, n, scale, bias, relu);
}
void ck_kernel_avx2(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int mv, int nv, int first,
                    int last, const float *scale, const float *bias, const float *res, ptrdiff_t ldr, int relu) {
    ck_kernel_portable(kc, a, b, ldb, c, ldc, mv, nv, first, last, scale, bias, res, ldr, relu);
}
void ck_kernel_avx512(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int mv, int nv,
                      int first, int last, const float *scale, const float *bias, const float *res, ptrdiff_t ldr, int relu) {
    ck_kernel_portable(kc, a, b, ldb, c, ldc, mv, nv, first, last, scale, bias, res, ldr, relu);
}
void ck_pack_rows_avx512(const float *src, ptrdiff_t stride, int kc, int ncols, float *dst) {
    (void)src; (void)stride; (void)kc; (void)ncols; (void)dst;
}
void ck_pack_even_avx512(const float *src, ptrdiff_t stride, int kc, int cnt, float *dst, ptrdiff_t dstride) {
    (void)src; (void)stride; (void)kc; (void)cnt; (void)dst; (void)dstride;
}
#endif
