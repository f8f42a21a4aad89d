#!/usr/bin/python3
"""Makes fixtures/mfcc/*.json: reference features for src/audio/frontends.ts.

usage: /usr/bin/python3 scripts/make-mfcc-fixture.py   (Debian python3-torch 1.13 + python3-torchaudio 0.13.1)

Each fixture holds a few deterministic test signals, described by parameters that the TypeScript test
recomputes with the same float64 formulas (sines, a linear chirp, uniform noise from a 32-bit LCG, an
optional gate to exact silence), rounded to float32, and the reference features of each clip as
base64 little-endian float32, time-major [frames, coefficients].

References:
  mfcc-16k, mfcc-44k, mfcc-flowmur, logmel-16k: torchaudio itself, one clip at a time (a [1, time] input, so the
    top_db floor uses that clip's maximum, as [GNFT]'s prepare_dataset.py computes it).
  mfcc-librosa, mfcc-kwt: librosa is not installed here, so librosa.feature.melspectrogram,
    power_to_db and mfcc (librosa >= 0.9 defaults: zero padding for center=True) are written out in
    numpy float64 below from librosa's documented formulas, and cross-checked against the same
    pipeline assembled from torch.stft and torchaudio's Slaney filterbank.
"""
import base64
import json
import math
import os
import sys
import warnings

import numpy as np
import torch
import torchaudio

warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "mfcc")


# ---- test signals (mirrored by synthesize() in src/audio/frontends.test.ts) -------------------------
def synthesize(p):
    """float32 signal from parameters; every step in float64 in a fixed order so TS reproduces it."""
    sr, n = p["sampleRate"], p["samples"]
    duration = n / sr
    state = p["noiseSeed"] & 0xFFFFFFFF
    gate_start, gate_end = p.get("gate", [0, n])
    out = np.zeros(n, dtype=np.float32)
    for i in range(n):
        t = i / sr
        v = 0.0
        for freq, amp, phase in p["tones"]:
            v += amp * math.sin(2 * math.pi * freq * t + phase)
        f0, f1, camp = p["chirp"]
        v += camp * math.sin(2 * math.pi * (f0 * t + (f1 - f0) * t * t / (2 * duration)))
        state = (1664525 * state + 1013904223) & 0xFFFFFFFF
        v += p["noise"] * (2 * (state / 4294967296) - 1)
        if i < gate_start or i >= gate_end:
            v = 0.0
        out[i] = v
    return out


SIGNALS_16K = [
    {"name": "tones+chirp+noise", "sampleRate": 16000, "samples": 16000,
     "tones": [[440, 0.3, 0.1], [1234.5, 0.2, 1.0], [5000, 0.05, 2.0]], "chirp": [100, 7000, 0.2],
     "noise": 0.01, "noiseSeed": 1},
    {"name": "gated burst (exact silence at both ends)", "sampleRate": 16000, "samples": 16000,
     "tones": [[220, 0.5, 0.0], [3300, 0.1, 0.5]], "chirp": [2000, 300, 0.3],
     "noise": 0.003, "noiseSeed": 7, "gate": [4000, 11000]},
]
SIGNALS_44K = [
    {"name": "tones+chirp+noise incl. near-ultrasonic", "sampleRate": 44100, "samples": 44100,
     "tones": [[440, 0.3, 0.1], [18000, 0.1, 1.0], [21000, 0.05, 2.0]], "chirp": [100, 20000, 0.2],
     "noise": 0.01, "noiseSeed": 3},
    {"name": "gated burst (exact silence at both ends)", "sampleRate": 44100, "samples": 44100,
     "tones": [[220, 0.5, 0.0], [3300, 0.1, 0.5]], "chirp": [2000, 300, 0.3],
     "noise": 0.003, "noiseSeed": 7, "gate": [11025, 30000]},
]


# ---- torchaudio references -------------------------------------------------------------------------
def torchaudio_mfcc(sr, n_fft, hop, n_mels=128, n_mfcc=40):
    return torchaudio.transforms.MFCC(sample_rate=sr, n_mfcc=n_mfcc,
                                      melkwargs={"n_fft": n_fft, "hop_length": hop, "n_mels": n_mels})


