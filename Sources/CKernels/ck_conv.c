/* Convolution as a packed GEMM: weights packed once into CK_MR-row panels, the input packed per call
 * into CK_NR-column panels straight from the image (implicit im2col: no column matrix is ever
 * materialised beyond one KC x NC block) or, for 1x1 layers on large planes, read by the micro-kernel in
 * place, and a micro-kernel that applies bias, residual and ReLU while storing. */
#include "ck_internal.h"

#include <math.h>
#include <string.h>

/* Depth and width of a packed input block (at most KC_MAX x NC_MAX floats, 512 KiB). Depth 512 against
 * 256, two threads, batch 8: ResNeXt's 1x1 layers 2-4% faster (fewer depth blocks: the micro-kernel alone
 * runs at 98% of the FMA peak at depth 512 against 94% at 256; the whole network 0.98x), ResNet-50's deep
 * 1x1 layers at batch 1 0.99-1.0x. Width 512 (all 13 panels of the batch's 7 x 7 columns in one chunk,
 * rows split between the threads over a shared packed input, each weight panel read once) ran those
 * layers 8% faster but its shared buffer (up to 3.4 MB) put ResNeXt-50 at batch 8 over its memory budget
 * (174.4 against 173.7 MiB; 170.4 at width 256). */
#define KC_MAX 512
#define NC_MAX 256
/* A 1x1 layer's packing reads each input channel's columns as a separate short run (1 KiB of a 56 x 56
 * plane per chunk), which the hardware prefetchers do not follow: the rows PACK_AHEAD channels ahead are
 * fetched in software. Measured 4-7% faster on ResNet-50's 56 x 56 and 28 x 28 1x1 layers (both orders,
 * batch 1 and 8); 4 and 16 did about as well. */
#define PACK_AHEAD 8

size_t ck_conv_packed_count(int groups, int out_channels, int in_channels, int kh, int kw) {
    size_t og = (size_t)(out_channels / groups);
    size_t kg = (size_t)(in_channels / groups) * (size_t)kh * (size_t)kw;
    size_t panels = (og + CK_MR - 1) / CK_MR;
    return (size_t)groups * panels * kg * CK_MR;
}

typedef struct pack_weights_job {
    const float *weight;
    float *packed;
    int og, panels;
    size_t kg;
} pack_weights_job;

static void pack_weights_task(void *context, int task, int worker) {
    (void)worker;
    const pack_weights_job *j = context;
    const int g = task / j->panels, p = task % j->panels;
    float *dst = j->packed + (size_t)task * j->kg * CK_MR;
    for (size_t k = 0; k < j->kg; k++) {
        for (int r = 0; r < CK_MR; r++) {
            int o = p * CK_MR + r;
            dst[r] = o < j->og ? j->weight[((size_t)g * j->og + o) * j->kg + k] : 0.0f;
        }
        dst += CK_MR;
    }
}

void ck_conv_pack(const float *weight, int groups, int out_channels, int in_channels, int kh, int kw,
                  float *packed) {
    pack_weights_job j;
    j.weight = weight;
    j.packed = packed;
    j.og = out_channels / groups;
    j.kg = (size_t)(in_channels / groups) * (size_t)kh * (size_t)kw;
    j.panels = (j.og + CK_MR - 1) / CK_MR;
    ck_parallel_for(groups * j.panels, pack_weights_task, &j);
}

typedef struct unpack_weights_job {
    const float *packed;
    float *weight;
    int og, panels;
    size_t kg;
} unpack_weights_job;

static void unpack_weights_task(void *context, int task, int worker) {
    (void)worker;
    const unpack_weights_job *j = context;
    const int g = task / j->panels, p = task % j->panels;
    const float *src = j->packed + (size_t)task * j->kg * CK_MR;
    for (size_t k = 0; k < j->kg; k++) {
        for (int r = 0; r < CK_MR; r++) {
            int o = p * CK_MR + r;
            if (o < j->og) j->weight[((size_t)g * j->og + o) * j->kg + k] = src[r];
        }
        src += CK_MR;
    }
}

