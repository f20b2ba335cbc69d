/* SOFTMAX int8 -> int8 (scale 1/256, zero point -128) along the last dimension, with TFLM's fixed-point
 * exp and reciprocal (runtime/quant.c), and RESHAPE, which only copies bytes. */
#include <string.h>

#include "../kernels.h"

void ref_softmax(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  const int depth = in->dims[in->ndim - 1];
  for (uint32_t row = 0; row + (uint32_t)depth <= in->bytes; row += (uint32_t)depth)
    softmax_int8_row((const int8_t *)in->data + row, (int8_t *)out->data + row, depth, op->softmax_multiplier,
                     op->softmax_left_shift, op->softmax_diff_min);
}

void ref_reshape(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  if (in->data != out->data) memmove(out->data, in->data, in->bytes);
}
