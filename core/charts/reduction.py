"""Figures of the reduction page. Every builder takes the DataFrame its core function returns."""

from __future__ import annotations

import collections
import functools
import threading

import altair as alt
import numpy as np
import pandas as pd

import core.reduction as core
from content import words
from core import reduction_elements as elements
from core.charts import COLORS, HEIGHT, OKABE_ITO, WIDTH, Labels, chartable, vertical_marker
from core.figures import Figure

W = words("reduction")  # the charts' words: content/<lang>/reduction.toml, [charts.*]
L = Labels("reduction")  # the data keep English ids (run, kind, ...); the charts show [charts.labels]

# "mean" and "sum" keep these colours on every chart of the page; SGD and Adam keep the house colours.
REDUCTION_COLORS = {"mean": OKABE_ITO["green"], "sum": OKABE_ITO["purple"]}
BATCH_KINDS = {"full batch": OKABE_ITO["blue"], "short last batch": OKABE_ITO["vermillion"]}


def _legend() -> alt.Legend:
    return alt.Legend(orient="right", labelLimit=260)


def _titled(shorthand: str, key: str) -> dict[str, str]:
    """title=W's charts.<key> for a field the builder left untitled: where the words are the field's own name (as in
    English) the title is left to Vega-Lite, which shows that same name, so the spec stays as it was."""
    title = W[f"charts.{key}"]
    return {} if title == shorthand.rsplit(":", 1)[0] else {"title": title}


def _tip(shorthand: str, key: str, **kwargs) -> alt.Tooltip:
    """A tooltip field titled in the reader's language (see _titled)."""
    return alt.Tooltip(shorthand, **_titled(shorthand, key), **kwargs)


def _reduction_color() -> alt.Color:
    return alt.Color("reduction:N", title=W["charts.shared.reduction"], legend=_legend(),
                     scale=alt.Scale(domain=L.domain(REDUCTION_COLORS), range=list(REDUCTION_COLORS.values())))


def _batch_axis() -> alt.X:
    return alt.X("batch_size:Q", title=W["charts.shared.batch_axis"], axis=alt.Axis(format="d", grid=True),
                 scale=alt.Scale(type="log", domain=[1, max(core.SWEEP_BATCHES)], nice=False))


def norms_chart(norms: pd.DataFrame, full_norm: float) -> alt.LayerChart:
    """Log-log: the gradient norm against B for 'sum' and 'mean'; a band over random batches, points for the first B."""
    data = L.frame(chartable(norms), "reduction")
    base = alt.Chart(data).encode(x=_batch_axis(), color=_reduction_color())
    tips = [_tip("reduction:N", "shared.tip_reduction"), _tip("batch_size:Q", "shared.tip_batch_size"),
            alt.Tooltip("lo:Q", format=".3g", title=W["charts.norms.tip_lo"]),
            alt.Tooltip("median:Q", format=".3g", title=W["charts.norms.tip_median"]),
            alt.Tooltip("hi:Q", format=".3g", title=W["charts.norms.tip_hi"]),
            alt.Tooltip("first:Q", format=".4g", title=W["charts.norms.tip_first"])]
    log_y = {"scale": alt.Scale(type="log"), "axis": alt.Axis(format="~g"), "title": W["charts.norms.y"]}
    band = base.mark_area(opacity=0.25).encode(y=alt.Y("lo:Q", **log_y), y2="hi:Q", tooltip=tips)
    line = base.mark_line().encode(y=alt.Y("median:Q", **log_y), tooltip=tips)
    first = base.mark_point(filled=True, size=45, shape="diamond").encode(y="first:Q", tooltip=tips)
    full = pd.DataFrame({"y": [full_norm], "label": [W["charts.norms.full"]]})
    rule = alt.Chart(full).mark_rule(strokeDash=[4, 4], color=OKABE_ITO["grey"]).encode(
        y="y:Q", tooltip=[_tip("label:N", "norms.tip_label"),
                          alt.Tooltip("y:Q", format=".4g", title=W["charts.norms.tip_norm"])])
    return (band + line + first + rule).properties(title=W["charts.norms.title"], width=WIDTH, height=HEIGHT)


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
    data = L.frame(chartable(curves).query("loss > 0"), "run")
    top = float(min(data.loss.max(), 100 * data.loss.iloc[0])) if len(data) else 1.0
    bottom = float(data.loss.min()) if len(data) else 0.1
    runs = L.domain(RUN_STYLE)
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=16), clip=True).encode(
        x=alt.X("step:Q", title=W["charts.training.x"]),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log", domain=[bottom * 0.9, top * 1.1]), title=W["charts.training.y"]),
        color=alt.Color("run:N", scale=alt.Scale(domain=runs, range=[c for c, _ in RUN_STYLE.values()]),
                        legend=_legend(), title=W["charts.training.legend"]),
        strokeDash=alt.StrokeDash("run:N", scale=alt.Scale(domain=runs, range=[d for _, d in RUN_STYLE.values()]),
                                  legend=None),
        tooltip=[_tip("run:N", "training.tip_run"), _tip("step:Q", "training.tip_step"),
                 _tip("loss:Q", "shared.tip_loss", format=".6g")],
    ).properties(title=W("charts.training.title", batch_size=batch_size), width=WIDTH, height=HEIGHT)


