/* MAX_POOL_2D four channels at a time: SSUB8 sets one GE flag per byte where a >= b, SEL then picks
 * those bytes from a, the rest from b. Same clipping at the borders as the reference. */
#include "../kernels.h"
#include "simd.h"

static inline uint32_t max4(uint32_t a, uint32_t b) {
#if KWS_ASM
  uint32_t r;
  __asm("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
  return r;
#else
  uint32_t r = 0;
  for (int i = 0; i < 32; i += 8) {
    int8_t x = (int8_t)(a >> i), y = (int8_t)(b >> i);
    r |= (uint32_t)(uint8_t)(x >= y ? x : y) << i;
  }
  return r;
#endif
}
static inline uint32_t min4(uint32_t a, uint32_t b) { return ~max4(~a, ~b); } /* ~x = -1 - x reverses order */

void opt_max_pool(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), depth = DIM(in, 3);
  if (depth & 3) { ref_max_pool(it, op); return; }
  const int out_h = DIM(out, 1), out_w = DIM(out, 2), words = depth / 4;
  const uint32_t lo = 0x01010101u * (uint8_t)op->act_min, hi = 0x01010101u * (uint8_t)op->act_max;
  const uint32_t *input = (const uint32_t *)(const void *)in->data;
  uint32_t *output = (uint32_t *)(void *)out->data;
  if (op->filter_h == 2 && op->filter_w == 2 && op->stride_h == 2 && op->stride_w == 2 && op->pad_h == 0 &&
      op->pad_w == 0 && 2 * out_h <= in_h && 2 * out_w <= in_w) { /* the usual 2x2/2: no clipping */
    const int row = in_w * words;
    const int clamp = op->act_min > -128 || op->act_max < 127;
    for (int batch = 0; batch < DIM(in, 0); ++batch) {
      for (int oy = 0; oy < out_h; ++oy) {
        const uint32_t *a = input + (batch * in_h + 2 * oy) * row, *b = a + row;
        for (int ox = 0; ox < out_w; ++ox, a += words, b += words) {
          for (const uint32_t *end = a + words; a < end; ++a, ++b) {
            const uint32_t m = max4(max4(a[0], a[words]), max4(b[0], b[words]));
            *output++ = clamp ? min4(max4(m, lo), hi) : m;
          }
        }
      }
    }
    return;
  }
  for (int batch = 0; batch < DIM(in, 0); ++batch) {
    for (int oy = 0; oy < out_h; ++oy) {
      for (int ox = 0; ox < out_w; ++ox) {
        const int y0 = oy * op->stride_h - op->pad_h, x0 = ox * op->stride_w - op->pad_w;
        const int ky0 = y0 < 0 ? -y0 : 0, kx0 = x0 < 0 ? -x0 : 0;
        const int ky1 = op->filter_h < in_h - y0 ? op->filter_h : in_h - y0;
        const int kx1 = op->filter_w < in_w - x0 ? op->filter_w : in_w - x0;
        uint32_t *o = output + ((batch * out_h + oy) * out_w + ox) * words;
        for (int c = 0; c < words; ++c) {
          uint32_t m = lo; /* the clamp's lower bound doubles as the start value */
          for (int ky = ky0; ky < ky1; ++ky)
            for (int kx = kx0; kx < kx1; ++kx) m = max4(m, input[((batch * in_h + y0 + ky) * in_w + x0 + kx) * words + c]);
          o[c] = min4(m, hi);
        }
      }
    }
  }
}

/* AVERAGE_POOL_2D four channels at a time: SXTAB16 adds bytes 0 and 2 (and, rotated, 1 and 3) of a word to
 * two 16-bit sums, so a window element costs a load and two adds per four channels. 16 bits hold the sum of
 * up to 256 int8 values (-128 * 256 = -32768); larger windows and other depths take the reference loop.
 * The rounding division is the reference's (half away from zero), so the outputs are the same bytes. */
static inline int8_t average(int32_t sum, int32_t count, int32_t lo, int32_t hi) {
  const int32_t v = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
  return (int8_t)clamp_i32(v, lo, hi);
}

void opt_average_pool(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), depth = DIM(in, 3);
  if ((depth & 3) || op->filter_h * op->filter_w > 256) { ref_average_pool(it, op); return; }
  const int out_h = DIM(out, 1), out_w = DIM(out, 2);
  const int8_t *input = (const int8_t *)in->data;
  int8_t *output = (int8_t *)out->data;
  for (int batch = 0; batch < DIM(in, 0); ++batch) {
    for (int oy = 0; oy < out_h; ++oy) {
      for (int ox = 0; ox < out_w; ++ox) {
        const int y0 = oy * op->stride_h - op->pad_h, x0 = ox * op->stride_w - op->pad_w;
        const int ky0 = y0 < 0 ? -y0 : 0, kx0 = x0 < 0 ? -x0 : 0;
        const int ky1 = op->filter_h < in_h - y0 ? op->filter_h : in_h - y0;
        const int kx1 = op->filter_w < in_w - x0 ? op->filter_w : in_w - x0;
        const int32_t rows = ky1 > ky0 ? ky1 - ky0 : 0, cols = kx1 > kx0 ? kx1 - kx0 : 0, count = rows * cols;
        int8_t *o = output + ((batch * out_h + oy) * out_w + ox) * depth;
        const int8_t *first = input + ((batch * in_h + y0 + ky0) * in_w + x0 + kx0) * depth;
        const int row = in_w * depth;
        for (int c = 0; c < depth; c += 4, o += 4) {
          uint32_t s02 = 0, s13 = 0;
          const int8_t *r = first + c;
          for (int ky = 0; ky < rows; ++ky, r += row) {
            const int8_t *x = r;
            for (int k = 0; k < cols; ++k, x += depth) {
              const uint32_t v = load32(x);
              s02 = sxtab16(s02, v), s13 = sxtab16_ror8(s13, v);
            }
          }
          if (count == 0) { /* an empty window: the reference leaves the sum (0) undivided */
            o[0] = o[1] = o[2] = o[3] = (int8_t)clamp_i32(0, op->act_min, op->act_max);
            continue;
          }
          o[0] = average((int16_t)s02, count, op->act_min, op->act_max);
          o[1] = average((int16_t)s13, count, op->act_min, op->act_max);
          o[2] = average((int16_t)(s02 >> 16), count, op->act_min, op->act_max);
          o[3] = average((int16_t)(s13 >> 16), count, op->act_min, op->act_max);
        }
      }
    }
  }
}
