#!/usr/bin/env python3
"""torchvision's side of crates/convlab/tests/vgg_torchvision.rs: the reference VGG-16.

    python vgg_torchvision.py DIR

DIR holds `pictures.npz` (written by the Rust test): `pictures`, (N, 224, 224, 3) float32 RGB
0-255 values, already resized to 224x224. This script builds torchvision's own `vgg16()` with
random weights (fixed seed; the biases random too, where torchvision starts them at zero, so
that their mapping is tested as well) and writes into DIR:

  vgg16.pth      the state dict as torch.save writes it (for `convlab convert-weights`)
  vgg16.pt       the same tensors as a plain {name: tensor} dict (read directly)
  vgg16.npz      the same with numpy.savez
  reference.npz  for both preprocessings P in (caffe, torchvision), computed here from the
                 pictures, independently of the crate:
                   P.input          the network's input (N, 3, 224, 224)
                   P.LAYER          the output of the crate's layer LAYER (features.0, ...
                                    after its ReLU; maxpool.last; classifier.6 = logits)
                   P.softmax        the probabilities
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision.transforms import functional as F

# The seed's Caffe means, B, G, R; torchvision's ImageNet mean and spread, R, G, B.
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

# The crate's layer (a convolution with its ReLU, the last pooling, the logits) and the
# torchvision module whose output is the same numbers.
LAYERS = {
    "features.0": "features.1",
    "features.2": "features.3",
    "features.17": "features.18",  # the eighth convolution
    "features.24": "features.25",
    "features.26": "features.27",
    "features.28": "features.29",
    "maxpool.last": "features.30",
    "classifier.6": "classifier.6",
}


def caffe(rgb: np.ndarray) -> torch.Tensor:
    """The seed's preprocessing: B, G, R order, 0-255 minus the channel means, channel first."""
    bgr = rgb[..., ::-1] - CAFFE_MEAN_BGR
    return torch.from_numpy(np.ascontiguousarray(bgr.transpose(0, 3, 1, 2)))


def torchvision_prep(rgb: np.ndarray) -> torch.Tensor:
    """torchvision's: to_tensor's /255, then Normalize(mean, std)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))) / 255.0
    return F.normalize(x, MEAN, STD)


def main(folder: str) -> int:
    out = Path(folder)
    rgb = np.load(out / "pictures.npz")["pictures"].astype(np.float32)
    if rgb.ndim != 4 or rgb.shape[1:] != (224, 224, 3):
        print(f"{out / 'pictures.npz'}: expected (N, 224, 224, 3), got {rgb.shape}", file=sys.stderr)
        return 1
    torch.manual_seed(12)
    model = torchvision.models.vgg16(weights=None).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.05)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    torch.save(model.state_dict(), out / "vgg16.pth")
    torch.save(dict(state), out / "vgg16.pt")
    np.savez(out / "vgg16.npz", **{k: v.numpy() for k, v in state.items()})

    modules = dict(model.named_modules())
    seen: dict[str, torch.Tensor] = {}
    for ours, theirs in LAYERS.items():
        modules[theirs].register_forward_hook(
            lambda _m, _i, o, ours=ours: seen.__setitem__(ours, o.detach().clone())
        )
    reference = {}
    for prep_name, prep in (("caffe", caffe), ("torchvision", torchvision_prep)):
        x = prep(rgb)
        with torch.no_grad():
            logits = model(x)
        reference[f"{prep_name}.input"] = x.numpy()
        for ours in LAYERS:
            reference[f"{prep_name}.{ours}"] = seen[ours].numpy()
        reference[f"{prep_name}.softmax"] = torch.softmax(logits, dim=1).numpy()
        assert torch.equal(logits, seen["classifier.6"])
    np.savez(out / "reference.npz", **reference)
    print(f"torchvision {torchvision.__version__}, torch {torch.__version__}: "
          f"{len(rgb)} pictures, {len(reference)} reference arrays in {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
