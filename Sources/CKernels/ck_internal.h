#ifndef PRETRAINEDVISION_CK_INTERNAL_H
#define PRETRAINEDVISION_CK_INTERNAL_H

#include "CKernels.h"
#include <stddef.h>

/* A micro-kernel: the CK_MR x CK_NR tile C = A(kc x MR panel) * B(kc x NR panel), B's rows `ldb` floats
 * apart (CK_NR when packed; a 1x1 layer's plane when read in place, where the kernel reads the full
 * CK_NR columns of each row, or exactly nv rounded up to even for the AVX-512 narrow tails).
 * `first`: C is overwritten, else added to. `last`: then C * scale[r] + bias[r] (1 / 0 when NULL, one
 * rounding), residual (if res) and ReLU
 * (if relu) are applied. Only the first `mv` rows and `nv` columns of C are touched. */
typedef void (*ck_kernel_fn)(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int mv, int nv,
                             int first, int last, const float *scale, const float *bias, const float *res, ptrdiff_t ldr, int relu);

void ck_kernel_portable(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int mv, int nv,
                        int first, int last, const float *scale, const float *bias, const float *res, ptrdiff_t ldr, int relu);
void ck_kernel_avx2(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int mv, int nv, int first,
                    int last, const float *scale, const float *bias, const float *res, ptrdiff_t ldr, int relu);
void ck_kernel_avx512(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int mv, int nv,
                      int first, int last, const float *scale, const float *bias, const float *res, ptrdiff_t ldr, int relu);

/** dst[x] = act(src[x] * scale + bias + res[x]) for x < n (res NULL: no residual; res may equal dst):
 *  the store of sums accumulated in a buffer, with the micro-kernels' epilogue arithmetic (one fused
 *  multiply-add, then the residual). */
typedef void (*ck_epilogue_fn)(const float *src, float *dst, const float *res, int n, float scale, float bias,
                               int relu);
void ck_epilogue_portable(const float *src, float *dst, const float *res, int n, float scale, float bias, int relu);
void ck_epilogue_avx2(const float *src, float *dst, const float *res, int n, float scale, float bias, int relu);
void ck_epilogue_avx512(const float *src, float *dst, const float *res, int n, float scale, float bias, int relu);
/** The epilogue of the level in use. */
ck_epilogue_fn ck_epilogue(void);

/** The micro-kernel of the level in use. */
ck_kernel_fn ck_kernel(void);

/* The first n of 16 vector lanes as an AVX-512 mask (__mmask16): none for n <= 0, all from 16. */
static inline unsigned short ck_lanes16(int n) {
    return n <= 0 ? 0 : n >= 16 ? (unsigned short)0xFFFF : (unsigned short)((1u << n) - 1);
}

/* Packs kc rows of ncols contiguous floats (row r at src + r * stride) into panels of CK_NR columns,
 * [panel][kc][CK_NR] (panel q at dst + q * kc * CK_NR), zero past ncols. AVX-512F only (ck_level()). */
void ck_pack_rows_avx512(const float *src, ptrdiff_t stride, int kc, int ncols, float *dst);

#if defined(__x86_64__)
#include <immintrin.h>
/* The even floats of the 32 at `at` (lane i: at[2 i]), loaded masked: m0 for at[0 ... 15], m1 for at[16 ...
 * 31], the others read as zero and not touched. One permute: ck_pack_even_avx512 and the grouped
 * kernels' stride-2 vectors. AVX-512F only (ck_level()). */
__attribute__((target("avx512f"))) static inline __m512 ck_even16(const float *at, __mmask16 m0, __mmask16 m1) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m0, at), even, _mm512_maskz_loadu_ps(m1, at + 16));
}
#endif

/* dst[k * dstride + x] = src[k * stride + 2 x] for k < kc and x < cnt (none when cnt <= 0), reading no
 * input past src[k * stride + 2 (cnt - 1)]: a 1x1 stride-2 layer's packing, and a grouped layer's
 * column-phase copy (kc 1). AVX-512F only (ck_level()). */
void ck_pack_even_avx512(const float *src, ptrdiff_t stride, int kc, int cnt, float *dst, ptrdiff_t dstride);

/** The share of `threads` threads' time spent working when tasks of the given sizes (in any unit) are
 *  taken in order, each by the thread that is free first (1 when there is nothing to do). Layers decide
 *  with it whether whole tasks balance well enough or must also be split by output channels. */
double ck_task_balance(int count, const double *sizes, int threads);

/** A 64-byte aligned scratch buffer of at least `count` floats owned by the calling thread (slot 0 ... 3). */
float *ck_scratch(int slot, size_t count);

/* Output channels per group of ck_direct_pack's layout (64, or 32 when out_channels is not a multiple of
 * 64): weight (o, c, tap) of a 3x3 kernel lies at
 * ((o / g * (cin / 16) + c / 16) * 9 + tap) * 16 * g + (c % 16) * g + o % g. */
int ck_direct_group(int out_channels);

#endif
