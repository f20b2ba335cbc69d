"""int8 quantisation arithmetic as TFLite/TFLM do it: scale, zero point, int32 bias, fixed-point rescaling.

Taught in: lessons/30_quantisation_math.ipynb. Needs: numpy.
real = scale * (q - zero_point). A layer's int32 accumulator is rescaled to the output's scale by an int32
multiplier and a shift (`quantize_multiplier`), applied the way TFLM's reference kernels do it
(`multiply_by_quantized_multiplier`: two roundings) or the way LiteRT's newer kernels do (`..._single_round`).
"""

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize(x, scale, zero_point, qmin=-128, qmax=127, axis=None) -> np.ndarray:
    """q = clamp(round(x / scale) + zero_point), rounding as TFLite's QUANTIZE does (`std::round`).

    `axis` names the channel axis for per-channel scales.
    """
    scale, zero_point = _per_axis(scale, x, axis), _per_axis(zero_point, x, axis)
    if np.any(scale <= 0):
        raise ValueError("scale must be positive")
    q = round_half_away(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, qmin, qmax).astype(np.int8 if qmin >= -128 and qmax <= 127 else np.int32)


def round_half_away(v) -> np.ndarray:
    """C's round()/std::round: ties go away from zero (2.5 -> 3, -2.5 -> -3), as TFLite and TFLM round.

    np.round and torch.round round ties to even (2.5 -> 2): one step apart on exactly half the ties.
    """
    v = np.asarray(v, np.float64)
    whole = np.trunc(v)
    return np.where(np.abs(v - whole) == 0.5, whole + np.sign(v), np.round(v))


def dequantize(q, scale, zero_point, axis=None) -> np.ndarray:
    """real = scale * (q - zero_point), as float32."""
    scale, zero_point = _per_axis(scale, q, axis), _per_axis(zero_point, q, axis)
    return (scale * (np.asarray(q, np.int64) - zero_point)).astype(np.float32)


def _per_axis(values, x, axis):
    values = np.asarray(values, np.float64)
    if axis is None or values.ndim == 0:
        return values
    shape = [1] * np.ndim(x)
    shape[axis] = -1
    if values.size != np.shape(x)[axis]:
        raise ValueError(f"{values.size} per-channel values for axis {axis} of size {np.shape(x)[axis]}")
    return values.reshape(shape)


def asymmetric_qparams(x_min, x_max, qmin=-128, qmax=127):
    """Scale and integer zero point mapping [x_min, x_max] (widened to include 0) onto [qmin, qmax]."""
    x_min, x_max = min(float(x_min), 0.0), max(float(x_max), 0.0)
    scale = (x_max - x_min) / (qmax - qmin) or 1.0
    zero_point = int(np.clip(round(qmin - x_min / scale), qmin, qmax))
    return scale, zero_point


def symmetric_qparams(x, qmax=127, axis=None):
    """Zero point 0 and scale max|x| / qmax, per tensor or per channel along `axis` (weights use 127)."""
    x = np.abs(np.asarray(x, np.float64))
    peak = x.max() if axis is None else x.max(axis=tuple(i for i in range(x.ndim) if i != axis))
    return np.maximum(peak, 1e-12) / qmax


def quantize_bias(bias, input_scale, weight_scale) -> np.ndarray:
    """int32 bias, scale input_scale * weight_scale, zero point 0: it adds straight to the accumulator."""
    return np.round(np.asarray(bias, np.float64) / (input_scale * np.asarray(weight_scale))).astype(np.int32)


def quantize_multiplier(real_multiplier):
    """(int32 multiplier, shift) with real = multiplier * 2**(shift - 31), as TFLite's QuantizeMultiplier."""
    real = np.atleast_1d(np.asarray(real_multiplier, np.float64))
    if np.any(real < 0):
        raise ValueError("the real multiplier must be non-negative")
    mantissa, shift = np.frexp(real)  # real = mantissa * 2**shift, mantissa in [0.5, 1)
    q = np.floor(np.abs(mantissa) * 2**31 + 0.5).astype(np.int64)  # std::round: half away from zero
    shift = shift.astype(np.int64)
    full = q == 2**31
    q[full] //= 2
    shift[full] += 1
    tiny = shift < -31
    q[tiny], shift[tiny] = 0, 0
    q[real == 0], shift[real == 0] = 0, 0
    return (
        (q.astype(np.int32), shift.astype(np.int32))
        if np.ndim(real_multiplier)
        else (int(q[0]), int(shift[0]))
    )


def _high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2**31), ties away from zero."""
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    result = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, result)


def _rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(acc, multiplier, shift) -> np.ndarray:
    """TFLM's reference requantisation (two roundings): round(acc * multiplier * 2**(shift-31))."""
    acc, multiplier, shift = (np.asarray(v, np.int64) for v in (acc, multiplier, shift))
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    return _rounding_divide_by_pot(_high_mul(acc * (np.int64(1) << left), multiplier), right)


def multiply_by_quantized_multiplier_single_round(acc, multiplier, shift) -> np.ndarray:
    """The single-rounding variant (TFLITE_SINGLE_ROUNDING, LiteRT's newer kernels)."""
    acc, multiplier, shift = (np.asarray(v, np.int64) for v in (acc, multiplier, shift))
    total_shift = 31 - shift
    return (acc * multiplier + (np.int64(1) << (total_shift - 1))) >> total_shift


def requantize(
    acc, input_scale, weight_scale, output_scale, output_zero_point, relu=False, single_round=False
):
    """int32 accumulators -> int8: rescale by input_scale * weight_scale / output_scale, add zero point."""
    multiplier, shift = quantize_multiplier(np.asarray(input_scale * np.asarray(weight_scale) / output_scale))
    rescale = (
        multiply_by_quantized_multiplier_single_round if single_round else multiply_by_quantized_multiplier
    )
    out = rescale(acc, multiplier, shift) + output_zero_point
    return np.clip(out, output_zero_point if relu else -128, 127).astype(np.int8)


def _self_check():
    m, s = quantize_multiplier(0.1)
    assert abs(m * 2.0 ** (s - 31) - 0.1) < 1e-9
    assert int(multiply_by_quantized_multiplier(1000, m, s)) == 100
    assert dequantize(quantize(0.5, 0.01, 3), 0.01, 3) == np.float32(0.5)
    assert round_half_away([2.5, -2.5, 0.5, 1.4999]).tolist() == [3, -3, 1, 1]
