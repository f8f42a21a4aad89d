#!/usr/bin/python3
"""Makes fixtures/torchscript/: a small keyword-spotting network exported as TorchScript, for the engine's
TorchScript tests (src/torch/script-module.test.ts, src/models/torchscript.test.ts).

usage: /usr/bin/python3 scripts/make-torchscript-fixture.py   (Debian python3-torch 1.13)

The network is of no architecture kwshield ships and carries its own front-end, as a user's model would:
raw 16 kHz waveform [batch, 1600] -> a fixed cosine filterbank (a buffer, strided conv1d) -> log(1 + |.|)
-> Conv2d 1->6 3x3 + BatchNorm + ReLU -> depthwise Conv2d 6->6 3x3 (groups 6, no bias) + BatchNorm + ReLU
-> adaptive average pool 2x4 -> Linear 48->16 + ReLU -> Linear 16->4 (the classifier).

Written:
  kws-scripted.pt     torch.jit.script(model): BatchNorm follows train()/eval()
  kws-traced-eval.pt  torch.jit.trace(model.eval(), x): BatchNorm frozen in eval mode
  kws-state-dict.pt   torch.save(model.state_dict()): a PyTorch checkpoint that is not TorchScript (refused)
  kws-wave16k-scd10.pt  the same network with 10 classes (the SCD-10 words, in that order), scripted: it takes
                      one-second clips [batch, 16000] as kwshield's data folders hold them, for the end-to-end
                      tests of kwshield import / eval / defend (test/own-model.test.ts); its weights are
                      random (seed 34), the tests need a model of that shape, not a good one
  kws-wave16k-odd-scd10.pt  the same with its last conv's weights used by F.conv2d in the parent's forward (as
                      kws-odd-scripted.pt does): a run folder whose defenses that hook that conv refuse, naming
                      it (seed 35)
  expected.json       eval-mode logits of both on the fixed input; the parameters and buffers after one
                      train-mode SGD step (lr 0.1, momentum 0, cross-entropy on labels 0..3) of the scripted
                      model, in state_dict order. Tensors are {"shape", "dtype": "float32", "data": base64 of
                      little-endian float32}.

The fixed input is exact in float32 in any language: x[b, n] = (((b * 1600 + n) * 7919) % 2001 - 1000) / 1024.

usage: /usr/bin/python3 scripts/make-torchscript-fixture.py --hooks   writes only the forward-hook fixtures
(src/models/torchscript-hooks.test.ts), leaving the files above as they are:
  kws-nested-scripted.pt  torch.jit.script of TinyNested: submodules inside submodules (a Sequential of
                          residual blocks with an optional downsample Sequential, as a ResNet has), input
                          [batch, 1, 12, 10] features, 3 classes
  expected-hooks.json     eval-mode activations caught by PyTorch forward hooks (register_forward_hook on the
                          eager models, TinyKws with the weights of kws-state-dict.pt): per layer the mean over
                          every dim but the channel dim (1) of its output, and the classifier's input in full;
                          TinyNested's logits. Nested input: f[b, c, h, w] = (((i * 7919) % 2001) - 1000) / 1024
                          with i the flat index.
  kws-odd-scripted.pt     torch.jit.script of TinyOdd: its second conv's weights are used by F.conv2d in the
                          parent's forward instead of calling the layer, so no forward hook on it can run
                          (defenses that need one refuse, naming it)
"""
import base64
import json
import os

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "torchscript")
SAMPLES = 1600
BATCH = 4
CLASSES = 4
LR = 0.1


