/* Winograd F(4x4, 3x3) and F(2x2, 3x3) for 3x3 convolutions with stride 1 and padding 1 (Lavin & Gray
 * 2016). With output tiles of m x m (m = 4 or 2) and input patches of a x a (a = m + 2):
 *
 * Per work item (a panel of CK_NR = 32 output tiles, and a range of weight panels):
 *   1. the input patches of the 32 tiles are transformed, V = B^T d B, into the packed GEMM layout
 *      V[a * a][in_channels][32];
 *   2. for each panel of CK_MR output channels, a * a GEMMs M[xi] = U[xi] V[xi] (U = G g G^T, packed
 *      once at load) run through the same micro-kernel as every convolution;
 *   3. the output transform Y = A^T M A adds bias and residual, applies ReLU and stores the m x m tiles.
 * F(4x4) needs 4x fewer multiplications than the direct method, F(2x2) 2.25x; F(2x2) wastes less on
 * small planes (a 14 x 14 plane is 49 tiles of 2x2, but 16 of 4x4 that fill half a 32-tile panel).
 * The transforms are written as loops over the 32 tiles of a panel so that the compiler vectorises them;
 * they are compiled twice, for AVX-512F and for the baseline, and picked at run time. */
#include "ck_internal.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define T CK_NR /* tiles per panel */

/* Floats of a * a transformed matrices [out, in] in the packed GEMM layout. */
static size_t packed_count(int a, int out_channels, int in_channels) {
    size_t panels = ((size_t)out_channels + CK_MR - 1) / CK_MR;
    return (size_t)a * a * panels * (size_t)in_channels * CK_MR;
}

size_t ck_winograd_packed_count(int out_channels, int in_channels) { return packed_count(6, out_channels, in_channels); }

typedef struct pack_job {
    const double (*G)[3];
    int a;
    const float *weight;
    int out_channels, in_channels, panels;
    float *packed;
} pack_job;

/* One weight panel: U = G g G^T (in double) for its CK_MR outputs (zero past the last output) and every
 * input channel, CK_MR outputs at a time so that the arithmetic vectorises and each matrix row is stored
 * as one contiguous run. No fused multiply-adds, so that every level packs the same floats. */
#define PACK_BODY                                                                                           \
    const pack_job *j = context;                                                                           \
    const int a = j->a, cin = j->in_channels;                                                              \
    double G[6][3];                                                                                        \
    memcpy(G, j->G, sizeof(double) * 3 * (size_t)a);                                                      \
    for (int c = 0; c < cin; c++) {                                                                        \
        double g[9][CK_MR], t[6][3][CK_MR];                                                                \
        for (int r = 0; r < CK_MR; r++) {                                                                  \
            const int o = p * CK_MR + r;                                                                   \
            for (int k = 0; k < 9; k++) g[k][r] = o < j->out_channels ? j->weight[((size_t)o * cin + c) * 9 + k] : 0.0; \
        }                                                                                                  \
        for (int i = 0; i < a; i++)                                                                        \
            for (int x = 0; x < 3; x++)                                                                    \
                for (int r = 0; r < CK_MR; r++)                                                            \
                    t[i][x][r] = G[i][0] * g[x][r] + G[i][1] * g[3 + x][r] + G[i][2] * g[6 + x][r];        \
        const int live = j->out_channels - p * CK_MR < CK_MR ? j->out_channels - p * CK_MR : CK_MR;        \
        for (int i = 0; i < a; i++)                                                                        \
            for (int x = 0; x < a; x++) {                                                                  \
                float *dst = j->packed + (((size_t)(i * a + x) * j->panels + p) * cin + c) * CK_MR;        \
                for (int r = 0; r < CK_MR; r++)                                                            \
                    dst[r] = (float)(t[i][0][r] * G[x][0] + t[i][1][r] * G[x][1] + t[i][2][r] * G[x][2]);  \
                for (int r = live; r < CK_MR; r++) dst[r] = 0.0f;                                          \
            }                                                                                              \
    }

static void pack_task(void *context, int p, int worker) {
#pragma clang fp contract(off)
    (void)worker;
    PACK_BODY
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx2,fma"))) static void pack_task_avx512(void *context, int p, int worker) {
#pragma clang fp contract(off)
    (void)worker;
    PACK_BODY
}
#endif

/* U = G g G^T for G of a x 3, packed as a * a GEMM matrices [out, in] in the panel layout; threaded. */
static void pack(const double (*G)[3], int a, const float *weight, int out_channels, int in_channels, float *packed) {
    pack_job j = {G, a, weight, out_channels, in_channels, (out_channels + CK_MR - 1) / CK_MR, packed};
#if defined(__x86_64__)
    if (ck_level() >= CK_LEVEL_AVX512) {
        ck_parallel_for(j.panels, pack_task_avx512, &j);
        return;
    }
#endif
    ck_parallel_for(j.panels, pack_task, &j);
}

void ck_winograd_pack(const float *weight, int out_channels, int in_channels, float *packed) {
    static const double G[6][3] = {
        {1.0 / 4, 0, 0},
        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6},
        {1.0 / 24, -1.0 / 12, 1.0 / 6},
        {0, 0, 1},
    };
    pack(G, 6, weight, out_channels, in_channels, packed);
}

size_t ck_winograd2_packed_count(int out_channels, int in_channels) { return packed_count(4, out_channels, in_channels); }

void ck_winograd2_pack(const float *weight, int out_channels, int in_channels, float *packed) {
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    pack(G, 4, weight, out_channels, in_channels, packed);
}

/* B^T d B of a panel's patches (in[a * a][T] -> out rows, stride xs) and A^T m A (m rows, stride ms ->
 * y[m * m][T]), for one tile size at one level. */
typedef void (*input_transform_fn)(float (*in)[T], float *out, ptrdiff_t xs);
typedef void (*output_transform_fn)(const float *m, ptrdiff_t ms, float (*y)[T]);

