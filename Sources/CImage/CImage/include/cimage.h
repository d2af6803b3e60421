// A small C layer over libjpeg(-turbo) and libpng for the VisionData module.
//
// Both libraries report fatal errors by longjmp, which Swift cannot catch; these functions catch them
// with setjmp here, in C, and return an error code and a message instead. They decode into a raw
// interleaved raster and do no colour conversion beyond what the file format itself defines (YCbCr ->
// RGB, YCCK -> CMYK, palette -> RGB, 1/2/4-bit grey -> 8-bit); the PIL-compatible conversion to RGB
// is done in Swift.
#ifndef CIMAGE_H
#define CIMAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Result codes.
enum {
    CIMAGE_OK = 0,
    CIMAGE_ERR_CORRUPT = 1,      ///< the data is not a valid image of this format
    CIMAGE_ERR_TRUNCATED = 2,    ///< the data ends before the image is complete
    CIMAGE_ERR_TOO_LARGE = 3,    ///< width x height exceeds the caller's cap
    CIMAGE_ERR_NO_MEMORY = 4,    ///< an allocation failed
    CIMAGE_ERR_UNSUPPORTED = 5,  ///< a valid file using a feature this layer does not decode
};

/// Colour models of a decoded raster.
enum {
    CIMAGE_GRAY = 1,
    CIMAGE_GRAY_ALPHA = 2,
    CIMAGE_RGB = 3,
    CIMAGE_RGBA = 4,
    CIMAGE_CMYK = 5,
};

/// A decoded raster. Free it with `cimage_raster_free`.
typedef struct cimage_raster {
    uint8_t *pixels;          ///< height rows of width * channels samples, no padding
    size_t byte_count;        ///< bytes at `pixels`
    int32_t width;
    int32_t height;
    int32_t channels;
    int32_t bit_depth;        ///< 8, or 16 (PNG only; samples big-endian as PNG stores them)
    int32_t color_model;      ///< CIMAGE_GRAY ... CIMAGE_CMYK
    int32_t adobe_marker;     ///< JPEG: an Adobe APP14 marker was present (its CMYK is stored inverted)
    int32_t source_bit_depth; ///< bits per sample as stored in the file
    int32_t was_palette;      ///< PNG: the file was palette-based
    uint8_t *exif;            ///< the Exif TIFF structure (JPEG APP1 after "Exif\0\0", PNG eXIf), or NULL
    size_t exif_size;
} cimage_raster;

/// Decodes a JPEG held in memory. Returns CIMAGE_OK and fills `out`, or an error code with a message
/// (NUL-terminated, cut to `message_size`) and `out` left empty. Images with more than `max_pixels`
/// pixels are refused before any pixel memory is allocated.
int cimage_decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels, cimage_raster *out,
                       char *message, size_t message_size);

/// Decodes a PNG held in memory; same contract as `cimage_decode_jpeg`.
int cimage_decode_png(const uint8_t *data, size_t size, uint64_t max_pixels, cimage_raster *out,
                      char *message, size_t message_size);

/// Releases what a successful decode allocated; safe on an empty raster.
void cimage_raster_free(cimage_raster *raster);

#ifdef __cplusplus
}
#endif

#endif
