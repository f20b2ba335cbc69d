/* A bounds-checked reader for the few FlatBuffer constructs a .tflite file uses: tables (through their
 * vtable), scalars, offsets to tables/vectors/strings. No flatbuffers library: every read is checked
 * against the buffer size first, so a corrupt file gives KWS_ERR_OUT_OF_BOUNDS instead of a wild read. */
#ifndef FLATBUFFER_H
#define FLATBUFFER_H
#include <stdint.h>
#include <string.h>

typedef struct {
  const uint8_t *buf;
  uint32_t size;
} fb_t;

/* A table: its position and its vtable (already checked to lie inside the buffer). */
typedef struct {
  uint32_t pos, vt;
  uint16_t vt_size, tbl_size;
} fb_table_t;

/* A vector: position of element 0 and element count (elements checked to lie inside the buffer). */
typedef struct {
  uint32_t pos, len;
} fb_vec_t;

static inline uint32_t fb_u32(const fb_t *fb, uint32_t p) { uint32_t v; memcpy(&v, fb->buf + p, 4); return v; }
static inline uint16_t fb_u16(const fb_t *fb, uint32_t p) { uint16_t v; memcpy(&v, fb->buf + p, 2); return v; }
static inline int fb_fits(const fb_t *fb, uint64_t pos, uint64_t n) { return pos <= fb->size && n <= fb->size - pos; }

int fb_root(const fb_t *fb, fb_table_t *root);
/* Field `id` of a table: returns 1 and its absolute position when present, 0 when absent, <0 on error. */
int fb_field(const fb_t *fb, const fb_table_t *t, int id, uint32_t width, uint32_t *pos);
/* Scalar fields with their schema defaults. Return a status (KWS_OK or an error). */
int fb_int(const fb_t *fb, const fb_table_t *t, int id, uint32_t width, int is_signed, int64_t dflt, int64_t *out);
int fb_float(const fb_t *fb, const fb_table_t *t, int id, float dflt, float *out);
/* Offset fields. `present` (may be NULL) tells whether the field was there; absent gives an empty result. */
int fb_table(const fb_t *fb, const fb_table_t *t, int id, fb_table_t *out, int *present);
int fb_vector(const fb_t *fb, const fb_table_t *t, int id, uint32_t elem_size, fb_vec_t *out);
int fb_vec_table(const fb_t *fb, const fb_vec_t *v, uint32_t i, fb_table_t *out);

#endif
