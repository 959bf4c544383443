"""Figures of the accuracy-vs-loss page. Every builder takes the DataFrame its core function returns.

An infinite loss (p(true) = 0) is part of the lesson, but Vega cannot draw it: builders draw such a
value at the top of the axis, marked "∞", and say so in its tooltip; the numbers stay in the CSV.
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

import core.accuracy_vs_loss as core
import core.accuracy_vs_loss_counting as counting
import core.accuracy_vs_loss_smoothing as smoothing
from core.charts import HEIGHT, OKABE_ITO, WIDTH, chartable
from core.charts.accuracy_vs_loss_smoothing import (
    L,
    W,
    ece_bins_chart,
    field_tip,
    smoothing_calibration_chart,
    smoothing_floor_chart,
    tip,
)
from core.figures import Figure

# The page's own things, one colour each, kept across its charts: right is blue and wrong vermillion
# everywhere; a model before a fix is orange and after it sky blue. The keys are ids; a chart shows their labels
# (content/<lang>/accuracy_vs_loss.toml, [charts.labels]).
SPLITS = {"train": OKABE_ITO["grey"], "validation": OKABE_ITO["black"]}
OUTCOMES = {"right": OKABE_ITO["blue"], "wrong": OKABE_ITO["vermillion"]}
SCENARIOS = {"yours": OKABE_ITO["black"], "few confidently wrong": OKABE_ITO["vermillion"],
             "many barely wrong": OKABE_ITO["blue"]}
CALIBRATION = {"as trained": OKABE_ITO["orange"], "temperature-scaled": OKABE_ITO["sky"]}
IMBALANCE = {"majority class": OKABE_ITO["grey"], "plain loss": OKABE_ITO["orange"], "weighted loss": OKABE_ITO["sky"]}
MEASURES = {"accuracy": OKABE_ITO["black"], "balanced accuracy": OKABE_ITO["green"],
            "minority recall": OKABE_ITO["purple"]}


def palette(field: str, colors: dict[str, str], title: str | None = None, **legend) -> alt.Color:
    """A colour per id of colors; the field holds their labels (L.frame)."""
    return alt.Color(f"{field}:N", scale=alt.Scale(domain=L.domain(colors), range=list(colors.values())), title=title,
                     legend=alt.Legend(orient="bottom", labelLimit=320, **legend))


def text(value: float, fmt: str = ".3f") -> str:
    """A number for a tooltip or label: ∞ where the loss is infinite."""
    return "∞" if math.isinf(value) else format(value, fmt)


def one_example_chart(df: pd.DataFrame) -> alt.LayerChart:
    """-log p(true) against p(true), with accuracy's 0/1 step on a second axis and the reader's example marked."""
    curve = df[df.series == "curve"]
    top = float(curve.loss.max())
    mine = df[df.series == "your example"].assign(
        shown=lambda d: d.loss.clip(upper=top), loss_text=lambda d: d.loss.map(text),
        outcome=lambda d: d.correct.map({1: "right", 0: "wrong"}))
    mine = mine.assign(label=mine.apply(
        lambda r: W("charts.one_example.point", loss=r.loss_text, outcome=L(r.outcome)), axis=1))
    x = alt.X("p_true:Q", title=W["charts.one_example.x"], scale=alt.Scale(domain=[0, 1]),
              axis=alt.Axis(tickCount=10))
    loss = alt.Chart(chartable(curve)).mark_line(color=OKABE_ITO["black"]).encode(
        x=x, y=alt.Y("loss:Q", title=W["charts.one_example.y"], scale=alt.Scale(domain=[0, 1.1 * top])),
        tooltip=[tip("p_true:Q", "p_true", format=".3f"), field_tip("loss:Q", format=".3f")])
    step = alt.Chart(chartable(curve)).mark_line(interpolate="step-after", color=OKABE_ITO["orange"]).encode(
        x=x, y=alt.Y("correct:Q", title=W["charts.one_example.y_accuracy"], scale=alt.Scale(domain=[0, 1.05]),
                     axis=alt.Axis(titleColor=OKABE_ITO["orange"], values=[0, 1])),
        tooltip=[tip("p_true:Q", "p_true", format=".3f"), tip("correct:Q", "accuracy")])
    point_data = L.frame(chartable(mine.drop(columns="loss")), "outcome")
    base = alt.Chart(point_data).encode(
        x="p_true:Q", y=alt.Y("shown:Q", scale=alt.Scale(domain=[0, 1.1 * top])),
        tooltip=[tip("p_true:Q", "p_true", format=".2f"), tip("loss_text:N", "loss"), field_tip("outcome:N")])
    point = base.mark_point(filled=True, size=120).encode(
        color=palette("outcome", OUTCOMES, W["charts.one_example.legend"]))
    left = base.transform_filter("datum.p_true <= 0.6").mark_text(align="left", dx=8, dy=-8).encode(text="label:N")
    right = base.transform_filter("datum.p_true > 0.6").mark_text(align="right", dx=-8, dy=-8).encode(text="label:N")
    boundary = alt.Chart(pd.DataFrame({"p_true": [0.5], "what": [W["charts.one_example.boundary"]]})).mark_rule(
        strokeDash=[6, 3], color=OKABE_ITO["grey"]).encode(x="p_true:Q", tooltip=[field_tip("what:N")])
    return alt.layer(alt.layer(loss, boundary, point, left, right), step).resolve_scale(y="independent").properties(
        title=W["charts.one_example.title"], width=WIDTH, height=HEIGHT)


CE_CAP = 8.0  # the scenario charts' top: a larger (or infinite) loss is drawn here, marked


def _scenario_ids(df: pd.DataFrame) -> pd.Series:
    """The scenario column as SCENARIOS' ids ("few_confidently_wrong" -> "few confidently wrong")."""
    return df.scenario.str.replace("_", " ")


