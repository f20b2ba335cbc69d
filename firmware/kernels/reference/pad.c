/* PAD and PADV2, int8: copy the input into the middle of the output and fill the border with the pad value,
 * the output zero point (a real 0.0) or PADV2's constant. Converters emit PAD in front of a VALID conv when
 * the source framework pads symmetrically (PyTorch's padding=1 with stride 2). */
#include <string.h>

#include "../kernels.h"

/* paddings: int32 [ndim][2] (before, after) per dimension; we take NHWC tensors of up to 4 dimensions. */
int prepare_pad(interp_t *it, op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *pads = op_in(it, op, 1), *out = op_out(it, op);
  const tensor_t *value = op->num_inputs > 2 ? op_in(it, op, 2) : NULL;
  if (op->num_inputs < 2 || !in || !pads || in->type != TFL_INT8 || out->type != TFL_INT8) return KWS_ERR_BAD_MODEL;
  if (pads->type != TFL_INT32 || !pads->is_const || pads->bytes != 8u * in->ndim) return KWS_ERR_BAD_MODEL;
  if (in->ndim != out->ndim || in->ndim < 1) return KWS_ERR_BAD_SHAPE;
  const int32_t *p = (const int32_t *)(const void *)pads->data;
  for (int d = 0; d < in->ndim; ++d)
    if (p[2 * d] < 0 || p[2 * d + 1] < 0 || (int64_t)in->dims[d] + p[2 * d] + p[2 * d + 1] != out->dims[d])
      return KWS_ERR_BAD_SHAPE;
  /* the bytes are copied unchanged, so both sides must mean the same numbers */
  if (in->scale != out->scale || in->zero_point != out->zero_point) return KWS_ERR_BAD_QUANT;
  if (value && (value->type != TFL_INT8 || value->bytes != 1 || !value->is_const ||
                value->zero_point != out->zero_point || value->scale != out->scale))
    return KWS_ERR_BAD_QUANT;
  (void)it;
  return KWS_OK;
}

void ref_pad(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *pads = op_in(it, op, 1), *out = op_out(it, op);
  const tensor_t *value = op->num_inputs > 2 ? op_in(it, op, 2) : NULL;
  const int32_t *p = (const int32_t *)(const void *)pads->data;
  const int8_t fill = value ? (int8_t)value->data[0] : (int8_t)out->zero_point;
  /* view both as 4-D (leading ones), then copy row by row along the innermost dimension */
  int id[4], od[4], before[4];
  for (int i = 0; i < 4; ++i) {
    int d = i - (4 - in->ndim);
    id[i] = d >= 0 ? in->dims[d] : 1;
    od[i] = d >= 0 ? out->dims[d] : 1;
    before[i] = d >= 0 ? p[2 * d] : 0;
  }
  memset(out->data, (uint8_t)fill, out->bytes);
  const int8_t *x = (const int8_t *)in->data;
  int8_t *o = (int8_t *)out->data;
  for (int a = 0; a < id[0]; ++a)
    for (int b = 0; b < id[1]; ++b)
      for (int c = 0; c < id[2]; ++c) {
        const int32_t dst = (((a + before[0]) * od[1] + b + before[1]) * od[2] + c + before[2]) * od[3] + before[3];
        memcpy(o + dst, x + ((a * id[1] + b) * id[2] + c) * id[3], (size_t)id[3]);
      }
}
