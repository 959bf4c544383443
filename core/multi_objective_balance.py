"""Balancing two objectives on one shared model: conflicting gradients, and six ways to combine them.

Concept: on a shared model each objective has its own gradient; where they point apart (negative
cosine) one objective's progress is the other's loss. How the two gradients are combined into one
update decides which trade-off training reaches, and whether a scale mismatch between the terms
decides it for you. Every method here turns the two task gradients g1, g2 into one direction:
  fixed        g1 + alpha g2                           (the plain weighted sum)
  initial      g1 / L1(0) + g2 / L2(0)                 (each loss divided by its value at the start)
  unit_norm    g1 / |g1| + g2 / |g2|                   (each task gradient normalised to unit norm)
  uncertainty  the gradient of sum_t 0.5 exp(-s_t) L_t + 0.5 s_t, s_t = log sigma_t^2 learned alongside
               (Kendall, Gal and Cipolla 2018, their regression form 1/(2 sigma^2) L + log sigma)
  pcgrad       each gradient minus its projection on the other when they conflict (Yu et al. 2020)
  mgda         the minimum-norm point of the segment between g1 and g2 (Sener and Koltun 2018)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from core.data import generator

METHODS = ("fixed", "initial", "unit_norm", "uncertainty", "pcgrad", "mgda")
OPTIMIZERS = ("adam", "sgd")
LR = {"adam": 0.05, "sgd": 0.1}  # each converges on the balanced methods within the run's steps
N_EXAMPLES, N_FEATURES = 64, 8
NOISE = (0.5, 2.0)  # task 2 is noisier: a higher floor under its loss that no gradient can lower
OPTIMA_COSINE = 0.5  # the two tasks' true weights share half their direction: they agree at first, then conflict
STEPS = 200  # every method but uncertainty weighting has settled by then at the defaults


def task_problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two regression tasks on the same inputs, for one shared linear model: x (N, D), y (2, N)."""
    gen = generator(seed + 50_000)
    x = torch.randn(N_EXAMPLES, N_FEATURES, generator=gen)
    u, v = torch.linalg.qr(torch.randn(N_FEATURES, 2, generator=gen)).Q.T  # two orthonormal directions
    w_true = 2 * torch.stack([u, OPTIMA_COSINE * u + (1 - OPTIMA_COSINE**2) ** 0.5 * v])  # (2, D)
    return x, w_true @ x.T + torch.tensor(NOISE)[:, None] * torch.randn(2, N_EXAMPLES, generator=gen)


