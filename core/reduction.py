"""Reduction: what 'mean', 'sum' and 'none' do to the gradient, the step, the epoch loss and per-sample gradients.

Concept: backward() is linear, so the gradient of a batch's summed loss is exactly B times the gradient of
its mean loss. With SGD that is a B times larger step (a learning rate in disguise); Adam divides it back
out. 'none' keeps one loss per example: summed and divided by B by hand (d2l's updater), it is the mean
again. Per example, gradients are noisy, and averaging B of them shrinks that noise like 1/sqrt(B).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from core.controls import Control
from core.data import generator, mlp, regression_data

REDUCTIONS = ("mean", "sum")
EPOCH_METHODS = ("mean_of_batch_means", "weighted")

# The reference problem: the loss-scaling page's 4 -> 16 -> 1 tanh MLP (97 weights), on a pool of 512
# regression examples, so that batches up to 256 can be drawn live on every control change.
N_POOL, N_FEATURES, HIDDEN = 512, 4, 16
SWEEP_BATCHES = tuple(2**k for k in range(9))  # 1 ... 256, log-spaced for the log-log chart
DRAWS = 128  # random batches per size: enough for a 10-90% band and a spread within a few per cent

CONTROLS = (
    Control("batch_size", "int", default=32, lo=1, hi=256),  # at 32, sum at lr 0.05 is lr 1.6: it diverges
    Control("lr", "float", default=0.05, lo=0.001, hi=0.5, step=0.001),  # the mean trains at every B at 0.05
    Control("steps", "int", default=50, lo=1, hi=200),  # enough for the mean run to settle
    Control("n_examples", "int", default=100, lo=1, hi=300),  # 100 = 3 x 32 + 4: a last batch of 4
    Control("epoch_batch", "int", default=32, lo=1, hi=128),  # the usual 32, which 100 does not divide
    Control("sample_batch", "int", default=64, lo=2, hi=512),  # the loop's time grows with it; vmap's barely
    Control("class_weight", "float", default=5.0, lo=0.1, hi=10.0, step=0.1),  # weight of the rarest class
    Control("outputs", "int", default=4, lo=1, hi=16),  # D outputs per example: 'mean' divides by B * D
    Control("ignored", "int", default=3, lo=0, hi=11),  # targets set to ignore_index, of 12 (all 12 would be 0 / 0)
)

# Teaching moments, each a named setting of the controls above (labels in content/en/reduction.toml).
PRESETS = {
    "sum_small_lr": {"lr": 0.001},  # at a tiny lr the sum's 32x step looks like faster training
    "batches_of_one": {"batch_size": 1},  # the sum and the mean of one loss are the same number
    "last_batch_of_one": {"n_examples": 97, "epoch_batch": 32},  # one example weighs 32x; batch means mislead
    "all_per_sample": {"sample_batch": 512},  # one gradient for each of the 512 examples: vmap against the loop
}


def _check(name: str, valid: tuple[str, ...], what: str) -> None:
    if name not in valid:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(valid)}")


def reference_problem(seed: int = 0) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """The page's model (4 -> 16 -> 1, tanh) and its pool of regression examples, all drawn from seed."""
    x, y = regression_data(N_POOL, N_FEATURES, seed=seed)  # (N, D), (N, 1)
    return mlp((N_FEATURES, HIDDEN, 1), nn.Tanh, seed=seed), x, y


def flat_grad(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])  # (P,)


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])  # (P,)


def gradient_norm(reduction: str, batch_size: int, *, seed: int = 0) -> float:
    """Sum versus mean: the L2 norm of the whole gradient of MSELoss(reduction=...) on the first batch_size examples."""
    _check(reduction, REDUCTIONS, "reduction")
    if not 1 <= batch_size <= N_POOL:
        raise ValueError(f"batch_size must be in [1, {N_POOL}], got {batch_size}")
    model, x, y = reference_problem(seed)
    nn.MSELoss(reduction=reduction)(model(x[:batch_size]), y[:batch_size]).backward()
    return torch.linalg.vector_norm(flat_grad(model)).item()


