/* Per-output-channel requantisation constants for the optimised convolution kernels, and the
 * one-multiply form of TFLM's requantisation that the assembly loops use. */
#ifndef CHANNELS_H
#define CHANNELS_H
#include "../kernels.h"
#include "simd.h"

/* Per output channel, everything its requantisation needs, side by side (computed once per Eval). */
typedef struct {
  int32_t bias, multiplier;
  uint32_t k_lo;         /* k = 2^30 + (2^(r-1) + (zp << r)) * 2^31, low and high words (see requant_k) */
  int32_t k_hi;
  int32_t shift_minus_1; /* r - 1. 20 bytes: the assembly uses offsets 0..16 and a 20-byte stride */
} channel_t;

static inline void fill_channels(channel_t *ch, const op_t *op, const int32_t *bias, int n, int32_t zp) {
  for (int c = 0; c < n; ++c) {
    const int r = -op->shifts[c];
    const int64_t k = (1ll << 30) + ((int64_t)(1 << (r - 1)) + (int64_t)zp * (1ll << r)) * (1ll << 31);
    ch[c] = (channel_t){bias ? bias[c] : 0, op->multipliers[c], (uint32_t)k, (int32_t)(k >> 32), r - 1};
  }
}

/* requant_fast() with one multiply-accumulate: TFLM's two roundings nest into one,
 *   out = (acc * M + k - [acc < 0] * 2^31) >> (31 + r)   (floor(floor(x / a) / b) = floor(x / ab)),
 * where [acc < 0] is TFLM's "v < 0" test; the two agree because M > 2^30 (checked in Prepare). */
static inline int32_t requant_k(int32_t acc, const channel_t *c) {
  const int64_t k = (int64_t)(((uint64_t)(uint32_t)c->k_hi << 32) | c->k_lo);
  const int64_t x = (int64_t)acc * c->multiplier + k - (acc < 0 ? (1ll << 31) : 0);
  return (int32_t)(x >> 32) >> c->shift_minus_1;
}

static inline int8_t output_of(int32_t acc, const channel_t *c, int32_t lo, int32_t hi) {
  return (int8_t)clamp_i32(requant_k(acc, c), lo, hi);
}

#endif
