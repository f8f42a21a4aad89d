#!/usr/bin/python3
"""Loads a TorchScript keyword spotter back into PyTorch (the one you exported, or the purified model.pt that
kwshield defend wrote) and prints CA on the clean test split and ASR/RA on a folder of triggered clips: the
same numbers kwshield eval gives for the same folders.

usage: /usr/bin/python3 examples/own-model/evaluate.py --model RUN/model.pt --data DIR --classes classes.txt \
           [--triggered DIR --target up] [--json]
"""
import argparse
import json

import torch

from kws_model import backdoor_rates, load, predict, read_folder, read_split


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a TorchScript archive (model.pt)")
    ap.add_argument("--data", required=True, help="the data folder (its testing_list.txt gives the test split)")
    ap.add_argument("--classes", required=True, help="the class names in the order of the model's outputs, one per line")
    ap.add_argument("--triggered", help="a folder of triggered clips, DIR/<true word>/<clip>.wav")
    ap.add_argument("--target", default="up")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    with open(a.classes) as f:
        words = [line.strip() for line in f if line.strip()]
    model = torch.jit.load(a.model).eval()
    paths, labels, _ = read_split(a.data, words, "test")
    y = torch.tensor(labels)
    out = {"model": a.model, "ca": float((predict(model, load(paths)) == y).float().mean()), "testClips": len(y)}
    if a.triggered:
        gpaths, glabels = read_folder(a.triggered, words)
        asr, ra = backdoor_rates(predict(model, load(gpaths)), torch.tensor(glabels), words.index(a.target))
        out.update({"asr": asr, "ra": ra, "triggeredClips": len(glabels)})
    if a.json:
        print(json.dumps(out))
    else:
        line = f"PyTorch, {a.model}: CA {100 * out['ca']:.1f}% on {len(y)} clean test clips"
        if a.triggered:
            line += f"; ASR {100 * out['asr']:.1f}%, RA {100 * out['ra']:.1f}% on {out['triggeredClips']} triggered clips"
        print(line)


if __name__ == "__main__":
    main()
