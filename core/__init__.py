"""Gradient Lab's numbers: seeded PyTorch experiments, tidy DataFrames and Altair builders.

Nothing in this package imports streamlit (tests/test_core_isolation.py holds it to that), so the
page, the figure export and a teacher's notebook all call the same functions.
"""

import sys

import torch

__version__ = "0.1.0"  # kept equal to pyproject.toml by tests/test_export.py

# One intra-op thread for every number the project makes. The models here are tiny, so threads cost more
# than they save (on two cores, several times more under load), and a fixed thread count keeps every
# reduction in one order: the page, the export and the tests get the same bits.
torch.set_num_threads(1)


def clear_caches() -> None:
    """Empty every functools cache in core/ (some figures share one experiment through a bounded
    lru_cache): what a cold benchmark run and the determinism test need before they compute again."""
    for name, module in list(sys.modules.items()):
        if name == "core" or name.startswith("core."):
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)) and not isinstance(value, type):
                    value.cache_clear()