def task_losses(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each task's mean squared error for each row of w (M, D): shape (M, 2)."""
    return ((w @ x.T)[:, None, :] - y).pow(2).mean(dim=-1)  # (M, 1, N) - (2, N) -> (M, 2)


def pcgrad(g1: torch.Tensor, g2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PCGrad for two tasks (Yu et al. 2020): where g1 . g2 < 0, remove from each its projection on the other.

    Works on (..., P) batches. Afterwards each projected gradient has a non-negative dot product with the
    other task's original gradient (zero where they conflicted); where they did not, both are unchanged.
    """
    dot = (g1 * g2).sum(dim=-1, keepdim=True)  # (..., 1)
    conflict = dot < 0
    p1 = torch.where(conflict, g1 - dot / (g2 * g2).sum(dim=-1, keepdim=True) * g2, g1)
    p2 = torch.where(conflict, g2 - dot / (g1 * g1).sum(dim=-1, keepdim=True) * g1, g2)
    return p1, p2


def mgda(g1: torch.Tensor, g2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-task MGDA (Sener and Koltun 2018): the minimum-norm point of the segment from g2 to g1.

    gamma = clip((g2 - g1) . g2 / |g1 - g2|^2, 0, 1); the direction is gamma g1 + (1 - gamma) g2. It has a
    non-negative dot product with both gradients, so a small enough step lowers both losses. Returns
    (direction (..., P), gamma (..., 1)).
    """
    diff = g1 - g2
    gamma = ((-diff * g2).sum(dim=-1, keepdim=True) / (diff * diff).sum(dim=-1, keepdim=True).clamp_min(1e-30))
    gamma = gamma.clamp(0, 1)  # (..., 1)
    return gamma * g1 + (1 - gamma) * g2, gamma


def balance_run(*, mismatch: float = 1e3, alpha: float = 1.0, optimizer: str = "adam", steps: int = STEPS,
                seed: int = 0, methods: tuple[str, ...] = METHODS) -> pd.DataFrame:
    """Train the shared model from w = 0 on L1 + mismatch * L2, the two terms combined by each method.

    Row i of w is method i's model; one optimizer over all rows takes the steps separate optimizers would
    (SGD and Adam update each element from its own history). Columns: method, step, loss1, loss2 (both
    unscaled MSEs, before that step's update), norm1 = |grad L1|, norm2 = |grad (mismatch * L2)|, the cosine
    between those two gradients, and weight2: the weight the method puts on mismatch * L2 relative to L1
    (PCGrad projects rather than weights: NaN; MGDA at gamma = 0: inf).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown {unknown or optimizer!r}; methods: {', '.join(METHODS)}; "
                         f"optimizers: {', '.join(OPTIMIZERS)}")
    x, y = task_problem(seed)
    w = torch.zeros(len(methods), x.shape[1], requires_grad=True)  # (M, D), one model per method
    log_var = torch.zeros(2, requires_grad=True)  # uncertainty weighting's s_t = log sigma_t^2
    params = [w, log_var] if "uncertainty" in methods else [w]  # no other method reads or moves s_t
    opt = torch.optim.Adam(params, lr=LR["adam"]) if optimizer == "adam" else torch.optim.SGD(params, lr=LR["sgd"])
    scale = torch.tensor([1.0, mismatch])
    record, first = [], None
    for step in range(steps + 1):
        raw = task_losses(w, x, y)  # (M, 2), what the charts show
        seen = raw * scale  # (M, 2), what training sees
        first = seen.detach() if first is None else first  # (M, 2), the losses at step 0
        g1, g2 = (torch.autograd.grad(seen[:, t].sum(), w, retain_graph=True)[0] for t in (0, 1))  # (M, D) each
        n1, n2 = g1.norm(dim=1), g2.norm(dim=1)  # (M,)
        direction, weight2 = [], []
        for i, method in enumerate(methods):
            a, b = g1[i], g2[i]
            if method == "fixed":
                d, r = a + alpha * b, alpha
            elif method == "initial":
                d, r = a / first[i, 0] + b / first[i, 1], first[i, 0] / first[i, 1]
            elif method == "unit_norm":
                d, r = a / n1[i] + b / n2[i], n1[i] / n2[i]
            elif method == "uncertainty":
                kendall = (0.5 * torch.exp(-log_var) * seen[i].detach() + 0.5 * log_var).sum()
                log_var.grad = torch.autograd.grad(kendall, log_var)[0]  # 0.5 - 0.5 e^-s L for each task
                weight = 0.5 * torch.exp(-log_var.detach())  # the loss weights 1 / (2 sigma^2)
                d, r = weight[0] * a + weight[1] * b, weight[1] / weight[0]  # the gradient of kendall in w
            elif method == "pcgrad":
                p1, p2 = pcgrad(a, b)
                d, r = p1 + p2, float("nan")
            else:
                d, gamma = mgda(a, b)
                r = (1 - gamma) / gamma
            direction.append(d)
            weight2.append(float(r))
        cosine = (g1 * g2).sum(dim=1) / (n1 * n2)
        record.append(torch.stack([raw[:, 0], raw[:, 1], n1, n2, cosine, torch.tensor(weight2)], dim=1).detach())
        if step < steps:
            w.grad = torch.stack(direction).detach()  # (M, D)
            opt.step()
    values = torch.stack(record).double().numpy()  # (T + 1, M, 6)
    t, m = np.meshgrid(np.arange(steps + 1), np.arange(len(methods)), indexing="ij")
    columns = ["loss1", "loss2", "norm1", "norm2", "cosine", "weight2"]
    frame = pd.DataFrame(values.reshape(-1, len(columns)), columns=columns)
    return frame.assign(method=np.asarray(methods)[m.ravel()], step=t.ravel())[["method", "step", *columns]]


def balance_summary(runs: pd.DataFrame, mismatch: float, alpha: float) -> dict[str, float]:
    """The numbers the page reads off a balance_run made with this mismatch and alpha.

    <method>_loss1, <method>_loss2: the unscaled losses at the last step (start_loss1, start_loss2: at step 0,
    the same for every method). For the fixed run: cos_start, cos_end,
    the cosine between the two gradients at the first and last step; conflict_from, the first step from which it
    stays negative (-1 if it is not negative at the end); ratio_start = |grad (mismatch L2)| / |grad L1| at step 0;
    pull_end = |grad L1| / |alpha grad (mismatch L2)| at the end, 1 where the two pulls cancel. normalized_ratio:
    at step 0, |grad (L1 / L1(0))| / |grad (L2 / L2(0))|, what is left of the imbalance after dividing each loss
    by its starting value. uncertainty_weight: uncertainty weighting's weight on mismatch L2 relative to L1 at
    the end; uncertainty_target: the ratio of the two losses as it sees them, where that weight settles.
    conflict_state: "diverged" (the fixed run went inf or NaN), "settled" (cosine below -0.99 and the pulls
    within 10% of cancelling), "pulling" (cosine negative, not settled) or "open". uncertainty_state: "blown"
    (its losses ended over 10 times their start, or its weights overflowed), "settled" (weight within a
    factor 1.5 of its target) or "climbing".
    """
    last = runs[runs.step == runs.step.max()].set_index("method")
    out = {f"{m}_{k}": float(last.loc[m, k]) for m in last.index for k in ("loss1", "loss2")}
    first = runs[runs.step == 0].iloc[0]
    out["start_loss1"], out["start_loss2"] = float(first.loss1), float(first.loss2)  # every method starts at w = 0
    out["normalized_ratio"] = float((first.norm1 / first.loss1) / (first.norm2 / (mismatch * first.loss2)))
    if "fixed" in last.index:
        fixed = runs[runs.method == "fixed"].sort_values("step")
        cos = fixed.cosine.to_numpy()
        not_negative = np.flatnonzero(~(cos < 0))  # NaN counts as not negative
        out["cos_start"], out["cos_end"] = float(cos[0]), float(cos[-1])
        if not cos[-1] < 0:
            out["conflict_from"] = -1
        else:
            out["conflict_from"] = int(fixed.step.iloc[not_negative[-1] + 1]) if len(not_negative) else 0
        out["ratio_start"] = float(fixed.norm2.iloc[0] / fixed.norm1.iloc[0])
        out["pull_end"] = pull = float(fixed.norm1.iloc[-1] / (alpha * fixed.norm2.iloc[-1]))
        settled = cos[-1] < -0.99 and abs(np.log(pull)) < np.log(1.1)
        out["conflict_state"] = ("diverged" if not np.isfinite(last.loc["fixed", "loss1"]) else "settled" if settled
                                 else "pulling" if cos[-1] < 0 else "open")
    if "uncertainty" in last.index:
        u = last.loc["uncertainty"]
        out["uncertainty_weight"] = float(u.weight2)
        out["uncertainty_target"] = target = float(u.loss1 / (mismatch * u.loss2))
        blown = not np.isfinite(u.weight2) or u.loss1 + u.loss2 > 10 * (first.loss1 + first.loss2)
        out["uncertainty_state"] = ("blown" if blown else "settled" if abs(np.log(u.weight2 / target)) < np.log(1.5)
                                    else "climbing")
    return out


def pareto_front(*, points: int = 61, seed: int = 0) -> pd.DataFrame:
    """The true trade-off: for lam in [0, 1], both losses at the minimiser of lam L1 + (1 - lam) L2 (float64).

    For least squares on the same inputs that minimiser is the same blend of the two tasks' own solutions.
    Columns: lam, loss1, loss2.
    """
    x, y = (t.double() for t in task_problem(seed))
    # gelsd (SVD): the default gelsy gives last-bit differences from one call to the next on this CPU
    solutions = torch.linalg.lstsq(x, y.T, driver="gelsd").solution.T  # (2, D): each task's own weights
    lam = torch.linspace(0, 1, points, dtype=torch.float64)[:, None]  # (L, 1)
    w = lam * solutions[0] + (1 - lam) * solutions[1]  # (L, D)
    losses = ((w @ x.T)[:, None, :] - y).pow(2).mean(dim=-1)  # (L, 2)
    return pd.DataFrame({"lam": lam[:, 0].numpy(), "loss1": losses[:, 0].numpy(), "loss2": losses[:, 1].numpy()})
