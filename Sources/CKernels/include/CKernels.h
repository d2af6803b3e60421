#ifndef PRETRAINEDVISION_CKERNELS_H
#define PRETRAINEDVISION_CKERNELS_H

/* Hand-written CPU kernels of the NeuralNet module.
 *
 * Every entry point picks its code path at run time from the CPU's features (AVX-512F, AVX2+FMA, or a
 * portable C fallback) and splits its work over the engine's worker threads. Results never depend on
 * the number of threads: the work is split over output tiles only, never over a reduction. */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- CPU level and threads ------------------------------------------------------------------- */

/** Code paths, best last. */
enum { CK_LEVEL_PORTABLE = 0, CK_LEVEL_AVX2 = 1, CK_LEVEL_AVX512 = 2 };

/** The best level this CPU supports (detected once). */
int ck_cpu_level(void);
/** The level in use: the detected one unless lowered with `ck_set_level` (tests use that). */
int ck_level(void);
/** Uses `level` if the CPU supports it, else the best supported one; returns the level in use. */
int ck_set_level(int level);

/** Threads used by every kernel (1 ... 64); default: the number of online CPUs. */
int ck_threads(void);
/** Sets the thread count (clamped to 1 ... 64). */
void ck_set_threads(int threads);

/** Overrides the level for calls made from the calling thread only (-1: no override). */
void ck_set_local_level(int level);
/** Overrides the thread count for calls made from the calling thread only (0: no override). */
void ck_set_local_threads(int threads);

/** A unit of parallel work: task `task` of a job, run on worker `worker` (0 = the calling thread). */
typedef void (*ck_task_fn)(void *context, int task, int worker);
/** Runs `fn(context, t, worker)` for every t in [0, tasks) over the engine's threads and returns when all
 *  are done. A call made while another call is running runs its tasks on the calling thread. */
void ck_parallel_for(int tasks, ck_task_fn fn, void *context);

/** Returns the C allocator's free memory to the system where it can (glibc: malloc_trim); a no-op
 *  elsewhere. */
void ck_release_free_memory(void);
/** `bytes` of memory aligned to 64 bytes, or NULL: large requests (256 KiB and up) are pages mapped for
 *  this buffer alone, so that freeing them returns the memory to the system at once. Free with
 *  `ck_buffer_free` and the same `bytes`. */
void *ck_buffer_alloc(size_t bytes);
/** Frees a `ck_buffer_alloc` buffer (NULL: nothing). */
void ck_buffer_free(void *p, size_t bytes);

/* ---- Convolution as packed GEMM --------------------------------------------------------------- */

/** Rows of one packed weight panel and columns of one packed input panel. */
enum { CK_MR = 12, CK_NR = 32 };

/** A convolution's geometry and its packed weights. */
typedef struct ck_conv {
    int groups;
    int in_channels, out_channels; /* totals over all groups */
    int kh, kw, sh, sw, ph, pw, dh, dw;
    const float *packed; /* ck_conv_pack's output */
    const float *scale;  /* out_channels values multiplying the sums before the bias, or NULL (1): a
                            batch norm applied in the epilogue, so that `packed` keeps the weights exact */
    const float *bias;   /* out_channels values, or NULL */
} ck_conv;

/** Floats `ck_conv_pack` writes for this geometry. */
size_t ck_conv_packed_count(int groups, int out_channels, int in_channels, int kh, int kw);
/** Packs OIHW weights `[out, in/groups, kh, kw]` into panels of CK_MR rows: per group, per panel,
 *  `[k][CK_MR]` with zero rows past the group's output channels. */
void ck_conv_pack(const float *weight, int groups, int out_channels, int in_channels, int kh, int kw,
                  float *packed);
/** The inverse of ck_conv_pack: writes the OIHW weights back from the panels (exact). */
void ck_conv_unpack(const float *packed, int groups, int out_channels, int in_channels, int kh, int kw,
                    float *weight);

/** out[r, i] = (float)((double)weight[r, i] * scale[r]) over `rows` rows of `per_row` floats (batch-norm
 *  folding: one rounding per value), threaded. */
void ck_scale_rows(const float *weight, const double *scale, ptrdiff_t rows, ptrdiff_t per_row, float *out);

/** One call's tensors. The input is `batch` images of `in_channels` planes of h x w floats; image i
 *  starts at `in + i * in_batch_stride` (so an input may be a channel slice of a larger tensor); output
 *  and residual likewise with oh x ow planes. */
