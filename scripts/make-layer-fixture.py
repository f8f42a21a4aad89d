#!/usr/bin/python3
"""Makes fixtures/layers/*.json: PyTorch references for src/nn/layers/{lstm,attention,transformer}.ts.

usage: /usr/bin/python3 scripts/make-layer-fixture.py   (Debian python3-torch 1.13)

Each fixture holds cases. A case names the module and its constructor options, lists the state dict in
PyTorch's order (name, shape, values), the inputs and the eval-mode outputs. Tensors are
{"shape": [...], "dtype": "float32" | "bool", "data": base64 of little-endian float32 (or uint8 for bool)}.
PyTorch initialises biases and LayerNorm affine parameters to constants; they are randomised here so
that the comparison exercises them.
"""
import base64
import json
import os

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "layers")


def enc(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bool:
        raw = t.numpy().astype(np.uint8).tobytes()
        dtype = "bool"
    else:
        raw = t.to(torch.float32).numpy().astype("<f4").tobytes()
        dtype = "float32"
    return {"shape": list(t.shape), "dtype": dtype, "data": base64.b64encode(raw).decode("ascii")}


def state(module):
    return [{"name": k, **enc(v)} for k, v in module.state_dict().items()]


def randomise_constants(module):
    """Biases and LayerNorm weights start as constants in PyTorch; give them random values."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "bias" in name or name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(torch.randn_like(p) * 0.3 + (1.0 if name.endswith("weight") else 0.0))


def lstm_cases():
    cases = []
    configs = [
        ("two-layer-bidirectional-batch-first", dict(input_size=5, hidden_size=6, num_layers=2, bidirectional=True, batch_first=True, dropout=0.25), [3, 7, 5], False),
        ("one-layer-no-bias-with-state", dict(input_size=4, hidden_size=5, num_layers=1, bias=False), [6, 2, 4], True),
    ]
    for name, kw, shape, with_state in configs:
        torch.manual_seed(1)
        m = nn.LSTM(**kw).eval()
        x = torch.randn(*shape)
        inputs = {"x": enc(x)}
        if with_state:
            d = 2 if kw.get("bidirectional") else 1
            h0 = torch.randn(kw.get("num_layers", 1) * d, shape[1], kw["hidden_size"])
            c0 = torch.randn_like(h0)
            inputs.update(h0=enc(h0), c0=enc(c0))
            out, (h, c) = m(x, (h0, c0))
        else:
            out, (h, c) = m(x)
        options = {
            "numLayers": kw.get("num_layers", 1),
            "bias": kw.get("bias", True),
            "batchFirst": kw.get("batch_first", False),
            "dropout": kw.get("dropout", 0.0),
            "bidirectional": kw.get("bidirectional", False),
        }
        cases.append({
            "name": name, "inputSize": kw["input_size"], "hiddenSize": kw["hidden_size"], "options": options,
            "state": state(m), "inputs": inputs, "outputs": {"output": enc(out), "h": enc(h), "c": enc(c)},
        })
    return cases


def attention_cases():
    cases = []
    # self-attention, batch first, key padding mask, weights averaged over heads
    torch.manual_seed(2)
    m = nn.MultiheadAttention(8, 2, dropout=0.2, batch_first=True).eval()
    randomise_constants(m)
    x = torch.randn(2, 5, 8)
    kpm = torch.tensor([[False] * 5, [False, False, False, True, True]])
    with torch.no_grad():
        out, w = m(x, x, x, key_padding_mask=kpm)
    cases.append({
        "name": "self-batch-first-padding", "embedDim": 8, "numHeads": 2,
        "options": {"dropout": 0.2, "bias": True, "batchFirst": True},
        "call": {"selfAttention": True, "averageAttnWeights": True},
        "state": state(m), "inputs": {"query": enc(x), "keyPaddingMask": enc(kpm)},
        "outputs": {"output": enc(out), "weights": enc(w)},
    })
    # cross-attention, sequence first, separate key and value, bool attention mask, per-head weights
    torch.manual_seed(3)
    m = nn.MultiheadAttention(8, 4).eval()
    randomise_constants(m)
    q, k, v = torch.randn(4, 2, 8), torch.randn(6, 2, 8), torch.randn(6, 2, 8)
    attn_mask = torch.triu(torch.ones(4, 6, dtype=torch.bool), diagonal=3)
    with torch.no_grad():
        out, w = m(q, k, v, attn_mask=attn_mask, average_attn_weights=False)
    cases.append({
        "name": "cross-seq-first-attn-mask", "embedDim": 8, "numHeads": 4,
        "options": {"dropout": 0.0, "bias": True, "batchFirst": False},
        "call": {"selfAttention": False, "averageAttnWeights": False},
        "state": state(m), "inputs": {"query": enc(q), "key": enc(k), "value": enc(v), "attnMask": enc(attn_mask)},
        "outputs": {"output": enc(out), "weights": enc(w)},
    })
    # shared key/value (encoder-decoder projection), no bias, float key padding mask
    torch.manual_seed(4)
    m = nn.MultiheadAttention(6, 3, bias=False).eval()
    q, kv = torch.randn(3, 2, 6), torch.randn(5, 2, 6)
    kpm = torch.zeros(2, 5)
    kpm[1, 4] = float("-inf")
    kpm[0, 0] = -1.5
    with torch.no_grad():
        out, w = m(q, kv, kv, key_padding_mask=kpm)
    cases.append({
        "name": "shared-key-value-no-bias-float-padding", "embedDim": 6, "numHeads": 3,
        "options": {"dropout": 0.0, "bias": False, "batchFirst": False},
        "call": {"selfAttention": False, "sharedKeyValue": True, "averageAttnWeights": True},
        "state": state(m), "inputs": {"query": enc(q), "key": enc(kv), "keyPaddingMask": enc(kpm)},
        "outputs": {"output": enc(out), "weights": enc(w)},
    })
    return cases


def transformer_cases():
    cases = []
    for name, kw in [
        ("post-norm-relu", dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.1, batch_first=True)),
        ("pre-norm-gelu", dict(d_model=8, nhead=2, dim_feedforward=12, dropout=0.1, activation="gelu", norm_first=True, layer_norm_eps=1e-6)),
    ]:
        torch.manual_seed(5)
        m = nn.TransformerEncoderLayer(**kw).eval()
        randomise_constants(m)
        shape = [2, 5, 8] if kw.get("batch_first") else [5, 2, 8]
        x = torch.randn(*shape)
        kpm = torch.tensor([[False] * 5, [False, False, False, False, True]])
        # grad mode on and parameters requiring grad: PyTorch's own composite path (the fused
        # inference fast path agrees to ~1e-6 but is not what training runs).
        out = m(x, src_key_padding_mask=kpm)
        options = {
            "dimFeedforward": kw["dim_feedforward"], "dropout": kw["dropout"], "activation": kw.get("activation", "relu"),
            "layerNormEps": kw.get("layer_norm_eps", 1e-5), "batchFirst": kw.get("batch_first", False), "normFirst": kw.get("norm_first", False),
        }
        cases.append({
            "name": name, "kind": "layer", "dModel": kw["d_model"], "nhead": kw["nhead"], "options": options,
            "state": state(m), "inputs": {"src": enc(x), "srcKeyPaddingMask": enc(kpm)}, "outputs": {"output": enc(out)},
        })
    # a two-layer stack with a final norm
    torch.manual_seed(6)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True, norm_first=True)
    m = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8)).eval()
    randomise_constants(m)
    with torch.no_grad():  # the layers are clones: make them differ
        for p in m.layers[1].parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(2, 4, 8)
    out = m(x)
    cases.append({
        "name": "encoder-two-layers-final-norm", "kind": "encoder", "dModel": 8, "nhead": 2, "numLayers": 2,
        "options": {"dimFeedforward": 16, "dropout": 0.1, "activation": "relu", "layerNormEps": 1e-5, "batchFirst": True, "normFirst": True},
        "state": state(m), "inputs": {"src": enc(x)}, "outputs": {"output": enc(out)},
    })
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, cases in [("lstm", lstm_cases()), ("attention", attention_cases()), ("transformer", transformer_cases())]:
        path = os.path.join(OUT, f"{name}.json")
        with open(path, "w") as f:
            json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
            f.write("\n")
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
