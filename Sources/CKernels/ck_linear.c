/* The fully connected layer y[i][o] = sum_k x[i][k] * W[o][k] + b[o] (PyTorch's nn.Linear: weight [out][in],
 * row-major), computed here rather than by a BLAS: OpenBLAS's own worker thread keeps spinning
 * (sched_yield) long after each call and takes CPU from this engine's workers during the next layers.
 *
 * Work split: tasks over chunks of output features (about 4 per thread, at least 16 outputs each, in whole
 * panels of 8). Within a task, a panel of 8 weight rows is read from memory once and every block of input
 * rows (8 for AVX-512F, 4 otherwise) is dotted with it while it sits in cache: a tile of R input rows x O
 * weight rows keeps R * O accumulators in registers (R x O = 8x2, 4x4, 2x8, ...; wider tiles for fewer rows,
 * so that one input row, the common case, still runs 8 independent chains).
 *
 * Every output element has its own accumulator, whose arithmetic does not depend on the tile it is in: the
 * lanes of one vector accumulate x[i][k] * w[o][k] over k in order (fused multiply-add on x86; the last
 * partial vector masked, its missing lanes 0), then the lanes are summed in a fixed order and the bias is
 * added (one rounding). So a result depends neither on the thread count nor on the batch size or a row's
 * position in the batch; it does depend on the level (16 lanes with FMA, 8 lanes with FMA, 8 lanes without).
 * Error: within the bound of any float32 dot product, (in + 1) * 2^-24 * (sum |x w| + |b|) to first order;
 * the lanes make it about 16 (8) times smaller in the worst case. */
#include "ck_internal.h"

#define CK_INLINE static inline __attribute__((always_inline))

/** Output features per panel: chunk boundaries and the weight rows kept in cache together. */
enum { LIN_PANEL = 8 };

typedef struct linear_job linear_job;
/** Computes outputs [lo, hi) of every input row. */
typedef void (*linear_range_fn)(const linear_job *j, int lo, int hi);

struct linear_job {
    const float *x, *w, *bias;
    float *y;
    int n, in, out, tasks;
    linear_range_fn range; /* chosen on the calling thread: the level may be overridden for it only */
};

/* ---- portable C: 8 float lanes per accumulator, tiles 4x1, 3x1, 2x2, 1x4 (16 SSE registers) -------------
 * No FMA: the product is its own statement, which clang's default -ffp-contract=on never fuses with the sum,
 * so this path gives the same results on x86-64 and arm64. */

enum { LIN_LANES = 8 };

CK_INLINE float lin_sum8(const float *a) {
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* y[r][o] (row stride ldy) for R input rows from x (stride ldx) and O weight rows from w (stride ldw). */
CK_INLINE void lin_tile_portable(const float *x, ptrdiff_t ldx, const float *w, ptrdiff_t ldw, int k,
                                 const float *bias, float *y, ptrdiff_t ldy, const int R, const int O) {
    float acc[4][4][LIN_LANES]; /* R <= 4, O <= 4 */
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++)
            for (int l = 0; l < LIN_LANES; l++) acc[r][o][l] = 0.0f;
    int kk = 0;
    for (; kk + LIN_LANES <= k; kk += LIN_LANES)
        for (int r = 0; r < R; r++)
            for (int o = 0; o < O; o++) {
                const float *xr = x + r * ldx + kk, *wo = w + o * ldw + kk;
                for (int l = 0; l < LIN_LANES; l++) {
                    float p = xr[l] * wo[l];
                    acc[r][o][l] = acc[r][o][l] + p;
                }
            }
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) {
            for (int l = 0; kk + l < k; l++) {
                float p = x[r * ldx + kk + l] * w[o * ldw + kk + l];
                acc[r][o][l] = acc[r][o][l] + p;
            }
            float s = lin_sum8(acc[r][o]);
            y[r * ldy + o] = bias ? s + bias[o] : s;
        }
}

/* Outputs [0, ow) of a panel (ow <= LIN_PANEL) for R input rows, in tiles of O weight rows. */
CK_INLINE void lin_panel_portable(const float *x, ptrdiff_t ldx, const float *w, ptrdiff_t ldw, int k,
                                  const float *bias, float *y, ptrdiff_t ldy, int ow, const int R, const int O) {
    int o = 0;
    for (; o + O <= ow; o += O)
        lin_tile_portable(x, ldx, w + o * ldw, ldw, k, bias ? bias + o : NULL, y + o, ldy, R, O);
    for (; o < ow; o++) lin_tile_portable(x, ldx, w + o * ldw, ldw, k, bias ? bias + o : NULL, y + o, ldy, R, 1);
}

