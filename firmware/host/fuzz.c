/* Fuzz the model reader and both kernel sets: truncated and corrupted copies of real .tflite files go through
 * interp_init() and, when accepted, interp_invoke(). Built with AddressSanitizer + UBSan (make host): any
 * out-of-bounds read, overflow or crash aborts the process, so a clean exit means zero crashes.
 *   kws_fuzz ITERATIONS SEED ARENA_BYTES CRASH.tflite MODEL.tflite[:PACKED.bin] ...
 * Iteration i mutates corpus model i % N and alternates the kernel sets: odd iterations run the optimised
 * kernels with the intact model's build-time weights (their Prepare must refuse weights that no longer match
 * a corrupted model's shapes). The arena is large enough for the corpus, so mutations reach Invoke. When a
 * sanitizer report ends the process, the failing model is written to CRASH.tflite (a regression case).
 * Prints how often each named status came back. Deterministic for a given seed; every seed differs. */
#define _POSIX_C_SOURCE 200809L /* open, write, close, raise under -std=c11 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/interpreter.h"
#include "packed_file.h"

#define MAX_CORPUS 16

static uint32_t rng_state;
static uint32_t rnd(void) { /* xorshift32 */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}
/* splitmix32 of the seed: distinct seeds give distinct, never-zero xorshift states */
static uint32_t seed_state(uint32_t seed) {
  uint32_t z = seed + 0x9e3779b9u;
  z = (z ^ (z >> 16)) * 0x85ebca6bu;
  z = (z ^ (z >> 13)) * 0xc2b2ae35u;
  z ^= z >> 16;
  return z ? z : 0x2545f491u;
}

/* Interesting values that break naive readers: offsets to the end, huge lengths, negatives. */
static const uint32_t specials[] = {0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000u, 0xffffffffu,
                                    0xfffffffcu, 16, 64, 1024};

static void mutate(uint8_t *buf, uint32_t *size, uint32_t full) {
  switch (rnd() % 5) {
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
    case 3: { /* a small integer where one was (tensor indices, dims, enums, options): -1, 0, 1, 2, ... */
      uint32_t pos = (rnd() % (*size / 4)) * 4, v = (uint32_t)((int32_t)(rnd() % 8) - 1);
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

static uint8_t *read_all(const char *path, uint32_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "error HOST_IO cannot open %s\n", path); exit(KWS_ERR_HOST_IO); }
  fseek(f, 0, SEEK_END);
  *size = (uint32_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(*size ? *size : 1);
  if (fread(buf, 1, *size, f) != *size) { fprintf(stderr, "error HOST_IO short read %s\n", path); exit(KWS_ERR_HOST_IO); }
  fclose(f);
  return buf;
}

/* The model under test, written out when a sanitizer report ends the process: both sanitizers are told to
 * abort() (the defaults below), and the SIGABRT handler writes the model with async-signal-safe calls. */
static const char *crash_path;
static const uint8_t *volatile current;
static volatile uint32_t current_size;
static void save_current(int sig) {
  if (current) {
    int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ssize_t written = write(fd, (const void *)current, current_size);
      (void)written;
      close(fd);
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}
const char *__asan_default_options(void) { return "abort_on_error=1"; }
const char *__ubsan_default_options(void) { return "abort_on_error=1:halt_on_error=1:print_stacktrace=1"; }

typedef struct {
  uint8_t *bytes;
  uint32_t size;
  packed_weights_t packed[KWS_MAX_PACKED];
  int num_packed;
} corpus_t;

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s ITERATIONS SEED ARENA_BYTES CRASH.tflite MODEL.tflite[:PACKED.bin] ...\n", argv[0]);
    return KWS_ERR_HOST_IO;
  }
  const long iterations = strtol(argv[1], NULL, 10);
  rng_state = seed_state((uint32_t)strtoul(argv[2], NULL, 10));
  const size_t arena_size = (strtoul(argv[3], NULL, 10) + 15) & ~(size_t)15;
  crash_path = argv[4];
  signal(SIGABRT, save_current);
  static corpus_t corpus[MAX_CORPUS];
  int n = 0;
  for (int a = 5; a < argc && n < MAX_CORPUS; ++a, ++n) {
    char *colon = strchr(argv[a], ':');
    if (colon) *colon = '\0';
    corpus[n].bytes = read_all(argv[a], &corpus[n].size);
    corpus[n].num_packed = colon ? load_packed(colon + 1, corpus[n].packed) : 0;
  }
  uint8_t *arena = aligned_alloc(16, arena_size);
  long counts[KWS_ERR_COUNT] = {0}, invoked = 0;
  static interp_t it;
  for (long i = 0; i < iterations; ++i) {
    const corpus_t *c = &corpus[i % n];
    uint32_t size = c->size;
    uint8_t *work = malloc(c->size);
    memcpy(work, c->bytes, c->size);
    mutate(work, &size, c->size);
    /* an exact-size copy, so ASan flags a read even one byte past the (possibly truncated) end */
    uint8_t *model = malloc(size ? size : 1);
    memcpy(model, work, size);
    free(work);
    current = model, current_size = size;
    const int optimized = (int)((i / n) & 1);
    int s = optimized ? interp_init(&it, model, size, &kws_optimized_resolver, c->packed, c->num_packed, arena,
                                    arena_size)
                      : interp_init(&it, model, size, &kws_reference_resolver, NULL, 0, arena, arena_size);
    if (s == KWS_OK) {
      memset(interp_input(&it)->data, (int)(i & 0xff), interp_input(&it)->bytes);
      s = interp_invoke(&it, NULL, NULL);
      ++invoked;
    }
    counts[s >= 0 && s < KWS_ERR_COUNT ? s : 0]++;
    current = NULL;
    free(model);
  }
  for (int s = 0; s < KWS_ERR_COUNT; ++s)
    if (counts[s]) printf("%s %ld\n", kws_status_name(s), counts[s]);
  printf("invoked %ld\n", invoked);
  for (int k = 0; k < n; ++k) {
    for (int j = 0; j < corpus[k].num_packed; ++j) free((void *)corpus[k].packed[j].data);
    free(corpus[k].bytes);
  }
  free(arena);
  return 0;
}