def _with_kind(examples: pd.DataFrame) -> pd.DataFrame:
    short = examples.batch_len < examples.batch_len.iloc[0]
    return examples.assign(kind=np.where(short, "short last batch", "full batch"))


def _kind_color() -> alt.Color:
    return alt.Color("kind:N", title=W["charts.shared.kind_legend"], legend=_legend(),
                     scale=alt.Scale(domain=L.domain(BATCH_KINDS), range=list(BATCH_KINDS.values())))


def epoch_loss_chart(examples: pd.DataFrame, batch_size: int) -> alt.LayerChart:
    """Per-example losses, each batch's mean as a segment, and the epoch loss the two ways the loop can report it."""
    data = L.frame(chartable(_with_kind(examples)), "kind")
    tips = [_tip("example:Q", "shared.tip_example"), _tip("batch:Q", "shared.tip_batch"),
            alt.Tooltip("batch_len:Q", title=W["charts.epoch_loss.tip_batch_len"]), _tip("kind:N", "shared.tip_kind"),
            _tip("loss:Q", "shared.tip_loss", format=".4g"),
            alt.Tooltip("batch_mean:Q", format=".4g", title=W["charts.epoch_loss.tip_batch_mean"])]
    points = alt.Chart(data).mark_point(filled=True, size=30, opacity=0.7).encode(
        x=alt.X("example:Q", title=W["charts.epoch_loss.x"],
                scale=alt.Scale(domain=[-0.5, max(len(data), 1) - 0.5], nice=False)),
        y=alt.Y("loss:Q", title=W["charts.epoch_loss.y"]), color=_kind_color(), tooltip=tips)
    starts = np.flatnonzero(np.diff(data.batch.to_numpy(), prepend=-1))  # each batch's first row: batches run in order
    first = data.iloc[starts].reset_index(drop=True)
    last = data.example.to_numpy()[np.append(starts[1:], len(data)) - 1]  # each batch's last example
    spans = pd.DataFrame({"batch": first.batch, "start": first.example - 0.4, "end": last + 0.4,  # a batch of one
                          "batch_mean": first.batch_mean, "batch_len": first.batch_len,  # still shows its segment
                          "kind": first.kind})
    segments = alt.Chart(spans).mark_rule(strokeWidth=3).encode(
        x="start:Q", x2="end:Q", y="batch_mean:Q", color=_kind_color(),
        tooltip=[_tip("batch:Q", "shared.tip_batch"),
                 alt.Tooltip("batch_len:Q", title=W["charts.epoch_loss.tip_batch_len"]),
                 alt.Tooltip("batch_mean:Q", format=".4g", title=W["charts.epoch_loss.tip_segment_mean"])])
    levels = L.frame(pd.DataFrame({
        "epoch loss": ["mean of batch means", "weighted: Σ float(l)·len(y) / N = true mean"],
        "value": [core.epoch_loss(examples.loss, batch_size, "mean_of_batch_means"),
                  core.epoch_loss(examples.loss, batch_size, "weighted")],
    }), "epoch loss")
    rules = alt.Chart(levels).mark_rule(strokeDash=[5, 3]).encode(
        y="value:Q",
        strokeDash=alt.StrokeDash("epoch loss:N", legend=_legend(), **_titled("epoch loss:N", "epoch_loss.levels")),
        color=alt.value(OKABE_ITO["black"]),
        tooltip=[_tip("epoch loss:N", "epoch_loss.levels"), _tip("value:Q", "shared.tip_value", format=".6g")])
    return (points + segments + rules).properties(title=W["charts.epoch_loss.title"], width=WIDTH, height=HEIGHT)


