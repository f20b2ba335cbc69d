/* DEPTHWISE_CONV_2D with the Cortex-M4 DSP instructions, our own code:
 *  - one input channel (a converted KWS CNN's first layer, depth multiplier = output channels): int16 tap
 *    pairs per pixel against int16 weights converted at build time, SMLAD in registers (depthwise_1ch);
 *  - depth multiplier 1 and channels a multiple of 4: four channels per word, SXTB16 + SMLABB/SMLATT
 *    (depthwise_4ch);
 *  - anything else: a per-pixel loop with all channel sums in the scratch buffer. */
#include "../kernels.h"
#include "channels.h"
#include "simd.h"

/* One output channel of the 1-input-channel depthwise conv: 5 SMLADs, then the requantisation. */
#define DW_TAPS_AND_REQUANTISE \
  "ldr %[acc], [%[ch]], #20\n\t" /* bias; the other fields are now at -16 ... -4 */ \
  "ldrd %[tmp], %[l64], [%[w]], #8\n\t" \
  "smlad %[acc], %[t0], %[tmp], %[acc]\n\t" \
  "smlad %[acc], %[t1], %[l64], %[acc]\n\t" \
  "ldrd %[tmp], %[l64], [%[w]], #8\n\t" \
  "smlad %[acc], %[t2], %[tmp], %[acc]\n\t" \
  "smlad %[acc], %[t3], %[l64], %[acc]\n\t" \
  "ldr %[tmp], [%[w]], #4\n\t" \
  "smlad %[acc], %[t4], %[tmp], %[acc]\n\t" \
  "ldr %[tmp], [%[ch], #-16]\n\t"             /* multiplier */ \
  "ldrd %[l64], %[h64], [%[ch], #-12]\n\t"    /* k */ \
  "smlal %[l64], %[h64], %[acc], %[tmp]\n\t"  /* acc * M + k */ \
  "and %[tmp], %[acc], #0x80000000\n\t" \
  "subs %[l64], %[l64], %[tmp]\n\t"           /* - 2^31 when acc < 0 */ \
  "sbc %[h64], %[h64], #0\n\t" \
  "ldr %[tmp], [%[ch], #-4]\n\t"              /* r - 1 */ \
  "asr %[l64], %[h64], %[tmp]\n\t"            /* >> (31 + r) */ \
  "ssat %[l64], #8, %[l64]\n\t"

/* One input channel (a converted KWS CNN's first layer: depth multiplier = output channels). Per pixel the
 * taps are widened once into int16 pairs (x - zp); the weights were widened at build time to int16 pairs
 * per output channel, so each output is a short run of SMLADs on registers. */
/* All output channels of one pixel for a 3x3 filter: the five tap pairs stay in registers. Per channel:
 * 5 SMLAD on weights loaded two words at a time, the 8-instruction requantisation, SSAT to int8 (the
 * caller makes sure act_max is 127) and the lower clamp: 28 instructions for 9 MACs and one output. */
__attribute__((noinline)) static void channels_3x3(const uint32_t *t, const uint32_t *w, const channel_t *ch,
                                                   int8_t *o, int n, int32_t lo) {
#if KWS_DSP
  const uint32_t t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4];
  int8_t *end = o + n;
  int32_t acc, tmp, l64, h64;
  __asm volatile(
      "cmn %[lo], #128\n\t" /* act_min -128: SSAT alone clamps (second copy of the loop) */
      "beq 6f\n\t"
      "1:\n\t"
      DW_TAPS_AND_REQUANTISE /* acc = bias + 10 taps; l64 = requantised, saturated to int8 */
      "cmp %[l64], %[lo]\n\t"
      "it lt\n\t"
      "movlt %[l64], %[lo]\n\t"
      "strb %[l64], [%[o]], #1\n\t"
      "cmp %[o], %[end]\n\t"
      "bne 1b\n\t"
      "b 7f\n\t"
      "6:\n\t"
      DW_TAPS_AND_REQUANTISE /* acc = bias + 10 taps; l64 = requantised, saturated to int8 */
      "strb %[l64], [%[o]], #1\n\t"
      "cmp %[o], %[end]\n\t"
      "bne 6b\n\t"
      "7:\n\t"
      : [w] "+r"(w), [ch] "+r"(ch), [o] "+r"(o), [acc] "=&r"(acc), [tmp] "=&r"(tmp), [l64] "=&r"(l64),
        [h64] "=&r"(h64)
      : [t0] "r"(t0), [t1] "r"(t1), [t2] "r"(t2), [t3] "r"(t3), [t4] "r"(t4), [end] "r"(end), [lo] "r"(lo)
      : "cc", "memory");
