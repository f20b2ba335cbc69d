/* A small interpreter that follows TFLM's MicroInterpreter steps:
 *   GetModel + schema check -> resolve each operator through an op resolver -> Prepare (shapes,
 *   quantisation parameters) -> plan activations into the caller's tensor arena -> Invoke.
 * Everything it keeps lives in the arena: activations at the front (planned, shared between layers whose
 * lifetimes do not overlap), tensor and operator records at the back, as TFLM does. */
#ifndef INTERPRETER_H
#define INTERPRETER_H
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* TFLite schema values we use (schema.fbs). */
enum { TFL_FLOAT32 = 0, TFL_INT32 = 2, TFL_INT8 = 9 };
enum {
  OP_ADD = 0, OP_AVERAGE_POOL_2D = 1, OP_CONV_2D = 3, OP_DEPTHWISE_CONV_2D = 4, OP_FULLY_CONNECTED = 9,
  OP_MAX_POOL_2D = 17, OP_RESHAPE = 22, OP_SOFTMAX = 25, OP_PAD = 34, OP_TRANSPOSE = 39, OP_MEAN = 40, OP_PADV2 = 60,
  OP_QUANTIZE = 114
};
enum { PAD_SAME = 0, PAD_VALID = 1 };
enum { ACT_NONE = 0, ACT_RELU = 1, ACT_RELU_N1_TO_1 = 2, ACT_RELU6 = 3 };

#define KWS_SCHEMA_VERSION 3
#define KWS_MAX_DIMS 4
#define KWS_MAX_OP_INPUTS 3

typedef struct {
  uint8_t *data;         /* flash (constants) or arena (activations) */
  uint32_t bytes;
  int32_t dims[KWS_MAX_DIMS];
  uint8_t ndim, type, is_const;
  uint8_t quantized_dim;
  float scale;           /* per-tensor scale (first one if per-channel) */
  int32_t zero_point;
  uint32_t scales_pos;   /* per-channel scales: position in the model buffer, count below */
  uint32_t num_scales;
  int16_t first_op, last_op; /* lifetime, for the planner (-1: not an activation) */
} tensor_t;

struct interp;
struct op;

/* One entry of an op resolver: the builtin code and the functions that run it. */
typedef struct {
  uint16_t code;
  const char *name;
  int (*prepare)(struct interp *it, struct op *op);        /* validate, compute parameters */
  void (*eval)(const struct interp *it, const struct op *op);
} kernel_t;

typedef struct {
  const char *name;   /* which kernel set: "reference" or "optimized" */
  const kernel_t *kernels;
  int count;
} op_resolver_t;

typedef struct op {
  const kernel_t *kernel;
  uint16_t code;
  uint8_t num_inputs;
  int16_t inputs[KWS_MAX_OP_INPUTS]; /* -1: optional input absent */
  int16_t output;
  /* builtin options */
  uint8_t padding, activation;
  int16_t stride_w, stride_h, dilation_w, dilation_h, filter_w, filter_h, depth_multiplier;
  float beta;
  /* computed in prepare */
  int16_t pad_w, pad_h;
  int32_t act_min, act_max;
  int32_t *multipliers; /* per output channel (one entry for per-tensor ops) */
  int8_t *shifts;
  int32_t softmax_multiplier, softmax_diff_min;
  int16_t softmax_left_shift;
  const void *packed_weights; /* optimised kernels: weights converted at build time, or NULL */
  uint32_t packed_bytes;      /* their size, checked by the kernel's Prepare against the shapes */
  uint32_t scratch_bytes;     /* asked for in prepare, planned into the arena head */
  uint8_t *scratch;
  uint32_t macs;
} op_t;

/* Weights converted at build time for the optimised kernels (see tools/gen_model.py). */
typedef struct {
  int16_t tensor;
  uint32_t bytes;
  const void *data;
} packed_weights_t;

typedef struct interp {
  const uint8_t *model;
  uint32_t model_size;
  const op_resolver_t *resolver;
  const packed_weights_t *packed; /* may be NULL */
  int num_packed;
  uint8_t *arena;
  size_t arena_size, arena_used, arena_head, arena_needed;
  tensor_t *tensors;
  op_t *ops;
  int num_tensors, num_ops;
  int input, output;
  int ready;
  /* error details */
  int err_op;           /* operator index (or -1) */
  int err_code;         /* builtin code of an unsupported operator */
} interp_t;

/* Steps 1-5 of MicroInterpreter: parse, validate, resolve, prepare, plan. Returns a kws_status_t. */
int interp_init(interp_t *it, const uint8_t *model, uint32_t model_size, const op_resolver_t *resolver,
                const packed_weights_t *packed, int num_packed, uint8_t *arena, size_t arena_size);
/* Runs all operators. `layer_hook` (may be NULL) is called after each one (the firmware reads TIM2 there). */
int interp_invoke(interp_t *it, void (*layer_hook)(int op_index, void *ctx), void *ctx);

static inline tensor_t *interp_input(const interp_t *it) { return &it->tensors[it->input]; }
static inline tensor_t *interp_output(const interp_t *it) { return &it->tensors[it->output]; }
static inline const tensor_t *op_in(const interp_t *it, const op_t *op, int i) {
  return op->inputs[i] >= 0 ? &it->tensors[op->inputs[i]] : NULL;
}
static inline const tensor_t *op_out(const interp_t *it, const op_t *op) { return &it->tensors[op->output]; }
const char *op_name(int code);

/* Resolvers provided by the kernel sets. */
extern const op_resolver_t kws_reference_resolver;
extern const op_resolver_t kws_optimized_resolver;

#endif
