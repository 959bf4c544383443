"""What accumulation buys: the memory of a backward pass follows the micro-batch, not the effective batch.

Concept: a forward pass keeps the activations backward() needs, one set per example in the batch, so
their peak memory scales with the micro-batch. Parameters, their gradients and the optimizer's state
do not depend on the batch at all: accumulation leaves them exactly as they were. The peak is
measured by watching every tensor storage that the forward and backward ops create, and when each is freed.

The watch is a TorchDispatchMode, which sees every aten op of the thread that entered it (backward's too) and
nothing of any other thread. torch.profiler would see the same allocations, but it is one profiler per process:
two sessions measuring at once crash the server, and one session's measurement counts another's allocations.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from core.data import classification_data, mlp

EFFECTIVE_BATCH = 1024  # examples per optimizer step, whatever k is
SIZES = (64, 256, 256, 10)  # a classifier big enough that activations outweigh the weights at full batch
WEIGHT_GRAD_BYTES = SIZES[1] * SIZES[2] * 4  # the 256 x 256 weight's float32 gradient: backward makes it whole
PARTS = ("parameters", "gradients", "Adam state", "activations + temporaries (measured peak)")


class StorageWatch(TorchDispatchMode):
    """Bytes of the tensor storages created inside the block that are still alive, and their peak.

    Every op's outputs are looked at as it returns; a storage seen for the first time counts its bytes until it is
    freed (a weak reference to it expires). Frees are noticed before the next op allocates, so the peak is that of
    live storages between ops; scratch memory inside a single kernel is not seen. Storages that existed before the
    block (parameters, .grad tensors written in place) never count.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}  # storage's cdata -> (weak ref, bytes)
        self.known: set[int] = set()  # storages that existed before the block, met as outputs of in-place ops
        self.level = self.peak = 0

    def __enter__(self) -> StorageWatch:
        return super().__enter__()

    def sweep(self) -> None:
        for key, (ref, nbytes) in list(self.live.items()):
            if ref.expired():
                del self.live[key]
                self.level -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.sweep()
        before = {t.untyped_storage()._cdata for t in tree_leaves((args, kwargs or {})) if isinstance(t, torch.Tensor)}
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
                continue
            storage = t.untyped_storage()
            key = storage._cdata
            if key in self.live or key in before or key in self.known:
                continue  # a view, or an in-place op's result: no new memory
            self.live[key] = (StorageWeakRef(storage), storage.nbytes())
            self.level += storage.nbytes()
        self.peak = max(self.peak, self.level)
        return out


def backward_peak(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Peak memory allocated by one forward and backward on (x, y), beyond what existed before: the activations
    kept for backward and backward's temporaries. The gradients exist already and are accumulated into in place."""
    with StorageWatch() as watch:
        nn.CrossEntropyLoss()(model(x), y).backward()
    return watch.peak


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


def memory_sweep(*, seed: int = 0) -> pd.DataFrame:
    """Memory of one optimizer step over EFFECTIVE_BATCH examples split into k micro-batches, k = 1, 2, 4, ..., 64.

    Columns: micro_batches, micro_batch_size, part (see PARTS), bytes. Parameters, gradients and Adam's state are
    read from the real tensors; the activations' peak is measured by StorageWatch for one micro-batch's
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
    rows = []
    for k in (1, 2, 4, 8, 16, 32, 64):
        size = EFFECTIVE_BATCH // k
        peak = backward_peak(model, x[:size], y[:size])
        for part, nbytes in (*fixed.items(), (PARTS[-1], peak)):
            rows.append({"micro_batches": k, "micro_batch_size": size, "part": part, "bytes": nbytes})
    return pd.DataFrame(rows)
