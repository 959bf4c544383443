"""What accumulation buys: the memory of a backward pass follows the micro-batch, not the effective batch.

Concept: a forward pass keeps the activations backward() needs, one set per example in the batch, so
their peak memory scales with the micro-batch. Parameters, their gradients and the optimizer's state
do not depend on the batch at all: accumulation leaves them exactly as they were. The peak is
measured with torch.profiler's memory events on CPU (every allocation and free, in order).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from core.data import classification_data, mlp

EFFECTIVE_BATCH = 1024  # examples per optimizer step, whatever k is
SIZES = (64, 256, 256, 10)  # a classifier big enough that activations outweigh the weights at full batch
WEIGHT_GRAD_BYTES = SIZES[1] * SIZES[2] * 4  # the 256 x 256 weight's float32 gradient: backward makes it whole
PARTS = ("parameters", "gradients", "Adam state", "activations + temporaries (measured peak)")


def peak_bytes(prof: profile) -> int:
    """The highest point of allocated-minus-freed CPU memory during a profiled region, from its memory events."""
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    level = peak = 0
    for _, nbytes in events:  # an allocation is positive, a free negative
        level += nbytes
        peak = max(peak, level)
    return peak


def backward_peak(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Peak memory allocated by one forward and backward on (x, y), beyond what existed before: the activations
    kept for backward and backward's temporaries. The gradients exist already and are accumulated into in place."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        nn.CrossEntropyLoss()(model(x), y).backward()
    return peak_bytes(prof)


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


def memory_sweep(*, seed: int = 0) -> pd.DataFrame:
    """Memory of one optimizer step over EFFECTIVE_BATCH examples split into k micro-batches, k = 1, 2, 4, ..., 64.

    Columns: micro_batches, micro_batch_size, part (see PARTS), bytes. Parameters, gradients and Adam's state are
    read from the real tensors; the activations' peak is measured by torch.profiler for one micro-batch's
    forward and backward (every micro-batch is the same size, and each frees its activations before the next).
    """
    model = mlp(SIZES, nn.Tanh, seed=seed)
    x, y = classification_data(EFFECTIVE_BATCH, SIZES[0], SIZES[-1], seed=seed)  # (N, 64), (N,)
    optimizer = torch.optim.Adam(model.parameters())
    nn.CrossEntropyLoss()(model(x[:2]), y[:2]).backward()
    optimizer.step()  # Adam's state (exp_avg, exp_avg_sq, step) now exists
    optimizer.zero_grad(set_to_none=False)  # keep the gradient tensors: backward adds into them in place
    fixed = {
        "parameters": tensor_bytes(model.parameters()),
        "gradients": tensor_bytes(p.grad for p in model.parameters()),
        "Adam state": sum(tensor_bytes(state.values()) for state in optimizer.state.values()),
    }
    backward_peak(model, x[:2], y[:2])  # the profiler's first run pays its start-up; measure after it
    rows = []
    for k in (1, 2, 4, 8, 16, 32, 64):
        size = EFFECTIVE_BATCH // k
        peak = backward_peak(model, x[:size], y[:size])
        for part, nbytes in (*fixed.items(), (PARTS[-1], peak)):
            rows.append({"micro_batches": k, "micro_batch_size": size, "part": part, "bytes": nbytes})
    return pd.DataFrame(rows)