typedef struct wino_job {
    const ck_conv *cv;
    const ck_conv_io *io;
    int m, a, na;                /* output tile m x m, input patch a x a (a = m + 2), na = a * a */
    int tiles_y, tiles_x, tiles; /* per image */
    int panels;                  /* tile panels over the batch */
    int mp, mchunks; /* weight panels; row chunks of them (balanced to within one) */
    ck_kernel_fn kernel;
    int wide;      /* AVX-512 gathers and output stage */
    input_transform_fn input_transform;   /* for the tile size and level, chosen once per call */
    output_transform_fn output_transform;
    float *shared; /* when set: every panel's transformed input, made before the GEMMs */
    float *shared_m; /* few-task mode: every (panel, weight panel)'s na GEMM outputs */
    int cblocks;   /* channel blocks of the shared input transform */
    const ck_conv *source; /* transient weights: the layer as given, in ck_conv_pack's or ck_direct_pack's layout */
    int direct;            /* ck_direct_pack's layout */
    float *u;              /* its transformed weights, when made for the whole layer */
    ck_conv transformed;   /* the layer with packed = u */
} wino_job;

/* The tile geometry of one panel. */
typedef struct panel_tiles {
    int count;
    int img[T], oy[T], ox[T];
} panel_tiles;

/* F(4x4): B^T d B over 32 lanes: in[36][T] (patch element-major) -> out[36 rows, stride xs][T]. */
#define INPUT_TRANSFORM_BODY                                                                                \
    float tmp[36][T];                                                                                      \
    for (int j = 0; j < 6; j++) { /* columns: rows of B^T applied down each column */                     \
        const float *d0 = in[0 * 6 + j], *d1 = in[1 * 6 + j], *d2 = in[2 * 6 + j];                        \
        const float *d3 = in[3 * 6 + j], *d4 = in[4 * 6 + j], *d5 = in[5 * 6 + j];                        \
        for (int l = 0; l < T; l++) {                                                                      \
            tmp[0 * 6 + j][l] = 4 * d0[l] - 5 * d2[l] + d4[l];                                            \
            tmp[1 * 6 + j][l] = -4 * d1[l] - 4 * d2[l] + d3[l] + d4[l];                                   \
            tmp[2 * 6 + j][l] = 4 * d1[l] - 4 * d2[l] - d3[l] + d4[l];                                    \
            tmp[3 * 6 + j][l] = -2 * d1[l] - d2[l] + 2 * d3[l] + d4[l];                                   \
            tmp[4 * 6 + j][l] = 2 * d1[l] - d2[l] - 2 * d3[l] + d4[l];                                    \
            tmp[5 * 6 + j][l] = 4 * d1[l] - 5 * d3[l] + d5[l];                                            \
        }                                                                                                  \
    }                                                                                                      \
    for (int i = 0; i < 6; i++) { /* rows */                                                               \
        const float *d0 = tmp[i * 6 + 0], *d1 = tmp[i * 6 + 1], *d2 = tmp[i * 6 + 2];                      \
        const float *d3 = tmp[i * 6 + 3], *d4 = tmp[i * 6 + 4], *d5 = tmp[i * 6 + 5];                      \
        float *o0 = out + (i * 6 + 0) * xs, *o1 = out + (i * 6 + 1) * xs, *o2 = out + (i * 6 + 2) * xs;  \
        float *o3 = out + (i * 6 + 3) * xs, *o4 = out + (i * 6 + 4) * xs, *o5 = out + (i * 6 + 5) * xs;  \
        for (int l = 0; l < T; l++) {                                                                      \
            o0[l] = 4 * d0[l] - 5 * d2[l] + d4[l];                                                        \
            o1[l] = -4 * d1[l] - 4 * d2[l] + d3[l] + d4[l];                                               \
            o2[l] = 4 * d1[l] - 4 * d2[l] - d3[l] + d4[l];                                                \
            o3[l] = -2 * d1[l] - d2[l] + 2 * d3[l] + d4[l];                                               \
            o4[l] = 2 * d1[l] - d2[l] - 2 * d3[l] + d4[l];                                                \
            o5[l] = 4 * d1[l] - 5 * d3[l] + d5[l];                                                        \
        }                                                                                                  \
    }

/* F(4x4): A^T m A over 32 lanes: m[36 rows, stride ms][T] -> y[16][T]. */
#define OUTPUT_TRANSFORM_BODY                                                                               \
    float tmp[24][T];                                                                                      \
    for (int j = 0; j < 6; j++) {                                                                          \
        const float *m0 = m + (0 * 6 + j) * ms, *m1 = m + (1 * 6 + j) * ms, *m2 = m + (2 * 6 + j) * ms;   \
        const float *m3 = m + (3 * 6 + j) * ms, *m4 = m + (4 * 6 + j) * ms, *m5 = m + (5 * 6 + j) * ms;   \
        for (int l = 0; l < T; l++) {                                                                      \
            float a = m1[l] + m2[l], b = m1[l] - m2[l], c = m3[l] + m4[l], d = m3[l] - m4[l];              \
            tmp[0 * 6 + j][l] = m0[l] + a + c;                                                            \
            tmp[1 * 6 + j][l] = b + 2 * d;                                                                 \
            tmp[2 * 6 + j][l] = a + 4 * c;                                                                 \
            tmp[3 * 6 + j][l] = b + 8 * d + m5[l];                                                         \
        }                                                                                                  \
    }                                                                                                      \
    for (int i = 0; i < 4; i++) {                                                                          \
        const float *m0 = tmp[i * 6 + 0], *m1 = tmp[i * 6 + 1], *m2 = tmp[i * 6 + 2];                      \
        const float *m3 = tmp[i * 6 + 3], *m4 = tmp[i * 6 + 4], *m5 = tmp[i * 6 + 5];                      \
        for (int l = 0; l < T; l++) {                                                                      \
            float a = m1[l] + m2[l], b = m1[l] - m2[l], c = m3[l] + m4[l], d = m3[l] - m4[l];              \
            y[i * 4 + 0][l] = m0[l] + a + c;                                                               \
            y[i * 4 + 1][l] = b + 2 * d;                                                                   \
            y[i * 4 + 2][l] = a + 4 * c;                                                                   \
            y[i * 4 + 3][l] = b + 8 * d + m5[l];                                                           \
        }                                                                                                  \
    }

