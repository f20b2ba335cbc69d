/* CONV_2D with the Cortex-M4's SMLAD, structured the way CMSIS-NN does it, but our own code:
 *  - weights were converted at build time (tools/gen_model.py) to int16, padded to a multiple of 8 taps,
 *    two output channels interleaved quad (4 taps) by quad;
 *  - for two output pixels at a time, the receptive field is copied into a column buffer as int16 with
 *    the input offset already added (im2col, SXTAB16), the two pixels interleaved quad by quad;
 *  - a 2x2 block (2 pixels x 2 channels) then needs per quad one LDM of columns, one LDM of weights and
 *    eight SMLADs: 16 MACs in 10 instructions in the unrolled assembly (conv_pairs_unrolled), which also
 *    requantises the four outputs in registers (requant_k in channels.h);
 *  - inside a quad both operands use the order (t0, t2, t1, t3): SXTB16 produces that order for free
 *    and a dot product does not care about the order of its terms.
 *  - where a window lies inside the image its column is filled straight from the input (columns_words,
 *    column_of_bytes, column_3x3x3 for an image's first 3x3 layer over 3 channels), and when every window
 *    does (no padding: 1x1 convs, VALID after an explicit PAD) conv_inside walks the pixel pairs with
 *    nothing else to decide: for the small 1x1 convs of MobileNet the column fill and the loop around the
 *    assembly cost more than the multiplies.
 * The C loop (dot_2x2) covers what the assembly does not: act_max below 127, odd channel counts, very
 * long filters, and the host build. */
#include "../kernels.h"
#include "channels.h"
#include "simd.h"
#include "../faults.h" /* empty unless a test build defines a FAULT_ */

/* Taps are padded to a multiple of 8 (an even number of quads: the inner loop is unrolled twice). */
static int quads_of(int taps) { return (taps + 7) / 8 * 2; }
/* Column buffer for two pixels: quads x 2 pixels x 4 taps x int16. */
static uint32_t column_bytes(int taps) { return (uint32_t)quads_of(taps) * 16u; }

static const uint8_t quad_order[4] = {0, 2, 1, 3}; /* position of tap t inside its quad */

/* One pixel's receptive field into the column buffer (pixel px of the pair), int16 with offset. */
static void im2col(const int8_t *input, int in_h, int in_w, int in_c, int f_h, int f_w, const op_t *op,
                   int32_t input_offset, int oy, int ox, int16_t *col, int px, int k_quads, int8_t *stage) {
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
  } else { /* any channel count: the raw bytes in tap order first (a row of the window is one run of
              * f_w in_c bytes; padding reads as the input zero point, which the offset turns into 0), then
              * widened four at a time as above */
    const uint32_t offset2 = ((uint32_t)input_offset & 0xffff) * 0x10001u;
    const int8_t zp = (int8_t)-input_offset;
    int8_t *t = stage;
    for (int ky = 0; ky < f_h; ++ky) {
      const int iy = y0 + op->dilation_h * ky;
      if (iy >= 0 && iy < in_h && op->dilation_w == 1 && x0 >= 0 && x0 + f_w <= in_w) {
        const int8_t *src = input + (iy * in_w + x0) * in_c;
        const int n = f_w * in_c;
        int j = 0;
        for (; j + 4 <= n; j += 4) store32(t + j, load32(src + j)); /* unaligned words are fine on the M4 */
        for (; j < n; ++j) t[j] = src[j];
        t += n;
        continue;
      }
      for (int kx = 0; kx < f_w; ++kx) {
        const int ix = x0 + op->dilation_w * kx;
        const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
        const int8_t *src = input + (iy * in_w + ix) * in_c;
        for (int c = 0; c < in_c; ++c) *t++ = inside ? src[c] : zp;
      }
    }
    while (t < stage + k_quads * 4) *t++ = zp; /* the padded taps (their weights are 0) */
    uint32_t *dst = (uint32_t *)(void *)(col + px * 4);
    for (int q = 0; q < k_quads; ++q, dst += 4) {
      const uint32_t w = load32(stage + 4 * q);
      dst[0] = sxtab16(offset2, w), dst[1] = sxtab16_ror8(offset2, w);
    }
    return;
  }
  for (; k < k_quads * 4; ++k) col[(k >> 2) * 8 + px * 4 + quad_order[k & 3]] = 0;
}