def weights_chart(examples: pd.DataFrame, batch_size: int) -> alt.Chart:
    """With mean reduction, the weight each example's gradient gets in the epoch, relative to a full batch's."""
    data = L.frame(chartable(_with_kind(examples)), "kind")
    full = int(data.batch_len.iloc[0]) if len(data) else batch_size
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("example:O", title=W["charts.weights.x"], axis=alt.Axis(labelOverlap=True, labelAngle=0)),
        y=alt.Y("relative:Q", title=W("charts.weights.y", full=full)),
        color=_kind_color(),
        tooltip=[_tip("example:Q", "shared.tip_example"), _tip("kind:N", "shared.tip_kind"),
                 alt.Tooltip("batch_len:Q", title=W["charts.weights.tip_batch_len"]),
                 alt.Tooltip("weight:Q", format=".4g", title=W["charts.weights.tip_weight"]),
                 alt.Tooltip("relative:Q", format=".3g", title=W["charts.weights.tip_relative"])],
    ).properties(title=W["charts.weights.title"], width=WIDTH, height=HEIGHT)


def per_sample_chart(norms: pd.DataFrame, batch_norm: float) -> alt.LayerChart:
    """Histogram of per-sample gradient norms (log bins), beside their average and the batch-mean gradient's norm."""
    data = chartable(norms).query("norm > 0")
    data = data.assign(log_norm=np.log10(data.norm))
    label = "format(pow(10, datum.value), '.2g')"
    bars = alt.Chart(data).mark_bar(color=OKABE_ITO["grey"], opacity=0.8).encode(
        x=alt.X("log_norm:Q", bin=alt.Bin(maxbins=30), title=W["charts.per_sample.x"],
                axis=alt.Axis(labelExpr=label, tickCount=8)),
        y=alt.Y("count():Q", title=W["charts.per_sample.y"], axis=alt.Axis(tickMinStep=1, format="d")),
        tooltip=[alt.Tooltip("log_norm:Q", bin=alt.Bin(maxbins=30), title=W["charts.per_sample.tip_bin"]),
                 alt.Tooltip("count():Q", title=W["charts.per_sample.y"])],
    )
    marks = pd.DataFrame({
        "what": ["average of the per-example norms", "norm of the batch-mean gradient"],
        "value": [float(norms.norm.mean()), batch_norm],
        "reduction": ["none", "mean"],
    })
    marks = marks.assign(log_value=np.log10(marks.value.clip(lower=1e-30)))
    rules = alt.Chart(L.frame(marks, "what")).mark_rule(strokeWidth=3).encode(
        x="log_value:Q",
        color=alt.Color("what:N", title=None, legend=_legend(), scale=alt.Scale(
            domain=L.domain(marks.what), range=[OKABE_ITO["black"], REDUCTION_COLORS["mean"]])),
        tooltip=[_tip("what:N", "shared.tip_what"),
                 alt.Tooltip("value:Q", format=".4g", title=W["charts.per_sample.tip_norm"])])
    return (bars + rules).properties(title=W("charts.per_sample.title", examples=len(data)), width=WIDTH,
                                     height=HEIGHT)


SAMPLING = {"with replacement": OKABE_ITO["green"], "without replacement (DataLoader)": OKABE_ITO["blue"]}


