"""Figures of the explosion page. Every builder takes the DataFrame its core function returns."""

from __future__ import annotations

import functools
import math

import altair as alt
import pandas as pd

import core.explosion as core
from content import words
from core.charts import HEIGHT, OKABE_ITO, WIDTH, Labels, chartable, vertical_marker
from core.explosion_residual import residual_comparison
from core.explosion_training import POISON_STEP, Survival
from core.figures import Figure, Settings
from core.nonfinite import first_nonfinite

# This page's things and their colours (no other page draws activations, clip modes or recurrent cells).
ACTIVATION_COLORS = {"linear": OKABE_ITO["black"], "tanh": OKABE_ITO["blue"], "relu": OKABE_ITO["orange"],
                     "sigmoid": OKABE_ITO["purple"]}
CLIP_COLORS = {"none": OKABE_ITO["vermillion"], "norm": OKABE_ITO["blue"], "value": OKABE_ITO["orange"]}
GUARD_COLORS = {"none": OKABE_ITO["vermillion"], "skip": OKABE_ITO["blue"], "grad_scaler": OKABE_ITO["sky"]}
QUANTITIES = {  # the layer chart's series: column -> colour (its legend name: charts.layers.<column>)
    "activation_grad_norm": OKABE_ITO["vermillion"],
    "weight_grad_norm": OKABE_ITO["blue"],
    "input_norm": OKABE_ITO["grey"],
}
MODEL_COLORS = {"bound ρ^t": OKABE_ITO["grey"], "LSTM": OKABE_ITO["orange"],
                "LSTM, forget bias +1": OKABE_ITO["purple"], "GRU": OKABE_ITO["green"]}
VECTOR_COLORS = {"gradient": OKABE_ITO["black"], "clip_grad_norm_": OKABE_ITO["blue"],
                 "clip_grad_value_": OKABE_ITO["orange"]}

W = words("explosion")  # the charts' words: content/<lang>/explosion.toml, [charts.*]
L = Labels("explosion")  # the data's ids (a clip mode, a model, a net) as the reader's language shows them


def _scale(domain: dict[str, str], labels: Labels | None = None) -> alt.Scale:
    """Colours by name; with labels, the names are ids and the field holds their labels (L.frame)."""
    return alt.Scale(domain=labels.domain(domain) if labels else list(domain), range=list(domain.values()))


def _tip(shorthand: str, title: str | None = None, **kw) -> str | alt.Tooltip:
    """A tooltip field titled in the reader's language (charts.fields.<field> unless given); where the title is the
    field's own name, as in English, the field is left bare, as it was."""
    field = shorthand.split(":")[0]
    title = title if title is not None else W[f"charts.fields.{field}"]
    if title == field:
        return alt.Tooltip(shorthand, **kw) if kw else shorthand
    return alt.Tooltip(shorthand, title=title, **kw)


def _js(text: str) -> str:
    """text as a single-quoted Vega expression string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _legend(title: str | None = None) -> alt.Legend:
    return alt.Legend(title=title, orient="right", labelLimit=260)


def _log_y(field: str, title: str) -> alt.Y:
    return alt.Y(field, scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e", grid=True), title=title)


def _float32_rule(top: float) -> list[alt.Chart]:
    """A dashed line at float32's largest number, drawn only when the data go past it."""
    if top <= core.FLOAT32_MAX:
        return []
    data = pd.DataFrame({"y": [core.FLOAT32_MAX], "label": [W["charts.float32.label"]]})
    return [alt.Chart(data).mark_rule(strokeDash=[4, 4], color=OKABE_ITO["vermillion"]).encode(
        y="y:Q", tooltip=[_tip("label:N"), alt.Tooltip("y:Q", format=".2e", title=W["charts.float32.value"])])]


