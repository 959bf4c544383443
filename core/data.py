"""Small seeded data sets and models shared by the concept modules.

Every random draw goes through an explicit torch.Generator, never the global RNG: a Streamlit server
runs many sessions in threads, and the same settings must give the same numbers in every one.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def seeded_init_(model: nn.Module, gen: torch.Generator) -> nn.Module:
    """Draw every layer as PyTorch's default init does, from gen, in module order; returns the model.

    nn.Linear: kaiming_uniform_(a=sqrt(5)) and a uniform bias; nn.Embedding: N(0, 1); normalization layers:
    their fixed reset. Build the model on the meta device (`nn.Linear(4, 16, device="meta")`): a module built
    on the CPU draws its init from the global RNG, which every session of the server shares. Here it gets its
    storage, uninitialised, and then its draws from gen alone.
    """
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        model = model.to_empty(device="cpu")
    for layer in model.modules():
        if isinstance(layer, nn.Embedding):
            nn.init.normal_(layer.weight, generator=gen)
        elif isinstance(layer, nn.modules.batchnorm._NormBase | nn.LayerNorm):
            layer.reset_parameters()  # ones and zeros, and the running statistics' start: no randomness
        elif isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
            if layer.bias is not None:
                bound = 1 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
    return model


def mlp(sizes: tuple[int, ...], activation: type[nn.Module] = nn.Tanh, *, seed: int = 0) -> nn.Sequential:
    """Linear -> activation -> ... -> Linear, initialised from seed (no activation after the last layer)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(activation())
        layers.append(nn.Linear(fan_in, fan_out, device="meta"))  # no storage, no draw from the global RNG
    return seeded_init_(nn.Sequential(*layers), generator(seed))


def regression_data(n: int, features: int, *, seed: int = 0, noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """x ~ N(0, 1), y = sin(x @ w) + noise: a smooth non-linear target a small MLP can fit.

    Returns x (N, D) and y (N, 1).
    """
    gen = generator(seed + 10_000)  # a stream apart from the model's initialisation
    x = torch.randn(n, features, generator=gen)
    w = torch.randn(features, 1, generator=gen) / math.sqrt(features)
    y = torch.sin(2 * x @ w) + noise * torch.randn(n, 1, generator=gen)
    return x, y


def classification_data(n: int, features: int, classes: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs labelled by a random linear teacher: x (N, D) float, y (N,) long."""
    gen = generator(seed + 20_000)
    x = torch.randn(n, features, generator=gen)
    teacher = torch.randn(features, classes, generator=gen)
    return x, (x @ teacher).argmax(dim=1)