/* F(2x2): B^T d B over 32 lanes, in[16][T] -> out[16 rows, stride xs][T], with
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
#define INPUT_TRANSFORM2_BODY                                                                               \
    float tmp[16][T];                                                                                      \
    for (int j = 0; j < 4; j++) {                                                                          \
        const float *d0 = in[0 * 4 + j], *d1 = in[1 * 4 + j], *d2 = in[2 * 4 + j], *d3 = in[3 * 4 + j];   \
        for (int l = 0; l < T; l++) {                                                                      \
            tmp[0 * 4 + j][l] = d0[l] - d2[l];                                                             \
            tmp[1 * 4 + j][l] = d1[l] + d2[l];                                                             \
            tmp[2 * 4 + j][l] = d2[l] - d1[l];                                                             \
            tmp[3 * 4 + j][l] = d1[l] - d3[l];                                                             \
        }                                                                                                  \
    }                                                                                                      \
    for (int i = 0; i < 4; i++) {                                                                          \
        const float *d0 = tmp[i * 4 + 0], *d1 = tmp[i * 4 + 1], *d2 = tmp[i * 4 + 2], *d3 = tmp[i * 4 + 3]; \
        float *o0 = out + (i * 4 + 0) * xs, *o1 = out + (i * 4 + 1) * xs, *o2 = out + (i * 4 + 2) * xs;  \
        float *o3 = out + (i * 4 + 3) * xs;                                                                \
        for (int l = 0; l < T; l++) {                                                                      \
            o0[l] = d0[l] - d2[l];                                                                         \
            o1[l] = d1[l] + d2[l];                                                                         \
            o2[l] = d2[l] - d1[l];                                                                         \
            o3[l] = d1[l] - d3[l];                                                                         \
        }                                                                                                  \
    }

/* F(2x2): A^T m A over 32 lanes, m[16 rows, stride ms][T] -> y[4][T], with A^T = [1 1 1 0; 0 1 -1 -1]. */
#define OUTPUT_TRANSFORM2_BODY                                                                              \
    float tmp[8][T];                                                                                       \
    for (int j = 0; j < 4; j++) {                                                                          \
        const float *m0 = m + (0 * 4 + j) * ms, *m1 = m + (1 * 4 + j) * ms, *m2 = m + (2 * 4 + j) * ms;   \
        const float *m3 = m + (3 * 4 + j) * ms;                                                            \
        for (int l = 0; l < T; l++) {                                                                      \
            tmp[0 * 4 + j][l] = m0[l] + m1[l] + m2[l];                                                     \
            tmp[1 * 4 + j][l] = m1[l] - m2[l] - m3[l];                                                     \
        }                                                                                                  \
    }                                                                                                      \
    for (int i = 0; i < 2; i++) {                                                                          \
        const float *m0 = tmp[i * 4 + 0], *m1 = tmp[i * 4 + 1], *m2 = tmp[i * 4 + 2], *m3 = tmp[i * 4 + 3]; \
        for (int l = 0; l < T; l++) {                                                                      \
            y[i * 2 + 0][l] = m0[l] + m1[l] + m2[l];                                                       \
            y[i * 2 + 1][l] = m1[l] - m2[l] - m3[l];                                                       \
        }                                                                                                  \
    }

static void input_transform_portable(float (*in)[T], float *out, ptrdiff_t xs) { INPUT_TRANSFORM_BODY }
static void output_transform_portable(const float *m, ptrdiff_t ms, float (*y)[T]) { OUTPUT_TRANSFORM_BODY }
static void input_transform2_portable(float (*in)[T], float *out, ptrdiff_t xs) { INPUT_TRANSFORM2_BODY }
static void output_transform2_portable(const float *m, ptrdiff_t ms, float (*y)[T]) { OUTPUT_TRANSFORM2_BODY }
#if defined(__x86_64__)
__attribute__((target("avx512f,avx2,fma"))) static void input_transform_avx512(float (*in)[T], float *out,
                                                                               ptrdiff_t xs) {
    INPUT_TRANSFORM_BODY
}
__attribute__((target("avx512f,avx2,fma"))) static void output_transform_avx512(const float *m, ptrdiff_t ms,
                                                                                float (*y)[T]) {
    OUTPUT_TRANSFORM_BODY
}
__attribute__((target("avx512f,avx2,fma"))) static void input_transform2_avx512(float (*in)[T], float *out,
                                                                                ptrdiff_t xs) {
    INPUT_TRANSFORM2_BODY
}
__attribute__((target("avx512f,avx2,fma"))) static void output_transform2_avx512(const float *m, ptrdiff_t ms,
                                                                                 float (*y)[T]) {
    OUTPUT_TRANSFORM2_BODY
}
#endif

/* Gathers the a x a patch of every tile of the panel for channel ch into patch[a * a][T] (zero outside). */
static void gather_patches(const wino_job *job, const panel_tiles *pt, int ch, float (*patch)[T]) {
    const ck_conv_io *io = job->io;
    const int h = io->h, w = io->w, a = job->a;
    for (int l = 0; l < T; l++) {
        if (l >= pt->count) {
            for (int k = 0; k < job->na; k++) patch[k][l] = 0;
            continue;
        }
        const float *src = io->in + (ptrdiff_t)pt->img[l] * io->in_batch_stride + (ptrdiff_t)ch * h * w;
        const int y0 = pt->oy[l] - 1, x0 = pt->ox[l] - 1;
        if (y0 >= 0 && x0 >= 0 && y0 + a <= h && x0 + a <= w) {
            const float *p = src + (ptrdiff_t)y0 * w + x0;
            for (int r = 0; r < a; r++, p += w)
                for (int c = 0; c < a; c++) patch[r * a + c][l] = p[c];
        } else {
            for (int r = 0; r < a; r++) {
                const int y = y0 + r;
                for (int c = 0; c < a; c++) {
                    const int x = x0 + c;
                    patch[r * a + c][l] = (y >= 0 && y < h && x >= 0 && x < w) ? src[(ptrdiff_t)y * w + x] : 0.0f;
                }
            }
        }
    }
}

