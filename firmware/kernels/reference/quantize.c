/* QUANTIZE int8 -> int8 (a requantisation converters insert where two scales meet), as TFLM's
 * reference_ops::Requantize: out = MultiplyByQuantizedMultiplier(x - in_zp, in_scale / out_scale) + out_zp. */
#include "../kernels.h"

int prepare_quantize(interp_t *it, op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  if (!in || in->type != TFL_INT8 || out->type != TFL_INT8) return KWS_ERR_UNSUPPORTED_TYPE;
  if (in->bytes != out->bytes) return KWS_ERR_BAD_SHAPE;
  if (!(in->scale > 0.0f) || !(out->scale > 0.0f)) return KWS_ERR_BAD_QUANT;
  op->multipliers = interp_alloc_persistent(it, 4);
  op->shifts = op->multipliers ? interp_alloc_persistent(it, 1) : NULL;
  if (!op->shifts) return KWS_ERR_ARENA_TOO_SMALL;
  int shift;
  quantize_multiplier((double)in->scale / (double)out->scale, &op->multipliers[0], &shift);
  if (shift > 31 || shift < -31) return KWS_ERR_BAD_QUANT;
  op->shifts[0] = (int8_t)shift;
  return KWS_OK;
}

void ref_quantize(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  const int8_t *x = (const int8_t *)in->data;
  int8_t *o = (int8_t *)out->data;
  for (uint32_t i = 0; i < in->bytes; ++i) {
    int32_t v = multiply_by_quantized_multiplier(x[i] - in->zero_point, op->multipliers[0], op->shifts[0]);
    o[i] = (int8_t)clamp_i32(v + out->zero_point, -128, 127);
  }
}