class TinyKws(nn.Module):
    def __init__(self, classes: int = CLASSES):
        super().__init__()
        # The model's own front-end: 8 cosine filters of 64 taps, hop 32 (a fixed buffer, not trained).
        n = torch.arange(64, dtype=torch.float32)
        window = 0.5 - 0.5 * torch.cos(2 * torch.pi * n / 63)
        bank = torch.stack([window * torch.cos(2 * torch.pi * (k + 1) * 2 * n / 64) for k in range(8)])
        self.register_buffer("filterbank", bank.unsqueeze(1) / 8)
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False)
        self.bn_dw = nn.BatchNorm2d(6)
        self.pool = nn.AdaptiveAvgPool2d((2, 4))
        self.hidden = nn.Linear(48, 16)
        self.classifier = nn.Linear(16, classes)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.log1p(torch.abs(F.conv1d(wave.unsqueeze(1), self.filterbank, stride=32)))
        x = F.relu(self.bn(self.conv(spec.unsqueeze(1))))
        x = F.relu(self.bn_dw(self.dw(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(F.relu(self.hidden(x)))


class NestedBlock(nn.Module):
    def __init__(self, i, o, s=1):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(i, o, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(o)
        self.conv2, self.bn2 = nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o)
        self.downsample = nn.Sequential(nn.Conv2d(i, o, 1, stride=s, bias=False), nn.BatchNorm2d(o)) if (s != 1 or i != o) else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class TinyNested(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.layers = nn.Sequential(NestedBlock(4, 4), NestedBlock(4, 8, 2))
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = self.layers(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class TinyKwsOdd(TinyKws):
    """TinyKws whose depthwise conv is not called as a layer: F.conv2d reads its weight, so no hook on it runs."""

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.log1p(torch.abs(F.conv1d(wave.unsqueeze(1), self.filterbank, stride=32)))
        x = F.relu(self.bn(self.conv(spec.unsqueeze(1))))
        x = F.relu(self.bn_dw(F.conv2d(x, self.dw.weight, None, padding=1, groups=6)))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(F.relu(self.hidden(x)))


class TinyOdd(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = F.relu(self.bn2(F.conv2d(x, self.conv2.weight, self.conv2.bias, padding=1)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


NESTED_SHAPE = [4, 1, 12, 10]


def nested_input():
    i = torch.arange(int(np.prod(NESTED_SHAPE)), dtype=torch.int64).reshape(NESTED_SHAPE)
    return (((i * 7919) % 2001) - 1000).to(torch.float32) / 1024


def caught(model, x, layers, full):
    """Outputs (channel means) of `layers` and the inputs of `full` caught by forward hooks in eval mode."""
    out = {}
    named = dict(model.named_modules())

    def hook(name):
        def fn(_m, inputs, output):
            dims = [d for d in range(output.dim()) if d != 1]
            out[name + ".output.mean"] = enc(output.mean(dims))
            if name in full:
                out[name + ".input"] = enc(inputs[0])
        return fn

    handles = [named[n].register_forward_hook(hook(n)) for n in layers]
    with torch.no_grad():
        logits = model.eval()(x)
    for h in handles:
        h.remove()
    return out, logits


def hooks_fixture():
    torch.set_num_threads(1)
    flat = TinyKws()
    flat.load_state_dict(torch.load(os.path.join(OUT, "kws-state-dict.pt")))
    flat_caught, _ = caught(flat, fixed_input(), ["conv", "bn", "dw", "bn_dw", "hidden", "classifier"], ["classifier"])
    torch.manual_seed(34)
    nested = TinyNested()
    with torch.no_grad():
        for m in nested.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features) + 0.5)
                m.weight.copy_(torch.rand(m.num_features) + 0.5)
                m.bias.copy_(torch.randn(m.num_features) * 0.1)
    nested.eval()
    torch.jit.script(nested).save(os.path.join(OUT, "kws-nested-scripted.pt"))
    torch.jit.script(TinyOdd().eval()).save(os.path.join(OUT, "kws-odd-scripted.pt"))
    layers = ["bn", "layers.0", "layers.0.bn1", "layers.1.conv1", "layers.1.bn2", "layers.1.downsample", "layers.1.downsample.1", "fc"]
    nested_caught, logits = caught(nested, nested_input(), layers, ["fc"])
    expected = {
        "torch": torch.__version__,
        "kws": flat_caught,
        "nestedInput": "f[b, c, h, w] = (((i * 7919) % 2001) - 1000) / 1024, i the flat index",
        "nestedShape": NESTED_SHAPE,
        "nested": nested_caught,
        "nestedLogits": enc(logits),
    }
    with open(os.path.join(OUT, "expected-hooks.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    for name in ("kws-nested-scripted.pt", "kws-odd-scripted.pt", "expected-hooks.json"):
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


def fixed_input():
    i = torch.arange(BATCH * SAMPLES, dtype=torch.int64).reshape(BATCH, SAMPLES)
    return (((i * 7919) % 2001) - 1000).to(torch.float32) / 1024


def enc(t):
    raw = t.detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()
    return {"shape": list(t.shape), "dtype": "float32", "data": base64.b64encode(raw).decode("ascii")}


def main():
    torch.manual_seed(33)
    torch.set_num_threads(1)
    model = TinyKws()
    # BatchNorm starts at mean 0, var 1, scale 1, shift 0 in PyTorch: give it running statistics and affine
    # values of its own, so eval and train mode differ and every tensor is exercised.
    with torch.no_grad():
        for bn in (model.bn, model.bn_dw):
            bn.running_mean.copy_(torch.randn(6) * 0.2)
            bn.running_var.copy_(torch.rand(6) + 0.5)
            bn.weight.copy_(torch.rand(6) + 0.5)
            bn.bias.copy_(torch.randn(6) * 0.1)
            bn.num_batches_tracked.fill_(10)
    x = fixed_input()
    labels = torch.arange(BATCH) % CLASSES
    os.makedirs(OUT, exist_ok=True)

    scripted = torch.jit.script(model)
    scripted.eval()
    scripted.save(os.path.join(OUT, "kws-scripted.pt"))
    traced = torch.jit.trace(model.eval(), x)
    traced.save(os.path.join(OUT, "kws-traced-eval.pt"))
    torch.save(model.state_dict(), os.path.join(OUT, "kws-state-dict.pt"))
    with torch.no_grad():
        logits = scripted(x)
        traced_logits = traced(x)

    # One SGD step on a fresh load of the scripted archive, in train mode.
    step = torch.jit.load(os.path.join(OUT, "kws-scripted.pt"))
    step.train()
    opt = torch.optim.SGD(step.parameters(), lr=LR, momentum=0)
    opt.zero_grad()
    loss = F.cross_entropy(step(x), labels)
    loss.backward()
    opt.step()
    after = [{"name": k, **enc(v)} for k, v in step.state_dict().items() if v.dtype == torch.float32]

    expected = {
        "torch": torch.__version__,
        "input": "x[b, n] = (((b * 1600 + n) * 7919) % 2001 - 1000) / 1024",
        "inputShape": [BATCH, SAMPLES],
        "classes": CLASSES,
        "labels": labels.tolist(),
        "lr": LR,
        "logits": enc(logits),
        "tracedLogits": enc(traced_logits),
        "loss": loss.item(),
        "afterStep": after,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    torch.manual_seed(34)
    torch.jit.script(TinyKws(classes=10).eval()).save(os.path.join(OUT, "kws-wave16k-scd10.pt"))
    torch.manual_seed(35)
    torch.jit.script(TinyKwsOdd(classes=10).eval()).save(os.path.join(OUT, "kws-wave16k-odd-scd10.pt"))
    for name in ("kws-scripted.pt", "kws-traced-eval.pt", "kws-state-dict.pt", "expected.json", "kws-wave16k-scd10.pt", "kws-wave16k-odd-scd10.pt"):
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    import sys

    hooks_fixture() if "--hooks" in sys.argv[1:] else main()
