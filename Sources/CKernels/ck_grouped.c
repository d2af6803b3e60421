/* Direct convolution for grouped layers with few channels per group (ResNeXt's 32 groups of 4 ... 32
 * channels), where a GEMM per group would be mostly packing and padding. AVX-512F only; other levels
 * run such layers through the packed GEMM.
 *
 * Per task (one image, one group): the group's input channels are copied once into zero-padded rows,
 * split by column phase for stride 2 (so every tap reads 16 consecutive floats); then each output row is
 * computed for blocks of 4 or 8 output channels over 64 or 32 columns, accumulating every (channel, tap)
 * with a broadcast weight, and stored with bias, residual and ReLU. At stride 1 (and 2 with 3x3 kernels)
 * the blocks of 4 and 8 outputs read the input rows in place instead, masked at the padding
 * (GROUPED_DIRECT). */
#include "ck_internal.h"

#include <string.h>

size_t ck_grouped_packed_count(int groups, int out_channels, int in_channels, int kh, int kw) {
    (void)groups;
    return (size_t)out_channels * (size_t)(in_channels / groups) * (size_t)kh * (size_t)kw;
}

int ck_grouped_block(int groups, int out_channels, int out_width) {
    int og = out_channels / groups;
    if (og % 16 == 0 && out_width <= 16) return 16;
    return og % 8 == 0 ? 8 : og % 4 == 0 ? 4 : 0;
}

void ck_grouped_pack(const float *weight, int groups, int out_channels, int in_channels, int kh, int kw,
                     float *packed) {
    const int og = out_channels / groups, ig = in_channels / groups, taps = kh * kw;
    /* [g][c][tap][o]: the weights of all outputs of a group for one (channel, tap) are contiguous */
    float *dst = packed;
    for (int g = 0; g < groups; g++)
        for (int c = 0; c < ig; c++)
            for (int t = 0; t < taps; t++)
                for (int o = 0; o < og; o++) *dst++ = weight[(((size_t)g * og + o) * ig + c) * taps + t];
}

void ck_grouped_unpack(const float *packed, int groups, int out_channels, int in_channels, int kh, int kw,
                       float *weight) {
    const int og = out_channels / groups, ig = in_channels / groups, taps = kh * kw;
    const float *src = packed;
    for (int g = 0; g < groups; g++)
        for (int c = 0; c < ig; c++)
            for (int t = 0; t < taps; t++)
                for (int o = 0; o < og; o++) weight[(((size_t)g * og + o) * ig + c) * taps + t] = *src++;
}

/* (channel, tap) steps per group that the kernel's offset table holds: ResNeXt-101 32x8d's last stage
 * has 64 x 3 x 3 = 576, a 3-channel 7 x 7 stem 147 */
#define CK_GROUPED_MAX_STEPS 2048

#if defined(__x86_64__)
#include <immintrin.h>
#define CK_AVX512 __attribute__((target("avx512f,avx2,fma")))

typedef struct grouped_job {
    const ck_conv *cv;
    const ck_conv_io *io;
    int og, ig, ob;
    int step;       /* columns per row block: 16 / 32 / 64 for blocks of 16 / 8 / 4 outputs */
    int cv_outputs; /* outputs in the vectors, per tile: 32 (rows of at most 8 columns), 16 (9 to 16), or 0 */
    int row_chunks, rows_per_chunk; /* output rows split over tasks */
    int split; /* column phases of the padded copy: the stride for the row blocks' vector loads, else 1 */
    int wq;    /* floats per phase row */
    int toff[16]; /* per kernel column: offset of its phase row and column shift */
    int direct;   /* row blocks that read the input in place (GROUPED_DIRECT), no copy */
    int tail;     /* columns at the end of a row computed by 16-output blocks (below), or 0 */
} grouped_job;

/* Stores output channel o's sums y at `at` (masked to m): fmaf(y, scale, bias), then the residual, then
 * ReLU (the micro-kernels' epilogue arithmetic). */
CK_AVX512 static inline void store_sums(const grouped_job *j, __m512 y, int o, size_t at, __mmask16 m, float *out,
                                        const float *res, const float *bias) {
    y = _mm512_fmadd_ps(y, _mm512_set1_ps(j->cv->scale ? j->cv->scale[o] : 1.0f), _mm512_set1_ps(bias ? bias[o] : 0.0f));
    if (res) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, res + at));
    if (j->io->relu) y = _mm512_max_ps(_mm512_setzero_ps(), y);
    _mm512_mask_storeu_ps(out + at, m, y);
}

