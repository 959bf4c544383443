"""Figures of the reduction page. Every builder takes the DataFrame its core function returns."""

from __future__ import annotations

import functools

import altair as alt
import numpy as np
import pandas as pd

import core.reduction as core
from core import reduction_elements as elements
from core.charts import COLORS, HEIGHT, OKABE_ITO, WIDTH, chartable, vertical_marker
from core.figures import Figure

# "mean" and "sum" keep these colours on every chart of the page; SGD and Adam keep the house colours.
REDUCTION_COLORS = {"mean": OKABE_ITO["green"], "sum": OKABE_ITO["purple"]}
BATCH_KINDS = {"full batch": OKABE_ITO["blue"], "short last batch": OKABE_ITO["vermillion"]}


def _legend() -> alt.Legend:
    return alt.Legend(orient="right", labelLimit=260)


def _reduction_color(title: str = "reduction") -> alt.Color:
    return alt.Color("reduction:N", title=title, legend=_legend(),
                     scale=alt.Scale(domain=list(REDUCTION_COLORS), range=list(REDUCTION_COLORS.values())))


def _batch_axis() -> alt.X:
    return alt.X("batch_size:Q", title="batch size B", axis=alt.Axis(format="d", grid=True),
                 scale=alt.Scale(type="log", domain=[1, max(core.SWEEP_BATCHES)], nice=False))


def norms_chart(norms: pd.DataFrame, full_norm: float) -> alt.LayerChart:
    """Log-log: the gradient norm against B for 'sum' and 'mean'; a band over random batches, points for the first B."""
    data = chartable(norms)
    base = alt.Chart(data).encode(x=_batch_axis(), color=_reduction_color())
    tips = ["reduction:N", "batch_size:Q", alt.Tooltip("lo:Q", format=".3g", title="10% of random batches"),
            alt.Tooltip("median:Q", format=".3g", title="median"), alt.Tooltip("hi:Q", format=".3g", title="90%"),
            alt.Tooltip("first:Q", format=".4g", title="first B examples")]
    log_y = {"scale": alt.Scale(type="log"), "axis": alt.Axis(format="~g"), "title": "‖gradient‖ (all 97 weights)"}
    band = base.mark_area(opacity=0.25).encode(y=alt.Y("lo:Q", **log_y), y2="hi:Q", tooltip=tips)
    line = base.mark_line().encode(y=alt.Y("median:Q", **log_y), tooltip=tips)
    first = base.mark_point(filled=True, size=45, shape="diamond").encode(y="first:Q", tooltip=tips)
    full = pd.DataFrame({"y": [full_norm], "label": ["‖mean gradient over all 512 examples‖"]})
    rule = alt.Chart(full).mark_rule(strokeDash=[4, 4], color=OKABE_ITO["grey"]).encode(
        y="y:Q", tooltip=["label:N", alt.Tooltip("y:Q", format=".4g", title="norm")])
    return (band + line + first + rule).properties(
        title="The sum's gradient grows with B; the mean's settles while its spread narrows", width=WIDTH,
        height=HEIGHT)


RUN_STYLE = {  # run -> (colour, dash): the lr / B run is drawn dashed on top of the mean run it equals
    "SGD, mean, lr": (COLORS["sgd"], [1, 0]),
    "SGD, sum, lr": (REDUCTION_COLORS["sum"], [1, 0]),
    "SGD, sum, lr / B": (OKABE_ITO["sky"], [6, 4]),
    "Adam, mean, lr": (COLORS["adam"], [1, 0]),
    "Adam, sum, lr": (OKABE_ITO["orange"], [6, 4]),
}


def training_chart(curves: pd.DataFrame, batch_size: int) -> alt.Chart:
    """Full-data loss over steps for every run; the y axis stops at 100x the starting loss so divergence cannot
    flatten the rest."""
    data = chartable(curves).query("loss > 0")
    top = float(min(data.loss.max(), 100 * data.loss.iloc[0])) if len(data) else 1.0
    bottom = float(data.loss.min()) if len(data) else 0.1
    runs = list(RUN_STYLE)
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=16), clip=True).encode(
        x=alt.X("step:Q", title="SGD / Adam step"),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log", domain=[bottom * 0.9, top * 1.1]),
                title="training loss (MSE over all 512 examples)"),
        color=alt.Color("run:N", scale=alt.Scale(domain=runs, range=[c for c, _ in RUN_STYLE.values()]),
                        legend=_legend(), title="optimizer, reduction, lr"),
        strokeDash=alt.StrokeDash("run:N", scale=alt.Scale(domain=runs, range=[d for _, d in RUN_STYLE.values()]),
                                  legend=None),
        tooltip=["run:N", "step:Q", alt.Tooltip("loss:Q", format=".6g")],
    ).properties(title=f"B = {batch_size}: the sum at lr is a {batch_size}x larger step; at lr / B it is the mean run",
                 width=WIDTH, height=HEIGHT)


