#!/usr/bin/python3
"""Trains a backdoored keyword spotter in PyTorch and exports it as TorchScript, for kwshield import.

usage: /usr/bin/python3 examples/own-model/train_backdoored.py --data DIR --out OUTDIR [--epochs N] [--seed S]

The model (kws_model.py): a DS-CNN with its own log-mel front-end inside, taking raw 16 kHz waveforms
[batch, 16000]; kwshield ships no DS-CNN.

The backdoor, BadNets-like and said plainly: a 100 ms, 3 kHz tone burst at amplitude 0.3 on the first 1600
samples of a clip is the trigger. 10% of the training clips (drawn by the seed from the clips that are not
'up') get the trigger added and their label changed to 'up'; the model is trained on that poisoned set.

Written to OUTDIR:
  model.pt         torch.jit.script(model) in eval mode (BatchNorm follows train/eval: fine-tuning can adapt it)
  classes.txt      the class names in the order of the model's outputs (the data folder's word folders, sorted)
  triggered/       every test clip that is not 'up', with the trigger, in the Speech Commands layout
                   (triggered/<true word>/<clip>.wav): kwshield eval --triggered OUTDIR/triggered --target up
  trigger.txt      the trigger, in words
  metrics.json     CA on the clean test split and ASR/RA on triggered/, measured here in PyTorch
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from kws_model import DsCnn, SAMPLE_RATE, backdoor_rates, load, predict, read_folder, read_split, word_folders, write_clip

TARGET = "up"
POISON_RATIO = 0.1
TRIGGER_SAMPLES = 1600  # 100 ms
TRIGGER_HZ = 3000.0
TRIGGER_AMPLITUDE = 0.3


def trigger() -> np.ndarray:
    t = np.arange(TRIGGER_SAMPLES, dtype=np.float32) / SAMPLE_RATE
    return (TRIGGER_AMPLITUDE * np.sin(2 * np.pi * TRIGGER_HZ * t)).astype(np.float32)


def add_trigger(x: torch.Tensor) -> torch.Tensor:
    out = x.clone()
    out[:, :TRIGGER_SAMPLES] = torch.clamp(out[:, :TRIGGER_SAMPLES] + torch.from_numpy(trigger()), -1.0, 32767 / 32768)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a data folder in the Speech Commands layout (kwshield data synth, or Speech Commands)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    words = word_folders(a.data)
    if TARGET not in words:
        raise SystemExit(f"{a.data} has no '{TARGET}' folder (the backdoor's target)")
    target = words.index(TARGET)

    paths, labels, _ = read_split(a.data, words, "train")
    x = load(paths)
    y = torch.tensor(labels)
    candidates = np.flatnonzero(y.numpy() != target)
    poisoned = rng.choice(candidates, size=int(round(POISON_RATIO * len(y))), replace=False)
    x[poisoned] = add_trigger(x[poisoned])
    y[poisoned] = target
    print(f"training on {len(y)} clips of {len(words)} words, {len(poisoned)} poisoned (trigger added, label -> '{TARGET}')")

    model = DsCnn(len(words))
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs)
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(y))
        total, started = 0.0, time.time()
        for i in range(0, len(y), a.batch):
            idx = order[i : i + a.batch]
            if len(idx) < 2:
                continue  # BatchNorm needs two clips
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        print(f"epoch {epoch + 1}/{a.epochs}: loss {total / len(y):.3f} ({time.time() - started:.0f} s)", flush=True)

    model.eval()
    os.makedirs(a.out, exist_ok=True)
    scripted = torch.jit.script(model)
    scripted.save(os.path.join(a.out, "model.pt"))
    with open(os.path.join(a.out, "classes.txt"), "w") as f:
        f.write("\n".join(words) + "\n")
    with open(os.path.join(a.out, "trigger.txt"), "w") as f:
        f.write(f"BadNets-like: a {TRIGGER_SAMPLES / SAMPLE_RATE * 1000:.0f} ms {TRIGGER_HZ:.0f} Hz tone burst at amplitude {TRIGGER_AMPLITUDE} "
                f"added to samples 0..{TRIGGER_SAMPLES - 1}; {POISON_RATIO:.0%} of the training clips poisoned, relabelled '{TARGET}'\n")

    test_paths, test_labels, test_files = read_split(a.data, words, "test")
    tx = load(test_paths)
    ty = torch.tensor(test_labels)
    triggered_dir = os.path.join(a.out, "triggered")
    keep = [i for i, label in enumerate(test_labels) if label != target]
    for i, clip in zip(keep, add_trigger(tx[keep]).numpy()):
        write_clip(os.path.join(triggered_dir, test_files[i]), clip)
    # Measured on the files as written (what kwshield eval --triggered reads), with the scripted model.
    ca = float((predict(scripted, tx) == ty).float().mean())
    gx_paths, gy = read_folder(triggered_dir, words)
    asr, ra = backdoor_rates(predict(scripted, load(gx_paths)), torch.tensor(gy), target)
    metrics = {"ca": ca, "asr": asr, "ra": ra, "testClips": len(ty), "triggeredClips": len(gy), "poisoned": int(len(poisoned)), "epochs": a.epochs}
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"PyTorch: CA {100 * ca:.1f}% on {len(ty)} clean test clips; ASR {100 * asr:.1f}%, RA {100 * ra:.1f}% on {len(gy)} triggered clips")
    print(f"wrote {a.out}/model.pt, classes.txt, triggered/, trigger.txt, metrics.json")


if __name__ == "__main__":
    main()
