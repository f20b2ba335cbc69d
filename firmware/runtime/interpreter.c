#include "interpreter.h"

#include <string.h>

#include "flatbuffer.h"
#include "op_names.h"

/* Limits that keep planning cheap and every index small; a KWS model uses a few dozen of each. */
#define KWS_MAX_TENSORS 1024
#define KWS_MAX_OPS 512
#define KWS_BUFFER_ALIGN 16u /* TFLM aligns arena buffers to 16 bytes */

/* TFLite's builtin operator name, for error lines ("UNKNOWN" past the table: a newer schema or a corrupt code). */
const char *op_name(int code) { return code >= 0 && code < KWS_NUM_BUILTIN_OPS ? kws_builtin_names[code] : "UNKNOWN"; }

static size_t align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* Persistent records are taken from the back of the arena, like TFLM's tail allocations. */
static void *alloc_tail(interp_t *it, size_t bytes, size_t *tail) {
  size_t need = align_up(*tail + bytes, 8);
  if (need > it->arena_size) {
    it->arena_needed = need;
    return NULL;
  }
  *tail = need;
  return it->arena + it->arena_size - need;
}

#define TRY(x)                      \
  do {                              \
    int _s = (x);                   \
    if (_s != KWS_OK) return _s;    \
  } while (0)

/* Buffer.data (or Buffer.offset/size for large models) of buffer index `b`; len 0 means "no data". */
static int buffer_data(const fb_t *fb, const fb_vec_t *buffers, uint32_t b, const uint8_t **data, uint32_t *len) {
  *data = NULL;
  *len = 0;
  if (b >= buffers->len) return KWS_ERR_BAD_MODEL;
  fb_table_t buf;
  TRY(fb_vec_table(fb, buffers, b, &buf));
  fb_vec_t v;
  TRY(fb_vector(fb, &buf, 0, 1, &v));
  if (v.len) {
    *data = fb->buf + v.pos;
    *len = v.len;
    return KWS_OK;
  }
  int64_t off, size;
  TRY(fb_int(fb, &buf, 1, 4, 0, 0, &off)); /* low 32 bits of the uint64 offset */
  TRY(fb_int(fb, &buf, 2, 4, 0, 0, &size));
  if (off > 1) {
    if (!fb_fits(fb, (uint64_t)off, (uint64_t)size)) return KWS_ERR_OUT_OF_BOUNDS;
    *data = fb->buf + off;
    *len = (uint32_t)size;
  }
  return KWS_OK;
}

static int read_tensor(interp_t *it, const fb_t *fb, const fb_table_t *t, const fb_vec_t *buffers, tensor_t *out) {
  memset(out, 0, sizeof(*out));
  out->first_op = out->last_op = -1;
  fb_vec_t shape;
  TRY(fb_vector(fb, t, 0, 4, &shape));
  if (shape.len > KWS_MAX_DIMS) return KWS_ERR_BAD_SHAPE;
  out->ndim = (uint8_t)shape.len;
  uint64_t count = 1;
  for (uint32_t d = 0; d < shape.len; ++d) {
    int32_t dim = (int32_t)fb_u32(fb, shape.pos + 4 * d);
    if (dim <= 0 || dim > 65535) return KWS_ERR_BAD_SHAPE; /* also rejects dynamic (-1) dimensions */
    out->dims[d] = dim;
    count *= (uint64_t)dim;
  }
  int64_t type, buffer;
  TRY(fb_int(fb, t, 1, 1, 1, 0, &type));
  if (type != TFL_INT8 && type != TFL_INT32) return KWS_ERR_UNSUPPORTED_TYPE;
  out->type = (uint8_t)type;
  uint64_t bytes = count * (type == TFL_INT32 ? 4u : 1u);
  if (bytes > 0x7fffffffu) return KWS_ERR_BAD_SHAPE;
  out->bytes = (uint32_t)bytes;
  TRY(fb_int(fb, t, 2, 4, 0, 0, &buffer));
  const uint8_t *data;
  uint32_t len;
  TRY(buffer_data(fb, buffers, (uint32_t)buffer, &data, &len));
  if (len) {
    if (len != out->bytes) return KWS_ERR_BAD_MODEL;
    /* int32 constants are read as int32_t: they must be 4-byte aligned (the model array is 16-aligned). */
    if (type == TFL_INT32 && ((uintptr_t)data & 3u)) return KWS_ERR_MISALIGNED;
    out->data = (uint8_t *)data;
    out->is_const = 1;
  }
  fb_table_t q;
  int has_q;
  TRY(fb_table(fb, t, 4, &q, &has_q));
  if (has_q) {
    fb_vec_t scales, zps;
    int64_t qdim;
    TRY(fb_vector(fb, &q, 2, 4, &scales));
    TRY(fb_vector(fb, &q, 3, 8, &zps));
    TRY(fb_int(fb, &q, 6, 4, 1, 0, &qdim));
    if (scales.len) {
      memcpy(&out->scale, fb->buf + scales.pos, 4);
      out->scales_pos = scales.pos;
      out->num_scales = scales.len;
    }
    if (zps.len) {
      int64_t zp;
      memcpy(&zp, fb->buf + zps.pos, 8);
      if (zp < -128 || zp > 127) return KWS_ERR_BAD_QUANT;
      out->zero_point = (int32_t)zp;
    }
    if (qdim < 0 || qdim >= KWS_MAX_DIMS) return KWS_ERR_BAD_QUANT;
    out->quantized_dim = (uint8_t)qdim;
  }
  (void)it;
  return KWS_OK;
}

