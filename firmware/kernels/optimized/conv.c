/* CONV_2D (and DEPTHWISE_CONV_2D on a single input channel, which is the same computation) with the
 * Cortex-M4's SMLAD, in the way CMSIS-NN structures it, but our own code:
 *  - weights were converted at build time (tools/gen_model.py) to int16, padded to quads of 4 taps, and
 *    two output channels interleaved quad by quad;
 *  - for two output pixels at a time, the receptive field is copied into a column buffer as int16 with
 *    the input offset already added (im2col), the two pixels interleaved quad by quad;
 *  - a 2x2 block (2 pixels x 2 channels) then needs per quad of taps 4 loads and 8 SMLADs, 16 MACs;
 *  - inside a quad both operands use the order (t0, t2, t1, t3): SXTB16 produces that order for free
 *    and the dot product does not care about the order of its terms. */
#include "../kernels.h"
#include "simd.h"

/* Column buffer for two pixels: quads x 2 pixels x 4 taps x int16. */
static uint32_t column_bytes(int taps) { return (uint32_t)((taps + 3) / 4) * 16u; }

static const uint8_t quad_order[4] = {0, 2, 1, 3}; /* position of tap t inside its quad */

/* One pixel's receptive field into the column buffer (pixel px of the pair), int16 with offset. */
static void im2col(const int8_t *input, int in_h, int in_w, int in_c, int f_h, int f_w, const op_t *op,
                   int32_t input_offset, int oy, int ox, int16_t *col, int px, int k_quads) {
  const int y0 = oy * op->stride_h - op->pad_h, x0 = ox * op->stride_w - op->pad_w;
  int k = 0;
  if ((in_c & 3) == 0) { /* four channels per word: SXTB16 + SADD16, no per-byte work */
    const uint32_t offset2 = ((uint32_t)input_offset & 0xffff) * 0x10001u;
    for (int ky = 0; ky < f_h; ++ky) {
      const int iy = y0 + op->dilation_h * ky;
      for (int kx = 0; kx < f_w; ++kx) {
        const int ix = x0 + op->dilation_w * kx;
        const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
        const int8_t *src = input + (iy * in_w + ix) * in_c;
        for (int c = 0; c < in_c; c += 4, k += 4) {
          uint32_t *dst = (uint32_t *)(void *)(col + (k >> 2) * 8 + px * 4);
          if (inside) {
            uint32_t w = load32(src + c);
            dst[0] = sadd16(sxtb16(w), offset2);      /* t0, t2 */
            dst[1] = sadd16(sxtb16_ror8(w), offset2); /* t1, t3 */
          } else {
            dst[0] = dst[1] = 0; /* padding: (x - zp) is 0 there */
          }
        }
      }
    }
  } else {
    for (int ky = 0; ky < f_h; ++ky) {
      const int iy = y0 + op->dilation_h * ky;
      for (int kx = 0; kx < f_w; ++kx) {
        const int ix = x0 + op->dilation_w * kx;
        const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
        const int8_t *src = input + (iy * in_w + ix) * in_c;
        for (int c = 0; c < in_c; ++c, ++k)
          col[(k >> 2) * 8 + px * 4 + quad_order[k & 3]] = (int16_t)(inside ? src[c] + input_offset : 0);
      }
    }
  }
  for (; k < k_quads * 4; ++k) col[(k >> 2) * 8 + px * 4 + quad_order[k & 3]] = 0;
}

/* s[0] += px0.ch0, s[1] += px0.ch1, s[2] += px1.ch0, s[3] += px1.ch1 over `quads` quads of taps.
 * Per quad: one LDM (both pixels), two LDRD (both channels), eight SMLAD: 16 MACs in 13 instructions
 * with the loop. Registers are pinned because LDM loads in register-number order. */
