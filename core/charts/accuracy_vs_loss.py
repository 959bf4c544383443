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
from core.charts.accuracy_vs_loss_smoothing import ece_bins_chart, smoothing_calibration_chart, smoothing_floor_chart
from core.figures import Figure

# The page's own things, one colour each, kept across its charts: right is blue and wrong vermillion
# everywhere; a model before a fix is orange and after it sky blue.
SPLITS = {"train": OKABE_ITO["grey"], "validation": OKABE_ITO["black"]}
OUTCOMES = {"right": OKABE_ITO["blue"], "wrong": OKABE_ITO["vermillion"]}
SCENARIOS = {"yours": OKABE_ITO["black"], "few confidently wrong": OKABE_ITO["vermillion"],
             "many barely wrong": OKABE_ITO["blue"]}
CALIBRATION = {"as trained": OKABE_ITO["orange"], "temperature-scaled": OKABE_ITO["sky"]}
IMBALANCE = {"majority class": OKABE_ITO["grey"], "plain loss": OKABE_ITO["orange"], "weighted loss": OKABE_ITO["sky"]}
MEASURES = {"accuracy": OKABE_ITO["black"], "balanced accuracy": OKABE_ITO["green"],
            "minority recall": OKABE_ITO["purple"]}


def palette(field: str, colors: dict[str, str], title: str | None = None, **legend) -> alt.Color:
    return alt.Color(f"{field}:N", scale=alt.Scale(domain=list(colors), range=list(colors.values())), title=title,
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
    mine = mine.assign(label=mine.apply(lambda r: f"your example: loss {r.loss_text}, {r.outcome}", axis=1))
    x = alt.X("p_true:Q", title="probability the model gives the true class", scale=alt.Scale(domain=[0, 1]),
              axis=alt.Axis(tickCount=10))
    loss = alt.Chart(chartable(curve)).mark_line(color=OKABE_ITO["black"]).encode(
        x=x, y=alt.Y("loss:Q", title="cross-entropy −log p (nats)", scale=alt.Scale(domain=[0, 1.1 * top])),
        tooltip=[alt.Tooltip("p_true:Q", format=".3f", title="p(true)"), alt.Tooltip("loss:Q", format=".3f")])
    step = alt.Chart(chartable(curve)).mark_line(interpolate="step-after", color=OKABE_ITO["orange"]).encode(
        x=x, y=alt.Y("correct:Q", title="accuracy of this example (0 or 1)", scale=alt.Scale(domain=[0, 1.05]),
                     axis=alt.Axis(titleColor=OKABE_ITO["orange"], values=[0, 1])),
        tooltip=[alt.Tooltip("p_true:Q", format=".3f", title="p(true)"), alt.Tooltip("correct:Q", title="accuracy")])
    point_data = chartable(mine.drop(columns="loss"))
    base = alt.Chart(point_data).encode(
        x="p_true:Q", y=alt.Y("shown:Q", scale=alt.Scale(domain=[0, 1.1 * top])),
        tooltip=[alt.Tooltip("p_true:Q", format=".2f", title="p(true)"), alt.Tooltip("loss_text:N", title="loss"),
                 "outcome:N"])
    point = base.mark_point(filled=True, size=120).encode(color=palette("outcome", OUTCOMES, "your example"))
    left = base.transform_filter("datum.p_true <= 0.6").mark_text(align="left", dx=8, dy=-8).encode(text="label:N")
    right = base.transform_filter("datum.p_true > 0.6").mark_text(align="right", dx=-8, dy=-8).encode(text="label:N")
    boundary = alt.Chart(pd.DataFrame({"p_true": [0.5], "what": ["decision boundary: p = 0.5"]})).mark_rule(
        strokeDash=[6, 3], color=OKABE_ITO["grey"]).encode(x="p_true:Q", tooltip=["what:N"])
    return alt.layer(alt.layer(loss, boundary, point, left, right), step).resolve_scale(y="independent").properties(
        title="One example: the loss −log p falls smoothly, accuracy jumps at p = 0.5", width=WIDTH, height=HEIGHT)


CE_CAP = 8.0  # the scenario charts' top: a larger (or infinite) loss is drawn here, marked


def scenario_plane_chart(df: pd.DataFrame) -> alt.LayerChart:
    """Each scenario as a point in the (accuracy, cross-entropy) plane, above the floor (1 − accuracy)·ln 2."""
    df = df.assign(cross_entropy_is_inf=df.cross_entropy.map(math.isinf))
    data = df.assign(shown=df.cross_entropy.clip(upper=CE_CAP), loss_text=df.cross_entropy.map(text),
                     scenario=df.scenario.str.replace("_", " ")).drop(columns=["cross_entropy", "loss_from_wrong"])
    data = data.assign(label=data.scenario + data.cross_entropy_is_inf.map({True: " (loss ∞)", False: ""}))
    floor = pd.DataFrame({"accuracy": [0.0, 1.0], "bound": [core.LN2, 0.0],
                          "what": ["impossible: every wrong example costs at least ln 2"] * 2})
    shade = alt.Chart(floor).mark_area(opacity=0.25, color=OKABE_ITO["grey"]).encode(
        x="accuracy:Q", y="bound:Q", tooltip=["what:N"])
    edge = alt.Chart(floor).mark_line(color=OKABE_ITO["grey"]).encode(
        x="accuracy:Q", y="bound:Q", tooltip=["what:N", alt.Tooltip("bound:Q", format=".3f", title="floor")])
    tooltip = ["scenario:N", alt.Tooltip("accuracy:Q", format=".1%"), alt.Tooltip("loss_text:N", title="cross-entropy"),
               alt.Tooltip("ece:Q", format=".3f", title="ECE"), "n:Q", "n_wrong:Q",
               alt.Tooltip("wrong_conf:Q", title="confidence when wrong"),
               alt.Tooltip("right_conf:Q", title="confidence when right")]
    base = alt.Chart(chartable(data)).encode(
        x=alt.X("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        y=alt.Y("shown:Q", title=f"mean cross-entropy (nats; ∞ drawn at {CE_CAP:g})",
                scale=alt.Scale(domain=[0, max(1.0, 1.15 * float(data.shown.max()))])),
        tooltip=tooltip)
    points = base.mark_point(filled=True, size=160).encode(color=palette("scenario", SCENARIOS, "scenario"))
    left = base.transform_filter("datum.accuracy <= 0.7").mark_text(align="left", dx=9, dy=-9).encode(text="label:N")
    right = base.transform_filter("datum.accuracy > 0.7").mark_text(align="right", dx=-9, dy=-9).encode(
        text="label:N")
    return (shade + edge + points + left + right).properties(
        title="Each scenario's accuracy and loss; no model lies below the floor (1 − accuracy)·ln 2",
        width=WIDTH, height=HEIGHT)


def loss_split_chart(df: pd.DataFrame) -> alt.Chart:
    """Each scenario's mean loss, split into what its right and its wrong predictions contribute."""
    rows = []
    for r in df.itertuples():
        for outcome, part in (("right", r.loss_from_right), ("wrong", r.loss_from_wrong)):
            rows.append({"scenario": r.scenario.replace("_", " "), "outcome": outcome, "part": min(part, CE_CAP),
                         "part_text": text(part), "total_text": text(r.cross_entropy),
                         "examples": r.n - r.n_wrong if outcome == "right" else r.n_wrong})
    return alt.Chart(chartable(pd.DataFrame(rows))).mark_bar().encode(
        y=alt.Y("scenario:N", title=None, sort=list(SCENARIOS)),
        x=alt.X("sum(part):Q", title="contribution to the mean cross-entropy (nats)"),
        color=palette("outcome", OUTCOMES, "predictions"),
        tooltip=["scenario:N", "outcome:N", "examples:Q", alt.Tooltip("part_text:N", title="contributes"),
                 alt.Tooltip("total_text:N", title="mean loss")],
    ).properties(title="Where the mean loss comes from: the right and the wrong predictions' parts",
                 width=WIDTH, height=160)


def _turn_rule(turn: dict) -> alt.Chart:
    data = pd.DataFrame({"epoch": [turn["epoch"]], "what": [f"validation loss lowest: epoch {turn['epoch']}"]})
    return alt.Chart(data).mark_rule(strokeDash=[6, 3], color=OKABE_ITO["vermillion"]).encode(
        x="epoch:Q", tooltip=["what:N", "epoch:Q"])


def overfit_loss_chart(curves: pd.DataFrame) -> alt.LayerChart:
    """Train and validation loss per epoch, and the part of the validation loss from wrong predictions."""
    val = curves[curves.split == "validation"]
    lines = pd.concat([curves[["epoch", "split", "loss"]].rename(columns={"split": "series"}),
                       val[["epoch", "loss_from_wrong"]].rename(columns={"loss_from_wrong": "loss"})
                       .assign(series="validation, from wrong predictions")])
    colors = {**SPLITS, "validation, from wrong predictions": OKABE_ITO["vermillion"]}
    chart = alt.Chart(chartable(lines)).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("loss:Q", title="mean cross-entropy (nats)"),
        color=palette("series", colors, None),
        strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(domain=list(colors), range=[[1, 0], [1, 0], [5, 3]]),
                                  legend=None),
        tooltip=["series:N", "epoch:Q", alt.Tooltip("loss:Q", format=".4f")],
    )
    return (chart + _turn_rule(core.loss_turn(curves))).properties(
        title="Loss per epoch: train, validation, and the validation loss from wrong predictions",
        width=WIDTH, height=HEIGHT)


