#!/usr/bin/env python3
"""PyTorch twins of the model zoo (src/models/*.ts), timed the way bench/models.ts times ours.

Each network has the same layers, shapes, hyper-parameters and input shape as its TypeScript
counterpart, and the same state-dict names (so `--params` can be diffed against ours), which makes
ours / PyTorch a like-for-like ratio. The ResNet is the shared reference's own
(../shared/peers/torch_reference.py), so this ratio agrees with `npm run bench`.

Per model: one AdamW step (lr 1e-3, wd 1e-4, cross-entropy) in train mode and one no-grad forward in
eval mode on a random batch; --warmups untimed runs (2 by default), then the mean of N. One JSON line per case:
{"case": "<model>.train_step"|"<model>.eval_forward", "batch", "threads", "ms_per_step", "samples_per_s"}.
`--params` prints {"model", "params"} per model instead and times nothing.

usage: python3 bench/torch_models.py [--models a,b] [--batch N] [--steps N] [--threads N]
                                     [--layout channels_last|contiguous] [--params]
"""
import argparse
import importlib.util
import json
import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "peers" / "torch_reference.py"


def to_weight_layout(x, weight):
    """Our 2-D conv models convert their input to the layout of their first conv weight; so do these."""
    cl = torch.channels_last
    return x.contiguous(memory_format=cl) if weight.is_contiguous(memory_format=cl) and not x.is_contiguous(memory_format=cl) else x


# --- resnet (src/models/resnet.ts): the reference's ResNet, fed [batch, frames, coefficients] ---------


def resnet(classes):
    spec = importlib.util.spec_from_file_location("torch_reference", REFERENCE)
    if spec is None or not REFERENCE.exists():
        raise FileNotFoundError(f"resnet needs {REFERENCE}")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)

    class KwsResNet(reference.ResNet):
        def forward(self, x):
            x = x.unsqueeze(1) if x.dim() == 3 else x
            return super().forward(to_weight_layout(x, self.conv.weight))

    return KwsResNet(classes)


# --- smallcnn (src/models/smallcnn.ts) ---------------------------------------------------------------


def small_cnn_flat_size(frames, coefficients):
    def conv2x2(n):
        return n - 1

    def pool(n, kernel, padding):
        return (n + 2 * padding - kernel) // kernel + 1

    h, w = pool(conv2x2(frames), 1, 0), pool(conv2x2(coefficients), 3, 0)
    h, w = pool(conv2x2(h), 2, 1), pool(conv2x2(w), 2, 1)
    h, w = pool(conv2x2(h), 2, 0), pool(conv2x2(w), 2, 1)
    return 32 * h * w


class SmallCnn(nn.Module):
    def __init__(self, classes, frames=101, coefficients=40):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 64, 2), nn.BatchNorm2d(64)
        self.conv2, self.bn2 = nn.Conv2d(64, 64, 2), nn.BatchNorm2d(64)
        self.conv3, self.bn3 = nn.Conv2d(64, 32, 2), nn.BatchNorm2d(32)
        self.drop1 = nn.Dropout(0.4)
        self.fc1 = nn.Linear(small_cnn_flat_size(frames, coefficients), 128)
        self.drop2 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = x.unsqueeze(1) if x.dim() == 3 else x
        x = to_weight_layout(x, self.conv1.weight)
        # ReLU before BN, as ours (and the GN-FT port) do.
        x = F.max_pool2d(self.bn1(F.relu(self.conv1(x))), (1, 3))
        x = F.max_pool2d(self.bn2(F.relu(self.conv2(x))), 2, padding=1)
        x = F.max_pool2d(self.bn3(F.relu(self.conv3(x))), 2, padding=(0, 1))
        x = self.drop2(F.relu(self.fc1(self.drop1(x).flatten(1))))
        return self.fc2(x)


# --- lstm, lstm-large (src/models/lstm.ts) -----------------------------------------------------------


