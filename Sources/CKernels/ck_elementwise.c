/* Element-wise and pooling kernels, split over planes across the worker threads. Plain C loops that the
 * compiler vectorises; they are memory-bound, so one code path serves every CPU level, except the stems'
 * 3x3 stride-2 max pool, which has an AVX-512 path. */
#include "ck_internal.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Splits `planes` planes of `plane` floats into about 4 tasks per thread (at least 16 KiB each). */
static int plane_tasks(long planes, long plane) {
    long threads = ck_threads();
    if (threads <= 1) return 1;
    long work = planes * plane;
    long tasks = work / 4096;
    if (tasks > 4 * threads) tasks = 4 * threads;
    if (tasks > planes) tasks = planes;
    return tasks < 1 ? 1 : (int)tasks;
}

static inline void task_range(long total, int tasks, int task, long *lo, long *hi) {
    *lo = total * task / tasks;
    *hi = total * (task + 1) / tasks;
}

/* ---- affine per channel ------------------------------------------------------------------------ */

typedef struct affine_job {
    const float *src;
    ptrdiff_t src_stride;
    float *dst;
    ptrdiff_t dst_stride;
    int images, channels, relu, tasks;
    ptrdiff_t plane;
    const float *scale, *shift;
} affine_job;

static void affine_task(void *ctx, int task, int worker) {
    (void)worker;
    const affine_job *j = ctx;
    long lo, hi;
    task_range((long)j->images * j->channels, j->tasks, task, &lo, &hi);
    for (long p = lo; p < hi; p++) {
        long n = p / j->channels, c = p % j->channels;
        const float *s = j->src + n * j->src_stride + c * j->plane;
        float *d = j->dst + n * j->dst_stride + c * j->plane;
        const float a = j->scale[c], b = j->shift[c];
        if (j->relu) {
            for (ptrdiff_t i = 0; i < j->plane; i++) {
                float v = s[i] * a + b;
                d[i] = v < 0 ? 0 : v;
            }
        } else {
            for (ptrdiff_t i = 0; i < j->plane; i++) d[i] = s[i] * a + b;
        }
    }
}

void ck_affine_channels(const float *src, ptrdiff_t src_stride, float *dst, ptrdiff_t dst_stride, int images,
                        int channels, ptrdiff_t plane, const float *scale, const float *shift, int relu) {
    affine_job j = {src, src_stride, dst, dst_stride, images, channels, relu, 0, plane, scale, shift};
    j.tasks = plane_tasks((long)images * channels, plane);
    ck_parallel_for(j.tasks, affine_task, &j);
}

/* ---- add --------------------------------------------------------------------------------------- */

typedef struct add_job {
    const float *a, *b;
    float *out;
    ptrdiff_t count;
    int relu, tasks;
} add_job;

static void add_task(void *ctx, int task, int worker) {
    (void)worker;
    const add_job *j = ctx;
    long lo, hi;
    task_range(j->count, j->tasks, task, &lo, &hi);
    if (j->relu) {
        for (long i = lo; i < hi; i++) {
            float v = j->a[i] + j->b[i];
            j->out[i] = v < 0 ? 0 : v;
        }
    } else {
        for (long i = lo; i < hi; i++) j->out[i] = j->a[i] + j->b[i];
    }
}

void ck_add(const float *a, const float *b, float *out, ptrdiff_t count, int relu) {
    add_job j = {a, b, out, count, relu, 0};
    j.tasks = plane_tasks(count / 1024 + 1, 1024);
    ck_parallel_for(j.tasks, add_task, &j);
}

/* ---- channel gating (squeeze-and-excitation) ---------------------------------------------------- */

typedef struct gate_job {
    float *x;
    const float *gate, *res;
    int images, channels, relu, tasks;
    ptrdiff_t plane;
    int wide; /* AVX-512 CPU: gate_plane_avx512 */
} gate_job;

