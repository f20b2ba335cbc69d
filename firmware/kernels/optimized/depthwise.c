/* DEPTHWISE_CONV_2D with the Cortex-M4 DSP instructions, our own code:
 *  - one input channel (a converted first layer, depth multiplier = output channels): 3x3 stride 1 on one
 *    int16 plane shared by all channels (depthwise_1ch_plane; doubled values, so that one SMMLAR
 *    requantises: DW3_REQUANT_D), else the packed convolution of conv.c on
 *    weights converted at build time (it is the same computation with in_c 1);
 *  - 3x3, stride 1, depth multiplier 1: four channels' int16 planes (depthwise_3x3_planes), or one channel's
 *    plane at a time for wider images (depthwise_3x3_single); both clamp in the assembly when needed;
 *  - depth multiplier 1 and channels a multiple of 4: four channels per word, SXTB16 + SMLABB/SMLATT
 *    (depthwise_4ch);
 *  - anything else: a per-pixel loop with all channel sums in the scratch buffer. */
#include "../kernels.h"
#include "channels.h"
#include "simd.h"

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

/* One kernel row of four outputs x .. x+3 from the plane columns c0 .. c5, X0 = [c0 c1], X1 = [c2 c3],
 * X2 = [c4 c5], and the row's weights W01 = [w0 w1], W12 = [w1 w2]:
 *   out0 = X0.W01 + c2 w2 (SMLAD, SMLABT)     out1 = c1 w0 + X1.W12 (SMLATB, SMLAD)
 *   out2 = X1.W01 + c4 w2                     out3 = c3 w0 + X2.W12
 * 3 loads of inputs, one LDRD of weights, 8 multiply-accumulates: 12 MACs in 12 instructions. */
#define DW3_MACS(first_a0, first_a1, first_a2, first_a3) \
  "smlad %[a0], %[x0], %[wa], " first_a0 "\n\t" \
  "smlatb %[a1], %[x0], %[wa], " first_a1 "\n\t" \
  "smlad %[a2], %[x1], %[wa], " first_a2 "\n\t" \
  "smlatb %[a3], %[x1], %[wa], " first_a3 "\n\t" \
  "smlabt %[a0], %[x1], %[wb], %[a0]\n\t" \
  "smlad %[a1], %[x1], %[wb], %[a1]\n\t" \
  "smlabt %[a2], %[x2], %[wb], %[a2]\n\t" \
  "smlad %[a3], %[x2], %[wb], %[a3]\n\t"
/* Kernel rows 1 and 2; `p` already advanced by 8 (the first row's post-increment). */
#define DW3_ROW(off, woff) \
  "ldr %[x0], [%[p], #" #off "]\n\t" \
  "ldr %[x1], [%[p], #" #off "+4]\n\t" \
  "ldr %[x2], [%[p], #" #off "+8]\n\t" \
  "ldrd %[wa], %[wb], [%[c], #" #woff "]\n\t" \
  DW3_MACS("%[a0]", "%[a1]", "%[a2]", "%[a3]")
/* The first kernel row starts every sum at the bias (held in a3 until a3's own first multiply). */
#define DW3_ROW0 \
  "ldr %[a3], [%[c]]\n\t" \
  "ldr %[x0], [%[p]], #8\n\t" \
  "ldr %[x1], [%[p], #-4]\n\t" \
  "ldr %[x2], [%[p]]\n\t" \
  "ldrd %[wa], %[wb], [%[c], #4]\n\t" \
  DW3_MACS("%[a3]", "%[a3]", "%[a3]", "%[a3]")
/* requantise acc (see requant64: acc*M + k - [acc < 0] 2^31, the last term as [acc < 0] * (int32)0x80000000),
 * saturate to int8 (act_min -128, act_max 127 only) and leave it in x0 */
#define DW3_REQUANT(acc) \
  "ldrd %[x0], %[x1], [%[c], #28]\n\t" \
  "smlal %[x0], %[x1], %[" #acc "], %[x2]\n\t" \
  "lsr %[" #acc "], %[" #acc "], #31\n\t" \
  "smlal %[x0], %[x1], %[" #acc "], %[wb]\n\t" \
  "asr %[x0], %[x1], %[wa]\n\t" \
  "ssat %[x0], #8, %[x0]\n\t"
