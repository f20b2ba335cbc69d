/* PAD and PADV2 (optimised Eval; Prepare is the reference one): when the innermost dimension is not padded,
 * each run along the second-innermost one is contiguous in both tensors, so the copy goes a row at a time,
 * four bytes per load and store (the M4 allows unaligned LDR/STR), after a word-wise fill. */
#include "../kernels.h"
#include "simd.h"

static void fill_bytes(int8_t *o, uint32_t n, int8_t v) {
  const uint32_t v4 = (uint8_t)v * 0x01010101u;
  for (; n >= 16; n -= 16, o += 16) store32(o, v4), store32(o + 4, v4), store32(o + 8, v4), store32(o + 12, v4);
  for (; n; --n) *o++ = v;
}

static void copy_bytes(int8_t *o, const int8_t *x, uint32_t n) {
  for (; n >= 8; n -= 8, o += 8, x += 8) store32(o, load32(x)), store32(o + 4, load32(x + 4));
  for (; n; --n) *o++ = *x++;
}

void opt_pad(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *pads = op_in(it, op, 1), *out = op_out(it, op);
  const tensor_t *value = op->num_inputs > 2 ? op_in(it, op, 2) : NULL;
  const int32_t *p = (const int32_t *)(const void *)pads->data;
  if (in->ndim < 2 || p[2 * (in->ndim - 1)] != 0 || p[2 * (in->ndim - 1) + 1] != 0) {
    ref_pad(it, op); /* the innermost dimension padded too: the reference's byte runs */
    return;
  }
  const int8_t fill = value ? (int8_t)value->data[0] : (int8_t)out->zero_point;
  /* as 4-D (leading ones); rows of id[2] * id[3] bytes land at od[3] == id[3] bytes per step */
  int id[4], od[4], before[4];
  for (int i = 0; i < 4; ++i) {
    const int d = i - (4 - in->ndim);
    id[i] = d >= 0 ? in->dims[d] : 1;
    od[i] = d >= 0 ? out->dims[d] : 1;
    before[i] = d >= 0 ? p[2 * d] : 0;
  }
  fill_bytes((int8_t *)out->data, out->bytes, fill);
  const int8_t *x = (const int8_t *)in->data;
  int8_t *o = (int8_t *)out->data;
  const uint32_t row = (uint32_t)id[2] * (uint32_t)id[3];
  for (int a = 0; a < id[0]; ++a)
    for (int b = 0; b < id[1]; ++b, x += row)
      copy_bytes(o + (((a + before[0]) * od[1] + b + before[1]) * od[2] + before[2]) * od[3], x, row);
}