#if defined(__x86_64__)
/* One plane of gate_task, 16 values per step: x * g, then + r, then ReLU as max(0, v) (which keeps NaN and
 * -0 as `v < 0 ? 0 : v` does): the same floats as the loop below. */
__attribute__((target("avx512f"))) static void gate_plane_avx512(float *x, const float *r, float g, ptrdiff_t n, int relu) {
    const __m512 gv = _mm512_set1_ps(g), zero = _mm512_setzero_ps();
    for (ptrdiff_t i = 0; i < n; i += 16) {
        const __mmask16 m = ck_lanes16((int)(n - i < 16 ? n - i : 16));
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), gv);
        if (r) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, r + i));
        if (relu) v = _mm512_max_ps(zero, v);
        _mm512_mask_storeu_ps(x + i, m, v);
    }
}
#endif

static void gate_task(void *ctx, int task, int worker) {
    (void)worker;
    const gate_job *j = ctx;
    long lo, hi;
    task_range((long)j->images * j->channels, j->tasks, task, &lo, &hi);
    for (long p = lo; p < hi; p++) {
        float *x = j->x + p * j->plane;
        const float *r = j->res ? j->res + p * j->plane : NULL;
        const float g = j->gate[p];
#if defined(__x86_64__)
        if (j->wide) {
            gate_plane_avx512(x, r, g, j->plane, j->relu);
            continue;
        }
#endif
        for (ptrdiff_t i = 0; i < j->plane; i++) {
            float v = x[i] * g;
            if (r) v += r[i];
            if (j->relu) v = v < 0 ? 0 : v;
            x[i] = v;
        }
    }
}

void ck_scale_channels(float *x, const float *gate, const float *residual, int images, int channels,
                       ptrdiff_t plane, int relu) {
    gate_job j = {x, gate, residual, images, channels, relu, 0, plane, 0};
#if defined(__x86_64__)
    j.wide = ck_level() >= CK_LEVEL_AVX512;
#endif
    j.tasks = plane_tasks((long)images * channels, plane);
    ck_parallel_for(j.tasks, gate_task, &j);
}

/* ---- pooling ----------------------------------------------------------------------------------- */

typedef struct pool_job {
    const float *in;
    ptrdiff_t in_stride;
    float *out;
    ptrdiff_t out_stride;
    int images, channels, h, w, oh, ow, kernel, stride, pad, tasks;
    const float *scale, *shift;
    int relu;
    int vector3s2; /* max pool: 3x3, stride 2, padding 0 or 1 on an AVX-512 CPU (max_pool_3s2_avx512) */
} pool_job;

#if defined(__x86_64__)
/* The larger of a and b per lane, NaN if either is (MAXPS returns its second operand when one is NaN). */
__attribute__((target("avx512f"))) static inline __m512 max_nan512(__m512 a, __m512 b) {
    return _mm512_mask_mov_ps(_mm512_max_ps(b, a), _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), b);
}

/* One plane of the 3x3, stride-2 max pool with padding 0 or 1 (ResNet's and DenseNet's stem pool,
 * padding 1; SENet's, padding 0 in ceil mode), 16 outputs per step: output ox covers input columns
 * s + 2i, s + 2i + 1 and s + 2i + 2 for s = 2 * ox0 - padding. The three rows' maxima over the 33 columns
 * [s, s + 33) (-inf outside the plane) split into even and odd columns; the third column of each window
 * is the next even one. At two threads, 64 x 112 x 112: 0.42-0.47 ms with the separable loops below
 * (whose column pass the compiler cannot vectorise at stride 2), 0.12-0.19 ms (SENet's: 0.44 -> 0.18 ms). */
