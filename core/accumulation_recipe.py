"""The popular accumulation recipe, run as written and taken apart: which examples reach which update.

Concept: gradient accumulation is bookkeeping over .grad. The common recipe (five points on y = 2x,
micro-batches of 2, a step every 2 micro-batches, zero_grad() at the start of each epoch, the mean
loss never divided by the step count) computes the fifth point's gradient every epoch and wipes it
with the next zero_grad(), so that point never moves the model; and each update it does make is the
sum of two micro-batch means, twice the mean-loss gradient of the four points it saw.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from core.data import generator, seeded_init_

MICRO_BATCH, ACCUMULATION_STEPS = 2, 2  # the recipe's batch_size and accumulation_steps
RECIPES = ("as written", "corrected")
APPLIED, NEVER, ABSENT = "in this update", "computed, never applied", "not in this update"


def points(y5: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """x = 1..5 and y = 2x, the recipe's data; y5 replaces the fifth target (10) to test its influence."""
    x = torch.arange(1.0, 6.0).unsqueeze(1)  # (5, 1)
    y = 2 * x
    y[4] = y5
    return x, y


def run_recipe(recipe: str, *, epochs: int = 3, lr: float = 0.01, y5: float = 10.0, seed: int = 0):
    """Accumulation as the popular recipe writes it ("as written"), and with its two faults fixed ("corrected").

    The fix: step also after the last micro-batch of the epoch, so a short last window is not thrown away;
    and weigh each micro-batch by the items of its whole window (sum of squared errors / count), so every
    update is the mean-loss gradient of the examples it saw. Returns the model and a ledger: one row per
    window of backward() calls, with the examples whose gradients sat in .grad and each one's coefficient
    (applied gradient = sum of coefficient · gradient of that example's squared error).
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    x, y = points(y5)
    model = seeded_init_(nn.Linear(1, 1, device="meta"), generator(seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    starts = range(0, len(x), MICRO_BATCH)  # micro-batches [1, 2], [3, 4], [5]
    windows, pending = [], {}  # pending: example -> coefficient of the gradients now in .grad
    for epoch in range(1, epochs + 1):
        if pending:
            windows.append({"epoch": epoch - 1, "fate": NEVER, "coefficients": pending})
        optimizer.zero_grad()  # the recipe zeroes here, at the start of each epoch
        pending = {}
        for j, i in enumerate(starts):
            xb, yb = x[i:i + MICRO_BATCH], y[i:i + MICRO_BATCH]
            if recipe == "as written":
                loss = nn.MSELoss()(model(xb), yb)  # the micro-batch mean, never divided by the step count
                weight = 1 / len(xb)
            else:
                first = j - j % ACCUMULATION_STEPS
                count = sum(len(x[s:s + MICRO_BATCH]) for s in starts[first:first + ACCUMULATION_STEPS])
                loss = nn.MSELoss(reduction="sum")(model(xb), yb) / count  # the window's items, counted
                weight = 1 / count
            loss.backward()
            pending.update({i + r + 1: weight for r in range(len(xb))})
            last = j + 1 == len(starts)
            if (j + 1) % ACCUMULATION_STEPS == 0 or (recipe == "corrected" and last):
                windows.append({"epoch": epoch, "fate": APPLIED, "coefficients": pending,
                                **_check(model, x, y, pending)})
                optimizer.step()
                optimizer.zero_grad()
                pending = {}
    if pending:
        windows.append({"epoch": epochs, "fate": NEVER, "coefficients": pending})
    return model, windows


def _check(model: nn.Linear, x: torch.Tensor, y: torch.Tensor, coefficients: dict[int, float]) -> dict[str, float]:
    """Before a step, against a second route: rebuild the applied gradient from per-example gradients with the
    ledger's coefficients (gap), and compare it with the mean-loss gradient of those examples (ratio, cosine)."""
    params = list(model.parameters())
    applied = torch.cat([p.grad.flatten() for p in params])  # (2,)
    rebuilt = torch.zeros(2)
    for example, c in coefficients.items():
        i = example - 1
        g = torch.autograd.grad(nn.MSELoss()(model(x[i:i + 1]), y[i:i + 1]), params)  # leaves .grad alone
        rebuilt += c * torch.cat([t.flatten() for t in g])
    idx = [e - 1 for e in coefficients]
    mean = torch.cat([t.flatten() for t in torch.autograd.grad(nn.MSELoss()(model(x[idx]), y[idx]), params)])
    return {"gap": ((rebuilt - applied).norm() / applied.norm()).item(),
            "ratio": (applied.norm() / mean.norm()).item(),
            "cosine": nn.functional.cosine_similarity(applied, mean, dim=0).item()}


def recipe_ledger(*, epochs: int = 3, seed: int = 0) -> pd.DataFrame:
    """Update × example for both recipes: the coefficient of each example's gradient in each window of .grad.

    Columns: recipe, row (a label, in order), order, epoch, fate, example, coefficient (0 where absent), status,
    gap, ratio, cosine (the _check numbers of that update; 0 for a window that was never applied).
    """
    rows = []
    for recipe in RECIPES:
        _, windows = run_recipe(recipe, epochs=epochs, seed=seed)
        updates = 0
        for order, window in enumerate(windows):
            if window["fate"] == APPLIED:
                updates += 1
                label = f"epoch {window['epoch']}: update {updates}"
            else:
                label = f"epoch {window['epoch']}: never applied"
            for example in range(1, 6):
                c = window["coefficients"].get(example, 0.0)
                rows.append({"recipe": recipe, "row": label, "order": order, "epoch": window["epoch"],
                             "fate": window["fate"], "example": example, "coefficient": c,
                             "status": window["fate"] if c else ABSENT, "gap": window.get("gap", 0.0),
                             "ratio": window.get("ratio", 0.0), "cosine": window.get("cosine", 0.0)})
    return pd.DataFrame(rows)


def fifth_point_influence(recipe: str, *, epochs: int = 5, seed: int = 0) -> float:
    """How far the fifth target moves the model: max |θ(y5 = 10) - θ(y5 = -10)| after training. 0: not at all."""
    finals = [torch.cat([p.detach().flatten() for p in run_recipe(recipe, epochs=epochs, y5=v, seed=seed)[0]
                         .parameters()]) for v in (10.0, -10.0)]
    return (finals[0] - finals[1]).abs().max().item()
