#include "quant.h"

#include <math.h>
#include <stddef.h>

void quantize_multiplier(double real, int32_t *multiplier, int *shift) {
  if (real == 0.0) { *multiplier = 0; *shift = 0; return; }
  int s;
  double q = frexp(real, &s); /* real = q * 2^s, q in [0.5, 1) */
  int64_t q_fixed = (int64_t)round(q * (double)(1ll << 31));
  if (q_fixed == (1ll << 31)) { q_fixed /= 2; ++s; }
  if (s < -31) { s = 0; q_fixed = 0; }
  *multiplier = (int32_t)q_fixed;
  *shift = s;
}

void quantize_multiplier_greater_than_one(double real, int32_t *multiplier, int *left_shift) {
  quantize_multiplier(real, multiplier, left_shift);
}

/* ---- gemmlowp fixed point, only what the softmax needs. A FixedPoint<int32, I> has I integer bits. ---- */

/* gemmlowp's FixedPoint + and - wrap (they saturate only for 16-bit types). */
static inline int32_t wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
/* x * 2^exponent with saturation (exponent may be negative: then a rounding shift). */
static inline int32_t sat_shift(int32_t x, int exponent) {
  if (exponent < 0) return rounding_divide_by_pot(x, -exponent);
  int64_t v = (int64_t)x * (1ll << exponent);
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}
static inline int32_t mask_if_nonzero(int32_t a) { return a ? ~0 : 0; }
static inline int32_t select_using_mask(int32_t m, int32_t a, int32_t b) { return (m & a) ^ (~m & b); }

/* exp(x) for x in [-1/4, 0), Q0.31 in and out (gemmlowp's Taylor series around -1/8). */
static int32_t exp_on_interval(int32_t a) {
  const int32_t constant_term = 1895147668;       /* exp(-1/8) */
  const int32_t constant_1_over_3 = 715827883;
  int32_t x = a + (1 << 28);                      /* a + 1/8 */
  int32_t x2 = sat_rounding_doubling_high_mul(x, x);
  int32_t x3 = sat_rounding_doubling_high_mul(x2, x);
  int32_t x4 = sat_rounding_doubling_high_mul(x2, x2);
  int32_t x4_over_4 = rounding_divide_by_pot(x4, 2);
  int32_t poly = rounding_divide_by_pot(
      wrap_add(sat_rounding_doubling_high_mul(wrap_add(x4_over_4, x3), constant_1_over_3), x2), 1);
  return wrap_add(constant_term, sat_rounding_doubling_high_mul(constant_term, wrap_add(x, poly)));
}

/* exp(a) for a <= 0, a in Q(kIntBits).(31-kIntBits), result Q0.31. */
static int32_t exp_on_negative_values(int32_t a, int int_bits) {
  const int frac_bits = 31 - int_bits;
  const int32_t one_quarter = 1 << (frac_bits - 2);
  const int32_t mask = one_quarter - 1;
  int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
  int32_t result = exp_on_interval(sat_shift(a_mod_quarter_minus_one_quarter, int_bits)); /* rescale to Q0 */
  int32_t remainder = a_mod_quarter_minus_one_quarter - a;
  static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                         39332535,   720401,     242};
  for (int k = 0; k < 7; ++k) {
    int exponent = k - 2; /* exp(-2^exponent) */
    int shift = frac_bits + exponent;
    if (shift >= 0 && shift < 31 && int_bits > exponent) {
      int32_t m = mask_if_nonzero(remainder & (1 << shift));
      result = select_using_mask(m, sat_rounding_doubling_high_mul(result, multipliers[k]), result);
    }
  }
  if (int_bits > 5) {
    int32_t clamp = -(1 << (frac_bits + 5)); /* below -32 the result is 0 */
    result = select_using_mask(mask_if_nonzero(a < clamp), 0, result);
  }
  return select_using_mask(mask_if_nonzero(a == 0), INT32_MAX, result);
}

/* 1 / (1 + x) for x in [0, 1], Newton-Raphson on Q2.29 as gemmlowp does. In Q0.31, out Q0.31. */
static int32_t one_over_one_plus_x(int32_t a) {
  /* half_denominator = (a + 1) / 2 in Q0.31, rounded */
  int64_t sum = (int64_t)a + INT32_MAX;
  int32_t half_denominator = (int32_t)((sum + 1) >> 1);
  const int32_t constant_48_over_17 = 1515870810;     /* Q2.29 */
  const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
  /* half_denominator * constant_neg_32_over_17: Q0 * Q2 -> Q2 */
  int32_t x = wrap_add(constant_48_over_17, sat_rounding_doubling_high_mul(half_denominator, constant_neg_32_over_17));
  for (int i = 0; i < 3; ++i) {
    int32_t half_denominator_times_x = sat_rounding_doubling_high_mul(half_denominator, x); /* Q2 */
    int32_t one_minus = wrap_add(1 << 29, -half_denominator_times_x);                       /* Q2: 1 - hd*x */
    /* x + x * one_minus: Q2 * Q2 -> Q4, rescale to Q2 (shift left by 2 with saturation) */
    x = wrap_add(x, sat_shift(sat_rounding_doubling_high_mul(x, one_minus), 2));
  }
  /* result = x / 2 as Q0 (x is Q2.29 of 1/half_den = 2/(1+a); Q2->Q0 is << 2, /2 is >> 1: net << 1) */
  return sat_shift(x, 1);
}

