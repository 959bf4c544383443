"""Every registered page under AppTest: defaults, every control at its extremes, deep links, bad links.

The control tables in core/<page>.py drive these tests, so a page's new control is tested the day it
is added, with no edit here.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest

from core.controls import preset_settings
from core.registry import PAGES
from tests.helpers import charts, nonfinite_cells, open_page, walk_marks
from ui.controls import preset_query

# How many charts each page draws at its defaults: a missing chart is a failure, not a quiet gap.
EXPECTED_CHARTS = {"loss_scaling": 10, "reduction": 9, "accumulation": 11, "explosion": 8, "multi_objective": 8,
                   "accuracy_vs_loss": 12}

EXTREMES = [(p, c, v) for p in PAGES for c in p.core.CONTROLS for v in c.extremes]


def assert_healthy(at, page) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(charts(at)) == EXPECTED_CHARTS[page.name]
    assert nonfinite_cells(at) == []


def test_every_page_has_an_expected_chart_count():
    assert set(EXPECTED_CHARTS) == {p.name for p in PAGES}


def test_home_links_every_built_page():
    at = open_page("pages/home.py")
    assert not at.exception
    linked = [link.proto.page for link in at.get("page_link")]
    for page in PAGES:
        assert any(target.endswith(page.name) for target in linked), page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_defaults(page):
    at = open_page(page.path)
    assert_healthy(at, page)
    assert at.title[0].value
    for chart in charts(at):
        for unit in walk_marks(json.loads(chart.proto.spec)):
            assert "tooltip" in unit.get("encoding", {}), f"a mark without tooltips: {unit['mark']}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_predict_first_reveals_the_short_answer(page):
    at = open_page(page.path)
    short = lambda: [m.value for m in at.markdown if "Short answer" in m.value]  # noqa: E731
    assert short() == []
    at.radio(key=f"{page.name}_predict").set_value(at.radio(key=f"{page.name}_predict").options[0]).run()
    assert len(short()) == 1
    assert at.success or at.warning


@pytest.mark.parametrize(("page", "control", "value"), EXTREMES,
                         ids=lambda x: getattr(x, "name", None) or getattr(x, "key", None) or str(x))
def test_control_extremes(page, control, value):
    at = open_page(page.path)
    widget = at.get("slider") + at.get("selectbox") + at.get("toggle")
    (target,) = [w for w in widget if w.key == f"{page.name}_{control.key}"][:1]
    target.set_value(value).run()
    assert_healthy(at, page)
    assert target.key and at.session_state[target.key] == value


@pytest.mark.parametrize(("page", "control", "value"), [(p, c, c.extremes[-1]) for p in PAGES for c in p.core.CONTROLS],
                         ids=lambda x: getattr(x, "name", None) or getattr(x, "key", None) or str(x))
def test_deep_link_lands_on_its_state(page, control, value):
    raw = str(value).lower() if isinstance(value, bool) else str(value)
    at = open_page(page.path, {f"{page.name}_{control.key}": raw})
    assert_healthy(at, page)
    assert at.session_state[f"{page.name}_{control.key}"] == value
    assert not at.info  # an accepted value gets no note


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_value_a_control_cannot_take_is_ignored_with_a_note(page):
    numeric = [c for c in page.core.CONTROLS if c.kind in ("int", "float", "log10")]
    control = numeric[0]
    at = open_page(page.path, {f"{page.name}_{control.key}": str(control.hi * 10 + 1), "seed": "12"})
    assert_healthy(at, page)
    assert at.session_state[f"{page.name}_{control.key}"] == control.default
    assert any(f"{page.name}_{control.key}" in i.value for i in at.info)
    assert at.session_state["seed"] == 12


PRESETS = [(p, name) for p in PAGES for name in getattr(p.core, "PRESETS", {})]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_page_offers_two_to_four_presets(page):
    assert 2 <= len(getattr(page.core, "PRESETS", {})) <= 4


@pytest.mark.parametrize(("page", "preset"), PRESETS, ids=lambda x: getattr(x, "name", x))
def test_choosing_a_preset_sets_every_control(page, preset):
    at = open_page(page.path)
    pills = [w for w in at.get("button_group") if w.key == f"{page.name}_preset"][0]
    pills.set_value(preset).run()
    assert_healthy(at, page)
    expected = preset_settings(page.core.CONTROLS, page.core.PRESETS, preset)
    assert {k: at.session_state[f"{page.name}_{k}"] for k in expected} == expected


@pytest.mark.parametrize(("page", "preset"), PRESETS, ids=lambda x: getattr(x, "name", x))
def test_every_preset_is_a_link(page, preset):
    query = dict(parse_qsl(preset_query(page.name, page.core.CONTROLS, page.core.PRESETS, preset)))
    at = open_page(page.path, query)
    assert_healthy(at, page)
    expected = preset_settings(page.core.CONTROLS, page.core.PRESETS, preset)
    assert {k: at.session_state[f"{page.name}_{k}"] for k in expected} == expected
    assert not at.info


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_presentation_mode_keeps_charts_and_drops_prose(page):
    at = open_page(page.path, {"present": "true"})
    assert_healthy(at, page)
    assert not at.get("radio")  # no predict-first block
    assert not at.expander  # no show-the-code
    headers = [h.value for h in at.header]
    assert all(h not in headers for h in ("Misconceptions, checked live", "Show the code", "Takeaways"))
    assert not at.get("download_button")
    for chart in charts(at):
        assert json.loads(chart.proto.spec)["height"] == 480