__attribute__((noinline)) static void dot_2x2(const int16_t *col, const int16_t *w, int quads, int32_t *s) {
#if KWS_DSP
  register const int16_t *rc __asm("r0") = col;
  register const int16_t *rw __asm("r1") = w;
  register int rn __asm("r2") = quads;
  register int32_t s0 __asm("r3") = s[0];
  register int32_t s1 __asm("r12") = s[1];
  register int32_t s2 __asm("r10") = s[2];
  register int32_t s3 __asm("r11") = s[3];
  register uint32_t x0 __asm("r4"), x1 __asm("r5"), x2 __asm("r6"), x3 __asm("r8");
  register uint32_t y0 __asm("r9"), y1 __asm("lr");
  __asm volatile(
      "1:\n\t"
      "ldm %[col]!, {%[x0], %[x1], %[x2], %[x3]}\n\t" /* pixel 0 taps (0,2)(1,3), pixel 1 the same */
      "ldrd %[y0], %[y1], [%[w]], #8\n\t"             /* channel 0 */
      "smlad %[s0], %[x0], %[y0], %[s0]\n\t"
      "smlad %[s0], %[x1], %[y1], %[s0]\n\t"
      "smlad %[s2], %[x2], %[y0], %[s2]\n\t"
      "smlad %[s2], %[x3], %[y1], %[s2]\n\t"
      "ldrd %[y0], %[y1], [%[w]], #8\n\t" /* channel 1 */
      "smlad %[s1], %[x0], %[y0], %[s1]\n\t"
      "smlad %[s1], %[x1], %[y1], %[s1]\n\t"
      "smlad %[s3], %[x2], %[y0], %[s3]\n\t"
      "smlad %[s3], %[x3], %[y1], %[s3]\n\t"
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      : [col] "+r"(rc), [w] "+r"(rw), [n] "+r"(rn), [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3),
        [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [y0] "=&r"(y0), [y1] "=&r"(y1)
      :
      : "cc", "memory");
  s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
#else
  for (int q = 0; q < quads; ++q, col += 8, w += 8) {
    for (int j = 0; j < 4; j += 2) {
      uint32_t p0 = load32(col + j), p1 = load32(col + 4 + j), c0 = load32(w + j), c1 = load32(w + 4 + j);
      s[0] = smlad(p0, c0, s[0]);
      s[1] = smlad(p0, c1, s[1]);
      s[2] = smlad(p1, c0, s[2]);
      s[3] = smlad(p1, c1, s[3]);
    }
  }
#endif
}

/* The shared core: in_c input channels, filter f_h x f_w, out_c output channels, packed int16 weights. */
static void conv_packed(const interp_t *it, const op_t *op, int in_c, int f_h, int f_w) {
  const tensor_t *in = op_in(it, op, 0), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *input = (const int8_t *)in->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  int8_t *output = (int8_t *)out->data;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), out_w = DIM(out, 2), out_c = DIM(out, 3);
  const int k_quads = (f_h * f_w * in_c + 3) / 4, pixels = DIM(out, 1) * out_w;
  const int32_t input_offset = -in->zero_point, zp = out->zero_point;
  int16_t *col = (int16_t *)(void *)op->scratch;
  uint32_t *rq_bias = (uint32_t *)(void *)(op->scratch + column_bytes(f_h * f_w * in_c));
  for (int oc = 0; oc < out_c; ++oc) rq_bias[oc] = requant_bias(-op->shifts[oc], zp);
  const int32_t lo = op->act_min, hi = op->act_max;
  for (int batch = 0; batch < DIM(in, 0); ++batch, input += in_h * in_w * in_c, output += pixels * out_c) {
    for (int p = 0; p < pixels; p += 2) {
      const int second = p + 1 < pixels; /* an odd last pixel is computed twice, stored once */
      const int p1 = second ? p + 1 : p;
      im2col(input, in_h, in_w, in_c, f_h, f_w, op, input_offset, p / out_w, p % out_w, col, 0, k_quads);
      im2col(input, in_h, in_w, in_c, f_h, f_w, op, input_offset, p1 / out_w, p1 % out_w, col, 1, k_quads);
      const int16_t *w = (const int16_t *)op->packed_weights;
      int8_t *o0 = output + p * out_c, *o1 = output + p1 * out_c;
      for (int oc = 0; oc < out_c; oc += 2, w += k_quads * 8) {
        const int oc1 = oc + 1 < out_c ? oc + 1 : oc; /* an odd last channel pairs with zero weights */
        int32_t s[4] = {bias ? bias[oc] : 0, bias ? bias[oc1] : 0, 0, 0};
        s[2] = s[0], s[3] = s[1];
        dot_2x2(col, w, k_quads, s);
        const int r0 = -op->shifts[oc], r1 = -op->shifts[oc1];
        const int32_t m0 = op->multipliers[oc], m1 = op->multipliers[oc1];
        o1[oc] = (int8_t)clamp_i32(requant_fast(s[2], m0, r0, rq_bias[oc]), lo, hi); /* o1 first: o1 == o0 */
        o0[oc] = (int8_t)clamp_i32(requant_fast(s[0], m0, r0, rq_bias[oc]), lo, hi); /* for an odd last pixel */
        if (oc + 1 < out_c) {
          o1[oc1] = (int8_t)clamp_i32(requant_fast(s[3], m1, r1, rq_bias[oc1]), lo, hi);
          o0[oc1] = (int8_t)clamp_i32(requant_fast(s[1], m1, r1, rq_bias[oc1]), lo, hi);
        }
      }
    }
  }
}

