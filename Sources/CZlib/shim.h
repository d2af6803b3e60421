#ifndef PRETRAINEDVISION_CZLIB_SHIM_H
#define PRETRAINEDVISION_CZLIB_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* CRC-32 (ISO-HDLC, zlib's crc32) of large buffers by carry-less multiplication folding (PCLMULQDQ,
 * Gopal et al., "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ Instruction", Intel 2009):
 * four 128-bit lanes are folded over 64 bytes per step; the folded 128-bit remainder is congruent to the
 * message modulo the polynomial, so its own CRC (zlib, 16 bytes) finishes the job. Chosen at run time;
 * zlib's crc32 elsewhere and for short buffers. Same results as zlib's crc32 for every input. */
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

__attribute__((target("pclmul,sse4.1"))) static inline __m128i pv_crc_fold(__m128i x, __m128i k) {
    return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

__attribute__((target("pclmul,sse4.1"))) static inline unsigned long pv_crc32_pclmul(unsigned long crc,
                                                                                     const unsigned char *p,
                                                                                     size_t len) {
    /* x^(4*128+32) and x^(4*128-32) mod P (bit-reflected, <<1): fold 512 bits; then the same for 128. */
    const __m128i k512 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);
    const __m128i k128 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);
    __m128i x0 = _mm_loadu_si128((const __m128i *)p), x1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32)), x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)(uint32_t)~crc));
    p += 64;
    len -= 64;
    while (len >= 64) {
        x0 = _mm_xor_si128(pv_crc_fold(x0, k512), _mm_loadu_si128((const __m128i *)p));
        x1 = _mm_xor_si128(pv_crc_fold(x1, k512), _mm_loadu_si128((const __m128i *)(p + 16)));
        x2 = _mm_xor_si128(pv_crc_fold(x2, k512), _mm_loadu_si128((const __m128i *)(p + 32)));
        x3 = _mm_xor_si128(pv_crc_fold(x3, k512), _mm_loadu_si128((const __m128i *)(p + 48)));
        p += 64;
        len -= 64;
    }
    __m128i x = _mm_xor_si128(pv_crc_fold(x0, k128), x1);
    x = _mm_xor_si128(pv_crc_fold(x, k128), x2);
    x = _mm_xor_si128(pv_crc_fold(x, k128), x3);
    while (len >= 16) {
        x = _mm_xor_si128(pv_crc_fold(x, k128), _mm_loadu_si128((const __m128i *)p));
        p += 16;
        len -= 16;
    }
    unsigned char rest[16];
    _mm_storeu_si128((__m128i *)rest, x);
    unsigned long c = crc32(0xffffffffUL, rest, 16); /* zlib state 0: the remainder's CRC, conditioned */
    return len ? crc32(c, p, (uInt)len) : c;
}
#endif

/** zlib's crc32(crc, p, len), computed by PCLMULQDQ folding where the CPU has it and len >= 64. */
static inline unsigned long pv_crc32(unsigned long crc, const unsigned char *p, size_t len) {
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    if (len >= 64 && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1"))
        return pv_crc32_pclmul(crc, p, len);
#endif
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, p, n);
        p += n;
        len -= n;
    }
    return crc;
}
#endif
