/* Direct convolution in a channel-blocked layout, for convolutions whose GEMM lowering spends much of
 * its time packing (im2col of a 3x3 kernel copies every input value 9 times, in runs as short as a 7- or
 * 14-wide row) or pads small planes to whole panels (7 x 7 = 49 columns fill 64). AVX-512F only; other
 * levels and geometries run through the packed GEMM.
 *
 * Per call:
 *   1. the input is copied once into a zero-padded, channel-blocked buffer Xp[image][c / 16][hp][wp][16]
 *      (with the input prologue x -> max(x * s + t, 0) applied to real values; padding stays 0);
 *   2. per task (a group of OCB x 16 output channels and a chunk of output positions over the batch),
 *      per block of 16 input channels: every tile of NP output positions accumulates, in NP x OCB zmm
 *      registers, the block's 16 channels x kh x kw taps (weight vectors of 16 output channels,
 *      broadcast input values) on top of the previous blocks' sums kept in Y[group][position][OCB * 16];
 *      the block's weights (16 x kh x kw x OCB x 16 floats, 36 KiB for a 3x3 kernel and OCB = 4) stay
 *      in L1 while the tiles go by;
 *   3. the task stores its sums to the NCHW output: fmaf(sum, scale, bias), then the residual, then ReLU
 *      (the micro-kernels' epilogue arithmetic).
 * Weights are packed once as [group][c / 16][kh][kw][16 inputs][OCB * 16 outputs], an exact reordering.
 * Every output's sum runs over (input block, kh, kw, input) in the same order at any thread count.
 * 1x1 convolutions stay on the packed GEMM: there the copy into the blocked layout and the strided store
 * cost as much as the GEMM's packing (measured 2x slower at 56 x 56, equal at 14 x 14 and 7 x 7 at
 * batch 1, slower at batch 8). */
#include "ck_internal.h"

#include <math.h>
#include <string.h>

/* Output channels per group: OCB blocks of 16; positions per tile: NP (OCB x NP = 24 accumulators). */
static int direct_ocb(int out_channels) { return out_channels % 64 == 0 ? 4 : 2; }

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
    int plane, positions;    /* output positions per image, over the batch */
    int np, tiles, pchunks;  /* positions per tile, tiles over the batch, chunks of tiles */
    float *xp;               /* padded blocked input */
    float *y;                /* sums [group][position][g] */
} direct_job;

/* Step 1, one task per (image, input block): Xp[image][block] with zero borders. */
static void direct_input_task(void *context, int task, int worker) {
    (void)worker;
    const direct_job *j = context;
    const ck_conv_io *io = j->io;
    const ck_conv *cv = j->cv;
    const int img = task / j->icb_n, cb = task % j->icb_n;
    const int h = io->h, w = io->w;
    float *dst = j->xp + (size_t)img * j->xp_image + (size_t)cb * j->hp * j->wp * 16;
    memset(dst, 0, (size_t)j->hp * j->wp * 16 * sizeof(float));
    const float *src = io->in + (ptrdiff_t)img * io->in_batch_stride + (size_t)cb * 16 * h * w;
    for (int c = 0; c < 16; c++) {
        const float *plane = src + (size_t)c * h * w;
        const int ch = cb * 16 + c;
        const int pro = io->in_scale != NULL;
        const float s = pro ? io->in_scale[ch] : 1.0f, t = pro ? io->in_shift[ch] : 0.0f;
        for (int y = 0; y < h; y++) {
            float *row = dst + ((size_t)(y + cv->ph) * j->wp + cv->pw) * 16 + c;
            const float *in = plane + (size_t)y * w;
            if (pro) {
                for (int x = 0; x < w; x++) {
                    float v = in[x] * s + t;
                    row[(size_t)x * 16] = v < 0 ? 0 : v;
                }
            } else {
                for (int x = 0; x < w; x++) row[(size_t)x * 16] = in[x];
            }
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

/* The tiles [t0, t1) of a chunk. */
static void chunk_tiles(const direct_job *j, int chunk, int *t0, int *t1) {
    *t0 = (int)((long)chunk * j->tiles / j->pchunks);
    *t1 = (int)((long)(chunk + 1) * j->tiles / j->pchunks);
}

/* Xp address of position pos (over the batch) at block 0, tap (0, 0). */
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
    /* Scratch for a tile whose last positions lie past the end: computed on repeated positions and
     * dropped. */
    float spill[24 * 64] __attribute__((aligned(64)));
    for (int cb = 0; cb < j->icb_n; cb++) {
        for (int t = t0; t < t1; t++) {
            const int p0 = t * j->np;
            const int valid = j->positions - p0 < j->np ? j->positions - p0 : j->np;
            const float *px[24];
            for (int p = 0; p < j->np; p++) px[p] = position_base(j, p0 + (p < valid ? p : valid - 1));
            float *ys = ygrp + (size_t)p0 * j->g;
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
    /* Store: per output channel of the group, per run of positions within one image. */
    const int pend = t1 * j->np < j->positions ? t1 * j->np : j->positions;
    const int pstart = t0 * j->np;
    for (int oc = 0; oc < j->g; oc++) {
        const int o = grp * j->g + oc;
        const float sc = cv->scale ? cv->scale[o] : 1.0f, bi = cv->bias ? cv->bias[o] : 0.0f;
        int pos = pstart;
        while (pos < pend) {
            const int img = pos / j->plane, r = pos % j->plane;
            int run = j->plane - r;
            if (run > pend - pos) run = pend - pos;
            float *dst = io->out + (ptrdiff_t)img * io->out_batch_stride + (size_t)o * j->plane + r;
            const float *res = io->residual
                                   ? io->residual + (ptrdiff_t)img * io->residual_batch_stride + (size_t)o * j->plane + r
                                   : NULL;
            const float *src = ygrp + (size_t)pos * j->g + oc;
            for (int x = 0; x < run; x++) {
                float v = fmaf(src[(size_t)x * j->g], sc, bi);
                if (res) v += res[x];
                if (io->relu) v = v < 0 ? 0 : v;
                dst[x] = v;
            }
            pos += run;
        }
    }
}

void ck_direct_forward(const ck_conv *cv, const ck_conv_io *io) {
    direct_job j;
    memset(&j, 0, sizeof j);
    j.cv = cv;
    j.io = io;
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
    j.positions = io->batch * j.plane;
    j.tiles = (j.positions + j.np - 1) / j.np;
    /* About four tasks per thread, their count a multiple of the thread count. */
    const int threads = ck_threads();
    j.pchunks = 1;
    if (threads > 1) {
        while ((long)j.groups_n * j.pchunks < 4L * threads && j.pchunks < j.tiles) j.pchunks++;
        while (((long)j.groups_n * j.pchunks) % threads != 0 && j.pchunks < j.tiles) j.pchunks++;
    }
    j.xp = ck_scratch(3, (size_t)io->batch * j.xp_image);
    j.y = ck_scratch(1, (size_t)j.positions * cv->out_channels);
    ck_parallel_for(io->batch * j.icb_n, direct_input_task, &j);
    ck_parallel_for(j.groups_n * j.pchunks, direct_task, &j);
}
#else
void ck_direct_forward(const ck_conv *cv, const ck_conv_io *io) { (void)cv; (void)io; }
#endif
