/* TRANSPOSE of an int8 tensor of up to 4 dimensions by a constant permutation (converters emit it where
 * a PyTorch model's NCHW layout meets an op they did not move to NHWC, e.g. before a MEAN). */
#include "../kernels.h"

int prepare_transpose(interp_t *it, op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *perm = op_in(it, op, 1), *out = op_out(it, op);
  if (op->num_inputs != 2 || !in || !perm || in->type != TFL_INT8 || out->type != TFL_INT8) return KWS_ERR_BAD_MODEL;
  if (perm->type != TFL_INT32 || !perm->is_const || perm->bytes != 4u * in->ndim) return KWS_ERR_BAD_MODEL;
  if (out->ndim != in->ndim) return KWS_ERR_BAD_SHAPE;
  const int32_t *p = (const int32_t *)(const void *)perm->data;
  int seen = 0;
  for (int i = 0; i < in->ndim; ++i) {
    if (p[i] < 0 || p[i] >= in->ndim || (seen & (1 << p[i])) || out->dims[i] != in->dims[p[i]]) return KWS_ERR_BAD_SHAPE;
    seen |= 1 << p[i];
  }
  if (in->scale != out->scale || in->zero_point != out->zero_point) return KWS_ERR_BAD_QUANT; /* bytes are moved */
  (void)it;
  return KWS_OK;
}

void ref_transpose(const interp_t *it, const op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *perm = op_in(it, op, 1), *out = op_out(it, op);
  const int32_t *p = (const int32_t *)(const void *)perm->data;
  const int8_t *x = (const int8_t *)in->data;
  int8_t *o = (int8_t *)out->data;
  const int lead = 4 - in->ndim;
  int in_stride[4], d[4], s[4]; /* output dims, and the input stride each output dim walks */
  for (int i = in->ndim - 1, st = 1; i >= 0; --i) { in_stride[i] = st; st *= in->dims[i]; }
  for (int i = 0; i < 4; ++i) {
    d[i] = i < lead ? 1 : out->dims[i - lead];
    s[i] = i < lead ? 0 : in_stride[p[i - lead]];
  }
  for (int a = 0; a < d[0]; ++a)
    for (int b = 0; b < d[1]; ++b)
      for (int c = 0; c < d[2]; ++c)
        for (int e = 0; e < d[3]; ++e) *o++ = x[a * s[0] + b * s[1] + c * s[2] + e * s[3]];
}
