"""kws_data: espeak-ng really speaks, the splits use disjoint speakers, and clips are well formed."""

import numpy as np
import pytest

from snippets import kws_data
from tests.conftest import need_tool


def test_speak_produces_speech():
    need_tool("espeak-ng")
    yes = kws_data.speak("yes", "en-us+m1")
    assert 0.2 * kws_data.SAMPLE_RATE < yes.size < kws_data.SAMPLE_RATE and np.abs(yes).max() > 0.1


def test_missing_espeak_is_named(monkeypatch):
    monkeypatch.setattr(kws_data.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="install the Debian package espeak-ng"):
        kws_data.speak("yes", "en-us")


def test_splits_use_disjoint_speakers_and_balanced_classes():
    rng = np.random.default_rng(0)
    voices = kws_data.speakers()
    utterances, labels, speakers = [], [], []
    for voice in voices:
        for word in (*kws_data.KEYWORDS, "unknown"):
            utterances.append(rng.standard_normal(4000).astype(np.float32) * 0.1)
            labels.append(word)
            speakers.append(voice)
    x_train, y_train = kws_data.make_clips(utterances, labels, speakers, test=False, copies=1, seed=1)
    x_test, y_test = kws_data.make_clips(utterances, labels, speakers, test=True, copies=1, seed=2)
    test_voices = {v for v in voices if v.split("+")[1] in kws_data.TEST_VARIANTS}
    assert len(test_voices) == len(kws_data.ACCENTS) * len(kws_data.TEST_VARIANTS)
    assert x_train.shape[1:] == x_test.shape[1:] == (kws_data.CLIP_SAMPLES,)
    assert len(set(np.bincount(y_test, minlength=11))) == 1  # every class equally often
    assert np.abs(x_train).max() <= 1.0 and len(y_train) == len(x_train)
