"""Gradient accumulation: why backward() adds into .grad, and when k small backward calls equal one big one.

Concept: `loss.backward()` adds each new gradient to `p.grad`; it never replaces it. Forget
`zero_grad()` and the step applies the sum of every gradient so far. Do it on purpose over k
micro-batches and the sum is the big batch's gradient, but only when each micro-batch loss carries
the right weight (1/k for equal micro-batches, 1/N per item always), when no layer (BatchNorm) sees
the batch as a whole, and when the tokens of variable-length sequences are counted across the whole
accumulated batch. The recipe and the memory measurement live in core/accumulation_recipe.py and
core/accumulation_memory.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.accumulation_memory import memory_sweep  # noqa: F401  (public API: core.accumulation.memory_sweep)
from core.accumulation_recipe import fifth_point_influence, recipe_ledger  # noqa: F401  (public API, as above)
from core.controls import Control
from core.data import generator, mlp, regression_data, seeded_init_

NORMALIZATIONS = ("none", "divide_by_steps", "global_count")
BATCH_SIZE = 24  # the big batch: 24 has many divisors, so most k split it evenly and some do not
ZERO_GRAD_RUNS = ("zero_grad() every step", "zero_grad() never")
# Token model: sequences of MEAN_LENGTH ± spread real tokens over a vocabulary of VOCAB, padded with PAD.
VOCAB, EMBED, MEAN_LENGTH, PAD = 16, 8, 16, -100  # PAD is nn.CrossEntropyLoss's default ignore_index
DEFAULT_SPREAD = 12  # lengths 4..28: spread enough that the token bug shows at every k > 1
MEMORY_KS = ("1", "2", "4", "8", "16", "32", "64")

CONTROLS = (
    Control("lr", "float", default=0.1, lo=0.01, hi=3.0, step=0.01),  # 0.1: both zero_grad runs stay finite;
    # past 1.0 the zeroed run diverges, past 2.0 the unzeroed one too (thresholds 2/λ and 4/λ, λ = 2)
    Control("micro_batches", "int", default=4, lo=1, hi=BATCH_SIZE),  # k = 4 divides 24; 5 or 7 do not
    Control("normalization", "select", default="divide_by_steps", options=NORMALIZATIONS),  # the common recipe
    Control("spread", "int", default=DEFAULT_SPREAD, lo=0, hi=MEAN_LENGTH - 1),  # 0: equal lengths, no bug
    Control("memory_k", "select", default="8", options=MEMORY_KS),  # 1024 examples in 8 micro-batches of 128
)


def check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; valid: {', '.join(NORMALIZATIONS)}")


def flat_grad(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


# --- 1. Forgetting zero_grad() -------------------------------------------------------------------------------------
def line_data() -> tuple[torch.Tensor, torch.Tensor]:
    """Six points on y = 2x, x evenly from -1 to 1: the MSE's Hessian in (w, b) is 2·diag(mean x², 1)."""
    x = torch.linspace(-1.0, 1.0, 6).unsqueeze(1)  # (N, 1)
    return x, 2 * x


def zero_grad_runs(lr: float = 0.1, *, steps: int = 40, seed: int = 0) -> pd.DataFrame:
    """Forgetting zero_grad(): SGD on y = 2x with and without zeroing the gradients before each backward().

    Columns: step, run, loss (before the step; may be inf/NaN where a run diverged), applied (the norm of
    .grad that step() used), own (the norm of this step's gradient alone), w, b. Without zeroing, the
    applied gradient is the sum of every gradient so far: a ball with no friction, so SGD oscillates
    around the minimum for lr·λ < 4 and diverges beyond (λ, the Hessian's largest eigenvalue, is 2 here).
    """
    x, y = line_data()
    rows = []
    for run in ZERO_GRAD_RUNS:
        model = seeded_init_(nn.Linear(1, 1), generator(seed))
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        previous = torch.zeros(2)
        for step in range(steps):
            if run == ZERO_GRAD_RUNS[0]:
                opt.zero_grad()
            loss = nn.MSELoss()(model(x), y)
            loss.backward()  # adds this step's gradient into .grad
            applied = flat_grad(model)
            own = applied - previous if run == ZERO_GRAD_RUNS[1] else applied
            rows.append({"step": step, "run": run, "loss": loss.item(), "applied": applied.norm().item(),
                         "own": own.norm().item(), "w": model.weight.item(), "b": model.bias.item()})
            previous = applied.clone()
            opt.step()
    return pd.DataFrame(rows)