/* The same on doubled sums (a plane of 2 (x - zp), a doubled bias: depthwise_1ch_plane when it can): with
 * acc = 2 a, TFLM's (a M + 2^30) >> 31 is SMMLAR's rounded high word (acc M + 2^31) >> 32, and the rounding
 * term, zero point and [a < 0] ride in SMMLAR's addend C - [acc < 0], C = 2^(r-1) + zp 2^r (k's slot holds C,
 * r - 1's slot holds r): floor((2 a M + 2^31 + (C - [a < 0]) 2^32) / 2^(32 + r)) is requant64's value exactly.
 * 4 instructions instead of 6. */
#define DW3_REQUANT_D(acc) \
  "add %[x0], %[wb], %[" #acc "], asr #31\n\t" \
  "smmlar %[x0], %[" #acc "], %[x2], %[x0]\n\t" \
  "asr %[x0], %[x0], %[wa]\n\t" \
  "ssat %[x0], #8, %[x0]\n\t"
/* The requantisation constants into x2 (M), wa and wb, for DW3_REQUANT and DW3_REQUANT_D. */
#define DW3_CONSTS_K \
  "ldr %[x2], [%[c], #36]\n\t" \
  "ldr %[wa], [%[c], #40]\n\t" \
  "mov %[wb], #0x80000000\n\t"
#define DW3_CONSTS_D \
  "ldr %[x2], [%[c], #36]\n\t" \
  "ldr %[wa], [%[c], #40]\n\t" \
  "ldr %[wb], [%[c], #28]\n\t"
/* One channel's constants for dw3_row4 / dw3_row1, as int32 (byte offsets used by the assembly). */
enum { DW3_BIAS = 0, DW3_W = 1 /* per kernel row r: W01 at 1 + 2r, W12 at 2 + 2r */, DW3_K = 7 /* lo, hi */,
       DW3_M = 9, DW3_R1 = 10 /* r - 1 */, DW3_STEP = 11 /* bytes between outputs */, DW3_HI = 12 /* act_max */,
       DW3_LO = 13 /* act_min */, DW3_WORDS = 14 };
/* After SSAT: nothing more when the activation is the whole int8 range, else min(act_max), max(act_min)
 * with the spent accumulator as the scratch register. */
#define DW3_NO_CLAMP(acc) ""
#define DW3_CLAMP_HI(acc) \
  "ldr %[" #acc "], [%[c], #48]\n\t" \
  "cmp %[x0], %[" #acc "]\n\tit gt\n\tmovgt %[x0], %[" #acc "]\n\t"
#define DW3_CLAMP(acc) \
  "ldr %[" #acc "], [%[c], #48]\n\t" \
  "cmp %[x0], %[" #acc "]\n\tit gt\n\tmovgt %[x0], %[" #acc "]\n\t" \
  "ldr %[" #acc "], [%[c], #52]\n\t" \
  "cmp %[x0], %[" #acc "]\n\tit lt\n\tmovlt %[x0], %[" #acc "]\n\t"
/* Four outputs of one channel's row per iteration, from `p` (plane row above, column -1) to o == end;
 * plane rows DW3_ROW_BYTES apart. 72 instructions for 36 MACs and 4 outputs (+ 8 per output to clamp). */
#define DW3_ROW_BYTES 256
#define DW3_ROW4(CL) DW3_ROW4_(CL, DW3_CONSTS_K, DW3_REQUANT)
#define DW3_ROW4_(CL, CONSTS, REQ) \
  __asm volatile( \
      "1:\n\t" \
      DW3_ROW0 DW3_ROW(248, 12) DW3_ROW(504, 20) /* 256 - 8, 512 - 8: p has moved on by 8 */ \
      CONSTS \
      REQ(a0) CL(a0) "strb %[x0], [%[o]]\n\t" \
      REQ(a1) CL(a1) "strb %[x0], [%[o], %[s]]\n\t" \
      "add %[o], %[o], %[s], lsl #1\n\t" \
      REQ(a2) CL(a2) "strb %[x0], [%[o]]\n\t" \
      REQ(a3) CL(a3) "strb %[x0], [%[o], %[s]]\n\t" \
      "add %[o], %[o], %[s], lsl #1\n\t" \
      "cmp %[o], %[end]\n\t" \
      "bne 1b\n\t" \
      : [p] "+r"(p), [o] "+r"(o), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), \
        [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [wa] "=&r"(wa), [wb] "=&r"(wb) \
      : [c] "r"(c), [end] "r"(end), [s] "r"(step) \
      : "cc", "memory")
