"""Figures of the explosion page. Every builder takes the DataFrame its core function returns."""

from __future__ import annotations

import functools
import math

import altair as alt
import pandas as pd

import core.explosion as core
from core.charts import HEIGHT, OKABE_ITO, WIDTH, chartable, vertical_marker
from core.explosion_residual import residual_comparison
from core.explosion_training import POISON_STEP, Survival
from core.figures import Figure, Settings
from core.nonfinite import first_nonfinite

# This page's things and their colours (no other page draws activations, clip modes or recurrent cells).
ACTIVATION_COLORS = {"linear": OKABE_ITO["black"], "tanh": OKABE_ITO["blue"], "relu": OKABE_ITO["orange"],
                     "sigmoid": OKABE_ITO["purple"]}
CLIP_COLORS = {"none": OKABE_ITO["vermillion"], "norm": OKABE_ITO["blue"], "value": OKABE_ITO["orange"]}
GUARD_COLORS = {"none": OKABE_ITO["vermillion"], "skip": OKABE_ITO["blue"], "grad_scaler": OKABE_ITO["sky"]}
QUANTITIES = {  # the layer chart's series: column -> (legend name, colour)
    "activation_grad_norm": ("signal ‖∂L/∂ input‖", OKABE_ITO["vermillion"]),
    "weight_grad_norm": ("weight gradient ‖∂L/∂W‖", OKABE_ITO["blue"]),
    "input_norm": ("forward activation ‖input‖", OKABE_ITO["grey"]),
}
MODEL_COLORS = {"bound ρ^t": OKABE_ITO["grey"], "LSTM": OKABE_ITO["orange"],
                "LSTM, forget bias +1": OKABE_ITO["purple"], "GRU": OKABE_ITO["green"]}
VECTOR_COLORS = {"gradient": OKABE_ITO["black"], "clip_grad_norm_": OKABE_ITO["blue"],
                 "clip_grad_value_": OKABE_ITO["orange"]}


def _scale(domain: dict[str, str]) -> alt.Scale:
    return alt.Scale(domain=list(domain), range=list(domain.values()))


def _legend(title: str | None = None) -> alt.Legend:
    return alt.Legend(title=title, orient="right", labelLimit=260)


def _log_y(field: str, title: str) -> alt.Y:
    return alt.Y(field, scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e", grid=True), title=title)


def _float32_rule(top: float) -> list[alt.Chart]:
    """A dashed line at float32's largest number, drawn only when the data go past it."""
    if top <= core.FLOAT32_MAX:
        return []
    data = pd.DataFrame({"y": [core.FLOAT32_MAX], "label": ["float32's largest number, 3.4e38"]})
    return [alt.Chart(data).mark_rule(strokeDash=[4, 4], color=OKABE_ITO["vermillion"]).encode(
        y="y:Q", tooltip=["label:N", alt.Tooltip("y:Q", format=".2e", title="value")])]


def layers_chart(df: pd.DataFrame, activation: str, gain: float) -> alt.LayerChart:
    """Per layer, log scale: the back-propagated signal, the weight gradient and the forward activation."""
    names = {column: name for column, (name, _) in QUANTITIES.items()}
    data = chartable(df.melt("layer", list(QUANTITIES), var_name="column", value_name="norm")
                     .assign(quantity=lambda d: d.column.map(names))).query("norm > 0")
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=alt.X("layer:Q", title="layer (1 is nearest the input)", axis=alt.Axis(tickMinStep=1)),
        y=_log_y("norm:Q", "norm (log scale)"),
        color=alt.Color("quantity:N", scale=_scale({n: c for n, c in QUANTITIES.values()}), legend=_legend()),
        tooltip=["quantity:N", "layer:Q", alt.Tooltip("norm:Q", format=".3e")],
    )
    return alt.layer(lines, *_float32_rule(data.norm.max() if len(data) else 0.0)).properties(
        title=f"{activation}, init gain {gain:g}: gradient norms layer by layer after one backward pass",
        width=WIDTH, height=HEIGHT)