def run_states(runs: pd.DataFrame) -> dict[str, str]:
    """What each zero_grad run did, read from its losses: settles, slow, oscillates or diverged.

    The zeroed run diverged if its loss went non-finite or ended above its start, settles if it ended below
    1/1000 of its start. The unzeroed run diverged if its loss went non-finite or past 100 times its start;
    otherwise it oscillates (with accumulated gradients it cannot settle: nothing damps the swing).
    """
    states = {}
    for run, loss in runs.groupby("run", sort=False).loss:
        first, last, finite = loss.iloc[0], loss.iloc[-1], bool(np.isfinite(loss).all())
        if run == ZERO_GRAD_RUNS[0]:
            states[run] = "diverged" if not finite or last > first else "settles" if last < 1e-3 * first else "slow"
        else:
            states[run] = "diverged" if not finite or loss.max() > 100 * first else "oscillates"
    return states


def hessian_eigenvalues() -> torch.Tensor:
    """The eigenvalues of the line's MSE Hessian in (w, b), by autograd: they set SGD's stability limits."""
    x, y = line_data()

    def loss(params: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(x * params[0] + params[1], y)

    return torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, torch.zeros(2)))


def none_versus_zero(*, lr: float = 0.1, warmup: int = 3, seed: int = 0) -> pd.DataFrame:
    """zero_grad(set_to_none=True), PyTorch's default since 2.0, against zeroing in place.

    Two heads share an input; a few steps train both, then one step's loss uses head A only. Head B's
    .grad is then None (the optimizer skips it) or a zero tensor (the optimizer still runs its update:
    momentum and Adam's moments keep moving it, AdamW's weight decay shrinks it). Columns: optimizer,
    set_to_none, grad (what head B's .grad held), moved (max |change| of head B in that step).
    """
    factories = {
        "sgd": lambda p: torch.optim.SGD(p, lr=lr),
        "momentum": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
        "adam": lambda p: torch.optim.Adam(p, lr=lr),
        "adamw": lambda p: torch.optim.AdamW(p, lr=lr),  # weight_decay=0.01, torch's default
    }
    x, y = line_data()
    rows = []
    for name, factory in factories.items():
        for set_to_none in (True, False):
            gen = generator(seed)
            head_a, head_b = (seeded_init_(nn.Linear(1, 1), gen) for _ in range(2))
            opt = factory([*head_a.parameters(), *head_b.parameters()])
            for _ in range(warmup):  # both heads learn: momentum and moment estimates fill up
                opt.zero_grad(set_to_none=set_to_none)
                (nn.MSELoss()(head_a(x), y) + nn.MSELoss()(head_b(x), -y)).backward()
                opt.step()
            opt.zero_grad(set_to_none=set_to_none)
            nn.MSELoss()(head_a(x), y).backward()  # this batch concerns head A only
            before = [p.detach().clone() for p in head_b.parameters()]
            grad = "None" if head_b.weight.grad is None else "zeros"
            opt.step()
            moved = max((p.detach() - b).abs().max().item() for p, b in zip(head_b.parameters(), before))
            rows.append({"optimizer": name, "set_to_none": str(set_to_none), "grad": grad, "moved": moved})
    return pd.DataFrame(rows)


# --- 2. Accumulation done right ------------------------------------------------------------------------------------
def micro_loss(mean: torch.Tensor, summed: torch.Tensor, normalization: str, k: int, total: int) -> torch.Tensor:
    """One micro-batch's loss as each normalization writes it. mean: the criterion's default mean over this
    micro-batch's items (examples or real tokens); summed: the same criterion with reduction="sum"."""
    if normalization == "none":
        return mean  # k micro-batches: k times the gradient when they are equal
    if normalization == "divide_by_steps":
        return mean / k  # exact only when every micro-batch holds the same number of items
    return summed / total  # total: the items in the whole accumulated batch; exact always


def reference_problem(batch_size: int = BATCH_SIZE, seed: int = 0) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """The page's reference model (4 -> 16 -> 1, tanh) and batch_size regression examples, drawn from seed."""
    x, y = regression_data(batch_size, 4, seed=seed)  # (B, 4), (B, 1)
    return mlp((4, 16, 1), nn.Tanh, seed=seed), x, y