def layers_chart(df: pd.DataFrame, activation: str, gain: float) -> alt.LayerChart:
    """Per layer, log scale: the back-propagated signal, the weight gradient and the forward activation."""
    names = {column: W[f"charts.layers.{column}"] for column in QUANTITIES}
    data = chartable(df.melt("layer", list(QUANTITIES), var_name="column", value_name="norm")
                     .assign(quantity=lambda d: d.column.map(names))).query("norm > 0")
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=alt.X("layer:Q", title=W["charts.layers.x"], axis=alt.Axis(tickMinStep=1)),
        y=_log_y("norm:Q", W["charts.layers.y"]),
        color=alt.Color("quantity:N", scale=_scale({names[c]: color for c, color in QUANTITIES.items()}),
                        legend=_legend()),
        tooltip=[_tip("quantity:N"), _tip("layer:Q"), _tip("norm:Q", format=".3e")],
    )
    return alt.layer(lines, *_float32_rule(data.norm.max() if len(data) else 0.0)).properties(
        title=W("charts.layers.title", activation=L(activation), gain=gain), width=WIDTH, height=HEIGHT)


def gain_sweep_chart(df: pd.DataFrame, gain: float) -> alt.LayerChart:
    """First-to-last layer ratio against the init gain; one colour per activation, dashed for the signal."""
    data = L.frame(chartable(df).query("ratio > 0"), "activation", "quantity")
    signal = L("signal")  # the dashed line; the legend says so in its labels
    before, _, after = W["charts.gain_sweep.solid"].partition("{quantity}")
    solid = " + ".join([*([_js(before)] if before else []), "datum.label", *([_js(after)] if after else [])])
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("init_gain:Q", title=W["charts.gain_sweep.x"]),
        y=_log_y("ratio:Q", W["charts.gain_sweep.y"]),
        color=alt.Color("activation:N", scale=_scale(ACTIVATION_COLORS, L),
                        legend=_legend(W["charts.gain_sweep.legend"])),
        strokeDash=alt.StrokeDash("quantity:N", scale=alt.Scale(domain=L.domain(["weight gradient", "signal"]),
                                                                 range=[[1, 0], [5, 3]]),
                                  legend=alt.Legend(title=W["charts.gain_sweep.legend_dash"], orient="right",
                                                    symbolType="stroke", symbolStrokeColor=OKABE_ITO["black"],
                                                    symbolStrokeWidth=2,
                                                    labelExpr=f"datum.label == {_js(signal)} ? "
                                                              f"{_js(W('charts.gain_sweep.dashed', quantity=signal))} "
                                                              f": {solid}")),
        tooltip=[_tip("activation:N"), _tip("quantity:N"), _tip("init_gain:Q", format=".2f"),
                 alt.Tooltip("ratio:Q", format=".3e", title=W["charts.gain_sweep.tip_ratio"])],
    )
    level = alt.Chart(pd.DataFrame({"y": [1.0], "label": [W["charts.gain_sweep.level"]]})).mark_rule(
        color=OKABE_ITO["grey"]).encode(y="y:Q", tooltip=[_tip("label:N")])
    rules = pd.DataFrame({"x": [core.XAVIER_GAIN, core.HE_GAIN, core.TANH_GAIN],
                          "label": [W["charts.gain_sweep.xavier"], W["charts.gain_sweep.he"],
                                    W["charts.gain_sweep.tanh"]]})
    rule_base = alt.Chart(rules).encode(x="x:Q", tooltip=[_tip("label:N"), alt.Tooltip(
        "x:Q", format=".3f", title=W["charts.gain_sweep.tip_gain"])])
    # each label at the foot (clear of the marker's label at the top), one line above the last: the three gains
    # lie close together, and side by side their labels ran into each other on a phone
    labels = [rule_base.transform_filter(f"datum.x == {x!r}").mark_text(
        align="left", dx=3, dy=-4 - 15 * i, baseline="bottom", color=OKABE_ITO["grey"]).encode(
        text="label:N", y=alt.value({"expr": "height"})) for i, x in enumerate(rules.x)]
    marks = [rule_base.mark_rule(strokeDash=[2, 3], color=OKABE_ITO["grey"]), *labels,
             vertical_marker(gain, W("charts.gain_sweep.marker", gain=gain))]
    return alt.layer(level, lines, *marks).properties(title=W["charts.gain_sweep.title"], width=WIDTH, height=HEIGHT)