__attribute__((target("avx512f"))) static void max_pool_3s2_avx512(const float *src, float *dst, int h, int w, int oh,
                                                                   int ow, int pad) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int oy = 0; oy < oh; oy++, dst += ow) {
        const int y0 = 2 * oy - pad, ylo = y0 < 0 ? 0 : y0, yhi = y0 + 3 > h ? h : y0 + 3;
        for (int ox0 = 0; ox0 < ow; ox0 += 16) {
            const int s = 2 * ox0 - pad; /* -1 only for the first step with padding 1 */
            const __mmask16 m0 = ck_lanes16(w - s), m1 = ck_lanes16(w - s - 16), m2 = ck_lanes16(w - s - 32) & 1;
            __m512 a = ninf, b = ninf, c = ninf;
            for (int y = ylo; y < yhi; y++) {
                const float *r = src + (ptrdiff_t)y * w;
                /* column -1 is padding: lanes 1-15 take columns 0-14 */
                a = max_nan512(a, s < 0 ? _mm512_mask_expandloadu_ps(ninf, m0 & 0xFFFE, r) : _mm512_mask_loadu_ps(ninf, m0, r + s));
                b = max_nan512(b, _mm512_mask_loadu_ps(ninf, m1, r + s + 16));
                c = max_nan512(c, _mm512_mask_loadu_ps(ninf, m2, r + s + 32));
            }
            const __m512 e = _mm512_permutex2var_ps(a, even, b), o = _mm512_permutex2var_ps(a, odd, b);
            const __m512 e2 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(c), _mm512_castps_si512(e), 1));
            _mm512_mask_storeu_ps(dst + ox0, ck_lanes16(ow - ox0), max_nan512(max_nan512(e, o), e2));
        }
    }
}
#endif

/* Separable: the max over the window's rows into a row buffer (vectorised), then over its columns. A NaN
 * anywhere in the window wins, as in PyTorch. */
static void max_pool_task(void *ctx, int task, int worker) {
    (void)worker;
    const pool_job *j = ctx;
    long lo, hi;
    task_range((long)j->images * j->channels, j->tasks, task, &lo, &hi);
    float *rowmax = ck_scratch(1, (size_t)j->w);
    for (long p = lo; p < hi; p++) {
        long n = p / j->channels, c = p % j->channels;
        const float *src = j->in + n * j->in_stride + c * (ptrdiff_t)j->h * j->w;
        float *dst = j->out + n * j->out_stride + c * (ptrdiff_t)j->oh * j->ow;
#if defined(__x86_64__)
        if (j->vector3s2) {
            max_pool_3s2_avx512(src, dst, j->h, j->w, j->oh, j->ow, j->pad);
            continue;
        }
#endif
        for (int oy = 0; oy < j->oh; oy++) {
            int y0 = oy * j->stride - j->pad;
            int ylo = y0 < 0 ? 0 : y0, yhi = y0 + j->kernel > j->h ? j->h : y0 + j->kernel;
            if (ylo >= yhi) {
                for (int ox = 0; ox < j->ow; ox++) dst[ox] = -INFINITY;
                dst += j->ow;
                continue;
            }
            memcpy(rowmax, src + (ptrdiff_t)ylo * j->w, (size_t)j->w * sizeof(float));
            for (int y = ylo + 1; y < yhi; y++) {
                const float *restrict row = src + (ptrdiff_t)y * j->w;
                float *restrict m = rowmax;
                for (int x = 0; x < j->w; x++) {
                    const float v = row[x], t = m[x];
                    const float r = v > t ? v : t;
                    m[x] = (v != v || t != t) ? v + t : r; /* NaN if either is */
                }
            }
            /* interior windows of the common 3-wide kernel: branch-free, vectorisable */
            int ia = 0, ib = 0;
            if (j->kernel == 3) {
                ia = (j->pad + j->stride - 1) / j->stride; /* first ox with x0 >= 0 */
                ib = j->w - 3 + j->pad < 0 ? 0 : (j->w - 3 + j->pad) / j->stride + 1; /* past the last ox with x0 + 3 <= w */
                if (ib > j->ow) ib = j->ow;
                if (ia > ib) ia = ib;
                const float *restrict rm = rowmax;
                float *restrict d = dst;
                const int st = j->stride, pd = j->pad;
                for (int ox = ia; ox < ib; ox++) {
                    const float a = rm[ox * st - pd], b = rm[ox * st - pd + 1], c = rm[ox * st - pd + 2];
                    float m = a > b ? a : b;
                    m = c > m ? c : m;
                    d[ox] = (a != a || b != b || c != c) ? a + b + c : m;
                }
            }
            for (int ox = 0; ox < j->ow; ox++) {
                if (ox == ia && ib > ia) {
                    ox = ib - 1;
                    continue;
                }
                int x0 = ox * j->stride - j->pad;
                int xlo = x0 < 0 ? 0 : x0, xhi = x0 + j->kernel > j->w ? j->w : x0 + j->kernel;
                float m = -INFINITY;
                for (int x = xlo; x < xhi; x++) {
                    float v = rowmax[x];
                    if (v > m || v != v) m = v;
                    if (m != m) break;
                }
                dst[ox] = m;
            }
            dst += j->ow;
        }
    }
}

