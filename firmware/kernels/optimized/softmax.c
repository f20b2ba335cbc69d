/* SOFTMAX: the reference's fixed-point math (runtime/quant.c), each exp computed once instead of twice. */
#include "../kernels.h"

void opt_softmax(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  const int depth = in->dims[in->ndim - 1];
  for (uint32_t row = 0; row + (uint32_t)depth <= in->bytes; row += (uint32_t)depth)
    softmax_int8_row_once((const int8_t *)in->data + row, (int8_t *)out->data + row, depth,
                          op->softmax_multiplier, op->softmax_left_shift, op->softmax_diff_min);
}
