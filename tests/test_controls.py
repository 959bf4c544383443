"""The control table: which URL strings a control accepts (mirroring Streamlit), its extremes, its checks."""

import pytest

from core.controls import Control, defaults, find

LR = Control("lr", "float", 0.1, lo=0.001, hi=1.0, step=0.001)
OPT = Control("optimizer", "select", "adam", options=("sgd", "adam"))
FLAG = Control("clip", "toggle", False)


@pytest.mark.parametrize(("raw", "ok"), [("0.5", True), ("1", True), ("0.001", True), ("7", False),
                                         ("-1", False), ("nan", False), ("inf", False), ("abc", False), ("", False)])
def test_numeric_acceptance(raw, ok):
    assert LR.accepts(raw) is ok


def test_select_and_toggle_acceptance():
    assert OPT.accepts("sgd") and not OPT.accepts("SGD") and not OPT.accepts("lion")
    assert FLAG.accepts("true") and FLAG.accepts("False") and not FLAG.accepts("yes")


def test_extremes():
    assert LR.extremes == (0.001, 1.0)
    assert OPT.extremes == ("sgd", "adam")
    assert FLAG.extremes == (False, True)
    assert Control("k", "log10", -1, lo=-10, hi=4).extremes == (-10, 4)


def test_a_default_outside_its_range_is_refused():
    with pytest.raises(ValueError):
        Control("lr", "float", 2.0, lo=0.0, hi=1.0)
    with pytest.raises(ValueError):
        Control("o", "select", "x", options=("a",))


def test_find_lists_valid_keys_and_defaults_collects_them():
    with pytest.raises(ValueError, match="lr, optimizer, clip"):
        find((LR, OPT, FLAG), "momentum")
    assert defaults((LR, OPT, FLAG)) == {"lr": 0.1, "optimizer": "adam", "clip": False}
