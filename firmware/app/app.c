#include "app.h"

#include <math.h>
#include <string.h>

#define KWS_MAX_LAYERS 64

/* ---- a few printing helpers (no printf: small, and identical on board and host) ---- */
static void (*out_write)(const char *);
static void put(const char *s) { out_write(s); }
static void put_u(uint32_t v) {
  char buf[11], *p = buf + 10;
  *p = 0;
  do { *--p = (char)('0' + v % 10); v /= 10; } while (v);
  put(p);
}
static void put_i(int32_t v) {
  if (v < 0) { put("-"); put_u((uint32_t)(-(int64_t)v)); }
  else put_u((uint32_t)v);
}
static void put_hex8(uint8_t v) {
  static const char hex[] = "0123456789abcdef";
  char buf[3] = {hex[v >> 4], hex[v & 15], 0};
  put(buf);
}

typedef struct {
  uint32_t (*ticks)(void);
  uint32_t last;
  uint32_t per_layer[KWS_MAX_LAYERS];
#ifdef KWS_LAYER_DUMP
  const interp_t *it;
  int dump_left; /* operators still to print: those of the first inference */
#endif
} timing_t;

#ifdef KWS_LAYER_DUMP
/* Dump builds only (make DUMP=1, build/host/kws_host-dump; tools/layer_dump.py reads the lines): one operator's
 * output tensor as `LAYER <op> <tensor> <d0>x...x<dn> <hex bytes>`, the raw int8 bytes as they lie in the arena
 * (NHWC). Normal builds do not contain this code, so their results and instruction counts cannot change.
 * noinline: the hook keeps its small frame, so even a dump build counts the same instructions per layer. */
__attribute__((noinline)) static void dump_output(const interp_t *it, int op_index) {
  static const char hex[] = "0123456789abcdef";
  const op_t *op = &it->ops[op_index];
  const tensor_t *t = op_out(it, op);
  put("LAYER ");
  put_i(op_index);
  put(" ");
  put_i(op->output);
  put(" ");
  for (int d = 0; d < t->ndim; ++d) {
    if (d) put("x");
    put_i(t->dims[d]);
  }
  if (t->ndim == 0) put("1"); /* a scalar */
  put(" ");
  char chunk[129]; /* 64 bytes per write: few calls on the host, the UART takes one character at a time anyway */
  for (uint32_t i = 0; i < t->bytes; i += 64) {
    uint32_t n = t->bytes - i < 64 ? t->bytes - i : 64;
    for (uint32_t k = 0; k < n; ++k) {
      chunk[2 * k] = hex[t->data[i + k] >> 4];
      chunk[2 * k + 1] = hex[t->data[i + k] & 15];
    }
    chunk[2 * n] = 0;
    put(chunk);
  }
  put("\n");
}
#endif

/* Called by the interpreter after each operator: instructions spent in it. */
static void layer_hook(int op_index, void *ctx) {
  timing_t *t = ctx;
  uint32_t now = t->ticks();
  if (op_index < KWS_MAX_LAYERS) t->per_layer[op_index] = now - t->last;
#ifdef KWS_LAYER_DUMP
  if (t->dump_left) { /* before the next read: printing is not counted in any layer */
    dump_output(t->it, op_index);
    --t->dump_left;
  }
#endif
  t->last = t->ticks(); /* exclude the hook's own reads from the next layer */
}

static int report_error(const interp_t *it, int status) {
  put("error ");
  put(kws_status_name(status));
  if (it->err_op >= 0) {
    put(" op ");
    put_i(it->err_op);
    put(" code ");
    put_i(it->err_code);
    put(" ");
    put(op_name(it->err_code));
  }
  if (status == KWS_ERR_ARENA_TOO_SMALL) {
    put(" need ");
    if (it->arena_head == 0) put(">= "); /* failed before planning: a lower bound */
    put_u((uint32_t)it->arena_needed);
    put(" have ");
    put_u((uint32_t)it->arena_size);
  }
  put("\n");
  return status;
}

