/* Host build of the same runtime, kernels and application, for tests and fuzzing.
 *   kws_host MODEL.tflite INPUTS.f32 reference|optimized [ARENA_BYTES] [PACKED.bin]
 * INPUTS.f32 holds N float32 feature maps back to back; output lines are the firmware's UART lines.
 * `optimized` needs PACKED.bin (tools/gen_model.py): without it the binary refuses (NO_PACKED_WEIGHTS) rather
 * than quietly running the reference loops. Exit status: the error's number (runtime/errors.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../app/app.h"

static void write_stdout(const char *s) { fputs(s, stdout); }
static uint32_t no_ticks(void) { return 0; }

static uint8_t *read_file(const char *path, long *size) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "error HOST_IO cannot open %s\n", path); exit(KWS_ERR_HOST_IO); }
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  /* exact-size heap copy: AddressSanitizer then catches any read past the end of the model */
  uint8_t *buf = malloc(*size ? (size_t)*size : 1);
  if (*size && fread(buf, 1, (size_t)*size, f) != (size_t)*size) { fprintf(stderr, "error HOST_IO short read %s\n", path); exit(KWS_ERR_HOST_IO); }
  fclose(f);
  return buf;
}

#include "packed_file.h"

static packed_weights_t packed[KWS_MAX_PACKED];

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL.tflite INPUTS.f32 reference|optimized [ARENA_BYTES] [PACKED.bin]\n", argv[0]);
    return KWS_ERR_HOST_IO;
  }
  const int optimized = strcmp(argv[3], "optimized") == 0;
  if (!optimized && strcmp(argv[3], "reference") != 0) {
    printf("error HOST_IO kernels '%s': expected reference or optimized\n", argv[3]);
    return KWS_ERR_HOST_IO;
  }
  if (optimized && argc < 6) {
    printf("error NO_PACKED_WEIGHTS the optimized kernels need PACKED.bin (tools/gen_model.py --model M --out DIR)\n");
    return KWS_ERR_NO_PACKED_WEIGHTS;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  long model_size, inputs_size;
  uint8_t *model = read_file(argv[1], &model_size);
  float *inputs = (float *)(void *)read_file(argv[2], &inputs_size);
  const op_resolver_t *resolver = optimized ? &kws_optimized_resolver : &kws_reference_resolver;
  size_t arena_size = argc > 4 ? (size_t)strtoul(argv[4], NULL, 10) : 100 * 1024;
  int num_packed = argc > 5 ? load_packed(argv[5], packed) : 0;
  uint8_t *arena = aligned_alloc(16, (arena_size + 15) & ~(size_t)15);
  app_config_t cfg = {
      .model = model, .model_size = (uint32_t)model_size, .inputs = inputs,
      .num_inputs = 0, .resolver = resolver, .packed = packed, .num_packed = num_packed,
      .arena = arena, .arena_size = arena_size, .write = write_stdout, .ticks = no_ticks,
  };
  /* the number of inputs follows from the input tensor size, known after init: count by bytes */
  static interp_t probe;
  if (interp_init(&probe, model, (uint32_t)model_size, resolver, NULL, 0, arena, arena_size) == KWS_OK) {
    uint32_t per = interp_input(&probe)->bytes * 4u;
    cfg.num_inputs = per ? (int)((uint64_t)inputs_size / per) : 0;
  }
  int status = app_run(&cfg);
  for (int i = 0; i < num_packed; ++i) free((void *)packed[i].data);
  free(arena);
  free(model);
  free(inputs);
  return status;
}