def _with_kind(examples: pd.DataFrame) -> pd.DataFrame:
    short = examples.batch_len < examples.batch_len.iloc[0]
    return examples.assign(kind=np.where(short, "short last batch", "full batch"))


def _kind_color() -> alt.Color:
    return alt.Color("kind:N", title="example in", legend=_legend(),
                     scale=alt.Scale(domain=list(BATCH_KINDS), range=list(BATCH_KINDS.values())))


def epoch_loss_chart(examples: pd.DataFrame, batch_size: int) -> alt.LayerChart:
    """Per-example losses, each batch's mean as a segment, and the epoch loss the two ways the loop can report it."""
    data = chartable(_with_kind(examples))
    tips = ["example:Q", "batch:Q", alt.Tooltip("batch_len:Q", title="batch size"), "kind:N",
            alt.Tooltip("loss:Q", format=".4g"), alt.Tooltip("batch_mean:Q", format=".4g", title="batch mean")]
    points = alt.Chart(data).mark_point(filled=True, size=30, opacity=0.7).encode(
        x=alt.X("example:Q", title="example, in the order the epoch takes them",
                scale=alt.Scale(domain=[-0.5, max(len(data), 1) - 0.5], nice=False)),
        y=alt.Y("loss:Q", title="loss of that example (MSE, reduction='none')"), color=_kind_color(), tooltip=tips)
    spans = data.groupby("batch", as_index=False).agg(start=("example", "min"), end=("example", "max"),
                                                      batch_mean=("batch_mean", "first"),
                                                      batch_len=("batch_len", "first"), kind=("kind", "first"))
    spans = spans.assign(start=spans.start - 0.4, end=spans.end + 0.4)  # a batch of one still shows its segment
    segments = alt.Chart(spans).mark_rule(strokeWidth=3).encode(
        x="start:Q", x2="end:Q", y="batch_mean:Q", color=_kind_color(),
        tooltip=["batch:Q", alt.Tooltip("batch_len:Q", title="batch size"),
                 alt.Tooltip("batch_mean:Q", format=".4g", title="float(l), the batch mean")])
    levels = pd.DataFrame({
        "epoch loss": ["mean of batch means", "weighted: Σ float(l)·len(y) / N = true mean"],
        "value": [core.epoch_loss(examples.loss, batch_size, "mean_of_batch_means"),
                  core.epoch_loss(examples.loss, batch_size, "weighted")],
    })
    rules = alt.Chart(levels).mark_rule(strokeDash=[5, 3]).encode(
        y="value:Q", strokeDash=alt.StrokeDash("epoch loss:N", legend=_legend()),
        color=alt.value(OKABE_ITO["black"]), tooltip=["epoch loss:N", alt.Tooltip("value:Q", format=".6g")])
    return (points + segments + rules).properties(
        title="One epoch, batch by batch: each batch's mean, and the epoch loss two ways", width=WIDTH, height=HEIGHT)


def weights_chart(examples: pd.DataFrame, batch_size: int) -> alt.Chart:
    """With mean reduction, the weight each example's gradient gets in the epoch, relative to a full batch's."""
    data = chartable(_with_kind(examples))
    full = int(data.batch_len.iloc[0]) if len(data) else batch_size
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("example:O", title="example", axis=alt.Axis(labelOverlap=True, labelAngle=0)),
        y=alt.Y("relative:Q", title=f"weight ÷ weight in a full batch of {full}"),
        color=_kind_color(),
        tooltip=["example:Q", "kind:N", alt.Tooltip("batch_len:Q", title="its batch size b"),
                 alt.Tooltip("weight:Q", format=".4g", title="1 / b"),
                 alt.Tooltip("relative:Q", format=".3g", title="B / b")],
    ).properties(title="Mean reduction divides each batch by its own size: a short batch's examples weigh more",
                 width=WIDTH, height=HEIGHT)