int app_run(const app_config_t *cfg) {
  static interp_t it; /* static: the interpreter's own record stays off the small stack */
  static timing_t timing;
  out_write = cfg->write;
  timing.ticks = cfg->ticks;
  int status = interp_init(&it, cfg->model, cfg->model_size, cfg->resolver, cfg->packed, cfg->num_packed,
                           cfg->arena, cfg->arena_size);
  put("kws model ");
  put_u(cfg->model_size);
  put(" bytes kernels ");
  put(cfg->resolver->name);
  put("\n");
  if (status != KWS_OK) return report_error(&it, status);
  put("arena ");
  put_u((uint32_t)it.arena_used);
  put(" of ");
  put_u((uint32_t)cfg->arena_size);
  put(" bytes\n");
  for (int i = 0; i < it.num_ops; ++i) {
    put("layer ");
    put_i(i);
    put(" ");
    put(op_name(it.ops[i].code));
    put(" macs ");
    put_u(it.ops[i].macs);
    put("\n");
  }
  tensor_t *in = interp_input(&it), *out = interp_output(&it);
  const int classes = (int)out->bytes;
  /* The model's last operator: when it is SOFTMAX the dequantised scores already are probabilities. */
  const int ends_in_softmax = it.ops[it.num_ops - 1].code == OP_SOFTMAX;
#ifdef KWS_LAYER_DUMP
  timing.it = &it;
  timing.dump_left = it.num_ops; /* one input's layers: enough to find where results part, a short UART log */
#endif
  for (int n = 0; n < cfg->num_inputs; ++n) {
    /* 1. Quantise on the device: q = round(x / scale) + zero_point, saturated to int8 (or copy int8 inputs). */
    int8_t *q = (int8_t *)in->data;
    if (cfg->inputs_q) {
      memcpy(q, cfg->inputs_q + (size_t)n * in->bytes, in->bytes);
    } else {
      const float *x = cfg->inputs + (size_t)n * in->bytes;
      for (uint32_t i = 0; i < in->bytes; ++i) {
        int32_t v = (int32_t)roundf(x[i] / in->scale) + in->zero_point;
        q[i] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
      }
    }
    /* 2. Invoke, timing each layer. */
    timing.last = cfg->ticks();
    uint32_t start = timing.last;
    status = interp_invoke(&it, layer_hook, &timing);
    uint32_t total = cfg->ticks() - start;
    if (status != KWS_OK) return report_error(&it, status);
    /* 3. Dequantise, (softmax if the model has none), class and confidence. */
    const int8_t *y = (const int8_t *)out->data;
    int best = 0;
    for (int c = 0; c < classes; ++c)
      if (y[c] > y[best]) best = c;
    float confidence = ((float)y[best] - (float)out->zero_point) * out->scale;
    if (!ends_in_softmax) { /* softmax of the dequantised outputs, at the best class: 1 / sum exp(p_c - p_best) */
      float sum = 0.0f;
      for (int c = 0; c < classes; ++c) sum += expf((float)(y[c] - y[best]) * out->scale);
      confidence = 1.0f / sum;
    }
    put("result ");
    put_i(n);
    put(" class ");
    put_i(best);
    put(" conf ");
    put_u((uint32_t)(confidence * 1000.0f + 0.5f));
    put(" raw ");
    for (int c = 0; c < classes; ++c) put_hex8((uint8_t)y[c]);
    put(" instr ");
    put_u(total);
    put("\n");
    if (n == 0) {
      for (int i = 0; i < it.num_ops && i < KWS_MAX_LAYERS; ++i) {
        put("instr layer ");
        put_i(i);
        put(" ");
        put_u(timing.per_layer[i]);
        put("\n");
      }
    }
  }
  put("done ");
  put_i(cfg->num_inputs);
  put("\n");
  return 0;
}