def per_sample_gradients(model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample gradients with torch.func: row i is the gradient of loss_fn on example i alone. Shape (B, P)."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def loss_of_one(p, xi, yi):  # xi (D,), yi (O,): a batch of one, so a mean-reduced loss is that example's loss
        return loss_fn(functional_call(model, (p, buffers), (xi.unsqueeze(0),)), yi.unsqueeze(0))

    grads = vmap(grad(loss_of_one), in_dims=(None, 0, 0))(params, x, y)  # {name: (B, *shape)}
    return torch.cat([grads[name].flatten(1) for name in params], dim=1)  # (B, P)


def per_sample_gradients_loop(model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The same (B, P) matrix the slow way: one backward() per example, in a Python loop."""
    rows = []
    for i in range(len(x)):
        model.zero_grad()
        loss_fn(model(x[i : i + 1]), y[i : i + 1]).backward()
        rows.append(flat_grad(model).clone())
    return torch.stack(rows)  # (B, P)


@dataclass(frozen=True)
class NormSweep:
    norms: pd.DataFrame  # batch_size, reduction, first (gradient_norm on the first B), lo, median, hi (random batches)
    spread: pd.DataFrame  # batch_size, spread, closed_form (sqrt(tr Sigma / B)), and both without replacement
    full_norm: float  # ||mean gradient over the whole pool||: where the mean's norm settles


def norm_sweep(*, seed: int = 0) -> NormSweep:
    """Sum versus mean against B, and the noise of the mean gradient: DRAWS random batches of each size.

    Batches drawn with replacement give the mean of B per-sample gradients E||g_B - g||^2 = tr(Sigma) / B exactly,
    Sigma being the per-sample gradients' covariance over the pool; B distinct examples (a shuffling DataLoader)
    give tr(Sigma) / B * (N - B) / (N - 1), the finite-population correction. Both are measured.
    """
    model, x, y = reference_problem(seed)
    per_sample = per_sample_gradients(model, nn.MSELoss(), x, y).double()  # (N, P)
    full = per_sample.mean(dim=0)  # (P,)
    trace = ((per_sample - full) ** 2).sum(dim=1).mean().item()  # tr(Sigma)
    picks = torch.randint(0, N_POOL, (DRAWS, max(SWEEP_BATCHES)), generator=generator(seed + 30_000))  # (R, Bmax)
    running = per_sample[picks].cumsum(dim=1)  # (R, Bmax, P): running[:, B - 1] sums the first B of each draw
    gen = generator(seed + 31_000)  # and as a shuffling DataLoader draws: B distinct examples, without replacement
    distinct = torch.stack([torch.randperm(N_POOL, generator=gen)[: max(SWEEP_BATCHES)] for _ in range(DRAWS)])
    running_distinct = per_sample[distinct].cumsum(dim=1)  # (R, Bmax, P)
    norm_rows, spread_rows = [], []
    for b in SWEEP_BATCHES:
        sums = running[:, b - 1]  # (R, P)
        for reduction, g in (("sum", sums), ("mean", sums / b)):
            q = np.quantile(torch.linalg.vector_norm(g, dim=1).numpy(), (0.1, 0.5, 0.9))
            norm_rows.append({"batch_size": b, "reduction": reduction, "first": gradient_norm(reduction, b, seed=seed),
                              "lo": q[0], "median": q[1], "hi": q[2]})
        spread = ((sums / b - full) ** 2).sum(dim=1).mean().sqrt().item()
        without = ((running_distinct[:, b - 1] / b - full) ** 2).sum(dim=1).mean().sqrt().item()
        fpc = (N_POOL - b) / (N_POOL - 1)  # the finite-population correction of sampling without replacement
        spread_rows.append({"batch_size": b, "spread": spread, "closed_form": (trace / b) ** 0.5,
                            "spread_without": without, "closed_form_without": (trace / b * fpc) ** 0.5})
    return NormSweep(pd.DataFrame(norm_rows), pd.DataFrame(spread_rows), torch.linalg.vector_norm(full).item())


def batch_indices(steps: int, batch_size: int, n: int, *, seed: int = 0) -> torch.Tensor:
    """Shuffled epochs cut into batches of exactly batch_size, as a DataLoader with drop_last=True. (steps, B)"""
    gen = generator(seed + 40_000)
    epochs = -(-steps * batch_size // n)
    return torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)])[: steps * batch_size].view(steps, -1)


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    _check(name, ("sgd", "adam"), "optimizer")
    return torch.optim.SGD(params, lr=lr) if name == "sgd" else torch.optim.Adam(params, lr=lr)


RUNS = {  # run -> (optimizer, reduction, lr divided by B?)
    "SGD, mean, lr": ("sgd", "mean", False),
    "SGD, sum, lr": ("sgd", "sum", False),
    "SGD, sum, lr / B": ("sgd", "sum", True),
    "Adam, mean, lr": ("adam", "mean", False),
    "Adam, sum, lr": ("adam", "sum", False),
}


@dataclass(frozen=True)
class TrainRuns:
    curves: pd.DataFrame  # step, run, optimizer, loss (MSE over the pool; inf/NaN where a run diverged)
    step_ratio: float  # ||first SGD step on the sum|| / ||first SGD step on the mean||, both at lr: B
    sgd_gap: float  # max |theta| difference at the end: SGD sum at lr / B against SGD mean at lr
    adam_gap: float  # the same for Adam on the sum against Adam on the mean
    diverged: tuple[str, ...]  # runs whose loss became non-finite or passed 1e6
    sgd_gaps: tuple[float, ...] = ()  # sgd_gap after each step, from step 0 (the start) on
    adam_gaps: tuple[float, ...] = ()  # adam_gap after each step

    def first(self, steps: int) -> TrainRuns:
        """The runs as train_runs with fewer steps gives them: every number is read off the steps up to it."""
        if steps == len(self.sgd_gaps) - 1:
            return self
        curves = self.curves[self.curves.step <= steps].reset_index(drop=True)
        return TrainRuns(curves, self.step_ratio, self.sgd_gaps[steps], self.adam_gaps[steps], diverged_runs(curves),
                         self.sgd_gaps[: steps + 1], self.adam_gaps[: steps + 1])


def diverged_runs(curves: pd.DataFrame) -> tuple[str, ...]:
    worst = curves.groupby("run", sort=False).loss.apply(lambda s: not (np.isfinite(s).all() and s.max() < 1e6))
    return tuple(worst[worst].index)


def train_runs(batch_size: int, *, lr: float = 0.05, steps: int = 50, seed: int = 0) -> TrainRuns:
    """Sum versus mean in training: the same batches, SGD and Adam, each reduction; SGD on the sum also at lr / B."""
    start_model, x, y = reference_problem(seed)
    idx = batch_indices(steps, batch_size, N_POOL, seed=seed)  # (S, B)
    batches = [(x[batch], y[batch]) for batch in idx]  # each step's (B, D) inputs and (B, 1) targets, for every run
    with torch.inference_mode():  # evaluation only: no graph to record
        start_loss = nn.functional.mse_loss(start_model(x), y).item()
    rows, paths = [], {}
    for run, (name, reduction, scaled) in RUNS.items():
        model = copy.deepcopy(start_model)  # every run starts from the same weights
        opt = make_optimizer(name, model.parameters(), lr / batch_size if scaled else lr)
        loss_fn = nn.MSELoss(reduction=reduction)
        losses, path = [start_loss], [flat_params(model)]  # the loss over the pool and the weights, after each step
        for xb, yb in batches:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
            path.append(flat_params(model))
            with torch.inference_mode():
                losses.append(nn.functional.mse_loss(model(x), y).item())
            if not np.isfinite(losses[-1]):  # from here on every number is NaN: stop paying for it
                break
        losses += [float("nan")] * (steps + 1 - len(losses))
        rows += [{"step": i, "run": run, "optimizer": name, "loss": v} for i, v in enumerate(losses)]
        paths[run] = torch.stack(path + path[-1:] * (steps + 1 - len(path)))  # (S + 1, P); a broken run stays put

    def gaps(a: str, b: str) -> tuple[float, ...]:  # the largest weight difference after each step
        return tuple((paths[a] - paths[b]).abs().amax(dim=1).tolist())

    first = {run: torch.linalg.vector_norm((path[1] - path[0]).double()).item() for run, path in paths.items()}
    sgd, adam = gaps("SGD, sum, lr / B", "SGD, mean, lr"), gaps("Adam, sum, lr", "Adam, mean, lr")
    curves = pd.DataFrame(rows)
    return TrainRuns(curves, first["SGD, sum, lr"] / first["SGD, mean, lr"], sgd[-1], adam[-1], diverged_runs(curves),
                     sgd, adam)


def epoch_loss(per_sample_losses, batch_size: int, method: str) -> float:
    """The loss an epoch reports when its samples come in order in batches of batch_size (the last may be short).

    "mean_of_batch_means" averages the batch means, so a short last batch counts as much as a full one;
    "weighted" adds float(l) * len(y) per batch and divides by N, as d2l's loop does: the true mean.
    """
    _check(method, EPOCH_METHODS, "method")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    losses = torch.as_tensor(per_sample_losses, dtype=torch.float64).flatten()  # (N,)
    means = [float(chunk.mean()) for chunk in losses.split(batch_size)]  # one float(l) per batch
    if method == "mean_of_batch_means":
        return sum(means) / len(means)
    return sum(m * len(chunk) for m, chunk in zip(means, losses.split(batch_size))) / len(losses)


@dataclass(frozen=True)
class ShortBatch:
    examples: pd.DataFrame  # example, batch, batch_len, loss, batch_mean, weight (in the epoch's gradient), relative
    mean_of_batch_means: float
    weighted: float
    true_mean: float
    last_len: int  # size of the last batch (== the full size when N divides evenly)


def short_batch(n_examples: int, batch_size: int, *, seed: int = 0) -> ShortBatch:
    """A short last batch: the epoch loss three ways, and the weight each example gets with mean reduction."""
    model, x, y = reference_problem(seed)
    with torch.no_grad():
        losses = nn.MSELoss(reduction="none")(model(x[:n_examples]), y[:n_examples]).flatten()  # (N,)
    lens = [len(chunk) for chunk in losses.split(batch_size)]
    batch = np.repeat(np.arange(len(lens)), lens)
    blen = np.repeat(lens, lens)
    df = pd.DataFrame({"example": np.arange(n_examples), "batch": batch, "batch_len": blen, "loss": losses.numpy()})
    df["batch_mean"] = df.groupby("batch").loss.transform("mean")
    df["weight"] = 1.0 / df.batch_len  # mean reduction: each example's gradient enters its batch's step as g_i / b
    df["relative"] = lens[0] / df.batch_len  # against an example in a full batch
    return ShortBatch(df, epoch_loss(losses, batch_size, "mean_of_batch_means"),
                      epoch_loss(losses, batch_size, "weighted"), losses.double().mean().item(), lens[-1])


def d2l_sgd(params, lr: float, batch_size: int) -> None:
    """d2l's hand-written updater: after l.sum().backward(), step by lr * grad / batch_size, then clear the grads."""
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


@dataclass(frozen=True)
class D2lRoutes:
    gap_d2l: float  # max |theta| difference: d2l's 'none' + sum + updater against torch.optim.SGD on the mean
    gap_none_mean: float  # 'none' then l.mean().backward() with torch.optim.SGD, against the same
    loss_gap: float  # |sum of float(l) * len(y) - sum of float(l.sum())| over the epochs, divided by N
    diverged: bool  # some route's final loss is non-finite or past 1e6: the gaps then measure two explosions


def d2l_routes(n_examples: int, batch_size: int, *, lr: float = 0.05, epochs: int = 3, seed: int = 0) -> D2lRoutes:
    """Three routes to one update over epochs with a short last batch: mean + torch.optim.SGD, 'none' + sum + d2l_sgd,
    'none' + mean + torch.optim.SGD."""
    start_model, x, y = reference_problem(seed)
    x, y = x[:n_examples], y[:n_examples]
    mean_loss, each_loss = nn.MSELoss(), nn.MSELoss(reduction="none")
    finals, totals, worst = {}, {}, 0.0
    for route in ("mean", "d2l", "none_mean"):
        model = copy.deepcopy(start_model)  # every route starts from the same weights
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        total = 0.0
        for _ in range(epochs):
            for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
                if route == "mean":
                    opt.zero_grad()
                    loss = mean_loss(model(xb), yb)  # a scalar: the batch mean
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(yb)  # d2l's float(l) * len(y): the batch's sum again
                else:
                    loss = each_loss(model(xb), yb)  # (b, 1): one loss per example
                    if route == "d2l":
                        loss.sum().backward()
                        d2l_sgd(model.parameters(), lr, xb.shape[0])  # divides by this batch's own size
                    else:
                        opt.zero_grad()
                        loss.mean().backward()
                        opt.step()
                    total += loss.sum().item()  # d2l's float(l.sum())
        finals[route], totals[route] = flat_params(model), total
        with torch.no_grad():
            final_loss = nn.functional.mse_loss(model(x), y).item()
        worst = final_loss if not np.isfinite(final_loss) else max(worst, final_loss)
    gap = lambda a: (finals[a] - finals["mean"]).abs().max().item()
    return D2lRoutes(gap("d2l"), gap("none_mean"), abs(totals["mean"] - totals["d2l"]) / (epochs * n_examples),
                     not (np.isfinite(worst) and worst < 1e6))


@dataclass(frozen=True)
class PerSample:
    norms: pd.DataFrame  # example, norm (of that example's own gradient)
    mean_norm: float  # the average of the per-sample norms
    batch_norm: float  # the norm of the batch-mean gradient (never larger: Jensen, the triangle inequality)
    loop_gap: float  # max |vmap - loop| over the (B, P) matrix
    accumulated_gap: float  # per-sample backward() calls without zero_grad against the 'sum' gradient, relative
    vmap_ms: float  # wall-clock time of the two routes, measured on the calls above: they vary from run to run
    loop_ms: float


def per_sample(batch_size: int, *, seed: int = 0) -> PerSample:
    """Per-sample gradients of the first batch_size examples, both routes timed, and what accumulating them gives."""
    model, x, y = reference_problem(seed)
    x, y = x[:batch_size], y[:batch_size]
    per_sample_gradients(model, nn.MSELoss(), x[:2], y[:2])  # warm-up: torch.func traces on its first call
    start = time.perf_counter()
    fast = per_sample_gradients(model, nn.MSELoss(), x, y)  # (B, P)
    middle = time.perf_counter()
    slow = per_sample_gradients_loop(model, nn.MSELoss(), x, y)  # (B, P)
    end = time.perf_counter()
    model.zero_grad()
    for i in range(batch_size):  # one backward per example, never zeroed: .grad adds them up
        nn.MSELoss()(model(x[i : i + 1]), y[i : i + 1]).backward()
    accumulated = flat_grad(model)
    model.zero_grad()
    nn.MSELoss(reduction="sum")(model(x), y).backward()
    summed = flat_grad(model)
    norms = torch.linalg.vector_norm(fast, dim=1)  # (B,)
    return PerSample(pd.DataFrame({"example": np.arange(batch_size), "norm": norms.numpy()}), norms.mean().item(),
                     torch.linalg.vector_norm(fast.mean(dim=0)).item(), (fast - slow).abs().max().item(),
                     ((accumulated - summed).abs().max() / summed.abs().max()).item(),
                     (middle - start) * 1e3, (end - middle) * 1e3)


# What "mean" divides by beyond examples (class weights, every element, ignore_index): core/reduction_elements.py.
from core.reduction_elements import ClassWeights, class_weights  # noqa: E402,F401
from core.reduction_readings import READINGS  # noqa: E402,F401  (readers use the functions above)
