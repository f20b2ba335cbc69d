/* FULLY_CONNECTED with SMLAD. The weights stay int8 in flash (a 2304x256 layer would not fit the flash
 * as int16), so each weight word is widened in registers: SXTB16 gives taps (0,2), SXTB16 ROR 8 gives
 * (1,3). The input vector is widened once per call into the scratch buffer, with the offset added, in
 * that same (0,2)(1,3) order. Four output rows share every input load. */
#include "../kernels.h"
#include "simd.h"

/* One quad of inputs against 4 weight rows (the body of dot_4rows' loop). */
#define DOT_4ROWS_QUAD \
  "ldrd %[x0], %[x1], [%[x]], #8\n\t" \
  "ldr %[t], [%[w], %[st]]\n\t" /* row 1 */ \
  "sxtb16 %[u], %[t]\n\t" \
  "sxtb16 %[t], %[t], ror #8\n\t" \
  "smlad %[s1], %[u], %[x0], %[s1]\n\t" \
  "smlad %[s1], %[t], %[x1], %[s1]\n\t" \
  "ldr %[t], [%[w]], #4\n\t" /* row 0 */ \
  "sxtb16 %[u], %[t]\n\t" \
  "sxtb16 %[t], %[t], ror #8\n\t" \
  "smlad %[s0], %[u], %[x0], %[s0]\n\t" \
  "smlad %[s0], %[t], %[x1], %[s0]\n\t" \
  "ldr %[t], [%[w2], %[st]]\n\t" /* row 3 */ \
  "sxtb16 %[u], %[t]\n\t" \
  "sxtb16 %[t], %[t], ror #8\n\t" \
  "smlad %[s3], %[u], %[x0], %[s3]\n\t" \
  "smlad %[s3], %[t], %[x1], %[s3]\n\t" \
  "ldr %[t], [%[w2]], #4\n\t" /* row 2 */ \
  "sxtb16 %[u], %[t]\n\t" \
  "sxtb16 %[t], %[t], ror #8\n\t" \
  "smlad %[s2], %[u], %[x0], %[s2]\n\t" \
  "smlad %[s2], %[t], %[x1], %[s2]\n\t"

/* s[r] += row r . x over `quads` quads (an even number); rows 0..3 start at w, w + stride, w + 2 stride,
 * w + 3 stride. Per quad: 4 weight words, 8 SXTB16, 8 SMLAD, 1 LDRD of input: 16 MACs in 21 instructions,
 * plus 2 for the loop every two quads. */
__attribute__((noinline)) static void dot_4rows(const int8_t *w, int32_t stride, const int16_t *x, int quads, int32_t *s) {
#if KWS_ASM
  const int8_t *w2 = w + 2 * stride;
  int32_t s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
  quads /= 2;
  uint32_t x0, x1, t, u;
  __asm volatile(
      "1:\n\t"
      DOT_4ROWS_QUAD
      DOT_4ROWS_QUAD /* twice: the loop runs over pairs of quads */
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      : [w] "+r"(w), [w2] "+r"(w2), [x] "+r"(x), [n] "+r"(quads), [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2),
        [s3] "+r"(s3), [x0] "=&r"(x0), [x1] "=&r"(x1), [t] "=&r"(t), [u] "=&r"(u)
      : [st] "r"(stride)
      : "cc", "memory");
  s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
#else
  for (int q = 0; q < quads; ++q, x += 4) {
    uint32_t x0 = load32(x), x1 = load32(x + 2);
    for (int r = 0; r < 4; ++r) {
      uint32_t word = load32(w + r * stride + 4 * q);
      s[r] = smlad(sxtb16(word), x0, s[r]);
      s[r] = smlad(sxtb16_ror8(word), x1, s[r]);
    }
  }
#endif
}

static inline int32_t dot_1row(const int8_t *w, const int16_t *x, int quads, int32_t s) {
  for (int q = 0; q < quads; ++q, x += 4, w += 4) {
    uint32_t word = load32(w);
    s = smlad(sxtb16(word), load32(x), s);
    s = smlad(sxtb16_ror8(word), load32(x + 2), s);
  }
  return s;
}

int opt_prepare_fully_connected(interp_t *it, op_t *op) {
  int s = prepare_fully_connected(it, op);
  if (s != KWS_OK) return s; /* the filter may be absent: read its shape only after Prepare accepted it */
  const tensor_t *f = op_in(it, op, 1);
  /* the fast path reads whole weight words, two at a time: rows a multiple of 8 long, weights 4-byte aligned */
  if ((DIM(f, 1) & 7) == 0 && ((uintptr_t)f->data & 3u) == 0 &&
      all_right_shifts(op, f->num_scales > 1 ? DIM(f, 0) : 1, 1))
    op->scratch_bytes = 2u * (uint32_t)DIM(f, 1);
  return s;
}

/* One output of channel q (once per output row: its cost does not matter next to the row's dot product). */
static int8_t output(const op_t *op, int q, int32_t acc, int32_t zp) {
  return (int8_t)clamp_i32(requant_r(acc, op->multipliers[q], -op->shifts[q], zp), op->act_min, op->act_max);
}

void opt_fully_connected(const interp_t *it, const op_t *op) {
  if (!op->scratch_bytes) { ref_fully_connected(it, op); return; }
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  const int8_t *filter = (const int8_t *)f->data;
  const int32_t *bias = b ? (const int32_t *)(const void *)b->data : NULL;
  const int depth = DIM(f, 1), units = DIM(f, 0), batches = (int)(in->bytes / (uint32_t)depth), quads = depth / 4;
  const int per_channel = f->num_scales > 1;
  const int32_t zp = out->zero_point;
  const uint32_t offset2 = ((uint32_t)(-in->zero_point) & 0xffff) * 0x10001u;
  int16_t *x = (int16_t *)(void *)op->scratch;
  for (int batch = 0; batch < batches; ++batch) {
    const int8_t *src = (const int8_t *)in->data + batch * depth;
    for (int q = 0; q < quads; ++q) { /* widen the input once: (x0,x2)(x1,x3) with the offset added */
      uint32_t word = load32(src + 4 * q);
      uint32_t lo = sxtab16(offset2, word), hi = sxtab16_ror8(offset2, word);
      memcpy(x + 4 * q, &lo, 4);
      memcpy(x + 4 * q + 2, &hi, 4);
    }
    int8_t *o = (int8_t *)out->data + batch * units;
    int u = 0;
    for (; u + 4 <= units; u += 4) {
      int32_t s[4];
      for (int r = 0; r < 4; ++r) s[r] = bias ? bias[u + r] : 0;
      dot_4rows(filter + u * depth, depth, x, quads, s);
      for (int r = 0; r < 4; ++r) o[u + r] = output(op, per_channel ? u + r : 0, s[r], zp);
    }
    for (; u < units; ++u) {
      o[u] = output(op, per_channel ? u : 0, dot_1row(filter + u * depth, x, quads, bias ? bias[u] : 0), zp);
    }
  }
}