typedef struct ck_conv_io {
    int batch, h, w, oh, ow;
    const float *in;
    ptrdiff_t in_batch_stride;
    float *out;
    ptrdiff_t out_batch_stride;
    const float *residual; /* added before the activation, or NULL; may be `out` itself (same strides):
                              the sum then replaces the residual in place */
    ptrdiff_t residual_batch_stride;
    const float *in_scale; /* per input channel: x -> max(x * scale + shift, 0) before convolving, */
    const float *in_shift; /* applied to real input values only (padding stays 0); NULL: none */
    int relu;              /* apply max(y, 0) to the output */
} ck_conv_io;

/** y = act(conv(x) * scale + bias + residual), over all images, threaded. */
void ck_conv_forward(const ck_conv *conv, const ck_conv_io *io);

/* ---- Direct convolution in a channel-blocked layout (AVX-512F) -------------------------------- */

/** Whether ck_direct_forward runs this geometry on this CPU: AVX-512F, groups == 1, input channels a
 *  multiple of 16, output channels a multiple of 32, kernels from 3x3 to 7x7, equal strides of 1 or 2,
 *  no dilation. */
int ck_direct_supported(int groups, int out_channels, int in_channels, int kh, int kw, int sh, int sw, int dh,
                        int dw);
/** Floats `ck_direct_pack` writes (as many as the weights). */
size_t ck_direct_packed_count(int out_channels, int in_channels, int kh, int kw);
/** Reorders OIHW weights for ck_direct_forward: per group of 64 (or 32) output channels and block of 16
 *  input channels, `[kh][kw][16 inputs][64 or 32 outputs]`; threaded. */
void ck_direct_pack(const float *weight, int out_channels, int in_channels, int kh, int kw, float *packed);
/** The inverse of ck_direct_pack (exact). */
void ck_direct_unpack(const float *packed, int out_channels, int in_channels, int kh, int kw, float *weight);
/** y = act(conv(x) * scale + bias + residual) like ck_conv_forward, for weights packed by
 *  ck_direct_pack and a geometry ck_direct_supported accepts; threaded. */
void ck_direct_forward(const ck_conv *conv, const ck_conv_io *io);

/* ---- Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions with padding 1 ------------------------- */

/** Floats `ck_winograd_pack` writes: 36 transformed matrices `[out, in]` in the packed GEMM layout. */
size_t ck_winograd_packed_count(int out_channels, int in_channels);
/** Transforms OIHW 3x3 weights (groups 1) into U = G g G^T (computed in double) and packs them. */
void ck_winograd_pack(const float *weight, int out_channels, int in_channels, float *packed);
/** Same contract as ck_conv_forward for a 3x3, stride 1, padding 1, dilation 1, groups 1 convolution
 *  whose `packed` holds ck_winograd_pack's output; no input prologue (in_scale must be NULL). An output
 *  scale (conv->scale) applies as fmaf(sum, scale, bias); the packed layouts take folded weights and
 *  none. */
void ck_winograd_forward(const ck_conv *conv, const ck_conv_io *io);

/* ---- Winograd F(2x2, 3x3): the same over tiles of 2x2 -------------------------------------------- */

/** Floats `ck_winograd2_pack` writes: 16 transformed matrices `[out, in]` in the packed GEMM layout. */
size_t ck_winograd2_packed_count(int out_channels, int in_channels);
/** Transforms OIHW 3x3 weights (groups 1) into U = G g G^T for F(2x2, 3x3) (computed in double) and
 *  packs them. */
void ck_winograd2_pack(const float *weight, int out_channels, int in_channels, float *packed);
/** ck_winograd_forward for weights packed by ck_winograd2_pack: 2.25x fewer multiplications than the
 *  direct method (F(4x4): 4x), over tiles of 2x2, so that small planes fill whole panels of 32 tiles (a
 *  14 x 14 plane is 49 tiles of 2x2 but 16 of 4x4). */
void ck_winograd2_forward(const ck_conv *conv, const ck_conv_io *io);
/** Winograd F(m x m, 3x3) (m = 4 or 2) with weights held in ck_conv_pack's layout (`direct_layout` 0)
 *  or ck_direct_pack's (1), transformed per call (in
 *  float) into a scratch buffer of the calling thread: one exact copy of the weights is held, and the
 *  transformed one only during the call. `conv->scale` and `bias` as for ck_direct_forward
 *  (`fmaf(sum, scale, bias)`, then the residual, then ReLU); no input prologue. AVX-512F and a geometry
 *  both ck_direct_supported and Winograd-eligible (3x3, stride 1, padding 1, groups 1). */
