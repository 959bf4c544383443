"""Gradient Lab's numbers: seeded PyTorch experiments, tidy DataFrames and Altair builders.

Nothing in this package imports streamlit (tests/test_core_isolation.py holds it to that), so the
page, the figure export and a teacher's notebook all call the same functions.
"""

__version__ = "0.1.0"  # kept equal to pyproject.toml by tests/test_export.py
