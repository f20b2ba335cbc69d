/* MAX_POOL_2D and AVERAGE_POOL_2D, int8. The window is clipped at the borders (padding is never counted),
 * and the average rounds half away from zero, as TFLite's reference_integer_ops pooling does. */
#include "../kernels.h"

static void pool(const interp_t *it, const op_t *op, int is_max) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  const int8_t *input = (const int8_t *)in->data;
  int8_t *output = (int8_t *)out->data;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), depth = DIM(in, 3);
  const int out_h = DIM(out, 1), out_w = DIM(out, 2);
  for (int batch = 0; batch < DIM(in, 0); ++batch) {
    for (int oy = 0; oy < out_h; ++oy) {
      for (int ox = 0; ox < out_w; ++ox) {
        const int y0 = oy * op->stride_h - op->pad_h, x0 = ox * op->stride_w - op->pad_w;
        const int ky0 = y0 < 0 ? -y0 : 0, kx0 = x0 < 0 ? -x0 : 0;
        const int ky1 = op->filter_h < in_h - y0 ? op->filter_h : in_h - y0;
        const int kx1 = op->filter_w < in_w - x0 ? op->filter_w : in_w - x0;
        for (int c = 0; c < depth; ++c) {
          int32_t acc = is_max ? -128 : 0, count = 0;
          for (int ky = ky0; ky < ky1; ++ky) {
            for (int kx = kx0; kx < kx1; ++kx) {
              int32_t v = input[((batch * in_h + y0 + ky) * in_w + x0 + kx) * depth + c];
              if (is_max) acc = v > acc ? v : acc;
              else acc += v;
              ++count;
            }
          }
          if (!is_max && count > 0)
            acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          output[((batch * out_h + oy) * out_w + ox) * depth + c] = (int8_t)clamp_i32(acc, op->act_min, op->act_max);
        }
      }
    }
  }
}

void ref_max_pool(const interp_t *it, const op_t *op) { pool(it, op, 1); }
void ref_average_pool(const interp_t *it, const op_t *op) { pool(it, op, 0); }
