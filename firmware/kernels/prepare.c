/* Prepare: what TFLM's kernels compute once before the first Invoke. Shared by both kernel sets, so the
 * two sets differ only in how they loop, never in the numbers they produce. */
#include <math.h>
#include <string.h>

#include "kernels.h"

/* Multiply-accumulates of a layer (saturated: only a report, never used for indexing). */
static uint32_t macs(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) {
  uint64_t m = a * b * c;
  m = m > 0xffffffffu ? 0xffffffffu : m * d;
  m = m > 0xffffffffu ? 0xffffffffu : m * e;
  return m > 0xffffffffu ? 0xffffffffu : (uint32_t)m;
}

static int is_act(const tensor_t *t) { return t && t->type == TFL_INT8 && !t->is_const; }
static int scale_ok(float s) { return s > 0.0f && isfinite(s); }

/* CalculateActivationRangeQuantized: the fused ReLU/ReLU6 becomes a clamp on the int8 output. */
void activation_range(const tensor_t *out, int act, int32_t *lo, int32_t *hi) {
  int32_t q0 = out->zero_point + (int32_t)roundf(0.0f / out->scale);
  *lo = -128;
  *hi = 127;
  if (act == ACT_RELU || act == ACT_RELU6) *lo = q0 > -128 ? q0 : -128;
  if (act == ACT_RELU6) {
    int32_t q6 = out->zero_point + (int32_t)roundf(6.0f / out->scale);
    *hi = q6 < 127 ? q6 : 127;
  }
  if (act == ACT_RELU_N1_TO_1) {
    int32_t qm1 = out->zero_point + (int32_t)roundf(-1.0f / out->scale);
    int32_t qp1 = out->zero_point + (int32_t)roundf(1.0f / out->scale);
    *lo = qm1 > -128 ? qm1 : -128;
    *hi = qp1 < 127 ? qp1 : 127;
  }
}

/* ComputeOutSize / ComputePaddingWithOffset: SAME pads so that out = ceil(in / stride), extra at the end. */
static int out_size(int padding, int in, int filter, int stride, int dilation) {
  int eff = (filter - 1) * dilation + 1;
  return padding == PAD_SAME ? (in + stride - 1) / stride : (in + stride - eff) / stride;
}
static int16_t pad_size(int in, int filter, int stride, int dilation, int out) {
  int eff = (filter - 1) * dilation + 1;
  int total = (out - 1) * stride + eff - in;
  return (int16_t)(total > 0 ? total / 2 : 0);
}

static int check_spatial(op_t *op, const tensor_t *in, const tensor_t *out, int fh, int fw) {
  if (in->ndim != 4 || out->ndim != 4 || DIM(in, 0) != DIM(out, 0)) return KWS_ERR_BAD_SHAPE;
  int oh = out_size(op->padding, DIM(in, 1), fh, op->stride_h, op->dilation_h);
  int ow = out_size(op->padding, DIM(in, 2), fw, op->stride_w, op->dilation_w);
  if (oh != DIM(out, 1) || ow != DIM(out, 2)) return KWS_ERR_BAD_SHAPE;
  op->pad_h = pad_size(DIM(in, 1), fh, op->stride_h, op->dilation_h, oh);
  op->pad_w = pad_size(DIM(in, 2), fw, op->stride_w, op->dilation_w, ow);
  return KWS_OK;
}

/* PopulateConvolutionQuantizationParams: one (multiplier, shift) per output channel from
 * input_scale * filter_scale[c] / output_scale, in double as TFLM does. */
