"""Figures of the accuracy-vs-loss page's experiments 7 and 8: label smoothing, and ECE over its bins."""

from __future__ import annotations

import altair as alt
import pandas as pd

import core.accuracy_vs_loss_smoothing as smoothing
from core.charts import HEIGHT, OKABE_ITO, WIDTH, chartable, vertical_marker


def palette(field: str, colors: dict[str, str], title: str | None = None) -> alt.Color:
    return alt.Color(f"{field}:N", scale=alt.Scale(domain=list(colors), range=list(colors.values())), title=title,
                     legend=alt.Legend(orient="bottom", labelLimit=320))


CALIBRATION = {"as trained": OKABE_ITO["orange"], "temperature-scaled": OKABE_ITO["sky"]}  # as experiment 4's chart


SMOOTH = {"closed-form floor H(ε, K)": OKABE_ITO["grey"], "training loss reached": OKABE_ITO["black"]}
CALIBRATION_MEASURES = {"ECE (15 bins)": OKABE_ITO["vermillion"], "confidence − accuracy": OKABE_ITO["blue"]}


def smoothing_floor_chart(df: pd.DataFrame, smoothing_value: float) -> alt.LayerChart:
    """The closed-form floor of the smoothed loss against eps, and the training loss each run reached."""
    curve = smoothing.floor_curve().assign(series="closed-form floor H(ε, K)", loss=lambda d: d.floor)
    runs = df.assign(series="training loss reached", loss=df.train_loss)
    data = chartable(pd.concat([curve[["smoothing", "series", "loss"]], runs[["smoothing", "series", "loss"]]]))
    tooltip = ["series:N", alt.Tooltip("smoothing:Q", format=".2f", title="ε"), alt.Tooltip("loss:Q", format=".4f")]
    x = alt.X("smoothing:Q", title="label smoothing ε", scale=alt.Scale(domain=[0, 0.5]))
    line = alt.Chart(data).transform_filter(f"datum.series == '{list(SMOOTH)[0]}'").mark_line(strokeWidth=6,
                                                                                               opacity=0.5)
    dots = alt.Chart(data).transform_filter(f"datum.series == '{list(SMOOTH)[1]}'").mark_point(filled=True, size=70)
    color = palette("series", SMOOTH, None)
    layers = [c.encode(x=x, y=alt.Y("loss:Q", title="smoothed cross-entropy on the training set (nats)"),
                       color=color, tooltip=tooltip) for c in (line, dots)]
    return (alt.layer(*layers) + vertical_marker(smoothing_value, f"your ε = {smoothing_value:g}")).properties(
        title="With label smoothing the training loss cannot reach 0: it stops on the floor H(ε, K)",
        width=WIDTH, height=HEIGHT)


def smoothing_calibration_chart(df: pd.DataFrame, smoothing_value: float) -> alt.LayerChart:
    """Test ECE and the mean confidence's excess over accuracy, for each eps: over-confident above 0."""
    long = pd.concat([df.assign(measure="ECE (15 bins)", value=df.test_ece),
                      df.assign(measure="confidence − accuracy", value=df.test_confidence - df.test_accuracy)])
    data = chartable(long[["smoothing", "measure", "value", "test_accuracy", "test_confidence", "test_nll"]])
    line = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=40)).encode(
        x=alt.X("smoothing:Q", title="label smoothing ε", scale=alt.Scale(domain=[0, 0.5])),
        y=alt.Y("value:Q", title="on the test set"), color=palette("measure", CALIBRATION_MEASURES, None),
        tooltip=["measure:N", alt.Tooltip("smoothing:Q", format=".2f", title="ε"),
                 alt.Tooltip("value:Q", format="+.3f"), alt.Tooltip("test_accuracy:Q", format=".1%", title="accuracy"),
                 alt.Tooltip("test_confidence:Q", format=".1%", title="mean confidence"),
                 alt.Tooltip("test_nll:Q", format=".3f", title="test NLL")])
    zero = alt.Chart(pd.DataFrame({"y": [0.0], "what": ["calibrated on average: confidence = accuracy"]})).mark_rule(
        strokeDash=[4, 3], color=OKABE_ITO["grey"]).encode(y="y:Q", tooltip=["what:N"])
    return (line + zero + vertical_marker(smoothing_value, f"your ε = {smoothing_value:g}")).properties(
        title="Smoothing moves calibration: over-confident above the dashed line, under-confident below",
        width=WIDTH, height=HEIGHT)


def ece_bins_chart(df: pd.DataFrame, bins: int) -> alt.LayerChart:
    """ECE of the same test predictions for 1 to 100 bins, as trained and temperature-scaled."""
    line = alt.Chart(chartable(df)).mark_line(point=alt.OverlayMarkDef(size=10)).encode(
        x=alt.X("bins:Q", title="number of equal-width bins", scale=alt.Scale(type="log")),
        y=alt.Y("ece:Q", title="ECE of the same test predictions"), color=palette("model", CALIBRATION, None),
        tooltip=["model:N", "bins:Q", alt.Tooltip("ece:Q", format=".4f", title="ECE")])
    return (line + vertical_marker(bins, f"your bins = {bins}")).properties(
        title="One set of predictions, many ECEs: the number reported depends on the bins", width=WIDTH,
        height=HEIGHT)