__attribute__((always_inline)) static inline void dw3_row4(const int16_t *p, int8_t *o, const int8_t *end,
                                                           const int32_t *c, int32_t step, int clamp, int dbl) {
#if KWS_ASM
  int32_t a0, a1, a2, a3;
  uint32_t x0, x1, x2, wa, wb;
  if (dbl) { /* doubled sums: DW3_REQUANT_D */
    if (clamp == 2) DW3_ROW4_(DW3_CLAMP, DW3_CONSTS_D, DW3_REQUANT_D);
    else if (clamp) DW3_ROW4_(DW3_CLAMP_HI, DW3_CONSTS_D, DW3_REQUANT_D);
    else DW3_ROW4_(DW3_NO_CLAMP, DW3_CONSTS_D, DW3_REQUANT_D);
  } else if (clamp == 2) DW3_ROW4(DW3_CLAMP);
  else if (clamp) DW3_ROW4(DW3_CLAMP_HI);
  else DW3_ROW4(DW3_NO_CLAMP);
#else
  (void)p, (void)o, (void)end, (void)c, (void)step, (void)clamp, (void)dbl;
#endif
}

/* One output per iteration (the row's last w % 4): 25 instructions for 9 MACs (+ 8 to clamp). */
#define DW3_ROW1(CL, STEP_P) DW3_ROW1_(CL, STEP_P, DW3_CONSTS_K, DW3_REQUANT)
#define DW3_ROW1_(CL, STEP_P, CONSTS, REQ) \
  __asm volatile( \
      "1:\n\t" \
      "ldr %[a0], [%[c]]\n\t" \
      "ldr %[x0], [%[p]]\n\t" \
      "ldr %[x1], [%[p], #4]\n\t" \
      "ldrd %[wa], %[wb], [%[c], #4]\n\t" \
      "smlad %[a0], %[x0], %[wa], %[a0]\n\t" \
      "smlabt %[a0], %[x1], %[wb], %[a0]\n\t" \
      "ldr %[x0], [%[p], #256]\n\t" \
      "ldr %[x1], [%[p], #260]\n\t" \
      "ldrd %[wa], %[wb], [%[c], #12]\n\t" \
      "smlad %[a0], %[x0], %[wa], %[a0]\n\t" \
      "smlabt %[a0], %[x1], %[wb], %[a0]\n\t" \
      "ldr %[x0], [%[p], #512]\n\t" \
      "ldr %[x1], [%[p], #516]\n\t" \
      "ldrd %[wa], %[wb], [%[c], #20]\n\t" \
      "smlad %[a0], %[x0], %[wa], %[a0]\n\t" \
      "smlabt %[a0], %[x1], %[wb], %[a0]\n\t" \
      CONSTS \
      REQ(a0) CL(a0) "strb %[x0], [%[o]]\n\t" \
      "add %[o], %[o], %[s]\n\t" \
      "add %[p], %[p], #" STEP_P "\n\t" \
      "cmp %[o], %[end]\n\t" \
      "bne 1b\n\t" \
      : [p] "+r"(p), [o] "+r"(o), [a0] "=&r"(a0), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), \
        [wa] "=&r"(wa), [wb] "=&r"(wb) \
      : [c] "r"(c), [end] "r"(end), [s] "r"(step) \
      : "cc", "memory")