def scenario_plane_chart(df: pd.DataFrame) -> alt.LayerChart:
    """Each scenario as a point in the (accuracy, cross-entropy) plane, above the floor (1 − accuracy)·ln 2."""
    df = df.assign(cross_entropy_is_inf=df.cross_entropy.map(math.isinf))
    data = df.assign(shown=df.cross_entropy.clip(upper=CE_CAP), loss_text=df.cross_entropy.map(text),
                     scenario=_scenario_ids(df)).drop(columns=["cross_entropy", "loss_from_wrong"])
    data = L.frame(data, "scenario")
    data = data.assign(label=[W("charts.scenario_plane.label_inf", scenario=s) if inf else s
                              for s, inf in zip(data.scenario, data.cross_entropy_is_inf)])
    floor = pd.DataFrame({"accuracy": [0.0, 1.0], "bound": [core.LN2, 0.0],
                          "what": [W["charts.scenario_plane.floor"]] * 2})
    shade = alt.Chart(floor).mark_area(opacity=0.25, color=OKABE_ITO["grey"]).encode(
        x="accuracy:Q", y="bound:Q", tooltip=[field_tip("what:N")])
    edge = alt.Chart(floor).mark_line(color=OKABE_ITO["grey"]).encode(
        x="accuracy:Q", y="bound:Q", tooltip=[field_tip("what:N"), tip("bound:Q", "floor", format=".3f")])
    tooltip = [field_tip("scenario:N"), field_tip("accuracy:Q", format=".1%"),
               tip("loss_text:N", "cross_entropy"), tip("ece:Q", "ece", format=".3f"), field_tip("n:Q"),
               field_tip("n_wrong:Q"), tip("wrong_conf:Q", "wrong_conf"), tip("right_conf:Q", "right_conf")]
    base = alt.Chart(chartable(data)).encode(
        x=alt.X("accuracy:Q", title=W["charts.scenario_plane.x"], scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        y=alt.Y("shown:Q", title=W("charts.scenario_plane.y", cap=CE_CAP),
                scale=alt.Scale(domain=[0, max(1.0, 1.15 * float(data.shown.max()))])),
        tooltip=tooltip)
    points = base.mark_point(filled=True, size=160).encode(
        color=palette("scenario", SCENARIOS, W["charts.scenario_plane.legend"]))
    left = base.transform_filter("datum.accuracy <= 0.7").mark_text(align="left", dx=9, dy=-9).encode(text="label:N")
    right = base.transform_filter("datum.accuracy > 0.7").mark_text(align="right", dx=-9, dy=-9).encode(
        text="label:N")
    return (shade + edge + points + left + right).properties(
        title=W["charts.scenario_plane.title"], width=WIDTH, height=HEIGHT)


def loss_split_chart(df: pd.DataFrame) -> alt.Chart:
    """Each scenario's mean loss, split into what its right and its wrong predictions contribute."""
    rows = []
    for r, scenario in zip(df.itertuples(), _scenario_ids(df)):
        for outcome, part in (("right", r.loss_from_right), ("wrong", r.loss_from_wrong)):
            rows.append({"scenario": scenario, "outcome": outcome, "part": min(part, CE_CAP),
                         "part_text": text(part), "total_text": text(r.cross_entropy),
                         "examples": r.n - r.n_wrong if outcome == "right" else r.n_wrong})
    return alt.Chart(L.frame(chartable(pd.DataFrame(rows)), "scenario", "outcome")).mark_bar().encode(
        y=alt.Y("scenario:N", title=None, sort=L.domain(SCENARIOS)),
        x=alt.X("sum(part):Q", title=W["charts.loss_split.x"]),
        color=palette("outcome", OUTCOMES, W["charts.loss_split.legend"]),
        tooltip=[field_tip("scenario:N"), field_tip("outcome:N"), field_tip("examples:Q"),
                 tip("part_text:N", "contributes"), tip("total_text:N", "mean_loss")],
    ).properties(title=W["charts.loss_split.title"], width=WIDTH, height=160)


def _turn_rule(turn: dict) -> alt.Chart:
    data = pd.DataFrame({"epoch": [turn["epoch"]], "what": [W("charts.overfit.turn", epoch=turn["epoch"])]})
    return alt.Chart(data).mark_rule(strokeDash=[6, 3], color=OKABE_ITO["vermillion"]).encode(
        x="epoch:Q", tooltip=[field_tip("what:N"), field_tip("epoch:Q")])


def overfit_loss_chart(curves: pd.DataFrame) -> alt.LayerChart:
    """Train and validation loss per epoch, and the part of the validation loss from wrong predictions."""
    val = curves[curves.split == "validation"]
    lines = pd.concat([curves[["epoch", "split", "loss"]].rename(columns={"split": "series"}),
                       val[["epoch", "loss_from_wrong"]].rename(columns={"loss_from_wrong": "loss"})
                       .assign(series="validation, from wrong predictions")])
    colors = {**SPLITS, "validation, from wrong predictions": OKABE_ITO["vermillion"]}
    chart = alt.Chart(L.frame(chartable(lines), "series")).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("epoch:Q", title=W["charts.overfit.x"], axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("loss:Q", title=W["charts.overfit_loss.y"]),
        color=palette("series", colors, None),
        strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(domain=L.domain(colors),
                                                              range=[[1, 0], [1, 0], [5, 3]]), legend=None),
        tooltip=[field_tip("series:N"), field_tip("epoch:Q"), field_tip("loss:Q", format=".4f")],
    )
    return (chart + _turn_rule(core.loss_turn(curves))).properties(
        title=W["charts.overfit_loss.title"], width=WIDTH, height=HEIGHT)