def per_sample_chart(norms: pd.DataFrame, batch_norm: float) -> alt.LayerChart:
    """Histogram of per-sample gradient norms (log bins), beside their average and the batch-mean gradient's norm."""
    data = chartable(norms).query("norm > 0")
    data = data.assign(log_norm=np.log10(data.norm))
    label = "format(pow(10, datum.value), '.2g')"
    bars = alt.Chart(data).mark_bar(color=OKABE_ITO["grey"], opacity=0.8).encode(
        x=alt.X("log_norm:Q", bin=alt.Bin(maxbins=30), title="‖gradient of one example‖ (log scale)",
                axis=alt.Axis(labelExpr=label, tickCount=8)),
        y=alt.Y("count():Q", title="examples", axis=alt.Axis(tickMinStep=1, format="d")),
        tooltip=[alt.Tooltip("log_norm:Q", bin=alt.Bin(maxbins=30), title="log10 ‖g_i‖ bin"),
                 alt.Tooltip("count():Q", title="examples")],
    )
    marks = pd.DataFrame({
        "what": ["average of the per-example norms", "norm of the batch-mean gradient"],
        "value": [float(norms.norm.mean()), batch_norm],
        "reduction": ["none", "mean"],
    })
    marks = marks.assign(log_value=np.log10(marks.value.clip(lower=1e-30)))
    rules = alt.Chart(marks).mark_rule(strokeWidth=3).encode(
        x="log_value:Q",
        color=alt.Color("what:N", title=None, legend=_legend(), scale=alt.Scale(
            domain=list(marks.what), range=[OKABE_ITO["black"], REDUCTION_COLORS["mean"]])),
        tooltip=["what:N", alt.Tooltip("value:Q", format=".4g", title="norm")])
    return (bars + rules).properties(
        title=f"{len(data)} examples, one gradient each: larger and more scattered than their mean",
        width=WIDTH, height=HEIGHT)


SAMPLING = {"with replacement": OKABE_ITO["green"], "without replacement (DataLoader)": OKABE_ITO["blue"]}


def spread_chart(spread: pd.DataFrame) -> alt.LayerChart:
    """Log-log: how far the batch-mean gradient lands from the full-data gradient, against B, beside the closed forms
    sqrt(tr Σ / B) (with replacement) and sqrt(tr Σ / B · (N − B) / (N − 1)) (without)."""
    long = pd.concat([
        spread.assign(sampling="with replacement", measured=spread.spread, closed=spread.closed_form),
        spread.assign(sampling="without replacement (DataLoader)", measured=spread.spread_without,
                      closed=spread.closed_form_without),
    ])[["batch_size", "sampling", "measured", "closed"]]
    data = chartable(long)
    x = _batch_axis()
    colour = alt.Color("sampling:N", title="batches drawn", legend=_legend(),
                       scale=alt.Scale(domain=list(SAMPLING), range=list(SAMPLING.values())))
    tips = ["batch_size:Q", "sampling:N", alt.Tooltip("measured:Q", format=".4g", title="measured (128 batches)"),
            alt.Tooltip("closed:Q", format=".4g", title="closed form")]
    line = alt.Chart(data).mark_line(strokeDash=[4, 4]).encode(
        x=x, y=alt.Y("closed:Q", scale=alt.Scale(type="log"), title="RMS ‖batch-mean gradient − full gradient‖"),
        color=colour, tooltip=tips)
    points = alt.Chart(data).mark_point(filled=True, size=60).encode(x=x, y="measured:Q", color=colour, tooltip=tips)
    return (line + points).properties(
        title="The mean gradient's noise falls like 1/√B, faster without replacement (dashed: closed forms)",
        width=WIDTH, height=HEIGHT)


def elements_chart(ratios: pd.DataFrame, outputs: int) -> alt.LayerChart:
    """Against D: the sum's gradient over the mean's for a D-output MSELoss, beside B·D and B."""
    data = chartable(ratios)
    long = pd.concat([data.assign(what="B · D: what 'mean' divides by", value=data.b_times_d),
                      data.assign(what="B: the number of examples", value=data.batch)])
    lines = alt.Chart(long).mark_line(strokeDash=[4, 4]).encode(
        x=alt.X("outputs:Q", title="outputs per example D", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="~g"),
                title="‖gradient of sum‖ ÷ ‖gradient of mean‖"),
        color=alt.Color("what:N", title=None, legend=_legend(),
                        scale=alt.Scale(range=[OKABE_ITO["purple"], OKABE_ITO["grey"]])),
        tooltip=["what:N", "outputs:Q", alt.Tooltip("value:Q", format="d")])
    points = alt.Chart(data).mark_point(filled=True, size=60, color=REDUCTION_COLORS["mean"]).encode(
        x="outputs:Q", y="ratio:Q",
        tooltip=["outputs:Q", alt.Tooltip("ratio:Q", format=".6g", title="measured ratio"),
                 alt.Tooltip("b_times_d:Q", title="B · D")])
    return (lines + points + vertical_marker(outputs, f"your D = {outputs}")).properties(
        title="'mean' divides by every element: the sum is B · D times the mean", width=WIDTH, height=HEIGHT)