/* Stores a row block's sums acc[r][v] (OB outputs from o0, NV vectors of 16 columns from x0 of output row
 * oy), the columns past the row's end left out. */
CK_AVX512 static inline void store_block(const grouped_job *j, const __m512 *acc, int ob, int nv, int oy, int x0,
                                         float *out, const float *res, const float *bias, int o0) {
    const int ow = j->io->ow;
    const size_t plane = (size_t)j->io->oh * ow;
    for (int v = 0; v < nv; v++) {
        const int left = ow - (x0 + 16 * v);
        if (left <= 0) break;
        const __mmask16 m = ck_lanes16(left);
        for (int r = 0; r < ob; r++)
            store_sums(j, acc[r * nv + v], o0 + r, (size_t)(o0 + r) * plane + (size_t)oy * ow + x0 + 16 * v, m, out, res,
                       bias);
    }
}

/* One block of OB output channels over NV vectors of 16 columns starting at x0 in output row oy, from the
 * zero-padded copy. The (channel, tap) steps run as one flat loop over precomputed input offsets: nested
 * channel / row / column loops made clang rotate the accumulators through 14 register copies per step
 * (measured: the stem at 38% of the FMA peak). */
#define GROUPED_BLOCK(OB, NV)                                                                               \
    CK_AVX512 static void block_##OB##x##NV(const grouped_job *j, const float *base, const int *offs,       \
                                            int steps, const float *w, int oy, int x0, float *out,          \
                                            const float *res, const float *bias, int o0) {                  \
        const int og = j->og;                                                                              \
        __m512 acc[OB][NV];                                                                                \
        for (int r = 0; r < OB; r++)                                                                       \
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();                                  \
        base += x0;                                                                                        \
        for (int st = 0; st < steps; st++, w += og) {                                                      \
            const float *src = base + offs[st];                                                            \
            __m512 in[NV];                                                                                 \
            for (int v = 0; v < NV; v++) in[v] = _mm512_loadu_ps(src + 16 * v);                            \
            for (int r = 0; r < OB; r++) {                                                                 \
                const __m512 wv = _mm512_set1_ps(w[r]);                                                    \
                for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(wv, in[v], acc[r][v]);             \
            }                                                                                              \
        }                                                                                                  \
        store_block(j, &acc[0][0], OB, NV, oy, x0, out, res, bias, o0);                                    \
    }

/* The mask of the 16 inputs from column `at` of a row of `width` that lie in the row. */
#define ROW_MASK(at) ((__mmask16)(ck_lanes16(width - (at)) & ~ck_lanes16(-(at))))

/* One kernel column tj of GROUPED_DIRECT at stride S (1 or 2): its masks, then the rows in range. At
 * stride 2 a vector's 16 inputs are the even ones of 32 consecutive, through one permute. */
#define DIRECT_COLUMN(OB, NV, S)                                                                            \
    {                                                                                                      \
        const int x = S * x0 + tj - j->cv->pw; /* the input column of vector 0's lane 0 */                  \
        __mmask16 m[NV], m2[NV];                                                                           \
        for (int v = 0; v < NV; v++) {                                                                     \
            m[v] = ROW_MASK(x + 16 * S * v);                                                               \
            m2[v] = S == 2 ? ROW_MASK(x + 32 * v + 16) : 0;                                                \
        }                                                                                                  \
        const float *src0 = in + x, *w0 = w + tj * og;                                                     \
        for (int i = 0; i < n; i++) {                                                                      \
            const float *src = src0 + rows[i], *wi = w0 + wofs[i];                                         \
            __m512 xv[NV];                                                                                 \
            for (int v = 0; v < NV; v++)                                                                   \
                xv[v] = S == 1 ? _mm512_maskz_loadu_ps(m[v], src + 16 * v) : ck_even16(src + 32 * v, m[v], m2[v]); \
            for (int r = 0; r < OB; r++) {                                                                 \
                const __m512 wv = _mm512_set1_ps(wi[r]);                                                   \
                for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(wv, xv[v], acc[r][v]);            \
            }                                                                                              \
        }                                                                                                  \
    }

