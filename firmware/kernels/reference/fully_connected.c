/* FULLY_CONNECTED, int8: out[b][o] = requantise(bias[o] + sum_d w[o][d] * (x[b][d] - input_zp)).
 * Per-channel weights get one (multiplier, shift) per output; per-tensor weights share entry 0. */
#include "../kernels.h"

void ref_fully_connected(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *input = (const int8_t *)in->data, *filter = (const int8_t *)f->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  int8_t *output = (int8_t *)out->data;
  const int depth = DIM(f, 1), units = DIM(f, 0), batches = (int)(in->bytes / (uint32_t)depth);
  const int per_channel = f->num_scales > 1;
  const int32_t input_offset = -in->zero_point, output_offset = out->zero_point;
  for (int batch = 0; batch < batches; ++batch) {
    for (int o = 0; o < units; ++o) {
      int32_t acc = 0;
      for (int d = 0; d < depth; ++d)
        acc += (int32_t)filter[o * depth + d] * ((int32_t)input[batch * depth + d] + input_offset);
      if (bias) acc = wrap_add32(acc, bias[o]);
      const int q = per_channel ? o : 0;
      acc = multiply_by_quantized_multiplier(acc, op->multipliers[q], op->shifts[q]) + output_offset;
      output[batch * units + o] = (int8_t)clamp_i32(acc, op->act_min, op->act_max);
    }
  }
}