__attribute__((always_inline)) static inline void dw3_row1(const int16_t *p, int8_t *o, const int8_t *end,
                                                           const int32_t *c, int32_t step, int clamp,
                                                           int stride, int dbl) {
#if KWS_ASM
  int32_t a0;
  uint32_t x0, x1, x2, wa, wb;
  if (dbl) { /* stride 1 only (depthwise_1ch_plane) */
    if (clamp == 2) DW3_ROW1_(DW3_CLAMP, "2", DW3_CONSTS_D, DW3_REQUANT_D);
    else if (clamp) DW3_ROW1_(DW3_CLAMP_HI, "2", DW3_CONSTS_D, DW3_REQUANT_D);
    else DW3_ROW1_(DW3_NO_CLAMP, "2", DW3_CONSTS_D, DW3_REQUANT_D);
  } else if (stride == 2) {
    if (clamp == 2) DW3_ROW1(DW3_CLAMP, "4");
    else if (clamp) DW3_ROW1(DW3_CLAMP_HI, "4");
    else DW3_ROW1(DW3_NO_CLAMP, "4");
  } else {
    if (clamp == 2) DW3_ROW1(DW3_CLAMP, "2");
    else if (clamp) DW3_ROW1(DW3_CLAMP_HI, "2");
    else DW3_ROW1(DW3_NO_CLAMP, "2");
  }
#else
  (void)p, (void)o, (void)end, (void)c, (void)step, (void)clamp, (void)stride, (void)dbl;
#endif
}

/* Stride 2: out(x) = [c2x c2x+1].W01 + c2x+2 w2, so four outputs read the words X0 .. X4 of their row in
 * turn, each shared by two outputs: 5 loads, one LDRD of weights, 8 multiply-accumulates per kernel row. */
#define DW3S2_ROW(off, woff, in0, in1, in2, in3) \
  "ldrd %[wa], %[wb], [%[c], #" #woff "]\n\t" \
  "ldr %[x0], [%[p], #" #off "]\n\t" \
  "ldr %[x1], [%[p], #" #off "+4]\n\t" \
  "smlad %[a0], %[x0], %[wa], " in0 "\n\t" \
  "smlabt %[a0], %[x1], %[wb], %[a0]\n\t" \
  "ldr %[x0], [%[p], #" #off "+8]\n\t" \
  "smlad %[a1], %[x1], %[wa], " in1 "\n\t" \
  "smlabt %[a1], %[x0], %[wb], %[a1]\n\t" \
  "ldr %[x1], [%[p], #" #off "+12]\n\t" \
  "smlad %[a2], %[x0], %[wa], " in2 "\n\t" \
  "smlabt %[a2], %[x1], %[wb], %[a2]\n\t" \
  "ldr %[x0], [%[p], #" #off "+16]\n\t" \
  "smlad %[a3], %[x1], %[wa], " in3 "\n\t" \
  "smlabt %[a3], %[x0], %[wb], %[a3]\n\t"
#define DW3S2_ROW4(CL) \
  __asm volatile( \
      "1:\n\t" \
      "ldr %[a3], [%[c]]\n\t" /* the bias: every sum starts there (a3 is the last to be written) */ \
      DW3S2_ROW(0, 4, "%[a3]", "%[a3]", "%[a3]", "%[a3]") \
      DW3S2_ROW(256, 12, "%[a0]", "%[a1]", "%[a2]", "%[a3]") \
      DW3S2_ROW(512, 20, "%[a0]", "%[a1]", "%[a2]", "%[a3]") \
      "ldr %[x2], [%[c], #36]\n\t" \
      "ldr %[wa], [%[c], #40]\n\t" \
      "mov %[wb], #0x80000000\n\t" \
      DW3_REQUANT(a0) CL(a0) "strb %[x0], [%[o]]\n\t" \
      DW3_REQUANT(a1) CL(a1) "strb %[x0], [%[o], %[s]]\n\t" \
      "add %[o], %[o], %[s], lsl #1\n\t" \
      DW3_REQUANT(a2) CL(a2) "strb %[x0], [%[o]]\n\t" \
      DW3_REQUANT(a3) CL(a3) "strb %[x0], [%[o], %[s]]\n\t" \
      "add %[o], %[o], %[s], lsl #1\n\t" \
      "add %[p], %[p], #16\n\t" \
      "cmp %[o], %[end]\n\t" \
      "bne 1b\n\t" \
      : [p] "+r"(p), [o] "+r"(o), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), \
        [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [wa] "=&r"(wa), [wb] "=&r"(wb) \
      : [c] "r"(c), [end] "r"(end), [s] "r"(step) \
      : "cc", "memory")