void ck_max_pool(const float *in, ptrdiff_t in_image_stride, float *out, ptrdiff_t out_image_stride, int images,
                 int channels, int h, int w, int oh, int ow, int kernel, int stride, int pad) {
    pool_job j = {in, in_image_stride, out, out_image_stride, images, channels, h, w, oh, ow, kernel, stride, pad, 0,
                  NULL, NULL, 0};
#if defined(__x86_64__)
    j.vector3s2 = kernel == 3 && stride == 2 && (pad == 0 || pad == 1) && ck_level() >= CK_LEVEL_AVX512;
#endif
    j.tasks = plane_tasks((long)images * channels, (long)h * w);
    ck_parallel_for(j.tasks, max_pool_task, &j);
}

static void avg_pool_task(void *ctx, int task, int worker) {
    (void)worker;
    const pool_job *j = ctx;
    long lo, hi;
    task_range((long)j->images * j->channels, j->tasks, task, &lo, &hi);
    for (long p = lo; p < hi; p++) {
        long n = p / j->channels, c = p % j->channels;
        const float *src = j->in + n * j->in_stride + c * (ptrdiff_t)j->h * j->w;
        float *dst = j->out + n * j->out_stride + c * (ptrdiff_t)j->oh * j->ow;
        for (int oy = 0; oy < j->oh; oy++) {
            const float *r0 = src + (ptrdiff_t)(2 * oy) * j->w, *r1 = r0 + j->w;
            for (int ox = 0; ox < j->ow; ox++) {
                float s = r0[2 * ox] + r0[2 * ox + 1];
                s += r1[2 * ox];
                s += r1[2 * ox + 1];
                dst[ox] = s / 4.0f;
            }
            dst += j->ow;
        }
    }
}

void ck_avg_pool_2x2(const float *in, ptrdiff_t in_image_stride, float *out, ptrdiff_t out_image_stride,
                     int images, int channels, int h, int w, int oh, int ow) {
    pool_job j = {in, in_image_stride, out, out_image_stride, images, channels, h, w, oh, ow, 2, 2, 0, 0,
                  NULL, NULL, 0};
    j.tasks = plane_tasks((long)images * channels, (long)h * w);
    ck_parallel_for(j.tasks, avg_pool_task, &j);
}