def spread_chart(spread: pd.DataFrame) -> alt.LayerChart:
    """Log-log: how far the batch-mean gradient lands from the full-data gradient, against B, beside the closed forms
    sqrt(tr Σ / B) (with replacement) and sqrt(tr Σ / B · (N − B) / (N − 1)) (without)."""
    long = pd.concat([
        spread.assign(sampling="with replacement", measured=spread.spread, closed=spread.closed_form),
        spread.assign(sampling="without replacement (DataLoader)", measured=spread.spread_without,
                      closed=spread.closed_form_without),
    ])[["batch_size", "sampling", "measured", "closed"]]
    data = L.frame(chartable(long), "sampling")
    x = _batch_axis()
    colour = alt.Color("sampling:N", title=W["charts.spread.legend"], legend=_legend(),
                       scale=alt.Scale(domain=L.domain(SAMPLING), range=list(SAMPLING.values())))
    tips = [_tip("batch_size:Q", "shared.tip_batch_size"), _tip("sampling:N", "spread.tip_sampling"),
            alt.Tooltip("measured:Q", format=".4g", title=W["charts.spread.tip_measured"]),
            alt.Tooltip("closed:Q", format=".4g", title=W["charts.spread.tip_closed"])]
    line = alt.Chart(data).mark_line(strokeDash=[4, 4]).encode(
        x=x, y=alt.Y("closed:Q", scale=alt.Scale(type="log"), title=W["charts.spread.y"]),
        color=colour, tooltip=tips)
    points = alt.Chart(data).mark_point(filled=True, size=60).encode(x=x, y="measured:Q", color=colour, tooltip=tips)
    return (line + points).properties(title=W["charts.spread.title"], width=WIDTH, height=HEIGHT)


def elements_chart(ratios: pd.DataFrame, outputs: int) -> alt.LayerChart:
    """Against D: the sum's gradient over the mean's for a D-output MSELoss, beside B·D and B."""
    data = chartable(ratios)
    long = pd.concat([data.assign(what="B · D: what 'mean' divides by", value=data.b_times_d),
                      data.assign(what="B: the number of examples", value=data.batch)])
    # no domain: Vega-Lite sorts the labels, and every language's pair keeps the ids' order ("B · D…" before "B…")
    lines = alt.Chart(L.frame(long, "what")).mark_line(strokeDash=[4, 4]).encode(
        x=alt.X("outputs:Q", title=W["charts.elements.x"], axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="~g"), title=W["charts.elements.y"]),
        color=alt.Color("what:N", title=None, legend=_legend(),
                        scale=alt.Scale(range=[OKABE_ITO["purple"], OKABE_ITO["grey"]])),
        tooltip=[_tip("what:N", "shared.tip_what"), _tip("outputs:Q", "elements.tip_outputs"),
                 _tip("value:Q", "shared.tip_value", format="d")])
    points = alt.Chart(data).mark_point(filled=True, size=60, color=REDUCTION_COLORS["mean"]).encode(
        x="outputs:Q", y="ratio:Q",
        tooltip=[_tip("outputs:Q", "elements.tip_outputs"),
                 alt.Tooltip("ratio:Q", format=".6g", title=W["charts.elements.tip_ratio"]),
                 alt.Tooltip("b_times_d:Q", title=W["charts.elements.tip_b_times_d"])])
    return (lines + points + vertical_marker(outputs, W("charts.elements.marker", outputs=outputs))).properties(
        title=W["charts.elements.title"], width=WIDTH, height=HEIGHT)


def ignore_chart(examples: pd.DataFrame) -> alt.Chart:
    """Per target: its cross-entropy with reduction='none', ignored targets marked (their loss is 0)."""
    data = L.frame(chartable(examples.assign(kind=np.where(examples.ignored, "ignored (ignore_index)", "kept"))),
                   "kind")
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("example:O", title=W["charts.ignored.x"], axis=alt.Axis(labelAngle=0)),
        y=alt.Y("loss:Q", title=W["charts.ignored.y"]),
        color=alt.Color("kind:N", title=None, legend=_legend(), scale=alt.Scale(
            domain=L.domain(["kept", "ignored (ignore_index)"]), range=[OKABE_ITO["blue"], OKABE_ITO["grey"]])),
        tooltip=[_tip("example:Q", "shared.tip_example"), _tip("target:Q", "ignored.tip_target"),
                 _tip("kind:N", "shared.tip_kind"), _tip("loss:Q", "shared.tip_loss", format=".4f")],
    ).properties(title=W["charts.ignored.title"], width=WIDTH, height=HEIGHT)


LR_COLORS = {4: OKABE_ITO["orange"], 32: OKABE_ITO["sky"], 256: OKABE_ITO["blue"]}


