/* Fuzz the model reader: truncated and corrupted copies of a real .tflite go through interp_init() and,
 * when accepted, interp_invoke(). Built with AddressSanitizer + UBSan (make host): any out-of-bounds read,
 * overflow or crash aborts the process, so a clean exit means zero crashes.
 *   kws_fuzz MODEL.tflite ITERATIONS SEED [PACKED.bin]
 * With PACKED.bin, the optimised kernels get the build-time weights too (their Prepare must refuse
 * weights that no longer match a corrupted model's shapes). Prints how often each named status came
 * back. Deterministic for a given seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/interpreter.h"
#include "packed_file.h"

static uint32_t rng_state;
static uint32_t rnd(void) { /* xorshift32 */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

/* Interesting values that break naive readers: offsets to the end, huge lengths, negatives. */
static const uint32_t specials[] = {0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000u, 0xffffffffu,
                                    0xfffffffcu, 16, 64, 1024};

static void mutate(uint8_t *buf, uint32_t *size, uint32_t full) {
  switch (rnd() % 4) {
    case 0: /* truncate anywhere */
      *size = rnd() % full;
      break;
    case 1: { /* flip a few random bytes */
      int n = 1 + (int)(rnd() % 8);
      for (int i = 0; i < n; ++i) buf[rnd() % *size] ^= (uint8_t)(1u + rnd() % 255);
      break;
    }
    case 2: { /* overwrite an aligned word with a special value */
      uint32_t v = specials[rnd() % (sizeof(specials) / sizeof(specials[0]))], pos = (rnd() % (*size / 4)) * 4;
      memcpy(buf + pos, &v, 4);
      break;
    }
    default: { /* corrupt the first 4 KB, where the tables and vtables of a .tflite mostly live */
      uint32_t limit = *size < 4096 ? *size : 4096;
      buf[rnd() % limit] = (uint8_t)rnd();
      uint32_t v = specials[rnd() % (sizeof(specials) / sizeof(specials[0]))], pos = (rnd() % (limit / 4)) * 4;
      memcpy(buf + pos, &v, 4);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL.tflite ITERATIONS SEED [PACKED.bin]\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) { fprintf(stderr, "cannot open %s\n", argv[1]); return 2; }
  fseek(f, 0, SEEK_END);
  uint32_t full = (uint32_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *original = malloc(full);
  if (fread(original, 1, full, f) != full) return 2;
  fclose(f);
  long iterations = strtol(argv[2], NULL, 10);
  rng_state = (uint32_t)strtoul(argv[3], NULL, 10) | 1u;
  static packed_weights_t packed[KWS_MAX_PACKED];
  const int num_packed = argc > 4 ? load_packed(argv[4], packed) : 0;
  const size_t arena_size = 64 * 1024;
  uint8_t *arena = aligned_alloc(16, arena_size);
  long counts[KWS_ERR_COUNT] = {0};
  static interp_t it;
  for (long i = 0; i < iterations; ++i) {
    uint32_t size = full;
    uint8_t *work = malloc(full);
    memcpy(work, original, full);
    mutate(work, &size, full);
    /* an exact-size copy, so ASan flags a read even one byte past the (possibly truncated) end */
    uint8_t *model = malloc(size ? size : 1);
    memcpy(model, work, size);
    free(work);
    const op_resolver_t *resolver = (i & 1) ? &kws_optimized_resolver : &kws_reference_resolver;
    int s = (i & 1) ? interp_init(&it, model, size, resolver, packed, num_packed, arena, arena_size)
                    : interp_init(&it, model, size, resolver, NULL, 0, arena, arena_size);
    if (s == KWS_OK) {
      memset(interp_input(&it)->data, (int)(i & 0xff), interp_input(&it)->bytes);
      s = interp_invoke(&it, NULL, NULL);
    }
    counts[s >= 0 && s < KWS_ERR_COUNT ? s : 0]++;
    free(model);
  }
  for (int s = 0; s < KWS_ERR_COUNT; ++s)
    if (counts[s]) printf("%s %ld\n", kws_status_name(s), counts[s]);
  for (int k = 0; k < num_packed; ++k) free((void *)packed[k].data);
  free(arena);
  free(original);
  return 0;
}