def gain_sweep_chart(df: pd.DataFrame, gain: float) -> alt.LayerChart:
    """First-to-last layer ratio against the init gain; one colour per activation, dashed for the signal."""
    data = chartable(df).query("ratio > 0")
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("init_gain:Q", title="init gain (weights ~ N(0, gain² / fan_in))"),
        y=_log_y("ratio:Q", "first ÷ last layer (1 = level)"),
        color=alt.Color("activation:N", scale=_scale(ACTIVATION_COLORS), legend=_legend("activation")),
        strokeDash=alt.StrokeDash("quantity:N", scale=alt.Scale(domain=["weight gradient", "signal"],
                                                                 range=[[1, 0], [5, 3]]),
                                  legend=alt.Legend(title="norm of", orient="right", symbolType="stroke",
                                                    symbolStrokeColor=OKABE_ITO["black"], symbolStrokeWidth=2,
                                                    labelExpr="datum.label == 'signal' ? 'signal (dashed)' "
                                                              ": datum.label + ' (solid)'")),
        tooltip=["activation:N", "quantity:N", alt.Tooltip("init_gain:Q", format=".2f"),
                 alt.Tooltip("ratio:Q", format=".3e", title="first ÷ last layer")],
    )
    level = alt.Chart(pd.DataFrame({"y": [1.0], "label": ["level: first layer = last layer"]})).mark_rule(
        color=OKABE_ITO["grey"]).encode(y="y:Q", tooltip=["label:N"])
    rules = pd.DataFrame({"x": [core.XAVIER_GAIN, core.HE_GAIN, core.TANH_GAIN],
                          "label": ["Xavier: 1", "He: √2", "calculate_gain('tanh'): 5/3"]})
    rule_base = alt.Chart(rules).encode(x="x:Q", tooltip=["label:N", alt.Tooltip("x:Q", format=".3f", title="gain")])
    rules_drawn = rule_base.mark_rule(strokeDash=[2, 3], color=OKABE_ITO["grey"]) + rule_base.mark_text(
        align="left", dx=3, dy=-4, baseline="bottom", color=OKABE_ITO["grey"]).encode(
        text="label:N", y=alt.value({"expr": "height"}))  # at the foot, clear of the marker's label at the top
    marks = [rules_drawn, vertical_marker(gain, f"your gain {gain:g}")]
    return alt.layer(level, lines, *marks).properties(
        title="Where each activation keeps gradients level: the gain that holds the ratio at 1", width=WIDTH,
        height=HEIGHT)


def time_chart(df: pd.DataFrame, rho: float) -> alt.LayerChart:
    """||dh_t / dh_0|| against t, log scale: the vanilla RNN, its bound rho^t, and the gated cells."""
    data = chartable(df).query("norm > 0")  # a norm below float64's range underflows to 0: not drawable on a log axis
    models = list(dict.fromkeys(df.model))
    colors = {m: MODEL_COLORS.get(m, OKABE_ITO["black"]) for m in models}
    lines = alt.Chart(data).mark_line().encode(
        x=alt.X("t:Q", title="time step t"),
        y=_log_y("norm:Q", "‖∂h_t / ∂h_0‖₂ (log)"),
        color=alt.Color("model:N", scale=_scale(colors), legend=_legend()),
        strokeDash=alt.StrokeDash("model:N", scale=alt.Scale(domain=models, range=[
            [5, 3] if m.startswith("bound") else [1, 0] for m in models]), legend=None),
        tooltip=["model:N", "t:Q", alt.Tooltip("norm:Q", format=".3e")],
    )
    one = alt.Chart(pd.DataFrame({"y": [1.0], "label": ["1: neither grows nor shrinks"]})).mark_rule(
        color=OKABE_ITO["grey"], opacity=0.5).encode(y="y:Q", tooltip=["label:N"])
    return alt.layer(one, lines, *_float32_rule(data.norm.max() if len(data) else 0.0)).properties(
        title=f"How far back a gradient reaches: ρ = {rho:g}, the vanilla RNN beside an LSTM and a GRU",
        width=WIDTH, height=HEIGHT)


def _blowup_marks(found: dict[str, int], colors: dict[str, str], what: str) -> list[alt.Chart]:
    if not found:
        return []
    data = pd.DataFrame({"run": list(found), "step": list(found.values())}).assign(
        label=lambda d: d.run + f": {what} at step " + d.step.astype(str))
    return [alt.Chart(data).mark_rule(strokeDash=[6, 3]).encode(
        x="step:Q", color=alt.Color("run:N", scale=_scale(colors), legend=None), tooltip=["label:N"])]


