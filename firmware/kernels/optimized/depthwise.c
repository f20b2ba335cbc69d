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
  const int32_t zp_after = fill_channels(ch, op, bias, out_c, out->zero_point) ? 0 : out->zero_point;
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
        if (pairs == 5 && hi == 127 && zp_after == 0) {
          channels_3x3((const uint32_t *)(void *)taps, weights, ch, o, out_c, lo);
          continue;
        }
        const uint32_t *w = weights;
        for (int oc = 0; oc < out_c; ++oc, w += pairs) {
          int32_t acc = ch[oc].bias;
          for (int j = 0; j < pairs; ++j) acc = smlad(load32(taps + 2 * j), w[j], acc);
          o[oc] = output_of(acc, &ch[oc], zp_after, lo, hi);
        }
      }
    }
  }
}

/* 3x3, stride 1, padding 1 ("SAME") or 0 ("VALID", as after an explicit PAD), depth multiplier 1, channels
 * a multiple of 4: one channel at a time over the whole image. Four channels' inputs are first copied, offset
 * added, into four int16 planes with a zero border (the padding), so that one word load gives two
 * neighbours along a "strip" and SMLAD multiplies both. Two outputs side by side share their loads:
 * out(x) = [x0 x1].[w0 w1] + [x2 x3].[w2 0] and out(x+1) = [x0 x1].[0 w0] + [x2 x3].[w1 w2]: per kernel row
 * 2 loads and 4 SMLADs give 6 MACs. Strips run along the longer side (image rows, or columns with the filter
 * transposed), which keeps the planes small and the per-strip overhead rare. */
#define DW3_PLANE_CAP 8192 /* scratch for the four planes, at most (else depthwise_4ch) */
#define DW3_PITCH 32       /* int16 per plane row (pad, <= 29 columns, pad, spare): a constant for the assembly */
static int dw3_transposed(const tensor_t *in) { return DIM(in, 1) > DIM(in, 2); } /* strips along y */
static int dw3_fits(const op_t *op, const tensor_t *in, const tensor_t *f, const tensor_t *out) {
  const int t = dw3_transposed(in), strip = t ? DIM(in, 1) : DIM(in, 2), pad = t ? op->pad_h : op->pad_w;
  return op->depth_multiplier == 1 && (DIM(in, 3) & 3) == 0 && DIM(f, 1) == 3 && DIM(f, 2) == 3 &&
         op->stride_h == 1 && op->stride_w == 1 && op->dilation_h == 1 && op->dilation_w == 1 &&
         (op->pad_h | op->pad_w) <= 1 && DIM(out, 1) == DIM(in, 1) + 2 * op->pad_h - 2 &&
         DIM(out, 2) == DIM(in, 2) + 2 * op->pad_w - 2 && strip + 2 * pad + 1 <= DW3_PITCH;
}
/* The planes' layout: padded strip r of channel k (of the four) at int16 (4 r + k) DW3_PITCH. */
static uint32_t dw3_plane_bytes(const tensor_t *in) {
  return 8u * (uint32_t)((dw3_transposed(in) ? DIM(in, 2) : DIM(in, 1)) + 2) * DW3_PITCH;
}
static uint32_t pair16(int32_t lo, int32_t hi) { return ((uint32_t)lo & 0xffffu) | ((uint32_t)hi << 16); }

#define DW3_ROW(off, woff) \
  "ldr %[x0], [%[p], #" #off "]\n\t" \
  "ldr %[x1], [%[p], #" #off "+4]\n\t" \
  "ldr %[x2], [%[p], #" #off "+8]\n\t" \
  "ldrd %[wa], %[wb], [%[c], #" #woff "]\n\t" /* [w0 w1], [w2 0] */ \
  "smlad %[a0], %[x0], %[wa], %[a0]\n\t" \
  "smlad %[a0], %[x1], %[wb], %[a0]\n\t" \
  "smlad %[a2], %[x1], %[wa], %[a2]\n\t" \
  "smlad %[a2], %[x2], %[wb], %[a2]\n\t" \
  "ldrd %[wa], %[wb], [%[c], #" #woff "+8]\n\t" /* [0 w0], [w1 w2] */ \
  "smlad %[a1], %[x0], %[wa], %[a1]\n\t" \
  "smlad %[a1], %[x1], %[wb], %[a1]\n\t" \
  "smlad %[a3], %[x1], %[wa], %[a3]\n\t" \
  "smlad %[a3], %[x2], %[wb], %[a3]\n\t"
