"""Gradient Lab's numbers: seeded PyTorch experiments, tidy DataFrames and Altair builders.

Nothing in this package imports streamlit (tests/test_core_isolation.py holds it to that), so the
page, the figure export and a teacher's notebook all call the same functions.
"""