static void panel_setup(const wino_job *job, int panel, panel_tiles *pt) {
    const ck_conv_io *io = job->io;
    pt->count = 0;
    const int total = io->batch * job->tiles;
    for (int l = 0; l < T; l++) {
        const int t = panel * T + l;
        if (t >= total) break;
        const int img = t / job->tiles, r = t % job->tiles;
        pt->img[l] = img;
        pt->oy[l] = (r / job->tiles_x) * job->m;
        pt->ox[l] = (r % job->tiles_x) * job->m;
        pt->count++;
    }
}

#if defined(__x86_64__)
/* gather_patches with AVX-512 gathers: per patch element, one masked gather of 16 tiles' values (lanes
 * whose value lies in the zero padding, or past the panel's tiles, read nothing and give 0). `off` holds
 * each lane's offset of its patch's top-left corner (row y0, column x0) from the channel's plane. */
__attribute__((target("avx512f,avx2,fma"))) static void gather_patches_avx512(const wino_job *job, const panel_tiles *pt,
                                                                                  int ch, float (*patch)[T]) {
    const ck_conv_io *io = job->io;
    const int h = io->h, w = io->w;
    for (int half = 0; half < T / 16; half++) {
        const int l0 = half * 16;
        int offs[16], ys[16], xs[16], imgs[16];
        for (int l = 0; l < 16; l++) {
            const int lane = l0 + l;
            const int in_panel = lane < pt->count;
            ys[l] = in_panel ? pt->oy[lane] - 1 : -100;
            xs[l] = in_panel ? pt->ox[lane] - 1 : -100;
            imgs[l] = in_panel ? pt->img[lane] : 0;
            offs[l] = 0;
        }
        /* Offsets are relative to image 0's channel plane; images differ by in_batch_stride. */
        const float *base = io->in + (ptrdiff_t)ch * h * w;
        ptrdiff_t img_off[16];
        int fits = 1;
        for (int l = 0; l < 16; l++) {
            /* lanes past the panel's tiles are masked off (their y is out of range): offset 0 */
            img_off[l] = l0 + l < pt->count ? (ptrdiff_t)imgs[l] * io->in_batch_stride + (ptrdiff_t)ys[l] * w + xs[l] : 0;
            if (img_off[l] < -(ptrdiff_t)w - 1 || img_off[l] > (ptrdiff_t)0x3fffffff) fits = 0;
        }
        if (!fits) { /* offsets beyond 32 bits (huge batches): the scalar path */
            float tmp[36][T] __attribute__((aligned(64))); /* room for either tile size */
            gather_patches(job, pt, ch, tmp);
            for (int k = 0; k < job->na; k++)
                for (int l = 0; l < 16; l++) patch[k][l0 + l] = tmp[k][l0 + l];
            continue;
        }
        for (int l = 0; l < 16; l++) offs[l] = (int)img_off[l];
        const __m512i vo = _mm512_loadu_si512(offs), vy = _mm512_loadu_si512(ys), vx = _mm512_loadu_si512(xs);
        const __m512i hv = _mm512_set1_epi32(h), wv = _mm512_set1_epi32(w), zero = _mm512_setzero_si512();
        for (int r = 0; r < job->a; r++) {
            const __m512i y = _mm512_add_epi32(vy, _mm512_set1_epi32(r));
            const __mmask16 my = _mm512_cmpge_epi32_mask(y, zero) & _mm512_cmplt_epi32_mask(y, hv);
            for (int c = 0; c < job->a; c++) {
                const __m512i x = _mm512_add_epi32(vx, _mm512_set1_epi32(c));
                const __mmask16 m = my & _mm512_cmpge_epi32_mask(x, zero) & _mm512_cmplt_epi32_mask(x, wv);
                const __m512i idx = _mm512_add_epi32(vo, _mm512_set1_epi32(r * w + c));
                const __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, base, 4);
                _mm512_store_ps(&patch[r * job->a + c][l0], g);
            }
        }
    }
}
#endif

/* Input transform of channels [c0, c1) of a panel into v ([na][cin][T]). */
static void transform_input(const wino_job *job, const panel_tiles *pt, int c0, int c1, float *v) {
    const int cin = job->cv->in_channels;
    float patch[36][T] __attribute__((aligned(64))); /* room for either tile size */
    for (int ch = c0; ch < c1; ch++) {
#if defined(__x86_64__)
        if (job->wide) gather_patches_avx512(job, pt, ch, patch);
        else
#endif
            gather_patches(job, pt, ch, patch);
        job->input_transform(patch, v + (size_t)ch * T, (ptrdiff_t)cin * T);
    }
}

static void wino_transform_task(void *context, int task, int worker) {
    (void)worker;
    const wino_job *job = context;
    const int cb = task % job->cblocks, panel = task / job->cblocks;
    const int cin = job->cv->in_channels, per = (cin + job->cblocks - 1) / job->cblocks;
    const int c0 = cb * per, c1 = c0 + per > cin ? cin : c0 + per;
    if (c0 >= c1) return;
    panel_tiles pt;
    panel_setup(job, panel, &pt);
    transform_input(job, &pt, c0, c1, job->shared + (size_t)panel * job->na * cin * T);
}

/* Output transform of weight panel p of a panel from m ([na][CK_MR][T]): bias, residual, ReLU, store. */
static void output_stage(const wino_job *job, const panel_tiles *pt, int p, const float *m) {
    const ck_conv *cv = job->cv;
    const ck_conv_io *io = job->io;
    float y[16][T] __attribute__((aligned(64)));
    const int oh = io->oh, ow = io->ow;
    int mv = cv->out_channels - p * CK_MR;
    if (mv > CK_MR) mv = CK_MR;
    for (int r = 0; r < mv; r++) {
        const int o = p * CK_MR + r;
        job->output_transform(m + (size_t)r * T, (ptrdiff_t)CK_MR * T, y);
        const float bias = cv->bias ? cv->bias[o] : 0.0f;
        const float scale = cv->scale ? cv->scale[o] : 1.0f;
        for (int l = 0; l < pt->count; l++) {
            float *dst = io->out + (ptrdiff_t)pt->img[l] * io->out_batch_stride + (ptrdiff_t)o * oh * ow;
            const float *res = io->residual ? io->residual + (ptrdiff_t)pt->img[l] * io->residual_batch_stride +
                                                  (ptrdiff_t)o * oh * ow
                                            : NULL;
            const int uy = oh - pt->oy[l] < job->m ? oh - pt->oy[l] : job->m;
            const int ux = ow - pt->ox[l] < job->m ? ow - pt->ox[l] : job->m;
            for (int u = 0; u < uy; u++) {
                const ptrdiff_t at = (ptrdiff_t)(pt->oy[l] + u) * ow + pt->ox[l];
                for (int x = 0; x < ux; x++) {
                    float val = cv->scale ? fmaf(y[u * job->m + x][l], scale, bias) : y[u * job->m + x][l] + bias;
                    if (res) val += res[at + x];
                    if (io->relu) val = val < 0 ? 0 : val;
                    dst[at + x] = val;
                }
            }
        }
    }
}

