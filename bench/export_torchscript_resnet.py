#!/usr/bin/python3
"""Exports the shared PyTorch reference ResNet (../shared/peers/torch_reference.py) as TorchScript, for
bench/run.ts's TorchScript case (the GN-FT step on a user's archive, through torch::jit::load).

usage: /usr/bin/python3 bench/export_torchscript_resnet.py PEERS_DIR OUT.pt [--channels-last]
"""
import sys

import torch


def main():
    peers, out = sys.argv[1], sys.argv[2]
    sys.path.insert(0, peers)
    from torch_reference import ResNet  # noqa: E402  (the shared reference's own definition)

    torch.manual_seed(0)
    model = ResNet().train()
    if "--channels-last" in sys.argv[3:]:
        model = model.to(memory_format=torch.channels_last)
    torch.jit.script(model).save(out)


if __name__ == "__main__":
    main()
