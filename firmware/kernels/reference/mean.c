/* MEAN of an int8 tensor over any set of its (up to 4) dimensions: global average pooling as converters
 * write it (over H and W in NHWC, or over the last two after a TRANSPOSE to NCHW). TFLM's int8 arithmetic
 * (reduce_common.cc, QuantizedMeanOrSum): sum the raw int8 values in int32, subtract zero_point * count,
 * requantise with input_scale / output_scale, the 1/count folded into the multiplier (shifted up by
 * floor(log2(count)), at most 32, so the division rounds instead of truncating). The TFLM we check against
 * takes this path even when input and output share scale and zero point (a plain truncating division there
 * differs from it by one in about half the outputs). */
#include <string.h>

#include "../kernels.h"

/* Which of the input's dimensions are reduced, as a bit mask (axis values may be negative). */
static int reduced_mask(const tensor_t *in, const tensor_t *axis, int *mask) {
  const int32_t *ax = (const int32_t *)(const void *)axis->data;
  *mask = 0;
  for (uint32_t i = 0; i < axis->bytes / 4; ++i) {
    int a = ax[i] < 0 ? ax[i] + in->ndim : ax[i];
    if (a < 0 || a >= in->ndim) return KWS_ERR_BAD_SHAPE;
    *mask |= 1 << a;
  }
  return KWS_OK;
}

int prepare_mean(interp_t *it, op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *axis = op_in(it, op, 1), *out = op_out(it, op);
  if (op->num_inputs != 2 || !in || !axis || in->type != TFL_INT8 || out->type != TFL_INT8) return KWS_ERR_BAD_MODEL;
  if (axis->type != TFL_INT32 || !axis->is_const || axis->bytes == 0) return KWS_ERR_BAD_MODEL;
  int mask;
  int s = reduced_mask(in, axis, &mask);
  if (s != KWS_OK) return s;
  int64_t count = 1;
  for (int d = 0; d < in->ndim; ++d)
    if (mask & (1 << d)) count *= in->dims[d];
  if ((int64_t)out->bytes * count != in->bytes || count > 65535) return KWS_ERR_BAD_SHAPE;
  if (!(in->scale > 0.0f) || !(out->scale > 0.0f)) return KWS_ERR_BAD_QUANT;
  op->multipliers = interp_alloc_persistent(it, 4);
  op->shifts = op->multipliers ? interp_alloc_persistent(it, 1) : NULL;
  if (!op->shifts) return KWS_ERR_ARENA_TOO_SMALL;
  /* QuantizeMultiplier(input_scale / output_scale), then fold in 1/count as TFLM does at Eval */
  int32_t m;
  int shift;
  quantize_multiplier((double)in->scale / (double)out->scale, &m, &shift);
  int up = 0;
  while ((count >> (up + 1)) != 0) ++up; /* floor(log2(count)) */
  if (up > 32) up = 32;
  if (up > 31 + shift) up = 31 + shift;
  if (up < 0 || shift - up < -31 || shift - up > 31) return KWS_ERR_BAD_QUANT;
  op->multipliers[0] = (int32_t)(((int64_t)m * ((int64_t)1 << up)) / count);
  op->shifts[0] = (int8_t)(shift - up);
  op->depth_multiplier = (int16_t)mask; /* the reduced dimensions, for Eval */
  op->scratch_bytes = 4u * out->bytes;  /* int32 sums, one per output: TFLM's temp_sum scratch */
  op->macs = in->bytes;
  return KWS_OK;
}

void ref_mean(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  const int8_t *x = (const int8_t *)in->data;
  int8_t *o = (int8_t *)out->data;
  int32_t *sum = (int32_t *)(void *)op->scratch;
  const int mask = op->depth_multiplier;
  /* the input as 4-D (leading ones); output strides are 0 along the reduced dimensions */
  int d[4], os[4], s = 1;
  for (int i = 3; i >= 0; --i) {
    int k = i - (4 - in->ndim);
    d[i] = k >= 0 ? in->dims[k] : 1;
    os[i] = (k >= 0 && (mask & (1 << k))) ? 0 : s;
    s *= os[i] ? d[i] : 1;
  }
  memset(sum, 0, 4u * out->bytes);
  for (int a = 0; a < d[0]; ++a)
    for (int b = 0; b < d[1]; ++b)
      for (int c = 0; c < d[2]; ++c)
        for (int e = 0; e < d[3]; ++e) sum[a * os[0] + b * os[1] + c * os[2] + e * os[3]] += *x++;
  const int32_t count = (int32_t)(in->bytes / out->bytes);
  for (uint32_t i = 0; i < out->bytes; ++i) {
    int32_t v = multiply_by_quantized_multiplier(sum[i] - in->zero_point * count, op->multipliers[0], op->shifts[0]);
    o[i] = (int8_t)clamp_i32(v + out->zero_point, -128, 127);
  }
}
