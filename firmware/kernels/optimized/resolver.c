/* The optimised op resolver: same Prepare functions, faster Eval for the layers that do the work
 * (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, both poolings, reshape, softmax, pad); the rest: the
 * reference. */
#include "../kernels.h"

void opt_pad(const interp_t *it, const op_t *op); /* pad.c */

static const kernel_t kernels[] = {
    {OP_CONV_2D, "CONV_2D", opt_prepare_conv, opt_conv},
    {OP_DEPTHWISE_CONV_2D, "DEPTHWISE_CONV_2D", opt_prepare_depthwise, opt_depthwise},
    {OP_FULLY_CONNECTED, "FULLY_CONNECTED", opt_prepare_fully_connected, opt_fully_connected},
    {OP_MAX_POOL_2D, "MAX_POOL_2D", prepare_pool, opt_max_pool},
    {OP_AVERAGE_POOL_2D, "AVERAGE_POOL_2D", prepare_pool, opt_average_pool},
    {OP_RESHAPE, "RESHAPE", prepare_reshape, opt_reshape},
    {OP_SOFTMAX, "SOFTMAX", prepare_softmax, opt_softmax},
    {OP_ADD, "ADD", prepare_add, ref_add},
    {OP_MEAN, "MEAN", prepare_mean, ref_mean},
    {OP_PAD, "PAD", prepare_pad, opt_pad},
    {OP_PADV2, "PADV2", prepare_pad, opt_pad},
    {OP_QUANTIZE, "QUANTIZE", prepare_quantize, ref_quantize},
    {OP_TRANSPOSE, "TRANSPOSE", prepare_transpose, ref_transpose},
};

const op_resolver_t kws_optimized_resolver = {"optimized", kernels, sizeof(kernels) / sizeof(kernels[0])};
