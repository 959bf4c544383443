"""float16's limits and what they do to gradients: the arithmetic behind loss scaling in mixed precision.

Concept: a gradient cast to float16 keeps about 3 decimal digits over a range from 2^-24 (the
smallest subnormal) to 65504; smaller values flush to zero, larger ones overflow to inf. Multiplying
the loss by a scale s shifts every gradient by the same factor, which is all `torch.amp.GradScaler`
does before it divides the factor back out.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch

SMALLEST_SUBNORMAL = 2.0**-24  # torch.finfo(torch.float16).smallest_subnormal (min positive)
SMALLEST_NORMAL = 2.0**-14  # torch.finfo(torch.float16).tiny
LARGEST = 65504.0  # torch.finfo(torch.float16).max


def fp16_underflow_fraction(grads: torch.Tensor, scale: float = 1.0) -> float:
    """The fraction of the non-zero entries of grads that become exactly zero when grads * scale is cast to float16."""
    nonzero = grads[grads != 0]
    if nonzero.numel() == 0:
        return 0.0
    flushed = (nonzero * scale).to(torch.float16) == 0
    return flushed.float().mean().item()


def fp16_overflow_fraction(grads: torch.Tensor, scale: float = 1.0) -> float:
    """The fraction of the non-zero entries of grads that become ±inf when grads * scale is cast to float16."""
    nonzero = grads[grads != 0]
    if nonzero.numel() == 0:
        return 0.0
    return torch.isinf((nonzero * scale).to(torch.float16)).float().mean().item()


def region(magnitude: float) -> str:
    """Where a magnitude lands in float16: the labels of the histogram's colours."""
    if magnitude < SMALLEST_SUBNORMAL / 2:
        return "flushed to zero"
    if magnitude < SMALLEST_NORMAL:
        return "subnormal (precision lost)"
    if magnitude <= LARGEST:
        return "normal"
    return "overflow to inf"


def magnitude_histogram(grads: torch.Tensor, scale: float = 1.0) -> pd.DataFrame:
    """Counts of |grads * scale| (non-zero entries) in whole log2 bins: columns log2_lo, count, region.

    The product is taken in float64 so that the histogram shows where each value would land,
    even where float32 itself would overflow.
    """
    values = grads[grads != 0].double().abs() * scale
    exponents = torch.floor(torch.log2(values)).long()
    counts = torch.bincount(exponents - exponents.min())
    rows = [
        (int(exponents.min()) + i, int(c), region(2.0 ** (int(exponents.min()) + i)))
        for i, c in enumerate(counts.tolist())
        if c
    ]
    return pd.DataFrame(rows, columns=["log2_lo", "count", "region"])


def scale_sweep(grads: torch.Tensor, log2_scales: range) -> pd.DataFrame:
    """Underflow and overflow fractions of grads * 2^k cast to float16, one row per k."""
    rows = []
    for k in log2_scales:
        rows.append(
            {
                "log2_scale": k,
                "flushed to zero": fp16_underflow_fraction(grads, 2.0**k),
                "overflow to inf": fp16_overflow_fraction(grads, 2.0**k),
            }
        )
    return pd.DataFrame(rows).melt("log2_scale", var_name="fate", value_name="fraction")


def grad_scaler_trace(
    model: torch.nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    *,
    lr: float,
    init_scale: float = 2.0**16,
    growth_interval: int = 2000,
    first_step: int = 1,
    on_step: Callable[[torch.nn.Module], None] | None = None,
) -> pd.DataFrame:
    """Train with the real `torch.amp.GradScaler` under float16 autocast on CPU; log its scale each step.

    Columns: step, scale (the factor the loss was multiplied by at that step), skipped (the scaler
    found inf/NaN gradients and did not call optimizer.step()), loss (float32 value).
    first_step numbers the first row (a run continued from saved weights); on_step(model) sees the
    weights after every step.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    loss_fn = torch.nn.CrossEntropyLoss()
    scales, losses = [scaler.get_scale()], []
    for x, y in batches:
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            logits = model(x)  # (B, classes), float16 under autocast
        loss = loss_fn(logits.float(), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # unscales, then skips the step when any gradient is inf/NaN
        scaler.update()  # halves the scale exactly when it skipped, else keeps or doubles it
        scales.append(scaler.get_scale())
        losses.append(loss.detach())
        if on_step is not None:
            on_step(model)
    return pd.DataFrame({
        "step": range(first_step, first_step + len(losses)),
        "scale": scales[:-1],
        "skipped": [after < before for before, after in zip(scales[:-1], scales[1:])],
        "loss": torch.stack(losses).tolist() if losses else [],
    })