/* Builtin options of the operators we run (field numbers from schema.fbs). */
static int read_options(const fb_t *fb, const fb_table_t *opt, int has, op_t *op) {
  int64_t v[7] = {0};
  float beta = 1.0f;
  op->stride_w = op->stride_h = op->dilation_w = op->dilation_h = 1;
  if (!has) {
    if (op->code == OP_CONV_2D || op->code == OP_DEPTHWISE_CONV_2D || op->code == OP_AVERAGE_POOL_2D ||
        op->code == OP_MAX_POOL_2D)
      return KWS_ERR_BAD_MODEL; /* these cannot run without their options */
    op->beta = 1.0f;
    return KWS_OK;
  }
  switch (op->code) {
    case OP_CONV_2D: /* padding, stride_w, stride_h, activation, dilation_w, dilation_h */
      TRY(fb_int(fb, opt, 0, 1, 1, 0, &v[0]));
      TRY(fb_int(fb, opt, 1, 4, 1, 0, &v[1]));
      TRY(fb_int(fb, opt, 2, 4, 1, 0, &v[2]));
      TRY(fb_int(fb, opt, 3, 1, 1, 0, &v[3]));
      TRY(fb_int(fb, opt, 4, 4, 1, 1, &v[4]));
      TRY(fb_int(fb, opt, 5, 4, 1, 1, &v[5]));
      break;
    case OP_DEPTHWISE_CONV_2D: /* padding, stride_w, stride_h, depth_multiplier, activation, dilations */
      TRY(fb_int(fb, opt, 0, 1, 1, 0, &v[0]));
      TRY(fb_int(fb, opt, 1, 4, 1, 0, &v[1]));
      TRY(fb_int(fb, opt, 2, 4, 1, 0, &v[2]));
      TRY(fb_int(fb, opt, 3, 4, 1, 0, &v[6]));
      TRY(fb_int(fb, opt, 4, 1, 1, 0, &v[3]));
      TRY(fb_int(fb, opt, 5, 4, 1, 1, &v[4]));
      TRY(fb_int(fb, opt, 6, 4, 1, 1, &v[5]));
      break;
    case OP_AVERAGE_POOL_2D:
    case OP_MAX_POOL_2D: /* padding, stride_w, stride_h, filter_width, filter_height, activation */
      TRY(fb_int(fb, opt, 0, 1, 1, 0, &v[0]));
      TRY(fb_int(fb, opt, 1, 4, 1, 0, &v[1]));
      TRY(fb_int(fb, opt, 2, 4, 1, 0, &v[2]));
      TRY(fb_int(fb, opt, 3, 4, 1, 0, &v[4]));
      TRY(fb_int(fb, opt, 4, 4, 1, 0, &v[5]));
      TRY(fb_int(fb, opt, 5, 1, 1, 0, &v[3]));
      op->filter_w = (int16_t)(v[4] > 0 && v[4] < 4096 ? v[4] : 0);
      op->filter_h = (int16_t)(v[5] > 0 && v[5] < 4096 ? v[5] : 0);
      if (!op->filter_w || !op->filter_h) return KWS_ERR_BAD_MODEL;
      v[4] = v[5] = 1;
      break;
    case OP_FULLY_CONNECTED: /* activation, weights_format (0 = DEFAULT) */
      TRY(fb_int(fb, opt, 0, 1, 1, 0, &v[3]));
      TRY(fb_int(fb, opt, 1, 1, 1, 0, &v[0]));
      if (v[0] != 0) return KWS_ERR_BAD_MODEL;
      v[1] = v[2] = v[4] = v[5] = 1;
      break;
    case OP_ADD: /* AddOptions: fused_activation_function */
      TRY(fb_int(fb, opt, 0, 1, 1, 0, &v[3]));
      if (v[3] < 0 || v[3] > ACT_RELU6) return KWS_ERR_BAD_MODEL;
      op->activation = (uint8_t)v[3];
      op->beta = beta;
      return KWS_OK;
    case OP_SOFTMAX:
      TRY(fb_float(fb, opt, 0, 1.0f, &beta));
      /* fall through */
    default:
      op->beta = beta;
      return KWS_OK;
  }
  if (v[0] != PAD_SAME && v[0] != PAD_VALID) return KWS_ERR_BAD_MODEL;
  if (v[3] < 0 || v[3] > ACT_RELU6) return KWS_ERR_BAD_MODEL;
  for (int i = 1; i < 6; ++i)
    if (i != 3 && (v[i] < 1 || v[i] > 1024)) return KWS_ERR_BAD_MODEL;
  op->padding = (uint8_t)v[0];
  op->stride_w = (int16_t)v[1];
  op->stride_h = (int16_t)v[2];
  op->activation = (uint8_t)v[3];
  op->dilation_w = (int16_t)v[4];
  op->dilation_h = (int16_t)v[5];
  op->depth_multiplier = (int16_t)(v[6] > 0 && v[6] < 32768 ? v[6] : 0);
  op->beta = beta;
  return KWS_OK;
}

