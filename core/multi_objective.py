"""Combining objectives: minimising one loss while maximising another, and weighting terms of different size.

Concept: PyTorch minimises whatever scalar `backward()` is called on, so "maximise loss2" means minimising
`loss1 - alpha * loss2` (or `maximize=True` on the optimizer, the same thing). Three things decide what
that does: whether loss2 carries a gradient at all (a value copied with `torch.tensor` does not), whether
it has a maximiser (the sum of the weights has none; tanh of it is bounded but still has none, since
tanh never reaches its ceiling), and how large each term's gradient is. The balancing methods of
experiment 4 live in core/multi_objective_balance.py; what the page says about the numbers, in
core/multi_objective_readings.py (READINGS).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.controls import Control
from core.data import generator, mlp
from core.multi_objective_balance import METHODS, OPTIMIZERS, balance_run, mgda, pareto_front, pcgrad  # noqa: F401

VARIANTS = ("loss1_only", "detached", "maximize", "bounded", "target")
TARGET = 5.0  # loss1 = (TARGET - sum of the outputs)^2, as in the learner's setup
LOSS2_TARGET = 3.0  # "target": push loss2 up to 3 and no further, a term with a maximiser (every seed starts below)

# Experiment 2: ridge regression, where the data fit and the weight norm compete and every alpha has
# an exact optimum. 64 examples and 8 features: small enough to train 29 alphas at once on every rerun.
N_EXAMPLES, N_FEATURES, NOISE = 64, 8, 0.5
SWEEP_ALPHAS = tuple(10.0 ** (k / 4) for k in range(-24, 17))  # 1e-6 .. 1e4, four per decade
SGD_LR, ADAM_LR, TRADEOFF_STEPS = 0.1, 0.05, 200  # both converge at every stable alpha within 200 steps
SEED_STEPS = 300  # long enough for loss1 alone to converge from every seed
OVERALL_STEPS = 100  # a factor on the whole loss shows in SGD's run long before it converges
OVERALL_FACTORS = (1e3, 1e-3)  # the whole loss x 1000 and / 1000: SGD diverges, then barely moves; Adam does neither
FLAG_STEPS = 50  # maximize=True against the minus sign: identical at every step, 50 is plenty to see it

CONTROLS = (
    Control("max_alpha_exp", "log10", default=0, lo=-3, hi=3),  # alpha in loss1 - alpha * loss2; 1 is the plain sum
    Control("alpha_exp", "log10", default=0, lo=-4, hi=3),  # alpha = 1 sits at the knee of the trade-off
    Control("scale_exp", "log10", default=0, lo=-4, hi=4),  # loss2 x 10^k; 0 is no mismatch
    Control("mismatch_exp", "int", default=3, lo=-4, hi=4),  # task 2's loss x 10^m; 10^3 is a large, common gap
    Control("task_alpha_exp", "log10", default=0, lo=-4, hi=4),  # the fixed weight; 1 is the naive sum
    Control("optimizer", "select", default="adam", options=OPTIMIZERS),  # Adam: the learner's optimizer
)

# Teaching moments, each a named setting of the controls above (labels in content/en/multi_objective.toml).
PRESETS = {
    "maximize_hard": {"max_alpha_exp": 3},  # a large alpha: loss1 pays dearly for a climb that never ends
    "loss2_in_other_units": {"scale_exp": 3},  # loss2 x 1000: every alpha relabelled, SGD's limit with it
    "sgd_large_mismatch": {"optimizer": "sgd"},  # with the default 10^3 gap: the plain sum and PCGrad diverge
    "alpha_undoes_mismatch": {"task_alpha_exp": -3},  # alpha = 10^-m: the plain sum, balanced by hand
}


def seed_setup(seed: int = 0) -> tuple[nn.Sequential, torch.Tensor]:
    """The learner's setup: an MLP 1 -> 5 -> 10 -> 1 with ReLU, and three inputs drawn from [0, 1)."""
    features = torch.rand((3, 1), generator=generator(seed + 30_000))  # (3, 1)
    return mlp((1, 5, 10, 1), nn.ReLU, seed=seed), features


