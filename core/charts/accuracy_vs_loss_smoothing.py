"""Figures of the accuracy-vs-loss page's experiments 7 and 8: label smoothing, and ECE over its bins.

Also the page's chart words (W, L, tip, field_tip), shared with core/charts/accuracy_vs_loss.py: every word a chart
shows comes from content/<lang>/accuracy_vs_loss.toml's [charts.*] tables, every category from [charts.labels].
"""

from __future__ import annotations

import altair as alt
import pandas as pd

import core.accuracy_vs_loss_smoothing as smoothing
from content import words
from core.charts import HEIGHT, OKABE_ITO, WIDTH, Labels, chartable, vertical_marker

W = words("accuracy_vs_loss")
L = Labels("accuracy_vs_loss")


def tip(field: str, key: str, **kw) -> alt.Tooltip:
    """A tooltip titled with [charts.tips] key."""
    return alt.Tooltip(field, title=W[f"charts.tips.{key}"], **kw)


def field_tip(field: str, key: str | None = None, **kw) -> alt.Tooltip | str:
    """A tooltip that used to show its field's name as its title: titled from [charts.tips] (key: the field's name)
    wherever the words differ from that name, so English keeps the very spec it had."""
    name = field.split(":")[0]
    title = W[f"charts.tips.{key or name}"]
    if title != name:
        return alt.Tooltip(field, title=title, **kw)
    return alt.Tooltip(field, **kw) if kw else field


def palette(field: str, colors: dict[str, str], title: str | None = None) -> alt.Color:
    """A colour per id of colors; the field holds their labels (L.frame)."""
    return alt.Color(f"{field}:N", scale=alt.Scale(domain=L.domain(colors), range=list(colors.values())), title=title,
                     legend=alt.Legend(orient="bottom", labelLimit=320))


def _quoted(value: str) -> str:
    """A label inside a single-quoted Vega expression string."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


CALIBRATION = {"as trained": OKABE_ITO["orange"], "temperature-scaled": OKABE_ITO["sky"]}  # as experiment 4's chart


SMOOTH = {"closed-form floor H(ε, K)": OKABE_ITO["grey"], "training loss reached": OKABE_ITO["black"]}
CALIBRATION_MEASURES = {"ECE (15 bins)": OKABE_ITO["vermillion"], "confidence − accuracy": OKABE_ITO["blue"]}


def smoothing_floor_chart(df: pd.DataFrame, smoothing_value: float) -> alt.LayerChart:
    """The closed-form floor of the smoothed loss against eps, and the training loss each run reached."""
    floor_id, reached_id = SMOOTH
    curve = smoothing.floor_curve().assign(series=floor_id, loss=lambda d: d.floor)
    runs = df.assign(series=reached_id, loss=df.train_loss)
    both = pd.concat([curve[["smoothing", "series", "loss"]], runs[["smoothing", "series", "loss"]]])
    data = L.frame(chartable(both), "series")
    tooltip = [field_tip("series:N"), tip("smoothing:Q", "eps", format=".2f"), field_tip("loss:Q", format=".4f")]
    x = alt.X("smoothing:Q", title=W["charts.smoothing.x"], scale=alt.Scale(domain=[0, 0.5]))
    line = alt.Chart(data).transform_filter(f"datum.series == '{_quoted(L(floor_id))}'").mark_line(strokeWidth=6,
                                                                                                   opacity=0.5)
    dots = alt.Chart(data).transform_filter(f"datum.series == '{_quoted(L(reached_id))}'").mark_point(filled=True,
                                                                                                      size=70)
    color = palette("series", SMOOTH, None)
    layers = [c.encode(x=x, y=alt.Y("loss:Q", title=W["charts.smoothing_floor.y"]),
                       color=color, tooltip=tooltip) for c in (line, dots)]
    marker = vertical_marker(smoothing_value, W("charts.smoothing.marker", eps=smoothing_value))
    return (alt.layer(*layers) + marker).properties(
        title=W["charts.smoothing_floor.title"], width=WIDTH, height=HEIGHT)


def smoothing_calibration_chart(df: pd.DataFrame, smoothing_value: float) -> alt.LayerChart:
    """Test ECE and the mean confidence's excess over accuracy, for each eps: over-confident above 0."""
    ece_id, excess_id = CALIBRATION_MEASURES
    long = pd.concat([df.assign(measure=ece_id, value=df.test_ece),
                      df.assign(measure=excess_id, value=df.test_confidence - df.test_accuracy)])
    data = L.frame(chartable(long[["smoothing", "measure", "value", "test_accuracy", "test_confidence", "test_nll"]]),
                   "measure")
    line = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=40)).encode(
        x=alt.X("smoothing:Q", title=W["charts.smoothing.x"], scale=alt.Scale(domain=[0, 0.5])),
        y=alt.Y("value:Q", title=W["charts.smoothing_calibration.y"]),
        color=palette("measure", CALIBRATION_MEASURES, None),
        tooltip=[field_tip("measure:N"), tip("smoothing:Q", "eps", format=".2f"),
                 field_tip("value:Q", format="+.3f"), tip("test_accuracy:Q", "accuracy", format=".1%"),
                 tip("test_confidence:Q", "mean_confidence", format=".1%"),
                 tip("test_nll:Q", "test_nll", format=".3f")])
    what = W["charts.smoothing_calibration.zero"]
    zero = alt.Chart(pd.DataFrame({"y": [0.0], "what": [what]})).mark_rule(
        strokeDash=[4, 3], color=OKABE_ITO["grey"]).encode(y="y:Q", tooltip=[field_tip("what:N")])
    marker = vertical_marker(smoothing_value, W("charts.smoothing.marker", eps=smoothing_value))
    return (line + zero + marker).properties(
        title=W["charts.smoothing_calibration.title"], width=WIDTH, height=HEIGHT)


def ece_bins_chart(df: pd.DataFrame, bins: int) -> alt.LayerChart:
    """ECE of the same test predictions for 1 to 100 bins, as trained and temperature-scaled."""
    line = alt.Chart(L.frame(chartable(df), "model")).mark_line(point=alt.OverlayMarkDef(size=10)).encode(
        x=alt.X("bins:Q", title=W["charts.ece_bins.x"], scale=alt.Scale(type="log")),
        y=alt.Y("ece:Q", title=W["charts.ece_bins.y"]), color=palette("model", CALIBRATION, None),
        tooltip=[field_tip("model:N"), field_tip("bins:Q"), tip("ece:Q", "ece", format=".4f")])
    return (line + vertical_marker(bins, W("charts.ece_bins.marker", bins=bins))).properties(
        title=W["charts.ece_bins.title"], width=WIDTH,
        height=HEIGHT)
