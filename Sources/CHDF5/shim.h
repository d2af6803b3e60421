#ifndef PRETRAINEDVISION_CHDF5_SHIM_H
#define PRETRAINEDVISION_CHDF5_SHIM_H
// libhdf5 (serial build) for the Checkpoint module. Many of HDF5's constants are macros that call
// H5open() or cast (H5P_DEFAULT, H5T_NATIVE_FLOAT, H5F_ACC_RDONLY...), which Swift cannot import:
// each is wrapped here as a static inline function. The library is not thread-safe; callers
// serialise every call (Checkpoint's HDF5Library lock).
#include <hdf5.h>
#include <hdf5_hl.h>

static inline hid_t chdf5_P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t chdf5_S_ALL(void) { return H5S_ALL; }
static inline hid_t chdf5_E_DEFAULT(void) { return H5E_DEFAULT; }
static inline hid_t chdf5_P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t chdf5_P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t chdf5_P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t chdf5_P_LINK_CREATE(void) { return H5P_LINK_CREATE; }

static inline unsigned chdf5_F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned chdf5_F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned chdf5_LT_FILE_IMAGE_DONT_COPY(void) { return H5LT_FILE_IMAGE_DONT_COPY; }
static inline unsigned chdf5_LT_FILE_IMAGE_DONT_RELEASE(void) { return H5LT_FILE_IMAGE_DONT_RELEASE; }
static inline haddr_t chdf5_HADDR_UNDEF(void) { return HADDR_UNDEF; }
static inline size_t chdf5_T_VARIABLE(void) { return H5T_VARIABLE; }

static inline hid_t chdf5_T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t chdf5_T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t chdf5_T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }
static inline hid_t chdf5_T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t chdf5_T_C_S1(void) { return H5T_C_S1; }
static inline hid_t chdf5_T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t chdf5_T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t chdf5_T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t chdf5_T_STD_I16LE(void) { return H5T_STD_I16LE; }
static inline hid_t chdf5_T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t chdf5_T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t chdf5_T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t chdf5_T_STD_U16LE(void) { return H5T_STD_U16LE; }
static inline hid_t chdf5_T_STD_U32LE(void) { return H5T_STD_U32LE; }
static inline hid_t chdf5_T_STD_U64LE(void) { return H5T_STD_U64LE; }

/// Turns off HDF5's printing of its error stack to stderr (the default handler).
static inline herr_t chdf5_silence_errors(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/// The innermost (most specific) description on the current error stack, copied into `out`.
typedef struct { char text[256]; int found; } chdf5_error_text;
static inline herr_t chdf5_error_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    chdf5_error_text *out = (chdf5_error_text *)data;
    if (e && e->desc && !out->found) {
        snprintf(out->text, sizeof out->text, "%s", e->desc);
        out->found = 1;
    }
    (void)n;
    return 0;
}
/// Copies the most specific message of the current error stack into `out` and clears the stack.
static inline void chdf5_last_error(chdf5_error_text *out) {
    out->text[0] = 0;
    out->found = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, chdf5_error_walk_cb, out);
    H5Eclear2(H5E_DEFAULT);
}

#endif
