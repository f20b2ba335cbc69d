/* TFLite's integer arithmetic, written out in C: how a real scale becomes a (multiplier, shift) pair,
 * and the gemmlowp fixed-point steps TFLM's reference kernels use. Bit-exactness with TFLM rests here. */
#ifndef QUANT_H
#define QUANT_H
#include <stdint.h>

/* real = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31). Same as TFLite's QuantizeMultiplier. */
void quantize_multiplier(double real, int32_t *multiplier, int *shift);
/* For real > 1 (softmax input scaling). */
void quantize_multiplier_greater_than_one(double real, int32_t *multiplier, int *left_shift);

/* gemmlowp: (a * b * 2) >> 32 with rounding, saturating the single overflow case. */
static inline int32_t sat_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * b;
  int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / (1ll << 31));
}

/* gemmlowp: arithmetic shift right with round-half-away-from-zero. */
static inline int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  int32_t mask = (int32_t)((1ll << exponent) - 1);
  int32_t remainder = x & mask;
  int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLM's requantisation (the double-rounding form it is built with). */
static inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift) {
  int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  return rounding_divide_by_pot(sat_rounding_doubling_high_mul((int32_t)((uint32_t)x << left), multiplier), right);
}

/* The softmax parameters TFLM derives in Prepare (beta, input scale -> multiplier, shift, diff_min). */
void softmax_params(double beta, double input_scale, int32_t *multiplier, int *left_shift, int32_t *diff_min);
/* One row of TFLM's int8 -> int8 reference softmax. */
void softmax_int8_row(const int8_t *in, int8_t *out, int depth, int32_t multiplier, int left_shift,
                      int32_t diff_min);
void softmax_int8_row_once(const int8_t *in, int8_t *out, int depth, int32_t multiplier, int left_shift,
                           int32_t diff_min);

#endif