/* 79 instructions for 36 MACs and 4 outputs (+ 8 per output to clamp). */
__attribute__((always_inline)) static inline void dw3s2_row4(const int16_t *p, int8_t *o, const int8_t *end,
                                                             const int32_t *c, int32_t step, int clamp) {
#if KWS_ASM
  int32_t a0, a1, a2, a3;
  uint32_t x0, x1, x2, wa, wb;
  if (clamp == 2) DW3S2_ROW4(DW3_CLAMP);
  else if (clamp) DW3S2_ROW4(DW3_CLAMP_HI);
  else DW3S2_ROW4(DW3_NO_CLAMP);
#else
  (void)p, (void)o, (void)end, (void)c, (void)step, (void)clamp;
#endif
}

/* One channel over the whole image from its plane `pl` (rows DW3_ROW_BYTES apart, column -1 first):
 * the assembly four outputs at a time where the zero point is folded, else C. */
__attribute__((always_inline)) static inline void dw3_rows(const int16_t *pl, int8_t *out, int oh, int ow,
                                                           int out_r, const int32_t *cst, const channel_t *cc,
                                                           int32_t zp_after, int32_t lo, int32_t hi,
                                                           const int stride, const int clamp, const int dbl) {
  const int rows = DW3_ROW_BYTES / 2, step = cst[DW3_STEP];
  const int fours = KWS_ASM && zp_after == 0 ? ow / 4 * 4 : 0;
  for (int y = 0; y < oh; ++y) {
    const int16_t *p = pl + stride * y * rows; /* the window's three plane rows, its first column */
    int8_t *o = out + (size_t)y * out_r;
    if (fours) {
      if (stride == 2) dw3s2_row4(p, o, o + (size_t)fours * step, cst, step, clamp);
      else dw3_row4(p, o, o + (size_t)fours * step, cst, step, clamp, dbl);
      if (fours < ow)
        dw3_row1(p + stride * fours, o + (size_t)fours * step, o + (size_t)ow * step, cst, step, clamp, stride,
                 dbl);
      continue;
    }
    if (stride == 2) { /* one output at a time */
      for (int x = 0; x < ow; ++x, p += 2, o += step) {
        int32_t a = cc->bias;
        for (int r = 0; r < 3; ++r)
          a = smlabt(load32(p + r * rows + 2), (uint32_t)cst[DW3_W + 2 * r + 1],
                     smlad(load32(p + r * rows), (uint32_t)cst[DW3_W + 2 * r], a));
        o[0] = output_of(dbl ? a / 2 : a, cc, zp_after, lo, hi); /* doubled sums are even */
      }
      continue;
    }
    for (int x = 0; x < ow; x += 2, p += 2, o += 2 * step) {
      int32_t a0 = cc->bias, a1 = cc->bias;
      for (int r = 0; r < 3; ++r) {
        const uint32_t x01 = load32(p + r * rows), x23 = load32(p + r * rows + 2);
        const uint32_t w01 = (uint32_t)cst[DW3_W + 2 * r], w12 = (uint32_t)cst[DW3_W + 2 * r + 1];
        a0 = smlabt(x23, w12, smlad(x01, w01, a0));
        a1 = smlad(x23, w12, smlatb(x01, w01, a1));
      }
      o[0] = output_of(dbl ? a0 / 2 : a0, cc, zp_after, lo, hi); /* doubled sums are even */
      if (x + 1 < ow) o[step] = output_of(dbl ? a1 / 2 : a1, cc, zp_after, lo, hi);
    }
  }
}

/* dw3_rows with the stride, the clamp and dbl (doubled sums, stride 1 only) fixed, so that no row pays for
 * choosing its loop. */