def lr_batch_chart(sweep: pd.DataFrame) -> alt.Chart:
    """Log-log: the final loss of SGD on the mean after a fixed budget of epochs, against lr, one line per B."""
    data = chartable(sweep).query("loss < 1e6")  # a diverged run is said in words, not drawn
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=40)).encode(
        x=alt.X("lr:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="~g"), title=W["charts.lr_batch.x"]),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title=W("charts.lr_batch.y", epochs=elements.EPOCHS)),
        color=alt.Color("batch_size:O", title=W["charts.shared.batch_axis"], legend=_legend(),
                        scale=alt.Scale(domain=list(LR_COLORS), range=list(LR_COLORS.values()))),
        tooltip=[_tip("batch_size:Q", "shared.tip_batch_size"), _tip("lr:Q", "lr_batch.tip_lr", format="g"),
                 _tip("loss:Q", "shared.tip_loss", format=".4g")],
    ).properties(title=W["charts.lr_batch.title"], width=WIDTH, height=HEIGHT)


# One experiment feeds several figures and the page's metrics: a small bounded cache keeps it to one run.
# The charts read no setting beyond their data's inputs: every extra one would rebuild an Altair spec
# (~50-150 ms each) on a change that does not alter the data.
norm_sweep = functools.lru_cache(maxsize=8)(core.norm_sweep)
short_batch = functools.lru_cache(maxsize=16)(core.short_batch)
per_sample = functools.lru_cache(maxsize=16)(core.per_sample)
ignore_index_mean = functools.lru_cache(maxsize=16)(elements.ignore_index_mean)
element_ratios = functools.lru_cache(maxsize=16)(elements.element_ratios)


class _Longest:
    """core.train_runs, read off the longest run made at the same batch size, lr and seed when there is one: a
    shorter run is its first steps, number for number (tests compare), so moving `steps` down trains nothing.
    Holds the last `size` of them; sessions racing here agree on every number, so either one may keep its run."""

    def __init__(self, size: int = 16):
        self._held: collections.OrderedDict[tuple, core.TrainRuns] = collections.OrderedDict()
        self._lock, self._size = threading.Lock(), size

    def __call__(self, batch_size: int, *, lr: float = 0.05, steps: int = 50, seed: int = 0) -> core.TrainRuns:
        key = (batch_size, lr, seed)
        with self._lock:
            runs = self._held.get(key)
        if runs is None or len(runs.sgd_gaps) <= steps:
            runs = core.train_runs(batch_size, lr=lr, steps=steps, seed=seed)
        with self._lock:
            held = self._held.get(key)
            if held is None or len(held.sgd_gaps) < len(runs.sgd_gaps):
                self._held[key] = runs
            self._held.move_to_end(key)
            while len(self._held) > self._size:
                self._held.popitem(last=False)
        return runs.first(steps)

    def cache_clear(self) -> None:  # as an lru_cache's: core.clear_caches empties this too
        with self._lock:
            self._held.clear()


train_runs = _Longest()


def _sum_mean_norms(seed: int) -> pd.DataFrame:
    return norm_sweep(seed=seed).norms


def _spread(seed: int) -> pd.DataFrame:
    return norm_sweep(seed=seed).spread


def _curves(batch_size: int, lr: float, steps: int, seed: int) -> pd.DataFrame:
    # The training readings' numbers travel with the curves (DataFrame.attrs) and are read off this figure's own
    # cached data (training_runs): the five runs are trained once for the chart and the words, not twice in two
    # worker processes.
    runs = train_runs(batch_size, lr=lr, steps=steps, seed=seed)
    curves = runs.curves.copy(deep=False)
    curves.attrs["runs"] = {"step_ratio": runs.step_ratio, "sgd_gap": runs.sgd_gap, "adam_gap": runs.adam_gap,
                            "diverged": runs.diverged}
    return curves


def training_runs(curves: pd.DataFrame) -> core.TrainRuns:
    """The TrainRuns behind the training figure's data, _curves."""
    return core.TrainRuns(curves, **curves.attrs["runs"])


def _examples(n_examples: int, epoch_batch: int, seed: int) -> pd.DataFrame:
    return short_batch(n_examples, epoch_batch, seed=seed).examples


def _sample_norms(sample_batch: int, seed: int) -> pd.DataFrame:
    return per_sample(sample_batch, seed=seed).norms


def _elements(batch_size: int, seed: int) -> pd.DataFrame:
    return element_ratios(batch_size, seed=seed)


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
