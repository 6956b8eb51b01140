#!/usr/bin/env python3
"""Keras 1's arithmetic, written again in PyTorch and NumPy, for crates/convlab/tests/cifar_keras.rs.

    python cifar_keras.py DIR

DIR holds `start.npz` (written by the Rust test): the seed's CIFAR model's initial weights
(`conv1.weight`, ..., `dense2.bias`, PyTorch layouts), a batch `x` (N, 3, 32, 32) of 0-1
pictures, its one-hot labels `y` (N, 10), and the optimiser settings `settings` =
[lr, momentum, decay, nesterov, steps]. Writes `after.npz`: the weights after each of the
steps (`STEP.NAME`), and Keras 1's featurewise statistics of the batch (`mean`, `std`,
`standardized`).

Nothing here comes from the crate: the model is the Keras example's layer list in
torch.nn, the loss is Keras's softmax + categorical_crossentropy, and the update is Keras 1's
SGD.get_updates, line by line:

    lr = self.lr * (1. / (1. + self.decay * self.iterations))
    v = self.momentum * m - lr * g        # velocity
    new_p = p + self.momentum * v - lr * g  if nesterov else  p + v
"""
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn


def keras_cifar10_cnn() -> nn.Module:
    """Keras's cifar10_cnn example (Theano ordering): the layers by their Keras names."""
    return nn.ModuleDict({
        "conv1": nn.Conv2d(3, 32, 3, padding=1),   # Convolution2D(32, 3, 3, border_mode='same')
        "conv2": nn.Conv2d(32, 32, 3),             # Convolution2D(32, 3, 3)
        "conv3": nn.Conv2d(32, 64, 3, padding=1),  # Convolution2D(64, 3, 3, border_mode='same')
        "conv4": nn.Conv2d(64, 64, 3),             # Convolution2D(64, 3, 3)
        "dense1": nn.Linear(64 * 6 * 6, 512),      # Dense(512)
        "dense2": nn.Linear(512, 10),              # Dense(nb_classes)
    })


def forward(m: nn.ModuleDict, x: torch.Tensor) -> torch.Tensor:
    """Dropout is left out: its random masks cannot be matched across two programs."""
    x = torch.relu(m["conv1"](x))
    x = torch.relu(m["conv2"](x))
    x = torch.max_pool2d(x, 2)
    x = torch.relu(m["conv3"](x))
    x = torch.relu(m["conv4"](x))
    x = torch.max_pool2d(x, 2)
    x = x.reshape(x.shape[0], -1)  # Flatten
    x = torch.relu(m["dense1"](x))
    return torch.softmax(m["dense2"](x), dim=1)  # Activation('softmax')


def main(folder: str) -> int:
    out = Path(folder)
    start = np.load(out / "start.npz")
    lr0, momentum, decay, nesterov, steps = start["settings"].tolist()
    model = keras_cifar10_cnn().double()
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(torch.from_numpy(start[name].astype(np.float64)))
    x = torch.from_numpy(start["x"].astype(np.float64))
    y = torch.from_numpy(start["y"].astype(np.float64))
    moments = {name: torch.zeros_like(p) for name, p in params.items()}
    result = {}
    for iterations in range(int(steps)):
        for p in params.values():
            p.grad = None
        probs = forward(model, x)
        # categorical_crossentropy: -sum(y * log(p)) per picture, averaged over the batch
        loss = -(y * torch.log(probs)).sum(dim=1).mean()
        loss.backward()
        lr = lr0 * (1.0 / (1.0 + decay * iterations))
        with torch.no_grad():
            for name, p in params.items():
                g, m = p.grad, moments[name]
                v = momentum * m - lr * g
                moments[name] = v
                new_p = p + momentum * v - lr * g if nesterov else p + v
                p.copy_(new_p)
                result[f"{iterations + 1}.{name}"] = p.detach().numpy().copy()
        result[f"{iterations + 1}.loss"] = np.array([loss.item()], dtype=np.float64)

    # ImageDataGenerator.fit (Keras 1): mean and std over the batch axis; standardize divides
    # by std + 1e-7.
    xs = start["x"].astype(np.float32)
    mean = np.mean(xs, axis=0)
    std = np.std(xs, axis=0)
    result["mean"] = mean
    result["std"] = std
    result["standardized"] = ((xs - mean) / (std + 1e-7)).astype(np.float32)
    np.savez(out / "after.npz", **result)
    print(f"{int(steps)} Keras SGD steps (lr {lr0}, momentum {momentum}, decay {decay}, "
          f"nesterov {bool(nesterov)}) in float64; losses "
          + ", ".join(f"{result[f'{i + 1}.loss'][0]:.6f}" for i in range(int(steps))))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