static void lin_range_portable(const linear_job *j, int lo, int hi) {
    const ptrdiff_t in = j->in, out = j->out;
    for (int o0 = lo; o0 < hi; o0 += LIN_PANEL) {
        const int ow = hi - o0 < LIN_PANEL ? hi - o0 : LIN_PANEL;
        const float *w = j->w + o0 * in, *b = j->bias ? j->bias + o0 : NULL;
        for (int i0 = 0; i0 < j->n; i0 += 4) {
            const float *x = j->x + i0 * in;
            float *y = j->y + i0 * out + o0;
            switch (j->n - i0 < 4 ? j->n - i0 : 4) {
            case 4: lin_panel_portable(x, in, w, in, j->in, b, y, out, ow, 4, 1); break;
            case 3: lin_panel_portable(x, in, w, in, j->in, b, y, out, ow, 3, 1); break;
            case 2: lin_panel_portable(x, in, w, in, j->in, b, y, out, ow, 2, 2); break;
            default: lin_panel_portable(x, in, w, in, j->in, b, y, out, ow, 1, 4); break;
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define CK_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define CK_AVX2 __attribute__((target("avx2,fma")))

/* ---- AVX-512F: 16 lanes, tiles up to 8 rows x 2 outputs / 2 rows x 8 outputs -------------------------- */

CK_AVX512 CK_INLINE void lin_tile512(const float *x, ptrdiff_t ldx, const float *w, ptrdiff_t ldw, int k,
                                     const float *bias, float *y, ptrdiff_t ldy, const int R, const int O) {
    __m512 acc[8][8];
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) acc[r][o] = _mm512_setzero_ps();
    int kk = 0;
    for (; kk + 16 <= k; kk += 16) {
        __m512 wv[8];
        for (int o = 0; o < O; o++) wv[o] = _mm512_loadu_ps(w + o * ldw + kk);
        for (int r = 0; r < R; r++) {
            const __m512 xv = _mm512_loadu_ps(x + r * ldx + kk);
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_fmadd_ps(xv, wv[o], acc[r][o]);
        }
    }
    if (kk < k) {
        const __mmask16 m = (__mmask16)((1u << (k - kk)) - 1);
        __m512 wv[8];
        for (int o = 0; o < O; o++) wv[o] = _mm512_maskz_loadu_ps(m, w + o * ldw + kk);
        for (int r = 0; r < R; r++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, x + r * ldx + kk);
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_fmadd_ps(xv, wv[o], acc[r][o]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) {
            const float s = _mm512_reduce_add_ps(acc[r][o]);
            y[r * ldy + o] = bias ? s + bias[o] : s;
        }
}

CK_AVX512 CK_INLINE void lin_panel512(const float *x, ptrdiff_t ldx, const float *w, ptrdiff_t ldw, int k,
                                      const float *bias, float *y, ptrdiff_t ldy, int ow, const int R, const int O) {
    int o = 0;
    for (; o + O <= ow; o += O) lin_tile512(x, ldx, w + o * ldw, ldw, k, bias ? bias + o : NULL, y + o, ldy, R, O);
    for (; o < ow; o++) lin_tile512(x, ldx, w + o * ldw, ldw, k, bias ? bias + o : NULL, y + o, ldy, R, 1);
}

CK_AVX512 static void lin_range512(const linear_job *j, int lo, int hi) {
    const ptrdiff_t in = j->in, out = j->out;
    for (int o0 = lo; o0 < hi; o0 += LIN_PANEL) {
        const int ow = hi - o0 < LIN_PANEL ? hi - o0 : LIN_PANEL;
        const float *w = j->w + o0 * in, *b = j->bias ? j->bias + o0 : NULL;
        for (int i0 = 0; i0 < j->n; i0 += 8) {
            const float *x = j->x + i0 * in;
            float *y = j->y + i0 * out + o0;
            switch (j->n - i0 < 8 ? j->n - i0 : 8) {
            case 8: lin_panel512(x, in, w, in, j->in, b, y, out, ow, 8, 2); break;
            case 7: lin_panel512(x, in, w, in, j->in, b, y, out, ow, 7, 2); break;
            case 6: lin_panel512(x, in, w, in, j->in, b, y, out, ow, 6, 2); break;
            case 5: lin_panel512(x, in, w, in, j->in, b, y, out, ow, 5, 2); break;
            case 4: lin_panel512(x, in, w, in, j->in, b, y, out, ow, 4, 4); break;
            case 3: lin_panel512(x, in, w, in, j->in, b, y, out, ow, 3, 4); break;
            case 2: lin_panel512(x, in, w, in, j->in, b, y, out, ow, 2, 8); break;
            default: lin_panel512(x, in, w, in, j->in, b, y, out, ow, 1, 8); break;
            }
        }
    }
}

/* ---- AVX2+FMA: 8 lanes, tiles up to 4 rows x 2 outputs / 1 row x 8 outputs (16 ymm registers) ---------- */

CK_AVX2 CK_INLINE float lin_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

CK_AVX2 CK_INLINE void lin_tile256(const float *x, ptrdiff_t ldx, const float *w, ptrdiff_t ldw, int k,
                                   const float *bias, float *y, ptrdiff_t ldy, const int R, const int O) {
    __m256 acc[4][8];
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) acc[r][o] = _mm256_setzero_ps();
    int kk = 0;
    for (; kk + 8 <= k; kk += 8) {
        __m256 wv[8];
        for (int o = 0; o < O; o++) wv[o] = _mm256_loadu_ps(w + o * ldw + kk);
        for (int r = 0; r < R; r++) {
            const __m256 xv = _mm256_loadu_ps(x + r * ldx + kk);
            for (int o = 0; o < O; o++) acc[r][o] = _mm256_fmadd_ps(xv, wv[o], acc[r][o]);
        }
    }
    if (kk < k) {
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(k - kk), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 wv[8];
        for (int o = 0; o < O; o++) wv[o] = _mm256_maskload_ps(w + o * ldw + kk, m);
        for (int r = 0; r < R; r++) {
            const __m256 xv = _mm256_maskload_ps(x + r * ldx + kk, m);
            for (int o = 0; o < O; o++) acc[r][o] = _mm256_fmadd_ps(xv, wv[o], acc[r][o]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) {
            const float s = lin_hsum256(acc[r][o]);
            y[r * ldy + o] = bias ? s + bias[o] : s;
        }
}

CK_AVX2 CK_INLINE void lin_panel256(const float *x, ptrdiff_t ldx, const float *w, ptrdiff_t ldw, int k,
                                    const float *bias, float *y, ptrdiff_t ldy, int ow, const int R, const int O) {
    int o = 0;
    for (; o + O <= ow; o += O) lin_tile256(x, ldx, w + o * ldw, ldw, k, bias ? bias + o : NULL, y + o, ldy, R, O);
    for (; o < ow; o++) lin_tile256(x, ldx, w + o * ldw, ldw, k, bias ? bias + o : NULL, y + o, ldy, R, 1);
}

CK_AVX2 static void lin_range256(const linear_job *j, int lo, int hi) {
    const ptrdiff_t in = j->in, out = j->out;
    for (int o0 = lo; o0 < hi; o0 += LIN_PANEL) {
        const int ow = hi - o0 < LIN_PANEL ? hi - o0 : LIN_PANEL;
        const float *w = j->w + o0 * in, *b = j->bias ? j->bias + o0 : NULL;
        for (int i0 = 0; i0 < j->n; i0 += 4) {
            const float *x = j->x + i0 * in;
            float *y = j->y + i0 * out + o0;
            switch (j->n - i0 < 4 ? j->n - i0 : 4) {
            case 4: lin_panel256(x, in, w, in, j->in, b, y, out, ow, 4, 2); break;
            case 3: lin_panel256(x, in, w, in, j->in, b, y, out, ow, 3, 2); break;
            case 2: lin_panel256(x, in, w, in, j->in, b, y, out, ow, 2, 4); break;
            default: lin_panel256(x, in, w, in, j->in, b, y, out, ow, 1, 8); break;
            }
        }
    }
}
#endif

/* ---- entry point ------------------------------------------------------------------------------------- */

static void linear_task(void *ctx, int task, int worker) {
    (void)worker;
    const linear_job *j = ctx;
    const long panels = (j->out + LIN_PANEL - 1) / LIN_PANEL;
    long lo = panels * task / j->tasks * LIN_PANEL, hi = panels * (task + 1) / j->tasks * LIN_PANEL;
    if (hi > j->out) hi = j->out;
    if (lo < hi) j->range(j, (int)lo, (int)hi);
}

/* About 4 tasks per thread, each at least 2 panels (16 outputs) and about 16K multiply-adds. */
static int linear_tasks(int n, int in, int out) {
    const long threads = ck_threads();
    if (threads <= 1) return 1;
    long tasks = (out + LIN_PANEL - 1) / LIN_PANEL / 2;
    const double work = (double)n * (in > 0 ? in : 1) * out;
    if ((double)tasks > work / 16384) tasks = (long)(work / 16384);
    if (tasks > 4 * threads) tasks = 4 * threads;
    return tasks < 1 ? 1 : (int)tasks;
}

void ck_linear(const float *x, int n, int in_features, const float *weight, const float *bias, int out_features,
               float *y) {
    if (n <= 0 || out_features <= 0) return;
    if (in_features <= 0) {
        for (ptrdiff_t i = 0; i < n; i++)
            for (int o = 0; o < out_features; o++) y[i * out_features + o] = bias ? bias[o] : 0.0f;
        return;
    }
    linear_job j = {x, weight, bias, y, n, in_features, out_features, 0, lin_range_portable};
    switch (ck_level()) {
#if defined(__x86_64__)
    case CK_LEVEL_AVX512: j.range = lin_range512; break;
    case CK_LEVEL_AVX2: j.range = lin_range256; break;
#endif
    default: break;
    }
    j.tasks = linear_tasks(n, in_features, out_features);
    ck_parallel_for(j.tasks, linear_task, &j);
}
