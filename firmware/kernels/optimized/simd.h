/* The Cortex-M4 DSP instructions the optimised kernels use, with plain-C twins for the host build, so
 * the host tests run the very same kernel code paths. SMLAD: two 16x16 multiplies added to a 32-bit
 * accumulator in one instruction. SXTB16: sign-extend bytes 0 and 2 of a word into two int16 halves. */
#ifndef SIMD_H
#define SIMD_H
#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#define KWS_DSP 1
static inline int32_t smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad(a, b, acc); }
static inline uint32_t sxtb16(uint32_t x) { return __sxtb16(x); }
static inline uint32_t sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x)); /* GCC 12 would emit a separate ror otherwise */
  return r;
}
static inline uint32_t sadd16(uint32_t a, uint32_t b) { return __sadd16(a, b); }
/* offset2 + (bytes 0, 2 of x) and offset2 + (bytes 1, 3 of x), one instruction each (SXTAB16). */
static inline uint32_t sxtab16(uint32_t offset2, uint32_t x) { return __sxtab16(offset2, x); }
static inline uint32_t sxtab16_ror8(uint32_t offset2, uint32_t x) {
  uint32_t r;
  __asm("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(offset2), "r"(x));
  return r;
}
static inline int32_t smlabb(uint32_t a, uint32_t b, int32_t acc) { return __smlabb(a, b, acc); }
static inline int32_t smlatt(uint32_t a, uint32_t b, int32_t acc) { return __smlatt(a, b, acc); }
#else
#define KWS_DSP 0
static inline int32_t smlad(uint32_t a, uint32_t b, int32_t acc) {
  int32_t lo = (int32_t)(int16_t)(a & 0xffff) * (int16_t)(b & 0xffff);
  int32_t hi = (int32_t)(int16_t)(a >> 16) * (int16_t)(b >> 16);
  return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi);
}
static inline uint32_t sxtb16(uint32_t x) {
  return (uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xff) | ((uint32_t)(uint16_t)(int16_t)(int8_t)(x >> 16) << 16);
}
static inline uint32_t sxtb16_ror8(uint32_t x) { return sxtb16((x >> 8) | (x << 24)); }
static inline int32_t smlabb(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(a & 0xffff) * (int16_t)(b & 0xffff)));
}
static inline uint32_t sadd16(uint32_t a, uint32_t b);
static inline uint32_t sxtab16(uint32_t offset2, uint32_t x) { return sadd16(sxtb16(x), offset2); }
static inline uint32_t sxtab16_ror8(uint32_t offset2, uint32_t x) { return sadd16(sxtb16_ror8(x), offset2); }
static inline int32_t smlatt(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(a >> 16) * (int16_t)(b >> 16)));
}
static inline uint32_t sadd16(uint32_t a, uint32_t b) {
  return (uint32_t)(uint16_t)((a & 0xffff) + (b & 0xffff)) | ((uint32_t)(uint16_t)((a >> 16) + (b >> 16)) << 16);
}
#endif

static inline uint32_t load32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Requantise acc to the output: bit-identical to multiply_by_quantized_multiplier() + zero point when
 * the shift is a right shift r >= 1 (scale < 0.5, the usual case; optimised kernels check it in Prepare).
 * TFLM's two roundings then reduce to: v = (acc*M + 2^30) >> 31 (exactly SaturatingRoundingDoublingHighMul
 * for every acc, since M > 0), then round half away from zero: (v + 2^(r-1) - (v < 0)) >> r. The zero point
 * is folded into the same constant as zp << r: bias = 2^(r-1) + (zp << r). About 8 instructions. */
static inline uint32_t requant_bias(int r, int32_t zp) { return (1u << (r - 1)) + ((uint32_t)zp << r); }
static inline int32_t requant_fast(int32_t acc, int32_t multiplier, int r, uint32_t bias) {
  int32_t v = (int32_t)(((int64_t)acc * multiplier + (1ll << 30)) >> 31);
  return (int32_t)((uint32_t)v + (uint32_t)(v >> 31) + bias) >> r;
}
/* True when every channel of the op has a right shift and a multiplier above 2^30 (not an exact power of
 * two scale), so requant_fast() and the one-multiply form in conv.c apply; otherwise: reference kernels. */
static inline int all_right_shifts(const op_t *op, int channels) {
  for (int c = 0; c < channels; ++c)
    if (op->shifts[c] >= 0 || op->multipliers[c] <= (1 << 30)) return 0;
  return 1;
}

#endif
