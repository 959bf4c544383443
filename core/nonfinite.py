"""Runs that diverge are a lesson, not a crash: find where a series stopped being finite.

Streamlit's Arrow path passes inf through and Vega then draws nonsense, so no ±inf or NaN may reach
a chart (DESIGN rule 5). Experiments record what really happened, non-finite values included; the
page charts `finite_rows(...)` and says in words where `first_nonfinite(...)` found the break.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def first_nonfinite(df: pd.DataFrame, column: str, *, at: str = "step", by: str | None = None) -> dict:
    """For each group (or the whole frame), the first value of `at` where `column` is ±inf or NaN.

    Groups that stayed finite are left out, so an empty dict means every run stayed finite.
    """
    groups = df.groupby(by, sort=False) if by else [(None, df)]
    found = {}
    for name, group in groups:
        bad = group.loc[~np.isfinite(group[column].to_numpy(dtype=float)), at]
        if len(bad):
            found[name] = bad.iloc[0]
    return found


def finite_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows whose numeric values are all finite: what a chart may draw."""
    numeric = df.select_dtypes(include="number")
    if numeric.empty:
        return df
    return df[np.isfinite(numeric.to_numpy(dtype=float)).all(axis=1)]