def seed_example(variant: str, *, steps: int = 200, alpha: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Minimise one term while maximising another: the learner's loop, in four variants.

    loss1 = (5 - sum of outputs)^2 is minimised; loss2 = the sum of every parameter. "loss1_only" trains on
    loss1; "detached" adds loss2 rebuilt with torch.tensor (a copy of values, cut from the graph);
    "maximize" minimises loss1 - alpha * loss2 with a differentiable loss2; "bounded" maximises tanh(loss2),
    bounded by 1 but with no maximiser (tanh never reaches 1, its gradient 1 - tanh^2 never reaches 0);
    "target" maximises -(loss2 - 3)^2, which has one: loss2 = 3. Adam at its defaults.
    Columns: step, loss1, loss2 (before that step's update).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    model, features = seed_setup(seed)
    opt = torch.optim.Adam(model.parameters())
    rows = []
    for step in range(steps):
        opt.zero_grad()
        loss1 = (TARGET - model(features).sum()) ** 2
        if variant == "detached":
            with warnings.catch_warnings():  # PyTorch warns here: each sum is copied out as a plain number
                warnings.simplefilter("ignore", UserWarning)
                loss2 = torch.tensor([p.sum() for p in model.parameters()]).sum()  # requires_grad is False
            loss = loss1 + loss2
        else:
            loss2 = torch.stack([p.sum() for p in model.parameters()]).sum()  # stays in the graph
            loss = {"loss1_only": loss1, "maximize": loss1 - alpha * loss2,
                    "bounded": loss1 - alpha * torch.tanh(loss2),
                    "target": loss1 + alpha * (loss2 - LOSS2_TARGET) ** 2}[variant]
        loss.backward()
        opt.step()
        rows.append((step, loss1.item(), loss2.item()))
    return pd.DataFrame(rows, columns=["step", "loss1", "loss2"])


def adam_update(params: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                step: int, *, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """Step `step` (from 1) of torch.optim.Adam on one tensor of parameters, in place.

    The operations of Adam's single-tensor update in the same order, so each element moves bit for bit as
    under torch.optim.Adam (each element's update reads only that element), without the optimizer's
    per-step bookkeeping: seed_examples moves every variant's weights, held in one tensor, with one call.
    """
    beta1, beta2 = betas
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step_size = lr / (1 - beta1 ** float(step))
    denom = (exp_avg_sq.sqrt() / (1 - beta2 ** float(step)) ** 0.5).add_(eps)
    params.addcdiv_(exp_avg, denom, value=-step_size)


def seed_examples(variants, *, steps: int = 200, alpha: float = 1.0, seed: int = 0) -> dict[str, pd.DataFrame]:
    """seed_example for several variants at once, bit for bit: {variant: its frame}.

    Every variant's loop starts from the same weights and never reads another's, so they run side by side:
    one backward pass through all their graphs, and one Adam update of all their weights, held as views of
    one flat tensor. loss2 is the sum of every weight, so d loss2 / d w = 1 for each weight: backward through
    the sums would add d loss / d loss2 to every weight's gradient. Here loss2 is a leaf of its own; backward
    stops there, and that one number is added by hand. Everything else is the graph seed_example builds.
    """
    variants = tuple(variants)
    for variant in variants:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    model, features = seed_setup(seed)
    # Each weight starts a 64-byte line, as a tensor of its own does: MKL's roundings can depend on where a
    # matrix starts, and seed_example's weights are tensors of their own. The padding between them stays 0.
    starts = np.cumsum([0] + [-(-p.numel() // 16) * 16 for p in model.parameters()]).tolist()
    flat = torch.zeros(len(variants), starts[-1])  # (V, P with padding)
    grad, exp_avg, exp_avg_sq = torch.zeros_like(flat), torch.zeros_like(flat), torch.zeros_like(flat)
    weights = torch.zeros_like(flat)  # 1 where a weight is
    spans = [(start, start + w.numel()) for start, w in zip(starts, model.parameters())]
    params = []
    for k in range(len(variants)):
        own = []
        for (start, end), w in zip(spans, model.parameters()):
            flat[k, start:end] = w.detach().reshape(-1)
            weights[k, start:end] = 1
            p = flat[k, start:end].view(w.shape).requires_grad_()  # a leaf whose storage is part of flat
            p.grad = grad[k, start:end].view(w.shape)  # backward adds this parameter's gradient here
            own.append(p)
        params.append(own)
    pushed = any(v not in ("loss1_only", "detached") for v in variants)  # some loss reads loss2 with its gradient
    record = []
    for step in range(steps):
        grad.zero_()
        with torch.no_grad():  # each variant's loss2: every weight tensor summed, then those sums, as seed_example does
            totals = torch.stack([flat[:, start:end].sum(dim=1) for start, end in spans], dim=1).sum(dim=1)  # (V,)
        totals.requires_grad_(pushed)
        losses, values = [], []
        for variant, own, loss2 in zip(variants, params, totals.unbind()):
            h = features
            for i in range(0, len(own), 2):  # the Sequential's Linear layers, with a ReLU between each two
                h = nn.functional.linear(h if i == 0 else nn.functional.relu(h), own[i], own[i + 1])
            loss1 = (TARGET - h.sum()) ** 2
            if variant == "maximize":
                loss = loss1 - alpha * loss2
            elif variant == "bounded":
                loss = loss1 - alpha * torch.tanh(loss2)
            elif variant == "target":
                loss = loss1 + alpha * (loss2 - LOSS2_TARGET) ** 2
            elif variant == "detached":
                loss = loss1 + loss2.detach()  # a copy of the value, as torch.tensor makes: no gradient passes back
            else:
                loss = loss1
            losses.append(loss)
            values += [loss1, loss2]
        torch.autograd.backward(losses)
        with torch.no_grad():
            if pushed:  # the chain rule through loss2 = the sum of the weights: d loss / d loss2 on each weight
                grad.addcmul_(weights, totals.grad[:, None])
            record.append(torch.stack(values))
            adam_update(flat, grad, exp_avg, exp_avg_sq, step + 1)
    values = (torch.stack(record) if record else torch.zeros(0, 2 * len(variants))).double().numpy()  # (T, 2V)
    return {v: pd.DataFrame({"step": np.arange(steps), "loss1": values[:, 2 * k], "loss2": values[:, 2 * k + 1]})
            for k, v in enumerate(variants)}


def loss2_requires_grad(seed: int = 0) -> dict[str, bool]:
    """Whether loss2 can pass a gradient back, for three ways of building it from the per-parameter sums."""
    model, _ = seed_setup(seed)
    sums = [p.sum() for p in model.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        copied = torch.tensor(sums).sum()
    return {"torch.tensor": copied.requires_grad, "torch.stack": torch.stack(sums).sum().requires_grad,
            "sum()": sum(sums).requires_grad}


def maximize_flag_gap(*, steps: int = FLAG_STEPS, alpha: float = 1.0, seed: int = 0) -> float:
    """max |theta| difference: Adam on loss1 - alpha*loss2, against Adam(maximize=True) on alpha*loss2 - loss1."""
    finals = []
    for maximize in (False, True):
        model, features = seed_setup(seed)
        opt = torch.optim.Adam(model.parameters(), maximize=maximize)
        for _ in range(steps):
            opt.zero_grad()
            loss1 = (TARGET - model(features).sum()) ** 2
            loss2 = torch.stack([p.sum() for p in model.parameters()]).sum()
            objective = alpha * loss2 - loss1 if maximize else loss1 - alpha * loss2
            objective.backward()
            opt.step()
        finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    return (finals[0] - finals[1]).abs().max().item()


def seed_summary(runs: pd.DataFrame) -> dict[str, float]:
    """What the four loops of seed_example did, from their rows (a `variant` column tells them apart).

    gap: largest |loss1| difference between the detached and the loss1-only run (0 means identical);
    loss2_start: loss2 at step 0 (every loop starts from the same weights);
    loss1_<v>: loss1 averaged over the last tenth of the steps; loss2_<v>: loss2 at the last step;
    slope_<v>: loss2's rise per step over the last tenth of the steps; pays: whether loss1, so averaged, is more
    than ten times (and 1e-3 above) the loss1-only run's while maximising.
    """
    by = {v: g.sort_values("step") for v, g in runs.groupby("variant")}
    tail = max(len(by["maximize"]) // 10, 2)
    out = {"gap": float(np.max(np.abs(by["detached"].loss1.to_numpy() - by["loss1_only"].loss1.to_numpy()))),
           "loss2_start": float(by["maximize"].loss2.iloc[0])}
    for v, g in by.items():
        out[f"loss1_{v}"] = float(g.loss1.iloc[-tail:].mean())
        out[f"loss2_{v}"] = float(g.loss2.iloc[-1])
        out[f"slope_{v}"] = float((g.loss2.iloc[-1] - g.loss2.iloc[-tail]) / (tail - 1))
    out["pays"] = out["loss1_maximize"] > 10 * out["loss1_loss1_only"] + 1e-3  # loss1 visibly worse while maximising
    return out


def ridge_problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear regression data in float64: x (N, D), y (N,) = x @ w_true + noise."""
    gen = generator(seed + 40_000)
    x = torch.randn(N_EXAMPLES, N_FEATURES, generator=gen, dtype=torch.float64)
    w_true = torch.randn(N_FEATURES, generator=gen, dtype=torch.float64)
    return x, x @ w_true + NOISE * torch.randn(N_EXAMPLES, generator=gen, dtype=torch.float64)


def _ridge_losses(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """loss1 = mean squared error, loss2 = squared weight norm, for each row of w (A, D)."""
    return ((w @ x.T - y) ** 2).mean(dim=1), (w**2).sum(dim=1)  # (A,), (A,)


def tradeoff_curve(alphas, *, seed: int = 0) -> pd.DataFrame:
    """The trade-off between two competing convex objectives, exactly: for each alpha, both losses at the
    minimiser of loss1 + alpha * loss2 (ridge regression: (X^T X / n + alpha I) w = X^T y / n, float64).

    Columns: alpha, loss1 (mean squared error), loss2 (squared norm of w).
    """
    a = torch.as_tensor(np.asarray(alphas, dtype=float), dtype=torch.float64).reshape(-1)  # (A,)
    if not bool(torch.all(torch.isfinite(a) & (a >= 0))):
        raise ValueError("alphas must be finite and >= 0")
    x, y = ridge_problem(seed)
    n, d = x.shape
    gram = x.T @ x / n  # (D, D)
    w = torch.linalg.solve(gram + a[:, None, None] * torch.eye(d, dtype=torch.float64),
                           (x.T @ y / n).expand(len(a), d))  # (A, D)
    loss1, loss2 = _ridge_losses(w, x, y)
    return pd.DataFrame({"alpha": a.numpy(), "loss1": loss1.numpy(), "loss2": loss2.numpy()})


def train_tradeoff(alphas, *, optimizer: str, scale=1.0, overall=1.0,
                   steps: int = TRADEOFF_STEPS, seed: int = 0) -> pd.DataFrame:
    """Train the ridge model on overall * (loss1 + alpha * scale * loss2) from w = 0, every alpha at once.

    Each row of w is one alpha (scale and overall: one factor, or one per alpha); SGD and Adam update every
    element from its own gradient alone, so the rows are independent runs. float32, SGD at lr 0.1, Adam at lr 0.05.
    Columns: alpha, loss1, loss2 (unscaled; inf or NaN where the run diverged).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    x, y = (t.float() for t in ridge_problem(seed))
    a = torch.tensor(alphas, dtype=torch.float32)  # (A,)
    s = torch.as_tensor(scale, dtype=torch.float32)  # () or (A,)
    c = torch.as_tensor(overall, dtype=torch.float32)  # () or (A,)
    w = torch.zeros(len(a), x.shape[1], requires_grad=True)  # (A, D)
    opt = torch.optim.SGD([w], lr=SGD_LR) if optimizer == "sgd" else torch.optim.Adam([w], lr=ADAM_LR)
    for _ in range(steps):
        opt.zero_grad()
        loss1, loss2 = _ridge_losses(w, x, y)
        (c * (loss1 + a * s * loss2)).sum().backward()  # row i's gradient is its own objective's
        opt.step()
    with torch.no_grad():
        loss1, loss2 = _ridge_losses(w, x, y)
    return pd.DataFrame({"alpha": np.asarray(alphas, dtype=float), "loss1": loss1.double().numpy(),
                         "loss2": loss2.double().numpy()})


def tradeoff_sweep(*, scale: float = 1.0, seed: int = 0, alphas=SWEEP_ALPHAS) -> pd.DataFrame:
    """The exact optimum for loss1 + alpha * scale * loss2 beside SGD and Adam trained on it.

    Columns: run ("exact", "sgd", "adam"), alpha, loss1, loss2. A mismatch factor on loss2 moves every
    alpha by the same factor: the exact run is tradeoff_curve at alpha * scale.
    """
    return tradeoff_sweeps([scale], seed=seed, alphas=alphas)[0]


def tradeoff_sweeps(scales, *, seed: int = 0, alphas=SWEEP_ALPHAS) -> list[pd.DataFrame]:
    """tradeoff_sweep at each scale, for about the price of one: every (scale, alpha) pair is one row of a single
    train_tradeoff per optimizer, and its rows are independent runs."""
    scales, alphas = list(scales), list(alphas)
    pairs = [(scale, alpha) for scale in scales for alpha in alphas]
    trained = {o: train_tradeoff([a for _, a in pairs], optimizer=o, scale=[s for s, _ in pairs], seed=seed)
               for o in OPTIMIZERS}
    sweeps = []
    for i, scale in enumerate(scales):
        rows = slice(i * len(alphas), (i + 1) * len(alphas))
        exact = tradeoff_curve([a * scale for a in alphas], seed=seed).assign(alpha=alphas, run="exact")
        runs = [frame.iloc[rows].reset_index(drop=True).assign(run=o) for o, frame in trained.items()]
        sweeps.append(pd.concat([exact, *runs], ignore_index=True)[["run", "alpha", "loss1", "loss2"]])
    return sweeps


def sgd_alpha_limit(scale: float = 1.0, *, lr: float = SGD_LR, seed: int = 0) -> float:
    """The largest alpha SGD survives on loss1 + alpha * scale * loss2: lr * (largest curvature) must stay below 2.

    The Hessian is 2 X^T X / n + 2 alpha scale I, so alpha * scale < 1 / lr - lambda_max(X^T X / n).
    """
    x, _ = ridge_problem(seed)
    return (1 / lr - torch.linalg.eigvalsh(x.T @ x / len(x))[-1].item()) / scale


@dataclass(frozen=True)
class OverallScale:
    sgd_gap: float  # largest |difference| in the final (loss1, loss2): trained on c * total, and on total
    adam_gap: float  # the same for Adam, whose step divides out a constant factor


def overall_scale_gap(overall: float, alpha: float = 1.0, *, steps: int = OVERALL_STEPS, seed: int = 0) -> OverallScale:
    """Multiply the whole loss instead of one term: the ratio stays, so the optimum stays; does the run?"""
    gaps = {}
    for name in OPTIMIZERS:
        run = train_tradeoff([alpha, alpha], optimizer=name, overall=[overall, 1.0], steps=steps, seed=seed)
        finals = run[["loss1", "loss2"]].to_numpy()  # (2, 2)
        gaps[name] = float(np.max(np.abs(finals[0] - finals[1])))  # inf or NaN when the scaled run diverged
    return OverallScale(gaps["sgd"], gaps["adam"])


def knee_alpha(scale: float = 1.0, *, seed: int = 0) -> float:
    """The alpha at which loss2 has fallen to half its unweighted (alpha = 0) value, with loss2 x scale.

    Interpolated in log alpha on the exact curve, 20 points per decade; it moves exactly as 1 / scale.
    """
    grid = np.concatenate([[0.0], 10.0 ** np.arange(-8, 8.01, 0.05)])
    curve = tradeoff_curve(grid, seed=seed)
    half = curve.loss2.iloc[0] / 2
    return float(10 ** np.interp(-half, -curve.loss2.to_numpy()[1:], np.log10(grid[1:]))) / scale


def tanh_push(alpha: float, loss2: float) -> tuple[float, float]:
    """What still pushes a tanh-bounded loss2 up: d/d(loss2) of alpha * tanh(loss2), in float64 and in float32.

    alpha * (1 - tanh^2) is positive at every finite loss2 (no maximiser); float32, the dtype the run uses,
    rounds tanh to exactly 1 from about 9.01 on, and autograd's 1 - tanh^2 then gives exactly 0.
    """
    exact = alpha / np.cosh(np.float64(loss2)) ** 2  # sech^2, without 1 - tanh^2's cancellation
    y = torch.tanh(torch.tensor(loss2, dtype=torch.float32))
    return float(exact), float(alpha * (1 - y * y))


def __getattr__(name: str):
    """READINGS, from core/multi_objective_readings.py, loaded on first use (that module imports this one)."""
    if name == "READINGS":
        from core.multi_objective_readings import READINGS

        return READINGS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