def overfit_accuracy_chart(curves: pd.DataFrame) -> alt.LayerChart:
    """Train and validation accuracy per epoch, and the mean confidence of the wrong validation predictions."""
    val = curves[curves.split == "validation"]
    lines = pd.concat([curves[["epoch", "split", "accuracy"]].rename(columns={"split": "series", "accuracy": "value"}),
                       val[["epoch", "conf_wrong"]].rename(columns={"conf_wrong": "value"})
                       .assign(series="validation, confidence when wrong")])
    colors = {**SPLITS, "validation, confidence when wrong": OKABE_ITO["vermillion"]}
    chart = alt.Chart(chartable(lines)).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title="accuracy, or mean confidence", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        color=palette("series", colors, None),
        strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(domain=list(colors), range=[[1, 0], [1, 0], [5, 3]]),
                                  legend=None),
        tooltip=["series:N", "epoch:Q", alt.Tooltip("value:Q", format=".1%")],
    )
    return (chart + _turn_rule(core.loss_turn(curves))).properties(
        title="Accuracy per epoch, and how sure the model is of its wrong validation predictions",
        width=WIDTH, height=HEIGHT)


def reliability_chart(bins: pd.DataFrame) -> alt.LayerChart:
    """Reliability diagram: accuracy per confidence bin (half a bin per model), the diagonal of perfect calibration."""
    half = (bins.hi - bins.lo) / 2
    offset = bins.model.map({"as trained": 0.0, "temperature-scaled": 1.0})
    data = chartable(bins.assign(x0=bins.lo + offset * half, x1=bins.lo + (offset + 1) * half))
    tooltip = ["model:N", alt.Tooltip("lo:Q", format=".3f", title="confidence above"),
               alt.Tooltip("hi:Q", format=".3f", title="up to"), "count:Q",
               alt.Tooltip("accuracy:Q", format=".1%"), alt.Tooltip("confidence:Q", format=".1%", title="confidence"),
               alt.Tooltip("gap:Q", format="+.1%", title="confidence − accuracy")]
    axis = alt.Axis(format="%")
    bars = alt.Chart(data).mark_rect(opacity=0.85).encode(
        x=alt.X("x0:Q", title="confidence (top-label probability), 15 bins", axis=axis,
                scale=alt.Scale(domain=[0, 1])),
        x2="x1:Q", y=alt.Y("accuracy:Q", title="accuracy in the bin", axis=axis, scale=alt.Scale(domain=[0, 1])),
        y2=alt.datum(0), color=palette("model", CALIBRATION, None), tooltip=tooltip)
    ticks = alt.Chart(data).mark_rule(color=OKABE_ITO["black"], strokeWidth=2).encode(
        x="x0:Q", x2="x1:Q", y="confidence:Q", tooltip=tooltip)
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "what": ["perfect calibration: accuracy = confidence"] * 2}))
    diag = diagonal.mark_line(strokeDash=[4, 4], color=OKABE_ITO["grey"]).encode(x="x:Q", y="x:Q", tooltip=["what:N"])
    return (bars + ticks + diag).properties(
        title="Reliability on the test set: a bar below its tick (the bin's mean confidence) is over-confident",
        width=WIDTH, height=HEIGHT)