static int per_channel(interp_t *it, op_t *op, const tensor_t *in, const tensor_t *filter, const tensor_t *out,
                       int channels, int qdim) {
  if (!scale_ok(in->scale) || !scale_ok(out->scale) || filter->zero_point != 0) return KWS_ERR_BAD_QUANT;
  if (filter->num_scales != 1 && (filter->num_scales != (uint32_t)channels || filter->quantized_dim != qdim))
    return KWS_ERR_BAD_QUANT;
  op->multipliers = interp_alloc_persistent(it, 4u * (size_t)channels);
  op->shifts = op->multipliers ? interp_alloc_persistent(it, (size_t)channels) : NULL;
  if (!op->shifts) return KWS_ERR_ARENA_TOO_SMALL;
  for (int c = 0; c < channels; ++c) {
    float fs;
    memcpy(&fs, it->model + filter->scales_pos + 4u * (filter->num_scales == 1 ? 0u : (uint32_t)c), 4);
    if (!scale_ok(fs)) return KWS_ERR_BAD_QUANT;
    double real = (double)in->scale * (double)fs / (double)out->scale;
    int shift;
    quantize_multiplier(real, &op->multipliers[c], &shift);
    if (shift > 31 || shift < -31) return KWS_ERR_BAD_QUANT;
    op->shifts[c] = (int8_t)shift;
  }
  activation_range(out, op->activation, &op->act_min, &op->act_max);
  return KWS_OK;
}

static int check_bias(const tensor_t *bias, int channels) {
  if (!bias) return KWS_OK;
  if (bias->type != TFL_INT32 || !bias->is_const || bias->bytes != 4u * (uint32_t)channels) return KWS_ERR_BAD_SHAPE;
  return KWS_OK;
}

int prepare_conv(interp_t *it, op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  if (op->num_inputs < 2 || !is_act(in) || !is_act(out) || !f || f->type != TFL_INT8 || !f->is_const)
    return KWS_ERR_BAD_MODEL;
  if (f->ndim != 4 || DIM(f, 3) != DIM(in, 3) || DIM(f, 0) != DIM(out, 3)) return KWS_ERR_BAD_SHAPE;
  if ((int64_t)DIM(f, 1) * DIM(f, 2) * DIM(f, 3) > KWS_MAX_DOT) return KWS_ERR_BAD_SHAPE;
  int s = check_spatial(op, in, out, DIM(f, 1), DIM(f, 2));
  if (s == KWS_OK) s = check_bias(b, DIM(f, 0));
  if (s == KWS_OK) s = per_channel(it, op, in, f, out, DIM(f, 0), 0);
  op->macs = macs(DIM(out, 1), DIM(out, 2), DIM(out, 3), DIM(f, 1) * DIM(f, 2), DIM(f, 3));
  return s;
}

int prepare_depthwise(interp_t *it, op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  if (op->num_inputs < 2 || !is_act(in) || !is_act(out) || !f || f->type != TFL_INT8 || !f->is_const)
    return KWS_ERR_BAD_MODEL;
  if (f->ndim != 4 || DIM(f, 0) != 1 || DIM(f, 3) != DIM(out, 3) || in->ndim != 4) return KWS_ERR_BAD_SHAPE;
  if (DIM(out, 3) % DIM(in, 3) || (int64_t)DIM(f, 1) * DIM(f, 2) > KWS_MAX_DOT) return KWS_ERR_BAD_SHAPE;
  op->depth_multiplier = (int16_t)(DIM(out, 3) / DIM(in, 3)); /* from the shapes, as TFLM checks it */
  int s = check_spatial(op, in, out, DIM(f, 1), DIM(f, 2));
  if (s == KWS_OK) s = check_bias(b, DIM(f, 3));
  if (s == KWS_OK) s = per_channel(it, op, in, f, out, DIM(f, 3), 3);
  op->macs = macs(DIM(out, 1), DIM(out, 2), DIM(out, 3), DIM(f, 1) * DIM(f, 2), 1);
  return s;
}