#else
  for (int8_t *end = o + n; o < end; ++ch, w += 5) {
    int32_t acc = ch->bias;
    for (int j = 0; j < 5; ++j) acc = smlad(t[j], w[j], acc);
    *o++ = (int8_t)clamp_i32(requant_k(acc, ch), lo, 127);
  }
#endif
}

static void depthwise_1ch(const interp_t *it, const op_t *op, uint8_t *scratch) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *input = (const int8_t *)in->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  int8_t *output = (int8_t *)out->data;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), f_h = DIM(f, 1), f_w = DIM(f, 2);
  const int out_h = DIM(out, 1), out_w = DIM(out, 2), out_c = DIM(out, 3), pairs = (f_h * f_w + 1) / 2;
  const int32_t input_offset = -in->zero_point, lo = op->act_min, hi = op->act_max;
  const uint32_t *weights = (const uint32_t *)op->packed_weights;
  channel_t *ch = (channel_t *)(void *)scratch;
  int16_t *taps = (int16_t *)(void *)(ch + out_c);
  fill_channels(ch, op, bias, out_c, out->zero_point);
  taps[2 * pairs - 1] = 0;
  for (int batch = 0; batch < DIM(in, 0); ++batch, input += in_h * in_w) {
    for (int oy = 0; oy < out_h; ++oy) {
      for (int ox = 0; ox < out_w; ++ox) {
        const int y0 = oy * op->stride_h - op->pad_h, x0 = ox * op->stride_w - op->pad_w;
        const int y_last = y0 + op->dilation_h * (f_h - 1), x_last = x0 + op->dilation_w * (f_w - 1);
        if (y0 >= 0 && x0 >= 0 && y_last < in_h && x_last < in_w) { /* inside the image: no checks */
          const int8_t *row = input + y0 * in_w + x0;
          int16_t *t = taps;
          for (int ky = 0; ky < f_h; ++ky, row += op->dilation_h * in_w)
            for (int kx = 0; kx < f_w; ++kx) *t++ = (int16_t)(row[kx * op->dilation_w] + input_offset);
        } else {
          for (int ky = 0, k = 0; ky < f_h; ++ky) {
            const int iy = y0 + op->dilation_h * ky;
            for (int kx = 0; kx < f_w; ++kx, ++k) {
              const int ix = x0 + op->dilation_w * kx;
              taps[k] = (int16_t)(iy >= 0 && iy < in_h && ix >= 0 && ix < in_w ? input[iy * in_w + ix] + input_offset : 0);
            }
          }
        }
        int8_t *o = output + ((batch * out_h + oy) * out_w + ox) * out_c;
        if (pairs == 5 && hi == 127) {
          channels_3x3((const uint32_t *)(void *)taps, weights, ch, o, out_c, lo);
          continue;
        }
        const uint32_t *w = weights;
        for (int oc = 0; oc < out_c; ++oc, w += pairs) {
          int32_t acc = ch[oc].bias;
          for (int j = 0; j < pairs; ++j) acc = smlad(load32(taps + 2 * j), w[j], acc);
          o[oc] = (int8_t)clamp_i32(requant_k(acc, &ch[oc]), lo, hi);
        }
      }
    }
  }
}

/* DEPTHWISE_CONV_2D: one input channel (depthwise_1ch), four channels per word (depthwise_4ch), or a
 * per-pixel loop that keeps all channel sums in the scratch buffer and requantises fast. */
int opt_prepare_depthwise(interp_t *it, op_t *op) {
  int s = prepare_depthwise(it, op);
  if (s != KWS_OK) return s;
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1);
  const uint32_t tap_pairs = (uint32_t)(DIM(f, 1) * DIM(f, 2) + 1) / 2;
  if (op->packed_weights && (DIM(in, 3) != 1 || op->packed_bytes != (uint32_t)DIM(f, 3) * tap_pairs * 4u))
    return KWS_ERR_BAD_MODEL; /* build-time weights that do not match the model */
  if (!all_right_shifts(op, DIM(f, 3))) return s; /* scratch_bytes 0: the reference loops */
  /* one input channel: the channel constants and one pixel's int16 taps; else a sum and a constant each */
  if (DIM(in, 3) == 1 && op->packed_weights)
    op->scratch_bytes = (uint32_t)sizeof(channel_t) * (uint32_t)DIM(f, 3) + 4u * tap_pairs;
  else
    op->scratch_bytes = 8u * (uint32_t)DIM(f, 3);
  return s;
}