def _top(data: pd.DataFrame, column: str, blown: dict) -> float:
    """A decade above the highest value of the runs that stayed finite: a blow-up leaves the chart through its
    top (its tooltips still tell the numbers) instead of flattening every other run."""
    stayed = data[~data.clipping.isin(blown)][column]
    return 10 * float(stayed.max() if len(stayed) else data[column].max())


def training_loss_chart(runs: pd.DataFrame) -> alt.LayerChart:
    """Training loss per step for no clipping, norm clipping and value clipping; a blow-up marked where it happened."""
    data = chartable(runs).query("loss > 0")
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=14), clip=True).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log", domainMax=_top(data, "loss", core.blowups(runs))),
                axis=alt.Axis(format=".0e", grid=True),
                title="training loss (MSE, log)"),
        color=alt.Color("clipping:N", scale=_scale(CLIP_COLORS), legend=_legend("clipping")),
        tooltip=["clipping:N", "step:Q", alt.Tooltip("loss:Q", format=".4g")],
    )
    marks = _blowup_marks(core.blowups(runs), CLIP_COLORS, "inf or NaN")
    return alt.layer(lines, *marks).properties(
        title="Same start, same learning rate: a blow-up leaves through the top", width=WIDTH, height=HEIGHT)


def training_norms_chart(runs: pd.DataFrame, threshold: float) -> alt.LayerChart:
    """The global gradient norm before clipping (solid) and after (dashed) per step, with the threshold."""
    long = runs.melt(["step", "clipping"], ["grad_norm", "clipped_grad_norm"], var_name="when", value_name="norm")
    long["when"] = long.when.map({"grad_norm": "before clipping", "clipped_grad_norm": "after clipping"})
    data = chartable(long).query("norm > 0")
    lines = alt.Chart(data).mark_line(clip=True).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("norm:Q", scale=alt.Scale(type="log", domainMax=_top(data, "norm", core.blowups(runs))),
                axis=alt.Axis(format=".0e", grid=True), title="global gradient norm (log)"),
        color=alt.Color("clipping:N", scale=_scale(CLIP_COLORS), legend=_legend("clipping")),
        strokeDash=alt.StrokeDash("when:N", scale=alt.Scale(domain=["before clipping", "after clipping"],
                                                             range=[[1, 0], [4, 3]]), legend=_legend("norm")),
        tooltip=["clipping:N", "when:N", "step:Q", alt.Tooltip("norm:Q", format=".4g")],
    )
    rule = alt.Chart(pd.DataFrame({"y": [threshold], "label": [f"threshold {threshold:g}"]})).mark_rule(
        color=OKABE_ITO["grey"], strokeDash=[2, 2]).encode(
        y="y:Q", tooltip=["label:N", alt.Tooltip("y:Q", title="value")])
    return alt.layer(rule, lines).properties(
        title="Gradient norm before clipping (solid) and after it (dashed)", width=WIDTH, height=HEIGHT)


SQUARE = 240  # px: the clipping diagram's plot, small enough beside its axes and legend on a 390 px phone