/* The first kernel row starts every sum at the bias (held in a3 until a3's own first SMLAD). */
#define DW3_ROW0 \
  "ldr %[a3], [%[c]]\n\t" \
  "ldr %[x0], [%[p]]\n\t" \
  "ldr %[x1], [%[p], #4]\n\t" \
  "ldr %[x2], [%[p], #8]\n\t" \
  "ldrd %[wa], %[wb], [%[c], #16]\n\t" \
  "smlad %[a0], %[x0], %[wa], %[a3]\n\t" \
  "smlad %[a0], %[x1], %[wb], %[a0]\n\t" \
  "smlad %[a2], %[x1], %[wa], %[a3]\n\t" \
  "smlad %[a2], %[x2], %[wb], %[a2]\n\t" \
  "ldrd %[wa], %[wb], [%[c], #24]\n\t" \
  "smlad %[a1], %[x0], %[wa], %[a3]\n\t" \
  "smlad %[a1], %[x1], %[wb], %[a1]\n\t" \
  "smlad %[a3], %[x1], %[wa], %[a3]\n\t" \
  "smlad %[a3], %[x2], %[wb], %[a3]\n\t"
/* requantise acc (see requant64: acc*M + k - [acc < 0] 2^31, the last term as [acc < 0] * (int32)0x80000000),
 * saturate to int8 (act_min -128, act_max 127 only) and leave it in x0 */
#define DW3_REQUANT(acc) \
  "ldrd %[x0], %[x1], [%[c], #64]\n\t" \
  "smlal %[x0], %[x1], %[" #acc "], %[x2]\n\t" \
  "lsr %[" #acc "], %[" #acc "], #31\n\t" \
  "smlal %[x0], %[x1], %[" #acc "], %[wb]\n\t" \
  "asr %[x0], %[x1], %[wa]\n\t" \
  "ssat %[x0], #8, %[x0]\n\t"
/* Four outputs of one channel's row per iteration, from `p` (plane row above, column -1) to o == end.
 * c: bias (0), per kernel row [w0 w1] [w2 0] [0 w0] [w1 w2] (16 + 16 row), k (64), M (72), r - 1 (76),
 * channels (80). 77 instructions for 36 MACs and 4 outputs. */
static inline void dw3_row4(const int16_t *p, int8_t *o, const int8_t *end, const int32_t *c) {
#if KWS_DSP
  int32_t a0, a1, a2, a3;
  uint32_t x0, x1, x2, wa, wb;
  __asm volatile(
      "1:\n\t"
      DW3_ROW0 DW3_ROW(256, 32) DW3_ROW(512, 48)
      "ldr %[x2], [%[c], #72]\n\t"
      "ldr %[wa], [%[c], #76]\n\t"
      "mov %[wb], #0x80000000\n\t"
      DW3_REQUANT(a0) "strb %[x0], [%[o]]\n\t"
      "ldr %[a0], [%[c], #80]\n\t"
      DW3_REQUANT(a1) "strb %[x0], [%[o], %[a0]]\n\t"
      "add %[o], %[o], %[a0], lsl #1\n\t"
      DW3_REQUANT(a2) "strb %[x0], [%[o]]\n\t"
      DW3_REQUANT(a3) "strb %[x0], [%[o], %[a0]]\n\t"
      "add %[o], %[o], %[a0], lsl #1\n\t"
      "add %[p], %[p], #8\n\t"
      "cmp %[o], %[end]\n\t"
      "bne 1b\n\t"
      : [p] "+r"(p), [o] "+r"(o), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),
        [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [wa] "=&r"(wa), [wb] "=&r"(wb)
      : [c] "r"(c), [end] "r"(end)
      : "cc", "memory");
#else
  (void)p, (void)o, (void)end, (void)c;
#endif
}