int prepare_fully_connected(interp_t *it, op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *f = op_in(it, op, 1), *b = op_in(it, op, 2), *out = op_out(it, op);
  if (op->num_inputs < 2 || !is_act(in) || !is_act(out) || !f || f->type != TFL_INT8 || !f->is_const)
    return KWS_ERR_BAD_MODEL;
  if (f->ndim != 2 || out->ndim < 1 || in->bytes % (uint32_t)DIM(f, 1) || DIM(f, 1) > KWS_MAX_DOT) return KWS_ERR_BAD_SHAPE;
  uint32_t batches = in->bytes / (uint32_t)DIM(f, 1);
  if (out->bytes != batches * (uint32_t)DIM(f, 0) || out->dims[out->ndim - 1] != DIM(f, 0)) return KWS_ERR_BAD_SHAPE;
  int s = check_bias(b, DIM(f, 0));
  if (s != KWS_OK) return s;
  op->macs = macs(batches, DIM(f, 0), DIM(f, 1), 1, 1);
  if (f->num_scales > 1) return per_channel(it, op, in, f, out, DIM(f, 0), 0);
  /* Per-tensor weights: GetQuantizedConvolutionMultipler multiplies the two scales in float first. */
  if (!scale_ok(in->scale) || !scale_ok(out->scale) || !scale_ok(f->scale) || f->zero_point) return KWS_ERR_BAD_QUANT;
  op->multipliers = interp_alloc_persistent(it, 4);
  op->shifts = op->multipliers ? interp_alloc_persistent(it, 1) : NULL;
  if (!op->shifts) return KWS_ERR_ARENA_TOO_SMALL;
  double real = (double)(in->scale * f->scale) / (double)out->scale;
  int shift;
  quantize_multiplier(real, &op->multipliers[0], &shift);
  if (shift > 31 || shift < -31) return KWS_ERR_BAD_QUANT;
  op->shifts[0] = (int8_t)shift;
  activation_range(out, op->activation, &op->act_min, &op->act_max);
  return KWS_OK;
}

int prepare_pool(interp_t *it, op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  if (!is_act(in) || !is_act(out)) return KWS_ERR_BAD_MODEL;
  if (in->ndim != 4 || out->ndim != 4 || DIM(in, 3) != DIM(out, 3)) return KWS_ERR_BAD_SHAPE;
  /* TFLM requires the same quantisation on both sides of a pool. */
  if (in->scale != out->scale || in->zero_point != out->zero_point || !scale_ok(out->scale)) return KWS_ERR_BAD_QUANT;
  int s = check_spatial(op, in, out, op->filter_h, op->filter_w);
  activation_range(out, op->activation, &op->act_min, &op->act_max);
  return s;
}

int prepare_softmax(interp_t *it, op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  if (!is_act(in) || !is_act(out)) return KWS_ERR_BAD_MODEL;
  if (in->bytes != out->bytes || in->ndim < 1) return KWS_ERR_BAD_SHAPE;
  /* int8 softmax output is fixed by the spec: scale 1/256, zero point -128. */
  if (out->zero_point != -128 || out->scale != 1.0f / 256 || !scale_ok(in->scale)) return KWS_ERR_BAD_QUANT;
  if (!scale_ok(op->beta)) return KWS_ERR_BAD_QUANT; /* a NaN, infinite or non-positive beta (fuzz-found) */
  int32_t m, dmin;
  int ls;
  softmax_params((double)op->beta, (double)in->scale, &m, &ls, &dmin);
  if (ls < 1 || ls > 31) return KWS_ERR_BAD_QUANT; /* TFLM requires beta * scale * 2^26 > 1 (ls >= 1) */
  op->softmax_multiplier = m;
  op->softmax_left_shift = (int16_t)ls;
  op->softmax_diff_min = dmin;
  (void)it;
  return KWS_OK;
}

int prepare_reshape(interp_t *it, op_t *op) {
  const tensor_t *in = op_in(it, op, 0), *out = op_out(it, op);
  if (!is_act(in) || !is_act(out)) return KWS_ERR_BAD_MODEL;
  if (in->bytes != out->bytes) return KWS_ERR_BAD_SHAPE;
  (void)it;
  return KWS_OK;
}
