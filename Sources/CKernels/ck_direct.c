/* Direct convolution in a channel-blocked layout, for convolutions whose GEMM lowering spends much of
 * its time packing (im2col of a 3x3 kernel copies every input value 9 times, in runs as short as a 7- or
 * 14-wide row) or pads small planes to whole panels (7 x 7 = 49 columns fill 64). AVX-512F only; other
 * levels and geometries run through the packed GEMM.
 *
 * Per pass over a few images of the batch (`direct_pass`):
 *   1. the input is copied once into a zero-padded, channel-blocked buffer Xp[image][c / 16][hp][wp][16]
 *      (with the input prologue x -> max(x * s + t, 0) applied to real values; padding stays 0), 16
 *      channels x 16 columns at a time through a register transpose;
 *   2. per task (a group of OCB x 16 output channels and a chunk of output positions over the pass),
 *      per block of 16 input channels: every tile of NP output positions accumulates, in NP x OCB zmm
 *      registers, the block's 16 channels x kh x kw taps (weight vectors of 16 output channels,
 *      broadcast input values) on top of the previous blocks' sums kept in Y[group][position][OCB * 16];
 *      the block's weights (16 x kh x kw x OCB x 16 floats, 36 KiB for a 3x3 kernel and OCB = 4) stay
 *      in L1 while the tiles go by;
 *   3. the task stores its sums to the NCHW output, 16 positions x 16 channels at a time through the
 *      same transpose: fmaf(sum, scale, bias), then the residual, then ReLU (the micro-kernels' epilogue
 *      arithmetic).
 * Weights are packed once as [group][c / 16][kh][kw][16 inputs][OCB * 16 outputs], an exact reordering.
 * Every output's sum runs over (input block, kh, kw, input) in the same order at any thread count.
 * 1x1 convolutions stay on the packed GEMM: a pass over 16 input channels is only 16 steps there, so the
 * sums are reloaded and stored every 16 steps (measured, with the earlier scalar copy and store, 2x
 * slower at 56 x 56, equal at 14 x 14 and 7 x 7 at batch 1, slower at batch 8). */
#include "ck_internal.h"

#include <string.h>

/* Output channels per group: OCB blocks of 16; positions per tile: NP (OCB x NP = 24 accumulators). */
static int direct_ocb(int out_channels) { return out_channels % 64 == 0 ? 4 : 2; }

int ck_direct_group(int out_channels) { return direct_ocb(out_channels) * 16; }

int ck_direct_supported(int groups, int out_channels, int in_channels, int kh, int kw, int sh, int sw, int dh,
                        int dw) {
#if defined(__x86_64__)
    return ck_level() >= CK_LEVEL_AVX512 && groups == 1 && in_channels % 16 == 0 && out_channels % 32 == 0 &&
           kh * kw >= 9 && kh <= 7 && kw <= 7 && sh == sw && sh >= 1 && sh <= 2 && dh == 1 && dw == 1;
#else
    (void)groups; (void)out_channels; (void)in_channels; (void)kh; (void)kw; (void)sh; (void)sw; (void)dh; (void)dw;
    return 0;
#endif
}

size_t ck_direct_packed_count(int out_channels, int in_channels, int kh, int kw) {
    return (size_t)out_channels * (size_t)in_channels * (size_t)kh * (size_t)kw;
}

typedef struct direct_pack_job {
    const float *src;
    float *dst;
    int out_channels, in_channels, kh, kw, g, icb_n;
    int unpack;
} direct_pack_job;

/* One (output group, input block): its 16 x kh x kw x g packed floats, from or to OIHW. */
static void direct_pack_task(void *context, int task, int worker) {
    (void)worker;
    const direct_pack_job *j = context;
    const int grp = task / j->icb_n, cb = task % j->icb_n;
    const int taps = j->kh * j->kw;
    const size_t per_o = (size_t)j->in_channels * taps;
    const size_t base = (size_t)task * taps * 16 * j->g;
    for (int t = 0; t < taps; t++)
        for (int c = 0; c < 16; c++)
            for (int oc = 0; oc < j->g; oc++) {
                const size_t packed = base + ((size_t)t * 16 + c) * j->g + oc;
                const size_t oihw = (size_t)(grp * j->g + oc) * per_o + (size_t)(cb * 16 + c) * taps + t;
                if (j->unpack) j->dst[oihw] = j->src[packed];
                else j->dst[packed] = j->src[oihw];
            }
}

