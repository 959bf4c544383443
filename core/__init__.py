"""Gradient Lab's numbers: seeded PyTorch experiments, tidy DataFrames and Altair builders.

Nothing in this package imports streamlit (tests/test_core_isolation.py holds it to that), so the
page, the figure export and a teacher's notebook all call the same functions.
"""

import torch

__version__ = "0.1.0"  # kept equal to pyproject.toml by tests/test_export.py

# One intra-op thread for every number the project makes. The models here are tiny, so threads cost more
# than they save (on two cores, several times more under load), and a fixed thread count keeps every
# reduction in one order: the page, the export and the tests get the same bits.
torch.set_num_threads(1)