#if defined(__x86_64__)
/* output_stage with AVX-512: per output channel and patch element (u, x), 16 tiles at a time: the bias,
 * a gathered residual and ReLU in vector registers, then a masked scatter (lanes past the panel's tiles
 * or outside the output plane store nothing). The same arithmetic as output_stage, element by element. */
__attribute__((target("avx512f,avx2,fma"))) static int output_stage_avx512(const wino_job *job, const panel_tiles *pt,
                                                                              int p, const float *m) {
    const ck_conv *cv = job->cv;
    const ck_conv_io *io = job->io;
    const int oh = io->oh, ow = io->ow;
    const ptrdiff_t plane = (ptrdiff_t)oh * ow;
    int offs[T], rofs[T], oys[T], oxs[T];
    for (int l = 0; l < T; l++) {
        const int in_panel = l < pt->count;
        const ptrdiff_t o = in_panel ? (ptrdiff_t)pt->img[l] * io->out_batch_stride + (ptrdiff_t)pt->oy[l] * ow + pt->ox[l] : 0;
        const ptrdiff_t r = in_panel && io->residual ? (ptrdiff_t)pt->img[l] * io->residual_batch_stride + (ptrdiff_t)pt->oy[l] * ow + pt->ox[l] : 0;
        /* 32-bit offsets only: channel planes are added to the base pointer below */
        if (o > 0x3fffffff || r > 0x3fffffff) return 0;
        offs[l] = (int)o;
        rofs[l] = (int)r;
        oys[l] = in_panel ? pt->oy[l] : oh;
        oxs[l] = in_panel ? pt->ox[l] : ow;
    }
    float y[16][T] __attribute__((aligned(64)));
    int mv = cv->out_channels - p * CK_MR;
    if (mv > CK_MR) mv = CK_MR;
    const __m512 zero = _mm512_setzero_ps();
    for (int r = 0; r < mv; r++) {
        const int o = p * CK_MR + r;
        job->output_transform(m + (size_t)r * T, (ptrdiff_t)CK_MR * T, y);
        const __m512 bias = _mm512_set1_ps(cv->bias ? cv->bias[o] : 0.0f);
        const __m512 scale = _mm512_set1_ps(cv->scale ? cv->scale[o] : 1.0f);
        float *dst = io->out + (ptrdiff_t)o * plane;
        const float *res = io->residual ? io->residual + (ptrdiff_t)o * plane : NULL;
        for (int half = 0; half < T / 16; half++) {
            const int l0 = half * 16;
            const __m512i vo = _mm512_loadu_si512(offs + l0), vr = _mm512_loadu_si512(rofs + l0);
            const __m512i vy = _mm512_loadu_si512(oys + l0), vx = _mm512_loadu_si512(oxs + l0);
            for (int u = 0; u < job->m; u++) {
                const __mmask16 mu = _mm512_cmplt_epi32_mask(_mm512_add_epi32(vy, _mm512_set1_epi32(u)), _mm512_set1_epi32(oh));
                for (int x = 0; x < job->m; x++) {
                    const __mmask16 mk = mu & _mm512_cmplt_epi32_mask(_mm512_add_epi32(vx, _mm512_set1_epi32(x)), _mm512_set1_epi32(ow));
                    const __m512i d = _mm512_set1_epi32(u * ow + x);
                    const __m512 yv = _mm512_load_ps(&y[u * job->m + x][l0]);
                    __m512 v = cv->scale ? _mm512_fmadd_ps(yv, scale, bias) : _mm512_add_ps(yv, bias);
                    if (res) v = _mm512_add_ps(v, _mm512_mask_i32gather_ps(zero, mk, _mm512_add_epi32(vr, d), res, 4));
                    if (io->relu) v = _mm512_max_ps(zero, v);
                    _mm512_mask_i32scatter_ps(dst, mk, _mm512_add_epi32(vo, d), v, 4);
                }
            }
        }
    }
    return 1;
}
#endif

/* Weight panel p (matrix xi at a + xi * astride, cin x CK_MR each) against a panel of tiles whose
 * transformed input is v ([na][cin][T]): the na GEMMs into m ([na][CK_MR][T]), then the output stage. */
static void apply_weight_panel(const wino_job *job, const panel_tiles *pt, int p, const float *a, size_t astride,
                               const float *v, float *m) {
    const int cin = job->cv->in_channels;
    const int rows = job->cv->out_channels - p * CK_MR < CK_MR ? job->cv->out_channels - p * CK_MR : CK_MR;
    for (int xi = 0; xi < job->na; xi++)
        job->kernel(cin, a + (size_t)xi * astride, v + (size_t)xi * cin * T, T, m + (size_t)xi * CK_MR * T, T, rows, T, 1, 1,
                    NULL, NULL, NULL, 0, 0);
#if defined(__x86_64__)
    if (job->wide && output_stage_avx512(job, pt, p, m)) return;
#endif
    output_stage(job, pt, p, m);
}