void ck_conv_unpack(const float *packed, int groups, int out_channels, int in_channels, int kh, int kw,
                    float *weight) {
    unpack_weights_job j;
    j.packed = packed;
    j.weight = weight;
    j.og = out_channels / groups;
    j.kg = (size_t)(in_channels / groups) * (size_t)kh * (size_t)kw;
    j.panels = (j.og + CK_MR - 1) / CK_MR;
    ck_parallel_for(groups * j.panels, unpack_weights_task, &j);
}

typedef struct fold_job {
    const float *weight;
    const double *scale;
    float *out;
    ptrdiff_t rows, per_row;
    int tasks;
} fold_job;

static void fold_task(void *context, int task, int worker) {
    (void)worker;
    const fold_job *j = context;
    const ptrdiff_t r0 = j->rows * task / j->tasks, r1 = j->rows * (task + 1) / j->tasks;
    for (ptrdiff_t r = r0; r < r1; r++) {
        const double s = j->scale[r];
        const float *w = j->weight + r * j->per_row;
        float *o = j->out + r * j->per_row;
        for (ptrdiff_t i = 0; i < j->per_row; i++) o[i] = (float)((double)w[i] * s);
    }
}

void ck_scale_rows(const float *weight, const double *scale, ptrdiff_t rows, ptrdiff_t per_row, float *out) {
    fold_job j = {weight, scale, out, rows, per_row, 1};
    const long work = (long)(rows * per_row);
    j.tasks = work < 65536 ? 1 : (int)(rows < 4 * ck_threads() ? rows : 4 * ck_threads());
    ck_parallel_for(j.tasks, fold_task, &j);
}

/* ---- Portable micro-kernel ---------------------------------------------------------------------- */

void ck_epilogue_portable(const float *src, float *dst, const float *res, int n, float scale, float bias, int relu) {
    for (int x = 0; x < n; x++) {
        float v = fmaf(src[x], scale, bias);
        if (res) v += res[x];
        if (relu) v = v < 0 ? 0 : v;
        dst[x] = v;
    }
}

void ck_kernel_portable(int kc, const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int mv, int nv,
                        int first, int last, const float *scale, const float *bias, const float *res, ptrdiff_t ldr,
                        int relu) {
    float acc[CK_MR][CK_NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++) {
        for (int r = 0; r < CK_MR; r++) {
            float av = a[r];
            for (int j = 0; j < CK_NR; j++) acc[r][j] += av * b[j];
        }
        a += CK_MR;
        b += ldb;
    }
    for (int r = 0; r < mv; r++) {
        float *row = c + r * ldc;
        for (int j = 0; j < nv; j++) {
            float v = acc[r][j];
            if (!first) v = row[j] + v;
            if (last) {
                if (scale) v = fmaf(v, scale[r], bias ? bias[r] : 0.0f);
                else if (bias) v += bias[r];
                if (res) v += res[r * ldr + j];
                if (relu) v = v < 0 ? 0 : v;
            }
            row[j] = v;
        }
    }
}

static inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static inline int ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* ---- Packing of the input ----------------------------------------------------------------------- */

typedef struct conv_job {
    const ck_conv *cv;
    const ck_conv_io *io;
    int og, ig, kg, mp;       /* per group: outputs, inputs, GEMM depth, weight panels */
    int plane;                /* oh * ow */
    int panels;               /* column panels per image, or over the batch when mixed */
    int nchunks, nc;          /* column chunks (whole panels, balanced to within one) and the widest */
    int mixed;                /* chunks run over the columns of all images (small planes, batch > 1) */
    int inplace;              /* a residual read from the output itself over several depth blocks */
    int mchunks;              /* row chunks (of weight panels, balanced to within one) */
    int nkb, kc;              /* depth blocks and their size */
    float *shared;            /* when set: every item's packed input, packed once before the compute */
    int direct;               /* the kernel reads the panels straight from the input, unpacked (below) */
    ck_kernel_fn kernel;
} conv_job;