static int read_index_list(const fb_t *fb, const fb_vec_t *v, int16_t *out, int max, int num_tensors, int optional_ok) {
  if ((int)v->len > max) return KWS_ERR_BAD_MODEL;
  for (uint32_t i = 0; i < v->len; ++i) {
    int32_t k = (int32_t)fb_u32(fb, v->pos + 4 * i);
    if (k == -1 && optional_ok) { out[i] = -1; continue; }
    if (k < 0 || k >= num_tensors) return KWS_ERR_BAD_MODEL;
    out[i] = (int16_t)k;
  }
  return KWS_OK;
}

/* GreedyMemoryPlanner's idea: biggest buffers first, each at the lowest offset where it overlaps no
 * buffer that is alive at the same time. Buffers are the activation tensors plus each operator's scratch
 * (alive during that operator only), as TFLM plans its scratch buffers. */
typedef struct {
  uint32_t size, offset;
  int16_t first, last, tensor, op;
} plan_buf_t;

static int plan_arena(interp_t *it, size_t tail) {
  int n = 0, max = it->num_tensors + it->num_ops;
  size_t scratch_bytes = sizeof(plan_buf_t) * (size_t)max;
  if (scratch_bytes + tail > it->arena_size) {
    it->arena_needed = scratch_bytes + tail;
    return KWS_ERR_ARENA_TOO_SMALL;
  }
  plan_buf_t *b = (plan_buf_t *)(void *)it->arena; /* temporary: nothing runs before planning ends */
  for (int i = 0; i < it->num_tensors; ++i) {
    const tensor_t *t = &it->tensors[i];
    if (t->first_op >= 0) b[n++] = (plan_buf_t){(uint32_t)align_up(t->bytes, KWS_BUFFER_ALIGN), 0, t->first_op, t->last_op, (int16_t)i, -1};
  }
  for (int i = 0; i < it->num_ops; ++i)
    if (it->ops[i].scratch_bytes)
      b[n++] = (plan_buf_t){(uint32_t)align_up(it->ops[i].scratch_bytes, KWS_BUFFER_ALIGN), 0, (int16_t)i, (int16_t)i, -1, (int16_t)i};
  /* insertion sort by size, largest first; among equal sizes the longest-lived first (a residual branch's
   * input, alive across the whole block, then claims its place before the short-lived ones pack around it:
   * 51 KB instead of 64 KB of activations for a ResNet-8); remaining ties keep their order */
  for (int i = 1; i < n; ++i) {
    plan_buf_t k = b[i];
    int j = i - 1;
    while (j >= 0 && (b[j].size < k.size || (b[j].size == k.size && b[j].last - b[j].first < k.last - k.first))) {
      b[j + 1] = b[j];
      --j;
    }
    b[j + 1] = k;
  }
  size_t head = 0;
  for (int i = 0; i < n; ++i) {
    uint32_t off = 0;
    for (int moved = 1; moved;) {
      moved = 0;
      for (int j = 0; j < i; ++j) {
        int alive_together = !(b[j].last < b[i].first || b[i].last < b[j].first);
        if (alive_together && off < b[j].offset + b[j].size && b[j].offset < off + b[i].size) {
          off = b[j].offset + b[j].size;
          moved = 1;
        }
      }
    }
    b[i].offset = off;
    if (off + b[i].size > head) head = off + b[i].size;
  }
  it->arena_head = head;
  it->arena_needed = head + tail;
  if (head + tail > it->arena_size) return KWS_ERR_ARENA_TOO_SMALL;
  for (int i = n - 1; i >= 0; --i) { /* read the plan before anything writes into the arena */
    plan_buf_t pb = b[i];
    if (pb.tensor >= 0) it->tensors[pb.tensor].data = it->arena + pb.offset;
    else it->ops[pb.op].scratch = it->arena + pb.offset;
  }
  it->arena_used = head + tail;
  return KWS_OK;
}

