"""Figures of the loss-scaling page. Every builder takes the DataFrame its core function returns."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

import core.loss_scaling as core
from content import words
from core import loss_scaling_amp as amp
from core import loss_scaling_decay as decay
from core.charts import COLORS, HEIGHT, OKABE_ITO, WIDTH, Labels, chartable, color, log_axis, vertical_marker
from core.figures import Figure
from core.fp16 import LARGEST, SMALLEST_NORMAL, SMALLEST_SUBNORMAL

W = words("loss_scaling")  # the charts' words: [charts.*] of content/<lang>/loss_scaling.toml
L = Labels("loss_scaling")  # category ids (optimizers, runs, float16 regions, clipping routes) as the reader reads them


def _named(field: str, key: str) -> dict[str, str]:
    """title=W[key] for a tooltip or legend of field, left out where it is the field's own name, which Vega-Lite shows
    by default (so the English spec stays as it was)."""
    title = W[key]
    return {} if title == field else {"title": title}


def gradient_ratio_chart(df: pd.DataFrame, scale: float) -> alt.LayerChart:
    """Per weight: how far grad(s·loss) / grad(loss) is from s, against the size of that gradient."""
    data = chartable(df.assign(abs_grad=df.grad.abs(), deviation=(df.ratio / scale - 1).abs()).query("abs_grad > 0"))
    floor = 1e-18  # an exact match (deviation 0) is drawn on the floor of the log axis
    data = data.assign(shown=data.deviation.clip(lower=floor))
    points = alt.Chart(data).mark_point(filled=True, size=40, opacity=0.8).encode(
        x=log_axis("abs_grad:Q", W["charts.ratios.x"]),
        y=alt.Y("shown:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e"), title=W["charts.ratios.y"]),
        color=color("dtype", ["float32", "float64"], W["charts.ratios.legend"]),
        tooltip=[alt.Tooltip("parameter:N", **_named("parameter", "charts.ratios.tip_parameter")),
                 alt.Tooltip("index:Q", **_named("index", "charts.ratios.tip_index")),
                 alt.Tooltip("dtype:N", **_named("dtype", "charts.ratios.tip_dtype")),
                 alt.Tooltip("grad:Q", format=".3e", **_named("grad", "charts.ratios.tip_grad")),
                 alt.Tooltip("ratio:Q", format=".10g", title=W["charts.ratios.tip_ratio"]),
                 alt.Tooltip("deviation:Q", format=".2e", title=W["charts.ratios.tip_deviation"])],
    )
    eps = pd.DataFrame({"y": [2.0**-24], "label": [W["charts.ratios.ulp"]]})
    rule = alt.Chart(eps).mark_rule(strokeDash=[4, 4], color=OKABE_ITO["grey"]).encode(
        y="y:Q", tooltip=[alt.Tooltip("label:N", **_named("label", "charts.ratios.tip_label"))])
    return (points + rule).properties(title=W("charts.ratios.title", scale=scale), width=WIDTH, height=HEIGHT)


def update_ratio_chart(sweep: pd.DataFrame, scale: float) -> alt.LayerChart:
    """Log-log: ||update at s·loss|| / ||update at loss|| against s, one line per optimizer."""
    data = chartable(sweep).query("update_ratio > 0")
    lines = alt.Chart(L.frame(data, "optimizer")).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=log_axis("scale:Q", W["charts.update.x"]),
        y=alt.Y("update_ratio:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e"),
                title=W["charts.update.y"]),
        color=color("optimizer", core.OPTIMIZERS, labels=L),
        tooltip=[alt.Tooltip("optimizer:N", **_named("optimizer", "charts.update.tip_optimizer")),
                 alt.Tooltip("scale:Q", format=".2e", title=W["charts.update.tip_scale"]),
                 alt.Tooltip("update_ratio:Q", format=".4g", title=W["charts.update.tip_ratio"])],
    )
    diagonal = pd.DataFrame({"scale": [data.scale.min(), data.scale.max()]}).assign(update_ratio=lambda d: d.scale)
    diag = alt.Chart(diagonal).mark_line(strokeDash=[2, 4], color=OKABE_ITO["grey"]).encode(
        x="scale:Q", y="update_ratio:Q", tooltip=[alt.Tooltip("scale:Q", title=W["charts.update.tip_diagonal"],
                                                              format=".0e")])
    return (diag + lines + vertical_marker(scale, W("charts.markers.scale", scale=scale))).properties(
        title=W["charts.update.title"], width=WIDTH, height=HEIGHT)


def equivalent_runs_chart(curves: pd.DataFrame) -> alt.Chart:
    """Training loss over steps: SGD at loss·s beside SGD at lr·s; Adam at loss·s beside Adam at loss."""
    data = L.frame(chartable(curves).query("loss > 0"), "run")
    runs = L.domain(dict.fromkeys(curves.run))
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=25)).encode(
        x=alt.X("step:Q", title=W["charts.equivalence.x"]),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title=W["charts.equivalence.y"]),
        color=alt.Color("run:N", scale=alt.Scale(
            domain=runs, range=[COLORS["sgd"], OKABE_ITO["sky"], COLORS["adam"], OKABE_ITO["orange"]]),
            legend=alt.Legend(orient="right", labelLimit=260), **_named("run", "charts.equivalence.legend")),
        strokeDash=alt.StrokeDash("run:N", scale=alt.Scale(domain=runs, range=[[1, 0], [6, 4], [1, 0], [6, 4]]),
                                  legend=None),
        tooltip=[alt.Tooltip("run:N", **_named("run", "charts.equivalence.tip_run")),
                 alt.Tooltip("step:Q", **_named("step", "charts.equivalence.tip_step")),
                 alt.Tooltip("loss:Q", format=".6g", **_named("loss", "charts.equivalence.tip_loss"))],
    ).properties(title=W["charts.equivalence.title"], width=WIDTH, height=HEIGHT)


def frozen_chart(sweep: pd.DataFrame, scale: float) -> alt.LayerChart:
    """Share of float32 weights that one step did not change at all, against s."""
    data = L.frame(chartable(sweep), "optimizer")
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=log_axis("scale:Q", W["charts.frozen.x"]),
        y=alt.Y("frozen_fraction:Q", axis=alt.Axis(format="%"), title=W["charts.frozen.y"]),
        color=color("optimizer", core.OPTIMIZERS, labels=L),
        tooltip=[alt.Tooltip("optimizer:N", **_named("optimizer", "charts.frozen.tip_optimizer")),
                 alt.Tooltip("scale:Q", format=".2e", title=W["charts.frozen.tip_scale"]),
                 alt.Tooltip("frozen_fraction:Q", format=".1%", title=W["charts.frozen.tip_unchanged"])],
    )
    return (lines + vertical_marker(scale, W("charts.markers.scale", scale=scale))).properties(
        title=W["charts.frozen.title"], width=WIDTH, height=HEIGHT)


FP16_LIMITS = pd.DataFrame({  # limit: the key of its words under [charts.limits]
    "log2": [math.log2(SMALLEST_SUBNORMAL), math.log2(SMALLEST_NORMAL), math.log2(LARGEST)],
    "limit": ["subnormal", "normal", "largest"],
})


def _limit_rules(field: str) -> alt.Chart:
    limits = FP16_LIMITS.assign(limit=[W[f"charts.limits.{k}"] for k in FP16_LIMITS.limit])
    return alt.Chart(limits.rename(columns={"log2": field})).mark_rule(strokeDash=[4, 3]).encode(
        x=f"{field}:Q", tooltip=[alt.Tooltip("limit:N", **_named("limit", "charts.limits.tip_limit")),
                                 alt.Tooltip(f"{field}:Q", format=".2f", title=W["charts.limits.tip_log2"])])


def magnitude_histogram_chart(hist: pd.DataFrame, log2_scale: int) -> alt.LayerChart:
    """Histogram of |2^k · gradient| in whole log2 bins, coloured by what float16 does to each bin."""
    regions = ["flushed to zero", "subnormal (precision lost)", "normal", "overflow to inf"]
    bars = alt.Chart(L.frame(hist, "region")).mark_bar().encode(
        x=alt.X("log2_lo:Q", bin=alt.Bin(step=1), title=W("charts.histogram.x", k=log2_scale)),
        y=alt.Y("sum(count):Q", title=W["charts.histogram.y"]),
        color=color("region", regions, W["charts.histogram.legend"], labels=L),
        tooltip=[alt.Tooltip("log2_lo:Q", title=W["charts.histogram.tip_from"]),
                 alt.Tooltip("count:Q", **_named("count", "charts.histogram.tip_count")),
                 alt.Tooltip("region:N", **_named("region", "charts.histogram.tip_region"))],
    )
    return (bars + _limit_rules("log2_lo")).properties(title=W["charts.histogram.title"], width=WIDTH, height=HEIGHT)


def fp16_sweep_chart(sweep: pd.DataFrame, log2_scale: int) -> alt.LayerChart:
    """Fraction of non-zero gradients lost to zero or to inf when 2^k · g is cast to float16."""
    lines = alt.Chart(L.frame(sweep, "fate")).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("log2_scale:Q", title=W["charts.fp16_sweep.x"]),
        y=alt.Y("fraction:Q", axis=alt.Axis(format="%"), title=W["charts.fp16_sweep.y"]),
        color=color("fate", ["flushed to zero", "overflow to inf"], W["charts.fp16_sweep.legend"], labels=L),
        tooltip=[alt.Tooltip("fate:N", **_named("fate", "charts.fp16_sweep.tip_fate")),
                 alt.Tooltip("log2_scale:Q", **_named("log2_scale", "charts.fp16_sweep.tip_log2_scale")),
                 alt.Tooltip("fraction:Q", format=".3%", **_named("fraction", "charts.fp16_sweep.tip_fraction"))],
    )
    return (lines + vertical_marker(log2_scale, W("charts.markers.log2", k=log2_scale))).properties(
        title=W["charts.fp16_sweep.title"], width=WIDTH, height=HEIGHT)


def grad_scaler_chart(trace: pd.DataFrame) -> alt.LayerChart:
    """GradScaler's scale over steps (log2 axis), skipped steps marked."""
    events = {True: W["charts.grad_scaler.skipped"], False: W["charts.grad_scaler.clean"]}
    data = trace.assign(log2_scale=trace.scale.map(math.log2), event=trace.skipped.map(events))
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title=W["charts.grad_scaler.x"]),
        y=alt.Y("log2_scale:Q", title=W["charts.grad_scaler.y"], scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("step:Q", **_named("step", "charts.grad_scaler.tip_step")),
                 alt.Tooltip("scale:Q", format=",.0f", **_named("scale", "charts.grad_scaler.tip_scale")),
                 alt.Tooltip("event:N", **_named("event", "charts.grad_scaler.tip_event")),
                 alt.Tooltip("loss:Q", format=".4f", **_named("loss", "charts.grad_scaler.tip_loss"))],
    )
    line = base.mark_line(interpolate="step-after", color=COLORS["sgd"])
    skips = base.transform_filter("datum.skipped").mark_point(shape="cross", size=90, color=COLORS["adam"], filled=True)
    return (line + skips).properties(title=W["charts.grad_scaler.title"], width=WIDTH, height=HEIGHT)