def overfit_accuracy_chart(curves: pd.DataFrame) -> alt.LayerChart:
    """Train and validation accuracy per epoch, and the mean confidence of the wrong validation predictions."""
    val = curves[curves.split == "validation"]
    lines = pd.concat([curves[["epoch", "split", "accuracy"]].rename(columns={"split": "series", "accuracy": "value"}),
                       val[["epoch", "conf_wrong"]].rename(columns={"conf_wrong": "value"})
                       .assign(series="validation, confidence when wrong")])
    colors = {**SPLITS, "validation, confidence when wrong": OKABE_ITO["vermillion"]}
    chart = alt.Chart(L.frame(chartable(lines), "series")).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("epoch:Q", title=W["charts.overfit.x"], axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title=W["charts.overfit_accuracy.y"], axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        color=palette("series", colors, None),
        strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(domain=L.domain(colors),
                                                              range=[[1, 0], [1, 0], [5, 3]]), legend=None),
        tooltip=[field_tip("series:N"), field_tip("epoch:Q"), field_tip("value:Q", format=".1%")],
    )
    return (chart + _turn_rule(core.loss_turn(curves))).properties(
        title=W["charts.overfit_accuracy.title"], width=WIDTH, height=HEIGHT)


def reliability_chart(bins: pd.DataFrame) -> alt.LayerChart:
    """Reliability diagram: accuracy per confidence bin (half a bin per model), the diagonal of perfect calibration."""
    half = (bins.hi - bins.lo) / 2
    offset = bins.model.map({"as trained": 0.0, "temperature-scaled": 1.0})
    data = L.frame(chartable(bins.assign(x0=bins.lo + offset * half, x1=bins.lo + (offset + 1) * half)), "model")
    tooltip = [field_tip("model:N"), tip("lo:Q", "conf_above", format=".3f"),
               tip("hi:Q", "up_to", format=".3f"), field_tip("count:Q", "tally"),
               field_tip("accuracy:Q", format=".1%"), tip("confidence:Q", "confidence", format=".1%"),
               tip("gap:Q", "gap", format="+.1%")]
    axis = alt.Axis(format="%")
    bars = alt.Chart(data).mark_rect(opacity=0.85).encode(
        x=alt.X("x0:Q", title=W["charts.reliability.x"], axis=axis,
                scale=alt.Scale(domain=[0, 1])),
        x2="x1:Q", y=alt.Y("accuracy:Q", title=W["charts.reliability.y"], axis=axis, scale=alt.Scale(domain=[0, 1])),
        y2=alt.datum(0), color=palette("model", CALIBRATION, None), tooltip=tooltip)
    ticks = alt.Chart(data).mark_rule(color=OKABE_ITO["black"], strokeWidth=2).encode(
        x="x0:Q", x2="x1:Q", y="confidence:Q", tooltip=tooltip)
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "what": [W["charts.reliability.diagonal"]] * 2}))
    diag = diagonal.mark_line(strokeDash=[4, 4], color=OKABE_ITO["grey"]).encode(
        x="x:Q", y="x:Q", tooltip=[field_tip("what:N")])
    return (bars + ticks + diag).properties(
        title=W["charts.reliability.title"], width=WIDTH, height=HEIGHT)