static int init(interp_t *it) {
  fb_t fb = {it->model, it->model_size};
  fb_table_t model;
  /* 1. GetModel: file identifier and schema version. */
  if (!fb_fits(&fb, 0, 8)) return KWS_ERR_OUT_OF_BOUNDS;
  if (memcmp(it->model + 4, "TFL3", 4) != 0) return KWS_ERR_BAD_MAGIC;
  TRY(fb_root(&fb, &model));
  int64_t version;
  TRY(fb_int(&fb, &model, 0, 4, 0, 0, &version));
  if (version != KWS_SCHEMA_VERSION) return KWS_ERR_SCHEMA_VERSION;

  fb_vec_t opcodes, subgraphs, buffers, tensors, operators, inputs, outputs;
  TRY(fb_vector(&fb, &model, 1, 4, &opcodes));
  TRY(fb_vector(&fb, &model, 2, 4, &subgraphs));
  TRY(fb_vector(&fb, &model, 4, 4, &buffers));
  if (subgraphs.len != 1) return KWS_ERR_BAD_MODEL;
  fb_table_t sg;
  TRY(fb_vec_table(&fb, &subgraphs, 0, &sg));
  TRY(fb_vector(&fb, &sg, 0, 4, &tensors));
  TRY(fb_vector(&fb, &sg, 1, 4, &inputs));
  TRY(fb_vector(&fb, &sg, 2, 4, &outputs));
  TRY(fb_vector(&fb, &sg, 3, 4, &operators));
  if (tensors.len == 0 || tensors.len > KWS_MAX_TENSORS || operators.len == 0 || operators.len > KWS_MAX_OPS)
    return KWS_ERR_BAD_MODEL;
  if (inputs.len != 1 || outputs.len != 1) return KWS_ERR_BAD_MODEL;

  /* 2. Tensor and operator records, in the arena's tail. */
  size_t tail = 0;
  it->num_tensors = (int)tensors.len;
  it->num_ops = (int)operators.len;
  it->tensors = alloc_tail(it, sizeof(tensor_t) * tensors.len, &tail);
  it->ops = it->tensors ? alloc_tail(it, sizeof(op_t) * operators.len, &tail) : NULL;
  if (!it->ops) return KWS_ERR_ARENA_TOO_SMALL;
  for (uint32_t i = 0; i < tensors.len; ++i) {
    fb_table_t t;
    TRY(fb_vec_table(&fb, &tensors, i, &t));
    TRY(read_tensor(it, &fb, &t, &buffers, &it->tensors[i]));
  }
  int16_t io;
  TRY(read_index_list(&fb, &inputs, &io, 1, it->num_tensors, 0));
  it->input = io;
  TRY(read_index_list(&fb, &outputs, &io, 1, it->num_tensors, 0));
  it->output = io;
  tensor_t *in = &it->tensors[it->input], *out = &it->tensors[it->output];
  if (in->is_const || out->is_const || in->type != TFL_INT8 || out->type != TFL_INT8) return KWS_ERR_BAD_MODEL;
  in->first_op = 0;

  /* 3. Operators: read, resolve through the op resolver, record tensor lifetimes. */
  for (int i = 0; i < it->num_ops; ++i) {
    op_t *op = &it->ops[i];
    memset(op, 0, sizeof(*op));
    it->err_op = i;
    fb_table_t o, opt, code;
    TRY(fb_vec_table(&fb, &operators, (uint32_t)i, &o));
    int64_t opcode_index, dep, builtin, opt_type;
    TRY(fb_int(&fb, &o, 0, 4, 0, 0, &opcode_index));
    if (opcode_index >= opcodes.len) return KWS_ERR_BAD_MODEL;
    TRY(fb_vec_table(&fb, &opcodes, (uint32_t)opcode_index, &code));
    TRY(fb_int(&fb, &code, 0, 1, 1, 0, &dep));
    TRY(fb_int(&fb, &code, 3, 4, 1, 0, &builtin));
    op->code = (uint16_t)(dep > builtin ? dep : builtin); /* schema rule for the two code fields */
    it->err_code = op->code;
    for (int k = 0; k < it->resolver->count; ++k)
      if (it->resolver->kernels[k].code == op->code) op->kernel = &it->resolver->kernels[k];
    if (!op->kernel) return KWS_ERR_UNSUPPORTED_OP;
    fb_vec_t ins, outs;
    TRY(fb_vector(&fb, &o, 1, 4, &ins));
    TRY(fb_vector(&fb, &o, 2, 4, &outs));
    if (ins.len == 0 || outs.len != 1) return KWS_ERR_BAD_MODEL;
    for (int k = 0; k < KWS_MAX_OP_INPUTS; ++k) op->inputs[k] = -1;
    TRY(read_index_list(&fb, &ins, op->inputs, KWS_MAX_OP_INPUTS, it->num_tensors, 1));
    op->num_inputs = (uint8_t)ins.len;
    TRY(read_index_list(&fb, &outs, &op->output, 1, it->num_tensors, 0));
    int has_opt;
    TRY(fb_int(&fb, &o, 3, 1, 0, 0, &opt_type));
    TRY(fb_table(&fb, &o, 4, &opt, &has_opt));
    TRY(read_options(&fb, &opt, has_opt, op));
    for (int k = 0; k < op->num_inputs; ++k) {
      if (op->inputs[k] < 0) continue;
      tensor_t *t = &it->tensors[op->inputs[k]];
      if (t->is_const) continue;
      if (t->first_op < 0) return KWS_ERR_BAD_MODEL; /* read before anything wrote it */
      t->last_op = (int16_t)i;
    }
    tensor_t *o_t = &it->tensors[op->output];
    if (o_t->is_const || o_t->first_op >= 0 || op->output == it->input) return KWS_ERR_BAD_MODEL;
    o_t->first_op = o_t->last_op = (int16_t)i;
  }
  if (out->first_op < 0) return KWS_ERR_BAD_MODEL;
  out->last_op = (int16_t)(it->num_ops - 1);
  if (in->last_op < 0) in->last_op = 0;

  /* 4. Prepare: each kernel checks its tensors and computes its quantisation parameters. */
  for (int i = 0; i < it->num_ops; ++i) {
    op_t *op = &it->ops[i];
    it->err_op = i;
    it->err_code = op->code;
    it->arena_used = tail; /* prepare allocates per-channel parameters from the tail */
    for (int k = 0; k < it->num_packed; ++k)
      if (op->num_inputs > 1 && it->packed[k].tensor == op->inputs[1]) {
        op->packed_weights = it->packed[k].data;
        op->packed_bytes = it->packed[k].bytes;
      }
    int s = op->kernel->prepare(it, op);
    if (s != KWS_OK) return s;
    tail = it->arena_used;
  }
  it->err_op = -1;
  /* 5. Plan activations into the head of the arena. */
  return plan_arena(it, tail);
}