DECAY_LABELS = {"adam": "Adam(weight_decay)", "adamw": "AdamW(weight_decay)", "rmsprop": "RMSprop(weight_decay)",
                "adagrad": "Adagrad(weight_decay)"}


def decay_chart(sweep: pd.DataFrame, scale: float) -> alt.LayerChart:
    """Log x: the 20-step update ratio on s·loss against s, for the coupled-decay optimizers and AdamW."""
    data = chartable(sweep).query("update_ratio > 0")
    data = data.assign(run=data.optimizer.map(DECAY_LABELS))
    domain = [DECAY_LABELS[o] for o in decay.DECAY_OPTIMIZERS]
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=25)).encode(
        x=log_axis("scale:Q", W["charts.decay.x"]),
        y=alt.Y("update_ratio:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="~g"), title=W["charts.decay.y"]),
        color=alt.Color("run:N", title=W["charts.decay.legend"], legend=alt.Legend(orient="right", labelLimit=260),
                        scale=alt.Scale(domain=domain, range=[COLORS[o] for o in decay.DECAY_OPTIMIZERS])),
        tooltip=[alt.Tooltip("run:N", **_named("run", "charts.decay.tip_run")),
                 alt.Tooltip("scale:Q", format=".0e", title=W["charts.decay.tip_scale"]),
                 alt.Tooltip("update_ratio:Q", format=".4f", title=W["charts.decay.tip_ratio"])],
    )
    one = alt.Chart(pd.DataFrame({"y": [1.0], "label": [W["charts.decay.one"]]})).mark_rule(
        strokeDash=[2, 4], color=OKABE_ITO["grey"]).encode(
        y="y:Q", tooltip=[alt.Tooltip("label:N", **_named("label", "charts.decay.tip_label"))])
    return (one + lines + vertical_marker(scale, W("charts.markers.scale", scale=scale))).properties(
        title=W["charts.decay.title"], width=WIDTH, height=HEIGHT)


CLIP_COLORS = {"no clipping": OKABE_ITO["grey"], "clip after unscale_": OKABE_ITO["green"],
               "clip the scaled gradients": OKABE_ITO["vermillion"]}


def clipping_chart(trace: pd.DataFrame, max_norm: float) -> alt.LayerChart:
    """Per optimizer step: the norm of the gradient each route stepped with, beside the threshold max_norm."""
    data = L.frame(chartable(trace[["step", "route", "scale", "true_norm", "applied"]]), "route")
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=40)).encode(
        x=alt.X("step:Q", title=W["charts.clipping.x"], axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("applied:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="~g"), title=W["charts.clipping.y"]),
        color=alt.Color("route:N", title=W["charts.clipping.legend"], legend=alt.Legend(orient="right", labelLimit=260),
                        scale=alt.Scale(domain=L.domain(CLIP_COLORS), range=list(CLIP_COLORS.values()))),
        tooltip=[alt.Tooltip("route:N", **_named("route", "charts.clipping.tip_route")),
                 alt.Tooltip("step:Q", **_named("step", "charts.clipping.tip_step")),
                 alt.Tooltip("scale:Q", format=",.0f", title=W["charts.clipping.tip_scale"]),
                 alt.Tooltip("true_norm:Q", format=".4g", title=W["charts.clipping.tip_true"]),
                 alt.Tooltip("applied:Q", format=".4g", title=W["charts.clipping.tip_applied"])],
    )
    rule = alt.Chart(pd.DataFrame({"y": [max_norm], "label": [W("charts.clipping.max_norm", max_norm=max_norm)]}))
    rule = rule.mark_rule(strokeDash=[6, 3], color=OKABE_ITO["black"]).encode(
        y="y:Q", tooltip=[alt.Tooltip("label:N", **_named("label", "charts.clipping.tip_label")),
                          alt.Tooltip("y:Q", format="g", **_named("y", "charts.clipping.tip_y"))])
    return (lines + rule).properties(title=W["charts.clipping.title"], width=WIDTH, height=HEIGHT)


FORMAT_COLORS = {"float16": OKABE_ITO["vermillion"], "bfloat16": OKABE_ITO["green"]}


def formats_chart(sweep: pd.DataFrame, log2_scale: int) -> alt.LayerChart:
    """Against the loss scale 2^k: the share of gradients lost to zero or inf, in float16 and in bfloat16."""
    data = chartable(sweep)
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("log2_scale:Q", title=W["charts.formats.x"]),
        y=alt.Y("lost:Q", axis=alt.Axis(format="%"), title=W["charts.formats.y"]),
        color=alt.Color("dtype:N", title=W["charts.formats.legend"], legend=alt.Legend(orient="right"),
                        scale=alt.Scale(domain=list(FORMAT_COLORS), range=list(FORMAT_COLORS.values()))),
        tooltip=[alt.Tooltip("dtype:N", **_named("dtype", "charts.formats.tip_dtype")),
                 alt.Tooltip("log2_scale:Q", **_named("log2_scale", "charts.formats.tip_log2_scale")),
                 alt.Tooltip("lost:Q", format=".3%", title=W["charts.formats.tip_lost"]),
                 alt.Tooltip("rel_error:Q", format=".2e", title=W["charts.formats.tip_error"])],
    )
    return (lines + vertical_marker(log2_scale, W("charts.markers.log2", k=log2_scale))).properties(
        title=W["charts.formats.title"], width=WIDTH, height=HEIGHT)


# The page's figures, by name: what the page draws and what the export writes (core/figures.py).
# Each data function takes the page's settings by their control keys; s = 10^scale_exp.
def _ratios(scale_exp: int, seed: int) -> pd.DataFrame:
    return core.gradient_ratios(10.0**scale_exp, seed=seed)


def _sweep(lr: float, steps: int, eps_exp: int, seed: int) -> pd.DataFrame:
    return core.scaling_sweep(lr=lr, steps=steps, eps=10.0**eps_exp, seed=seed)


def _runs(scale_exp: int, lr: float, weight_decay: float, eps_exp: int, seed: int) -> pd.DataFrame:
    return core.equivalent_runs(10.0**scale_exp, lr=lr, weight_decay=weight_decay, eps=10.0**eps_exp, seed=seed).curves


def _decay(coupled_wd: float, lr: float, eps_exp: int, seed: int) -> pd.DataFrame:
    return decay.decay_sweep(coupled_wd, lr=lr, eps=10.0**eps_exp, seed=seed)


def _clipping(max_norm_exp: int, seed: int) -> pd.DataFrame:
    return amp.clipping_routes(10.0**max_norm_exp, seed=seed)


def _formats(seed: int) -> pd.DataFrame:
    return amp.format_sweep(seed=seed)


def _histogram(fp16_log2_scale: int, seed: int) -> pd.DataFrame:
    return core.fp16_histogram(fp16_log2_scale, seed=seed)


def _fates(seed: int) -> pd.DataFrame:
    return core.fp16_fates(seed=seed)


def _trace(growth_interval: int, seed: int) -> pd.DataFrame:
    return core.grad_scaler_run(growth_interval=growth_interval, seed=seed)


FIGURES: dict[str, Figure] = {
    "gradient_ratios": Figure(("scale_exp", "seed"), _ratios,
                              lambda df, s: gradient_ratio_chart(df, 10.0 ** s["scale_exp"]), experiment="gradients"),
    "update_ratio": Figure(("lr", "steps", "eps_exp", "seed"), _sweep,
                           lambda df, s: update_ratio_chart(df, 10.0 ** s["scale_exp"]), ("scale_exp",), "update"),
    "equivalent_runs": Figure(("scale_exp", "lr", "weight_decay", "eps_exp", "seed"), _runs,
                              lambda df, s: equivalent_runs_chart(df), experiment="equivalence"),
    "frozen": Figure(("lr", "steps", "eps_exp", "seed"), _sweep,
                     lambda df, s: frozen_chart(df, 10.0 ** s["scale_exp"]), ("scale_exp",), "frozen"),
    "fp16_histogram": Figure(("fp16_log2_scale", "seed"), _histogram,
                             lambda df, s: magnitude_histogram_chart(df, s["fp16_log2_scale"]), experiment="fp16"),
    "fp16_sweep": Figure(("seed",), _fates, lambda df, s: fp16_sweep_chart(df, s["fp16_log2_scale"]),
                         ("fp16_log2_scale",), "fp16"),
    "grad_scaler": Figure(("growth_interval", "seed"), _trace, lambda df, s: grad_scaler_chart(df), experiment="fp16"),
    "decay": Figure(("coupled_wd", "lr", "eps_exp", "seed"), _decay,
                    lambda df, s: decay_chart(df, 10.0 ** s["scale_exp"]), ("scale_exp",), "decay"),
    "clipping": Figure(("max_norm_exp", "seed"), _clipping, lambda df, s: clipping_chart(df, 10.0 ** s["max_norm_exp"]),
                       experiment="clipping"),
    "formats": Figure(("seed",), _formats, lambda df, s: formats_chart(df, s["fp16_log2_scale"]),
                      ("fp16_log2_scale",), "bf16"),
}