def confusion_chart(cells: pd.DataFrame) -> alt.LayerChart:
    """The three confusion matrices side by side: share of each true class predicted as each class, with counts."""
    order = ["majority", "minority"]

    def column(model: str, predicted: str) -> str:
        return W("charts.confusion.column", model=L(model), predicted=L(predicted))

    data = chartable(cells.assign(column=[column(m, p) for m, p in zip(cells.model, cells.predicted)]))
    data = L.frame(data, "model", "true", "predicted")
    columns = [column(m, p) for m in IMBALANCE for p in order]
    share = W["charts.confusion.share"]
    base = alt.Chart(data).encode(
        x=alt.X("column:N", sort=columns, title=W["charts.confusion.x"],
                # each column's model over its predicted class, turned upright: no label is hidden or cut at any width
                axis=alt.Axis(labelAngle=-90, labelAlign="right", labelBaseline="middle", labelLimit=0,
                              labelOverlap=False, labelExpr="split(datum.label, '\\n')")),
        y=alt.Y("true:N", sort=L.domain(order), title=W["charts.confusion.y"]),
        tooltip=[field_tip("model:N"), field_tip("true:N"), field_tip("predicted:N"), field_tip("count:Q", "tally"),
                 alt.Tooltip("row_share:Q", format=".1%", title=share)])
    rect = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("row_share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title=share,
                        legend=alt.Legend(format="%", orient="right")))
    label = base.mark_text().encode(  # the mode's text size: 18 px on a projector
        text="count:Q", color=alt.condition("datum.row_share > 0.6", alt.value("white"), alt.value("black")))
    return (rect + label).properties(title=W["charts.confusion.title"], width=WIDTH, height=HEIGHT)