def ignore_chart(examples: pd.DataFrame) -> alt.Chart:
    """Per target: its cross-entropy with reduction='none', ignored targets marked (their loss is 0)."""
    data = chartable(examples.assign(kind=np.where(examples.ignored, "ignored (ignore_index)", "kept")))
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("example:O", title="target", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("loss:Q", title="cross-entropy, reduction='none'"),
        color=alt.Color("kind:N", title=None, legend=_legend(), scale=alt.Scale(
            domain=["kept", "ignored (ignore_index)"], range=[OKABE_ITO["blue"], OKABE_ITO["grey"]])),
        tooltip=["example:Q", "target:Q", "kind:N", alt.Tooltip("loss:Q", format=".4f")],
    ).properties(title="Ignored targets add 0 to the sum and are left out of the count", width=WIDTH, height=HEIGHT)


LR_COLORS = {4: OKABE_ITO["orange"], 32: OKABE_ITO["sky"], 256: OKABE_ITO["blue"]}


def lr_batch_chart(sweep: pd.DataFrame) -> alt.Chart:
    """Log-log: the final loss of SGD on the mean after a fixed budget of epochs, against lr, one line per B."""
    data = chartable(sweep).query("loss < 1e6")  # a diverged run is said in words, not drawn
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=40)).encode(
        x=alt.X("lr:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="~g"), title="learning rate (SGD, mean)"),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title=f"MSE after {elements.EPOCHS} epochs"),
        color=alt.Color("batch_size:O", title="batch size B", legend=_legend(),
                        scale=alt.Scale(domain=list(LR_COLORS), range=list(LR_COLORS.values()))),
        tooltip=["batch_size:Q", alt.Tooltip("lr:Q", format="g"), alt.Tooltip("loss:Q", format=".4g")],
    ).properties(title="Even with the mean, the best learning rate moves with the batch size", width=WIDTH,
                 height=HEIGHT)


# One experiment feeds several figures and the page's metrics: a small bounded cache keeps it to one run.
# The charts read no setting beyond their data's inputs: every extra one would rebuild an Altair spec
# (~50-150 ms each) on a change that does not alter the data.
norm_sweep = functools.lru_cache(maxsize=8)(core.norm_sweep)
train_runs = functools.lru_cache(maxsize=16)(core.train_runs)
short_batch = functools.lru_cache(maxsize=16)(core.short_batch)
per_sample = functools.lru_cache(maxsize=16)(core.per_sample)
ignore_index_mean = functools.lru_cache(maxsize=16)(elements.ignore_index_mean)


def _sum_mean_norms(seed: int) -> pd.DataFrame:
    return norm_sweep(seed=seed).norms


def _spread(seed: int) -> pd.DataFrame:
    return norm_sweep(seed=seed).spread


def _curves(batch_size: int, lr: float, steps: int, seed: int) -> pd.DataFrame:
    return train_runs(batch_size, lr=lr, steps=steps, seed=seed).curves


def _examples(n_examples: int, epoch_batch: int, seed: int) -> pd.DataFrame:
    return short_batch(n_examples, epoch_batch, seed=seed).examples


def _sample_norms(sample_batch: int, seed: int) -> pd.DataFrame:
    return per_sample(sample_batch, seed=seed).norms


def _elements(batch_size: int, seed: int) -> pd.DataFrame:
    return elements.element_ratios(batch_size, seed=seed)


def _ignored(ignored: int, seed: int) -> pd.DataFrame:
    return ignore_index_mean(ignored, seed=seed).examples


def _lr_batch(seed: int) -> pd.DataFrame:
    return elements.lr_by_batch(seed=seed)


FIGURES: dict[str, Figure] = {
    "norms": Figure(("seed",), _sum_mean_norms,
                    lambda df, s: norms_chart(df, norm_sweep(seed=s["seed"]).full_norm), experiment="norms"),
    "training": Figure(("batch_size", "lr", "steps", "seed"), _curves,
                       lambda df, s: training_chart(df, s["batch_size"]), experiment="training"),
    "epoch_loss": Figure(("n_examples", "epoch_batch", "seed"), _examples,
                         lambda df, s: epoch_loss_chart(df, s["epoch_batch"]), experiment="epoch"),
    "weights": Figure(("n_examples", "epoch_batch", "seed"), _examples,
                      lambda df, s: weights_chart(df, s["epoch_batch"]), experiment="epoch"),
    "per_sample": Figure(("sample_batch", "seed"), _sample_norms,
                         lambda df, s: per_sample_chart(df, per_sample(s["sample_batch"], seed=s["seed"]).batch_norm),
                         experiment="per_sample"),
    "spread": Figure(("seed",), _spread, lambda df, s: spread_chart(df), experiment="per_sample"),
    "lr_batch": Figure(("seed",), _lr_batch, lambda df, s: lr_batch_chart(df), experiment="training"),
    "elements": Figure(("batch_size", "seed"), _elements, lambda df, s: elements_chart(df, s["outputs"]),
                       ("outputs",), "elements"),
    "ignored": Figure(("ignored", "seed"), _ignored, lambda df, s: ignore_chart(df), experiment="elements"),
}