def torchaudio_logmel(sr, n_fft, hop, n_mels):
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
    to_db = torchaudio.transforms.AmplitudeToDB("power", top_db=80)
    return lambda x: to_db(mel(x))


def per_clip(transform, x):
    """[time] float32 -> time-major [frames, coeffs] float32, one clip at a time ([1, time] input)."""
    with torch.no_grad():
        y = transform(torch.from_numpy(x).unsqueeze(0))[0]
    return y.T.contiguous().numpy().astype(np.float32)


# ---- librosa written out in numpy (float64) --------------------------------------------------------
def slaney_hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, f / f_sp)


def slaney_mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def librosa_mel_basis(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    """librosa.filters.mel(htk=False, norm='slaney'): [n_mels, 1 + n_fft // 2]."""
    fmax = sr / 2 if fmax is None else fmax
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = slaney_mel_to_hz(np.linspace(slaney_hz_to_mel(fmin), slaney_hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return weights


def librosa_power_spectrogram(y, n_fft, hop, center):
    """|librosa.stft(y, n_fft, hop, window='hann', center, pad_mode='constant')|^2: [1 + n_fft//2, frames]."""
    y = np.asarray(y, dtype=np.float64)
    if center:
        y = np.pad(y, (n_fft // 2, n_fft // 2), mode="constant")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # get_window('hann', fftbins=True)
    frames = 1 + (len(y) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spectrum = np.fft.rfft(y[idx] * window, axis=1)
    return (np.abs(spectrum) ** 2).T


def power_to_db(S, amin=1e-10, top_db=80.0):
    log_spec = 10.0 * np.log10(np.maximum(amin, S))  # ref = 1.0
    return np.maximum(log_spec, log_spec.max() - top_db)


def dct_ortho(x, n_out):
    """scipy.fftpack.dct(x, type=2, axis=0, norm='ortho')[:n_out] for x [n, frames]."""
    n = x.shape[0]
    k = np.arange(n_out)[:, None]
    basis = np.cos(np.pi / n * (np.arange(n)[None, :] + 0.5) * k) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return basis @ x


def librosa_mfcc(y, sr, n_fft, hop, n_mels, n_mfcc, center):
    S = librosa_mel_basis(sr, n_fft, n_mels) @ librosa_power_spectrogram(y, n_fft, hop, center)
    return dct_ortho(power_to_db(S), n_mfcc).T.astype(np.float32)  # time-major


def torch_librosa_crosscheck(y, sr, n_fft, hop, n_mels, n_mfcc, center):
    """The same librosa pipeline from torch.stft + torchaudio's Slaney filterbank (float64)."""
    x = torch.from_numpy(np.asarray(y, dtype=np.float64))
    if center:
        x = torch.nn.functional.pad(x, (n_fft // 2, n_fft // 2))
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    spec = torch.stft(x, n_fft, hop, window=window, center=False, return_complex=True).abs() ** 2
    fb = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 0.0, sr / 2, n_mels, sr, norm="slaney", mel_scale="slaney")
    mel = fb.double().T @ spec
    db = 10 * torch.log10(torch.clamp(mel, min=1e-10))
    db = torch.maximum(db, db.max() - 80)
    dct = torchaudio.functional.create_dct(n_mfcc, n_mels, "ortho").double()
    return (db.T @ dct).numpy()


# ---- output ------------------------------------------------------------------------------------------
def encode(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def write_fixture(name, reference, signals, features):
    clips = []
    for params, x, y in zip(signals, features[0], features[1]):
        clips.append({
            "signal": params,
            "signalSum": float(np.sum(x, dtype=np.float64)),
            "signalAbsSum": float(np.sum(np.abs(x), dtype=np.float64)),
            "shape": list(y.shape),
            "maxAbs": float(np.max(np.abs(y))),
            "first": [round(float(v), 5) for v in y[0, :4]],
            "data": encode(y),
        })
    doc = {
        "frontEnd": name,
        "reference": reference,
        "layout": "time-major [frames, coefficients], float32 little-endian, base64",
        "madeBy": "scripts/make-mfcc-fixture.py",
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "clips": clips,
    }
    path = os.path.join(OUT, f"{name}.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)}: {len(clips)} clips of {clips[0]['shape']} ({os.path.getsize(path)} bytes)")


def main():
    print(f"interpreter: {sys.executable} (Python {sys.version.split()[0]}), numpy {np.__version__}, "
          f"torch {torch.__version__}, torchaudio {torchaudio.__version__}")
    os.makedirs(OUT, exist_ok=True)
    x16 = [synthesize(p) for p in SIGNALS_16K]
    x44 = [synthesize(p) for p in SIGNALS_44K]

    mfcc16 = torchaudio_mfcc(16000, 400, 160)
    write_fixture("mfcc-16k", "torchaudio.transforms.MFCC(sample_rate=16000, n_mfcc=40, melkwargs={n_fft: 400, hop_length: 160, n_mels: 128}), per clip",
                  SIGNALS_16K, (x16, [per_clip(mfcc16, x) for x in x16]))
    # torchaudio's top_db floor uses the maximum over everything it is given at once: a [batch, time]
    # input shares one floor across the batch. The front-ends use per-clip floors, as [GNFT] gets them.
    with torch.no_grad():
        batched = mfcc16(torch.from_numpy(np.stack(x16))).transpose(1, 2).numpy()
    print(f"  note: mfcc-16k of the 2 clips as one [2, time] batch differs from per clip by up to "
          f"{np.max(np.abs(batched - np.stack([per_clip(mfcc16, x) for x in x16]))):.3g} (batch-wide top_db floor)")

    write_fixture("mfcc-44k", "torchaudio.transforms.MFCC(sample_rate=44100, n_mfcc=40, melkwargs={n_fft: 1103, hop_length: 441, n_mels: 128}), per clip",
                  SIGNALS_44K, (x44, [per_clip(torchaudio_mfcc(44100, 1103, 441), x) for x in x44]))
    write_fixture("mfcc-flowmur", "torchaudio.transforms.MFCC(sample_rate=16000, n_mfcc=13, melkwargs={n_fft: 2048, hop_length: 512, n_mels: 128}), per clip (FlowMur)",
                  SIGNALS_16K, (x16, [per_clip(torchaudio_mfcc(16000, 2048, 512, n_mfcc=13), x) for x in x16]))
    write_fixture("logmel-16k", "torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=40) -> AmplitudeToDB('power', top_db=80), per clip",
                  SIGNALS_16K, (x16, [per_clip(torchaudio_logmel(16000, 400, 160, 40), x) for x in x16]))

    for name, kwargs, reference in [
        ("mfcc-librosa", dict(sr=16000, n_fft=2048, hop=512, n_mels=128, n_mfcc=40, center=True),
         "librosa.feature.mfcc(y, sr=16000, n_mfcc=40) with librosa >= 0.9 defaults (n_fft 2048, hop 512, 128 Slaney mels, "
         "Slaney norm, center with zero padding, power_to_db(ref=1, amin=1e-10, top_db=80), DCT-II ortho), written out in numpy float64"),
        ("mfcc-kwt", dict(sr=16000, n_fft=480, hop=160, n_mels=40, n_mfcc=40, center=False),
         "Torch-KWT: librosa.feature.mfcc(S=power_to_db(melspectrogram(y, sr=16000, n_mels=40, n_fft=480, win_length=480, "
         "hop_length=160, center=False)), n_mfcc=40), written out in numpy float64"),
    ]:
        feats = [librosa_mfcc(x, **kwargs) for x in x16]
        worst = max(np.max(np.abs(f - torch_librosa_crosscheck(x, **kwargs))) / np.max(np.abs(f)) for f, x in zip(feats, x16))
        print(f"  {name}: numpy reference vs torch/torchaudio assembly: max relative difference {worst:.2e}")
        assert worst < 1e-5, f"{name}: the numpy librosa reference disagrees with the torch cross-check"
        write_fixture(name, reference, SIGNALS_16K, (x16, feats))


if __name__ == "__main__":
    main()
