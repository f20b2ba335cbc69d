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

/* Taps are padded to a multiple of 8 (an even number of quads: the inner loop is unrolled twice). */
static int quads_of(int taps) { return (taps + 7) / 8 * 2; }
/* Column buffer for two pixels: quads x 2 pixels x 4 taps x int16. */
static uint32_t column_bytes(int taps) { return (uint32_t)quads_of(taps) * 16u; }

static const uint8_t quad_order[4] = {0, 2, 1, 3}; /* position of tap t inside its quad */

/* One pixel's receptive field into the column buffer (pixel px of the pair), int16 with offset. */
static void im2col(const int8_t *input, int in_h, int in_w, int in_c, int f_h, int f_w, const op_t *op,
                   int32_t input_offset, int oy, int ox, int16_t *col, int px, int k_quads) {
  const int y0 = oy * op->stride_h - op->pad_h, x0 = ox * op->stride_w - op->pad_w;
  int k = 0;
  if ((in_c & 3) == 0) { /* four channels per word: SXTB16 + SADD16, no per-byte work */
    const uint32_t offset2 = ((uint32_t)input_offset & 0xffff) * 0x10001u;
    uint32_t *dst = (uint32_t *)(void *)(col + px * 4); /* 4 int16 of this pixel, then 4 of the other */
    for (int ky = 0; ky < f_h; ++ky) {
      const int iy = y0 + op->dilation_h * ky;
      for (int kx = 0; kx < f_w; ++kx) {
        const int ix = x0 + op->dilation_w * kx;
        uint32_t *const stop = dst + in_c; /* in_c taps = in_c / 4 quads of 4 words each */
        if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) {
          const uint32_t *src = (const uint32_t *)(const void *)(input + (iy * in_w + ix) * in_c);
          for (; dst < stop; dst += 4) {
            const uint32_t w = *src++;
            dst[0] = sxtab16(offset2, w);      /* t0, t2 (offset added in the same instruction) */
            dst[1] = sxtab16_ror8(offset2, w); /* t1, t3 */
          }
        } else {
          for (; dst < stop; dst += 4) dst[0] = dst[1] = 0; /* padding: (x - zp) is 0 there */
        }
      }
    }
    k = f_h * f_w * in_c;
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
 * Per quad: one LDM (both pixels), two LDRD (both channels), eight SMLAD: 16 MACs in 11 instructions,
 * plus 2 for the loop every two quads. Registers are pinned because LDM loads in register-number order. */
__attribute__((noinline)) static void dot_2x2(const int16_t *col, const int16_t *w, int quads, int32_t *s) {
#if KWS_DSP
  register const int16_t *rc __asm("r0") = col;
  register const int16_t *rw __asm("r1") = w;
  register int rn __asm("r2") = quads / 2;
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
      /* the same again: the loop runs over pairs of quads (taps padded to multiples of 8) */
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

/* Per output channel, everything its requantisation needs, side by side (computed once per Eval). */
typedef struct {
  int32_t bias, multiplier;
  uint32_t k_lo;         /* k = 2^30 + (2^(r-1) + (zp << r)) * 2^31, low and high words (see requant_k) */
  int32_t k_hi;
  int32_t shift_minus_1; /* r - 1. 20 bytes: the assembly uses offsets 0..16 and a 20-byte stride */
} channel_t;

static void fill_channels(channel_t *ch, const op_t *op, const int32_t *bias, int n, int32_t zp) {
  for (int c = 0; c < n; ++c) {
    const int r = -op->shifts[c];
    const int64_t k = (1ll << 30) + ((int64_t)(1 << (r - 1)) + (int64_t)zp * (1ll << r)) * (1ll << 31);
    ch[c] = (channel_t){bias ? bias[c] : 0, op->multipliers[c], (uint32_t)k, (int32_t)(k >> 32), r - 1};
  }
}

/* requant_fast() with one multiply-accumulate: TFLM's two roundings nest into one,
 *   out = (acc * M + k - [acc < 0] * 2^31) >> (31 + r)   (floor(floor(x / a) / b) = floor(x / ab)),
 * where [acc < 0] is TFLM's "v < 0" test; the two agree because M > 2^30 (checked in Prepare). */
static inline int32_t requant_k(int32_t acc, const channel_t *c) {
  const int64_t k = (int64_t)(((uint64_t)(uint32_t)c->k_hi << 32) | c->k_lo);
  const int64_t x = (int64_t)acc * c->multiplier + k - (acc < 0 ? (1ll << 31) : 0);
  return (int32_t)(x >> 32) >> c->shift_minus_1;
}

static inline int8_t output_of(int32_t acc, const channel_t *c, int32_t lo, int32_t hi) {
  return (int8_t)clamp_i32(requant_k(acc, c), lo, hi);
}

#if KWS_DSP
/* What the assembly loop over channel pairs reads and advances (offsets are used in the assembly). */
typedef struct {
  const int16_t *col; /* 0: column buffer of the pixel pair */
  int32_t half_quads; /* 4: inner loop count */
  const channel_t *ch; /* 8: constants of the current channel pair, advanced by 40 bytes */
  int8_t *o0, *o1;    /* 12, 16: outputs of the two pixels, advanced by 2 */
  int32_t lo;         /* 20: act_min (act_max is 127: SSAT) */
  int32_t pairs;      /* 24: channel pairs left */
  int32_t quads;      /* 28: quads of taps (the unrolled version's jump) */
} pair_block_t;

/* Requantise sum S of the channel at byte offset C of ch (in register col), store at [O, #K]:
 * requant_k() in 8 instructions (one SMLAL), SSAT to int8, max with act_min. */
#define REQ(S, C, O, K)                                   \
  "ldr %[x0], [%[col], #" #C "+4]\n\t"                      \
  "ldrd %[x1], %[x2], [%[col], #" #C "+8]\n\t"              \
  "smlal %[x1], %[x2], %[" #S "], %[x0]\n\t"               \
  "and %[x0], %[" #S "], #0x80000000\n\t"                  \
  "subs %[x1], %[x1], %[x0]\n\t"                           \
  "sbc %[x2], %[x2], #0\n\t"                               \
  "ldr %[x0], [%[col], #" #C "+16]\n\t"                     \
  "asr %[x2], %[x2], %[x0]\n\t"                            \
  "ssat %[x2], #8, %[x2]\n\t"                              \
  "cmp %[x2], %[n]\n\t"                                    \
  "it lt\n\t"                                              \
  "movlt %[x2], %[n]\n\t"                                  \
  "strb %[x2], [%[" #O "], #" #K "]\n\t"

/* Every channel pair of one pixel pair in one call: the 2x2 SMLAD loop of dot_2x2, then the four
 * requantisations in registers, so no sums go through memory and no call is made per pair. */
__attribute__((noinline)) static void conv_pairs_asm(pair_block_t *block, const int16_t *w) {
  register const int16_t *rc __asm("r0");
  register const int16_t *rw __asm("r1") = w;
  register int32_t rn __asm("r2");
  register int32_t s0 __asm("r3"), s1 __asm("r12"), s2 __asm("r10"), s3 __asm("r11");
  register uint32_t x0 __asm("r4"), x1 __asm("r5"), x2 __asm("r6"), x3 __asm("r8");
  register uint32_t y0 __asm("r9"), y1 __asm("lr");
  register pair_block_t *rp __asm("r7") = block;
  __asm volatile(
      "2:\n\t"
      "ldr %[x0], [%[p], #8]\n\t" /* ch */
      "ldr %[s0], [%[x0], #0]\n\t"
      "ldr %[s1], [%[x0], #20]\n\t"
      "mov %[s2], %[s0]\n\t"
      "mov %[s3], %[s1]\n\t"
      "ldr %[col], [%[p], #0]\n\t"
      "ldr %[n], [%[p], #4]\n\t"
      "1:\n\t"
      "ldm %[col]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"
      "ldrd %[y0], %[y1], [%[w]], #8\n\t"
      "smlad %[s0], %[x0], %[y0], %[s0]\n\t"
      "smlad %[s0], %[x1], %[y1], %[s0]\n\t"
      "smlad %[s2], %[x2], %[y0], %[s2]\n\t"
      "smlad %[s2], %[x3], %[y1], %[s2]\n\t"
      "ldrd %[y0], %[y1], [%[w]], #8\n\t"
      "smlad %[s1], %[x0], %[y0], %[s1]\n\t"
      "smlad %[s1], %[x1], %[y1], %[s1]\n\t"
      "smlad %[s3], %[x2], %[y0], %[s3]\n\t"
      "smlad %[s3], %[x3], %[y1], %[s3]\n\t"
      "ldm %[col]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"
      "ldrd %[y0], %[y1], [%[w]], #8\n\t"
      "smlad %[s0], %[x0], %[y0], %[s0]\n\t"
      "smlad %[s0], %[x1], %[y1], %[s0]\n\t"
      "smlad %[s2], %[x2], %[y0], %[s2]\n\t"
      "smlad %[s2], %[x3], %[y1], %[s2]\n\t"
      "ldrd %[y0], %[y1], [%[w]], #8\n\t"
      "smlad %[s1], %[x0], %[y0], %[s1]\n\t"
      "smlad %[s1], %[x1], %[y1], %[s1]\n\t"
      "smlad %[s3], %[x2], %[y0], %[s3]\n\t"
      "smlad %[s3], %[x3], %[y1], %[s3]\n\t"
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      "ldr %[col], [%[p], #8]\n\t"  /* ch */
      "ldr %[n], [%[p], #20]\n\t"   /* act_min */
      "ldr %[y0], [%[p], #12]\n\t"  /* o0 */
      "ldr %[y1], [%[p], #16]\n\t"  /* o1 */
      REQ(s2, 0, y1, 0) REQ(s3, 20, y1, 1) /* pixel 1 first: for an odd last pixel o1 == o0 */
      REQ(s0, 0, y0, 0) REQ(s1, 20, y0, 1)
      "add %[col], %[col], #40\n\t"
      "str %[col], [%[p], #8]\n\t"
      "add %[y0], %[y0], #2\n\t"
      "str %[y0], [%[p], #12]\n\t"
      "add %[y1], %[y1], #2\n\t"
      "str %[y1], [%[p], #16]\n\t"
      "ldr %[x0], [%[p], #24]\n\t"
      "subs %[x0], %[x0], #1\n\t"
      "str %[x0], [%[p], #24]\n\t"
      "bne 2b\n\t"
      : [col] "=&r"(rc), [w] "+r"(rw), [n] "=&r"(rn), [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2),
        [s3] "=&r"(s3), [x0] "=&r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [y0] "=&r"(y0),
        [y1] "=&r"(y1)
      : [p] "r"(rp)
      : "cc", "memory");
}
#undef REQ

/* Up to KWS_UNROLLED_QUADS quads of taps: the same 2x2 block fully unrolled and entered by a computed
 * jump, so no loop counter is needed. That frees the registers for one LDM per operand: per quad one LDM
 * (two pixels), one LDM (two channels), eight SMLAD: 16 MACs in 10 instructions. */
#define KWS_UNROLLED_QUADS 96 /* 96 blocks of 40 bytes: within ADR's +-4095 byte reach */

#define REQ2(S, C, O, K, CLAMP)                            \
  "ldr %[x1], [%[col], #" #C "+4]\n\t"                      \
  "ldrd %[x2], %[x3], [%[col], #" #C "+8]\n\t"              \
  "smlal %[x2], %[x3], %[" #S "], %[x1]\n\t"               \
  "and %[x1], %[" #S "], #0x80000000\n\t"                  \
  "subs %[x2], %[x2], %[x1]\n\t"                           \
  "sbc %[x3], %[x3], #0\n\t"                               \
  "ldr %[x1], [%[col], #" #C "+16]\n\t"                     \
  "asr %[x3], %[x3], %[x1]\n\t"                            \
  "ssat %[x3], #8, %[x3]\n\t"                              \
  CLAMP                                                    \
  "strb %[x3], [%[" #O "], #" #K "]\n\t"
/* max(out, act_min); not needed when act_min is -128 (ReLU with output zero point -128: SSAT is enough) */
#define CLAMP2 "cmp %[x3], %[y2]\n\tit lt\n\tmovlt %[x3], %[y2]\n\t"

#define STR_(x) #x
#define STR(x) STR_(x)

__attribute__((noinline)) static void conv_pairs_unrolled(pair_block_t *block, const int16_t *w) {
  register const int16_t *rc __asm("r0");
  register const int16_t *rw __asm("r1") = w;
  register int32_t s0 __asm("r2"), s1 __asm("r3"), s2 __asm("r7"), s3 __asm("r11");
  register uint32_t x0 __asm("r4") = (uint32_t)(uintptr_t)block; /* the block pointer lives in x0 */
  register uint32_t x1 __asm("r5"), x2 __asm("r6"), x3 __asm("r8");
  register uint32_t y0 __asm("r9"), y1 __asm("r10"), y2 __asm("r12"), y3 __asm("lr");
  __asm volatile(
      "2:\n\t"
      "ldr %[x1], [%[x0], #8]\n\t" /* ch */
      "ldr %[s0], [%[x1], #0]\n\t"
      "ldr %[s1], [%[x1], #20]\n\t"
      "mov %[s2], %[s0]\n\t"
      "mov %[s3], %[s1]\n\t"
      "ldr %[col], [%[x0], #0]\n\t"
      "ldr %[x2], [%[x0], #28]\n\t"          /* quads */
      "add %[x2], %[x2], %[x2], lsl #2\n\t"  /* 5 q */
      "adr.w %[x3], 3f\n\t"
      "sub %[x3], %[x3], %[x2], lsl #3\n\t"  /* entry = end - 40 q */
      "orr %[x3], %[x3], #1\n\t"             /* Thumb state */
      "push {%[x0]}\n\t"
      "bx %[x3]\n\t"
      ".rept " STR(KWS_UNROLLED_QUADS) "\n\t"
      "ldm.w %[col]!, {%[x0], %[x1], %[x2], %[x3]}\n\t" /* pixel 0 taps (0,2)(1,3), pixel 1 the same */
      "ldm.w %[w]!, {%[y0], %[y1], %[y2], %[y3]}\n\t"   /* channel 0, channel 1 */
      "smlad %[s0], %[x0], %[y0], %[s0]\n\t"
      "smlad %[s0], %[x1], %[y1], %[s0]\n\t"
      "smlad %[s2], %[x2], %[y0], %[s2]\n\t"
      "smlad %[s2], %[x3], %[y1], %[s2]\n\t"
      "smlad %[s1], %[x0], %[y2], %[s1]\n\t"
      "smlad %[s1], %[x1], %[y3], %[s1]\n\t"
      "smlad %[s3], %[x2], %[y2], %[s3]\n\t"
      "smlad %[s3], %[x3], %[y3], %[s3]\n\t"
      ".endr\n\t"
      "3:\n\t"
      "pop {%[x0]}\n\t"
      "ldr %[col], [%[x0], #8]\n\t"  /* ch */
      "ldr %[y2], [%[x0], #20]\n\t"  /* act_min */
      "ldr %[y0], [%[x0], #12]\n\t"  /* o0 */
      "ldr %[y1], [%[x0], #16]\n\t"  /* o1 */
      "cmn %[y2], #128\n\t"
      "beq 4f\n\t"
      REQ2(s2, 0, y1, 0, CLAMP2) REQ2(s3, 20, y1, 1, CLAMP2) /* pixel 1 first: for an odd last pixel */
      REQ2(s0, 0, y0, 0, CLAMP2) REQ2(s1, 20, y0, 1, CLAMP2) /* o1 == o0 and pixel 0 must win */
      "b 5f\n\t"
      "4:\n\t"
      REQ2(s2, 0, y1, 0, "") REQ2(s3, 20, y1, 1, "") REQ2(s0, 0, y0, 0, "") REQ2(s1, 20, y0, 1, "")
      "5:\n\t"
      "add %[col], %[col], #40\n\t"
      "str %[col], [%[x0], #8]\n\t"
      "add %[y0], %[y0], #2\n\t"
      "str %[y0], [%[x0], #12]\n\t"
      "add %[y1], %[y1], #2\n\t"
      "str %[y1], [%[x0], #16]\n\t"
      "ldr %[x1], [%[x0], #24]\n\t"
      "subs %[x1], %[x1], #1\n\t"
      "str %[x1], [%[x0], #24]\n\t"
      "bne 2b\n\t"
      : [col] "=&r"(rc), [w] "+r"(rw), [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3),
        [x0] "+r"(x0), [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [y0] "=&r"(y0), [y1] "=&r"(y1),
        [y2] "=&r"(y2), [y3] "=&r"(y3)
      :
      : "cc", "memory");
}
#undef REQ2
#undef CLAMP2
#endif

/* The shared core: in_c input channels, filter f_h x f_w, out_c output channels, packed int16 weights. */
static void conv_packed(const interp_t *it, const op_t *op, int in_c, int f_h, int f_w) {
  const tensor_t *in = op_in(it, op, 0), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *input = (const int8_t *)in->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  int8_t *output = (int8_t *)out->data;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), out_w = DIM(out, 2), out_c = DIM(out, 3);
  const int k_quads = quads_of(f_h * f_w * in_c), pixels = DIM(out, 1) * out_w;
  const int32_t input_offset = -in->zero_point, zp = out->zero_point;
  int16_t *col = (int16_t *)(void *)op->scratch;
  channel_t *ch = (channel_t *)(void *)(op->scratch + column_bytes(f_h * f_w * in_c));
  fill_channels(ch, op, bias, out_c, out->zero_point);
  const int32_t lo = op->act_min, hi = op->act_max;
  (void)zp;
  for (int batch = 0; batch < DIM(in, 0); ++batch, input += in_h * in_w * in_c, output += pixels * out_c) {
    for (int p = 0; p < pixels; p += 2) {
      const int p1 = p + 1 < pixels ? p + 1 : p; /* an odd last pixel is computed twice, stored once */
      im2col(input, in_h, in_w, in_c, f_h, f_w, op, input_offset, p / out_w, p % out_w, col, 0, k_quads);
      im2col(input, in_h, in_w, in_c, f_h, f_w, op, input_offset, p1 / out_w, p1 % out_w, col, 1, k_quads);
      const int16_t *w = (const int16_t *)op->packed_weights;
      int8_t *o0 = output + p * out_c, *o1 = output + p1 * out_c;
      const int pairs = out_c / 2;
#if KWS_DSP
      if (hi == 127 && pairs > 0) { /* all pairs in assembly; an odd last channel below */
        pair_block_t block = {col, k_quads / 2, ch, o0, o1, lo, pairs, k_quads};
        if (k_quads <= KWS_UNROLLED_QUADS) conv_pairs_unrolled(&block, w);
        else conv_pairs_asm(&block, w);
        w += pairs * k_quads * 8;
      } else
#endif
      for (int k = 0; k < pairs; ++k, w += k_quads * 8) {
        const channel_t *c = ch + 2 * k;
        int32_t s[4] = {c[0].bias, c[1].bias, c[0].bias, c[1].bias};
        dot_2x2(col, w, k_quads, s);
        o1[2 * k] = output_of(s[2], c, lo, hi); /* o1 first: for an odd last pixel o1 == o0 */
        o1[2 * k + 1] = output_of(s[3], c + 1, lo, hi);
        o0[2 * k] = output_of(s[0], c, lo, hi);
        o0[2 * k + 1] = output_of(s[1], c + 1, lo, hi);
      }
      if (out_c & 1) { /* an odd last channel: its weights are paired with zeros */
        const channel_t *c = ch + out_c - 1;
        int32_t s[4] = {c->bias, 0, c->bias, 0};
        dot_2x2(col, w, k_quads, s);
        o1[out_c - 1] = output_of(s[2], c, lo, hi);
        o0[out_c - 1] = output_of(s[0], c, lo, hi);
      }
    }
  }
}

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
      "ldr %[acc], [%[ch]], #20\n\t" /* bias; the other fields are now at -16 ... -4 */
      "ldrd %[tmp], %[l64], [%[w]], #8\n\t"
      "smlad %[acc], %[t0], %[tmp], %[acc]\n\t"
      "smlad %[acc], %[t1], %[l64], %[acc]\n\t"
      "ldrd %[tmp], %[l64], [%[w]], #8\n\t"
      "smlad %[acc], %[t2], %[tmp], %[acc]\n\t"
      "smlad %[acc], %[t3], %[l64], %[acc]\n\t"
      "ldr %[tmp], [%[w]], #4\n\t"
      "smlad %[acc], %[t4], %[tmp], %[acc]\n\t"
      "ldr %[tmp], [%[ch], #-16]\n\t"             /* multiplier */
      "ldrd %[l64], %[h64], [%[ch], #-12]\n\t"    /* k */
      "smlal %[l64], %[h64], %[acc], %[tmp]\n\t"  /* acc * M + k */
      "and %[tmp], %[acc], #0x80000000\n\t"
      "subs %[l64], %[l64], %[tmp]\n\t"           /* - 2^31 when acc < 0 */
      "sbc %[h64], %[h64], #0\n\t"
      "ldr %[tmp], [%[ch], #-4]\n\t"              /* r - 1 */
      "asr %[l64], %[h64], %[tmp]\n\t"            /* >> (31 + r) */
      "ssat %[l64], #8, %[l64]\n\t"
      "cmp %[l64], %[lo]\n\t"
      "it lt\n\t"
      "movlt %[l64], %[lo]\n\t"
      "strb %[l64], [%[o]], #1\n\t"
      "cmp %[o], %[end]\n\t"
      "bne 1b\n\t"
      "b 7f\n\t"
      "6:\n\t"
      "ldr %[acc], [%[ch]], #20\n\t" /* bias; the other fields are now at -16 ... -4 */
      "ldrd %[tmp], %[l64], [%[w]], #8\n\t"
      "smlad %[acc], %[t0], %[tmp], %[acc]\n\t"
      "smlad %[acc], %[t1], %[l64], %[acc]\n\t"
      "ldrd %[tmp], %[l64], [%[w]], #8\n\t"
      "smlad %[acc], %[t2], %[tmp], %[acc]\n\t"
      "smlad %[acc], %[t3], %[l64], %[acc]\n\t"
      "ldr %[tmp], [%[w]], #4\n\t"
      "smlad %[acc], %[t4], %[tmp], %[acc]\n\t"
      "ldr %[tmp], [%[ch], #-16]\n\t"             /* multiplier */
      "ldrd %[l64], %[h64], [%[ch], #-12]\n\t"    /* k */
      "smlal %[l64], %[h64], %[acc], %[tmp]\n\t"  /* acc * M + k */
      "and %[tmp], %[acc], #0x80000000\n\t"
      "subs %[l64], %[l64], %[tmp]\n\t"           /* - 2^31 when acc < 0 */
      "sbc %[h64], %[h64], #0\n\t"
      "ldr %[tmp], [%[ch], #-4]\n\t"              /* r - 1 */
      "asr %[l64], %[h64], %[tmp]\n\t"            /* >> (31 + r) */
      "ssat %[l64], #8, %[l64]\n\t"
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

int opt_prepare_conv(interp_t *it, op_t *op) {
  int s = prepare_conv(it, op);
  const tensor_t *f = op_in(it, op, 1);
  /* build-time weights must match the model's shapes exactly: a mismatch is a build error, not a crash */
  const uint32_t channel_pairs = (uint32_t)(DIM(f, 0) + 1) / 2;
  if (s == KWS_OK && op->packed_weights &&
      op->packed_bytes != channel_pairs * (uint32_t)quads_of(DIM(f, 1) * DIM(f, 2) * DIM(f, 3)) * 16u)
    return KWS_ERR_BAD_MODEL;
  /* scratch: the column buffer, then the requantisation constants of each output channel */
  if (s == KWS_OK && op->packed_weights && all_right_shifts(op, DIM(f, 0)))
    op->scratch_bytes = column_bytes(DIM(f, 1) * DIM(f, 2) * DIM(f, 3)) + sizeof(channel_t) * (uint32_t)DIM(f, 0);
  return s;
}

void opt_conv(const interp_t *it, const op_t *op) {
  const tensor_t *f = op_in(it, op, 1);
  if (!op->scratch_bytes) { ref_conv(it, op); return; } /* no build-time weights: the reference loops */
  conv_packed(it, op, DIM(f, 3), DIM(f, 1), DIM(f, 2));
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
