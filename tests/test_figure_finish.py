"""What every figure gets before it is drawn or exported: wrapped titles, legends below, dark text, a description."""

from __future__ import annotations

import math
import re

import altair as alt
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core.charts import label_lines, lines_of
from core.export import settings_for, to_svg
from core.figures import FONT, INK, _walk, describe, finish, registry, spec, steady, wrap
from core.readings import Reading, Readout
from core.registry import PAGES
from tests.helpers import walk_marks

ALL = [(p.name, name) for p in PAGES for name in registry(p.name)]


def _chart() -> dict:
    df = pd.DataFrame({"step": [0, 1, 2, 0, 1, 2], "loss": [1.0, 0.5, 0.25, 1.0, 0.8, 0.6],
                       "run": ["sgd"] * 3 + ["adam"] * 3})
    return alt.Chart(df).mark_line().encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("loss:Q", title="training loss"),
        color=alt.Color("run:N", legend=alt.Legend(orient="right")), tooltip=["run:N"],
    ).properties(title="A title long enough that a phone must wrap it onto two lines or more", width="container")


def test_wrap_breaks_at_spaces_within_the_width():
    lines = wrap("one two three four five six seven", 10)
    assert lines == ["one two", "three four", "five six", "seven"] and all(len(x) <= 10 for x in lines)


def test_finish_wraps_the_title_to_the_width_moves_legends_below_and_darkens_text():
    done = finish(_chart().to_dict())
    assert "width" in done["title"]["text"]["expr"] and done["config"]["title"]["limit"] == 0
    (unit,) = list(walk_marks(done))
    assert unit["encoding"]["color"]["legend"]["orient"] == "bottom"
    assert done["config"]["axis"]["labelColor"] == INK and done["config"]["axis"]["labelFontSize"] == 12
    present = finish(done, present=True)
    assert present["config"]["axis"]["labelFontSize"] >= 18 and present["config"]["legend"]["titleFontSize"] >= 18
    assert present["description"] == done["description"]


def test_a_colour_ramp_lies_along_the_plot_and_a_category_legend_stacks():
    df = pd.DataFrame({"x": [0, 1], "y": [0, 1], "share": [0.2, 0.9]})
    color = alt.Color("share:Q", legend=alt.Legend(orient="right"))
    ramp = alt.Chart(df).mark_rect().encode(x="x:N", y="y:N", color=color)
    (unit,) = list(walk_marks(finish(ramp.to_dict())))
    assert unit["encoding"]["color"]["legend"]["direction"] == "horizontal"
    (unit,) = list(walk_marks(finish(_chart().to_dict())))
    assert unit["encoding"]["color"]["legend"]["direction"] == "vertical"


def test_the_description_says_what_against_what_the_ranges_and_the_series():
    text = describe(finish(_chart().to_dict()))
    assert text.startswith("A title long enough")
    assert "training loss against step" in text.lower() and "from 0 to 2" in text and "sgd and adam" in text


@pytest.mark.parametrize(("page", "name"), ALL, ids=lambda x: str(x))
def test_every_exported_figure_draws_its_plot_and_describes_it(page, name):
    """The export's SVG has a plot of real width (the clipping diagram was 0 px wide) and a wrapped title."""
    _, figure = spec(page, name, settings_for(page, None))
    assert len(figure["description"]) > 40
    svg = to_svg(figure)
    width = float(svg.split('width="', 1)[1].split('"', 1)[0])
    assert width >= 200, (page, name, width)
    assert "…" not in svg.split("role-title", 1)[-1][:4000]


def _inner_titles(node: dict) -> list[str]:
    """The titles of a chart's layers and panels, at any depth."""
    found = []
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for part in node.get(key) or []:
            if isinstance(part, dict):
                found += [str(part["title"])] if "title" in part else []
                found += _inner_titles(part)
    return found


@pytest.mark.parametrize(("page", "name"), ALL, ids=lambda x: str(x))
def test_every_figure_s_title_is_the_chart_s_own_so_it_wraps(page, name):
    """A title set on one layer or panel escapes finish()'s wrapping and is cut off on a phone."""
    _, figure = spec(page, name, settings_for(page, None))
    assert figure.get("title", {}).get("text"), (page, name)
    assert _inner_titles(figure) == [], (page, name)