def confusion_chart(cells: pd.DataFrame) -> alt.LayerChart:
    """The three confusion matrices side by side: share of each true class predicted as each class, with counts."""
    order = ["majority", "minority"]
    data = chartable(cells.assign(column=cells.model + ": predicted " + cells.predicted))
    columns = [f"{m}: predicted {p}" for m in IMBALANCE for p in order]
    base = alt.Chart(data).encode(
        x=alt.X("column:N", sort=columns, title="predicted class, for each model",
                axis=alt.Axis(labelAngle=-30, labelLimit=220)),
        y=alt.Y("true:N", sort=order, title="true class"),
        tooltip=["model:N", "true:N", "predicted:N", "count:Q",
                 alt.Tooltip("row_share:Q", format=".1%", title="share of the true class")])
    rect = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color("row_share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="share of the true class",
                        legend=alt.Legend(format="%", orient="right")))
    label = base.mark_text(fontSize=14).encode(
        text="count:Q", color=alt.condition("datum.row_share > 0.6", alt.value("white"), alt.value("black")))
    return (rect + label).properties(title="Confusion matrices on the test set: rows are the true class",
                                     width=WIDTH, height=HEIGHT)


def imbalance_metrics_chart(metrics: pd.DataFrame) -> alt.LayerChart:
    """Accuracy, balanced accuracy and minority recall of each model; the majority share marked."""
    long = metrics.rename(columns={"balanced_accuracy": "balanced accuracy", "recall_minority": "minority recall"})
    long = long.melt(id_vars="model", value_vars=list(MEASURES), var_name="measure", value_name="value")
    share = float(metrics.set_index("model").at["majority class", "accuracy"])
    bars = alt.Chart(chartable(long)).mark_bar().encode(
        y=alt.Y("model:N", sort=list(IMBALANCE), title=None), yOffset=alt.YOffset("measure:N", sort=list(MEASURES)),
        x=alt.X("value:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title=None),
        color=palette("measure", MEASURES, None),
        tooltip=["model:N", "measure:N", alt.Tooltip("value:Q", format=".1%")])
    rule = alt.Chart(pd.DataFrame({"value": [share], "what": ["majority share = the constant predictor's accuracy"]}))
    rule = rule.mark_rule(strokeDash=[6, 3], color=OKABE_ITO["grey"]).encode(
        x="value:Q", tooltip=["what:N", alt.Tooltip("value:Q", format=".1%")])
    return (bars + rule).properties(
        title="Accuracy, balanced accuracy and minority recall on the test set; dashed: the majority share",
        width=WIDTH, height=HEIGHT)


def batches_chart(batches: pd.DataFrame) -> alt.LayerChart:
    """Each batch's accuracy as a bar as wide as the batch; the counted and the averaged accuracy as lines."""
    summary = counting.bookkeeping_summary(batches)
    end = batches["size"].cumsum()
    data = batches.assign(start=end - batches["size"], end=end)
    tooltip = ["batch:Q", "size:Q", "correct:Q", alt.Tooltip("accuracy:Q", format=".1%"),
               alt.Tooltip("loss:Q", format=".4f", title="batch mean loss")]
    bars = alt.Chart(chartable(data)).mark_rect(color=OKABE_ITO["sky"], stroke="white", strokeWidth=0.5).encode(
        x=alt.X("start:Q", title="examples, in loader order", axis=alt.Axis(tickMinStep=1)), x2="end:Q",
        y=alt.Y("accuracy:Q", axis=alt.Axis(format="%"), title="accuracy", scale=alt.Scale(domain=[0, 1])),
        y2=alt.datum(0), tooltip=tooltip)
    ways = ["counted: right ÷ examples", "averaged over batches"]
    lines = pd.DataFrame({"value": [summary["accuracy_counted"], summary["accuracy_averaged"]], "way": ways})
    rules = alt.Chart(lines).mark_rule(strokeWidth=2).encode(
        y="value:Q", color=palette("way", dict(zip(ways, [OKABE_ITO["black"], OKABE_ITO["vermillion"]]))),
        strokeDash=alt.StrokeDash("way:N", scale=alt.Scale(domain=ways, range=[[1, 0], [5, 3]]), legend=None),
        tooltip=["way:N", alt.Tooltip("value:Q", format=".2%")])
    return (bars + rules).properties(
        title="Accuracy per batch (bar width = batch size): counted over examples, or averaged over batches",
        width=WIDTH, height=HEIGHT)


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
