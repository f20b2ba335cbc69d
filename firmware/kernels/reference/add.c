/* ADD, int8, with TFLite's input rescaling (TFLM's add.cc + reference_integer_ops::AddFunc): both inputs are
 * moved to a common scale 2 * max(s1, s2) with 20 bits of headroom (left_shift 20), added in int32, and
 * the sum is requantised to the output scale. Broadcasting over any of the four NHWC dimensions. */
#include "../kernels.h"

#define ADD_LEFT_SHIFT 20 /* TFLM's choice for int8 outputs */

/* multipliers/shifts [0] input 1, [1] input 2, [2] output; each real multiplier is below one. */
int prepare_add(interp_t *it, op_t *op) {
  const tensor_t *a = op_in(it, op, 0), *b = op_in(it, op, 1), *out = op_out(it, op);
  if (op->num_inputs != 2 || !a || !b || a->type != TFL_INT8 || b->type != TFL_INT8 || out->type != TFL_INT8)
    return KWS_ERR_BAD_MODEL;
  if (a->ndim > 4 || b->ndim > 4 || out->ndim > 4) return KWS_ERR_BAD_SHAPE;
  /* broadcasting, aligned at the last dimension: each input dimension is 1 or the output's */
  for (int i = 1; i <= out->ndim; ++i) {
    int da = i <= a->ndim ? a->dims[a->ndim - i] : 1, db = i <= b->ndim ? b->dims[b->ndim - i] : 1;
    int d = out->dims[out->ndim - i];
    if ((da != d && da != 1) || (db != d && db != 1) || (da == 1 && db == 1 && d != 1)) return KWS_ERR_BAD_SHAPE;
  }
  if (a->ndim > out->ndim || b->ndim > out->ndim) return KWS_ERR_BAD_SHAPE;
  if (!(a->scale > 0.0f) || !(b->scale > 0.0f) || !(out->scale > 0.0f)) return KWS_ERR_BAD_QUANT;
  op->multipliers = interp_alloc_persistent(it, 3 * 4);
  op->shifts = op->multipliers ? interp_alloc_persistent(it, 3) : NULL;
  if (!op->shifts) return KWS_ERR_ARENA_TOO_SMALL;
  const double twice_max = 2.0 * (double)(a->scale > b->scale ? a->scale : b->scale);
  const double real[3] = {(double)a->scale / twice_max, (double)b->scale / twice_max,
                          twice_max / ((double)(1 << ADD_LEFT_SHIFT) * (double)out->scale)};
  for (int k = 0; k < 3; ++k) {
    int shift;
    quantize_multiplier(real[k], &op->multipliers[k], &shift);
    if (shift > 0 || shift < -31) return KWS_ERR_BAD_QUANT; /* TFLM: QuantizeMultiplierSmallerThanOneExp */
    op->shifts[k] = (int8_t)shift;
  }
  activation_range(out, op->activation, &op->act_min, &op->act_max);
  return KWS_OK;
}

/* One output element: AddFunc. */
static inline int8_t add_one(int32_t x, int32_t y, const tensor_t *a, const tensor_t *b, const tensor_t *out,
                             const op_t *op) {
  const int32_t sx = (int32_t)((uint32_t)(x - a->zero_point) << ADD_LEFT_SHIFT);
  const int32_t sy = (int32_t)((uint32_t)(y - b->zero_point) << ADD_LEFT_SHIFT);
  const int32_t raw = multiply_by_quantized_multiplier(sx, op->multipliers[0], op->shifts[0]) +
                      multiply_by_quantized_multiplier(sy, op->multipliers[1], op->shifts[1]);
  const int32_t v = multiply_by_quantized_multiplier(raw, op->multipliers[2], op->shifts[2]) + out->zero_point;
  return (int8_t)clamp_i32(v, op->act_min, op->act_max);
}

/* Element strides of an input seen as 4-D with the output's shape: 0 along broadcast dimensions. */
static void strides4(const tensor_t *t, const tensor_t *out, int stride[4]) {
  int s = 1;
  for (int i = 1; i <= 4; ++i) {
    int d = i <= t->ndim ? t->dims[t->ndim - i] : 1;
    int od = i <= out->ndim ? out->dims[out->ndim - i] : 1;
    stride[4 - i] = (d == 1 && od != 1) ? 0 : s;
    s *= d;
  }
}

void ref_add(const interp_t *it, const op_t *op) {
  const tensor_t *a = op_in(it, op, 0), *b = op_in(it, op, 1), *out = op_out(it, op);
  const int8_t *x = (const int8_t *)a->data, *y = (const int8_t *)b->data;
  int8_t *o = (int8_t *)out->data;
  if (a->bytes == out->bytes && b->bytes == out->bytes) { /* the residual case: same shapes */
    for (uint32_t i = 0; i < out->bytes; ++i) o[i] = add_one(x[i], y[i], a, b, out, op);
    return;
  }
  int sa[4], sb[4], d[4];
  strides4(a, out, sa);
  strides4(b, out, sb);
  for (int i = 0; i < 4; ++i) d[i] = 4 - i <= out->ndim ? out->dims[out->ndim - 4 + i] : 1;
  for (int i0 = 0; i0 < d[0]; ++i0)
    for (int i1 = 0; i1 < d[1]; ++i1)
      for (int i2 = 0; i2 < d[2]; ++i2)
        for (int i3 = 0; i3 < d[3]; ++i3)
          *o++ = add_one(x[i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3]],
                         y[i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3]], a, b, out, op);
}