static void direct_pack_run(const float *src, float *dst, int out_channels, int in_channels, int kh, int kw, int unpack) {
    direct_pack_job j = {src, dst, out_channels, in_channels, kh, kw, direct_ocb(out_channels) * 16, in_channels / 16, unpack};
    ck_parallel_for(out_channels / j.g * j.icb_n, direct_pack_task, &j);
}

void ck_direct_pack(const float *weight, int out_channels, int in_channels, int kh, int kw, float *packed) {
    direct_pack_run(weight, packed, out_channels, in_channels, kh, kw, 0);
}

void ck_direct_unpack(const float *packed, int out_channels, int in_channels, int kh, int kw, float *weight) {
    direct_pack_run(packed, weight, out_channels, in_channels, kh, kw, 1);
}

#if defined(__x86_64__)
#include <immintrin.h>
#define CK_AVX512 __attribute__((target("avx512f,avx2,fma")))

typedef struct direct_job {
    const ck_conv *cv;
    const ck_conv_io *io;
    int ocb, g;              /* blocks of 16 outputs per group, outputs per group (ocb * 16) */
    int groups_n, icb_n;     /* output groups, input blocks */
    int hp, wp;              /* padded input size */
    size_t xp_image;         /* floats per image of Xp */
    int plane, positions;    /* output positions per image, over the pass's images */
    int np, tiles, pchunks;  /* positions per tile, tiles over the pass, chunks of tiles */
    float *xp;               /* padded blocked input */
    float *y;                /* sums [group][position][g] */
} direct_job;

/* Transposes 16 rows of 16 floats: on return r[x] holds (row 0 ... row 15)[x]. */
CK_AVX512 static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* per group of 4 rows q: u[4q + m] holds, in 128-bit lane k, column 4k + m of rows 4q ... 4q + 3 */
    for (int q = 0; q < 4; q++) {
        const __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 2]);
        const __m512d c = _mm512_castps_pd(t[4 * q + 1]), d = _mm512_castps_pd(t[4 * q + 3]);
        u[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int m = 0; m < 4; m++) {
        const __m512 p = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), q = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
        const __m512 p2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
        const __m512 q2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
        r[m] = _mm512_shuffle_f32x4(p, p2, 0x88);
        r[8 + m] = _mm512_shuffle_f32x4(p, p2, 0xDD);
        r[4 + m] = _mm512_shuffle_f32x4(q, q2, 0x88);
        r[12 + m] = _mm512_shuffle_f32x4(q, q2, 0xDD);
    }
}

/* Step 1, one task per (image, input block): Xp[image][block] with zero borders. The 16 channel planes
 * are read 16 columns at a time and transposed in registers; the prologue x -> max(x * s + t, 0) is a
 * multiply then an add, as in the GEMM's packing. */
CK_AVX512 static void direct_input_task(void *context, int task, int worker) {
    (void)worker;
    const direct_job *j = context;
    const ck_conv_io *io = j->io;
    const ck_conv *cv = j->cv;
    const int img = task / j->icb_n, cb = task % j->icb_n;
    const int h = io->h, w = io->w;
    float *dst = j->xp + (size_t)img * j->xp_image + (size_t)cb * j->hp * j->wp * 16;
    memset(dst, 0, (size_t)j->hp * j->wp * 16 * sizeof(float));
    const float *src = io->in + (ptrdiff_t)img * io->in_batch_stride + (size_t)cb * 16 * h * w;
    const int pro = io->in_scale != NULL;
    __m512 sv[16], tv[16];
    for (int c = 0; c < 16; c++) {
        sv[c] = _mm512_set1_ps(pro ? io->in_scale[cb * 16 + c] : 1.0f);
        tv[c] = _mm512_set1_ps(pro ? io->in_shift[cb * 16 + c] : 0.0f);
    }
    const size_t inplane = (size_t)h * w;
    for (int y = 0; y < h; y++) {
        float *row = dst + ((size_t)(y + cv->ph) * j->wp + cv->pw) * 16;
        const float *in = src + (size_t)y * w;
        for (int x0 = 0; x0 < w; x0 += 16) {
            const int n = w - x0 < 16 ? w - x0 : 16;
            const __mmask16 m = n == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int c = 0; c < 16; c++) {
                __m512 v = _mm512_maskz_loadu_ps(m, in + c * inplane + x0);
                if (pro) v = _mm512_max_ps(_mm512_setzero_ps(), _mm512_add_ps(_mm512_mul_ps(v, sv[c]), tv[c]));
                r[c] = v;
            }
            transpose16(r);
            for (int x = 0; x < n; x++) _mm512_storeu_ps(row + (size_t)(x0 + x) * 16, r[x]);
        }
    }
}