/* A run of columns of one packed panel that come from one output row of one image. */
typedef struct pack_segment {
    int img, oy, ox0, pos, run; /* image, output row, first output column, position in the plane, length */
    int dst;                    /* offset of its first column in the packed block's row: panel * kc * NR + col */
} pack_segment;

/* Packs rows [k0, k0 + kc) and columns [n0, n0 + ncols) of the (implicit) column matrix of group g into
 * panels of CK_NR columns ([panel][k][CK_NR]), zero past the valid columns. Columns are numbered over
 * the whole batch (image i owns [i * plane, (i + 1) * plane)), so a panel may span two images. The
 * columns are cut into segments (one panel, one image, one output row) once, outside the loop over k. */
static void pack_input(const conv_job *job, int g, int k0, int kc, int n0, int ncols, float *dst) {
    const ck_conv *cv = job->cv;
    const ck_conv_io *io = job->io;
    const int h = io->h, w = io->w, ow = io->ow, plane = job->plane;
    const int taps = cv->kh * cv->kw;
    const size_t inplane = (size_t)h * w;
    const int panels = (ncols + CK_NR - 1) / CK_NR;
    const int pointwise = cv->kh == 1 && cv->kw == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0;
    if (pointwise && io->in_scale == NULL && n0 / plane == (n0 + ncols - 1) / plane && ck_level() >= CK_LEVEL_AVX512) {
        /* one image's contiguous columns: plain rows */
        const int img = n0 / plane;
        ck_pack_rows_avx512(io->in + (ptrdiff_t)img * io->in_batch_stride + ((size_t)g * job->ig + k0) * inplane + (n0 - img * plane),
                            (ptrdiff_t)inplane, kc, ncols, dst);
        return;
    }
    pack_segment seg[NC_MAX + NC_MAX / CK_NR + 1];
    int nseg = 0;
    for (int j = 0; j < ncols;) {
        const int gpos = n0 + j, img = gpos / plane, pos = gpos % plane;
        int run = plane - pos;
        if (run > ncols - j) run = ncols - j;
        const int panelEnd = (j / CK_NR + 1) * CK_NR;
        if (run > panelEnd - j) run = panelEnd - j;
        const int oy = pos / ow, ox0 = pos % ow;
        if (!pointwise && run > ow - ox0) run = ow - ox0;
        pack_segment *sg = &seg[nseg++];
        sg->img = img;
        sg->oy = oy;
        sg->ox0 = ox0;
        sg->pos = pos;
        sg->run = run;
        sg->dst = (j / CK_NR) * kc * CK_NR + j % CK_NR;
        j += run;
    }
    const int tail = panels * CK_NR - ncols; /* zero columns at the end of the last panel */
    float *const tailDst = dst + (size_t)(panels - 1) * kc * CK_NR + (CK_NR - tail);
    if (cv->kh == 1 && cv->kw == 1 && cv->sh == 2 && cv->sw == 2 && cv->ph == 0 && cv->pw == 0 && io->in_scale == NULL &&
        ck_level() >= CK_LEVEL_AVX512) {
        /* A 1x1 stride-2 layer without padding (ResNet's downsampling shortcuts): every segment's inputs are
         * in range; each segment is packed over all kc channels at once, 16 columns per permute, where the
         * general path below copied one float at a time. Two threads, with the depth above against
         * before both: 256 -> 512 from 56 x 56 5.96 against 7.08 ms at batch 8, 0.742 against 0.851 at
         * batch 1; 1024 -> 2048 from 14 x 14 6.18 against 6.61, 0.857 against 0.886. */
        for (int si = 0; si < nseg; si++) {
            const pack_segment *sg = &seg[si];
            const float *src = io->in + (ptrdiff_t)sg->img * io->in_batch_stride + ((size_t)g * job->ig + k0) * inplane +
                               (size_t)sg->oy * 2 * w + (size_t)sg->ox0 * 2;
            ck_pack_even_avx512(src, (ptrdiff_t)inplane, kc, sg->run, dst + sg->dst, CK_NR);
        }
        if (tail)
            for (int k = 0; k < kc; k++) memset(tailDst + (size_t)k * CK_NR, 0, (size_t)tail * sizeof(float));
        return;
    }
    const int sw = cv->sw;
    for (int k = k0; k < k0 + kc; k++) {
        const int cl = k / taps, tap = k % taps;
        const int ch = g * job->ig + cl;
        const int ti = tap / cv->kw, tj = tap % cv->kw;
        const size_t choff = (size_t)ch * inplane;
        const int pro = io->in_scale != NULL;
        const float s = pro ? io->in_scale[ch] : 1.0f, t = pro ? io->in_shift[ch] : 0.0f;
        float *row = dst + (size_t)(k - k0) * CK_NR;
        const int dx = tj * cv->dw - cv->pw;
        /* Valid output columns for this tap: 0 <= ox * sw + dx < w. */
        const int oxlo = ceil_div(-dx, sw), oxhi = floor_div(w - 1 - dx, sw) + 1;
        for (int si = 0; si < nseg; si++) {
            const pack_segment *sg = &seg[si];
            const float *src = io->in + (ptrdiff_t)sg->img * io->in_batch_stride + choff;
            float *out = row + sg->dst;
            const int run = sg->run;
            if (pointwise) {
                const float *p = src + sg->pos;
                if (k + PACK_AHEAD < k0 + kc) {
                    __builtin_prefetch(p + (size_t)PACK_AHEAD * inplane, 0, 3);
                    __builtin_prefetch(p + (size_t)PACK_AHEAD * inplane + 16, 0, 3);
                }
                if (pro) {
                    for (int x = 0; x < run; x++) {
                        float v = p[x] * s + t;
                        out[x] = v < 0 ? 0 : v;
                    }
                } else if (run == CK_NR) {
                    __builtin_memcpy(out, p, CK_NR * sizeof(float)); /* inlined: no call per panel row */
                } else {
                    memcpy(out, p, (size_t)run * sizeof(float));
                }
                continue;
            }
            const int iy = sg->oy * cv->sh - cv->ph + ti * cv->dh;
            if (iy < 0 || iy >= h) {
                memset(out, 0, (size_t)run * sizeof(float));
                continue;
            }
            const float *line = src + (size_t)iy * w;
            const int ox0 = sg->ox0;
            int xlo = oxlo - ox0, xhi = oxhi - ox0;
            if (xlo < 0) xlo = 0;
            if (xhi > run) xhi = run;
            if (xhi < xlo) xhi = xlo;
            if (xlo > 0) memset(out, 0, (size_t)xlo * sizeof(float));
            const float *from = line + (ox0 + xlo) * sw + dx;
            const int cnt = xhi - xlo;
            float *to = out + xlo;
            if (pro) {
                for (int x = 0; x < cnt; x++) {
                    float v = from[x * sw] * s + t;
                    to[x] = v < 0 ? 0 : v;
                }
            } else if (sw == 1) {
                memcpy(to, from, (size_t)cnt * sizeof(float));
            } else {
                for (int x = 0; x < cnt; x++) to[x] = from[x * sw];
            }
            if (xhi < run) memset(out + xhi, 0, (size_t)(run - xhi) * sizeof(float));
        }
        if (tail) memset(tailDst + (size_t)(k - k0) * CK_NR, 0, (size_t)tail * sizeof(float));
    }
}

