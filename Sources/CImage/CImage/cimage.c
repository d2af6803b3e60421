// See include/cimage.h. Every libjpeg / libpng fatal error lands in a setjmp handler in this file.
#include "cimage.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

static void set_message(char *message, size_t message_size, const char *text) {
    if (message == NULL || message_size == 0) return;
    snprintf(message, message_size, "%s", text);
}

void cimage_raster_free(cimage_raster *raster) {
    if (raster == NULL) return;
    free(raster->pixels);
    free(raster->exif);
    memset(raster, 0, sizeof *raster);
}

// MARK: JPEG

struct jpeg_fail {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int premature_end;
    char text[JMSG_LENGTH_MAX];
};

static void jpeg_fail_exit(j_common_ptr cinfo) {
    struct jpeg_fail *fail = (struct jpeg_fail *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, fail->text);
    longjmp(fail->jump, 1);
}

static void jpeg_fail_emit(j_common_ptr cinfo, int level) {
    if (level < 0) {  // a warning; trace messages (level >= 0) are ignored
        struct jpeg_fail *fail = (struct jpeg_fail *)cinfo->err;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) fail->premature_end = 1;
        cinfo->err->num_warnings++;
    }
}

static void jpeg_fail_output(j_common_ptr cinfo) { (void)cinfo; }

int cimage_decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels, cimage_raster *out,
                       char *message, size_t message_size) {
    memset(out, 0, sizeof *out);
    if (data == NULL || size == 0) {
        set_message(message, message_size, "no data");
        return CIMAGE_ERR_TRUNCATED;
    }
    if ((uint64_t)size > (uint64_t)ULONG_MAX) {
        set_message(message, message_size, "the data is larger than libjpeg can address");
        return CIMAGE_ERR_TOO_LARGE;
    }
    struct jpeg_decompress_struct cinfo;
    struct jpeg_fail fail;
    memset(&fail, 0, sizeof fail);
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile exif = NULL;
    volatile int code = CIMAGE_OK;

    cinfo.err = jpeg_std_error(&fail.pub);
    fail.pub.error_exit = jpeg_fail_exit;
    fail.pub.emit_message = jpeg_fail_emit;
    fail.pub.output_message = jpeg_fail_output;
    if (setjmp(fail.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        free(exif);
        if (code == CIMAGE_OK) {
            code = fail.premature_end ? CIMAGE_ERR_TRUNCATED : CIMAGE_ERR_CORRUPT;
            set_message(message, message_size, fail.text);
        }
        return code;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);

    int channels = 0, model = 0;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo.out_color_space = JCS_GRAYSCALE;
        channels = 1;
        model = CIMAGE_GRAY;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo.out_color_space = JCS_RGB;
        channels = 3;
        model = CIMAGE_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo.out_color_space = JCS_CMYK;
        channels = 4;
        model = CIMAGE_CMYK;
        break;
    default:
        code = CIMAGE_ERR_UNSUPPORTED;
        snprintf(fail.text, sizeof fail.text, "JPEG colour space %d with %d components is not supported",
                 (int)cinfo.jpeg_color_space, cinfo.num_components);
        set_message(message, message_size, fail.text);
        longjmp(fail.jump, 1);
    }
    uint64_t pixel_count = (uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height;
    if (pixel_count > max_pixels) {
        code = CIMAGE_ERR_TOO_LARGE;
        snprintf(fail.text, sizeof fail.text, "%ux%u pixels exceeds the limit of %llu",
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, (unsigned long long)max_pixels);
        set_message(message, message_size, fail.text);
        longjmp(fail.jump, 1);
    }
    jpeg_start_decompress(&cinfo);
    if ((int)cinfo.output_components != channels) {
        code = CIMAGE_ERR_UNSUPPORTED;
        set_message(message, message_size, "libjpeg delivered an unexpected number of components");
        longjmp(fail.jump, 1);
    }
    size_t row_bytes = (size_t)cinfo.output_width * (size_t)channels;
    size_t byte_count = row_bytes * (size_t)cinfo.output_height;
    pixels = (uint8_t *)malloc(byte_count > 0 ? byte_count : 1);
    if (pixels == NULL) {
        code = CIMAGE_ERR_NO_MEMORY;
        set_message(message, message_size, "out of memory for the pixels");
        longjmp(fail.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.output_scanline * row_bytes);
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) break;
    }
    if (fail.premature_end || cinfo.output_scanline < cinfo.output_height) {
        code = CIMAGE_ERR_TRUNCATED;
        set_message(message, message_size, "the JPEG data ends before the image is complete");
        longjmp(fail.jump, 1);
    }
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m != NULL; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            size_t n = (size_t)m->data_length - 6;
            exif = (uint8_t *)malloc(n);
            if (exif != NULL) {
                memcpy(exif, m->data + 6, n);
                out->exif_size = n;
            }
            break;
        }
    }
    out->width = (int32_t)cinfo.output_width;
    out->height = (int32_t)cinfo.output_height;
    out->channels = channels;
    out->bit_depth = 8;
    out->source_bit_depth = cinfo.data_precision;
    out->color_model = model;
    out->adobe_marker = cinfo.saw_Adobe_marker ? 1 : 0;
    // The image is complete; what follows the last scan (up to EOI) is not needed.
    jpeg_abort_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    out->pixels = pixels;
    out->byte_count = byte_count;
    out->exif = exif;
    return CIMAGE_OK;
}