def time_chart(df: pd.DataFrame, rho: float) -> alt.LayerChart:
    """||dh_t / dh_0|| against t, log scale: the vanilla RNN, its bound rho^t, and the gated cells."""
    data = chartable(df).query("norm > 0")  # a norm below float64's range underflows to 0: not drawable on a log axis
    models = list(dict.fromkeys(df.model))
    colors = {m: MODEL_COLORS.get(m, OKABE_ITO["black"]) for m in models}
    lines = alt.Chart(L.frame(data, "model")).mark_line().encode(
        x=alt.X("t:Q", title=W["charts.time.x"]),
        y=_log_y("norm:Q", W["charts.time.y"]),
        color=alt.Color("model:N", scale=_scale(colors, L), legend=_legend()),
        strokeDash=alt.StrokeDash("model:N", scale=alt.Scale(domain=L.domain(models), range=[
            [5, 3] if m.startswith("bound") else [1, 0] for m in models]), legend=None),
        tooltip=[_tip("model:N"), _tip("t:Q"), _tip("norm:Q", format=".3e")],
    )
    one = alt.Chart(pd.DataFrame({"y": [1.0], "label": [W["charts.time.one"]]})).mark_rule(
        color=OKABE_ITO["grey"], opacity=0.5).encode(y="y:Q", tooltip=[_tip("label:N")])
    return alt.layer(one, lines, *_float32_rule(data.norm.max() if len(data) else 0.0)).properties(
        title=W("charts.time.title", rho=rho), width=WIDTH, height=HEIGHT)


def _blowup_marks(found: dict[str, int], colors: dict[str, str]) -> list[alt.Chart]:
    if not found:
        return []
    data = pd.DataFrame({"run": [L(run) for run in found], "step": list(found.values())})
    data["label"] = [W("charts.training_loss.blowup", run=run, step=str(step))
                     for run, step in zip(data.run, data.step)]
    return [alt.Chart(data).mark_rule(strokeDash=[6, 3]).encode(
        x="step:Q", color=alt.Color("run:N", scale=_scale(colors, L), legend=None), tooltip=[_tip("label:N")])]


def _top(data: pd.DataFrame, column: str, blown: dict) -> float:
    """A decade above the highest value of the runs that stayed finite: a blow-up leaves the chart through its
    top (its tooltips still tell the numbers) instead of flattening every other run."""
    stayed = data[~data.clipping.isin(blown)][column]
    return 10 * float(stayed.max() if len(stayed) else data[column].max())


def training_loss_chart(runs: pd.DataFrame) -> alt.LayerChart:
    """Training loss per step for no clipping, norm clipping and value clipping; a blow-up marked where it happened."""
    data = chartable(runs).query("loss > 0")
    found = core.blowups(runs)
    top = _top(data, "loss", found)
    lines = alt.Chart(L.frame(data, "clipping")).mark_line(point=alt.OverlayMarkDef(size=14), clip=True).encode(
        x=alt.X("step:Q", title=W["charts.training_loss.x"]),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log", domainMax=top),
                axis=alt.Axis(format=".0e", grid=True),
                title=W["charts.training_loss.y"]),
        color=alt.Color("clipping:N", scale=_scale(CLIP_COLORS, L), legend=_legend(W["charts.training_loss.legend"])),
        tooltip=[_tip("clipping:N"), _tip("step:Q"), _tip("loss:Q", format=".4g")],
    )
    marks = _blowup_marks(found, CLIP_COLORS)
    return alt.layer(lines, *marks).properties(title=W["charts.training_loss.title"], width=WIDTH, height=HEIGHT)


