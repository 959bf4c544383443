"""BatchNorm on a micro-batch of one example: which layouts fail, and which still train.

Concept: in training mode BatchNorm normalizes each channel by the mean and variance of every value it sees of
that channel. BatchNorm1d on (N, C) input sees N values per channel, so with N = 1 there is no variance and
PyTorch raises a ValueError. On (N, C, L) input (BatchNorm1d over a sequence) or (N, C, H, W) input
(BatchNorm2d over an image) one example still brings L or H × W values per channel, so it trains; each example is
then normalized by its own statistics, another computation than the big batch's.
"""

from __future__ import annotations

import torch
from torch import nn

from core.data import generator

LAYOUTS = ("BatchNorm1d, (1, C)", "BatchNorm1d, (1, C, L)", "BatchNorm2d, (1, C, H, W)")


def single_example_batchnorm(*, channels: int = 4, seed: int = 0) -> dict[str, str]:
    """Each layout's forward pass in training mode on one example: "raises" or "trains"."""
    gen = generator(seed)
    cases = {
        LAYOUTS[0]: (nn.BatchNorm1d(channels), (1, channels)),
        LAYOUTS[1]: (nn.BatchNorm1d(channels), (1, channels, 8)),
        LAYOUTS[2]: (nn.BatchNorm2d(channels), (1, channels, 3, 3)),
    }
    found = {}
    for name, (layer, shape) in cases.items():
        try:
            layer.train()(torch.randn(shape, generator=gen)).sum().backward()
            found[name] = "trains"
        except ValueError:  # "Expected more than 1 value per channel when training"
            found[name] = "raises"
    return found