static void dw3_channel(const int16_t *pl, int8_t *out, int oh, int ow, int out_r, const int32_t *cst,
                        const channel_t *cc, int32_t zp_after, int32_t lo, int32_t hi, int stride, int dbl) {
  const int clamp = lo != -128 ? 2 : hi != 127; /* 0: SSAT alone, 1: act_max too, 2: both bounds */
  if (dbl && clamp == 2) dw3_rows(pl, out, oh, ow, out_r, cst, cc, zp_after, lo, hi, 1, 2, 1);
  else if (dbl && clamp) dw3_rows(pl, out, oh, ow, out_r, cst, cc, zp_after, lo, hi, 1, 1, 1);
  else if (dbl) dw3_rows(pl, out, oh, ow, out_r, cst, cc, zp_after, lo, hi, 1, 0, 1);
  else if (stride == 2 && clamp == 2) dw3_rows(pl, out, oh, ow, out_r, cst, cc, zp_after, lo, hi, 2, 2, 0);
  else if (stride == 2 && clamp) dw3_rows(pl, out, oh, ow, out_r, cst, cc, zp_after, lo, hi, 2, 1, 0);
  else if (stride == 2) dw3_rows(pl, out, oh, ow, out_r, cst, cc, zp_after, lo, hi, 2, 0, 0);
  else if (clamp == 2) dw3_rows(pl, out, oh, ow, out_r, cst, cc, zp_after, lo, hi, 1, 2, 0);
  else if (clamp) dw3_rows(pl, out, oh, ow, out_r, cst, cc, zp_after, lo, hi, 1, 1, 0);
  else dw3_rows(pl, out, oh, ow, out_r, cst, cc, zp_after, lo, hi, 1, 0, 0);
}

/* dw3_channel's constants for channel c: weights w[0], w[sk], w[2 sk] of kernel row r at w[r sr]. */
static void dw3_constants(int32_t *cst, channel_t *cc, const op_t *op, const int32_t *bias, int c, int fold,
                          int32_t zp, const int8_t *w, int sr, int sk, int32_t step) {
  const int r = -op->shifts[c];
  const int64_t k = requant_const(r, fold ? zp : 0);
  *cc = (channel_t){bias ? bias[c] : 0, op->multipliers[c], (uint32_t)k, (int32_t)(k >> 32), r - 1};
  cst[DW3_BIAS] = cc->bias;
  for (int row = 0; row < 3; ++row) {
    const int32_t a = w[row * sr], m = w[row * sr + sk], z = w[row * sr + 2 * sk];
    cst[DW3_W + 2 * row] = (int32_t)pair16(a, m), cst[DW3_W + 2 * row + 1] = (int32_t)pair16(m, z);
  }
  cst[DW3_K] = (int32_t)cc->k_lo, cst[DW3_K + 1] = cc->k_hi, cst[DW3_M] = cc->multiplier;
  cst[DW3_R1] = cc->shift_minus_1, cst[DW3_STEP] = step, cst[DW3_HI] = op->act_max, cst[DW3_LO] = op->act_min;
}

/* One image row of four channels into the planes, two columns a word, from x (the word's second pixel)
 * and a02/a13 (its first: 0 for the padding column). Returns x at the last pixel it read. */
static inline const int8_t *dw3_build(const int8_t *x, uint32_t *p, const uint32_t *end, int32_t ch,
                                      uint32_t offset2, uint32_t a02, uint32_t a13) {
#if KWS_ASM
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
        const int c = c0 + k, sr = t ? ch : 3 * ch, sk = t ? 3 * ch : ch; /* the filter transposed too */
        int32_t cst[DW3_WORDS];
        channel_t cc;
        dw3_constants(cst, &cc, op, bias, c, fold, zp, filter + c, sr, sk, out_s);
        dw3_channel(planes + k * DW3_PITCH, output + c, oh, ow, out_r, cst, &cc, zp_after, lo, hi, 1, 0);
      }
    }
  }
}

/* One input channel, 3x3, stride 1 (a converted first layer: depth multiplier = output channels). Every
 * output channel reads the same input, so it goes into one int16 plane (x - zp, zero border) once, and
 * each channel then runs dw3_channel over it: the same four-outputs-per-iteration assembly as above. */
#define DW1_MAX_W (DW3_ROW_BYTES / 2 - 3) /* columns + padding + the one column dw3_row1 reads past */
static int dw1_fits(const op_t *op, const tensor_t *in, const tensor_t *f, const tensor_t *out) {
  return DIM(in, 3) == 1 && DIM(f, 1) == 3 && DIM(f, 2) == 3 && op->stride_h == 1 && op->stride_w == 1 &&
         op->dilation_h == 1 && op->dilation_w == 1 && (op->pad_h | op->pad_w) <= 1 &&
         DIM(out, 1) == DIM(in, 1) + 2 * op->pad_h - 2 && DIM(out, 2) == DIM(in, 2) + 2 * op->pad_w - 2 &&
         DIM(in, 2) <= DW1_MAX_W;
}
static uint32_t dw1_plane_bytes(const tensor_t *in) { return (uint32_t)(DIM(in, 1) + 2) * DW3_ROW_BYTES; }

