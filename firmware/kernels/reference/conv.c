/* CONV_2D, int8 with per-channel weights: TFLite's reference_integer_ops::ConvPerChannel as plain loops.
 * acc = bias + sum (input - input_zp) * weight; out = requantise(acc) + output_zp, clamped. */
#include "../kernels.h"
#include "../faults.h"

void ref_conv(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *input = (const int8_t *)in->data, *filter = (const int8_t *)f->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  int8_t *output = (int8_t *)out->data;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), in_c = DIM(in, 3);
  const int f_h = DIM(f, 1), f_w = DIM(f, 2);
  const int out_h = DIM(out, 1), out_w = DIM(out, 2), out_c = DIM(out, 3);
  const int32_t input_offset = -in->zero_point, output_offset = out->zero_point;
  for (int batch = 0; batch < DIM(in, 0); ++batch) {
    for (int oy = 0; oy < out_h; ++oy) {
      for (int ox = 0; ox < out_w; ++ox) {
        const int in_y0 = oy * op->stride_h - op->pad_h, in_x0 = ox * op->stride_w - op->pad_w;
        for (int oc = 0; oc < out_c; ++oc) {
          int32_t acc = 0;
          for (int ky = 0; ky < f_h; ++ky) {
            const int iy = in_y0 + op->dilation_h * ky;
            if (iy < 0 || iy >= in_h) continue; /* zero padding contributes nothing */
            for (int kx = 0; kx < f_w; ++kx) {
              const int ix = in_x0 + op->dilation_w * kx;
              if (ix < 0 || ix >= in_w) continue;
              const int8_t *x = input + ((batch * in_h + iy) * in_w + ix) * in_c;
              const int8_t *w = filter + ((oc * f_h + ky) * f_w + kx) * in_c;
              for (int ic = 0; ic < in_c; ++ic) acc += (int32_t)w[ic] * ((int32_t)x[ic] + input_offset);
            }
          }
          if (bias) acc = wrap_add32(acc, bias[oc]);
#ifdef FAULT_CONV_BIAS
          if (oc == 0) acc = wrap_add32(acc, fault_conv_bias(op)); /* test builds only: kernels/faults.h */
#endif
          acc = multiply_by_quantized_multiplier(acc, op->multipliers[oc], op->shifts[oc]) + output_offset;
          output[((batch * out_h + oy) * out_w + ox) * out_c + oc] = (int8_t)clamp_i32(acc, op->act_min, op->act_max);
        }
      }
    }
  }
}
