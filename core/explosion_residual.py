"""Residual connections: a path around every layer keeps a deep net's gradients level where the plain net's are not.

Concept: a plain net's backward signal is a product of one Jacobian per layer, so it grows or shrinks like
(factor per layer)^depth. A residual block computes h + f(LayerNorm(h)); its Jacobian is I + J_f, so the gradient
always has the identity path back to the input, and the normalization keeps J_f from growing with the weights:
the product no longer compounds a factor per layer. Both nets here use the very same weights and batch.

Finding the source of an explosion in a real model: per-layer gradient norms, read by a hook on each block
(`register_full_backward_hook`, used below), point at the layer where the growth starts; and
anomaly detection (`torch.autograd.detect_anomaly`) names the forward op whose backward first produced NaN.
Anomaly mode is one flag for the whole process, and slow, so it belongs in a debugging run,
not in a server like this one.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from core.explosion import activation_module, depth_problem

NETS = ("plain", "residual + LayerNorm")


class PlainBlock(nn.Module):
    """One layer of the plain net: phi(W h + b)."""

    def __init__(self, linear: nn.Linear, phi: nn.Module) -> None:
        super().__init__()
        self.linear, self.phi = linear, phi

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.phi(self.linear(h))


class ResidualBlock(nn.Module):
    """A pre-norm residual block around the same layer: h + phi(W LayerNorm(h) + b)."""

    def __init__(self, linear: nn.Linear, phi: nn.Module) -> None:
        super().__init__()
        self.linear, self.phi = linear, phi
        self.norm = nn.LayerNorm(linear.in_features, elementwise_affine=False, dtype=torch.float64)  # no parameters

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.phi(self.linear(self.norm(h)))


def blocks(net: str, depth: int, activation: str, init_gain: float, seed: int) -> tuple[nn.Sequential, torch.Tensor,
                                                                                        torch.Tensor]:
    """Experiment 1's weights and batch (core.explosion.depth_problem), wired plainly or with residual blocks."""
    model, x, y = depth_problem(depth, activation=activation, init_gain=init_gain, seed=seed)
    block = PlainBlock if net == "plain" else ResidualBlock
    return nn.Sequential(*(block(linear, activation_module(activation)) for linear in model[0::2])), x, y


def hooked_norms(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> tuple[list[float], list[float]]:
    """One backward pass of MSELoss(model(x), y); per block, ||dL/d(its input)|| read by a full backward hook,
    and ||dL/dW|| of its layer. The hooks are removed afterwards."""
    signal: dict[int, torch.Tensor] = {}

    def hook(index: int):
        def record(module: nn.Module, grad_input: tuple, grad_output: tuple) -> None:
            signal[index] = grad_input[0].norm()  # dL/d(block input): the signal arriving at this layer
        return record

    handles = [block.register_full_backward_hook(hook(i)) for i, block in enumerate(model)]
    try:
        nn.MSELoss()(model(x.detach().requires_grad_()), y).backward()  # an input that needs grad: block 1's hook fires
    finally:
        for handle in handles:
            handle.remove()
    signals = torch.stack([signal[i] for i in range(len(model))]).tolist()
    return signals, torch.stack([block.linear.weight.grad.norm() for block in model]).tolist()


def residual_comparison(depth: int, *, activation: str, init_gain: float, seed: int = 0) -> pd.DataFrame:
    """The plain net beside the residual net with LayerNorm, at the same depth, gain, weights and batch.

    Columns: net, layer (1 is nearest the input), signal (||dL/d input of that layer||), weight_grad_norm.
    """
    rows = []
    for net in NETS:
        model, x, y = blocks(net, depth, activation, init_gain, seed)
        signal, weight = hooked_norms(model, x, y)
        rows += [{"net": net, "layer": i + 1, "signal": s, "weight_grad_norm": w}
                 for i, (s, w) in enumerate(zip(signal, weight))]
    return pd.DataFrame(rows)