/* One output per iteration (the row's last w % 4): 26 instructions for 9 MACs. */
static inline void dw3_row1(const int16_t *p, int8_t *o, const int8_t *end, const int32_t *c, int32_t ch) {
#if KWS_DSP
  int32_t a0;
  uint32_t x0, x1, x2, wa, wb;
  __asm volatile(
      "1:\n\t"
      "ldr %[a0], [%[c]]\n\t"
      "ldr %[x0], [%[p]]\n\t"
      "ldr %[x1], [%[p], #4]\n\t"
      "ldrd %[wa], %[wb], [%[c], #16]\n\t"
      "smlad %[a0], %[x0], %[wa], %[a0]\n\t"
      "smlad %[a0], %[x1], %[wb], %[a0]\n\t"
      "ldr %[x0], [%[p], #256]\n\t"
      "ldr %[x1], [%[p], #260]\n\t"
      "ldrd %[wa], %[wb], [%[c], #32]\n\t"
      "smlad %[a0], %[x0], %[wa], %[a0]\n\t"
      "smlad %[a0], %[x1], %[wb], %[a0]\n\t"
      "ldr %[x0], [%[p], #512]\n\t"
      "ldr %[x1], [%[p], #516]\n\t"
      "ldrd %[wa], %[wb], [%[c], #48]\n\t"
      "smlad %[a0], %[x0], %[wa], %[a0]\n\t"
      "smlad %[a0], %[x1], %[wb], %[a0]\n\t"
      "ldr %[x2], [%[c], #72]\n\t"
      "ldr %[wa], [%[c], #76]\n\t"
      "mov %[wb], #0x80000000\n\t"
      DW3_REQUANT(a0) "strb %[x0], [%[o]]\n\t"
      "add %[o], %[o], %[ch]\n\t"
      "add %[p], %[p], #2\n\t"
      "cmp %[o], %[end]\n\t"
      "bne 1b\n\t"
      : [p] "+r"(p), [o] "+r"(o), [a0] "=&r"(a0), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2),
        [wa] "=&r"(wa), [wb] "=&r"(wb)
      : [c] "r"(c), [end] "r"(end), [ch] "r"(ch)
      : "cc", "memory");
#else
  (void)p, (void)o, (void)end, (void)c, (void)ch;
#endif
}

/* One image row of four channels into the planes, two columns a word, from x (the word's second pixel)
 * and a02/a13 (its first: 0 for the padding column). Returns x at the last pixel it read. */
static inline const int8_t *dw3_build(const int8_t *x, uint32_t *p, const uint32_t *end, int32_t ch,
                                      uint32_t offset2, uint32_t a02, uint32_t a13) {
#if KWS_DSP
  uint32_t b02, b13, v;
  __asm volatile(
      "1:\n\t"
      "ldr %[v], [%[x]]\n\t"
      "sxtab16 %[b02], %[off], %[v]\n\t"
      "sxtab16 %[b13], %[off], %[v], ror #8\n\t"
      "pkhbt %[v], %[a02], %[b02], lsl #16\n\t"
      "str %[v], [%[p]]\n\t"
      "pkhbt %[v], %[a13], %[b13], lsl #16\n\t"
      "str %[v], [%[p], #64]\n\t"
      "pkhtb %[v], %[b02], %[a02], asr #16\n\t"
      "str %[v], [%[p], #128]\n\t"
      "pkhtb %[v], %[b13], %[a13], asr #16\n\t"
      "str %[v], [%[p], #192]\n\t"
      "add %[p], %[p], #4\n\t"
      "cmp %[p], %[end]\n\t"
      "beq 2f\n\t"
      "ldr %[v], [%[x], %[ch]]\n\t"
      "add %[x], %[x], %[ch], lsl #1\n\t"
      "sxtab16 %[a02], %[off], %[v]\n\t"
      "sxtab16 %[a13], %[off], %[v], ror #8\n\t"
      "b 1b\n\t"
      "2:\n\t"
      : [x] "+r"(x), [p] "+r"(p), [a02] "+r"(a02), [a13] "+r"(a13), [b02] "=&r"(b02), [b13] "=&r"(b13),
        [v] "=&r"(v)
      : [end] "r"(end), [ch] "r"(ch), [off] "r"(offset2)
      : "cc", "memory");
#else
  for (;; ++p) {
    const uint32_t v = load32(x), b02 = sxtab16(offset2, v), b13 = sxtab16_ror8(offset2, v);
    p[0] = (a02 & 0xffffu) | (b02 << 16);
    p[16] = (a13 & 0xffffu) | (b13 << 16);
    p[32] = (b02 & 0xffff0000u) | (a02 >> 16);
    p[48] = (b13 & 0xffff0000u) | (a13 >> 16);
    if (p + 1 == end) break;
    const uint32_t u = load32(x + ch);
    x += 2 * ch;
    a02 = sxtab16(offset2, u), a13 = sxtab16_ror8(offset2, u);
  }
#endif
  return x;
}