/* Fast column fills where a pixel's window lies inside the image with dilation 1 along x: each window row
 * is then one run of f_w in_c bytes, rows row_step bytes apart. The padded taps are never written
 * (opt_conv_packed zeroed them once). */
typedef struct {
  int rows, row_step, n; /* window rows, bytes between them, bytes per row */
  uint32_t offset2;      /* the input offset in both halves */
  int8_t *stage;         /* raw bytes in tap order (channel counts not a multiple of 4) */
  uint32_t zp_top;       /* the input zero point in the top byte */
} window_t;

/* A 3x3 window over 3 channels (an image's first layer): its 27 taps, in tap order, are three runs of 9
 * bytes; the 7 words holding them are assembled straight from the runs (the last one ends with the zero
 * point: padding) and widened, no staging. */
static inline void column_3x3x3(const window_t *win, const int8_t *r0, uint32_t *dst) {
  const int8_t *r1 = r0 + win->row_step, *r2 = r1 + win->row_step;
  uint16_t h;
  memcpy(&h, r1 + 7, 2);
  const uint32_t q[7] = {load32(r0), load32(r0 + 4), (uint8_t)r0[8] | load32(r1) << 8, load32(r1 + 3),
                         h | load32(r2) << 16, load32(r2 + 2), load32(r2 + 5) >> 8 | win->zp_top};
  const uint32_t offset2 = win->offset2;
  for (int i = 0; i < 7; ++i, dst += 4) dst[0] = sxtab16(offset2, q[i]), dst[1] = sxtab16_ror8(offset2, q[i]);
}

/* Four channels per word: both pixels' windows (a, b) widened straight from the input. */
__attribute__((noinline)) static void columns_words(const window_t *win, const int8_t *a, const int8_t *b,
                                                    uint32_t *dst) {
  const uint32_t offset2 = win->offset2;
  const int n = win->n;
  for (int ky = 0; ky < win->rows; ++ky, a += win->row_step, b += win->row_step)
    for (int j = 0; j < n; j += 4, dst += 4) {
      const uint32_t u = load32(a + j), v = load32(b + j);
      dst[0] = sxtab16(offset2, u), dst[1] = sxtab16_ror8(offset2, u);
      dst[2] = sxtab16(offset2, v), dst[3] = sxtab16_ror8(offset2, v);
    }
}

/* Any channel count: one pixel's runs copied a word at a time into the staging bytes (whose tail
 * opt_conv_packed filled with the zero point), then the quads holding taps widened into slot dst. */
__attribute__((noinline)) static void column_of_bytes(const window_t *win, const int8_t *src, uint32_t *dst) {
  if (win->n == 9 && win->rows == 3) {
    column_3x3x3(win, src, dst);
    return;
  }
  int8_t *t = win->stage;
  const int n = win->n, words = n >> 2, rows = win->rows, row_step = win->row_step;
  if (n >= 4 && (n & 3)) { /* a run's last bytes as the word that ends it (overlapping the one before) */
    for (int ky = 0; ky < rows; ++ky, src += row_step, t += n) {
      for (int j = 0; j < words; ++j) store32(t + 4 * j, load32(src + 4 * j)); /* unaligned is fine */
      store32(t + n - 4, load32(src + n - 4));
    }
  } else {
    for (int ky = 0; ky < rows; ++ky, src += row_step, t += n) {
      for (int j = 0; j < words; ++j) store32(t + 4 * j, load32(src + 4 * j));
      for (int j = 4 * words; j < n; ++j) t[j] = src[j];
    }
  }
  const uint32_t offset2 = win->offset2;
  for (const int8_t *q = win->stage; q < t; q += 4, dst += 4) {
    const uint32_t w = load32(q);
    dst[0] = sxtab16(offset2, w), dst[1] = sxtab16_ror8(offset2, w);
  }
}

