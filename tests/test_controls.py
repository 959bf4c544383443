"""The control table: which URL strings a control accepts (mirroring Streamlit), its extremes, its checks."""

import pytest

from core.controls import Control, decimals, defaults, find, number_format, parse_link, query_value

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


STEPS = Control("steps", "int", 1, lo=1, hi=50)
SCALE = Control("scale_exp", "log10", -1, lo=-10, hi=4)


@pytest.mark.parametrize(("control", "values", "value", "problem"), [
    (LR, ["0.001"], 0.001, None),
    (LR, ["7"], 1.0, "clamped"),  # out of range: the nearest end, not the default
    (LR, ["-1"], 0.001, "clamped"),
    (LR, ["0.1234"], 0.123, "rounded"),  # onto the slider's own grid
    (LR, ["banana"], None, "unusable"),
    (LR, ["nan"], None, "unusable"),
    (LR, ["0.5", "0.2"], 0.2, "repeated"),  # the last value, as st.query_params reads it
    (STEPS, ["2.5"], 2, "rounded"),
    (STEPS, ["99999"], 50, "clamped"),
    (SCALE, ["-9"], -9, None),
    (FLAG, ["yes"], True, None), (FLAG, ["1"], True, None), (FLAG, ["ON"], True, None), (FLAG, ["off"], False, None),
    (FLAG, ["maybe"], None, "unusable"),
    (OPT, ["SGD"], "sgd", None), (OPT, ["lion"], None, "unusable"),
])
def test_a_link_value_is_read_corrected_and_its_change_named(control, values, value, problem):
    link = parse_link(control, values)
    assert (link.value, link.problem) == (value, problem)


def test_a_long_link_value_is_shortened_for_its_note():
    link = parse_link(LR, ["x" * 3000])
    assert link.problem == "unusable" and len(link.raw) < 100 and "2940" in link.raw


@pytest.mark.parametrize(("step", "digits"), [(0.001, 3), (0.01, 2), (0.05, 2), (0.5, 1), (1, 0), (None, 2)])
def test_a_slider_shows_as_many_digits_as_its_step(step, digits):
    assert decimals(step) == digits
    assert number_format(Control("x", "float", 0.0, lo=0.0, hi=1.0, step=step)) == f"%.{digits}f"
    assert number_format(STEPS) == "%d" and number_format(SCALE) == "1e%d"


def test_query_values_round_trip():
    assert query_value(True) == "true" and query_value(0.001) == "0.001" and query_value(3) == "3"
    assert float(query_value(0.1 + 0.2)) == 0.1 + 0.2


def test_shown_reads_a_value_as_its_widget_does():
    from core.controls import Control, shown

    assert shown(Control("lr", "float", 0.001, 0.0, 1.0, 0.001), 0.001) == "0.001"
    assert shown(Control("scale_exp", "log10", -1, -10, 4), -8) == "1e-8"
    assert shown(Control("steps", "int", 50, 1, 100), 37) == "37"
    assert shown(Control("optimizer", "select", "adam", options=("adam", "sgd")), "sgd") == "sgd"