/* noinline: kept out of opt_depthwise, whose one-channel path otherwise loses registers */
__attribute__((noinline)) static void depthwise_3x3_planes(const interp_t *it, const op_t *op,
                                                           int16_t *planes) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *filter = (const int8_t *)f->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  const int ch = DIM(in, 3), row_step = 4 * DW3_PITCH, t = dw3_transposed(in);
  /* strips (s) of length w, h of them, in the input; of length ow, oh of them, in the output */
  const int w = t ? DIM(in, 1) : DIM(in, 2), h = t ? DIM(in, 2) : DIM(in, 1);
  const int ow = t ? DIM(out, 1) : DIM(out, 2), oh = t ? DIM(out, 2) : DIM(out, 1);
  const int pad_s = t ? op->pad_h : op->pad_w, pad_r = t ? op->pad_w : op->pad_h;
  const int in_s = t ? DIM(in, 2) * ch : ch, in_r = t ? ch : DIM(in, 2) * ch; /* bytes along, across */
  const int out_s = t ? DIM(out, 2) * ch : ch, out_r = t ? ch : DIM(out, 2) * ch;
  const uint32_t offset2 = ((uint32_t)(-in->zero_point) & 0xffff) * 0x10001u;
  const int32_t lo = op->act_min, hi = op->act_max, zp = out->zero_point;
  int fold = 1;
  for (int c = 0; c < ch; ++c) fold &= zp_foldable(-op->shifts[c], zp);
  const int32_t zp_after = fold ? 0 : zp;
  memset(planes, 0, (size_t)(h + 2) * row_step * sizeof(int16_t)); /* the border stays 0: padding adds 0 */
  for (int batch = 0; batch < DIM(in, 0); ++batch) {
    const int8_t *input = (const int8_t *)in->data + (size_t)batch * h * w * ch;
    int8_t *output = (int8_t *)out->data + (size_t)batch * oh * ow * ch; /* (h w is the same either way) */
    for (int c0 = 0; c0 < ch; c0 += 4) {
      for (int y = 0; y < h; ++y) { /* four channels' (x - zp) into the planes' interior, two columns a word */
        uint32_t *p = (uint32_t *)(void *)(planes + (y + pad_r) * row_step), *end = p + (w + pad_s) / 2;
        const int8_t *x = input + (size_t)y * in_r + c0;
        uint32_t a02 = 0, a13 = 0; /* column 0: padding, or pixel 0 without padding */
        if (!pad_s) {
          const uint32_t u = load32(x);
          a02 = sxtab16(offset2, u), a13 = sxtab16_ror8(offset2, u), x += in_s;
        }
        x = dw3_build(x, p, end, in_s, offset2, a02, a13);
        if ((w + pad_s) & 1) { /* the last pixel's word: [pixel w - 1, 0] */
          const uint32_t u = load32(x + in_s), a02 = sxtab16(offset2, u), a13 = sxtab16_ror8(offset2, u);
          end[0] = a02 & 0xffffu, end[16] = a13 & 0xffffu, end[32] = a02 >> 16, end[48] = a13 >> 16;
        }
      }
      for (int k = 0; k < 4; ++k) {
        const int c = c0 + k;
        const int16_t *pl = planes + k * DW3_PITCH;
        const int8_t *fw = filter + c;
        uint32_t w01[3], w2z[3], wz0[3], w12[3];
        for (int r = 0; r < 3; ++r) {
          const int sr = t ? ch : 3 * ch, sk = t ? 3 * ch : ch; /* the filter transposed with the image */
          const int32_t a = fw[r * sr], m = fw[r * sr + sk], z = fw[r * sr + 2 * sk];
          w01[r] = pair16(a, m), w2z[r] = pair16(z, 0), wz0[r] = pair16(0, a), w12[r] = pair16(m, z);
        }
        const int r = -op->shifts[c];
        const int64_t kc = requant_const(r, fold ? zp : 0);
        const channel_t cc = {bias ? bias[c] : 0, op->multipliers[c], (uint32_t)kc, (int32_t)(kc >> 32), r - 1};
        int32_t cst[21] = {cc.bias, cc.bias, cc.bias, cc.bias};
        for (int rr = 0; rr < 3; ++rr)
          cst[4 + 4 * rr] = (int32_t)w01[rr], cst[5 + 4 * rr] = (int32_t)w2z[rr],
                      cst[6 + 4 * rr] = (int32_t)wz0[rr], cst[7 + 4 * rr] = (int32_t)w12[rr];
        cst[16] = (int32_t)cc.k_lo, cst[17] = cc.k_hi, cst[18] = cc.multiplier, cst[19] = cc.shift_minus_1;
        cst[20] = out_s;
        /* the assembly: four outputs at a time, SSAT as the only clamp, zero point folded */
        const int fours = KWS_DSP && lo == -128 && hi == 127 && zp_after == 0 ? ow / 4 * 4 : 0;
        for (int y = 0; y < oh; ++y) {
          const int16_t *p = pl + y * row_step; /* the window's three plane rows, its first column */
          int8_t *o = output + (size_t)y * out_r + c;
          if (fours) {
            dw3_row4(p, o, o + (size_t)fours * out_s, cst);
            if (fours < ow) dw3_row1(p + fours, o + (size_t)fours * out_s, o + (size_t)ow * out_s, cst, out_s);
            continue;
          }
          for (int x = fours; x < ow; x += 2, p += 2, o += 2 * out_s) {
            int32_t a0 = cc.bias, a1 = cc.bias;
            for (int rr = 0; rr < 3; ++rr) {
              const uint32_t x01 = load32(p + rr * row_step), x23 = load32(p + rr * row_step + 2);
              a0 = smlad(x01, w01[rr], a0);
              a1 = smlad(x01, wz0[rr], a1);
              a0 = smlad(x23, w2z[rr], a0);
              a1 = smlad(x23, w12[rr], a1);
            }
            o[0] = output_of(a0, &cc, zp_after, lo, hi);
            if (x + 1 < ow) o[out_s] = output_of(a1, &cc, zp_after, lo, hi);
          }
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
  /* one input channel: the channel constants and one pixel's int16 taps; else a sum and k's high word
   * each (which needs r >= 2; see requant_k_hi). scratch_bytes 0: the reference loops */
  if (DIM(in, 3) == 1 && op->packed_weights) {
    if (all_right_shifts(op, DIM(f, 3), 1))
      op->scratch_bytes = (uint32_t)sizeof(channel_t) * (uint32_t)DIM(f, 3) + 4u * tap_pairs;
  } else if (all_right_shifts(op, DIM(f, 3), 2)) {
    op->scratch_bytes = 8u * (uint32_t)DIM(f, 3);
    if (dw3_fits(op, in, f, op_out(it, op)) && dw3_plane_bytes(in) <= DW3_PLANE_CAP)
      op->scratch_bytes = dw3_plane_bytes(in);
  }
  return s;
}

/* Depth multiplier 1, channels a multiple of 4: four channels per word. SXTB16 splits input and weight
 * words into channels (0,2) and (1,3); SMLABB/SMLATT multiply-accumulate the bottom and top halves. */
static void depthwise_4ch(const interp_t *it, const op_t *op, const int32_t *k_hi, int32_t zp_after) {
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
            o[oc] = (int8_t)clamp_i32(requant_hi(acc, op->multipliers[oc], k_hi[oc], -op->shifts[oc]) + zp_after, lo, hi);
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
  if (in_c == 1 && op->packed_weights) { depthwise_1ch(it, op, op->scratch); return; }
  if (dw3_fits(op, in, f, out) && op->scratch_bytes == dw3_plane_bytes(in)) {
    depthwise_3x3_planes(it, op, (int16_t *)(void *)op->scratch);
    return;
  }
  int32_t *k_hi = acc + out_c; /* zp folded into k unless a nearly dead channel forbids it (zp_foldable) */
  int fold = 1;
  for (int oc = 0; oc < out_c; ++oc) fold &= zp_foldable(-op->shifts[oc], zp);
  for (int oc = 0; oc < out_c; ++oc) k_hi[oc] = requant_k_hi(-op->shifts[oc], fold ? zp : 0);
  const int32_t zp_after = fold ? 0 : zp;
  if (dm == 1 && (in_c & 3) == 0) { depthwise_4ch(it, op, k_hi, zp_after); return; }
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
          o[oc] = (int8_t)clamp_i32(requant_hi(wrap_add32(acc[oc], bias ? bias[oc] : 0), op->multipliers[oc],
                                               k_hi[oc], -op->shifts[oc]) + zp_after,
                                    op->act_min, op->act_max);
      }
    }
  }
}