/* One quad of taps for 2 pixels x 2 channels (the body of dot_2x2's loop). */
#define DOT_2X2_QUAD \
  "ldm %[col]!, {%[x0], %[x1], %[x2], %[x3]}\n\t" /* pixel 0 taps (0,2)(1,3), pixel 1 the same */ \
  "ldrd %[y0], %[y1], [%[w]], #8\n\t"             /* channel 0 */ \
  "smlad %[s0], %[x0], %[y0], %[s0]\n\t" \
  "smlad %[s0], %[x1], %[y1], %[s0]\n\t" \
  "smlad %[s2], %[x2], %[y0], %[s2]\n\t" \
  "smlad %[s2], %[x3], %[y1], %[s2]\n\t" \
  "ldrd %[y0], %[y1], [%[w]], #8\n\t" /* channel 1 */ \
  "smlad %[s1], %[x0], %[y0], %[s1]\n\t" \
  "smlad %[s1], %[x1], %[y1], %[s1]\n\t" \
  "smlad %[s3], %[x2], %[y0], %[s3]\n\t" \
  "smlad %[s3], %[x3], %[y1], %[s3]\n\t"

/* s[0] += px0.ch0, s[1] += px0.ch1, s[2] += px1.ch0, s[3] += px1.ch1 over `quads` quads of taps.
 * Per quad: one LDM (both pixels), two LDRD (both channels), eight SMLAD: 16 MACs in 11 instructions,
 * plus 2 for the loop every two quads. Registers are pinned because LDM loads in register-number order. */
