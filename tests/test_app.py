"""Every registered page under AppTest: defaults, every control at its extremes, deep links, bad links.

The control tables in core/<page>.py drive these tests, so a page's new control is tested the day it
is added, with no edit here.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

import pytest

from content import words
from core.controls import preset_settings
from core.figures import registry
from core.registry import PAGES
from tests.helpers import charts, nonfinite_cells, open_page, page_view, ran_parts, walk_marks
from ui import PRESENT_HEIGHT
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
def test_predict_then_check(page):
    """Choosing alone reveals nothing; Check names the right option, then the short answer follows."""
    at = open_page(page.path)
    short = lambda: [m.value for m in at.markdown if "Short answer" in m.value]  # noqa: E731
    radio = at.radio(key=f"{page.name}_predict")
    options = radio.options
    answer = options[words(page.name)["predict.answer"]]
    wrong = next(o for o in options if o != answer)
    feedback = lambda: [b.value for b in [*at.warning, *at.success]  # noqa: E731
                        if b.value.startswith(("Right", "Not quite"))]
    radio.set_value(wrong).run()
    assert short() == [] and feedback() == []  # a choice (a click, an arrow key) is not a commitment
    at.button(key=f"{page.name}_predict_check").click().run()
    assert len(short()) == 1
    (said,) = feedback()
    assert said.startswith("Not quite") and answer.split()[0] in said
    at.radio(key=f"{page.name}_predict").set_value(answer).run()
    assert short() == [] and feedback() == []  # a changed choice must be checked again
    at.button(key=f"{page.name}_predict_check").click().run()
    assert feedback()[0].startswith("Right")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_chart_describes_its_data(page):
    """The chart's label (its spec's description) says what is plotted; the text under "Describe" beside it says
    that and the ranges the data span (core.figures.steady)."""
    at = open_page(page.path)
    described = [text.value for text in at.get("text")]
    for chart in charts(at):
        spec = json.loads(chart.proto.spec)
        description = spec.get("description", "")
        assert " against " in description or " per " in description, description
        assert 1 <= description.count(". ") + 1 <= 3 and len(description) < 700, description
        lead = re.split(r"[.;] ", description.rstrip("."))[0]
        assert any(text.startswith(lead) and len(text) >= len(description) for text in described), description
    assert sum(" from " in text for text in described) >= len(charts(at)) // 2  # ranges: "x from a to b"


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
    assert link_notes(at) == []  # an accepted value gets no note
    # Moving the control there on an open page reruns only the parts that read it (ui.Page._moved); what the page
    # then shows is what the link draws in a full run, element for element: no part that reads it was left out.
    moved = open_page(page.path)
    widget = moved.get("slider") + moved.get("selectbox") + moved.get("toggle") + moved.get("number_input")
    (target,) = [w for w in widget if w.key == f"{page.name}_{control.key}"]
    target.set_value(value).run()
    assert ran_parts(moved)  # the partial rerun, not a full one
    assert page_view(moved) == page_view(at)


def link_notes(at) -> list[str]:
    """The note at the top of the page on what the link's values became: its raw HTML."""
    return [h.proto.body for h in at.get("html") if 'class="gl-link-notes"' in h.proto.body]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_an_out_of_range_link_value_is_clamped_with_a_note_at_the_top(page):
    numeric = [c for c in page.core.CONTROLS if c.kind in ("int", "float", "log10")]
    control = numeric[0]
    at = open_page(page.path, {f"{page.name}_{control.key}": str(control.hi * 10 + 1), "seed": "12"})
    assert_healthy(at, page)
    assert at.session_state[f"{page.name}_{control.key}"] == control.hi
    (note,) = link_notes(at)
    assert f"{page.name}_{control.key}" in note and "nearest end" in note
    assert at.session_state["seed"] == 12


def test_link_values_that_are_changed_or_dropped_are_all_noted():
    at = open_page("pages/loss_scaling.py", {"seed": "99999", "present": "yes", "loss_scaling_steps": "2.5",
                                             "loss_scaling_lr": "banana"})
    assert not at.exception
    assert at.session_state["seed"] == 9999 and at.session_state["present"] is True
    assert at.session_state["loss_scaling_steps"] == 2 and at.session_state["loss_scaling_lr"] == 0.1
    (note,) = link_notes(at)
    assert all(k in note for k in ("seed", "steps", "banana")) and "present" not in note  # "yes" is a truthy spelling


def test_a_link_in_a_link_value_is_plain_text():
    raw = "` [Your session expired: log in here](https://example.com) `"
    at = open_page("pages/loss_scaling.py", {"loss_scaling_lr": raw})
    (note,) = link_notes(at)
    assert "<a" not in note and "[Your session expired" in note and "&lt;" not in raw  # shown, never a link
    long = open_page("pages/loss_scaling.py", {"loss_scaling_lr": "x" * 3000})
    (note,) = link_notes(long)
    assert len(note) < 400


def test_an_embedded_section_shows_one_experiment():
    at = open_page("pages/loss_scaling.py", {"embed": "true", "section": "update"})
    assert not at.exception
    assert [h.value for h in at.header] == [words("loss_scaling")["experiments.update.title"]]
    assert not at.title and not at.get("radio")
    assert len(charts(at)) == sum(f.experiment == "update" for f in registry("loss_scaling").values())
    assert {s.key for s in at.slider} == {"loss_scaling_lr", "loss_scaling_steps", "loss_scaling_eps_exp"}


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
    assert link_notes(at) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_presentation_mode_keeps_charts_and_drops_prose(page):
    at = open_page(page.path, {"present": "true"})
    assert_healthy(at, page)
    assert at.get("radio")  # the predict question stays, so a teacher can poll the room
    assert not at.expander  # no show-the-code
    headers = [h.value for h in at.header]
    assert all(h not in headers for h in ("Misconceptions, checked live", "Show the code", "Takeaways"))
    assert not at.get("download_button")
    for chart in charts(at):
        spec = json.loads(chart.proto.spec)
        assert spec.get("width", "container") != "container" or spec["height"] == PRESENT_HEIGHT
        # panels stacked in one chart share one chart's height, so the chart fits under its pinned controls
        assert sum(panel.get("height", 0) for panel in spec.get("vconcat", [])) <= PRESENT_HEIGHT + 1
        assert spec["config"]["axis"]["labelFontSize"] >= 18 and spec["config"]["legend"]["titleFontSize"] >= 18
