#!/usr/bin/env python3
"""Makes fixtures/resnet-state-dict.json: the state_dict names, shapes and dtypes of the PyTorch ResNet in
shared/peers/torch_reference.py, so the TypeScript model can be checked name for name against PyTorch.

usage: python3 scripts/make-resnet-fixture.py [--reference PATH] [--out PATH]
Runs under whichever Python imports torch, trying /usr/bin/python3 (Debian python3-torch) first.
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CANDIDATES = ["/usr/bin/python3", sys.executable, "python3", "python"]


def python_with_torch():
    for name in CANDIDATES:
        exe = shutil.which(name) if name else None
        if exe and subprocess.run([exe, "-c", "import torch"], capture_output=True).returncode == 0:
            return exe
    sys.exit("no Python here imports torch (tried %s); as root: apt-get install -y python3-torch" % ", ".join(filter(None, CANDIDATES)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", default=os.path.join(ROOT, "..", "shared", "peers", "torch_reference.py"))
    ap.add_argument("--out", default=os.path.join(ROOT, "fixtures", "resnet-state-dict.json"))
    args = ap.parse_args()

    exe = python_with_torch()
    # Re-run under the chosen interpreter unless this is it (the check prevents an exec loop).
    if os.path.realpath(exe) != os.path.realpath(sys.executable):
        os.execv(exe, [exe, os.path.abspath(__file__), *sys.argv[1:]])
    import torch

    print("using %s (torch %s)" % (exe, torch.__version__))
    spec = importlib.util.spec_from_file_location("torch_reference", args.reference)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)  # its main() runs only under __main__
    model = reference.ResNet(classes=10)
    entries = [[name, list(t.shape), str(t.dtype).replace("torch.", "")] for name, t in model.state_dict().items()]

    # One entry per line, so a changed layer shows as a one-line diff.
    lines = ",\n".join("    " + json.dumps(e) for e in entries)
    with open(args.out, "w") as f:
        f.write('{\n  "source": "shared/peers/torch_reference.py ResNet(classes=10)",\n')
        f.write('  "torch": %s,\n  "entries": [\n%s\n  ]\n}\n' % (json.dumps(torch.__version__), lines))
    print("wrote %d entries to %s" % (len(entries), os.path.relpath(args.out, ROOT)))


if __name__ == "__main__":
    main()