/* The same block at stride S from the input itself, without the copy: per kernel column, the vectors are
 * loaded masked to the row's valid columns (the padding reads as zero), over the `n` input rows in range
 * (rows[i]: offset of channel c's row from `in`; wofs[i]: (c * kh + ti) * kw * og, its weights). Steps
 * of rows in the padding, which would add w * 0 and change no sum, are left out. The sums run over
 * (kernel column, channel, kernel row) rather than the copy's (channel, kernel row, kernel column), so
 * they round differently from the copy's. The copy had cost as much as a third of ResNeXt's 56 x 56 and
 * 28 x 28 layers: the input is read from the caches once, where the copy read it and wrote it (74 KiB a
 * 56 x 56 group, past L1) for the blocks to read again. The column loop is unrolled for 3x3 kernels:
 * nested, it made clang copy 7 accumulators a step at 16 outputs. */
#define GROUPED_DIRECT(OB, NV, S)                                                                           \
    CK_AVX512 static void direct_##OB##x##NV##s##S(const grouped_job *j, const float *in, const int *rows,  \
                                                   const int *wofs, int n, const float *w, int oy, int x0,  \
                                                   float *out, const float *res, const float *bias, int o0) { \
        const int og = j->og, kw = j->cv->kw, width = j->io->w;                                             \
        __m512 acc[OB][NV];                                                                                \
        for (int r = 0; r < OB; r++)                                                                       \
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();                                  \
        if (kw == 3) {                                                                                     \
            _Pragma("clang loop unroll(full)") for (int tj = 0; tj < 3; tj++)                               \
                DIRECT_COLUMN(OB, NV, S)                                                                   \
        } else {                                                                                           \
            for (int tj = 0; tj < kw; tj++) DIRECT_COLUMN(OB, NV, S)                                       \
        }                                                                                                  \
        store_block(j, &acc[0][0], OB, NV, oy, x0, out, res, bias, o0);                                    \
    }

GROUPED_BLOCK(16, 1)
GROUPED_BLOCK(8, 2)
GROUPED_BLOCK(4, 4)
GROUPED_DIRECT(16, 1, 1)
GROUPED_DIRECT(8, 2, 1)
GROUPED_DIRECT(4, 4, 1)
GROUPED_DIRECT(16, 1, 2)
GROUPED_DIRECT(8, 2, 2)
GROUPED_DIRECT(4, 4, 2)

/* Outputs in the vectors. Rows of at most 8 columns (ResNeXt's last stage: 7 x 7) would fill less than
 * half of a 16-column vector; rows of 9 to 16 columns at stride 2 (its third stage) would need the
 * column-phase copy. There one tile is one output row of NP positions x 16 W outputs (W weight vectors),
 * each (channel, tap) step one input value broadcast per position (positions a stride apart) times the W
 * weight vectors. Every output is the same chain of fused multiply-adds over the steps as in the row
 * blocks, so the floats are the same. The sums reach the NCHW output through a small buffer, one output
 * channel's NP positions at a time, with the row blocks' epilogue. */
#define GROUPED_CV(NP, W)                                                                                   \
    CK_AVX512 static void cv##W##_##NP(const grouped_job *j, const float *base, const int *offs, int steps,  \
                                       const float *w, int oy, float *out, const float *res,                \
                                       const float *bias, int o0) {                                         \
        __m512 acc[NP][W];                                                                                 \
        _Pragma("clang loop unroll(full)") for (int p = 0; p < NP; p++)                                     \
            _Pragma("clang loop unroll(full)") for (int v = 0; v < W; v++) acc[p][v] = _mm512_setzero_ps(); \
        const int og = j->og, sx = j->cv->sw;                                                              \
        for (int st = 0; st < steps; st++, w += og) {                                                      \
            const float *src = base + offs[st];                                                            \
            __m512 wv[W];                                                                                  \
            _Pragma("clang loop unroll(full)") for (int v = 0; v < W; v++) wv[v] = _mm512_loadu_ps(w + 16 * v); \
            _Pragma("clang loop unroll(full)") for (int p = 0; p < NP; p++) {                              \
                const __m512 x = _mm512_set1_ps(src[p * sx]);                                              \
                _Pragma("clang loop unroll(full)") for (int v = 0; v < W; v++)                              \
                    acc[p][v] = _mm512_fmadd_ps(x, wv[v], acc[p][v]);                                      \
            }                                                                                              \
        }                                                                                                  \
        cv_store(j, &acc[0][0], NP, 16 * W, oy, out, res, bias, o0);                                       \
    }