/* Global columns [n0, n0 + ncols) of an item (image, group, chunk); ncols <= 0 when empty. Chunk i holds
 * panels [ceil(i * panels / nchunks), ceil((i + 1) * panels / nchunks)): the wider chunks come first, so
 * that the last tasks taken are the short ones. */
static void item_columns(const conv_job *job, int img, int nchunk, int *n0, int *ncols) {
    const int columns = job->mixed ? job->io->batch * job->plane : job->plane;
    const int p0 = (int)(((long)nchunk * job->panels + job->nchunks - 1) / job->nchunks);
    const int p1 = (int)(((long)(nchunk + 1) * job->panels + job->nchunks - 1) / job->nchunks);
    const int c1 = p1 * CK_NR < columns ? p1 * CK_NR : columns;
    *n0 = (job->mixed ? 0 : img * job->plane) + p0 * CK_NR;
    *ncols = c1 - p0 * CK_NR;
}

/* Cuts the columns into n chunks of whole panels (nc: the widest). */
static void set_chunks(conv_job *job, int n) {
    job->nchunks = n;
    job->nc = (job->panels + n - 1) / n * CK_NR;
}

/* The balance (ck_task_balance) of the job's items, in panels, taken in task order. */
static double chunk_balance(const conv_job *job, long items, int threads) {
    double sizes[4 * 64];
    for (int i = 0; i < (int)items; i++) {
        int n0, ncols;
        item_columns(job, i / job->nchunks / job->cv->groups, i % job->nchunks, &n0, &ncols);
        sizes[i] = ncols > 0 ? (double)((ncols + CK_NR - 1) / CK_NR) : 0.0;
    }
    return ck_task_balance((int)items, sizes, threads);
}