def clip_2d_chart(df: pd.DataFrame, threshold: float) -> alt.LayerChart:
    """One 2-D gradient and its two clipped versions as arrows from the origin, with the norm ball and value box."""
    data = df.assign(x0=0.0, y0=0.0)
    reach = max(float(df[["x", "y"]].abs().to_numpy().max()), threshold) * 1.15
    axis = alt.Scale(domain=[-reach, reach])
    color = alt.Color("vector:N", scale=_scale(VECTOR_COLORS), legend=_legend())
    tooltip = ["vector:N", alt.Tooltip("x:Q", format=".4f"), alt.Tooltip("y:Q", format=".4f"),
               alt.Tooltip("norm:Q", format=".4f"), alt.Tooltip("angle:Q", format=".2f", title="angle (°)"),
               alt.Tooltip("turn:Q", format=".2f", title="turned by (°)")]
    shafts = alt.Chart(data).mark_rule(strokeWidth=3).encode(
        x=alt.X("x0:Q", scale=axis, title="first component"), y=alt.Y("y0:Q", scale=axis, title="second component"),
        x2="x:Q", y2="y:Q", color=color, tooltip=tooltip)
    tips = alt.Chart(data).mark_point(filled=True, size=90, opacity=1).encode(x="x:Q", y="y:Q", color=color,
                                                                              tooltip=tooltip)
    angles = [2 * math.pi * k / 96 for k in range(97)]
    ball = pd.DataFrame({"x": [threshold * math.cos(a) for a in angles], "y": [threshold * math.sin(a) for a in angles],
                         "order": range(97), "shape": f"‖g‖ ≤ {threshold:g}: where clip_grad_norm_ lands"})
    t = threshold
    box = pd.DataFrame({"x": [-t, t, t, -t, -t], "y": [-t, -t, t, t, -t], "order": range(5),
                        "shape": f"|g_i| ≤ {threshold:g}: where clip_grad_value_ lands"})
    outline = alt.Chart(pd.concat([ball, box])).mark_line(strokeDash=[3, 3]).encode(
        x="x:Q", y="y:Q", order="order:Q", detail="shape:N", tooltip=["shape:N"],
        color=alt.value(OKABE_ITO["grey"]))
    # A square of fixed size, so the norm ball stays round: a number, not the column's width, with "pad" sizing
    # (a one-panel concatenation under "fit" sizing was drawn 0 px wide on the page and in its SVG).
    return alt.layer(outline, shafts, tips).properties(
        width=SQUARE, height=SQUARE, autosize=alt.AutoSizeParams(type="pad"),
        title="Norm clipping shortens the gradient; value clipping turns it")


NET_COLORS = {"plain": OKABE_ITO["vermillion"], "residual + LayerNorm": OKABE_ITO["green"]}


def residual_chart(df: pd.DataFrame, activation: str, gain: float) -> alt.LayerChart:
    """Per layer, log scale: the back-propagated signal of the plain net and of the residual net, same weights."""
    data = chartable(df).query("signal > 0")
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=alt.X("layer:Q", title="layer (1 is nearest the input)", axis=alt.Axis(tickMinStep=1)),
        y=_log_y("signal:Q", "signal ‖∂L/∂ input‖ (log scale)"),
        color=alt.Color("net:N", scale=_scale(NET_COLORS), legend=_legend("net")),
        tooltip=["net:N", "layer:Q", alt.Tooltip("signal:Q", format=".3e", title="signal"),
                 alt.Tooltip("weight_grad_norm:Q", format=".3e", title="‖∂L/∂W‖")],
    )
    return alt.layer(lines, *_float32_rule(data.signal.max() if len(data) else 0.0)).properties(
        title=f"{activation}, init gain {gain:g}: the same layers, plain and with residual connections",
        width=WIDTH, height=HEIGHT)


GUARD_NAMES = {"none": "no guard", "skip": "skip non-finite steps", "grad_scaler": "torch.amp.GradScaler"}


def survival_chart(curves: pd.DataFrame) -> alt.LayerChart:
    """Loss on clean data per step, with no guard, skipping non-finite steps, and torch.amp.GradScaler."""
    named = curves.assign(run=curves.guard.map(GUARD_NAMES), skipped=curves.skipped.astype(int))
    data = chartable(named).query("loss > 0")
    colors = {GUARD_NAMES[g]: c for g, c in GUARD_COLORS.items()}
    tooltip = ["run:N", "step:Q", alt.Tooltip("loss:Q", format=".4g"), alt.Tooltip("skipped:Q", title="skipped")]
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title="step"),
        y=_log_y("loss:Q", "loss, 128 clean examples"),
        color=alt.Color("run:N", scale=_scale(colors), legend=_legend("guard")),
        tooltip=tooltip,
    )
    # the three runs coincide until the corrupt batch: the widest line at the bottom, the dashed one on top
    lines = base.mark_line().encode(
        strokeWidth=alt.StrokeWidth("run:N", scale=alt.Scale(domain=list(colors), range=[6, 3, 2]), legend=None),
        strokeDash=alt.StrokeDash("run:N", scale=alt.Scale(domain=list(colors), range=[[1, 0], [1, 0], [6, 4]]),
                                  legend=None))
    skips = base.transform_filter("datum.skipped == 1").mark_point(shape="cross", size=140, filled=True)
    last = data[data.guard.isin(first_nonfinite(curves, "loss", by="guard"))].groupby("guard").tail(1)
    ends = alt.Chart(last.assign(label="NaN from the next step on")).mark_point(
        shape="triangle-down", size=160, filled=True, color=OKABE_ITO["vermillion"]).encode(
        x="step:Q", y="loss:Q", tooltip=["run:N", "step:Q", "label:N"])
    poison = alt.Chart(pd.DataFrame({"step": [POISON_STEP], "label": ["the batch with an inf feature"]})).mark_rule(
        strokeDash=[6, 3], color=OKABE_ITO["grey"]).encode(x="step:Q", tooltip=["label:N", "step:Q"])
    return alt.layer(poison, lines, skips, ends).properties(
        title="One corrupt batch: without a guard the weights become NaN for good", width=WIDTH, height=HEIGHT)