/* Stores a tile of np positions x `outputs` (16 or 32) sums, acc[position][outputs / 16]. */
CK_AVX512 static void cv_store(const grouped_job *j, const __m512 *acc, int np, int outputs, int oy, float *out,
                               const float *res, const float *bias, int o0) {
    const ck_conv_io *io = j->io;
    float t[256] __attribute__((aligned(64))); /* [position][outputs]: at most 8 x 32 or 16 x 16 */
    for (int k = 0; k < np * outputs / 16; k++) _mm512_store_ps(t + 16 * k, acc[k]);
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(outputs));
    const __mmask16 m = ck_lanes16(np);
    const size_t plane = (size_t)io->oh * io->ow;
    for (int c = 0; c < outputs; c++)
        store_sums(j, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, t + c, 4), o0 + c,
                   (size_t)(o0 + c) * plane + (size_t)oy * io->ow, m, out, res, bias);
}

GROUPED_CV(1, 2)
GROUPED_CV(2, 2)
GROUPED_CV(3, 2)
GROUPED_CV(4, 2)
GROUPED_CV(5, 2)
GROUPED_CV(6, 2)
GROUPED_CV(7, 2)
GROUPED_CV(8, 2)
GROUPED_CV(9, 1)
GROUPED_CV(10, 1)
GROUPED_CV(11, 1)
GROUPED_CV(12, 1)
GROUPED_CV(13, 1)
GROUPED_CV(14, 1)
GROUPED_CV(15, 1)
GROUPED_CV(16, 1)

/* The row blocks of output rows [oy0, oy1) of image img, group g, from the input in place
 * (`in`: the group's first channel). */
CK_AVX512 static void direct_rows(const grouped_job *j, const float *in, int img, int g, int oy0, int oy1) {
    const ck_conv *cv = j->cv;
    const ck_conv_io *io = j->io;
    const int h = io->h, w = io->w, kh = cv->kh;
    float *out = io->out + (ptrdiff_t)img * io->out_batch_stride;
    const float *res = io->residual ? io->residual + (ptrdiff_t)img * io->residual_batch_stride : NULL;
    const float *wg = cv->packed + (size_t)g * j->og * j->ig * kh * cv->kw;
    const int step = j->step, xend = io->ow - j->tail;
    typedef void (*direct_fn)(const grouped_job *, const float *, const int *, const int *, int, const float *, int,
                              int, float *, const float *, const float *, int);
    static const direct_fn fns[2][3] = {{direct_16x1s1, direct_8x2s1, direct_4x4s1},
                                        {direct_16x1s2, direct_8x2s2, direct_4x4s2}};
    const direct_fn fn = fns[cv->sw - 1][j->ob == 16 ? 0 : j->ob == 8 ? 1 : 2], sixteen = fns[cv->sw - 1][0];
    int rows[CK_GROUPED_MAX_STEPS], wofs[CK_GROUPED_MAX_STEPS];
    for (int oy = oy0; oy < oy1; oy++) {
        /* the (channel, kernel row) pairs whose input row lies in the image */
        int n = 0;
        for (int c = 0; c < j->ig; c++)
            for (int ti = 0; ti < kh; ti++) {
                const int iy = oy * cv->sh + ti - cv->ph;
                if (iy < 0 || iy >= h) continue;
                rows[n] = (c * h + iy) * w;
                wofs[n++] = (c * kh + ti) * cv->kw * j->og;
            }
        for (int b = 0; b < j->og / j->ob; b++) {
            const float *wb = wg + (size_t)b * j->ob;
            const int o0 = g * j->og + b * j->ob;
            for (int x0 = 0; x0 < xend; x0 += step) fn(j, in, rows, wofs, n, wb, oy, x0, out, res, cv->bias, o0);
        }
        for (int b = 0; j->tail && b < j->og / 16; b++)
            sixteen(j, in, rows, wofs, n, wg + (size_t)b * 16, oy, xend, out, res, cv->bias, g * j->og + b * 16);
    }
}

