"""mfcc against tf.signal (mel matrix, STFT, MFCC) and scipy (DCT)."""

import os

import numpy as np
import pytest
import scipy.fft

from snippets import mfcc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


def test_mel_filterbank_matches_tf_signal(tf):
    ref = tf.signal.linear_to_mel_weight_matrix(
        mfcc.NUM_MEL_BINS, mfcc.FFT_LENGTH // 2 + 1, mfcc.SAMPLE_RATE, mfcc.LOWER_HZ, mfcc.UPPER_HZ
    ).numpy()
    np.testing.assert_allclose(mfcc.mel_filterbank(), ref, atol=2e-5)


def test_dct_matches_scipy():
    x = np.random.default_rng(0).standard_normal((5, mfcc.NUM_MEL_BINS))
    ref = scipy.fft.dct(x, type=2, norm="ortho")[:, : mfcc.NUM_MFCC]
    np.testing.assert_allclose(x @ mfcc.dct_matrix(), ref, atol=1e-5)


def test_mfcc_matches_tf_signal_pipeline(tf):
    audio = np.random.default_rng(1).standard_normal((2, mfcc.SAMPLE_RATE)).astype(np.float32) * 0.1
    pad = (mfcc.FRAME_LENGTH - mfcc.FRAME_STEP) // 2
    stft = tf.signal.stft(np.pad(audio, ((0, 0), (pad, pad))), mfcc.FRAME_LENGTH, mfcc.FRAME_STEP,
                          mfcc.FFT_LENGTH, window_fn=tf.signal.hann_window)  # fmt: skip
    mel = tf.tensordot(tf.abs(stft) ** 2, mfcc.mel_filterbank(), 1)
    log_mel = tf.math.log(mel + mfcc.LOG_OFFSET)
    # tf's MFCC is the DCT-II scaled by 1/sqrt(2 * bins): the orthonormal DCT except for the first coefficient
    ref = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : mfcc.NUM_MFCC].numpy()
    ref[..., 0] /= np.sqrt(2.0)
    ours = mfcc.mfcc(audio)
    assert ours.shape == (2, 13, 50)
    np.testing.assert_allclose(ours, np.swapaxes(ref, 1, 2), rtol=1e-3, atol=1e-3)


def test_wrong_length_is_named():
    with pytest.raises(ValueError, match="expected clips of 16000 samples"):
        mfcc.mfcc(np.zeros(8000, np.float32))