static void wino_task(void *context, int task, int worker) {
    (void)worker;
    const wino_job *job = context;
    const ck_conv *cv = job->cv;
    const int cin = cv->in_channels;
    const int mchunk = task % job->mchunks, panel = task / job->mchunks;
    const int p0 = (int)((long)mchunk * job->mp / job->mchunks);
    const int p1 = (int)((long)(mchunk + 1) * job->mp / job->mchunks);
    if (p0 >= p1) return;

    panel_tiles pt;
    panel_setup(job, panel, &pt);

    /* 1. input transform into V[na][cin][T] (or the shared one, made beforehand) */
    float *v;
    if (job->shared) {
        v = job->shared + (size_t)panel * job->na * cin * T;
    } else {
        v = ck_scratch(1, (size_t)job->na * cin * T);
        transform_input(job, &pt, 0, cin, v);
    }

    /* 2-3. per weight panel: na GEMMs, then the output transform */
    float *m = ck_scratch(2, (size_t)job->na * CK_MR * T);
    const size_t astride = (size_t)job->mp * cin * CK_MR;
    for (int p = p0; p < p1; p++) apply_weight_panel(job, &pt, p, cv->packed + (size_t)p * cin * CK_MR, astride, v, m);
}

/* Few-task mode, phase 2: the GEMMs of (panel, weight panel, block of a positions) into a shared M. */
static float *shared_m(const wino_job *job, int panel, int p) {
    return job->shared_m + ((size_t)panel * job->mp + p) * job->na * CK_MR * T;
}

static void wino_gemm_task(void *context, int task, int worker) {
    (void)worker;
    const wino_job *job = context;
    const ck_conv *cv = job->cv;
    const int cin = cv->in_channels;
    const int xb = task % job->a, p = (task / job->a) % job->mp, panel = task / job->a / job->mp;
    const float *v = job->shared + (size_t)panel * job->na * cin * T;
    float *m = shared_m(job, panel, p);
    const int rows = cv->out_channels - p * CK_MR < CK_MR ? cv->out_channels - p * CK_MR : CK_MR;
    for (int xi = xb * job->a; xi < xb * job->a + job->a; xi++) {
        const float *a = cv->packed + ((size_t)xi * job->mp + p) * cin * CK_MR;
        job->kernel(cin, a, v + (size_t)xi * cin * T, T, m + (size_t)xi * CK_MR * T, T, rows, T, 1, 1, NULL, NULL, NULL, 0, 0);
    }
}

static void wino_output_task(void *context, int task, int worker) {
    (void)worker;
    const wino_job *job = context;
    const int p = task % job->mp, panel = task / job->mp;
    panel_tiles pt;
    panel_setup(job, panel, &pt);
#if defined(__x86_64__)
    if (job->wide && output_stage_avx512(job, &pt, p, shared_m(job, panel, p))) return;
#endif
    output_stage(job, &pt, p, shared_m(job, panel, p));
}

#if defined(__x86_64__)
static void transient_pack_task(void *context, int p, int worker);
static void fused_task(void *context, int task, int worker);
#endif

/* The convolution over output tiles of m x m (4 or 2). `transient`: cv->packed holds the weights in
 * ck_conv_pack's layout (1) or ck_direct_pack's (2) (AVX-512 only), transformed during the call (below). */
static void forward(int m, const ck_conv *cv, const ck_conv_io *io, int transient) {
    wino_job job;
    job.cv = cv;
    job.source = NULL;
    job.io = io;
    if (io->batch <= 0 || io->oh <= 0 || io->ow <= 0) return;
    job.m = m;
    job.a = m + 2;
    job.na = job.a * job.a;
    job.tiles_y = (io->oh + m - 1) / m;
    job.tiles_x = (io->ow + m - 1) / m;
    job.tiles = job.tiles_y * job.tiles_x;
    job.panels = (io->batch * job.tiles + T - 1) / T;
    job.mp = (cv->out_channels + CK_MR - 1) / CK_MR;
    job.kernel = ck_kernel();
#if defined(__x86_64__)
    job.wide = ck_level() >= CK_LEVEL_AVX512;
#else
    job.wide = 0;
#endif
    job.input_transform = m == 2 ? input_transform2_portable : input_transform_portable;
    job.output_transform = m == 2 ? output_transform2_portable : output_transform_portable;
#if defined(__x86_64__)
    if (job.wide) {
        job.input_transform = m == 2 ? input_transform2_avx512 : input_transform_avx512;
        job.output_transform = m == 2 ? output_transform2_avx512 : output_transform_avx512;
    }
#endif
    const int threads = ck_threads();
    /* Row chunks only when whole panels would leave threads idle for more than about 15% of the layer's
     * time (the split transforms the input into a shared buffer first, behind one more barrier: on
     * ResNet-50's 64-channel 56 x 56 layers at batch 1, seven panels on two threads run 17% faster
     * unsplit). */
    job.mchunks = 1;
    if (threads > 1 && job.panels < 4 * threads) {
        double sizes[4 * 64];
        const int total = io->batch * job.tiles;
        for (int p = 0; p < job.panels; p++) sizes[p] = (double)(total - p * T < T ? total - p * T : T);
        if (ck_task_balance(job.panels, sizes, threads) < 0.85) {
            int want = (4 * threads + job.panels - 1) / job.panels;
            job.mchunks = want > job.mp ? job.mp : want;
        }
    }
    /* Several weight chunks per panel would each transform the same input: transform every panel once,
     * in parallel, into a shared buffer first (when it is not too large). Transient weights on at most
     * two panels of tiles per thread take this way too (below: each weight panel transformed into the
     * task's own scratch, which stays in the cache while it serves every panel of tiles, against the
     * whole layer's transformed weights written to memory and read back per panel): measured on 256 ->
     * 256 at 14x14, F(4x4), one thread, batch 2 (one panel) 1.89 against 2.56 ms, batch 4 3.73 against
     * 3.98; two threads, batch 4 1.70 against 2.05; with more panels it is no faster (batch 8 at one
     * thread 6.75 against 6.42; 128 -> 128 at 28x28, batch 2, one thread, 1.90 against 1.70). */
    job.shared = NULL;
    job.cblocks = 1;
    const size_t shared = (size_t)job.panels * job.na * cv->in_channels * T;
    const int fuse = transient && job.panels <= 2 * threads && job.mp >= 4 * threads;
    if ((job.mchunks > 1 || fuse) && shared <= ((size_t)8 << 20)) {
        job.shared = ck_scratch(3, shared);
        job.cblocks = (4 * threads + job.panels - 1) / job.panels;
        if (job.cblocks > cv->in_channels) job.cblocks = cv->in_channels;
        ck_parallel_for(job.panels * job.cblocks, wino_transform_task, &job);
    }
#if defined(__x86_64__)
    if (transient) {
        /* Transient weights. With every panel's input transformed beforehand (few panels: small planes
         * at small batches) and weight panels enough to share among the threads, each task transforms
         * its weight panels one at a time into its own scratch, where they stay in the cache for every
         * panel of tiles: no copy of the layer's transformed weights. Else the whole layer is transformed
         * first, in parallel, into the calling thread's scratch, and runs as a prepared layer: many
         * panels of tiles, each reading every weight panel. */
        job.source = cv;
        job.direct = transient == 2;
        if (job.shared && job.mp >= 4 * threads) {
            /* up to eight chunks per thread, one weight panel at least: small last tasks (ck_conv.c) */
            job.mchunks = job.mp < 8 * threads ? job.mp : 8 * threads;
            ck_parallel_for(job.mchunks, fused_task, &job);
            return;
        }
        job.u = ck_scratch(0, packed_count(job.a, cv->out_channels, cv->in_channels));
        ck_parallel_for(job.mp, transient_pack_task, &job);
        job.transformed = *cv;
        job.transformed.packed = job.u;
        job.cv = &job.transformed;
    }
#else
    (void)transient;
#endif
    if (job.shared && job.panels * job.mp < 4 * threads) {
        /* Too few (panel, weight panel) pairs to balance the threads: split the GEMMs by position too. */
        job.shared_m = ck_scratch(2, (size_t)job.panels * job.mp * job.na * CK_MR * T);
        ck_parallel_for(job.panels * job.mp * job.a, wino_gemm_task, &job);
        ck_parallel_for(job.panels * job.mp, wino_output_task, &job);
        return;
    }
    ck_parallel_for(job.panels * job.mchunks, wino_task, &job);
}