static int count_leading_zeros(uint32_t x) {
  if (x == 0) return 32;
  int n = 0;
  while (!(x & 0x80000000u)) { x <<= 1; ++n; }
  return n;
}

/* TFLite's GetReciprocal: 1/x for x a FixedPoint with int_bits integer bits, as Q0.31 and a shift. */
static int32_t get_reciprocal(int32_t x, int int_bits, int *num_bits_over_unit) {
  int headroom_plus_one = count_leading_zeros((uint32_t)x);
  *num_bits_over_unit = int_bits - headroom_plus_one;
  int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - (1u << 31));
  return one_over_one_plus_x(shifted_sum_minus_one);
}

void softmax_params(double beta, double input_scale, int32_t *multiplier, int *left_shift, int32_t *diff_min) {
  const int kScaledDiffIntegerBits = 5;
  double real = beta * input_scale * (double)(1 << (31 - kScaledDiffIntegerBits));
  const double max_real = (double)((1ll << 31) - 1);
  if (real > max_real) real = max_real;
  quantize_multiplier_greater_than_one(real, multiplier, left_shift);
  if (*left_shift < 0 || *left_shift > 31) { /* TFLM's Prepare refuses these (the caller checks): no UB here */
    *diff_min = 0;
    return;
  }
  double max_input_rescaled =
      1.0 * ((1 << kScaledDiffIntegerBits) - 1) * (double)(1ll << (31 - kScaledDiffIntegerBits)) /
      (double)(1ll << *left_shift);
  *diff_min = -(int32_t)floor(max_input_rescaled);
}

/* exps: NULL (compute each exp twice, as TFLM's reference does) or room for depth values (compute once). */
static void softmax_row(const int8_t *in, int8_t *out, int depth, int32_t multiplier, int left_shift,
                        int32_t diff_min, int32_t *exps) {
  const int kScaledDiffIntegerBits = 5, kAccumulationIntegerBits = 12;
  int8_t max_in_row = -128;
  for (int c = 0; c < depth; ++c) max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
  int32_t sum_of_exps = 0; /* Q12.19 */
  for (int c = 0; c < depth; ++c) {
    int32_t diff = (int32_t)in[c] - max_in_row;
    if (diff >= diff_min) {
      int32_t scaled = sat_rounding_doubling_high_mul((int32_t)((uint32_t)diff << left_shift), multiplier);
      const int32_t e = exp_on_negative_values(scaled, kScaledDiffIntegerBits);
      if (exps) exps[c] = e;
      sum_of_exps = wrap_add(sum_of_exps, rounding_divide_by_pot(e, kAccumulationIntegerBits));
    }
  }
  int num_bits_over_unit;
  int32_t shifted_scale = get_reciprocal(sum_of_exps, kAccumulationIntegerBits, &num_bits_over_unit);
  for (int c = 0; c < depth; ++c) {
    int32_t diff = (int32_t)in[c] - max_in_row;
    if (diff >= diff_min) {
      int32_t exp_in_0;
      if (exps) {
        exp_in_0 = exps[c];
      } else {
        int32_t scaled = sat_rounding_doubling_high_mul((int32_t)((uint32_t)diff << left_shift), multiplier);
        exp_in_0 = exp_on_negative_values(scaled, kScaledDiffIntegerBits);
      }
      int32_t unsat = rounding_divide_by_pot(sat_rounding_doubling_high_mul(shifted_scale, exp_in_0),
                                             num_bits_over_unit + 31 - 8);
      int32_t v = unsat - 128;
      out[c] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
    } else {
      out[c] = -128;
    }
  }
}

void softmax_int8_row(const int8_t *in, int8_t *out, int depth, int32_t multiplier, int left_shift,
                      int32_t diff_min) {
  softmax_row(in, out, depth, multiplier, left_shift, diff_min, NULL);
}

/* The same bytes with each exp computed once (kept on the stack for rows of up to 64 values). */
void softmax_int8_row_once(const int8_t *in, int8_t *out, int depth, int32_t multiplier, int left_shift,
                           int32_t diff_min) {
  int32_t exps[64];
  softmax_row(in, out, depth, multiplier, left_shift, diff_min, depth <= 64 ? exps : NULL);
}
