"""A keyword spotter of an architecture kwshield does not ship, with its own front-end inside, and the data
reading both example scripts share (examples/own-model/README.md; docs/own-model.md).

The model is a DS-CNN (depthwise-separable CNN, as in Zhang et al., "Hello Edge: Keyword Spotting on
Microcontrollers", 2017) that takes raw 16 kHz waveforms [batch, 16000]: its first submodule computes a
log-mel spectrogram with torch ops (torch.stft, a fixed mel filterbank held as a buffer, log), so the exported
TorchScript archive carries its front-end and kwshield imports it with --input waveform-16k-1s.

Data: a kwshield data folder (or Speech Commands itself) in the Speech Commands layout: DIR/<word>/<clip>.wav,
16-bit PCM at 16 kHz, with validation_list.txt and testing_list.txt; read with Python's wave module and numpy
exactly as kwshield reads it (int16 / 32768, cut or zero-padded at the end to 16000 samples).
"""
import math
import os
import wave

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

SAMPLE_RATE = 16000
SAMPLES = 16000


def hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_filterbank(n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """HTK-scale triangular filters [n_mels, n_fft // 2 + 1] (no area normalisation)."""
    bins = np.linspace(0, SAMPLE_RATE / 2, n_fft // 2 + 1)
    mels = np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    fb = np.zeros((n_mels, len(bins)), dtype=np.float32)
    for m in range(n_mels):
        lo, mid, hi = hz[m], hz[m + 1], hz[m + 2]
        up = (bins - lo) / (mid - lo)
        down = (hi - bins) / (hi - mid)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    return torch.from_numpy(fb)


class LogMel(nn.Module):
    """Raw waveform [batch, samples] -> log-mel [batch, 1, n_mels, frames]: 30 ms Hann window, 10 ms hop."""

    def __init__(self, n_fft: int = 480, hop: int = 160, n_mels: int = 40):
        super().__init__()
        self.n_fft = n_fft
        self.hop = hop
        self.register_buffer("window", torch.hann_window(n_fft))
        self.register_buffer("mel", mel_filterbank(n_fft, n_mels, 20.0, 7600.0))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, hop_length=self.hop, window=self.window, center=True, return_complex=True)
        power = spec.real * spec.real + spec.imag * spec.imag
        return torch.log(torch.matmul(self.mel, power) + 1e-6).unsqueeze(1)


class DsBlock(nn.Module):
    """Depthwise 3x3 + BatchNorm + ReLU, then pointwise 1x1 + BatchNorm + ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.bn_dw = nn.BatchNorm2d(channels)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn_pw = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn_dw(self.depthwise(x)))
        return F.relu(self.bn_pw(self.pointwise(x)))


class DsCnn(nn.Module):
    def __init__(self, classes: int, channels: int = 64, blocks: int = 4):
        super().__init__()
        self.frontend = LogMel()
        # Normalises the log-mel values (about -14..5) with statistics learned in training.
        self.input_bn = nn.BatchNorm2d(1)
        self.stem = nn.Conv2d(1, channels, (10, 4), stride=2, padding=(5, 1), bias=False)
        self.stem_bn = nn.BatchNorm2d(channels)
        self.blocks = nn.Sequential(*[DsBlock(channels) for _ in range(blocks)])
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.input_bn(self.frontend(wave))
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.blocks(x)
        x = torch.mean(x, dim=(2, 3))
        return self.classifier(self.dropout(x))


def read_clip(path: str) -> np.ndarray:
    """One clip as float32 [16000]: int16 / 32768, cut or zero-padded at the end (as kwshield reads it)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1 or w.getframerate() != SAMPLE_RATE:
            raise SystemExit(f"{path}: expected 16-bit mono PCM at 16 kHz")
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    out = np.zeros(SAMPLES, dtype=np.float32)
    out[: min(SAMPLES, len(x))] = x[:SAMPLES]
    return out


def write_clip(path: str, x: np.ndarray) -> None:
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def word_folders(root: str) -> list:
    return sorted(d for d in os.listdir(root) if not d.startswith(("_", ".")) and os.path.isdir(os.path.join(root, d)))


def read_split(root: str, words: list, split: str) -> tuple:
    """(paths, labels, files) of a split by the official lists: train is every clip in neither list."""
    listed = {}
    for name, file in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        with open(os.path.join(root, file)) as f:
            for line in f:
                if line.strip():
                    listed[line.strip()] = name
    paths, labels, files = [], [], []
    for label, word in enumerate(words):
        for clip in sorted(os.listdir(os.path.join(root, word))):
            rel = f"{word}/{clip}"
            if clip.endswith(".wav") and listed.get(rel, "train") == split:
                paths.append(os.path.join(root, rel))
                labels.append(label)
                files.append(rel)
    return paths, labels, files


def read_folder(root: str, words: list) -> tuple:
    """Every clip of a folder in the Speech Commands layout (a triggered folder: no lists), labelled by folder."""
    paths, labels = [], []
    for word in word_folders(root):
        if word not in words:
            raise SystemExit(f"{root}/{word}: not one of the model's classes ({', '.join(words)})")
        for clip in sorted(os.listdir(os.path.join(root, word))):
            if clip.endswith(".wav"):
                paths.append(os.path.join(root, word, clip))
                labels.append(words.index(word))
    return paths, labels


def load(paths: list) -> torch.Tensor:
    return torch.from_numpy(np.stack([read_clip(p) for p in paths])) if paths else torch.zeros(0, SAMPLES)


@torch.no_grad()
def predict(model, x: torch.Tensor, batch: int = 128) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)]) if len(x) else torch.zeros(0, dtype=torch.long)


def backdoor_rates(pred: torch.Tensor, labels: torch.Tensor, target: int) -> tuple:
    """ASR and RA over the clips whose true class is not the target."""
    keep = labels != target
    n = int(keep.sum())
    if n == 0:
        return float("nan"), float("nan")
    return float((pred[keep] == target).sum()) / n, float((pred[keep] == labels[keep]).sum()) / n