static float *shared_block(const conv_job *job, int item, int kb) {
    return job->shared + ((size_t)item * job->nkb + kb) * job->kc * job->nc;
}

/* Shared mode, phase 1: pack one (item, depth block). */
static void pack_task(void *context, int task, int worker) {
    (void)worker;
    const conv_job *job = context;
    const int kb = task % job->nkb, item = task / job->nkb;
    const int nchunk = item % job->nchunks, g = (item / job->nchunks) % job->cv->groups;
    const int img = item / job->nchunks / job->cv->groups;
    int n0, ncols;
    item_columns(job, img, nchunk, &n0, &ncols);
    if (ncols <= 0) return;
    const int k0 = kb * job->kc;
    int kc = job->kg - k0;
    if (kc > job->kc) kc = job->kc;
    pack_input(job, g, k0, kc, n0, ncols, shared_block(job, item, kb));
}

static void conv_task(void *context, int task, int worker) {
    (void)worker;
    const conv_job *job = context;
    const ck_conv *cv = job->cv;
    const ck_conv_io *io = job->io;
    int mchunk = task % job->mchunks;
    task /= job->mchunks;
    int nchunk = task % job->nchunks;
    task /= job->nchunks;
    int g = task % cv->groups;
    int img = task / cv->groups; /* 0 when mixed */

    const int plane = job->plane;
    const int item = (img * cv->groups + g) * job->nchunks + nchunk;
    int n0, ncols;
    item_columns(job, img, nchunk, &n0, &ncols);
    const int panels = (ncols + CK_NR - 1) / CK_NR;
    const int p0 = (int)((long)mchunk * job->mp / job->mchunks);
    const int p1 = (int)((long)(mchunk + 1) * job->mp / job->mchunks);
    if (p0 >= p1 || ncols <= 0) return;

    float *bp = job->shared || job->direct ? NULL : ck_scratch(0, (size_t)job->kc * job->nc);
    /* direct: the input at the item's first column (one image's) */
    const float *in0 = job->direct ? io->in + (ptrdiff_t)img * io->in_batch_stride + (size_t)g * job->ig * plane + (n0 - img * plane)
                                   : NULL;
    /* Panels whose sums go to a buffer, [row][nc], and are stored at the end (image by image, with the
     * epilogue): with columns over the batch, those that span two images (the others are stored in
     * place, as the partial sums of a single image are), or all of them with a residual that is the
     * output itself over several depth blocks (below). */
    unsigned char inbuf[NC_MAX / CK_NR + 1];
    int nbuf = 0;
    for (int q = 0; q < panels; q++) {
        int nv = ncols - q * CK_NR;
        if (nv > CK_NR) nv = CK_NR;
        const int col = n0 + q * CK_NR;
        inbuf[q] = job->mixed && (job->inplace || col / plane != (col + nv - 1) / plane);
        nbuf += inbuf[q];
    }
    float *acc = nbuf ? ck_scratch(2, (size_t)(p1 - p0) * CK_MR * job->nc) : NULL;
    /* A residual that is the output itself, over several depth blocks: the first block's partial sums
     * would overwrite it before the last block adds it. Columns of one image: the task first copies the
     * residual under its panels, [row][nc] like the buffer, and the kernels read it from there. Measured
     * against buffering all the sums with a second store pass, per call alternated: ResNeXt's 512 ->
     * 1024 at 14 x 14 0.91x at batch 1, 7 x 7 layers 0.98-1.0x. Columns over the batch keep the buffer
     * (there the copy, made for a whole chunk of rows before any sum, measured 1.03-1.05x). */
    float *snap = NULL;
    if (job->inplace && !job->mixed) {
        snap = ck_scratch(1, (size_t)(p1 - p0) * CK_MR * job->nc);
        for (int p = p0; p < p1; p++) {
            int mv = job->og - p * CK_MR;
            if (mv > CK_MR) mv = CK_MR;
            for (int q = 0; q < panels; q++) {
                if (inbuf[q]) continue;
                int nv = ncols - q * CK_NR;
                if (nv > CK_NR) nv = CK_NR;
                const int col = n0 + q * CK_NR, im = col / plane, pos = col % plane;
                const float *from = io->residual + (ptrdiff_t)im * io->residual_batch_stride +
                                    (size_t)(g * job->og + p * CK_MR) * plane + pos;
                float *to = snap + (size_t)(p - p0) * CK_MR * job->nc + q * CK_NR;
                for (int r = 0; r < mv; r++) memcpy(to + (size_t)r * job->nc, from + (size_t)r * plane, (size_t)nv * sizeof(float));
            }
        }
    }
    for (int kb = 0; kb < job->nkb; kb++) {
        const int k0 = kb * job->kc;
        int kc = job->kg - k0;
        if (kc > job->kc) kc = job->kc;
        if (job->shared) bp = shared_block(job, item, kb);
        else if (!job->direct) pack_input(job, g, k0, kc, n0, ncols, bp);
        const int first = kb == 0, last = kb == job->nkb - 1;
        for (int p = p0; p < p1; p++) {
            const int row0 = g * job->og + p * CK_MR;
            int mv = job->og - p * CK_MR;
            if (mv > CK_MR) mv = CK_MR;
            const float *a = cv->packed + (((size_t)g * job->mp + p) * job->kg + k0) * CK_MR;
            const float *bias = cv->bias ? cv->bias + row0 : NULL;
            const float *scale = cv->scale ? cv->scale + row0 : NULL;
            for (int q = 0; q < panels; q++) {
                const float *b = job->direct ? in0 + (size_t)k0 * plane + q * CK_NR : bp + (size_t)q * kc * CK_NR;
                const ptrdiff_t ldb = job->direct ? plane : CK_NR;
                if (inbuf[q]) {
                    float *c = acc + (size_t)(p - p0) * CK_MR * job->nc + q * CK_NR;
                    job->kernel(kc, a, b, ldb, c, job->nc, CK_MR, CK_NR, first, 0, NULL, NULL, NULL, 0, 0);
                    continue;
                }
                const int col = n0 + q * CK_NR, im = col / plane, pos = col % plane; /* image im, position pos */
                int nv = ncols - q * CK_NR;
                if (nv > CK_NR) nv = CK_NR;
                float *c = io->out + (ptrdiff_t)im * io->out_batch_stride + (size_t)row0 * plane + pos;
                const float *res = io->residual ? io->residual + (ptrdiff_t)im * io->residual_batch_stride +
                                                      (size_t)row0 * plane + pos
                                                : NULL;
                ptrdiff_t ldr = plane;
                if (snap) {
                    res = snap + (size_t)(p - p0) * CK_MR * job->nc + q * CK_NR;
                    ldr = job->nc;
                }
                job->kernel(kc, a, b, ldb, c, (ptrdiff_t)plane, mv, nv, first, last, scale, bias, res, ldr, io->relu);
            }
        }
    }
    if (!acc) return;
    /* store the buffered panels: per row, per image segment, with scale, bias, residual and activation */
    const ck_epilogue_fn epilogue = ck_epilogue();
    for (int p = p0; p < p1; p++) {
        int mv = job->og - p * CK_MR;
        if (mv > CK_MR) mv = CK_MR;
        for (int r = 0; r < mv; r++) {
            const int o = g * job->og + p * CK_MR + r;
            const float *src = acc + ((size_t)(p - p0) * CK_MR + r) * job->nc;
            const float b = cv->bias ? cv->bias[o] : 0.0f, sc = cv->scale ? cv->scale[o] : 1.0f;
            for (int q = 0; q < panels; q++) {
                if (!inbuf[q]) continue;
                int j = q * CK_NR;
                const int jend = j + CK_NR < ncols ? j + CK_NR : ncols;
                while (j < jend) {
                    const int gpos = n0 + j, im = gpos / plane, pos = gpos % plane;
                    int run = plane - pos;
                    if (run > jend - j) run = jend - j;
                    float *dst = io->out + (ptrdiff_t)im * io->out_batch_stride + (size_t)o * plane + pos;
                    const float *res = io->residual ? io->residual + (ptrdiff_t)im * io->residual_batch_stride +
                                                          (size_t)o * plane + pos
                                                    : NULL;
                    epilogue(src + j, dst, res, run, sc, b, io->relu);
                    j += run;
                }
            }
        }
    }
}