void ck_winograd_transient_forward(int m, int direct_layout, const ck_conv *conv, const ck_conv_io *io);

/* ---- Direct grouped convolution (few channels per group; AVX-512F) ------------------------------ */

/** Whether ck_grouped_forward handles this geometry on this CPU: groups > 1, a multiple of 4 outputs per
 *  group, equal strides of 1 or 2, no dilation, AVX-512F available. */
int ck_grouped_supported(int groups, int out_channels, int in_channels, int kh, int kw, int sh, int sw, int dh,
                         int dw);
/** Output channels computed together for an output `out_width` wide (16, 8 or 4; 0 when unsupported). */
int ck_grouped_block(int groups, int out_channels, int out_width);
/** Floats `ck_grouped_pack` writes (the weights, reordered). */
size_t ck_grouped_packed_count(int groups, int out_channels, int in_channels, int kh, int kw);
/** Reorders OIHW weights to [group][input channel][tap][output]. */
void ck_grouped_pack(const float *weight, int groups, int out_channels, int in_channels, int kh, int kw,
                     float *packed);
/** The inverse of ck_grouped_pack (exact). */
void ck_grouped_unpack(const float *packed, int groups, int out_channels, int in_channels, int kh, int kw,
                       float *weight);
/** Same contract as ck_conv_forward for a supported geometry whose `packed` holds ck_grouped_pack's
 *  output; no input prologue. */
void ck_grouped_forward(const ck_conv *conv, const ck_conv_io *io);

/* ---- Element-wise and pooling ------------------------------------------------------------------ */

/** dst = act(src * scale[c] + shift[c]) over `images` x `channels` planes of `plane` floats. Source image
 *  i at src + i * src_stride, destination at dst + i * dst_stride (dst may equal src). */
void ck_affine_channels(const float *src, ptrdiff_t src_stride, float *dst, ptrdiff_t dst_stride,
                        int images, int channels, ptrdiff_t plane, const float *scale, const float *shift,
                        int relu);
/** out[i] = act(a[i] + b[i]) for `count` floats. */
void ck_add(const float *a, const float *b, float *out, ptrdiff_t count, int relu);
/** x[n, c, :] = act(x[n, c, :] * gate[n * channels + c] + residual[n, c, :]) (residual may be NULL). */
void ck_scale_channels(float *x, const float *gate, const float *residual, int images, int channels,
                       ptrdiff_t plane, int relu);
/** Max pooling of `planes` planes (PyTorch semantics, -inf padding, NaN propagates); out has oh x ow
 *  planes. Plane p of the input starts at `in + (p / channels) * in_image_stride + (p % channels) * h * w`,
 *  of the output likewise with `out_image_stride`. */
void ck_max_pool(const float *in, ptrdiff_t in_image_stride, float *out, ptrdiff_t out_image_stride, int images,
                 int channels, int h, int w, int oh, int ow, int kernel, int stride, int pad);
/** 2x2 stride-2 average pooling without padding (DenseNet transitions), strides as ck_max_pool. */
void ck_avg_pool_2x2(const float *in, ptrdiff_t in_image_stride, float *out, ptrdiff_t out_image_stride,
                     int images, int channels, int h, int w, int oh, int ow);
/** out = avg_pool_2x2(max(x * scale[c] + shift[c], 0)): a DenseNet transition's batch norm and ReLU with
 *  the pool moved before its 1x1 convolution (they commute); strides as ck_max_pool. */
void ck_affine_relu_avg_pool_2x2(const float *in, ptrdiff_t in_image_stride, float *out, ptrdiff_t out_image_stride,
                                 int images, int channels, int h, int w, const float *scale, const float *shift);
/** out[n * channels + c] = mean over the plane of act(x * scale[c] + shift[c]) (scale NULL: identity). */
void ck_global_avg_pool(const float *in, ptrdiff_t in_image_stride, float *out, int images, int channels,
                        ptrdiff_t plane, const float *scale, const float *shift, int relu);

/* ---- Fully connected layer ---------------------------------------------------------------------- */

/** y[i][o] = sum_k x[i][k] * weight[o][k] + bias[o] for i < n, o < out_features: input [n][in_features],
 *  weight [out_features][in_features] (PyTorch's layout), bias NULL or out_features values, y [n][out_features]
 *  (fully overwritten), all row-major. Threaded over chunks of output features; each sum is computed by one
 *  thread in a fixed order, so the result depends neither on the thread count nor on n. */
void ck_linear(const float *x, int n, int in_features, const float *weight, const float *bias, int out_features,
               float *y);

#ifdef __cplusplus
}
#endif
#endif
