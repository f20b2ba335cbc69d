/* What the two kernel sets share: Prepare functions (shape checks, quantisation parameters, computed once)
 * and the Eval function signatures. Only Eval differs between kernels/reference and kernels/optimized. */
#ifndef KERNELS_H
#define KERNELS_H
#include "../runtime/interpreter.h"
#include "../runtime/quant.h"

void *interp_alloc_persistent(interp_t *it, size_t bytes);

int prepare_conv(interp_t *it, op_t *op);
int prepare_depthwise(interp_t *it, op_t *op);
int prepare_fully_connected(interp_t *it, op_t *op);
int prepare_pool(interp_t *it, op_t *op);
int prepare_softmax(interp_t *it, op_t *op);
int prepare_reshape(interp_t *it, op_t *op);
/* CalculateActivationRangeQuantized (prepare.c), shared with the kernels below */
void activation_range(const tensor_t *out, int act, int32_t *lo, int32_t *hi);
/* Operators with their Prepare next to their reference Eval (kernels/reference/add.c, mean.c, pad.c,
 * quantize.c, transpose.c); the optimised set reuses them: they are not where the time goes. */
int prepare_add(interp_t *it, op_t *op);
int prepare_mean(interp_t *it, op_t *op);
int prepare_pad(interp_t *it, op_t *op);
int prepare_quantize(interp_t *it, op_t *op);
int prepare_transpose(interp_t *it, op_t *op);
void ref_add(const interp_t *it, const op_t *op);
void ref_mean(const interp_t *it, const op_t *op);
void ref_pad(const interp_t *it, const op_t *op);
void ref_quantize(const interp_t *it, const op_t *op);
void ref_transpose(const interp_t *it, const op_t *op);

/* Reference kernels: TFLite's reference_integer_ops loops, in C. */
void ref_conv(const interp_t *it, const op_t *op);
void ref_depthwise(const interp_t *it, const op_t *op);
void ref_fully_connected(const interp_t *it, const op_t *op);
void ref_max_pool(const interp_t *it, const op_t *op);
void ref_average_pool(const interp_t *it, const op_t *op);
void ref_softmax(const interp_t *it, const op_t *op);
void ref_reshape(const interp_t *it, const op_t *op);

/* Optimised kernels (Cortex-M4 DSP instructions; plain C fallbacks on the host). */
int opt_prepare_conv(interp_t *it, op_t *op);
int opt_prepare_depthwise(interp_t *it, op_t *op);
int opt_prepare_fully_connected(interp_t *it, op_t *op);
void opt_conv(const interp_t *it, const op_t *op);
void opt_depthwise(const interp_t *it, const op_t *op);
void opt_fully_connected(const interp_t *it, const op_t *op);
void opt_max_pool(const interp_t *it, const op_t *op);
void opt_average_pool(const interp_t *it, const op_t *op);
void opt_reshape(const interp_t *it, const op_t *op);
void opt_softmax(const interp_t *it, const op_t *op);

/* NHWC helpers */
#define DIM(t, i) ((t)->dims[i])
/* Bias is added with wrap-around, as the hardware does: a corrupt model must not cause undefined behaviour. */
static inline int32_t wrap_add32(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
/* Longest dot product we accept: 65535 * 128 * 255 still fits an int32 accumulator. */
#define KWS_MAX_DOT 65535
static inline int32_t clamp_i32(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : v; }

#endif
