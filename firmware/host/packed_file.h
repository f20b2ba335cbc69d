/* Host side: read build-time weights (PACKED.bin from tools/gen_model.py) into packed_weights_t entries.
 * File format: repeated {int32 tensor, uint32 bytes, data padded to 4 bytes}. */
#ifndef PACKED_FILE_H
#define PACKED_FILE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/interpreter.h"

#define KWS_MAX_PACKED 32

/* Returns the number of entries; each data block is a 16-byte aligned heap copy (free with free()). */
static inline int load_packed(const char *path, packed_weights_t *out) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "error HOST_IO cannot open %s\n", path); exit(KWS_ERR_HOST_IO); }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(size ? (size_t)size : 1);
  if (size && fread(buf, 1, (size_t)size, f) != (size_t)size) { fprintf(stderr, "error HOST_IO short read %s\n", path); exit(KWS_ERR_HOST_IO); }
  fclose(f);
  int n = 0;
  for (long pos = 0; pos + 8 <= size && n < KWS_MAX_PACKED; ++n) {
    int32_t tensor;
    uint32_t bytes;
    memcpy(&tensor, buf + pos, 4);
    memcpy(&bytes, buf + pos + 4, 4);
    if (bytes > (uint64_t)(size - pos - 8)) break;
    void *data = aligned_alloc(16, (bytes + 15) & ~15u);
    memcpy(data, buf + pos + 8, bytes);
    out[n].tensor = (int16_t)tensor;
    out[n].bytes = bytes;
    out[n].data = data;
    pos += 8 + ((bytes + 3) & ~3u);
  }
  free(buf);
  return n;
}

#endif