__attribute__((noinline)) static void depthwise_1ch_plane(const interp_t *it, const op_t *op, int16_t *plane) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *filter = (const int8_t *)f->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), oh = DIM(out, 1), ow = DIM(out, 2), out_c = DIM(out, 3);
  const int rows = DW3_ROW_BYTES / 2;
  const int32_t input_offset = -in->zero_point, lo = op->act_min, hi = op->act_max, zp = out->zero_point;
  int fold = 1, dbl = 1; /* dbl: doubled sums (DW3_REQUANT_D) fit for every channel: r <= 22, |bias| < 2^29 */
  for (int c = 0; c < out_c; ++c) {
    fold &= zp_foldable(-op->shifts[c], zp);
    dbl &= -op->shifts[c] <= 22 && (!bias || (bias[c] < (1 << 29) && bias[c] > -(1 << 29)));
  }
  const int32_t zp_after = fold ? 0 : zp;
  memset(plane, 0, dw1_plane_bytes(in)); /* the border stays 0: padding adds 0 */
  for (int batch = 0; batch < DIM(in, 0); ++batch) {
    const int8_t *input = (const int8_t *)in->data + (size_t)batch * in_h * in_w;
    int8_t *output = (int8_t *)out->data + (size_t)batch * oh * ow * out_c;
    for (int y = 0; y < in_h; ++y) {
      int16_t *row = plane + (y + op->pad_h) * rows + op->pad_w;
      for (int x = 0; x < in_w; ++x) row[x] = (int16_t)((input[y * in_w + x] + input_offset) * (1 + dbl));
    }
    for (int c = 0; c < out_c; ++c) {
      int32_t cst[DW3_WORDS];
      channel_t cc;
      dw3_constants(cst, &cc, op, bias, c, fold, zp, filter + c, 3 * out_c, out_c, out_c);
      if (dbl) { /* 9 taps of |w (x - zp)| <= 128 255 and |bias| < 2^29: the doubled sum fits int32 */
        const int r = -op->shifts[c];
        cc.bias *= 2, cst[DW3_BIAS] = cc.bias;
        cst[DW3_K] = (2 * zp + 1) * (1 << (r - 1)), cst[DW3_R1] = r; /* C (|C| < 2^29) and r */
      }
      dw3_channel(plane, output + c, oh, ow, ow * out_c, cst, &cc, zp_after, lo, hi, 1, dbl);
    }
  }
}

/* Depth multiplier 1, stride 1 where the four-channel planes do not fit (a strip longer than 29), or stride
 * 2: one channel at a time into one plane of DW3_ROW_BYTES rows (as depthwise_1ch_plane), then
 * dw3_channel. Every read stays inside the plane: rows up to in_h + 1, columns up to 127 (zero beyond the
 * image, which is the padding). */
#define DW1_PLANE_CAP 16384
static int dw3_single_fits(const op_t *op, const tensor_t *in, const tensor_t *f, const tensor_t *out) {
  const int s = op->stride_w;
  return op->depth_multiplier == 1 && DIM(f, 1) == 3 && DIM(f, 2) == 3 && (s == 1 || s == 2) &&
         op->stride_h == s && op->dilation_h == 1 && op->dilation_w == 1 && (op->pad_h | op->pad_w) <= 1 &&
         s * (DIM(out, 1) - 1) + 2 <= DIM(in, 1) + 1 && s * (DIM(out, 2) - 1) + 3 <= DW3_ROW_BYTES / 2 - 1 &&
         DIM(in, 2) + op->pad_w < DW3_ROW_BYTES / 2 && dw1_plane_bytes(in) <= DW1_PLANE_CAP &&
         DIM(out, 2) >= 4; /* narrower rows never reach the assembly: depthwise_4ch does better */
}