def imbalance_metrics_chart(metrics: pd.DataFrame) -> alt.LayerChart:
    """Accuracy, balanced accuracy and minority recall of each model; the majority share marked."""
    long = metrics.rename(columns={"balanced_accuracy": "balanced accuracy", "recall_minority": "minority recall"})
    long = long.melt(id_vars="model", value_vars=list(MEASURES), var_name="measure", value_name="value")
    share = float(metrics.set_index("model").at["majority class", "accuracy"])
    bars = alt.Chart(L.frame(chartable(long), "model", "measure")).mark_bar().encode(
        y=alt.Y("model:N", sort=L.domain(IMBALANCE), title=None),
        yOffset=alt.YOffset("measure:N", sort=L.domain(MEASURES)),
        x=alt.X("value:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title=None),
        color=palette("measure", MEASURES, None),
        tooltip=[field_tip("model:N"), field_tip("measure:N"), field_tip("value:Q", format=".1%")])
    rule = alt.Chart(pd.DataFrame({"value": [share], "what": [W["charts.imbalance_metrics.rule"]]}))
    rule = rule.mark_rule(strokeDash=[6, 3], color=OKABE_ITO["grey"]).encode(
        x="value:Q", tooltip=[field_tip("what:N"), field_tip("value:Q", format=".1%")])
    return (bars + rule).properties(
        title=W["charts.imbalance_metrics.title"], width=WIDTH, height=HEIGHT)


def batches_chart(batches: pd.DataFrame) -> alt.LayerChart:
    """Each batch's accuracy as a bar as wide as the batch; the counted and the averaged accuracy as lines."""
    summary = counting.bookkeeping_summary(batches)
    end = batches["size"].cumsum()
    data = batches.assign(start=end - batches["size"], end=end)
    tooltip = [field_tip("batch:Q"), field_tip("size:Q"), field_tip("correct:Q"),
               field_tip("accuracy:Q", format=".1%"), tip("loss:Q", "batch_loss", format=".4f")]
    bars = alt.Chart(chartable(data)).mark_rect(color=OKABE_ITO["sky"], stroke="white", strokeWidth=0.5).encode(
        x=alt.X("start:Q", title=W["charts.batches.x"], axis=alt.Axis(tickMinStep=1)), x2="end:Q",
        y=alt.Y("accuracy:Q", axis=alt.Axis(format="%"), title=W["charts.batches.y"], scale=alt.Scale(domain=[0, 1])),
        y2=alt.datum(0), tooltip=tooltip)
    ways = ["counted: right ÷ examples", "averaged over batches"]
    lines = L.frame(pd.DataFrame({"value": [summary["accuracy_counted"], summary["accuracy_averaged"]], "way": ways}),
                    "way")
    rules = alt.Chart(lines).mark_rule(strokeWidth=2).encode(
        y="value:Q", color=palette("way", dict(zip(ways, [OKABE_ITO["black"], OKABE_ITO["vermillion"]]))),
        strokeDash=alt.StrokeDash("way:N", scale=alt.Scale(domain=L.domain(ways), range=[[1, 0], [5, 3]]),
                                  legend=None),
        tooltip=[field_tip("way:N"), field_tip("value:Q", format=".2%")])
    return (bars + rules).properties(
        title=W["charts.batches.title"], width=WIDTH, height=HEIGHT)


# The page's figures, by name (core/figures.py). Each data function takes the page's settings by control key.
RUN = ("label_noise", "epochs", "train_size", "seed")
SCENARIO = ("n_examples", "wrong_share", "wrong_conf", "right_conf")


def _scenarios(n_examples: int, wrong_share: float, wrong_conf: float, right_conf: float) -> pd.DataFrame:
    return core.scenario_table(n_examples, wrong_share, wrong_conf, right_conf)


def _reliability(label_noise: float, epochs: int, train_size: int, seed: int) -> pd.DataFrame:
    return core.calibrate(label_noise=label_noise, epochs=epochs, train_size=train_size, seed=seed).bins


def _confusion(majority_share: float, seed: int) -> pd.DataFrame:
    return counting.imbalance(majority_share, seed=seed).confusion


def _imbalance(majority_share: float, seed: int) -> pd.DataFrame:
    return counting.imbalance(majority_share, seed=seed).metrics


def _batches(batch_size: int, eval_examples: int, label_noise: float, epochs: int, train_size: int,
             seed: int) -> pd.DataFrame:
    logits, labels = core.train_noisy(label_noise, epochs, train_size, seed).test
    return counting.batch_counts(logits[:eval_examples], labels[:eval_examples], batch_size)


def _smoothing(seed: int) -> pd.DataFrame:
    return smoothing.smoothing_sweep(seed=seed)


def _ece_bins(label_noise: float, epochs: int, train_size: int, seed: int) -> pd.DataFrame:
    return smoothing.ece_by_bins(label_noise=label_noise, epochs=epochs, train_size=train_size, seed=seed)


FIGURES: dict[str, Figure] = {
    "one_example": Figure(("p_true",), core.one_example, lambda df, s: one_example_chart(df), experiment="one"),
    "scenario_plane": Figure(SCENARIO, _scenarios, lambda df, s: scenario_plane_chart(df), experiment="scenario"),
    "loss_split": Figure(SCENARIO, _scenarios, lambda df, s: loss_split_chart(df), experiment="scenario"),
    "overfit_loss": Figure(RUN, core.overfit_curves, lambda df, s: overfit_loss_chart(df), experiment="overfit"),
    "overfit_accuracy": Figure(RUN, core.overfit_curves, lambda df, s: overfit_accuracy_chart(df),
                               experiment="overfit"),
    "reliability": Figure(RUN, _reliability, lambda df, s: reliability_chart(df), experiment="calibration"),
    "confusion": Figure(("majority_share", "seed"), _confusion, lambda df, s: confusion_chart(df),
                        experiment="imbalance"),
    "imbalance_metrics": Figure(("majority_share", "seed"), _imbalance, lambda df, s: imbalance_metrics_chart(df),
                                experiment="imbalance"),
    "batches": Figure(("batch_size", "eval_examples", *RUN), _batches, lambda df, s: batches_chart(df),
                      experiment="bookkeeping"),
    "smoothing_floor": Figure(("seed",), _smoothing, lambda df, s: smoothing_floor_chart(df, s["smoothing"]),
                              ("smoothing",), "smoothing"),
    "smoothing_calibration": Figure(("seed",), _smoothing,
                                    lambda df, s: smoothing_calibration_chart(df, s["smoothing"]), ("smoothing",),
                                    "smoothing"),
    "ece_bins": Figure(RUN, _ece_bins, lambda df, s: ece_bins_chart(df, s["ece_bins"]), ("ece_bins",), "bins"),
}
