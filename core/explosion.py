"""Exploding and vanishing gradients: where they come from, and what clipping does about them.

Concept: backpropagation multiplies the loss's gradient by one Jacobian per layer, or per time step of
a recurrent net. A product of many factors above 1 grows exponentially, one of many factors below 1
shrinks exponentially. The weights' scale sets the factor (the init gain; the recurrent matrix's largest
singular value); a saturating activation can only lower it, since |tanh'| <= 1 and |sigmoid'| <= 1/4.
Clipping acts after the fact and only ever shrinks: clip_grad_norm_ rescales all gradients together by
one factor, clip_grad_value_ clamps each entry and so turns the direction.

The training experiments (clipping, surviving a non-finite step) live in core/explosion_training.py, residual
connections in core/explosion_residual.py, the page's readings in core/explosion_readings.py.
"""

from __future__ import annotations

import functools
import math
import threading

import pandas as pd
import torch
from torch import nn
from torch.func import jacfwd, vmap

from core.controls import Control
from core.data import generator
from core.explosion_training import (  # noqa: F401  (public API: core.explosion.clipped_training and its kin)
    CLIPS,
    GUARDS,
    blowups,
    clip_2d,
    clipped_training,
    clipping_runs,
    surviving_runs,
)

ACTIVATIONS = ("linear", "tanh", "relu", "sigmoid")
NONLINEARITIES = ("linear", "tanh")  # the vanilla RNN's phi; gamma, the bound on |phi'|, is 1 for both
GATED = ("lstm", "gru")

# PyTorch keeps forward-mode AD levels in one registry per process, not per thread: two threads inside jacfwd at
# once corrupt each other's levels ("Trying to access a forward AD level with an invalid index"). Every use of
# forward-mode AD in core holds this lock, so a server's sessions take turns at it (jacobian_forward).
FORWARD_AD = threading.Lock()


def jacobian_forward(f, x: torch.Tensor) -> torch.Tensor:
    """torch.func.jacfwd(f)(x), holding the process's forward-mode AD for this thread alone while it runs."""
    with FORWARD_AD:
        return jacfwd(f)(x)