def token_problem(spread: int = DEFAULT_SPREAD, batch_size: int = BATCH_SIZE, seed: int = 0):
    """The page's token model (embedding 16 -> 8, linear 8 -> 16 logits per token) and padded sequences.

    Sequence i has MEAN_LENGTH + round(spread · u_i) real tokens, u_i uniform in [-1, 1] and the same for every
    spread, so a sweep over spread only stretches the lengths. Returns model, tokens (B, T), targets (B, T) with
    PAD after each sequence's end.
    """
    gen = generator(seed + 30_000)
    u = torch.rand(batch_size, generator=gen) * 2 - 1  # (B,)
    lengths = MEAN_LENGTH + torch.round(spread * u).long()  # (B,), each >= 1
    longest = MEAN_LENGTH + MEAN_LENGTH - 1
    tokens = torch.randint(0, VOCAB, (batch_size, longest), generator=gen)  # (B, T)
    targets = (tokens * 5 + 3) % VOCAB  # a rule to learn
    targets[torch.arange(longest) >= lengths[:, None]] = PAD  # (B, T)
    model = nn.Sequential(nn.Embedding(VOCAB, EMBED), nn.Linear(EMBED, VOCAB))
    mgen = generator(seed)
    nn.init.normal_(model[0].weight, generator=mgen)
    seeded_init_(model, mgen)
    return model, tokens, targets


def token_losses(model: nn.Module, tokens: torch.Tensor, targets: torch.Tensor):
    """(mean, sum) of the token cross-entropy over the real tokens of (tokens, targets); PAD positions are ignored."""
    logits = model(tokens).flatten(0, 1)  # (B*T, V)
    mean = nn.CrossEntropyLoss(ignore_index=PAD)(logits, targets.flatten())  # divided by this batch's real tokens
    return mean, nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")(logits, targets.flatten())


def example_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """(mean, sum) of the squared error over the examples of (x, y)."""
    out = model(x)  # (B, 1)
    return nn.MSELoss()(out, y), nn.MSELoss(reduction="sum")(out, y)


def accumulated_and_full(micro_batches: int, normalization: str, *, variable_lengths: bool = False,
                         batch_size: int = BATCH_SIZE, seed: int = 0,
                         spread: int = DEFAULT_SPREAD) -> tuple[torch.Tensor, torch.Tensor]:
    """(g_acc, g_full): k backward calls on consecutive micro-batches, and one backward on the whole batch."""
    check_normalization(normalization)
    if not 1 <= micro_batches <= batch_size:
        raise ValueError(f"micro_batches must be in 1..{batch_size}, got {micro_batches}")
    if variable_lengths:
        model, inputs, targets = token_problem(spread, batch_size, seed)
        losses, total = token_losses, int((targets != PAD).sum())  # every real token of the whole batch
    else:
        model, inputs, targets = reference_problem(batch_size, seed)
        losses, total = example_losses, len(inputs)
    losses(model, inputs, targets)[0].backward()  # one backward on the whole batch: the mean over every item
    full = flat_grad(model).clone()
    model.zero_grad()
    # as equal as batch_size allows: torch.tensor_split puts the extra items in the first micro-batches
    for xb, yb in zip(inputs.tensor_split(micro_batches), targets.tensor_split(micro_batches)):
        mean, summed = losses(model, xb, yb)
        micro_loss(mean, summed, normalization, micro_batches, total).backward()  # adds into .grad
    return flat_grad(model), full


def accumulation_error(micro_batches: int, normalization: str, *, variable_lengths: bool = False,
                       batch_size: int = BATCH_SIZE, seed: int = 0) -> float:
    """Accumulation vs one big batch: ||g_acc - g_full|| / ||g_full|| for the page's reference model.

    normalization: "none", "divide_by_steps" or "global_count". variable_lengths=True uses the token model at
    DEFAULT_SPREAD, where the full-batch loss is the mean over every real token.
    """
    acc, full = accumulated_and_full(micro_batches, normalization, variable_lengths=variable_lengths,
                                     batch_size=batch_size, seed=seed)
    return ((acc - full).norm() / full.norm()).item()


def error_sweep(*, batch_size: int = BATCH_SIZE, seed: int = 0) -> pd.DataFrame:
    """The relative gradient error for every k from 1 to batch_size and every normalization.

    Columns: micro_batches, normalization, error, even (whether k divides the batch).
    """
    return pd.DataFrame([
        {"micro_batches": k, "normalization": n, "error": accumulation_error(k, n, batch_size=batch_size, seed=seed),
         "even": batch_size % k == 0}
        for n in NORMALIZATIONS for k in range(1, batch_size + 1)])