// MARK: PNG

struct png_context {
    const uint8_t *data;
    size_t size;
    size_t position;
    int hit_end;
    char text[256];
};

static void png_fail_error(png_structp png, png_const_charp text) {
    struct png_context *ctx = (struct png_context *)png_get_error_ptr(png);
    snprintf(ctx->text, sizeof ctx->text, "%s", text != NULL ? text : "libpng error");
    png_longjmp(png, 1);
}

static void png_fail_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void png_read_memory(png_structp png, png_bytep out, size_t count) {
    struct png_context *ctx = (struct png_context *)png_get_io_ptr(png);
    if (count > ctx->size - ctx->position) {
        ctx->hit_end = 1;
        png_error(png, "the PNG data ends inside a chunk");
    }
    memcpy(out, ctx->data + ctx->position, count);
    ctx->position += count;
}

int cimage_decode_png(const uint8_t *data, size_t size, uint64_t max_pixels, cimage_raster *out,
                      char *message, size_t message_size) {
    memset(out, 0, sizeof *out);
    if (data == NULL || size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        set_message(message, message_size, size < 8 ? "shorter than the PNG signature" : "no PNG signature");
        return size < 8 ? CIMAGE_ERR_TRUNCATED : CIMAGE_ERR_CORRUPT;
    }
    struct png_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.data = data;
    ctx.size = size;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_fail_error, png_fail_warning);
    if (png == NULL) {
        set_message(message, message_size, "out of memory");
        return CIMAGE_ERR_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_message(message, message_size, "out of memory");
        return CIMAGE_ERR_NO_MEMORY;
    }
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    uint8_t *volatile exif = NULL;
    volatile int code = CIMAGE_OK;
    volatile int image_done = 0;
    volatile size_t byte_count = 0;

    if (setjmp(png_jmpbuf(png))) {
        if (image_done) goto finish;  // a problem after the pixels (a missing IEND...) is ignored, as PIL does
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        free(exif);
        if (code == CIMAGE_OK) {
            code = ctx.hit_end ? CIMAGE_ERR_TRUNCATED : CIMAGE_ERR_CORRUPT;
            set_message(message, message_size, ctx.text);
        }
        return code;
    }
    png_set_read_fn(png, &ctx, png_read_memory);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    if ((uint64_t)width * (uint64_t)height > max_pixels) {
        code = CIMAGE_ERR_TOO_LARGE;
        snprintf(ctx.text, sizeof ctx.text, "%ux%u pixels exceeds the limit of %llu", (unsigned)width,
                 (unsigned)height, (unsigned long long)max_pixels);
        set_message(message, message_size, ctx.text);
        png_longjmp(png, 1);
    }
    out->source_bit_depth = bit_depth;
    out->was_palette = color_type == PNG_COLOR_TYPE_PALETTE;
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int depth = png_get_bit_depth(png, info);
    int type = png_get_color_type(png, info);
    int model = 0;
    switch (type) {
    case PNG_COLOR_TYPE_GRAY: model = CIMAGE_GRAY; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: model = CIMAGE_GRAY_ALPHA; break;
    case PNG_COLOR_TYPE_RGB: model = CIMAGE_RGB; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: model = CIMAGE_RGBA; break;
    default: break;
    }
    size_t row_bytes = png_get_rowbytes(png, info);
    if (model == 0 || (depth != 8 && depth != 16) || row_bytes != (size_t)width * (size_t)channels * (size_t)(depth / 8)) {
        code = CIMAGE_ERR_UNSUPPORTED;
        set_message(message, message_size, "unexpected PNG layout after expansion");
        png_longjmp(png, 1);
    }
    byte_count = row_bytes * (size_t)height;
    pixels = (uint8_t *)malloc(byte_count > 0 ? byte_count : 1);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (height > 0 ? height : 1));
    if (pixels == NULL || rows == NULL) {
        code = CIMAGE_ERR_NO_MEMORY;
        set_message(message, message_size, "out of memory for the pixels");
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    out->width = (int32_t)width;
    out->height = (int32_t)height;
    out->channels = channels;
    out->bit_depth = depth;
    out->color_model = model;
    image_done = 1;
    png_read_end(png, info);

finish:;
    png_bytep exif_data = NULL;
    png_uint_32 exif_count = 0;
    if (png_get_eXIf_1(png, info, &exif_count, &exif_data) != 0 && exif_data != NULL && exif_count > 0) {
        exif = (uint8_t *)malloc(exif_count);
        if (exif != NULL) {
            memcpy(exif, exif_data, exif_count);
            out->exif_size = exif_count;
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->pixels = pixels;
    out->byte_count = byte_count;
    out->exif = exif;
    return CIMAGE_OK;
}