static void gap_task(void *ctx, int task, int worker) {
    (void)worker;
    const pool_job *j = ctx;
    long lo, hi;
    ptrdiff_t plane = (ptrdiff_t)j->h * j->w;
    task_range((long)j->images * j->channels, j->tasks, task, &lo, &hi);
    for (long p = lo; p < hi; p++) {
        long n = p / j->channels, c = p % j->channels;
        const float *src = j->in + n * j->in_stride + c * plane;
        /* 16 running sums (element i goes to sum i % 16), added pairwise at the end: independent chains
         * that the compiler keeps in one vector, where a single running sum waited on each addition
         * (measured: the pools of squeeze-and-excitation took about 3 ms of se_resnet50 at batch 1).
         * The order is fixed, so every instruction-set level gives the same floats. */
        float acc[16] = {0};
        const ptrdiff_t full = plane / 16 * 16;
        if (j->scale) {
            const float a = j->scale[c], b = j->shift[c];
            for (ptrdiff_t i = 0; i < full; i += 16)
                for (int k = 0; k < 16; k++) {
                    float v = src[i + k] * a + b;
                    if (j->relu) v = v < 0 ? 0 : v;
                    acc[k] += v;
                }
            for (ptrdiff_t i = full; i < plane; i++) {
                float v = src[i] * a + b;
                if (j->relu) v = v < 0 ? 0 : v;
                acc[i - full] += v;
            }
        } else {
            for (ptrdiff_t i = 0; i < full; i += 16)
                for (int k = 0; k < 16; k++) acc[k] += src[i + k];
            for (ptrdiff_t i = full; i < plane; i++) acc[i - full] += src[i];
        }
        for (int w = 8; w >= 1; w /= 2)
            for (int k = 0; k < w; k++) acc[k] += acc[k + w];
        j->out[p] = acc[0] / (float)plane;
    }
}

void ck_global_avg_pool(const float *in, ptrdiff_t in_image_stride, float *out, int images, int channels,
                        ptrdiff_t plane, const float *scale, const float *shift, int relu) {
    pool_job j = {in, in_image_stride, out, 0, images, channels, 1, (int)plane, 1, 1, 0, 0, 0, 0,
                  scale, shift, relu};
    j.tasks = plane_tasks((long)images * channels, plane);
    ck_parallel_for(j.tasks, gap_task, &j);
}

/* ---- fused batch norm + ReLU + 2x2 average pool (DenseNet transitions, pooled before their 1x1 conv) - */

static void affine_avg_task(void *ctx, int task, int worker) {
    (void)worker;
    const pool_job *j = ctx;
    long lo, hi;
    task_range((long)j->images * j->channels, j->tasks, task, &lo, &hi);
    for (long p = lo; p < hi; p++) {
        long n = p / j->channels, c = p % j->channels;
        const float *src = j->in + n * j->in_stride + c * (ptrdiff_t)j->h * j->w;
        float *dst = j->out + n * j->out_stride + c * (ptrdiff_t)j->oh * j->ow;
        const float a = j->scale[c], b = j->shift[c];
        for (int oy = 0; oy < j->oh; oy++) {
            const float *r0 = src + (ptrdiff_t)(2 * oy) * j->w, *r1 = r0 + j->w;
            for (int ox = 0; ox < j->ow; ox++) {
                float v0 = r0[2 * ox] * a + b, v1 = r0[2 * ox + 1] * a + b;
                float v2 = r1[2 * ox] * a + b, v3 = r1[2 * ox + 1] * a + b;
                v0 = v0 < 0 ? 0 : v0;
                v1 = v1 < 0 ? 0 : v1;
                v2 = v2 < 0 ? 0 : v2;
                v3 = v3 < 0 ? 0 : v3;
                dst[ox] = (((v0 + v1) + v2) + v3) / 4.0f;
            }
            dst += j->ow;
        }
    }
}

void ck_affine_relu_avg_pool_2x2(const float *in, ptrdiff_t in_image_stride, float *out, ptrdiff_t out_image_stride,
                                 int images, int channels, int h, int w, const float *scale, const float *shift) {
    pool_job j = {in, in_image_stride, out, out_image_stride, images, channels, h, w, h / 2, w / 2, 2, 2, 0, 0,
                  scale, shift, 1};
    j.tasks = plane_tasks((long)images * channels, (long)h * w);
    ck_parallel_for(j.tasks, affine_avg_task, &j);
}