void ck_winograd_forward(const ck_conv *cv, const ck_conv_io *io) { forward(4, cv, io, 0); }

void ck_winograd2_forward(const ck_conv *cv, const ck_conv_io *io) { forward(2, cv, io, 0); }

/* ---- Transient weights: transformed per call from the layer's one copy --------------------------- */

#if defined(__x86_64__)
/* G applied across the lanes to (a, b, e), one column or row of a 3x3 kernel, into out[0 .. m + 1]:
 * F(2x2): G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1];
 * F(4x4): G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]. */
__attribute__((target("avx512f,avx2,fma"))) static inline void transient_g(int m, __m512 a, __m512 b, __m512 e, __m512 *out) {
    const __m512 s = _mm512_add_ps(a, e);
    if (m == 2) {
        const __m512 h = _mm512_set1_ps(0.5f);
        out[0] = a;
        out[1] = _mm512_mul_ps(_mm512_add_ps(s, b), h);
        out[2] = _mm512_mul_ps(_mm512_sub_ps(s, b), h);
        out[3] = e;
        return;
    }
    const __m512 m6 = _mm512_set1_ps(-1.0f / 6);
    const __m512 pp = _mm512_add_ps(_mm512_mul_ps(a, _mm512_set1_ps(1.0f / 24)), _mm512_mul_ps(e, _mm512_set1_ps(1.0f / 6)));
    const __m512 q = _mm512_mul_ps(b, _mm512_set1_ps(1.0f / 12));
    out[0] = _mm512_mul_ps(a, _mm512_set1_ps(0.25f));
    out[1] = _mm512_mul_ps(_mm512_add_ps(s, b), m6);
    out[2] = _mm512_mul_ps(_mm512_sub_ps(s, b), m6);
    out[3] = _mm512_add_ps(pp, q);
    out[4] = _mm512_sub_ps(pp, q);
    out[5] = e;
}

/* Vector s (0, 1, 2) of the 4 x 12 outputs of 4 channels from the rows of channels s and s + 1 (lanes
 * 0..11 of each): [a0..a11 b0..b3], [b4..b11 c0..c3], [c8..c11 d0..d11]. */
__attribute__((target("avx512f,avx2,fma"), always_inline)) static inline __m512 transient_join(int s, __m512 a, __m512 b) {
    const __m512i i0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19);
    const __m512i i1 = _mm512_setr_epi32(4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i i2 = _mm512_setr_epi32(8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27);
    return _mm512_permutex2var_ps(a, s == 0 ? i0 : s == 1 ? i1 : i2, b);
}

/* transient_pack_panel for tile size m from weights in ck_conv_pack's layout (`gemm`) or in
 * ck_direct_pack's, where with `straddle` the panel's outputs run past the end of a direct group into the
 * next (all three constants where it is inlined: its loops unrolled, its matrices in registers). */
