/* Deliberate kernel bugs for tests of the per-layer dump (tools/layer_dump.py --fault NAME): each is a
 * compile-time define that only the test builds set (make FAULT=NAME, their own objects and binaries), so no
 * normal build contains one. A tool that compares layers must name the faulted operator as the first to differ.
 *
 * FAULT_CONV_BIAS: in every CONV_2D (reference and optimised kernels), output channel 0's bias is off by as many
 *   accumulator units as 16 steps of the output's int8 scale: that channel reads about 16 steps high (less where
 *   the activation clamps it), every other channel and every other operator is right. */
#ifndef FAULTS_H
#define FAULTS_H
#ifdef FAULT_CONV_BIAS
#include <math.h>

#include "kernels.h"

/* 16 output steps in accumulator units: the requantisation multiplies by multiplier * 2^(shift - 31). */
static inline int32_t fault_conv_bias(const op_t *op) {
  const double units = ldexp(16.0, 31 - op->shifts[0]) / (double)op->multipliers[0];
  return units < 1.0 ? 1 : units > 1e9 ? 1000000000 : (int32_t)units;
}
#endif
#endif