def chained_jacobians(step, s0: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """d s_t / d s_0 for t = 1 .. T of s_t = step(s_{t-1}, inputs[t-1]), by the chain rule: A_t ... A_1.

    Each one-step Jacobian A_t = d s_t / d s_{t-1} comes from torch.func.jacfwd, all T of them in one vmap
    call (one set of batched ops instead of T steps of forward-mode AD); the product is then T small
    matmuls. It is the same product forward-mode AD forms through the unrolled loop (tests compare them).
    Returns (T, S, S).
    """
    states = [s0]
    with torch.no_grad():
        for x_t in inputs[:-1]:
            states.append(step(states[-1], x_t))
    def factor(s: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:  # A_t = d s_t / d s_{t-1}, (S, S)
        return jacobian_forward(lambda z: step(z, x_t), s)

    factors = vmap(factor)(torch.stack(states), inputs)  # (T, S, S): one batched jacfwd for every step
    product, out = torch.eye(s0.shape[0], dtype=s0.dtype), []
    for a_t in factors:
        product = a_t @ product
        out.append(product)
    return torch.stack(out)


# The deep MLP: square layers, so fan_in = fan_out and Xavier's and He's rules reduce to one gain each.
WIDTH, BATCH = 64, 32
XAVIER_GAIN = math.sqrt(2 / (WIDTH + WIDTH)) * math.sqrt(WIDTH)  # xavier_normal_: std = sqrt(2 / (fan_in + fan_out))
HE_GAIN = nn.init.calculate_gain("relu")  # kaiming_normal_: std = sqrt(2) / sqrt(fan_in)
TANH_GAIN = nn.init.calculate_gain("tanh")  # 5/3: PyTorch's recommendation, not where tanh's signal is level
SWEEP_GAINS = tuple(0.25 * k for k in range(1, 13))  # 0.25 .. 3.0, the slider's range
# The recurrent nets: 16 units, 4 input features, one input sequence drawn at the longest length so that
# a shorter run sees the same first steps.
HIDDEN, INPUTS, SEQ_MAX = 16, 4, 300
FLOAT32_MAX = torch.finfo(torch.float32).max  # past this a float32 tensor holds inf

CONTROLS = (
    # Linear first: its signal grows like gain^depth while its weight gradients stay level, the surprise.
    Control("activation", "select", default="linear", options=ACTIVATIONS),
    Control("depth", "int", default=20, lo=2, hi=50),  # 20 layers: 1.5^20 is already over three thousand
    Control("init_gain", "float", default=1.5, lo=0.25, hi=3.0, step=0.01),  # a little above He's sqrt(2)
    Control("seq_len", "int", default=100, lo=10, hi=SEQ_MAX, step=10),  # long enough for rho^t to leave 1 far
    Control("spectral_radius", "float", default=1.1, lo=0.5, hi=2.0, step=0.05),  # just above 1/gamma = 1
    Control("nonlinearity", "select", default="linear", options=NONLINEARITIES),  # linear: exactly rho^t
    Control("lr", "float", default=1.0, lo=0.05, hi=3.0, step=0.05),  # unclipped SGD blows up here in ~20 steps
    Control("threshold", "float", default=0.25, lo=0.05, hi=5.0, step=0.05),  # below the init norm (0.74)
    Control("steps", "int", default=60, lo=20, hi=200, step=10),  # enough for the clipped runs to settle
    Control("g_x", "float", default=0.9, lo=-2.0, hi=2.0, step=0.05),  # a gradient 18 degrees off the x axis,
    Control("g_y", "float", default=0.3, lo=-2.0, hi=2.0, step=0.05),  # longer than the default threshold
)

PRESETS = {
    "he_relu": {"activation": "relu", "init_gain": 1.41},  # He's sqrt(2), to the slider's step
    "tanh_saturated": {"activation": "tanh", "init_gain": 3.0, "depth": 50},  # saturated, and still ~1.37x per layer
    "sigmoid_vanishes": {"activation": "sigmoid", "init_gain": 1.0},  # |sigmoid'| <= 1/4 per layer
    "rnn_tanh_above_one": {"nonlinearity": "tanh", "spectral_radius": 1.5},  # necessary for explosion, not enough
}


def check(name: str, valid: tuple[str, ...], what: str) -> str:
    """name if it is one of valid, else a ValueError that lists the valid ones."""
    if name not in valid:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(valid)}")
    return name


def activation_module(name: str) -> nn.Module:
    modules = {"linear": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    return modules[check(name, ACTIVATIONS, "activation")]()


class GivenLinear(nn.Linear):
    """nn.Linear(in, out) holding the weight it is given and a zero bias.

    Built on the CPU, nn.Linear draws its init from the global RNG; built on the meta device, it still runs that
    init, which costs more than the layer's backward pass. This one only copies in a weight drawn elsewhere.
    """

    def __init__(self, weight: torch.Tensor) -> None:
        out_features, in_features = weight.shape
        super().__init__(in_features, out_features, dtype=weight.dtype)  # uninitialised storage, no draw
        with torch.no_grad():
            self.weight.copy_(weight)
            self.bias.zero_()

    def reset_parameters(self) -> None:
        """Nothing to draw: __init__ copies in the given weight."""


def draw_weights(depth: int, width: int, init_gain: float, gen: torch.Generator) -> list[torch.Tensor]:
    """depth x (W, W) float64 weights ~ N(0, init_gain^2 / fan_in), drawn from gen one layer after the other."""
    return [torch.empty(width, width, dtype=torch.float64).normal_(0.0, init_gain / math.sqrt(width), generator=gen)
            for _ in range(depth)]


def stacked_mlp(weights: list[torch.Tensor] | tuple[torch.Tensor, ...], activation: str) -> nn.Sequential:
    """Linear -> activation per weight: copies of the weights, biases zero."""
    layers: list[nn.Module] = []
    for weight in weights:
        layers += [GivenLinear(weight), activation_module(activation)]
    return nn.Sequential(*layers)


def deep_mlp(depth: int, width: int, activation: str, init_gain: float, gen: torch.Generator) -> nn.Sequential:
    """depth x (Linear(width, width) -> activation), float64; weights N(0, init_gain^2 / fan_in), biases zero."""
    return stacked_mlp(draw_weights(depth, width, init_gain, gen), activation)


@functools.lru_cache(maxsize=8)  # every experiment of a setting builds the same net, under each activation
def depth_draws(depth: int, width: int, init_gain: float, seed: int) -> tuple[tuple[torch.Tensor, ...], torch.Tensor,
                                                                             torch.Tensor]:
    """The deep MLP's weights and its batch x (B, W), y (B, W) ~ N(0, 1), drawn from seed in that order.

    Shared by every caller at the same setting: read them, copy before changing them.
    """
    gen = generator(seed)
    weights = tuple(draw_weights(depth, width, init_gain, gen))
    x = torch.randn(BATCH, width, generator=gen, dtype=torch.float64)  # (B, W)
    y = torch.randn(BATCH, width, generator=gen, dtype=torch.float64)  # (B, W)
    return weights, x, y


def depth_problem(depth: int, *, width: int = WIDTH, activation: str = "tanh", init_gain: float = 1.0,
                  seed: int = 0) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """The deep MLP and its fixed batch: x (B, W) ~ N(0, 1), a regression target y (B, W) ~ N(0, 1)."""
    check(activation, ACTIVATIONS, "activation")
    weights, x, y = depth_draws(depth, width, init_gain, seed)
    return stacked_mlp(weights, activation), x.clone(), y.clone()


def backward_norms(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> pd.DataFrame:
    """One backward pass of MSELoss(model(x), y); per layer the norms layer_gradient_norms() reports."""
    h, inputs, probes, outputs = x.detach().requires_grad_(), [], [], []  # a leaf: its gradient is layer 1's signal
    for linear, phi in zip(model[0::2], model[1::2]):
        inputs.append(h)
        z = linear(h)  # (B, W)
        probes.append(z.detach().requires_grad_())
        outputs.append(phi(probes[-1]).sum())  # its gradient by the probe is phi'(z), elementwise
        h = phi(z)
    slopes = torch.autograd.grad(outputs, probes)  # every layer's phi'(z) by autograd, in one pass
    loss = nn.MSELoss()(h, y)
    weights = [linear.weight for linear in model[0::2]]
    norms = torch.stack([g.norm() for g in torch.autograd.grad(loss, [*inputs, *weights])]).tolist()
    depth = len(weights)
    return pd.DataFrame({
        "layer": range(1, depth + 1),
        "activation_grad_norm": norms[:depth],
        "weight_grad_norm": norms[depth:],
        "input_norm": torch.stack([t.detach().norm() for t in inputs]).tolist(),
        "max_derivative": torch.stack([slope.abs().max() for slope in slopes]).tolist(),
    })


def layer_gradient_norms(depth: int, *, width: int = WIDTH, activation: str = "tanh", init_gain: float = 1.0,
                         seed: int = 0) -> pd.DataFrame:
    """Exploding and vanishing gradients through depth: one backward pass of a deep MLP on a fixed batch.

    One row per layer (1 is nearest the input): activation_grad_norm = ||dL / d(input of that layer)||,
    the back-propagated signal; weight_grad_norm = ||dL / dW||; input_norm = ||input of that layer||;
    max_derivative = the largest |phi'(z)| the layer met. Computed in float64, so that gain^depth fits.
    """
    return layer_norms(depth, width, activation, init_gain, seed).copy()


@functools.lru_cache(maxsize=16)  # the layer chart, activation_comparison and single_sample_gradients share it
def layer_norms(depth: int, width: int, activation: str, init_gain: float, seed: int) -> pd.DataFrame:
    """layer_gradient_norms, computed once per setting; the frame is shared, so callers copy before changing it."""
    model, x, y = depth_problem(depth, width=width, activation=activation, init_gain=init_gain, seed=seed)
    return backward_norms(model, x, y)


def single_sample_gradients(depth: int, *, activation: str, init_gain: float, seed: int = 0) -> pd.DataFrame:
    """Does backward on one sample at a time cause explosion? Every sample's own gradients, beside the batch's.

    Columns: run ("batch" or "sample i"), layer, activation_grad_norm, weight_grad_norm. No layer mixes the
    samples, so sample i's own loss (its row of the MSE) has gradients B times row i of the batch's: the
    signal is B * row i of dL/dh, and dL/dW is the outer product B * (row i of dL/dz)(row i of h)^T, whose
    norm is B * ||row of dL/dz|| * ||row of h||. The tests check this against one backward() per sample.
    """
    model, x, y = depth_problem(depth, activation=activation, init_gain=init_gain, seed=seed)
    h, inputs, pre = x.requires_grad_(), [], []
    for linear, phi in zip(model[0::2], model[1::2]):
        inputs.append(h)
        pre.append(linear(h))  # (B, W): z of this layer
        h = phi(pre[-1])
    grads = torch.autograd.grad(nn.MSELoss()(h, y), [*inputs, *pre])
    b = len(x)
    signal = torch.stack([g.norm(dim=1) for g in grads[:depth]], dim=1) * b  # (B, depth)
    weight = torch.stack([g.norm(dim=1) * i.detach().norm(dim=1) for g, i in zip(grads[depth:], inputs)], dim=1) * b
    batch = layer_norms(depth, WIDTH, activation, init_gain, seed).drop(columns=["input_norm", "max_derivative"])
    per_sample = pd.DataFrame({"run": [f"sample {i}" for i in range(b) for _ in range(depth)],
                               "layer": list(range(1, depth + 1)) * b,  # sample 0's layers, then sample 1's, ...
                               "activation_grad_norm": signal.flatten().tolist(),
                               "weight_grad_norm": weight.flatten().tolist()})
    return pd.concat([batch.assign(run="batch"), per_sample], ignore_index=True)


def clip_each_layer(depth: int, threshold: float, *, activation: str, init_gain: float, seed: int = 0) -> pd.DataFrame:
    """Is clip_grad_norm_ per layer? Each layer's weight-gradient norm before and after clipping the whole net.

    Columns: layer, before, after, factor (after / before). Also returns the total norm in column total.
    """
    model, x, y = depth_problem(depth, activation=activation, init_gain=init_gain, seed=seed)
    nn.MSELoss()(model(x), y).backward()
    weights = [linear.weight for linear in model[0::2]]
    before = torch.stack([w.grad.norm() for w in weights]).tolist()
    total = nn.utils.clip_grad_norm_(model.parameters(), threshold).item()  # one norm over every gradient
    after = torch.stack([w.grad.norm() for w in weights]).tolist()
    return pd.DataFrame({"layer": range(1, depth + 1), "before": before, "after": after, "total": total}).assign(
        factor=lambda d: d.after / d.before)


def activation_comparison(depth: int, *, init_gain: float, width: int = WIDTH, seed: int = 0) -> pd.DataFrame:
    """The same net, weights and batch under each activation: layer_gradient_norms with an activation column."""
    return pd.concat([layer_norms(depth, width, a, init_gain, seed).assign(activation=a) for a in ACTIVATIONS],
                     ignore_index=True)


def spread(df: pd.DataFrame, column: str) -> float:
    """first layer's value / last layer's value: above 1 it grew on the way back to the input, below 1 it shrank."""
    return float(df[column].iloc[0] / df[column].iloc[-1])


def gain_sweep(depth: int, *, width: int = WIDTH, seed: int = 0,
               gains: tuple[float, ...] = SWEEP_GAINS) -> pd.DataFrame:
    """Which init gain keeps gradients level, per activation: first-to-last layer ratios against the gain.

    Columns: activation, init_gain, quantity ("signal" or "weight gradient"), ratio (as spread() defines it).
    The net at gain g is g times the net at gain 1 (the same draws, in the same order as depth_problem),
    so every gain runs at once along a leading dimension G; the tests check it against layer_gradient_norms.
    """
    gen = generator(seed)
    unit = [torch.empty(width, width, dtype=torch.float64).normal_(0, 1 / math.sqrt(width), generator=gen)
            for _ in range(depth)]  # depth x (W, W): the weights at gain 1
    x = torch.randn(BATCH, width, generator=gen, dtype=torch.float64)  # (B, W)
    y = torch.randn(BATCH, width, generator=gen, dtype=torch.float64)  # (B, W)
    scale = torch.tensor(gains, dtype=torch.float64)[:, None, None]  # (G, 1, 1)
    rows = []
    for activation in ACTIVATIONS:
        phi = activation_module(activation)
        weights = [(scale * w).requires_grad_() for w in unit]  # depth x (G, W, W); biases are zero
        h = x.expand(len(gains), -1, -1).clone().requires_grad_()  # (G, B, W)
        inputs = []
        for w in weights:
            inputs.append(h)
            h = phi(h @ w.transpose(1, 2))  # (G, B, W)
        loss = ((h - y) ** 2).mean(dim=(1, 2)).sum()  # each gain's MSELoss; summing does not mix the gains
        ends = [inputs[0], inputs[-1], weights[0], weights[-1]]  # the ratios need the first and last layers only
        norms = [g.flatten(1).norm(dim=1) for g in torch.autograd.grad(loss, ends)]  # 4 x (G,)
        signal, weight = (norms[0] / norms[1]).tolist(), (norms[2] / norms[3]).tolist()
        for i, gain in enumerate(gains):
            rows += [{"activation": activation, "init_gain": gain, "quantity": "signal", "ratio": signal[i]},
                     {"activation": activation, "init_gain": gain, "quantity": "weight gradient", "ratio": weight[i]}]
    return pd.DataFrame(rows)


def random_orthogonal(n: int, gen: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal (n, n) matrix in float64: QR of a Gaussian matrix, signs fixed by R's diagonal."""
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def recurrent_problem(spectral_radius: float, *, hidden: int = HIDDEN, seed: int = 0):
    """The vanilla RNN: W = spectral_radius * Q (H, H), Q random orthogonal; U (H, I) ~ N(0, 1/I); x (T, I)."""
    gen = generator(seed)
    w = spectral_radius * random_orthogonal(hidden, gen)  # (H, H): every singular value is spectral_radius
    u = torch.randn(hidden, INPUTS, generator=gen, dtype=torch.float64) / math.sqrt(INPUTS)  # (H, I)
    x = torch.randn(SEQ_MAX, INPUTS, generator=gen, dtype=torch.float64)  # (T, I)
    return w, u, x, gen


def rnn_gradient_norms(seq_len: int, spectral_radius: float, *, hidden: int = HIDDEN, nonlinearity: str = "linear",
                       seed: int = 0) -> list[float]:
    """Exploding and vanishing gradients through time: ||dh_t / dh_0||_2 for t = 1 .. seq_len.

    h_t = phi(W h_{t-1} + U x_t) with W = spectral_radius * Q, Q random orthogonal, so every singular value
    of W is spectral_radius. Linear: dh_t / dh_0 = W^t, whose norm is exactly spectral_radius^t. tanh:
    dh_t / dh_0 = D_t W ... D_1 W with D = diag(tanh') <= 1, so the norm is at most spectral_radius^t.
    """
    phi = torch.tanh if check(nonlinearity, NONLINEARITIES, "nonlinearity") == "tanh" else (lambda z: z)
    w, u, x, _ = recurrent_problem(spectral_radius, hidden=hidden, seed=seed)

    def step(h: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:  # (H,), (I,) -> (H,)
        return phi(w @ h + u @ x_t)

    jacobians = chained_jacobians(step, torch.zeros(hidden, dtype=torch.float64), x[:seq_len])  # (T, H, H)
    return torch.linalg.matrix_norm(jacobians, ord=2).tolist()


def gated_gradient_norms(seq_len: int, cell: str, *, hidden: int = HIDDEN, forget_bias: float = 0.0,
                         seed: int = 0) -> list[float]:
    """The same measurement for an nn.LSTM or nn.GRU of the same size at PyTorch's default init, same inputs.

    The norm is of dh_t / d(initial state): for the LSTM that state is (h_0, c_0), where the cell's long
    path runs, multiplied at each step by the forget gate; forget_bias is added to that gate's bias
    (LSTM only). See gated_trajectory_norms: computed at the longest length once, then cut to seq_len.
    """
    if forget_bias and cell != "lstm":
        raise ValueError("forget_bias is the LSTM's forget gate; a GRU has none")
    return list(gated_trajectory_norms(check(cell, GATED, "cell"), hidden, forget_bias, seed)[:seq_len])


@functools.lru_cache(maxsize=8)  # pure in its arguments; one entry per (cell, hidden, forget_bias, seed)
def gated_trajectory_norms(cell: str, hidden: int, forget_bias: float, seed: int) -> tuple[float, ...]:
    """||dh_t / d(initial state)||_2 for t = 1 .. SEQ_MAX through nn.LSTM or nn.GRU (chained_jacobians)."""
    _, _, x, gen = recurrent_problem(1.0, hidden=hidden, seed=seed)  # the vanilla RNN's inputs, x (T, I)
    net = (nn.LSTM if cell == "lstm" else nn.GRU)(INPUTS, hidden, dtype=torch.float64, device="meta")
    net = net.to_empty(device="cpu")  # built without storage, so without a draw from the global RNG
    for p in net.parameters():  # PyTorch's default init, U(-1/sqrt(H), 1/sqrt(H)), drawn from the seed
        nn.init.uniform_(p, -1 / math.sqrt(hidden), 1 / math.sqrt(hidden), generator=gen)
    if cell == "lstm":
        with torch.no_grad():
            net.bias_hh_l0[hidden:2 * hidden] += forget_bias  # gate order (input, forget, cell, output)

    def step(s: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:  # one step of the real module: (S,), (I,) -> (S,)
        if cell == "lstm":
            _, (h, c) = net(x_t[None], (s[None, :hidden], s[None, hidden:]))  # the state is (h, c)
            return torch.cat([h[0], c[0]])
        return net(x_t[None], s[None])[1][0]

    size = 2 * hidden if cell == "lstm" else hidden
    jacobians = chained_jacobians(step, torch.zeros(size, dtype=torch.float64), x)[:, :hidden]  # (T, H, S)
    return tuple(torch.linalg.matrix_norm(jacobians.detach(), ord=2).tolist())


def time_comparison(seq_len: int, spectral_radius: float, *, nonlinearity: str = "linear",
                    seed: int = 0) -> pd.DataFrame:
    """Columns t, model, norm: the vanilla RNN, its bound spectral_radius^t, and LSTMs and a GRU of the same size.

    Norms are float64; a norm below float64's range is 0.0 and is left for the chart to drop.
    """
    series = {
        "bound ρ^t": [spectral_radius**t for t in range(1, seq_len + 1)],
        f"RNN, {nonlinearity}": rnn_gradient_norms(seq_len, spectral_radius, nonlinearity=nonlinearity, seed=seed),
        "LSTM": gated_gradient_norms(seq_len, "lstm", seed=seed),
        "LSTM, forget bias +1": gated_gradient_norms(seq_len, "lstm", forget_bias=1.0, seed=seed),
        "GRU": gated_gradient_norms(seq_len, "gru", seed=seed),
    }
    return pd.DataFrame([{"t": t, "model": name, "norm": v}
                         for name, values in series.items() for t, v in enumerate(values, start=1)])


def pascanu_condition(spectral_radius: float, nonlinearity: str, *, hidden: int = HIDDEN, seed: int = 0) -> dict:
    """Pascanu, Mikolov and Bengio (2013): sigma_max(W) < 1/gamma suffices to vanish; > 1/gamma is needed to explode.

    gamma bounds |phi'|: 1 for tanh and for the identity. Returns sigma_max (measured), 1/gamma and which side.
    """
    check(nonlinearity, NONLINEARITIES, "nonlinearity")
    w, *_ = recurrent_problem(spectral_radius, hidden=hidden, seed=seed)
    sigma, inverse_gamma = torch.linalg.matrix_norm(w, ord=2).item(), 1.0
    return {"sigma_max": sigma, "inverse_gamma": inverse_gamma, "vanishing_guaranteed": sigma < inverse_gamma}


from core.explosion_readings import READINGS  # noqa: E402, F401  (each experiment's words, chosen in core)