class LstmNet(nn.Module):
    def __init__(self, classes, hidden, layers, coefficients=40):
        super().__init__()
        self.lstm = nn.LSTM(coefficients, hidden, layers, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        x = x.squeeze(1) if x.dim() == 4 and x.size(1) == 1 else x
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


# --- kwt, kwt-2, kwt-3 (src/models/kwt.ts) -----------------------------------------------------------


class FeatureNorm(nn.Module):
    """Per-coefficient standardisation with stored statistics (src/nn/layers/feature-norm.ts)."""

    def __init__(self, features):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    def forward(self, x):
        return (x - self.mean) / self.std


class Kwt(nn.Module):
    def __init__(self, classes, dim, heads, mlp_dim, depth=12, frames=98, coefficients=40, dropout=0.0, embedding_dropout=0.0):
        super().__init__()
        self.input_norm = FeatureNorm(coefficients)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embedding = nn.Parameter(torch.randn(1, frames + 1, dim) * 0.02)
        self.patch_embedding = nn.Linear(coefficients, dim)
        self.dropout = nn.Dropout(embedding_dropout)

        def layer():
            return nn.TransformerEncoderLayer(dim, heads, mlp_dim, dropout, "gelu", layer_norm_eps=1e-6, batch_first=True, norm_first=False)

        self.transformer = nn.TransformerEncoder(layer(), depth)
        # Independently initialised layers, as ours (identicalInit: false), not nn.TransformerEncoder's copies.
        self.transformer.layers = nn.ModuleList(layer() for _ in range(depth))
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embedding(self.input_norm(x))
        x = torch.cat([self.cls_token.expand(x.size(0), 1, -1), x], 1)
        x = self.transformer(self.dropout(x + self.pos_embedding))
        return self.head(x[:, 0])


# --- eat, eat-m (src/models/eat.ts) ------------------------------------------------------------------


class AADownsample(nn.Module):
    """Fixed depthwise triangle low-pass [1, 2, ..., d+1, ..., 2, 1] / sum, stride d after reflect padding d."""

    def __init__(self, channels, stride):
        super().__init__()
        self.channels, self.stride = channels, stride
        taps = torch.tensor([stride + 1 - abs(i - stride) for i in range(2 * stride + 1)], dtype=torch.float32)
        self.register_buffer("filt", (taps / taps.sum()).repeat(channels, 1, 1))

    def forward(self, x):
        return F.conv1d(F.pad(x, (self.stride, self.stride), mode="reflect"), self.filt, stride=self.stride, groups=self.channels)


class Down(nn.Module):
    def __init__(self, channels, factor):
        super().__init__()
        kernel = factor + 1
        self.down = nn.Sequential(
            nn.ReflectionPad1d(kernel // 2),
            nn.Conv1d(channels, channels * 2, kernel, bias=False),
            nn.BatchNorm1d(channels * 2),
            nn.LeakyReLU(0.2),
            AADownsample(channels * 2, factor),
        )

    def forward(self, x):
        return self.down(x)


class ResBlock1dTF(nn.Module):
    def __init__(self, dim, dilation=1, kernel=15):
        super().__init__()
        self.block_t = nn.Sequential(
            nn.ReflectionPad1d(dilation * (kernel // 2)),
            nn.Conv1d(dim, dim, kernel, bias=False, dilation=dilation, groups=dim),
            nn.BatchNorm1d(dim),
            nn.LeakyReLU(0.2),
        )
        self.block_f = nn.Sequential(nn.Conv1d(dim, dim, 1, bias=False), nn.BatchNorm1d(dim), nn.LeakyReLU(0.2))
        self.shortcut = nn.Conv1d(dim, dim, 1)

    def forward(self, x):
        return self.shortcut(x) + self.block_f(x) + self.block_t(x)


class TAggregate(nn.Module):
    def __init__(self, tokens, classes, embed_dim, heads, dim_feedforward, layers, dropout):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + 1, embed_dim))
        layer = nn.TransformerEncoderLayer(embed_dim, heads, dim_feedforward, dropout, "gelu", batch_first=True)
        self.transformer_enc = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(embed_dim))
        self.fc = nn.Linear(embed_dim, classes)

    def forward(self, x):
        x = x.permute(0, 2, 1)
        x = torch.cat([self.cls_token.expand(x.size(0), 1, -1), x], 1)
        return self.fc(self.transformer_enc(x + self.pos_embed)[:, 0])


class Eat(nn.Module):
    def __init__(self, classes, nf=16, embed_dim=128, layers=4, heads=8, dim_feedforward=512, factors=(4, 4, 4), dropout=0.1, samples=16384):
        super().__init__()
        self.start = nn.Sequential(nn.ReflectionPad1d(3), nn.Conv1d(1, nf, 7, bias=False), nn.BatchNorm1d(nf), nn.LeakyReLU(0.2))
        down = []
        for i, factor in enumerate(factors):
            down.append(Down(nf, factor))
            nf *= 2
            if i % 2 == 0:
                down.append(ResBlock1dTF(nf, 1, 15))
        self.down = nn.Sequential(*down)
        down2 = []
        for factor in (2, 2):
            down2 += [ResBlock1dTF(nf, dilation, 15) for dilation in (1, 3, 9)]
            down2.append(Down(nf, factor))
            nf *= 2
        self.down2 = nn.Sequential(*down2)
        self.project = nn.Conv1d(nf, embed_dim, 1)
        total_factor = math.prod([*factors, 2, 2])
        self.tf = TAggregate(samples // total_factor, classes, embed_dim, heads, dim_feedforward, layers, dropout)
        # Same initialisation as ours: conv weights N(0, 0.02), conv and Linear biases 0.
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Conv1d):
                    m.weight.normal_(0, 0.02)
                if isinstance(m, (nn.Conv1d, nn.Linear)) and m.bias is not None:
                    m.bias.zero_()

    def forward(self, x):
        wave = x.unsqueeze(1) if x.dim() == 2 else x
        # Peak normalisation to 0.95 inside the model, as ours.
        wave = wave * (wave.abs().amax(2, keepdim=True).clamp(1e-8).reciprocal() * 0.95)
        return self.tf(self.project(self.down2(self.down(self.start(wave)))))


# name -> (builder(classes), one clip's input shape), in the registry's order (src/models/index.ts).
MODELS = {
    "resnet": (resnet, (101, 40)),
    "lstm": (lambda c: LstmNet(c, 128, 2), (101, 40)),
    "lstm-large": (lambda c: LstmNet(c, 768, 3), (101, 40)),
    "smallcnn": (SmallCnn, (101, 40)),
    "kwt": (lambda c: Kwt(c, 64, 1, 256), (98, 40)),
    "kwt-2": (lambda c: Kwt(c, 128, 2, 512), (98, 40)),
    "kwt-3": (lambda c: Kwt(c, 192, 3, 768), (98, 40)),
    "eat": (lambda c: Eat(c), (16384,)),
    "eat-m": (lambda c: Eat(c, nf=32, embed_dim=256, layers=6, heads=16, dim_feedforward=2048), (16384,)),
}


def build(name, classes, layout):
    model = MODELS[name][0](classes)
    # As buildModel: only models with 4-D weights change layout.
    if layout == "channels_last" and any(p.dim() == 4 for p in model.parameters()):
        model = model.to(memory_format=torch.channels_last)
    return model


def timed(fn, steps, warmups=2):
    for _ in range(warmups):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmups", type=int, default=2)
    ap.add_argument("--layout", choices=["channels_last", "contiguous"], default="channels_last")
    ap.add_argument("--params", action="store_true", help="print parameter counts only")
    a = ap.parse_args()
    names = a.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; available: {', '.join(MODELS)}")
    torch.set_num_threads(a.threads)
    classes = 10

    def emit(case, ms):
        row = {"case": case, "batch": a.batch, "threads": a.threads, "ms_per_step": round(ms, 2), "samples_per_s": round(a.batch / ms * 1000, 1)}
        print(json.dumps(row), flush=True)

    for name in names:
        torch.manual_seed(0)
        model = build(name, classes, a.layout).train()
        if a.params:
            print(json.dumps({"model": name, "params": sum(p.numel() for p in model.parameters())}), flush=True)
            continue
        x = torch.randn(a.batch, *MODELS[name][1])
        y = torch.randint(0, classes, (a.batch,))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)

        def train_step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        emit(f"{name}.train_step", timed(train_step, a.steps, a.warmups))
        model.eval()
        with torch.no_grad():
            emit(f"{name}.eval_forward", timed(lambda: model(x), a.steps, a.warmups))


if __name__ == "__main__":
    main()
