"""Gradient accumulation: why backward() adds into .grad, and when k small backward calls equal one big one.

Concept: `loss.backward()` adds each new gradient to `p.grad`; it never replaces it. Forget
`zero_grad()` and the step applies the sum of every gradient so far. Do it on purpose over k
micro-batches and the sum is the big batch's gradient, but only when each micro-batch loss carries
the right weight (1/k for equal micro-batches, 1/N per item always), when no layer (BatchNorm) sees
the batch as a whole, and when the tokens of variable-length sequences are counted across the whole
accumulated batch. Forgetting zero_grad(), the recipe, the memory measurement, clipping and the scheduler under
accumulation, and BatchNorm on one example live in core/accumulation_zero_grad.py, core/accumulation_recipe.py,
core/accumulation_memory.py, core/accumulation_clipping.py and core/accumulation_batchnorm.py; the page's readings
in core/accumulation_readings.py.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.accumulation_memory import memory_sweep  # noqa: F401  (public API: core.accumulation.memory_sweep)
from core.accumulation_recipe import fifth_point_influence, recipe_ledger  # noqa: F401  (public API, as above)
from core.accumulation_zero_grad import (  # noqa: F401  (public API, as above)
    ZERO_GRAD_RUNS,
    flat_grad,
    hessian_eigenvalues,
    line_data,
    none_versus_zero,
    run_states,
    sgd_factor,
    zero_grad_runs,
)
from core.controls import Control
from core.data import generator, mlp, regression_data, seeded_init_

NORMALIZATIONS = ("none", "divide_by_steps", "global_count")
BATCH_SIZE = 24  # the big batch: 24 has many divisors, so most k split it evenly and some do not
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
    Control("max_norm", "float", default=0.3, lo=0.05, hi=3.0, step=0.05),  # below the start norm 1.7: clipping acts
)

# Teaching moments, each a named setting of the controls above (labels in content/en/accumulation.toml).
PRESETS = {
    "no_division": {"micro_batches": 4, "normalization": "none"},  # k means summed: SGD at k times the lr
    "short_last_micro_batch": {"micro_batches": 5, "normalization": "divide_by_steps"},  # 5, 5, 5, 5, 4: inexact
    "token_bug": {"micro_batches": 4, "spread": 15},  # lengths 1..31: the 2024 bug at its largest here
    "no_zero_grad_large_lr": {"lr": 2.5},  # past 4/λ: both runs diverge, at different steps
}


def check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; valid: {', '.join(NORMALIZATIONS)}")


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
    layers = nn.Embedding(VOCAB, EMBED, device="meta"), nn.Linear(EMBED, VOCAB, device="meta")
    model = seeded_init_(nn.Sequential(*layers), generator(seed))
    return model, tokens, targets


def token_losses(model: nn.Module, tokens: torch.Tensor, targets: torch.Tensor):
    """(mean, sum) of the token cross-entropy over the real tokens of (tokens, targets); PAD positions are ignored."""
    logits = model(tokens).flatten(0, 1)  # (B*T, V)
    mean = nn.functional.cross_entropy(logits, targets.flatten(), ignore_index=PAD)  # over this batch's real tokens
    return mean, nn.functional.cross_entropy(logits, targets.flatten(), ignore_index=PAD, reduction="sum")


def example_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """(mean, sum) of the squared error over the examples of (x, y)."""
    out = model(x)  # (B, 1)
    return nn.functional.mse_loss(out, y), nn.functional.mse_loss(out, y, reduction="sum")


def accumulate(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, losses, micro_batches: int,
               normalization: str, total: int) -> torch.Tensor:
    """Gradient accumulation itself: k backward() calls on consecutive micro-batches, one optimizer step's .grad.

    losses(model, x, y) -> (mean, summed) over the items of (x, y); total: the items of the whole batch. Zeroing
    .grad before is the caller's job, as in a training loop.
    """
    # as equal as the batch allows: torch.tensor_split puts the extra items in the first micro-batches
    for xb, yb in zip(inputs.tensor_split(micro_batches), targets.tensor_split(micro_batches)):
        mean, summed = losses(model, xb, yb)
        micro_loss(mean, summed, normalization, micro_batches, total).backward()  # adds into .grad
    return flat_grad(model).clone()


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
    return accumulate(model, inputs, targets, losses, micro_batches, normalization, total), full


def split_sizes(micro_batches: int, batch_size: int = BATCH_SIZE) -> dict[int, int]:
    """How torch.tensor_split cuts the batch into k micro-batches: {size: how many micro-batches have that size}."""
    sizes = [len(part) for part in torch.arange(batch_size).tensor_split(micro_batches)]
    return {size: sizes.count(size) for size in dict.fromkeys(sizes)}


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

    Columns: micro_batches, normalization, error, even (whether k divides the batch). Each entry is
    accumulation_error(k, normalization): the model, the batch and the full-batch gradient are the same for every
    entry, so they are made once and each accumulation starts from zeroed gradients on that model.
    """
    model, x, y = reference_problem(batch_size, seed)
    example_losses(model, x, y)[0].backward()  # one backward on the whole batch: the mean over every example
    full = flat_grad(model).clone()
    rows = []
    for n in NORMALIZATIONS:
        for k in range(1, batch_size + 1):
            model.zero_grad()
            acc = accumulate(model, x, y, example_losses, k, n, len(x))
            rows.append({"micro_batches": k, "normalization": n, "error": ((acc - full).norm() / full.norm()).item(),
                         "even": batch_size % k == 0})
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=4)
def spread_targets(batch_size: int = BATCH_SIZE, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """token_problem's targets (B, T) at every spread, 0 to MEAN_LENGTH - 1: the same for every k, so token_sweep
    draws them once per batch size and seed. Shared: never changed in place."""
    return tuple(token_problem(spread, batch_size, seed)[2] for spread in range(MEAN_LENGTH))


def token_sweep(micro_batches: int, *, batch_size: int = BATCH_SIZE, seed: int = 0) -> pd.DataFrame:
    """The token-mean bug: the relative gradient error against the spread of sequence lengths, at k micro-batches.

    Columns: spread, normalization (the bug, divide_by_steps, and its fix, global_count), error, min_tokens,
    max_tokens (real tokens in the smallest and largest micro-batch), tokens (in the whole batch). "none" is about
    k - 1 off at every spread.

    token_problem draws the same model and the same tokens at every spread; only where PAD starts differs. So each
    (micro-)batch's log-probabilities are computed once and every spread's losses are taken from them: the
    operations of token_losses on the same numbers. Each loss's gradient comes from its own backward pass and is
    added up micro-batch by micro-batch, as accumulate's backward() calls add into .grad.
    """
    spreads = range(MEAN_LENGTH)
    model, tokens, _ = token_problem(0, batch_size, seed)
    targets = spread_targets(batch_size, seed)
    params = list(model.parameters())
    counts = [[int((t != PAD).sum()) for t in target.tensor_split(micro_batches)] for target in targets]

    def log_probs(inputs: torch.Tensor) -> torch.Tensor:  # what cross_entropy takes the loss of
        return nn.functional.log_softmax(model(inputs).flatten(0, 1), 1)  # (B*T, V)

    def gradient(loss: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.autograd.grad(loss, params, retain_graph=True))

    whole = log_probs(tokens)  # the full batch: the mean over all its real tokens
    full = [torch.cat([g.flatten() for g in gradient(nn.functional.nll_loss(whole, t.flatten(), ignore_index=PAD))])
            for t in targets]
    sums: dict[tuple[int, str], list[torch.Tensor]] = {}  # (spread, normalization) -> what .grad would hold
    for inputs, *parts in zip(tokens.tensor_split(micro_batches), *(t.tensor_split(micro_batches) for t in targets)):
        logp = log_probs(inputs)
        for spread, part in zip(spreads, parts):
            mean = nn.functional.nll_loss(logp, part.flatten(), ignore_index=PAD)
            summed = nn.functional.nll_loss(logp, part.flatten(), ignore_index=PAD, reduction="sum")
            for n in NORMALIZATIONS[1:]:
                grads = gradient(micro_loss(mean, summed, n, micro_batches, sum(counts[spread])))
                if (spread, n) in sums:
                    for running, g in zip(sums[spread, n], grads):
                        running += g  # in place, as backward() adds into .grad
                else:
                    sums[spread, n] = grads
    rows = []
    for spread in spreads:
        for n in NORMALIZATIONS[1:]:
            acc = torch.cat([g.flatten() for g in sums[spread, n]])
            rows.append({"spread": spread, "normalization": n,
                         "error": ((acc - full[spread]).norm() / full[spread].norm()).item(),
                         "min_tokens": min(counts[spread]), "max_tokens": max(counts[spread]),
                         "tokens": sum(counts[spread])})
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
            if step < steps:
                opt.zero_grad()
                accumulate(model, x, y, example_losses, k, normalization if k > 1 else "none", len(x))
                opt.step()
    return pd.DataFrame(rows)


def training_state(curves: pd.DataFrame) -> tuple[str, float]:
    """same, apart or diverged, and the largest relative gap between the two runs' losses (NaN once one diverged)."""
    wide = curves.pivot(index="step", columns="run", values="loss")
    gap = ((wide["accumulated"] - wide["one batch"]).abs() / wide["one batch"]).max()
    if not np.isfinite(wide.to_numpy()).all() or wide.to_numpy().max() > 1e6:
        return "diverged", float("nan")
    return ("same" if gap < 1e-4 else "apart"), float(gap)


# --- 5. BatchNorm ---------------------------------------------------------------------------------------------------
def batchnorm_sweep(*, batch_size: int = BATCH_SIZE, seed: int = 0) -> pd.DataFrame:
    """BatchNorm breaks the equivalence: statistics are per micro-batch, and running stats update on each one.

    For every micro-batch size that divides the batch, global_count accumulation against one backward, with and
    without a BatchNorm1d after the first layer. Columns: micro_batch_size, micro_batches, model, error,
    running_moved (how far BatchNorm's running_mean moved from its start over the accumulated pass, as a multiple
    of how far one full-batch pass moves it; 0 without BN), updates (times running_mean was updated). BatchNorm1d
    on (N, C) input cannot train on micro-batches of one (one value per channel: torch raises a ValueError), and
    that size is left out for it; other layouts can (core/accumulation_batchnorm.py).
    """
    rows = []
    x, y = regression_data(batch_size, 4, seed=seed)  # (B, 4), (B, 1)
    for k in [k for k in range(1, batch_size + 1) if batch_size % k == 0]:
        for model_name in ("without BatchNorm", "with BatchNorm"):
            grads, stats = [], []
            for parts in (1, k):
                gen = generator(seed)
                body = [nn.Linear(4, 16, device="meta"), nn.BatchNorm1d(16, device="meta"), nn.Tanh(),
                        nn.Linear(16, 1, device="meta")]
                model = seeded_init_(nn.Sequential(*(m for m in body if model_name == "with BatchNorm"
                                                     or not isinstance(m, nn.BatchNorm1d))), gen)
                try:
                    for xb, yb in zip(x.tensor_split(parts), y.tensor_split(parts)):
                        (nn.MSELoss(reduction="sum")(model(xb), yb) / batch_size).backward()
                except ValueError:  # "Expected more than 1 value per channel when training"
                    break
                grads.append(flat_grad(model))
                bn = [m for m in model if isinstance(m, nn.BatchNorm1d)]
                stats.append((bn[0].running_mean.clone(), int(bn[0].num_batches_tracked)) if bn else (None, 0))
            if len(grads) < 2:
                continue
            (full_rm, _), (acc_rm, updates) = stats
            running = 0.0 if full_rm is None else (acc_rm.norm() / full_rm.norm()).item()  # both started at 0
            rows.append({"micro_batch_size": batch_size // k, "micro_batches": k, "model": model_name,
                         "error": ((grads[1] - grads[0]).norm() / grads[0].norm()).item(),
                         "running_moved": running, "updates": updates})
    return pd.DataFrame(rows)


from core.accumulation_readings import READINGS  # noqa: E402, F401  (each experiment's words, chosen in core)