def token_sweep(micro_batches: int, *, batch_size: int = BATCH_SIZE, seed: int = 0) -> pd.DataFrame:
    """The token-mean bug: the relative gradient error against the spread of sequence lengths, at k micro-batches.

    Columns: spread, normalization (the bug, divide_by_steps, and its fix, global_count), error, min_tokens,
    max_tokens (real tokens in the smallest and largest micro-batch). "none" is k - 1 off at every spread.
    """
    rows = []
    for spread in range(MEAN_LENGTH):
        _, _, targets = token_problem(spread, batch_size, seed)
        counts = [int((t != PAD).sum()) for t in targets.tensor_split(micro_batches)]
        for n in NORMALIZATIONS[1:]:
            acc, full = accumulated_and_full(micro_batches, n, variable_lengths=True, batch_size=batch_size,
                                             seed=seed, spread=spread)
            rows.append({"spread": spread, "normalization": n, "error": ((acc - full).norm() / full.norm()).item(),
                         "min_tokens": min(counts), "max_tokens": max(counts)})
    return pd.DataFrame(rows)


def training_curves(micro_batches: int, normalization: str, *, steps: int = 30, lr: float = 0.1,
                    batch_size: int = BATCH_SIZE, seed: int = 0) -> pd.DataFrame:
    """Accumulation over a training run: SGD on one batch beside SGD on k accumulated micro-batches, same start.

    Columns: step, run, loss (the full-batch MSE before each step; inf/NaN where a run diverged).
    """
    check_normalization(normalization)
    rows = []
    for run, k in (("one batch", 1), ("accumulated", micro_batches)):
        model, x, y = reference_problem(batch_size, seed)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        for step in range(steps + 1):
            with torch.no_grad():
                rows.append({"step": step, "run": run, "loss": nn.MSELoss()(model(x), y).item()})
            opt.zero_grad()
            for xb, yb in zip(x.tensor_split(k), y.tensor_split(k)):
                mean, summed = example_losses(model, xb, yb)
                micro_loss(mean, summed, normalization if k > 1 else "none", k, len(x)).backward()
            opt.step()
    return pd.DataFrame(rows)


# --- 5. BatchNorm ---------------------------------------------------------------------------------------------------
def batchnorm_sweep(*, batch_size: int = BATCH_SIZE, seed: int = 0) -> pd.DataFrame:
    """BatchNorm breaks the equivalence: statistics are per micro-batch, and running stats update on each one.

    For every micro-batch size that divides the batch, global_count accumulation against one backward, with and
    without a BatchNorm1d after the first layer. Columns: micro_batch_size, micro_batches, model, error,
    running_error (relative gap of BatchNorm's running_mean after the accumulated pass vs one pass; 0 without BN),
    updates (times running_mean was updated). BatchNorm cannot train on micro-batches of one (torch raises), so
    that size is left out for it.
    """
    rows = []
    x, y = regression_data(batch_size, 4, seed=seed)  # (B, 4), (B, 1)
    for k in [k for k in range(1, batch_size + 1) if batch_size % k == 0]:
        for model_name in ("without BatchNorm", "with BatchNorm"):
            if model_name == "with BatchNorm" and batch_size // k < 2:
                continue
            grads, stats = [], []
            for parts in (1, k):
                gen = generator(seed)
                body = [nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 1)]
                model = seeded_init_(nn.Sequential(*(m for m in body if model_name == "with BatchNorm"
                                                     or not isinstance(m, nn.BatchNorm1d))), gen)
                for xb, yb in zip(x.tensor_split(parts), y.tensor_split(parts)):
                    (nn.MSELoss(reduction="sum")(model(xb), yb) / batch_size).backward()
                grads.append(flat_grad(model))
                bn = [m for m in model if isinstance(m, nn.BatchNorm1d)]
                stats.append((bn[0].running_mean.clone(), int(bn[0].num_batches_tracked)) if bn else (None, 0))
            (full_rm, _), (acc_rm, updates) = stats
            running = 0.0 if full_rm is None else ((acc_rm - full_rm).norm() / full_rm.norm()).item()
            rows.append({"micro_batch_size": batch_size // k, "micro_batches": k, "model": model_name,
                         "error": ((grads[1] - grads[0]).norm() / grads[0].norm()).item(),
                         "running_error": running, "updates": updates})
    return pd.DataFrame(rows)
