#!/usr/bin/env python3
"""One `kwshield train` epoch, done by PyTorch: bench/epoch.ts writes the training and validation features
kwshield trained on (a safetensors file) and the recipe it ran; this script runs the same epochs on the
reference ResNet (../shared/peers/torch_reference.py, the same network) and prints one JSON line per epoch:
{"epoch", "seconds", "train_loss", "val_accuracy"}.

The loop mirrors src/experiments/train.ts: shuffled batches, the recipe's time shift (a roll along frames)
and feature noise, cross-entropy, backward, AdamW, then the validation forward in eval mode at batch 256.
The model runs in channels_last, as kwshield's does.

usage: python3 bench/torch_epoch.py --data FILE.safetensors --epochs N --batch B --lr LR --weight-decay WD
                                    --shift-max S --noise SIGMA [--threads N]
"""
import argparse, importlib.util, json, struct, time
from pathlib import Path

import torch
import torch.nn.functional as F

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "peers" / "torch_reference.py"
DTYPES = {"F32": torch.float32, "I64": torch.int64}


def load_safetensors(path):
    """The format is an 8-byte little-endian header length, a JSON header, then raw tensor bytes."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = memoryview(raw)[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[start:end]), dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--shift-max", type=int, default=5)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    spec = importlib.util.spec_from_file_location("torch_reference", REFERENCE)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    data = load_safetensors(a.data)
    x_train, y_train, x_val, y_val = data["train_features"], data["train_labels"], data["val_features"], data["val_labels"]
    classes = int(max(y_train.max(), y_val.max())) + 1
    model = reference.ResNet(classes=classes).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    for epoch in range(a.epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y_train))
        loss_sum, seen = 0.0, 0
        for b, first in enumerate(range(0, len(order), a.batch)):
            idx = order[first : first + a.batch]
            x, y = x_train[idx], y_train[idx]
            shift = (b * 7919 + epoch * 104729) % (2 * a.shift_max + 1) - a.shift_max if a.shift_max else 0
            if shift:
                x = torch.roll(x, shift, 1)
            if a.noise:
                x = x + torch.randn_like(x) * a.noise
            x = x.unsqueeze(1).contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            (logits.argmax(1) == y).sum().item()
            seen += len(idx)
        model.eval()
        correct = 0
        with torch.no_grad():
            for first in range(0, len(y_val), 256):
                xv = x_val[first : first + 256].unsqueeze(1).contiguous(memory_format=torch.channels_last)
                correct += (model(xv).argmax(1) == y_val[first : first + 256]).sum().item()
        seconds = time.perf_counter() - start
        print(json.dumps({"epoch": epoch, "seconds": round(seconds, 3), "train_loss": round(loss_sum / seen, 4), "val_accuracy": round(correct / len(y_val), 4)}), flush=True)


if __name__ == "__main__":
    main()