# The page's figures, by name: what the page draws and what the export writes (core/figures.py).
def _layers(depth: int, activation: str, init_gain: float, seed: int) -> pd.DataFrame:
    return core.layer_gradient_norms(depth, activation=activation, init_gain=init_gain, seed=seed)


def _sweep(depth: int, seed: int) -> pd.DataFrame:
    return core.gain_sweep(depth, seed=seed)


def _time(seq_len: int, spectral_radius: float, nonlinearity: str, seed: int) -> pd.DataFrame:
    return core.time_comparison(seq_len, spectral_radius, nonlinearity=nonlinearity, seed=seed)


@functools.lru_cache(maxsize=8)  # two figures and the page's words read the same runs: train once
def clipping_runs(threshold: float, lr: float, steps: int, seed: int) -> pd.DataFrame:
    return core.clipping_runs(threshold, lr=lr, steps=steps, seed=seed)


@functools.lru_cache(maxsize=8)  # the figure draws its curves, the page quotes the rest
def survival(seed: int) -> Survival:
    return core.surviving_runs(seed=seed)


def _runs(threshold: float, lr: float, steps: int, seed: int) -> pd.DataFrame:
    return clipping_runs(threshold, lr, steps, seed)


def _clip_2d(g_x: float, g_y: float, threshold: float) -> pd.DataFrame:
    return core.clip_2d(g_x, g_y, threshold)


def _survival(seed: int) -> pd.DataFrame:
    return survival(seed).curves


def _residual(depth: int, activation: str, init_gain: float, seed: int) -> pd.DataFrame:
    return residual_comparison(depth, activation=activation, init_gain=init_gain, seed=seed)


def _layers_view(df: pd.DataFrame, s: Settings) -> alt.LayerChart:
    return layers_chart(df, s["activation"], s["init_gain"])


FIGURES: dict[str, Figure] = {
    "layers": Figure(("depth", "activation", "init_gain", "seed"), _layers, _layers_view, experiment="depth"),
    "gain_sweep": Figure(("depth", "seed"), _sweep, lambda df, s: gain_sweep_chart(df, s["init_gain"]),
                         ("init_gain",), experiment="depth"),
    "time": Figure(("seq_len", "spectral_radius", "nonlinearity", "seed"), _time,
                   lambda df, s: time_chart(df, s["spectral_radius"]), experiment="time"),
    "training_loss": Figure(("threshold", "lr", "steps", "seed"), _runs, lambda df, s: training_loss_chart(df),
                            experiment="clipping"),
    "training_norms": Figure(("threshold", "lr", "steps", "seed"), _runs,
                             lambda df, s: training_norms_chart(df, s["threshold"]), experiment="clipping"),
    "clip_2d": Figure(("g_x", "g_y", "threshold"), _clip_2d, lambda df, s: clip_2d_chart(df, s["threshold"]),
                      experiment="direction"),
    "survival": Figure(("seed",), _survival, lambda df, s: survival_chart(df), experiment="survival"),
    "residual": Figure(("depth", "activation", "init_gain", "seed"), _residual,
                       lambda df, s: residual_chart(df, s["activation"], s["init_gain"]), experiment="residual"),
}