/* Depth multiplier 1, channels a multiple of 4: four channels per word. SXTB16 splits input and weight
 * words into channels (0,2) and (1,3); SMLABB/SMLATT multiply-accumulate the bottom and top halves. */
static void depthwise_4ch(const interp_t *it, const op_t *op, const uint32_t *rq_bias) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *input = (const int8_t *)in->data, *filter = (const int8_t *)f->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  int8_t *output = (int8_t *)out->data;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), ch = DIM(in, 3), f_h = DIM(f, 1), f_w = DIM(f, 2);
  const int out_h = DIM(out, 1), out_w = DIM(out, 2);
  const uint32_t offset2 = ((uint32_t)(-in->zero_point) & 0xffff) * 0x10001u;
  const int32_t lo = op->act_min, hi = op->act_max;
  for (int batch = 0; batch < DIM(in, 0); ++batch) {
    for (int oy = 0; oy < out_h; ++oy) {
      for (int ox = 0; ox < out_w; ++ox) {
        const int y0 = oy * op->stride_h - op->pad_h, x0 = ox * op->stride_w - op->pad_w;
        int8_t *o = output + ((batch * out_h + oy) * out_w + ox) * ch;
        /* the taps inside the image, found once per pixel (padding contributes nothing) */
        int ky0 = 0, ky1 = f_h, kx0 = 0, kx1 = f_w;
        while (ky0 < f_h && y0 + op->dilation_h * ky0 < 0) ++ky0;
        while (ky1 > ky0 && y0 + op->dilation_h * (ky1 - 1) >= in_h) --ky1;
        while (kx0 < f_w && x0 + op->dilation_w * kx0 < 0) ++kx0;
        while (kx1 > kx0 && x0 + op->dilation_w * (kx1 - 1) >= in_w) --kx1;
        const int x_step = op->dilation_w * ch, y_step = op->dilation_h * in_w * ch;
        const int8_t *x_first = input + ((batch * in_h + y0 + op->dilation_h * ky0) * in_w + x0 + op->dilation_w * kx0) * ch;
        const int8_t *w_first = filter + (ky0 * f_w + kx0) * ch;
        for (int c = 0; c < ch; c += 4) {
          int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          const int8_t *xr = x_first + c, *wr = w_first + c;
          for (int ky = ky0; ky < ky1; ++ky, xr += y_step, wr += f_w * ch) {
            const int8_t *xp = xr, *wp = wr;
            for (int kx = kx0; kx < kx1; ++kx, xp += x_step, wp += ch) {
              const uint32_t xw = load32(xp), ww = load32(wp);
              const uint32_t x02 = sxtab16(offset2, xw), x13 = sxtab16_ror8(offset2, xw);
              const uint32_t w02 = sxtb16(ww), w13 = sxtb16_ror8(ww);
              s0 = smlabb(x02, w02, s0);
              s2 = smlatt(x02, w02, s2);
              s1 = smlabb(x13, w13, s1);
              s3 = smlatt(x13, w13, s3);
            }
          }
          const int32_t sums[4] = {s0, s1, s2, s3};
          for (int k = 0; k < 4; ++k) {
            const int oc = c + k;
            const int32_t acc = wrap_add32(sums[k], bias ? bias[oc] : 0);
            o[oc] = (int8_t)clamp_i32(requant_fast(acc, op->multipliers[oc], -op->shifts[oc], rq_bias[oc]), lo, hi);
          }
        }
      }
    }
  }
}

void opt_depthwise(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  if (!op->scratch_bytes) { ref_depthwise(it, op); return; }
  const int8_t *input = (const int8_t *)in->data, *filter = (const int8_t *)f->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  int8_t *output = (int8_t *)out->data;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), in_c = DIM(in, 3), f_h = DIM(f, 1), f_w = DIM(f, 2);
  const int out_h = DIM(out, 1), out_w = DIM(out, 2), out_c = DIM(out, 3), dm = op->depth_multiplier;
  const int32_t input_offset = -in->zero_point, zp = out->zero_point;
  int32_t *acc = (int32_t *)(void *)op->scratch;
  uint32_t *rq_bias = (uint32_t *)(acc + out_c);
  for (int oc = 0; oc < out_c; ++oc) rq_bias[oc] = requant_bias(-op->shifts[oc], zp);
  if (in_c == 1 && op->packed_weights) { depthwise_1ch(it, op, op->scratch); return; }
  if (dm == 1 && (in_c & 3) == 0) { depthwise_4ch(it, op, rq_bias); return; }
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