CK_AVX512 static void grouped_task(void *context, int task, int worker) {
    (void)worker;
    const grouped_job *j = context;
    const ck_conv *cv = j->cv;
    const ck_conv_io *io = j->io;
    const int chunk = task % j->row_chunks;
    task /= j->row_chunks;
    const int g = task % cv->groups, img = task / cv->groups;
    const int s = j->split, h = io->h, w = io->w;
    const int oy0 = chunk * j->rows_per_chunk;
    int oy1 = oy0 + j->rows_per_chunk;
    if (oy1 > io->oh) oy1 = io->oh;
    if (oy0 >= oy1) return;
    /* zero-padded, phase-split copy of the padded rows this chunk reads: [c][row][phase][wq] */
    const float *in = io->in + (ptrdiff_t)img * io->in_batch_stride + (size_t)g * j->ig * h * w;
    if (j->direct) {
        direct_rows(j, in, img, g, oy0, oy1);
        return;
    }
    const int y0 = oy0 * cv->sh, rows = (oy1 - 1) * cv->sh + cv->kh - y0;
    float *pad = ck_scratch(1, (size_t)j->ig * rows * s * j->wq);
    /* per phase, the valid x: 0 <= x * s + ph - pw < w (computed once: the divisions cost more than a
     * 7-column row's copy) */
    int xlos[2], xhis[2];
    for (int ph = 0; ph < s; ph++) {
        const int off = ph - cv->pw;
        int xlo = off >= 0 ? 0 : (-off + s - 1) / s;
        int xhi = (w - 1 - off) >= 0 ? (w - 1 - off) / s + 1 : 0;
        if (xhi > j->wq) xhi = j->wq;
        if (xlo > xhi) xlo = xhi;
        xlos[ph] = xlo;
        xhis[ph] = xhi;
    }
    for (int c = 0; c < j->ig; c++) {
        for (int y = 0; y < rows; y++) {
            const int iy = y0 + y - cv->ph;
            for (int ph = 0; ph < s; ph++) {
                float *row = pad + (((size_t)c * rows + y) * s + ph) * j->wq;
                /* Rows are short (ResNeXt's 7 x 7 and 14 x 14: 9 and 16 floats): masked vector stores,
                 * not a memset or memcpy call per row, which had made the copy about a third of the
                 * layer. */
                if (iy < 0 || iy >= h) {
                    for (int x0 = 0; x0 < j->wq; x0 += 16)
                        _mm512_mask_storeu_ps(row + x0, ck_lanes16(j->wq - x0), _mm512_setzero_ps());
                    continue;
                }
                const float *src = in + ((size_t)c * h + iy) * w;
                const int off = ph - cv->pw, xlo = xlos[ph], xhi = xhis[ph];
                if (s == 1) {
                    /* row[x] = src[x + off] for xlo <= x < xhi, else 0; the first step's valid lanes
                     * start at xlo (the left padding): an expanding load reads from src + xlo + off */
                    for (int x0 = 0; x0 < j->wq; x0 += 16) {
                        const int a = xlo > x0 ? xlo : x0, b = xhi < x0 + 16 ? xhi : x0 + 16;
                        __m512 v = _mm512_setzero_ps();
                        if (a < b) {
                            const __mmask16 m = ck_lanes16(b - a);
                            v = a == x0 ? _mm512_maskz_loadu_ps(m, src + a + off)
                                        : _mm512_maskz_expandloadu_ps((__mmask16)(m << (a - x0)), src + a + off);
                        }
                        _mm512_mask_storeu_ps(row + x0, ck_lanes16(j->wq - x0), v);
                    }
                    continue;
                }
                for (int x = 0; x < xlo; x++) row[x] = 0.0f;
                if (s == 2) {
                    /* the even inputs, 16 per permute, nothing past the row's last input read */
                    ck_pack_even_avx512(src + 2 * xlo + off, 0, 1, xhi - xlo, row + xlo, 0);
                } else {
                    for (int x = xlo; x < xhi; x++) row[x] = src[x * s + off];
                }
                for (int x = xhi; x < j->wq; x++) row[x] = 0.0f;
            }
        }
    }
    float *out = io->out + (ptrdiff_t)img * io->out_batch_stride;
    const float *res = io->residual ? io->residual + (ptrdiff_t)img * io->residual_batch_stride : NULL;
    const float *wg = cv->packed + (size_t)g * j->og * j->ig * cv->kh * cv->kw;
    /* input offset of every (channel, tap) step, relative to the chunk's first output row */
    const size_t cstride = (size_t)rows * s * j->wq, rstride = (size_t)s * j->wq;
    const int steps = j->ig * cv->kh * cv->kw;
    int offs[CK_GROUPED_MAX_STEPS];
    for (int c = 0, st = 0; c < j->ig; c++)
        for (int ti = 0; ti < cv->kh; ti++)
            for (int tj = 0; tj < cv->kw; tj++) offs[st++] = (int)(c * cstride + ti * rstride) + j->toff[tj];
    if (j->cv_outputs) {
        typedef void (*cv_fn)(const grouped_job *, const float *, const int *, int, const float *, int, float *,
                              const float *, const float *, int);
        static const cv_fn cv32[8] = {cv2_1, cv2_2, cv2_3, cv2_4, cv2_5, cv2_6, cv2_7, cv2_8};
        static const cv_fn cv16[8] = {cv1_9, cv1_10, cv1_11, cv1_12, cv1_13, cv1_14, cv1_15, cv1_16};
        const cv_fn fn = j->cv_outputs == 32 ? cv32[io->ow - 1] : cv16[io->ow - 9];
        for (int b = 0; b < j->og / j->cv_outputs; b++)
            for (int oy = oy0; oy < oy1; oy++)
                fn(j, pad + (size_t)(oy - oy0) * cv->sh * rstride, offs, steps, wg + (size_t)b * j->cv_outputs, oy, out,
                   res, cv->bias, g * j->og + b * j->cv_outputs);
        return;
    }
    const int step = j->step, xend = io->ow - j->tail;
    for (int b = 0; b < j->og / j->ob; b++) {
        const float *wb = wg + (size_t)b * j->ob;
        const int o0 = g * j->og + b * j->ob;
        for (int oy = oy0; oy < oy1; oy++) {
            const float *base = pad + (size_t)(oy - oy0) * cv->sh * rstride;
            for (int x0 = 0; x0 < xend; x0 += step) {
                if (j->ob == 16) block_16x1(j, base, offs, steps, wb, oy, x0, out, res, cv->bias, o0);
                else if (j->ob == 8) block_8x2(j, base, offs, steps, wb, oy, x0, out, res, cv->bias, o0);
                else block_4x4(j, base, offs, steps, wb, oy, x0, out, res, cv->bias, o0);
            }
        }
    }
    for (int b = 0; j->tail && b < j->og / 16; b++)
        for (int oy = oy0; oy < oy1; oy++)
            block_16x1(j, pad + (size_t)(oy - oy0) * cv->sh * rstride, offs, steps, wg + (size_t)b * 16, oy, xend, out,
                       res, cv->bias, g * j->og + b * 16);
}