@hsettings(max_examples=200)
@given(st.text(alphabet=st.sampled_from("ab (→全=_.)"), max_size=60), st.integers(4, 30))
def test_a_label_s_lines_keep_every_character_and_fit_unless_one_piece_cannot(label, width):
    lines = lines_of(label, width)
    assert re.sub(r"\s+", "", "".join(lines)) == re.sub(r"\s+", "", label)
    for line in lines:
        assert line == line.strip() or not line
        assert len(line) <= width or not re.search(r"[\s(]", line.rstrip("(")), (label, lines)


def test_the_label_expression_breaks_the_long_labels_and_leaves_the_rest():
    expr = label_lines(["zero_grad(set_to_none=False)  →  zeros", "short"])
    assert '["zero_grad(", "set_to_none=False)", "→  zeros"]' in expr and '"short"' not in expr
    assert expr.endswith("datum.label")


def test_a_chinese_title_s_lines_fit_the_plot_they_top():
    """Chinese glyphs are a font size wide each; a line wider than the plot was cut short with an ellipsis."""
    from core.figures import _wrapped_title

    expr = _wrapped_title("累积梯度对比一个大批量的梯度：只有按项计数对每个 k 都精确", 15, True)["text"]["expr"]
    chars = re.search(r"\+ (max\(8, floor\(.*?\)\)) \+", expr).group(1)
    for width in range(160, 900, 7):  # 8 glyphs is the floor however narrow the plot
        per_line = eval(chars, {"max": max, "floor": math.floor, "width": width})  # noqa: S307
        assert per_line * 15 <= max(width, 8 * 15), (width, per_line)


def test_predict_reasons_fill_each_option_and_fall_back_without_a_reader():
    from ui import predict_reasons

    def reader(settings, run):
        return Readout(readings=(Reading("predict.why", {"ratio": 0.1}),))

    assert predict_reasons(["moves {ratio:g} as far", "no"], reader, {}) == ["moves 0.1 as far", "no"]
    assert predict_reasons(None, reader, {}) is None
    assert predict_reasons(["needs {missing}"], reader, {}) is None  # a reader not written yet: generic lines


def test_font_sizes_of_presentation_mode_are_at_least_18_px():
    assert min(FONT["present"].values()) >= 18


def _data_names(node) -> list[str]:
    found: list[str] = []
    _walk(node, lambda n: found.append(n["data"]["name"]) if isinstance(n.get("data"), dict)
          and "name" in n["data"] else None)
    return found


@pytest.mark.parametrize(("page", "name"), ALL, ids=[f"{p}/{n}" for p, n in ALL])
def test_a_steady_spec_draws_the_same_rows_under_names_by_place(page, name):
    _, finished = spec(page, name, settings_for(page, None))
    steady_, described = steady(finished)
    assert described == finished["description"]
    assert list(steady_["datasets"]) == [f"data-{i}" for i in range(len(finished["datasets"]))]
    assert list(steady_["datasets"].values()) == list(finished["datasets"].values())  # the same rows, in order
    renamed = dict(zip(finished["datasets"], steady_["datasets"], strict=True))
    assert _data_names(steady_) == [renamed.get(n, n) for n in _data_names(finished)]  # every reference follows
    assert describe(steady_) == described  # the full description does not depend on the names
    assert steady_["description"] == describe(steady_, numbers=False)
    assert {k: v for k, v in steady_.items() if k not in ("datasets", "description", "layer", "data")} == \
        {k: v for k, v in finished.items() if k not in ("datasets", "description", "layer", "data")}


def test_a_move_that_changes_only_the_rows_leaves_the_steady_spec_as_it_was():
    """loss_scaling's runs at two learning rates: different rows, one spec, one label (the ranges are left out)."""
    one, other = ({**settings_for("loss_scaling", None), "lr": lr} for lr in (0.1, 0.101))
    (_, a), (_, b) = spec("loss_scaling", "equivalent_runs", one), spec("loss_scaling", "equivalent_runs", other)
    assert a["datasets"] != b["datasets"] and a["description"] != b["description"]
    (sa, _), (sb, _) = steady(a), steady(b)
    assert sa["datasets"] != sb["datasets"]
    assert {**sa, "datasets": None} == {**sb, "datasets": None}
