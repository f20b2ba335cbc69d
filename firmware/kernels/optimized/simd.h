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
static inline int32_t smlabt(uint32_t a, uint32_t b, int32_t acc) { return __smlabt(a, b, acc); }
static inline int32_t smlatb(uint32_t a, uint32_t b, int32_t acc) { return __smlatb(a, b, acc); }
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
static inline int32_t smlabt(uint32_t a, uint32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(a & 0xffff) * (int16_t)(b >> 16)));
}
static inline int32_t smlatb(uint32_t a, uint32_t b, int32_t acc) { return smlabt(b, a, acc); }
static inline uint32_t sadd16(uint32_t a, uint32_t b) {
  return (uint32_t)(uint16_t)((a & 0xffff) + (b & 0xffff)) | ((uint32_t)(uint16_t)((a >> 16) + (b >> 16)) << 16);
}
#endif

/* The inline-assembly loops need the optimiser: at -O0 GCC keeps r7 as the frame pointer and cannot find
 * registers for their operands. A debug build (-O0) therefore runs the C twins, same arithmetic. */
#if KWS_DSP && defined(__OPTIMIZE__)
#define KWS_ASM 1
#else
#define KWS_ASM 0
#endif

static inline uint32_t load32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline void store32(void *p, uint32_t v) { memcpy(p, &v, 4); }

/* Requantise acc to the output: bit-identical to multiply_by_quantized_multiplier() + zero point when
 * the shift is a right shift r >= 1 and M > 2^30 (optimised kernels check both in Prepare; see
 * all_right_shifts). TFLM's two roundings then nest into one multiply-accumulate:
 *   v = (acc*M + 2^30) >> 31 is exactly SaturatingRoundingDoublingHighMul for every acc (M > 0), and
 *   round half away from zero, (v + 2^(r-1) - [v < 0]) >> r, with [v < 0] = [acc < 0] because M > 2^30,
 * so out = (acc*M + k - [acc < 0] 2^31) >> (31 + r) with k = 2^30 + (2^(r-1) + zp 2^r) 2^31
 * (floor(floor(x / a) / b) = floor(x / ab)). The zero point rides in k as zp 2^(31+r). */
static inline int32_t requant64(int32_t acc, int32_t multiplier, int64_t k, int r) {
  const int64_t x = (int64_t)acc * multiplier + k - (acc < 0 ? (1ll << 31) : 0);
  return (int32_t)(x >> 32) >> (r - 1);
}

/* k = 2^30 (1 + m), m = (2 zp + 1) 2^r. acc*M + k - 2^31 stays inside int64 for EVERY int32 acc exactly when
 * |m + 1| <= 2^32 (|acc*M| < 2^62): always for r <= 23, but a nearly dead channel (scale ~1e-8, r 24..31)
 * with zp != 0 breaks it and the sum would wrap. Then fold nothing (zp = 0 here always fits) and add the
 * zero point after the shift. */
static inline int zp_foldable(int r, int32_t zp) {
  const int64_t m1 = (int64_t)(2 * zp + 1) * (1ll << r) + 1;
  return m1 >= -(1ll << 32) && m1 <= (1ll << 32);
}
static inline int64_t requant_const(int r, int32_t zp) {
  return ((int64_t)(2 * zp + 1) * (1ll << r) + 1) * (1ll << 30);
}

/* For r >= 2 the low word of k is always 2^30, so a channel's constant fits one int32: k's high word. */
static inline int32_t requant_k_hi(int r, int32_t zp) { return (int32_t)(requant_const(r, zp) >> 32); }
static inline int32_t requant_hi(int32_t acc, int32_t multiplier, int32_t k_hi, int r) {
  return requant64(acc, multiplier, (int64_t)k_hi * (1ll << 32) + (1 << 30), r);
}

/* requant64() with k built on the spot from (r, zp) in 32-bit steps, for kernels that keep no per-channel
 * constants: k = 2^30 + m 2^31 with m = (2 zp + 1) 2^(r-1). The zero point is folded for r <= 23 (where
 * zp_foldable holds for every zp) and added after the shift otherwise. */
static inline int32_t requant_r(int32_t acc, int32_t multiplier, int r, int32_t zp) {
  const int32_t zp_in = r <= 23 ? zp : 0;
  const int32_t m = (2 * zp_in + 1) * (1 << (r - 1)); /* |m| < 2^30 */
  const int64_t k = (int64_t)(m >> 1) * (1ll << 32) + (int64_t)(0x40000000u | ((uint32_t)m & 1u) << 31);
  return requant64(acc, multiplier, k, r) + (zp - zp_in);
}

/* True when every channel of the op has a right shift of at least min_r and a multiplier above 2^30 (not an
 * exact power of two scale), so requant64() applies; otherwise the op runs the reference loops. */
static inline int all_right_shifts(const op_t *op, int channels, int min_r) {
  for (int c = 0; c < channels; ++c)
    if (-op->shifts[c] < min_r || op->multipliers[c] <= (1 << 30)) return 0;
  return 1;
}

#endif