/* Used by prepare functions (kernels/prepare.c) for per-channel parameters. */
void *interp_alloc_persistent(interp_t *it, size_t bytes) {
  size_t tail = it->arena_used;
  void *p = alloc_tail(it, bytes, &tail);
  if (p) it->arena_used = tail;
  return p;
}

int interp_init(interp_t *it, const uint8_t *model, uint32_t model_size, const op_resolver_t *resolver,
                const packed_weights_t *packed, int num_packed, uint8_t *arena, size_t arena_size) {
  memset(it, 0, sizeof(*it));
  it->model = model;
  it->model_size = model_size;
  it->resolver = resolver;
  it->packed = packed;
  it->num_packed = packed ? num_packed : 0;
  it->arena = arena;
  it->arena_size = arena_size;
  it->err_op = -1;
  if (!model || !arena || ((uintptr_t)arena & 15u)) return KWS_ERR_BAD_MODEL;
  int s = init(it);
  it->ready = s == KWS_OK;
  return s;
}

int interp_invoke(interp_t *it, void (*layer_hook)(int op_index, void *ctx), void *ctx) {
  if (!it->ready) return KWS_ERR_NOT_READY;
  for (int i = 0; i < it->num_ops; ++i) {
    it->ops[i].kernel->eval(it, &it->ops[i]);
    if (layer_hook) layer_hook(i, ctx);
  }
  return KWS_OK;
}
