/* Per-output-channel requantisation constants for the optimised convolution kernels, and the
 * one-multiply form of TFLM's requantisation that the assembly loops use. */
#ifndef CHANNELS_H
#define CHANNELS_H
#include "../kernels.h"
#include "simd.h"

/* Per output channel, everything its requantisation needs, side by side (computed once per Eval). */
typedef struct {
  int32_t bias, multiplier;
  uint32_t k_lo;         /* k = 2^30 + (2^(r-1) + (zp << r)) * 2^31 (zp 0 if not foldable), low, high word */
  int32_t k_hi;
  int32_t shift_minus_1; /* r - 1. 20 bytes: the assembly uses offsets 0..16 and a 20-byte stride */
} channel_t;

/* Fills ch[0..n) and returns 1 when the output zero point is folded into every channel's k (the form the
 * assembly loops use); 0 when one channel's shift is too large for that (see zp_foldable): then no k holds
 * the zero point and the caller adds it after the shift (output_of's zp_after). */
static inline int fill_channels(channel_t *ch, const op_t *op, const int32_t *bias, int n, int32_t zp) {
  int fold = 1;
  for (int c = 0; c < n; ++c) fold &= zp_foldable(-op->shifts[c], zp);
  for (int c = 0; c < n; ++c) {
    const int r = -op->shifts[c];
    const int64_t k = requant_const(r, fold ? zp : 0);
    ch[c] = (channel_t){bias ? bias[c] : 0, op->multipliers[c], (uint32_t)k, (int32_t)(k >> 32), r - 1};
  }
  return fold;
}

/* requant64() on a channel's constants (the C twin of the assembly's requantisation). */
static inline int32_t requant_k(int32_t acc, const channel_t *c) {
  const int64_t k = (int64_t)(((uint64_t)(uint32_t)c->k_hi << 32) | c->k_lo);
  return requant64(acc, c->multiplier, k, c->shift_minus_1 + 1);
}

/* zp_after: 0 when fill_channels() folded the zero point into k, else the zero point. */
static inline int8_t output_of(int32_t acc, const channel_t *c, int32_t zp_after, int32_t lo, int32_t hi) {
  return (int8_t)clamp_i32(requant_k(acc, c) + zp_after, lo, hi);
}

/* conv.c: the convolution on build-time packed int16 weights (tools/gen_model.py pack_conv_weights); a
 * depthwise conv over one input channel is the same computation (in_c 1, out_c = depth multiplier). */
uint32_t opt_conv_packed_bytes(int out_c, int taps);
uint32_t opt_conv_scratch_bytes(int out_c, int taps, int in_c);
void opt_conv_packed(const interp_t *it, const op_t *op, int in_c, int f_h, int f_w);

#endif