void ck_conv_forward(const ck_conv *cv, const ck_conv_io *io) {
    conv_job job;
    job.cv = cv;
    job.io = io;
    job.og = cv->out_channels / cv->groups;
    job.ig = cv->in_channels / cv->groups;
    job.kg = job.ig * cv->kh * cv->kw;
    job.mp = (job.og + CK_MR - 1) / CK_MR;
    job.plane = io->oh * io->ow;
    job.kernel = ck_kernel();
    if (io->batch <= 0 || job.plane <= 0) return;
    /* Column chunks: whole panels, at most NC_MAX wide, balanced to within one panel; over all images
     * when planes are small (so that panels are not padded per image and the weights are read once per
     * chunk of several images). */
    job.mixed = io->batch > 1 && job.plane < NC_MAX && job.plane % CK_NR != 0;
    const int columns = job.mixed ? io->batch * job.plane : job.plane;
    job.panels = (columns + CK_NR - 1) / CK_NR;
    set_chunks(&job, (job.panels * CK_NR + NC_MAX - 1) / NC_MAX);
    const int threads = ck_threads();
    /* Wide planes that give few chunks (ResNet-50's 56 x 56 layers at batch 1: 98 panels in 13 chunks),
     * on several threads: at least eight chunks per thread. The pool shares a job's tasks out in
     * contiguous ranges and a thread that finishes first takes the other's last tasks, so the time one
     * thread waits for the other is about one task: the smaller the last tasks, the less. Together with
     * the finer row and fused-Winograd chunks below, measured on ResNet-50 at batch 1, 2 threads: the
     * caller's wait at the end of the jobs 0.66-0.74 ms an inference against 0.92-0.99 (default) and
     * 0.70-1.56 against 1.25-2.31 (compact). */
    if (threads > 1 && !job.mixed && job.panels >= 16) {
        const long per = (long)io->batch * cv->groups;
        if (per * job.nchunks < 8L * threads) {
            const long n = (8L * threads + per - 1) / per;
            set_chunks(&job, (int)(n < job.panels ? n : job.panels));
        }
    }
    /* Depth blocks: at most KC_MAX deep, balanced. */
    job.nkb = job.kg > 0 ? (job.kg + KC_MAX - 1) / KC_MAX : 1;
    job.kc = (job.kg + job.nkb - 1) / job.nkb;
    if (job.kc < 1) job.kc = 1;
    /* A residual that is the output itself must be read before the first partial sums would overwrite
     * it: with several depth blocks, each task copies it first or buffers its sums (conv_task). */
    job.inplace = io->residual != NULL && job.nkb > 1 && (const float *)io->out == io->residual;
    /* A 1x1 stride-1 layer without an input prologue, whose columns are those of one image, has its
     * GEMM's B[k][n] = in[k * plane + n] already: on AVX-512 CPUs the kernel reads it at row stride
     * `plane`, and the packing pass (a copy of every input value, 4% of ResNet-50 at batch 1, and the
     * shared-packing phase with its barrier where rows are split) goes away. Only on planes of a multiple
     * of 16 values: every panel row then starts a cache line (given an aligned buffer), and every panel
     * is 32 columns, or 16 at the end of a plane, which the narrow kernel reads exactly (it computes
     * columns in pairs: an odd tail would read past the plane). Measured, against packing, per call
     * alternated in one process: ResNet-50's 256 -> 64 at 56 x 56 0.81-0.85x, 512 -> 128 at 28 x 28 0.89-0.92x, 64 -> 256
     * at 56 x 56 0.96-0.98x (batch 1 and 8, one and two threads); the whole network 1.7% faster at batch
     * 1 and 3.4% at batch 8. On 14 x 14 and 7 x 7 planes (rows of 784 and 196 bytes, every load split
     * across two lines) 1.0x and 1.14-1.46x: those stay packed. */
    job.direct = ck_level() >= CK_LEVEL_AVX512 && !job.mixed && io->in_scale == NULL && cv->kh == 1 && cv->kw == 1 &&
                 cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0 && job.plane % 16 == 0;
    const long images = job.mixed ? 1 : io->batch;
    long items = images * cv->groups * job.nchunks;
    double balance = threads > 1 && items < 4L * threads ? chunk_balance(&job, items, threads) : 1.0;
    /* Few items that whole threads cannot share evenly (ResNet's 14 x 14 layers at batch 8: 49 panels in
     * 7 chunks, 4 for one thread and 3 for the other): up to twice as many, narrower chunks, the first
     * count that keeps every thread busy for at least 95% of the layer. Fewer items than threads split by
     * rows instead (below): narrower chunks would make every thread stream all the weights. */
    if (items >= threads && balance < 0.95) {
        const int base = job.nchunks;
        for (int n = base + 1; n <= 2 * base && n <= job.panels && images * cv->groups * n <= 4L * threads; n++) {
            set_chunks(&job, n);
            const double b = chunk_balance(&job, images * cv->groups * n, threads);
            if (b >= 0.95) {
                balance = b;
                break;
            }
        }
        if (balance < 0.95) set_chunks(&job, base);
        items = images * cv->groups * job.nchunks;
    }
    /* Row chunks only when the column chunks alone would leave threads idle for more than about 15% of
     * the layer's time (the split packs the input into a shared buffer first, behind one more barrier,
     * and both threads then read it: measured dearer than that much imbalance on ResNet-50's 28 x 28
     * layers at batch 1). Then about sixteen row chunks per thread, balanced to within one weight panel,
     * so that the thread that finishes first waits little for the other (eight measured 2-5% faster than
     * four on ResNet-50's 14 x 14 and 7 x 7 layers; sixteen: see the column chunks above). */
    job.mchunks = 1;
    job.shared = NULL;
    if (balance < 0.85) {
        long want = (16L * threads + items - 1) / items;
        job.mchunks = want > job.mp ? job.mp : (int)want;
    }
    /* Several row chunks of one item would each pack the same input: pack every item once, in
     * parallel, into a shared buffer first (when it is not too large). */
    const size_t shared = (size_t)items * job.nkb * job.kc * job.nc;
    if (job.mchunks > 1 && !job.direct && shared <= ((size_t)8 << 20)) {
        job.shared = ck_scratch(3, shared);
        ck_parallel_for((int)(items * job.nkb), pack_task, &job);
    }
    ck_parallel_for((int)(items * job.mchunks), conv_task, &job);
}