__attribute__((noinline)) static void depthwise_3x3_single(const interp_t *it, const op_t *op, int16_t *plane) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *filter = (const int8_t *)f->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), ch = DIM(in, 3), oh = DIM(out, 1), ow = DIM(out, 2);
  const int rows = DW3_ROW_BYTES / 2;
  const int32_t input_offset = -in->zero_point, lo = op->act_min, hi = op->act_max, zp = out->zero_point;
  int fold = 1;
  for (int c = 0; c < ch; ++c) fold &= zp_foldable(-op->shifts[c], zp);
  const int32_t zp_after = fold ? 0 : zp;
  memset(plane, 0, dw1_plane_bytes(in)); /* the border stays 0: padding adds 0 */
  for (int batch = 0; batch < DIM(in, 0); ++batch) {
    const int8_t *input = (const int8_t *)in->data + (size_t)batch * in_h * in_w * ch;
    int8_t *output = (int8_t *)out->data + (size_t)batch * oh * ow * ch;
    for (int c = 0; c < ch; ++c) {
      for (int y = 0; y < in_h; ++y) {
        int16_t *row = plane + (y + op->pad_h) * rows + op->pad_w;
        const int8_t *x = input + (size_t)y * in_w * ch + c;
        for (int i = 0; i < in_w; ++i, x += ch) row[i] = (int16_t)(*x + input_offset);
      }
      int32_t cst[DW3_WORDS];
      channel_t cc;
      dw3_constants(cst, &cc, op, bias, c, fold, zp, filter + c, 3 * ch, ch, ch);
      dw3_channel(plane, output + c, oh, ow, ow * ch, cst, &cc, zp_after, lo, hi, op->stride_w, 0);
    }
  }
}

/* DEPTHWISE_CONV_2D over one input channel: 3x3 stride 1 on an int16 plane (depthwise_1ch_plane) when the
 * assembly applies, else the packed convolution (conv.c); more channels: 3x3 planes of four channels,
 * four channels per word (depthwise_4ch), or a per-pixel loop that keeps all channel sums in the scratch. */
static int dw1_plane_applies(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *out = op_out(it, op);
  int fold = 1;
  for (int c = 0; c < DIM(out, 3); ++c) fold &= zp_foldable(-op->shifts[c], out->zero_point);
  return fold && dw1_fits(op, in, f, out) && dw1_plane_bytes(in) <= DW3_PLANE_CAP;
}

/* Four-channel planes: they must fit DW3_PLANE_CAP (checked the same way in Prepare and Eval). */
static int dw3_planes_apply(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0);
  return dw3_fits(op, in, op_in(it, op, 1), op_out(it, op)) && dw3_plane_bytes(in) <= DW3_PLANE_CAP;
}

int opt_prepare_depthwise(interp_t *it, op_t *op) {
  int s = prepare_depthwise(it, op);
  if (s != KWS_OK) return s;
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1);
  const int taps = DIM(f, 1) * DIM(f, 2), out_c = DIM(f, 3);
  if (op->packed_weights && (DIM(in, 3) != 1 || op->packed_bytes != opt_conv_packed_bytes(out_c, taps)))
    return KWS_ERR_BAD_MODEL; /* build-time weights that do not match the model */
  /* one input channel: the plane, or the packed convolution's column buffer and channel constants; else a
   * sum and k's high word each (which needs r >= 2; see requant_k_hi). scratch_bytes 0: the reference loops */
  if (DIM(in, 3) == 1 && op->packed_weights) {
    if (all_right_shifts(op, out_c, 1))
      op->scratch_bytes = dw1_plane_applies(it, op) ? dw1_plane_bytes(in) : opt_conv_scratch_bytes(out_c, taps, 1);
  } else if (all_right_shifts(op, out_c, 2)) {
    op->scratch_bytes = 8u * (uint32_t)out_c;
    if (dw3_planes_apply(it, op)) op->scratch_bytes = dw3_plane_bytes(in);
    else if (dw3_single_fits(op, in, f, op_out(it, op))) op->scratch_bytes = dw1_plane_bytes(in);
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
  if (in_c == 1 && op->packed_weights) {
    if (dw1_plane_applies(it, op)) depthwise_1ch_plane(it, op, (int16_t *)(void *)op->scratch);
    else opt_conv_packed(it, op, 1, f_h, f_w);
    return;
  }
  if (dw3_planes_apply(it, op)) { depthwise_3x3_planes(it, op, (int16_t *)(void *)op->scratch); return; }
  if (dw3_single_fits(op, in, f, out)) { depthwise_3x3_single(it, op, (int16_t *)(void *)op->scratch); return; }
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
