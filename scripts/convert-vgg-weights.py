#!/usr/bin/env python3
"""Convert torchvision's VGG-16 weights (vgg16-397923af.pth) into a file libtorch's C++ side reads.

torchvision's .pth is an old-style Python pickle that only Python's torch.load understands.
This script loads it (weights only, no code is run) and saves the same tensors, same names
(features.0.weight, ..., classifier.6.bias), as a plain {name: tensor} dict in torch.save's
zip format, which tch reads with Tensor::loadz_multi.

    python scripts/convert-vgg-weights.py data/vgg16-397923af.pth data/vgg16.pt

You normally don't run it yourself: `convlab fetch-weights` and `convlab convert-weights` do,
and then rewrite the result as data/vgg16.safetensors.
"""
import os
import sys

import torch


def main(src: str, dest: str) -> int:
    state = torch.load(src, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not state:
        print(f"{src}: expected a state dict of tensors, got {type(state).__name__}", file=sys.stderr)
        return 1
    tensors = {}
    for name, value in state.items():
        if not torch.is_tensor(value):
            print(f"{src}: {name} is a {type(value).__name__}, not a tensor", file=sys.stderr)
            return 1
        tensors[str(name)] = value.detach().to(torch.float32).contiguous()
    part = dest + ".part"
    torch.save(tensors, part)
    os.replace(part, dest)
    total = sum(t.numel() for t in tensors.values())
    print(f"wrote {len(tensors)} tensors ({total:,} weights) to {dest}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