def training_norms_chart(runs: pd.DataFrame, threshold: float) -> alt.LayerChart:
    """The global gradient norm before clipping (solid) and after (dashed) per step, with the threshold."""
    long = runs.melt(["step", "clipping"], ["grad_norm", "clipped_grad_norm"], var_name="when", value_name="norm")
    when = {"grad_norm": W["charts.training_norms.before"], "clipped_grad_norm": W["charts.training_norms.after"]}
    long["when"] = long.when.map(when)
    data = chartable(long).query("norm > 0")
    top = _top(data, "norm", core.blowups(runs))
    lines = alt.Chart(L.frame(data, "clipping")).mark_line(clip=True).encode(
        x=alt.X("step:Q", title=W["charts.training_norms.x"]),
        y=alt.Y("norm:Q", scale=alt.Scale(type="log", domainMax=top),
                axis=alt.Axis(format=".0e", grid=True), title=W["charts.training_norms.y"]),
        color=alt.Color("clipping:N", scale=_scale(CLIP_COLORS, L),
                        legend=_legend(W["charts.training_norms.legend"])),
        strokeDash=alt.StrokeDash("when:N", scale=alt.Scale(domain=list(when.values()), range=[[1, 0], [4, 3]]),
                                  legend=_legend(W["charts.training_norms.legend_dash"])),
        tooltip=[_tip("clipping:N"), _tip("when:N"), _tip("step:Q"), _tip("norm:Q", format=".4g")],
    )
    rule = alt.Chart(pd.DataFrame({"y": [threshold], "label": [W("charts.training_norms.threshold",
                                                                  threshold=threshold)]})).mark_rule(
        color=OKABE_ITO["grey"], strokeDash=[2, 2]).encode(
        y="y:Q", tooltip=[_tip("label:N"), alt.Tooltip("y:Q", title=W["charts.training_norms.tip_value"])])
    return alt.layer(rule, lines).properties(title=W["charts.training_norms.title"], width=WIDTH, height=HEIGHT)


SQUARE = 240  # px: the clipping diagram's plot, small enough beside its axes and legend on a 390 px phone


def clip_2d_chart(df: pd.DataFrame, threshold: float) -> alt.LayerChart:
    """One 2-D gradient and its two clipped versions as arrows from the origin, with the norm ball and value box."""
    data = L.frame(df.assign(x0=0.0, y0=0.0), "vector")
    reach = max(float(df[["x", "y"]].abs().to_numpy().max()), threshold) * 1.15
    axis = alt.Scale(domain=[-reach, reach])
    color = alt.Color("vector:N", scale=_scale(VECTOR_COLORS, L), legend=_legend())
    tooltip = [_tip("vector:N"), _tip("x:Q", format=".4f"), _tip("y:Q", format=".4f"),
               _tip("norm:Q", format=".4f"), alt.Tooltip("angle:Q", format=".2f", title=W["charts.clip_2d.tip_angle"]),
               alt.Tooltip("turn:Q", format=".2f", title=W["charts.clip_2d.tip_turn"])]
    shafts = alt.Chart(data).mark_rule(strokeWidth=3).encode(
        x=alt.X("x0:Q", scale=axis, title=W["charts.clip_2d.x"]),
        y=alt.Y("y0:Q", scale=axis, title=W["charts.clip_2d.y"]),
        x2="x:Q", y2="y:Q", color=color, tooltip=tooltip)
    tips = alt.Chart(data).mark_point(filled=True, size=90, opacity=1).encode(x="x:Q", y="y:Q", color=color,
                                                                              tooltip=tooltip)
    angles = [2 * math.pi * k / 96 for k in range(97)]
    ball = pd.DataFrame({"x": [threshold * math.cos(a) for a in angles], "y": [threshold * math.sin(a) for a in angles],
                         "order": range(97), "shape": W("charts.clip_2d.ball", threshold=threshold)})
    t = threshold
    box = pd.DataFrame({"x": [-t, t, t, -t, -t], "y": [-t, -t, t, t, -t], "order": range(5),
                        "shape": W("charts.clip_2d.box", threshold=threshold)})
    outline = alt.Chart(pd.concat([ball, box])).mark_line(strokeDash=[3, 3]).encode(
        x="x:Q", y="y:Q", order="order:Q", detail="shape:N", tooltip=[_tip("shape:N")],
        color=alt.value(OKABE_ITO["grey"]))
    # A square of fixed size, so the norm ball stays round: a number, not the column's width, with "pad" sizing
    # (a one-panel concatenation under "fit" sizing was drawn 0 px wide on the page and in its SVG).
    return alt.layer(outline, shafts, tips).properties(
        width=SQUARE, height=SQUARE, autosize=alt.AutoSizeParams(type="pad"),
        title=W["charts.clip_2d.title"])