#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 32")
#endif

/* One tile: NP positions (base pointers px into Xp at block 0, tap (0, 0)) x OCB blocks of 16 outputs,
 * over input block cb, adding to (or, for block 0, starting) the sums at ys (position p at
 * ys + p * OCB * 16). */
#define DIRECT_TILE(OCB, NP)                                                                                \
    CK_AVX512 static void tile_##OCB##_##NP(const direct_job *j, int grp, int cb, const float *const *px,  \
                                            float *ys) {                                                   \
        const ck_conv *cv = j->cv;                                                                         \
        const int kh = cv->kh, kw = cv->kw;                                                                \
        __m512 acc[NP][OCB];                                                                               \
        if (cb == 0) {                                                                                     \
            for (int p = 0; p < NP; p++)                                                                   \
                for (int b = 0; b < OCB; b++) acc[p][b] = _mm512_setzero_ps();                             \
        } else {                                                                                           \
            for (int p = 0; p < NP; p++)                                                                   \
                for (int b = 0; b < OCB; b++) acc[p][b] = _mm512_loadu_ps(ys + (size_t)p * OCB * 16 + b * 16); \
        }                                                                                                  \
        const size_t blockoff = (size_t)cb * j->hp * j->wp * 16;                                           \
        const float *wb = cv->packed + ((size_t)grp * j->icb_n + cb) * kh * kw * 16 * OCB * 16;            \
        for (int y = 0; y < kh; y++) {                                                                     \
            for (int x = 0; x < kw; x++) {                                                                 \
                const size_t off = blockoff + ((size_t)y * j->wp + x) * 16;                                \
                const float *wt = wb + ((size_t)y * kw + x) * 16 * OCB * 16;                               \
                for (int c = 0; c < 16; c++) {                                                             \
                    __m512 wv[OCB];                                                                        \
                    UNROLL for (int b = 0; b < OCB; b++) wv[b] = _mm512_load_ps(wt + c * OCB * 16 + b * 16); \
                    UNROLL for (int p = 0; p < NP; p++) {                                                  \
                        const __m512 xv = _mm512_set1_ps(px[p][off + c]);                                  \
                        UNROLL for (int b = 0; b < OCB; b++) acc[p][b] = _mm512_fmadd_ps(xv, wv[b], acc[p][b]); \
                    }                                                                                      \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
        for (int p = 0; p < NP; p++)                                                                       \
            for (int b = 0; b < OCB; b++) _mm512_storeu_ps(ys + (size_t)p * OCB * 16 + b * 16, acc[p][b]); \
    }

DIRECT_TILE(4, 6)
DIRECT_TILE(2, 12)
/* Last tiles with fewer positions (49 = 8 x 6 + 1 at 7 x 7, batch 1): the same sums, no wasted ones. */
DIRECT_TILE(4, 1)
DIRECT_TILE(4, 2)
DIRECT_TILE(4, 3)
DIRECT_TILE(4, 4)
DIRECT_TILE(4, 5)

/* The tiles [t0, t1) of a chunk. */
static void chunk_tiles(const direct_job *j, int chunk, int *t0, int *t1) {
    *t0 = (int)((long)chunk * j->tiles / j->pchunks);
    *t1 = (int)((long)(chunk + 1) * j->tiles / j->pchunks);
}

/* Xp address of position pos (over the pass) at block 0, tap (0, 0). */
static const float *position_base(const direct_job *j, int pos) {
    const ck_conv_io *io = j->io;
    const int img = pos / j->plane, r = pos % j->plane;
    const int oy = r / io->ow, ox = r % io->ow;
    return j->xp + (size_t)img * j->xp_image + ((size_t)oy * j->cv->sh * j->wp + (size_t)ox * j->cv->sw) * 16;
}

/* Step 2-3, one task per (output group, chunk of tiles). */
CK_AVX512 static void direct_task(void *context, int task, int worker) {
    (void)worker;
    const direct_job *j = context;
    const ck_conv *cv = j->cv;
    const ck_conv_io *io = j->io;
    const int grp = task % j->groups_n, chunk = task / j->groups_n;
    int t0, t1;
    chunk_tiles(j, chunk, &t0, &t1);
    if (t0 >= t1) return;
    float *ygrp = j->y + (size_t)grp * j->positions * j->g;
    /* Scratch for a tile whose last positions lie past the end (32-output groups): computed on repeated
     * positions and dropped. */
    float spill[24 * 64] __attribute__((aligned(64)));
    /* The next input block's weights (36 KiB for a 3x3 kernel and 64 outputs) are fetched into L2 a
     * slice per tile while this block's tiles run: at 7x7 a block serves only 9 tiles, and its first
     * tile would otherwise wait on memory. */
    const size_t block = (size_t)cv->kh * cv->kw * 16 * j->g;
    const int lines = (int)(block / 16), per_tile = (lines + (t1 - t0) - 1) / (t1 - t0);
    for (int cb = 0; cb < j->icb_n; cb++) {
        const float *next = cb + 1 < j->icb_n ? cv->packed + ((size_t)grp * j->icb_n + cb + 1) * block : NULL;
        for (int t = t0; t < t1; t++) {
            if (next)
                for (int l = (t - t0) * per_tile; l < (t - t0 + 1) * per_tile && l < lines; l++)
                    _mm_prefetch((const char *)(next + (size_t)l * 16), _MM_HINT_T1);
            const int p0 = t * j->np;
            const int valid = j->positions - p0 < j->np ? j->positions - p0 : j->np;
            const float *px[24];
            for (int p = 0; p < j->np; p++) px[p] = position_base(j, p0 + (p < valid ? p : valid - 1));
            float *ys = ygrp + (size_t)p0 * j->g;
            if (valid < j->np && j->ocb == 4) {
                static void (*const short_tile[5])(const direct_job *, int, int, const float *const *, float *) = {
                    tile_4_1, tile_4_2, tile_4_3, tile_4_4, tile_4_5};
                short_tile[valid - 1](j, grp, cb, px, ys);
                continue;
            }
            if (valid < j->np) {
                /* keep the valid sums in place: copy them into the spill tile, run, copy back */
                memcpy(spill, ys, (size_t)valid * j->g * sizeof(float));
                ys = spill;
            }
            if (j->ocb == 4) tile_4_6(j, grp, cb, px, ys);
            else tile_2_12(j, grp, cb, px, ys);
            if (valid < j->np) memcpy(ygrp + (size_t)p0 * j->g, spill, (size_t)valid * j->g * sizeof(float));
        }
    }
    /* Store: per run of positions within one image, per 16 positions x 16 channels transposed in
     * registers, fmaf(sum, scale, bias), then the residual, then ReLU. */
    const int pend = t1 * j->np < j->positions ? t1 * j->np : j->positions;
    int pos = t0 * j->np;
    while (pos < pend) {
        const int img = pos / j->plane, r0 = pos % j->plane;
        int run = j->plane - r0;
        if (run > pend - pos) run = pend - pos;
        for (int x0 = 0; x0 < run; x0 += 16) {
            const int n = run - x0 < 16 ? run - x0 : 16;
            const __mmask16 m = n == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
            const float *src = ygrp + (size_t)(pos + x0) * j->g;
            for (int cb = 0; cb < j->ocb; cb++) {
                __m512 v[16];
                for (int x = 0; x < 16; x++)
                    v[x] = x < n ? _mm512_loadu_ps(src + (size_t)x * j->g + cb * 16) : _mm512_setzero_ps();
                transpose16(v);
                for (int c = 0; c < 16; c++) {
                    const int o = grp * j->g + cb * 16 + c;
                    const size_t at = (size_t)o * j->plane + r0 + x0;
                    __m512 y = _mm512_fmadd_ps(v[c], _mm512_set1_ps(cv->scale ? cv->scale[o] : 1.0f),
                                               _mm512_set1_ps(cv->bias ? cv->bias[o] : 0.0f));
                    if (io->residual)
                        y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, io->residual + (ptrdiff_t)img * io->residual_batch_stride + at));
                    if (io->relu) y = _mm512_max_ps(_mm512_setzero_ps(), y);
                    _mm512_mask_storeu_ps(io->out + (ptrdiff_t)img * io->out_batch_stride + at, m, y);
                }
            }
        }
        pos += run;
    }
}

/* Images per pass: as many as keep the pass's padded input and sums within this many floats (2 MiB
 * per 512 Ki floats), at least one. A whole batch at once held both for every image (ResNet-50's stride-2
 * 3x3 layer at batch 8: 13 MiB of padded input and 6 MiB of sums beside the activations); a pass of a
 * few images gives the same sums and its buffers stay in the caches. */
enum { DIRECT_PASS_FLOATS = 512 * 1024 };

/* One pass over `io->batch` images (all of `io`'s pointers at its first image). */
static void direct_pass(direct_job *j, const ck_conv_io *io) {
    j->io = io;
    j->positions = io->batch * j->plane;
    j->tiles = (j->positions + j->np - 1) / j->np;
    /* About four tasks per thread, their count a multiple of the thread count. */
    const int threads = ck_threads();
    j->pchunks = 1;
    if (threads > 1) {
        while ((long)j->groups_n * j->pchunks < 4L * threads && j->pchunks < j->tiles) j->pchunks++;
        while (((long)j->groups_n * j->pchunks) % threads != 0 && j->pchunks < j->tiles) j->pchunks++;
    }
    ck_parallel_for(io->batch * j->icb_n, direct_input_task, j);
    ck_parallel_for(j->groups_n * j->pchunks, direct_task, j);
}

void ck_direct_forward(const ck_conv *cv, const ck_conv_io *io) {
    direct_job j;
    memset(&j, 0, sizeof j);
    j.cv = cv;
    if (io->batch <= 0 || io->oh <= 0 || io->ow <= 0) return;
    j.ocb = direct_ocb(cv->out_channels);
    j.g = j.ocb * 16;
    j.np = 24 / j.ocb;
    j.groups_n = cv->out_channels / j.g;
    j.icb_n = cv->in_channels / 16;
    /* Padded so that every tap of every output position lies inside. */
    j.hp = (io->oh - 1) * cv->sh + cv->kh;
    j.wp = (io->ow - 1) * cv->sw + cv->kw;
    if (j.hp < io->h + cv->ph) j.hp = io->h + cv->ph;
    if (j.wp < io->w + cv->pw) j.wp = io->w + cv->pw;
    j.xp_image = (size_t)j.icb_n * j.hp * j.wp * 16;
    j.plane = io->oh * io->ow;
    const size_t per_image = j.xp_image + (size_t)j.plane * cv->out_channels;
    int pass = (int)(DIRECT_PASS_FLOATS / per_image);
    if (pass < 1) pass = 1;
    if (pass > io->batch) pass = io->batch;
    j.xp = ck_scratch(3, (size_t)pass * j.xp_image);
    j.y = ck_scratch(1, (size_t)pass * j.plane * cv->out_channels);
    for (int img = 0; img < io->batch; img += pass) {
        ck_conv_io part = *io;
        part.batch = io->batch - img < pass ? io->batch - img : pass;
        part.in = io->in + (ptrdiff_t)img * io->in_batch_stride;
        part.out = io->out + (ptrdiff_t)img * io->out_batch_stride;
        if (io->residual) part.residual = io->residual + (ptrdiff_t)img * io->residual_batch_stride;
        direct_pass(&j, &part);
    }
}
#else
void ck_direct_forward(const ck_conv *cv, const ck_conv_io *io) { (void)cv; (void)io; }
#endif
