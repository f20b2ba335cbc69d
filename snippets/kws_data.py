"""Synthesise a small, real keyword-spotting data set offline: espeak-ng speaks the words, numpy adds noise.

Taught in: lessons/31_pytorch_to_int8_tflite.ipynb. Needs: numpy, scipy, the `espeak-ng` program.
Eleven classes as in the source's model: nine keywords, "silence" (noise only) and "unknown" (other words).
Speakers are espeak-ng accents x voice variants; the test split uses speakers never heard in training,
so test accuracy measures generalisation to new voices, not memorised recordings.
"""

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # one-second clips, as in the source (50 frames x 20 ms)
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop")
LABELS = ("silence", "unknown", *KEYWORDS)
UNKNOWN_WORDS = ("go", "bed", "bird", "cat", "dog", "happy", "house", "tree", "wow", "zero", "one", "two",
                 "three", "four", "five", "six", "seven", "eight", "nine", "marvin", "sheila")  # fmt: skip
ACCENTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
VARIANTS = ("m1", "m3", "m7", "f1", "f3", "m2", "f4", "f2")
TEST_VARIANTS = ("m2", "f4")  # every accent spoken by these variants is held out for testing


def speakers() -> list[str]:
    """All espeak-ng voices used, as 'accent+variant'."""
    return [f"{accent}+{variant}" for accent in ACCENTS for variant in VARIANTS]


def speak(word: str, voice: str, speed: int = 160, pitch: int = 50) -> np.ndarray:
    """One utterance as float32 samples at 16 kHz in [-1, 1], trimmed of leading/trailing silence."""
    if shutil.which("espeak-ng") is None:
        raise FileNotFoundError("espeak-ng is not on PATH: install the Debian package espeak-ng")
    result = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
        capture_output=True, check=True,
    )  # fmt: skip
    wav = result.stdout
    if wav[:4] != b"RIFF":
        raise ValueError(f"espeak-ng returned no WAV for voice {voice!r}: {wav[:60]!r}")
    pcm = np.frombuffer(wav[44:], dtype="<i2").astype(np.float32) / 32768.0  # 22050 Hz mono
    audio = resample_poly(pcm, 320, 441).astype(np.float32)  # 22050 Hz -> 16000 Hz
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def synthesise(seed: int = 0, renders_per_word: int = 2, unknown_per_speaker: int = 6, workers: int = 4):
    """Speak every keyword with every speaker (random speed/pitch) plus some unknown words.

    Returns (utterances, labels, speaker names): a list of float32 arrays and two lists of str.
    """
    rng = np.random.default_rng(seed)
    jobs = []
    for voice in speakers():
        for word in KEYWORDS:
            for _ in range(renders_per_word):
                jobs.append((word, word, voice, int(rng.integers(120, 200)), int(rng.integers(25, 75))))
        for word in rng.choice(UNKNOWN_WORDS, size=unknown_per_speaker, replace=False):
            jobs.append((str(word), "unknown", voice, int(rng.integers(120, 200)), int(rng.integers(25, 75))))
    with ThreadPoolExecutor(workers) as pool:  # each job is a subprocess, so threads run in parallel
        audio = list(pool.map(lambda j: speak(j[0], j[2], j[3], j[4]), jobs))
    return audio, [j[1] for j in jobs], [j[2] for j in jobs]


def background_noise(rng: np.random.Generator, n: int = CLIP_SAMPLES) -> np.ndarray:
    """Coloured noise plus an occasional mains hum, as a stand-in for room noise."""
    white = rng.standard_normal(n)
    colour = rng.choice(["white", "pink", "brown"])
    if colour != "white":
        spectrum = np.fft.rfft(white)
        f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
        spectrum /= np.sqrt(f) if colour == "pink" else f
        white = np.fft.irfft(spectrum, n)
    noise = white / (np.std(white) + 1e-9)
    if rng.random() < 0.3:
        t = np.arange(n) / SAMPLE_RATE
        noise += 0.5 * np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * t + rng.random() * 6.28)
    return noise.astype(np.float32)


def make_clip(utterance, rng: np.random.Generator, snr_db=(5.0, 30.0)) -> np.ndarray:
    """Place an utterance (or nothing, for silence) at a random offset in 1 s of noise; random gain."""
    clip = np.zeros(CLIP_SAMPLES, np.float32)
    if utterance is not None:
        speech = utterance[:CLIP_SAMPLES]
        start = int(rng.integers(0, CLIP_SAMPLES - speech.size + 1))
        clip[start : start + speech.size] = speech / (np.abs(speech).max() + 1e-9)
        signal_rms = np.sqrt(np.mean(speech**2) / (np.abs(speech).max() + 1e-9) ** 2)
    else:
        signal_rms = 0.1
    snr = rng.uniform(*snr_db)
    clip += background_noise(rng) * signal_rms / 10 ** (snr / 20)
    clip *= rng.uniform(0.1, 0.9) / (np.abs(clip).max() + 1e-9)
    return clip


def make_clips(utterances, labels, voices, *, test: bool, copies: int, seed: int):
    """Clips and integer labels for one split (test: held-out speakers), balanced with silence clips."""
    rng = np.random.default_rng(seed)
    keep = [i for i, v in enumerate(voices) if (v.split("+")[1] in TEST_VARIANTS) == test]
    per_class = sum(labels[i] == KEYWORDS[0] for i in keep)
    unknown = [i for i in keep if labels[i] == "unknown"]
    unknown = set(rng.choice(unknown, size=min(per_class, len(unknown)), replace=False).tolist())
    chosen = [i for i in keep if labels[i] != "unknown" or i in unknown]
    clips, y = [], []
    for _ in range(copies):
        for i in chosen:
            clips.append(make_clip(utterances[i], rng))
            y.append(LABELS.index(labels[i]))
        for _ in range(per_class):
            clips.append(make_clip(None, rng))
            y.append(LABELS.index("silence"))
    return np.stack(clips), np.asarray(y, np.int64)


def _self_check():
    rng = np.random.default_rng(0)
    clip = make_clip(np.sin(np.linspace(0, 300, 4000)).astype(np.float32), rng)
    assert clip.shape == (CLIP_SAMPLES,) and np.abs(clip).max() <= 1.0 and len(LABELS) == 11