__attribute__((noinline)) static void dot_2x2(const int16_t *col, const int16_t *w, int quads, int32_t *s) {
#if KWS_ASM
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
      DOT_2X2_QUAD
      DOT_2X2_QUAD /* twice: the loop runs over pairs of quads (taps padded to multiples of 8) */
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

/* What the assembly loop over channel pairs reads and advances (offsets are used in the assembly). */
typedef struct {
  const int16_t *col; /* 0: column buffer of the pixel pair */
  int32_t half_quads; /* 4: inner loop count */
  const channel_t *ch; /* 8: constants of the current channel pair, advanced by 40 bytes */
  int8_t *o0, *o1;    /* 12, 16: outputs of the two pixels, advanced by 2 */
  int32_t lo;         /* 20: act_min */
  int32_t pairs;      /* 24: channel pairs left */
  int32_t quads;      /* 28: quads of taps; the assembly replaces it by its entry address */
  int32_t hi;         /* 32: act_max */
  int32_t clamp;      /* 36: 0 when SSAT alone clamps (act_min -128, act_max 127), 1 act_max only, 2 both */
} pair_block_t;

/* Up to KWS_UNROLLED_QUADS quads of taps: the same 2x2 block fully unrolled and entered by a computed
 * jump, so no loop counter is needed. That frees the registers for one LDM per operand: per quad one LDM
 * (two pixels), one LDM (two channels), eight SMLAD: 16 MACs in 10 instructions. */
#define KWS_UNROLLED_QUADS 96 /* 96 blocks of 40 bytes: within ADR's +-4095 byte reach */

#if KWS_ASM
/* One output: acc*M + k - [acc < 0] 2^31 as SMLAL by (acc >> 31 logical) * (int32)0x80000000 (y2), then
 * >> (31 + r), SSAT, the activation's clamp and the store: 7 instructions plus CLAMP, with M in x1 and r - 1
 * in y3 (requant64). */
#define REQ1(S, C, O, K, CLAMP)                            \
  "ldrd %[x2], %[x3], [%[col], #" #C "+8]\n\t"              \
  "smlal %[x2], %[x3], %[" #S "], %[x1]\n\t"               \
  "lsr %[" #S "], %[" #S "], #31\n\t"                      \
  "smlal %[x2], %[x3], %[" #S "], %[y2]\n\t"               \
  "asr %[x3], %[x3], %[y3]\n\t"                            \
  "ssat %[x3], #8, %[x3]\n\t"                              \
  CLAMP(S)                                                 \
  "strb %[x3], [%[" #O "], #" #K "]\n\t"
#define NO_CLAMP(S) ""
/* min(act_max, out), with the spent accumulator S as the scratch register (RELU6 on zero point -128) */
#define CLAMP_HI(S)                                        \
  "ldr %[" #S "], [%[x0], #32]\n\t"                         \
  "cmp %[x3], %[" #S "]\n\tit gt\n\tmovgt %[x3], %[" #S "]\n\t"
/* max(act_min, min(act_max, out)), with the spent accumulator S as the scratch register */
#define CLAMP(S)                                           \
  "ldr %[" #S "], [%[x0], #20]\n\t"                         \
  "cmp %[x3], %[" #S "]\n\tit lt\n\tmovlt %[x3], %[" #S "]\n\t" \
  "ldr %[" #S "], [%[x0], #32]\n\t"                         \
  "cmp %[x3], %[" #S "]\n\tit gt\n\tmovgt %[x3], %[" #S "]\n\t"
/* Both pixels of the channel whose constants are at col + C: pixel 1 first (o1 == o0 for an odd last pixel,
 * and pixel 0 must win) */
#define REQ_CH(C, S1, S0, K, CL)                           \
  "ldr %[x1], [%[col], #" #C "+4]\n\t"                      \
  "ldr %[y3], [%[col], #" #C "+16]\n\t"                     \
  REQ1(S1, C, y1, K, CL) REQ1(S0, C, y0, K, CL)

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
      "ldr %[x2], [%[x0], #28]\n\t"          /* quads */
      "add %[x2], %[x2], %[x2], lsl #2\n\t"  /* 5 q */
      "adr.w %[x3], 3f\n\t"
      "sub %[x3], %[x3], %[x2], lsl #3\n\t"  /* entry = end - 40 q */
      "orr %[x3], %[x3], #1\n\t"             /* Thumb state */
      "str %[x3], [%[x0], #28]\n\t"          /* from now on the block holds the entry address */
      "2:\n\t"
      "ldr %[x1], [%[x0], #8]\n\t" /* ch */
      "ldr %[s0], [%[x1], #0]\n\t"
      "ldr %[s1], [%[x1], #20]\n\t"
      "mov %[s2], %[s0]\n\t"
      "mov %[s3], %[s1]\n\t"
      "ldr %[col], [%[x0], #0]\n\t"
      "ldr %[x3], [%[x0], #28]\n\t"
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
      "ldr %[y2], [%[x0], #36]\n\t"  /* clamp */
      "ldr %[y0], [%[x0], #12]\n\t"  /* o0 */
      "ldr %[y1], [%[x0], #16]\n\t"  /* o1 */
      "cmp %[y2], #1\n\t"
      "mov %[y2], #0x80000000\n\t"
      "blt 4f\n\t"
      "beq 6f\n\t"
      REQ_CH(0, s2, s0, 0, CLAMP) REQ_CH(20, s3, s1, 1, CLAMP)
      "b 5f\n\t"
      "6:\n\t" /* act_min -128: only act_max to apply after SSAT */
      REQ_CH(0, s2, s0, 0, CLAMP_HI) REQ_CH(20, s3, s1, 1, CLAMP_HI)
      "b 5f\n\t"
      "4:\n\t" /* SSAT alone clamps; each channel's M and r - 1 serve both pixels */
      REQ_CH(0, s2, s0, 0, NO_CLAMP) REQ_CH(20, s3, s1, 1, NO_CLAMP)
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
#undef REQ1
#undef NO_CLAMP
#undef CLAMP
#undef CLAMP_HI
#undef REQ_CH
#endif

#if !KWS_ASM
/* The C twin of conv_pairs_unrolled (zero point folded into every channel's constants). */
static void conv_pairs_unrolled(pair_block_t *b, const int16_t *w) {
  for (int k = 0; k < b->pairs; ++k, w += b->quads * 8) {
    const channel_t *c = b->ch + 2 * k;
    int32_t s[4] = {c[0].bias, c[1].bias, c[0].bias, c[1].bias};
    dot_2x2(b->col, w, b->quads, s);
    b->o1[2 * k] = output_of(s[2], c, 0, b->lo, b->hi); /* o1 first: for an odd last pixel o1 == o0 */
    b->o1[2 * k + 1] = output_of(s[3], c + 1, 0, b->lo, b->hi);
    b->o0[2 * k] = output_of(s[0], c, 0, b->lo, b->hi);
    b->o0[2 * k + 1] = output_of(s[1], c + 1, 0, b->lo, b->hi);
  }
}
#endif

/* Every window inside the image (no padding on the top/left, the last window within the bottom/right edge),
 * dilation 1 along x, the assembly for all channel pairs: the pixel-pair loop with nothing else to decide,
 * the windows' top-left corners walked along the input (sx bytes per output column, sy per output row). */
__attribute__((noinline)) static void conv_inside(const window_t *win, const pair_block_t *first, const int16_t *w,
                                                  const int8_t *input, int sx, int sy, int out_w, int pixels,
                                                  int8_t *output, int out_c, int words) {
  const int8_t *row = input, *a = input;
  int ox = 0;
  uint32_t *col = (uint32_t *)(void *)first->col;
  for (int p = 0; p < pixels; p += 2, output += 2 * out_c) {
    const int8_t *b = a; /* an odd last pixel is computed twice, stored once */
    if (p + 1 < pixels) {
      if (++ox < out_w) b = a + sx;
      else ox = 0, row += sy, b = row;
    }
    if (words) {
      columns_words(win, a, b, col);
    } else {
      column_of_bytes(win, a, col);
      column_of_bytes(win, b, col + 2); /* the second pixel's 4 int16 of each quad */
    }
    pair_block_t block = *first;
    block.o0 = output, block.o1 = p + 1 < pixels ? output + out_c : output;
    conv_pairs_unrolled(&block, w);
    if (++ox < out_w) a = b + sx;
    else ox = 0, row += sy, a = row;
  }
}

/* The shared core: in_c input channels, filter f_h x f_w, out_c output channels, packed int16 weights. */
void opt_conv_packed(const interp_t *it, const op_t *op, int in_c, int f_h, int f_w) {
  const tensor_t *in = op_in(it, op, 0), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *input = (const int8_t *)in->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  int8_t *output = (int8_t *)out->data;
  const int in_h = DIM(in, 1), in_w = DIM(in, 2), out_w = DIM(out, 2), out_c = DIM(out, 3);
  const int k_quads = quads_of(f_h * f_w * in_c), pixels = DIM(out, 1) * out_w;
  const int32_t input_offset = -in->zero_point, zp = out->zero_point;
  int16_t *col = (int16_t *)(void *)op->scratch;
  channel_t *ch = (channel_t *)(void *)(op->scratch + column_bytes(f_h * f_w * in_c));
  int8_t *stage = (int8_t *)(ch + out_c); /* im2col's raw bytes when in_c is not a multiple of 4 */
  /* zp_after: the zero point when it could not be folded into the constants (a nearly dead channel) */
  const int32_t zp_after = fill_channels(ch, op, bias, out_c, zp) ? 0 : zp;
#ifdef FAULT_CONV_BIAS
  if (op->code == OP_CONV_2D) /* test builds only (kernels/faults.h); depthwise shares this core */
    ch[0].bias = wrap_add32(ch[0].bias, fault_conv_bias(op));
#endif
  const int32_t lo = op->act_min, hi = op->act_max;
  const int taps = f_h * f_w * in_c;
  const window_t win = {f_h, op->dilation_h * in_w * in_c, f_w * in_c,
                        ((uint32_t)input_offset & 0xffff) * 0x10001u, stage,
                        (uint32_t)(uint8_t)-input_offset << 24};
  /* a window is inside when 0 <= y0 < y_end and 0 <= x0 <= x_last (unsigned compares) */
  const uint32_t y_end = (uint32_t)(in_h - op->dilation_h * (f_h - 1)), x_last = (uint32_t)(in_w - f_w);
  const int fast = op->dilation_w == 1 && in_h - op->dilation_h * (f_h - 1) > 0 && in_w - f_w >= 0;
  memset(col, 0, column_bytes(taps)); /* the padded quads stay 0: the fast fills never write them */
  if (in_c & 3) memset(stage + taps, (int8_t)-input_offset, (size_t)(k_quads * 4 - taps)); /* (x - zp) = 0 */
  const int out_h = DIM(out, 1);
  if (zp_after == 0 && out_c >= 2 && !(out_c & 1) && k_quads <= KWS_UNROLLED_QUADS && fast && !op->pad_h &&
      !op->pad_w && (out_h - 1) * op->stride_h < (int)y_end && (uint32_t)((out_w - 1) * op->stride_w) <= x_last) {
    const pair_block_t first = {col, k_quads / 2, ch, NULL, NULL, lo, out_c / 2, k_quads, hi,
                                lo != -128 ? 2 : hi != 127};
    for (int batch = 0; batch < DIM(in, 0); ++batch, input += in_h * in_w * in_c, output += pixels * out_c)
      conv_inside(&win, &first, (const int16_t *)op->packed_weights, input, op->stride_w * in_c,
                  op->stride_h * in_w * in_c, out_w, pixels, output, out_c, (in_c & 3) == 0);
    return;
  }
  for (int batch = 0; batch < DIM(in, 0); ++batch, input += in_h * in_w * in_c, output += pixels * out_c) {
    int oy = 0, ox = 0; /* of pixel p, advanced without divisions */
    for (int p = 0; p < pixels; p += 2) {
      const int p1 = p + 1 < pixels ? p + 1 : p; /* an odd last pixel is computed twice, stored once */
      const int oy1 = p1 == p || ox + 1 < out_w ? oy : oy + 1, ox1 = p1 == p ? ox : ox + 1 < out_w ? ox + 1 : 0;
      const int y0 = oy * op->stride_h - op->pad_h, x0 = ox * op->stride_w - op->pad_w;
      const int y1 = oy1 * op->stride_h - op->pad_h, x1 = ox1 * op->stride_w - op->pad_w;
      const int in0 = fast && (uint32_t)y0 < y_end && (uint32_t)x0 <= x_last;
      const int in1 = fast && (uint32_t)y1 < y_end && (uint32_t)x1 <= x_last;
      const int8_t *a = in0 ? input + (y0 * in_w + x0) * in_c : input, *b = in1 ? input + (y1 * in_w + x1) * in_c : input;
      if (in0 && in1 && (in_c & 3) == 0) {
        columns_words(&win, a, b, (uint32_t *)(void *)col);
      } else {
        if (in0 && (in_c & 3)) column_of_bytes(&win, a, (uint32_t *)(void *)col);
        else im2col(input, in_h, in_w, in_c, f_h, f_w, op, input_offset, oy, ox, col, 0, k_quads, stage);
        if (in1 && (in_c & 3)) column_of_bytes(&win, b, (uint32_t *)(void *)(col + 4));
        else im2col(input, in_h, in_w, in_c, f_h, f_w, op, input_offset, oy1, ox1, col, 1, k_quads, stage);
      }
      if (ox1 + 1 < out_w) oy = oy1, ox = ox1 + 1;
      else oy = oy1 + 1, ox = 0;
      const int16_t *w = (const int16_t *)op->packed_weights;
      int8_t *o0 = output + p * out_c, *o1 = output + p1 * out_c;
      const int pairs = out_c / 2;
#if KWS_ASM
      if (zp_after == 0 && pairs > 0 && k_quads <= KWS_UNROLLED_QUADS) { /* all pairs in assembly */
        const int32_t clamp = lo != -128 ? 2 : hi != 127;
        pair_block_t block = {col, k_quads / 2, ch, o0, o1, lo, pairs, k_quads, hi, clamp};
        conv_pairs_unrolled(&block, w);
        w += pairs * k_quads * 8;
      } else
#endif
      for (int k = 0; k < pairs; ++k, w += k_quads * 8) {
        const channel_t *c = ch + 2 * k;
        int32_t s[4] = {c[0].bias, c[1].bias, c[0].bias, c[1].bias};
        dot_2x2(col, w, k_quads, s);
        o1[2 * k] = output_of(s[2], c, zp_after, lo, hi); /* o1 first: for an odd last pixel o1 == o0 */
        o1[2 * k + 1] = output_of(s[3], c + 1, zp_after, lo, hi);
        o0[2 * k] = output_of(s[0], c, zp_after, lo, hi);
        o0[2 * k + 1] = output_of(s[1], c + 1, zp_after, lo, hi);
      }
      if (out_c & 1) { /* an odd last channel: its weights are paired with zeros */
        const channel_t *c = ch + out_c - 1;
        int32_t s[4] = {c->bias, 0, c->bias, 0};
        dot_2x2(col, w, k_quads, s);
        o1[out_c - 1] = output_of(s[2], c, zp_after, lo, hi);
        o0[out_c - 1] = output_of(s[0], c, zp_after, lo, hi);
      }
    }
  }
}

uint32_t opt_conv_packed_bytes(int out_c, int taps) { return (uint32_t)((out_c + 1) / 2 * quads_of(taps)) * 16u; }
uint32_t opt_conv_scratch_bytes(int out_c, int taps, int in_c) {
  const uint32_t stage = (in_c & 3) ? (uint32_t)quads_of(taps) * 4u : 0u;
  return column_bytes(taps) + (uint32_t)sizeof(channel_t) * (uint32_t)out_c + stage;
}

int opt_prepare_conv(interp_t *it, op_t *op) {
  int s = prepare_conv(it, op);
  if (s != KWS_OK) return s; /* the filter may be absent: read its shape only after Prepare accepted it */
  const tensor_t *f = op_in(it, op, 1);
  /* build-time weights must match the model's shapes exactly: a mismatch is a build error, not a crash */
  const uint32_t channel_pairs = (uint32_t)(DIM(f, 0) + 1) / 2;
  if (op->packed_weights &&
      op->packed_bytes != channel_pairs * (uint32_t)quads_of(DIM(f, 1) * DIM(f, 2) * DIM(f, 3)) * 16u)
    return KWS_ERR_BAD_MODEL;
  /* scratch: the column buffer, then the requantisation constants of each output channel */
  if (op->packed_weights && all_right_shifts(op, DIM(f, 0), 1))
    op->scratch_bytes = opt_conv_scratch_bytes(DIM(f, 0), DIM(f, 1) * DIM(f, 2) * DIM(f, 3), DIM(f, 3));
  return s;
}

void opt_conv(const interp_t *it, const op_t *op) {
  const tensor_t *f = op_in(it, op, 1);
  if (!op->scratch_bytes) { ref_conv(it, op); return; } /* no build-time weights: the reference loops */
  opt_conv_packed(it, op, DIM(f, 3), DIM(f, 1), DIM(f, 2));
}
