#include "flatbuffer.h"

#include "errors.h"

/* A table starts with a signed offset back to its vtable: [vtable size][table size][field offsets...]. */
static int check_table(const fb_t *fb, uint32_t pos, fb_table_t *t) {
  if ((pos & 3u) || !fb_fits(fb, pos, 4)) return KWS_ERR_OUT_OF_BOUNDS;
  int32_t soff;
  memcpy(&soff, fb->buf + pos, 4);
  int64_t vt = (int64_t)pos - soff;
  if (vt < 0 || (vt & 1) || !fb_fits(fb, (uint64_t)vt, 4)) return KWS_ERR_OUT_OF_BOUNDS;
  t->pos = pos;
  t->vt = (uint32_t)vt;
  t->vt_size = fb_u16(fb, t->vt);
  t->tbl_size = fb_u16(fb, t->vt + 2);
  if (t->vt_size < 4 || (t->vt_size & 1) || !fb_fits(fb, t->vt, t->vt_size)) return KWS_ERR_OUT_OF_BOUNDS;
  if (t->tbl_size < 4 || !fb_fits(fb, pos, t->tbl_size)) return KWS_ERR_OUT_OF_BOUNDS;
  return KWS_OK;
}

int fb_root(const fb_t *fb, fb_table_t *root) {
  if (!fb_fits(fb, 0, 8)) return KWS_ERR_OUT_OF_BOUNDS;
  return check_table(fb, fb_u32(fb, 0), root);
}

int fb_field(const fb_t *fb, const fb_table_t *t, int id, uint32_t width, uint32_t *pos) {
  uint32_t slot = 4u + 2u * (uint32_t)id;
  if (slot + 2u > t->vt_size) return 0;
  uint16_t off = fb_u16(fb, t->vt + slot);
  if (off == 0) return 0;
  if ((uint32_t)off + width > t->tbl_size) return -KWS_ERR_OUT_OF_BOUNDS;
  *pos = t->pos + off;
  return 1;
}

int fb_int(const fb_t *fb, const fb_table_t *t, int id, uint32_t width, int is_signed, int64_t dflt,
           int64_t *out) {
  uint32_t p;
  int r = fb_field(fb, t, id, width, &p);
  if (r < 0) return -r;
  if (r == 0) { *out = dflt; return KWS_OK; }
  uint32_t u = 0;
  memcpy(&u, fb->buf + p, width); /* little-endian host and target */
  if (is_signed && width < 4 && (u >> (8 * width - 1)) & 1u) u |= ~0u << (8 * width);
  *out = is_signed ? (int64_t)(int32_t)u : (int64_t)u;
  return KWS_OK;
}

int fb_float(const fb_t *fb, const fb_table_t *t, int id, float dflt, float *out) {
  uint32_t p;
  int r = fb_field(fb, t, id, 4, &p);
  if (r < 0) return -r;
  if (r == 0) { *out = dflt; return KWS_OK; }
  memcpy(out, fb->buf + p, 4);
  return KWS_OK;
}

/* An offset field holds a uoffset relative to its own position. */
static int follow(const fb_t *fb, const fb_table_t *t, int id, uint32_t *target) {
  uint32_t p;
  int r = fb_field(fb, t, id, 4, &p);
  if (r <= 0) return r;
  uint64_t tgt = (uint64_t)p + fb_u32(fb, p);
  if (tgt >= fb->size) return -KWS_ERR_OUT_OF_BOUNDS;
  *target = (uint32_t)tgt;
  return 1;
}

int fb_table(const fb_t *fb, const fb_table_t *t, int id, fb_table_t *out, int *present) {
  uint32_t tgt;
  int r = follow(fb, t, id, &tgt);
  if (present) *present = r > 0;
  if (r < 0) return -r;
  if (r == 0) return present ? KWS_OK : KWS_ERR_BAD_MODEL;
  return check_table(fb, tgt, out);
}

int fb_vector(const fb_t *fb, const fb_table_t *t, int id, uint32_t elem_size, fb_vec_t *out) {
  uint32_t tgt;
  int r = follow(fb, t, id, &tgt);
  out->pos = 0;
  out->len = 0;
  if (r < 0) return -r;
  if (r == 0) return KWS_OK;
  if (!fb_fits(fb, tgt, 4)) return KWS_ERR_OUT_OF_BOUNDS;
  uint32_t len = fb_u32(fb, tgt);
  if (!fb_fits(fb, (uint64_t)tgt + 4, (uint64_t)len * elem_size)) return KWS_ERR_OUT_OF_BOUNDS;
  out->pos = tgt + 4;
  out->len = len;
  return KWS_OK;
}

int fb_vec_table(const fb_t *fb, const fb_vec_t *v, uint32_t i, fb_table_t *out) {
  if (i >= v->len) return KWS_ERR_OUT_OF_BOUNDS;
  uint32_t p = v->pos + 4 * i;
  uint64_t tgt = (uint64_t)p + fb_u32(fb, p);
  if (tgt >= fb->size) return KWS_ERR_OUT_OF_BOUNDS;
  return check_table(fb, (uint32_t)tgt, out);
}
