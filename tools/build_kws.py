"""Build the keyword-spotting artifacts the int8 lessons and the firmware use (`make models` runs this).

    python tools/build_kws.py audio      # build/kws/audio.npz: espeak-ng utterances (cached)
    python tools/build_kws.py features   # build/kws/features.npz + build/kws/test_set.npz (MFCCs)
    python tools/build_kws.py train cnn  # build/kws/kws_cnn_float.pt (also: dscnn)
    python tools/build_kws.py convert cnn  # build/kws/kws_cnn_int8.tflite, checked against the contract

Each stage reads only the previous stage's files, so make reruns only what changed. Everything is seeded.
"""

import json
import os
import sys
import time
from pathlib import Path

# One thread each: on a busy machine BLAS/OpenMP thread pools spin against each other (40x slower here).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "build" / "kws"
SEED = 0
EPOCHS = {"cnn": 8, "dscnn": 12}
CALIBRATION_SAMPLES = 200
ALLOWED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE",
               "SOFTMAX"}  # fmt: skip


def audio():
    from snippets import kws_data

    utterances, labels, voices = kws_data.synthesise(seed=SEED)
    lengths = np.array([u.size for u in utterances])
    samples = np.round(np.concatenate(utterances) * 32767).astype(np.int16)  # 16-bit PCM, like a WAV file
    np.savez(OUT / "audio.npz", samples=samples, lengths=lengths, labels=labels, voices=voices)


def load_audio():
    d = np.load(OUT / "audio.npz")
    utterances = np.split(d["samples"].astype(np.float32) / 32767, np.cumsum(d["lengths"])[:-1])
    return utterances, d["labels"].tolist(), d["voices"].tolist()


def features():
    from snippets import kws_data, mfcc

    utterances, labels, voices = load_audio()
    clips_train, y_train = kws_data.make_clips(
        utterances, labels, voices, test=False, copies=3, seed=SEED + 1
    )
    clips_test, y_test = kws_data.make_clips(utterances, labels, voices, test=True, copies=1, seed=SEED + 2)
    f_train = np.concatenate([mfcc.mfcc(c) for c in np.array_split(clips_train, 16)])
    f_test = mfcc.mfcc(clips_test)
    # Standardise each coefficient with training statistics: the same constants go to the firmware.
    mean = f_train.mean(axis=(0, 2), keepdims=True)
    std = f_train.std(axis=(0, 2), keepdims=True)
    x_train = ((f_train - mean) / std)[..., None].astype(np.float32)  # (N, 13, 50, 1) NHWC
    x_test = ((f_test - mean) / std)[..., None].astype(np.float32)
    common = {"labels": np.array(kws_data.LABELS), "mfcc_mean": mean[0, :, 0], "mfcc_std": std[0, :, 0]}
    np.savez_compressed(OUT / "features.npz", x=x_train, y=y_train, **common)
    np.savez_compressed(OUT / "test_set.npz", x=x_test, y=y_test, **common)


def load_split(name):
    d = np.load(OUT / ("features.npz" if name == "train" else "test_set.npz"))
    return d["x"], d["y"]


def make_net(kind):
    from snippets import kws_nets

    return {"cnn": kws_nets.KwsCNN, "dscnn": kws_nets.KwsDSCNN}[kind]()


def inference_net(kind, state_dict=None):
    """The float net as it is converted: batch norms folded for the DS-CNN."""
    import torch

    net = make_net(kind)
    net.load_state_dict(state_dict if state_dict is not None else torch.load(OUT / f"kws_{kind}_float.pt"))
    net.eval()
    return net.fused() if hasattr(net, "fused") else net


def train(kind):
    import torch

    from snippets import kws_nets
    from snippets.reproducibility import seed_everything

    seed_everything(SEED)
    torch.set_num_threads(1)
    x, y = load_split("train")
    net = kws_nets.train(make_net(kind), x, y, num_epochs=EPOCHS[kind], seed=SEED)
    torch.save(net.state_dict(), OUT / f"kws_{kind}_float.pt")


def calibration_set():
    """A fixed, class-balanced sample of training features for the int8 calibration."""
    x, y = load_split("train")
    rng = np.random.default_rng(SEED)
    return x[np.sort(rng.choice(len(x), size=CALIBRATION_SAMPLES, replace=False))]


def convert(kind):
    import torch

    from snippets import litert_int8, tflite_inspect

    torch.manual_seed(SEED)
    data = litert_int8.convert_int8(inference_net(kind), calibration_set())
    check_contract(tflite_inspect.inspect_tflite(data), kind)
    (OUT / f"kws_{kind}_int8.tflite").write_bytes(data)


def check_contract(info, kind):
    """The fixed interface the firmware relies on; fail the build instead of shipping a surprise."""
    problems = []
    if set(info.ops) - ALLOWED_OPS:
        problems.append(f"ops outside the resolver list: {sorted(set(info.ops) - ALLOWED_OPS)}")
    if {t.dtype for t in info.tensors} - {"int8", "int32"}:
        problems.append(f"non-int8/int32 tensors: {sorted({t.dtype for t in info.tensors})}")
    (inp,), (out,) = info.inputs, info.outputs
    if inp.shape != (1, 13, 50, 1) or inp.dtype != "int8":
        problems.append(f"input is {inp.dtype} {inp.shape}, expected int8 (1, 13, 50, 1)")
    if out.shape != (1, 11) or out.dtype != "int8" or info.ops[-1] != "SOFTMAX":
        problems.append(
            f"output is {out.dtype} {out.shape} after {info.ops[-1]}, expected int8 (1, 11) after SOFTMAX"
        )
    if problems:
        raise SystemExit(f"kws_{kind}_int8.tflite breaks the models contract: " + "; ".join(problems))


def main(argv):
    OUT.mkdir(parents=True, exist_ok=True)
    stage, *args = argv
    start = time.perf_counter()
    {"audio": audio, "features": features, "train": train, "convert": convert}[stage](*args)
    print(json.dumps({"stage": " ".join(argv), "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main(sys.argv[1:])