NET_COLORS = {"plain": OKABE_ITO["vermillion"], "residual + LayerNorm": OKABE_ITO["green"]}


def residual_chart(df: pd.DataFrame, activation: str, gain: float) -> alt.LayerChart:
    """Per layer, log scale: the back-propagated signal of the plain net and of the residual net, same weights."""
    data = chartable(df).query("signal > 0")
    lines = alt.Chart(L.frame(data, "net")).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=alt.X("layer:Q", title=W["charts.residual.x"], axis=alt.Axis(tickMinStep=1)),
        y=_log_y("signal:Q", W["charts.residual.y"]),
        color=alt.Color("net:N", scale=_scale(NET_COLORS, L), legend=_legend(W["charts.residual.legend"])),
        tooltip=[_tip("net:N"), _tip("layer:Q"),
                 alt.Tooltip("signal:Q", format=".3e", title=W["charts.residual.tip_signal"]),
                 alt.Tooltip("weight_grad_norm:Q", format=".3e", title=W["charts.residual.tip_weight"])],
    )
    return alt.layer(lines, *_float32_rule(data.signal.max() if len(data) else 0.0)).properties(
        title=W("charts.residual.title", activation=L(activation), gain=gain), width=WIDTH, height=HEIGHT)


def survival_chart(curves: pd.DataFrame) -> alt.LayerChart:
    """Loss on clean data per step, with no guard, skipping non-finite steps, and torch.amp.GradScaler."""
    names = {g: W[f"charts.survival.{g}"] for g in GUARD_COLORS}  # a run by its guard: "no guard", ...
    named = curves.assign(run=curves.guard.map(names), skipped=curves.skipped.astype(int))
    data = chartable(named).query("loss > 0")
    colors = {names[g]: c for g, c in GUARD_COLORS.items()}
    tooltip = [_tip("run:N"), _tip("step:Q"), _tip("loss:Q", format=".4g"),
               alt.Tooltip("skipped:Q", title=W["charts.survival.tip_skipped"])]
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title=W["charts.survival.x"]),
        y=_log_y("loss:Q", W["charts.survival.y"]),
        color=alt.Color("run:N", scale=_scale(colors), legend=_legend(W["charts.survival.legend"])),
        tooltip=tooltip,
    )
    # the three runs coincide until the corrupt batch: the widest line at the bottom, the dashed one on top
    lines = base.mark_line().encode(
        strokeWidth=alt.StrokeWidth("run:N", scale=alt.Scale(domain=list(colors), range=[6, 3, 2]), legend=None),
        strokeDash=alt.StrokeDash("run:N", scale=alt.Scale(domain=list(colors), range=[[1, 0], [1, 0], [6, 4]]),
                                  legend=None))
    skips = base.transform_filter("datum.skipped == 1").mark_point(shape="cross", size=140, filled=True)
    last = data[data.guard.isin(first_nonfinite(curves, "loss", by="guard"))].groupby("guard").tail(1)
    ends = alt.Chart(last.assign(label=W["charts.survival.nan"])).mark_point(
        shape="triangle-down", size=160, filled=True, color=OKABE_ITO["vermillion"]).encode(
        x="step:Q", y="loss:Q", tooltip=[_tip("run:N"), _tip("step:Q"), _tip("label:N")])
    poison = alt.Chart(pd.DataFrame({"step": [POISON_STEP], "label": [W["charts.survival.poison"]]})).mark_rule(
        strokeDash=[6, 3], color=OKABE_ITO["grey"]).encode(x="step:Q", tooltip=[_tip("label:N"), _tip("step:Q")])
    return alt.layer(poison, lines, skips, ends).properties(title=W["charts.survival.title"], width=WIDTH,
                                                             height=HEIGHT)


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