void ck_grouped_forward(const ck_conv *cv, const ck_conv_io *io) {
    grouped_job j;
    j.cv = cv;
    j.io = io;
    j.og = cv->out_channels / cv->groups;
    j.ig = cv->in_channels / cv->groups;
    j.ob = ck_grouped_block(cv->groups, cv->out_channels, io->ow);
    /* Outputs in the vectors: 32 outputs on rows of at most 8 columns; 16 outputs on rows of
     * 9 to 16 columns at stride 2, where the row blocks need the column-phase copy (ResNeXt's stride-2
     * 512 -> 512 from 28 x 28 at two threads: best of 1000 0.278 -> 0.231 ms). At stride 1 the row
     * blocks stay: their stores are plain, against 16 gathers per output row here (0.166 against 0.183). */
    j.cv_outputs = io->ow <= 8 && j.og % 32 == 0                               ? 32
                   : io->ow > 8 && io->ow <= 16 && j.og % 16 == 0 && cv->sw == 2 ? 16
                                                                               : 0;
    j.step = j.ob == 16 ? 16 : j.ob == 8 ? 32 : 64;
    /* A last run of at most 16 columns after 32-column blocks (the stem: 112 = 3 x 32 + 16) goes through
     * 16-output blocks of one vector instead of half-empty 32-column ones, when the outputs allow. */
    j.tail = j.ob == 8 && j.og % 16 == 0 && io->ow % 32 != 0 && io->ow % 32 <= 16 ? io->ow % 32 : 0;
    /* columns per phase row: what the last vector of the last block may read, rounded up (so that the
     * rows stay aligned for the blocks' vector loads) */
    const int xs = (io->ow + j.step - 1) / j.step * j.step;
    j.wq = xs + (cv->kw - 1) / cv->sw + 1;
    j.wq = (j.wq + 15) / 16 * 16;
    j.split = cv->sw;
    /* Stride 1, and stride 2 with 3x3 kernels, read the input in place (GROUPED_DIRECT) unless the blocks
     * are 16 outputs over one vector
     * (rows of at most 16 columns: ResNeXt's 14 x 14), whose steps are 16 broadcast weights and one
     * vector load: there every row of the copy starts a cache line, and the input's 14-column rows split
     * most loads across two. Measured at two threads, batch 8 (batch 1): 128 -> 128 at 56 x 56 in 32
     * groups 1.58 against 2.07 ms (0.18 against 0.22), 256 at 28 x 28 1.27 against 1.48 (0.157 against
     * 0.175); 512 at 14 x 14 1.32-1.44 against 1.24-1.26 (one thread 3.0 against 2.5). Stride 2, 256 from
     * 56 x 56 onto 28 x 28: 1.66-1.75 against 3.23-3.29 ms (0.19 against 0.32): the phase-split copy had
     * been two thirds of the layer. The stem (7x7) keeps the copy, which its 147 steps a block amortize. */
    j.direct = (cv->sw == 1 || (cv->sw == 2 && cv->kw == 3)) && !j.cv_outputs && j.ob != 16;
    if (j.cv_outputs) {
        /* Outputs in the vectors broadcast one input value per position and load no rows as vectors: the
         * copy is the plain padded rows, just as wide as the row's windows, without column phases, and
         * the positions step by the stride. The phase-split copy, 32 floats per phase row for 8 read,
         * had cost as much as the arithmetic: ResNeXt's stride-2 1024 -> 1024 from 14 x 14 at two
         * threads went from 0.41-0.46 to 0.29 ms (ONNX Runtime: 0.17). */
        j.split = 1;
        j.wq = (io->ow - 1) * cv->sw + cv->kw;
    }
    for (int tj = 0; tj < cv->kw && tj < 16; tj++) j.toff[tj] = (tj % j.split) * j.wq + tj / j.split;
    /* Split rows when there are too few (image, group) pairs to keep every thread busy. */
    const int threads = ck_threads();
    const int pairs = io->batch * cv->groups;
    j.row_chunks = 1;
    if (threads > 1 && pairs < 4 * threads) {
        j.row_chunks = (4 * threads + pairs - 1) / pairs;
        if (j.row_chunks > io->oh) j.row_chunks = io->oh;
    }
    j.rows_per_chunk = (io->oh + j.row_chunks - 1) / j.row_chunks;
    j.row_chunks = (io->oh + j.rows_per_chunk - 1) / j.rows_per_chunk;
    ck_parallel_for(pairs * j.row_chunks, grouped_task, &j);
}
#else
void ck_grouped_forward(const ck_conv *cv, const ck_conv_io *io) { (void)cv; (void)io; }
#endif

int ck_grouped_supported(int groups, int out_channels, int in_channels, int kh, int kw, int sh, int sw, int dh,
                         int dw) {
#if defined(__x86_64__)
    /* groups > 1, or a plain convolution with so few input channels (a stem) that packing would dominate */
    const int few_inputs = groups == 1 && in_channels <= 4 && kh * kw >= 9;
    return ck_level() >= CK_LEVEL_AVX512 && (groups > 1 || few_inputs) && (out_channels / groups) % 4 == 0 && kw <= 16 && sh == sw &&
           (in_channels / groups) * kh * kw <= CK_GROUPED_MAX_STEPS &&
           sh >= 1 && sh <= 2 && dh == 1 && dw == 1;
#else
    (void)groups; (void)out_channels; (void)in_channels; (void)kh; (void)kw; (void)sh; (void)sw; (void)dh; (void)dw;
    return 0;
#endif
}
