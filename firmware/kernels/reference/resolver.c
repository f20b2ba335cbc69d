/* The reference op resolver: every supported builtin mapped to its shared Prepare and reference Eval. */
#include "../kernels.h"

static const kernel_t kernels[] = {
    {OP_CONV_2D, "CONV_2D", prepare_conv, ref_conv},
    {OP_DEPTHWISE_CONV_2D, "DEPTHWISE_CONV_2D", prepare_depthwise, ref_depthwise},
    {OP_FULLY_CONNECTED, "FULLY_CONNECTED", prepare_fully_connected, ref_fully_connected},
    {OP_MAX_POOL_2D, "MAX_POOL_2D", prepare_pool, ref_max_pool},
    {OP_AVERAGE_POOL_2D, "AVERAGE_POOL_2D", prepare_pool, ref_average_pool},
    {OP_RESHAPE, "RESHAPE", prepare_reshape, ref_reshape},
    {OP_SOFTMAX, "SOFTMAX", prepare_softmax, ref_softmax},
    {OP_ADD, "ADD", prepare_add, ref_add},
    {OP_MEAN, "MEAN", prepare_mean, ref_mean},
    {OP_PAD, "PAD", prepare_pad, ref_pad},
    {OP_PADV2, "PADV2", prepare_pad, ref_pad},
    {OP_QUANTIZE, "QUANTIZE", prepare_quantize, ref_quantize},
    {OP_TRANSPOSE, "TRANSPOSE", prepare_transpose, ref_transpose},
};

const op_resolver_t kws_reference_resolver = {"reference", kernels, sizeof(kernels) / sizeof(kernels[0])};
