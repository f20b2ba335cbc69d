/* RESHAPE: the same bytes under a new shape. When the planner gave the output its own (possibly
 * overlapping) buffer, copy sixteen bytes at a time (LDM/STM) instead of newlib-nano's byte loop, forwards
 * or, when the output starts inside the input, backwards: the same bytes either way. */
#include <string.h>

#include "../kernels.h"
#include "simd.h"

void opt_reshape(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  const uintptr_t s0 = (uintptr_t)in->data, d0 = (uintptr_t)out->data;
  if (s0 == d0) return;
  if ((s0 | d0) & 3u) { ref_reshape(it, op); return; }
  const uint32_t n = in->bytes, blocks = n / 16, tail = n % 16;
  const uint32_t *s = (const uint32_t *)(const void *)in->data;
  uint32_t *d = (uint32_t *)(void *)out->data;
  /* each block reads all four words before writing any, so a block never overwrites input still to come */
  if (d0 < s0 || d0 >= s0 + n) {
    const uint32_t *end = s + 4 * blocks;
#if KWS_ASM
    uint32_t a, b, c, e;
    if (blocks)
      __asm volatile("1:\n\t"
                     "ldmia %[s]!, {%[a], %[b], %[c], %[e]}\n\t"
                     "stmia %[d]!, {%[a], %[b], %[c], %[e]}\n\t"
                     "cmp %[s], %[end]\n\t"
                     "bne 1b\n\t"
                     : [s] "+r"(s), [d] "+r"(d), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [e] "=&r"(e)
                     : [end] "r"(end)
                     : "cc", "memory");
#else
    for (; s < end; s += 4, d += 4) {
      const uint32_t a = s[0], b = s[1], c = s[2], e = s[3];
      d[0] = a, d[1] = b, d[2] = c, d[3] = e;
    }
#endif
    memmove(d, s, tail);
    return;
  }
  memmove(d + 4 * blocks, s + 4 * blocks, tail); /* the rare overlap: backwards, the plain way */
  for (uint32_t i = blocks; i-- > 0;) {
    const uint32_t a = s[4 * i], b = s[4 * i + 1], c = s[4 * i + 2], e = s[4 * i + 3];
    d[4 * i] = a, d[4 * i + 1] = b, d[4 * i + 2] = c, d[4 * i + 3] = e;
  }
}