__attribute__((target("avx512f,avx2,fma"), always_inline)) static inline void transient_pack_body(
    const ck_conv *cv, const int m, const int gemm, const int straddle, int p, float *dst0, size_t mstride) {
    const int cin = cv->in_channels, k = m + 2;
    const int o0 = p * CK_MR;
    const int rows = cv->out_channels - o0 < CK_MR ? cv->out_channels - o0 : CK_MR;
    /* ck_conv_pack: the panel's [c * 9 + tap][CK_MR] (zero rows past the last output), a channel's 9 taps
     * 108 floats apart. ck_direct_pack: groups of go outputs, each [c / 16][tap][c % 16][go]; the panel
     * starts at output o0 % go of group o0 / go, and its first n1 outputs are there, the rest (straddle)
     * at the start of the next group, read from w1 at the same offsets (lanes n1 ... rows - 1). */
    const int go = gemm ? CK_MR : ck_direct_group(cv->out_channels);
    const size_t group = (size_t)cin * 9 * go;
    const size_t per_block = (size_t)9 * 16 * go;
    const size_t tap = gemm ? CK_MR : (size_t)16 * go, next = gemm ? 9 * CK_MR : (size_t)go; /* to the next channel */
    const float *w = gemm ? cv->packed + (size_t)p * cin * 9 * CK_MR : cv->packed + (size_t)(o0 / go) * group + o0 % go;
    const int n1 = gemm ? CK_MR : (rows < go - o0 % go ? rows : go - o0 % go);
    const __mmask16 mask = (__mmask16)((1u << (gemm ? CK_MR : n1)) - 1);
    const __mmask16 mask1 = (__mmask16)(((1u << rows) - 1) & ~((1u << n1) - 1));
    const float *w1 = straddle ? cv->packed + (size_t)(o0 / go + 1) * group - n1 : w;
    for (int c = 0; c < cin; c += 4) {
        float *d = dst0 + (size_t)c * CK_MR;
        /* channel c's first tap; c + 1 .. c + 3 follow, `next` floats apart (in ck_direct_pack's layout in
         * the same block of 16) */
        const size_t off = gemm ? (size_t)c * 9 * CK_MR : (size_t)(c / 16) * per_block + (size_t)(c % 16) * go;
        for (int s = 0; s < 3; s++) {
            __m512 g[9];
            for (int t = 0; t < 9; t++) {
                const size_t at = off + (size_t)s * next + (size_t)t * tap;
                __m512 a = _mm512_maskz_loadu_ps(mask, w + at), b = _mm512_maskz_loadu_ps(mask, w + at + next);
                if (straddle) {
                    a = _mm512_mask_loadu_ps(a, mask1, w1 + at);
                    b = _mm512_mask_loadu_ps(b, mask1, w1 + at + next);
                }
                g[t] = transient_join(s, a, b);
            }
            /* columns (each tap row x of g through G), then rows (each row of t through G) */
            __m512 t[6][3], o[6];
            for (int x = 0; x < 3; x++) {
                transient_g(m, g[x], g[3 + x], g[6 + x], o);
                for (int i = 0; i < k; i++) t[i][x] = o[i];
            }
            for (int i = 0; i < k; i++) {
                transient_g(m, t[i][0], t[i][1], t[i][2], o);
                for (int j = 0; j < k; j++) _mm512_store_ps(d + (size_t)(i * k + j) * mstride + 16 * s, o[j]);
            }
        }
    }
}

/* U = G g G^T of weight panel p (CK_MR outputs, zero past the last) for every input channel, in float,
 * from weights in ck_conv_pack's layout or (`direct`) in ck_direct_pack's, stored as matrix xi of channel
 * c at dst0 + xi * mstride + c * CK_MR (dst0 and mstride keep 64-byte alignment: in_channels is a multiple
 * of 16). Four channels' 12 outputs are 48 floats, three whole vectors, and the transform works lane by
 * lane: so each tap of 4 channels is read as three vectors (transient_join: a masked load per channel,
 * then one permute; from ck_direct_pack's layout a second masked load per channel for a panel that
 * straddles two of its groups of outputs), and each of the three goes through the transform and is
 * stored aligned in place. No lane is wasted and nothing is rearranged after the transform: 1.4-1.8x
 * faster than transforming each channel's 12 outputs in a 16-lane vector and permuting the results every
 * 4 channels (microbenchmark, 64 to 256 channels, the same U bit for bit), and compact ResNet-152 at
 * batch 1 went from 1.10 to 1.055x the default's latency. From ck_conv_pack's layout a panel reads its
 * channels' 108 floats each in order; from ck_direct_pack's, 12 of every row of 64 outputs, 9 rows 4 KiB
 * apart: on ResNet's 256 -> 256 layer at 14 x 14, batch 1, two threads, 0.20 against 0.13 ms a thread
 * per call, the same U bit for bit (and ResNet-152 at batch 1 1.055x against 1.0x), which is why
 * transient layers of 33 to 256 outputs are held as GEMM panels. */
__attribute__((target("avx512f,avx2,fma"))) static void transient_pack_panel(const ck_conv *cv, int m, int direct, int p,
                                                                             float *dst0, size_t mstride) {
    if (direct) {
        const int go = ck_direct_group(cv->out_channels), o0 = p * CK_MR;
        const int rows = cv->out_channels - o0 < CK_MR ? cv->out_channels - o0 : CK_MR;
        if (o0 % go + rows > go) {
            if (m == 2) transient_pack_body(cv, 2, 0, 1, p, dst0, mstride);
            else transient_pack_body(cv, 4, 0, 1, p, dst0, mstride);
        } else if (m == 2) {
            transient_pack_body(cv, 2, 0, 0, p, dst0, mstride);
        } else {
            transient_pack_body(cv, 4, 0, 0, p, dst0, mstride);
        }
    } else {
        if (m == 2) transient_pack_body(cv, 2, 1, 0, p, dst0, mstride);
        else transient_pack_body(cv, 4, 1, 0, p, dst0, mstride);
    }
}

/* The whole layer's transformed weights, one weight panel per task. */
static void transient_pack_task(void *context, int p, int worker) {
    (void)worker;
    const wino_job *job = context;
    const size_t panel = (size_t)job->cv->in_channels * CK_MR;
    transient_pack_panel(job->source, job->m, job->direct, p, job->u + (size_t)p * panel, (size_t)job->mp * panel);
}

/* Fused mode: weight panels [p0, p1) of the chunk, each transformed once into the thread's scratch and
 * applied to every panel of tiles (all transformed beforehand into the shared buffer). */
static void fused_task(void *context, int task, int worker) {
    (void)worker;
    const wino_job *job = context;
    const int cin = job->cv->in_channels;
    const int p0 = (int)((long)task * job->mp / job->mchunks);
    const int p1 = (int)((long)(task + 1) * job->mp / job->mchunks);
    const size_t ustride = (size_t)cin * CK_MR; /* floats per matrix */
    float *u = ck_scratch(1, (size_t)job->na * ustride);
    float *m = ck_scratch(2, (size_t)job->na * CK_MR * T);
    for (int p = p0; p < p1; p++) {
        transient_pack_panel(job->source, job->m, job->direct, p, u, ustride);
        for (int panel = 0; panel < job->panels; panel++) {
            panel_tiles pt;
            panel_setup(job, panel, &pt);
            apply_weight_panel(job, &pt, p, u, ustride, job->shared + (size_t)panel * job->na * cin * T, m);
        }
    }
}
#endif

void ck_winograd_transient_forward(int m, int direct_layout, const ck_conv *cv, const ck_conv_io *io) {
#if defined(__x86_64__)
    forward(m, cv, io, direct_layout ? 2 : 1);
#else
    (void)m; (void)direct_layout; (void)cv; (void)io;
#endif
}
