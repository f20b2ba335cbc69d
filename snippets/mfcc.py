"""MFCC features in plain numpy: 1 s of 16 kHz audio -> 13 coefficients x 50 frames (the source's input).

Taught in: lessons/31_pytorch_to_int8_tflite.ipynb. Needs: numpy.
40 ms Hann windows every 20 ms, 40 mel bands (20 Hz - 8 kHz, HTK mel scale), log, orthonormal DCT-II.
Everything is a plain matrix product, so the same steps port to C (CMSIS-DSP has each piece).
"""

import numpy as np

SAMPLE_RATE = 16_000
FRAME_LENGTH = 640  # 40 ms
FRAME_STEP = 320  # 20 ms: 1 s of audio gives 50 frames
FFT_LENGTH = 1024
NUM_MEL_BINS = 40
NUM_MFCC = 13
LOWER_HZ, UPPER_HZ = 20.0, 8000.0
LOG_OFFSET = 1e-6


def hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def mel_filterbank(num_bins=NUM_MEL_BINS, fft_length=FFT_LENGTH, sample_rate=SAMPLE_RATE,
                   lower_hz=LOWER_HZ, upper_hz=UPPER_HZ) -> np.ndarray:  # fmt: skip
    """(fft_length//2+1, num_bins) triangular filters on the mel scale, like tf.signal's matrix."""
    freqs = np.linspace(0.0, sample_rate / 2, fft_length // 2 + 1)[1:]  # the DC bin gets no weight
    edges = np.linspace(hz_to_mel(lower_hz), hz_to_mel(upper_hz), num_bins + 2)
    mel = hz_to_mel(freqs)[:, None]
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((mel - lower) / (center - lower), (upper - mel) / (upper - center)))
    return np.vstack([np.zeros((1, num_bins)), weights]).astype(np.float32)


def dct_matrix(n_in=NUM_MEL_BINS, n_out=NUM_MFCC) -> np.ndarray:
    """(n_in, n_out) orthonormal DCT-II, the one scipy.fft.dct(norm='ortho') applies."""
    k = np.arange(n_out)[None, :]
    n = np.arange(n_in)[:, None]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[:, 0] /= np.sqrt(2.0)
    return m.astype(np.float32)


def frames(audio: np.ndarray) -> np.ndarray:
    """(..., 50, FRAME_LENGTH) overlapping frames of 1 s clips, padded by half a step at each end."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 0 or audio.shape[-1] != SAMPLE_RATE:
        raise ValueError(
            f"expected clips of {SAMPLE_RATE} samples (1 s at 16 kHz) on the last axis, got {audio.shape}"
        )
    pad = (FRAME_LENGTH - FRAME_STEP) // 2
    padded = np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(pad, pad)])
    count = 1 + (padded.shape[-1] - FRAME_LENGTH) // FRAME_STEP
    index = np.arange(FRAME_LENGTH)[None, :] + FRAME_STEP * np.arange(count)[:, None]
    return padded[..., index]


def mfcc(audio: np.ndarray) -> np.ndarray:
    """(13, 50) float32 MFCCs of one second of 16 kHz audio (rows: coefficients, columns: frames).

    A batch (N, 16000) gives (N, 13, 50); batching is much faster than a Python loop over clips.
    """
    window = np.hanning(FRAME_LENGTH + 1)[:-1].astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames(audio) * window, n=FFT_LENGTH)) ** 2
    log_mel = np.log(power @ mel_filterbank() + LOG_OFFSET)
    return np.swapaxes(log_mel @ dct_matrix(), -1, -2).astype(np.float32)


def _self_check():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    features = mfcc(np.sin(2 * np.pi * 440 * t).astype(np.float32))
    assert features.shape == (NUM_MFCC, 50) and np.isfinite(features).all()