int opt_prepare_conv(interp_t *it, op_t *op) {
  int s = prepare_conv(it, op);
  const tensor_t *f = op_in(it, op, 1);
  /* scratch: the column buffer, then one requantisation constant per output channel */
  if (s == KWS_OK && op->packed_weights && all_right_shifts(op, DIM(f, 0)))
    op->scratch_bytes = column_bytes(DIM(f, 1) * DIM(f, 2) * DIM(f, 3)) + 4u * (uint32_t)DIM(f, 0);
  return s;
}

void opt_conv(const interp_t *it, const op_t *op) {
  const tensor_t *f = op_in(it, op, 1);
  if (!op->scratch_bytes) { ref_conv(it, op); return; } /* no build-time weights: the reference loops */
  conv_packed(it, op, DIM(f, 3), DIM(f, 1), DIM(f, 2));
}

/* DEPTHWISE_CONV_2D: on one input channel (the first layer of a converted KWS CNN) it is the conv above;
 * otherwise a per-pixel loop that keeps all channel sums in the scratch buffer and requantises fast. */
int opt_prepare_depthwise(interp_t *it, op_t *op) {
  int s = prepare_depthwise(it, op);
  if (s != KWS_OK) return s;
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1);
  if (!all_right_shifts(op, DIM(f, 3))) return s; /* scratch_bytes 0: the reference loops */
  if (DIM(in, 3) == 1 && op->packed_weights) op->scratch_bytes = column_bytes(DIM(f, 1) * DIM(f, 2));
  else op->scratch_bytes = 0;
  op->scratch_bytes += 8u * (uint32_t)DIM(f, 3); /* per channel: a sum and a requantisation constant */
  return s;
}

void opt_depthwise(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  if (!op->scratch_bytes) { ref_depthwise(it, op); return; }
  if (DIM(in, 3) == 1 && op->packed_weights) { conv_packed(it, op, 1, DIM(f, 1), DIM(f, 2)); return; }
  const int8_t *input = (const int8_t *)in->data, *filter = (const int8_t *)f->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  int8_t *output = (int8_t *)out->data;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), in_c = DIM(in, 3), f_h = DIM(f, 1), f_w = DIM(f, 2);
  const int out_h = DIM(out, 1), out_w = DIM(out, 2), out_c = DIM(out, 3), dm = op->depth_multiplier;
  const int32_t input_offset = -in->zero_point, zp = out->zero_point;
  int32_t *acc = (int32_t *)(void *)op->scratch;
  uint32_t *rq_bias = (uint32_t *)(acc + out_c);
  for (int oc = 0; oc < out_c; ++oc) rq_bias[oc] = requant_bias(-op->shifts[oc], zp);
  for (int batch = 0; batch < DIM(in, 0); ++batch) {
    for (int oy = 0; oy < out_h; ++oy) {
      for (int ox = 0; ox < out_w; ++ox) {
        const int y0 = oy * op->stride_h - op->pad_h, x0 = ox * op->stride_w - op->pad_w;
        for (int oc = 0; oc < out_c; ++oc) acc[oc] = 0;
        for (int ky = 0; ky < f_h; ++ky) {
          const int iy = y0 + op->dilation_h * ky;
          if (iy < 0 || iy >= in_h) continue;
          for (int kx = 0; kx < f_w; ++kx) {
            const int ix = x0 + op->dilation_w * kx;
            if (ix < 0 || ix >= in_w) continue;
            const int8_t *x = input + ((batch * in_h + iy) * in_w + ix) * in_c;
            const int8_t *w = filter + (ky * f_w + kx) * out_c;
            for (int ic = 0, oc = 0; ic < in_c; ++ic) {
              const int32_t xv = x[ic] + input_offset;
              for (int m = 0; m < dm; ++m, ++oc) acc[oc] += w[oc] * xv;
            }
          }
        }
        int8_t *o = output + ((batch * out_h + oy) * out_w + ox) * out_c;
        for (int oc = 0; oc < out_c; ++oc)
          o[oc] = (int8_t)clamp_i32(requant_fast(wrap_add32(acc[oc], bias ? bias[oc] : 0), op->multipliers[oc],
                                                 -op->shifts[oc], rq_bias[oc]),
                                    op->act_min, op->act_max);
      }
    }
  }
}
