"""DESIGN rule 4: the same settings give the same numbers, to the last bit, call after call."""

from __future__ import annotations

import pandas as pd
import pytest

from core import clear_caches, export
from core.figures import registry
from core.registry import PAGES


@pytest.mark.parametrize("info", PAGES, ids=lambda p: p.name)
def test_every_figure_is_bit_identical_when_computed_again(info):
    settings = export.settings_for(info.name, None)
    for name, figure in registry(info.name).items():
        clear_caches()
        first = figure.data(**figure.arguments(settings))
        clear_caches()
        junk = [bytearray(n * 8) for n in (3, 5, 7)]  # move the allocator, as another session would
        second = figure.data(**figure.arguments(settings))
        del junk
        pd.testing.assert_frame_equal(first, second, check_exact=True, obj=f"{info.name}/{name}")
