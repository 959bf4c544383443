"""Figures of the multi-objective page. Every builder takes the DataFrame its core function returns."""

from __future__ import annotations

import functools

import altair as alt
import numpy as np
import pandas as pd

import core.multi_objective as core
from content import words
from core.charts import COLORS, HEIGHT, OKABE_ITO, WIDTH, Labels, chartable, log_axis, vertical_marker
from core.controls import find
from core.figures import Figure

W = words("multi_objective")
L = Labels("multi_objective")  # variants, runs and methods keep their ids in the data; charts show their labels

# The learner's four loops, and the six ways of combining two gradients: one colour each on this page.
# Blue and vermillion stay SGD's and Adam's, as on every page.
VARIANT_COLORS = {"loss1_only": OKABE_ITO["black"], "detached": OKABE_ITO["sky"], "maximize": OKABE_ITO["purple"],
                  "bounded": OKABE_ITO["green"], "target": OKABE_ITO["orange"]}
METHOD_COLORS = {"fixed": OKABE_ITO["black"], "initial": OKABE_ITO["orange"], "unit_norm": OKABE_ITO["sky"],
                 "uncertainty": OKABE_ITO["green"], "pcgrad": OKABE_ITO["purple"], "mgda": OKABE_ITO["yellow"]}
RUN_COLORS = {"exact": OKABE_ITO["black"], "sgd": COLORS["sgd"], "adam": COLORS["adam"]}
FRONT = "true trade-off"
FLOOR = 1e-12  # a loss of exactly 0 is drawn here on a log axis


# Label a log axis at whole decades only, however many decades it spans.
DECADES = "abs(log(datum.value) / LN10 - round(log(datum.value) / LN10)) < 1e-6 ? format(datum.value, '.0e') : ''"


def _is(field: str, value: str, op: str = "==") -> str:
    """A filter on a labelled field: the label of the id value, quoted for a Vega expression."""
    label = str(L(value)).replace("\\", "\\\\").replace("'", "\\'")
    return f"datum.{field} {op} '{label}'"


def _tip(shorthand: str, key: str | None = None, **kwargs) -> alt.Tooltip | str:
    """A tooltip field titled from content (charts.tips.<key>); where that title is the field's name, none is set."""
    field = shorthand.split(":")[0]
    title = W[f"charts.tips.{key or field}"]
    if title != field:
        kwargs["title"] = title
    return alt.Tooltip(shorthand, **kwargs) if kwargs else shorthand


def _log(field: str, title: str, domain: list[float] | None = None, decades: bool = True) -> dict:
    scale = alt.Scale(type="log", **({"domain": domain} if domain else {}))
    axis = alt.Axis(labelExpr=DECADES, gridOpacity=0.5) if decades else alt.Axis(format="~g")
    return {"field": field, "type": "quantitative", "scale": scale, "title": title, "axis": axis}


def _scale(colors: dict[str, str], title: str | None = None, legend: bool = True, labels: bool = True) -> dict:
    domain = L.domain(colors) if labels else list(colors)
    return {"scale": alt.Scale(domain=domain, range=list(colors.values())), "title": title,
            "legend": alt.Legend(orient="bottom", columns=4, labelLimit=320) if legend else None}


def seed_loss1_chart(runs: pd.DataFrame) -> alt.Chart:
    """loss1 per step for the learner's four loops; the detached run (dashed) lies on the loss1-only run."""
    data = chartable(runs[["variant", "step", "loss1"]]).assign(shown=lambda d: d.loss1.clip(lower=FLOOR))
    dash = {v: [6, 4] if v == "detached" else [1, 0] for v in VARIANT_COLORS}
    return alt.Chart(L.frame(data, "variant")).mark_line().encode(
        x=alt.X("step:Q", title=W["charts.seed_loss1.x"]),
        y=alt.Y(**_log("shown", W("charts.seed_loss1.y", floor=FLOOR))),
        color=alt.Color("variant:N", **_scale(VARIANT_COLORS, W["charts.seed_loss1.legend"])),
        strokeDash=alt.StrokeDash("variant:N", scale=alt.Scale(domain=L.domain(dash), range=list(dash.values())),
                                  legend=None),
        tooltip=[_tip("variant:N"), _tip("step:Q"), _tip("loss1:Q", format=".6g")],
    ).properties(title=W["charts.seed_loss1.title"], width=WIDTH, height=HEIGHT)


def seed_loss2_chart(runs: pd.DataFrame) -> alt.Chart:
    """loss2, the sum of every parameter, per step: maximised it climbs for as long as training runs."""
    data = chartable(runs[["variant", "step", "loss2"]])
    return alt.Chart(L.frame(data, "variant")).mark_line().encode(
        x=alt.X("step:Q", title=W["charts.seed_loss2.x"]),
        y=alt.Y("loss2:Q", title=W["charts.seed_loss2.y"]),
        color=alt.Color("variant:N", **_scale(VARIANT_COLORS, W["charts.seed_loss2.legend"])),
        tooltip=[_tip("variant:N"), _tip("step:Q"), _tip("loss2:Q", format=".4f")],
    ).properties(title=W["charts.seed_loss2.title"], width=WIDTH, height=HEIGHT)


def _at(df: pd.DataFrame, alpha: float) -> pd.DataFrame:
    return df[np.isclose(df.alpha, alpha, rtol=1e-6)]


def tradeoff_chart(sweep: pd.DataFrame, alpha: float, scale: float) -> alt.LayerChart:
    """The exact trade-off (each point one alpha) in the (loss1, loss2) plane; the reader's alpha and the
    points SGD and Adam reached there; the last point SGD can reach."""
    data = chartable(sweep).assign(yours=lambda d: np.isclose(d.alpha, alpha, rtol=1e-6) & d.run.isin(RUN_COLORS),
                                   label=lambda d: np.where(d.run == "sgd limit", W["charts.tradeoff.limit"], ""))
    tip = [_tip("run:N"), _tip("alpha:Q", format=".3g"), _tip("loss1:Q", format=".4g"),
           _tip("loss2:Q", format=".4g")]
    base = alt.Chart().encode(x=alt.X("loss1:Q", scale=alt.Scale(type="log"), title=W["charts.tradeoff.x"]),
                              y=alt.Y(**_log("loss2", W["charts.tradeoff.y"])), tooltip=tip)
    grey = OKABE_ITO["grey"]
    curve = base.transform_filter(_is("run", "exact")).mark_line(
        color=grey, point=alt.OverlayMarkDef(size=25, color=grey)).encode(order="alpha:Q")
    sizes = {"exact": 420, "sgd": 150, "adam": 60}  # nested, so that three points in one place all show
    points = base.transform_filter("datum.yours").mark_point(filled=False, strokeWidth=3).encode(
        color=alt.Color("run:N", **_scale(RUN_COLORS, W("charts.tradeoff.legend", alpha=alpha))),
        shape=alt.Shape("run:N", scale=alt.Scale(domain=L.domain(RUN_COLORS), range=["circle", "square", "diamond"]),
                        legend=None),
        size=alt.Size("run:N", scale=alt.Scale(domain=L.domain(sizes), range=list(sizes.values())), legend=None))
    limit = base.transform_filter(_is("run", "sgd limit"))
    cross = limit.mark_point(shape="cross", size=200, color=COLORS["sgd"], filled=True)
    text = limit.mark_text(align="left", dx=10, dy=-8, color=COLORS["sgd"]).encode(text="label:N")
    return alt.layer(curve, cross, text, points, data=L.frame(data, "run")).properties(
        title=W("charts.tradeoff.title", scale=scale), width=WIDTH, height=HEIGHT)


def alpha_sweep_chart(sweep: pd.DataFrame, alpha: float, scale: float) -> alt.LayerChart:
    """loss1 at the end against alpha: the exact optimum, SGD and Adam; the reader's alpha and SGD's limit."""
    data = chartable(sweep).assign(label=lambda d: np.where(d.run == "sgd limit", W["charts.alpha_sweep.limit"], ""))
    lines = alt.Chart().transform_filter(_is("run", "sgd limit", "!=")).mark_line(
        point=alt.OverlayMarkDef(size=20)).encode(
        x=log_axis("alpha:Q", W["charts.alpha_sweep.x"]),
        y=alt.Y("loss1:Q", title=W["charts.alpha_sweep.y"]),
        color=alt.Color("run:N", **_scale(RUN_COLORS, W["charts.alpha_sweep.legend"])),
        strokeDash=alt.StrokeDash("run:N", scale=alt.Scale(domain=L.domain(RUN_COLORS),
                                                           range=[[1, 0], [4, 3], [1, 3]]),
                                  legend=None),
        tooltip=[_tip("run:N"), _tip("alpha:Q", format=".3g"), _tip("loss1:Q", format=".4g"),
                 _tip("loss2:Q", format=".4g")],
    )
    rule = alt.Chart().transform_filter(_is("run", "sgd limit")).encode(
        x="alpha:Q", tooltip=[alt.Tooltip("alpha:Q", format=".3g", title=W["charts.alpha_sweep.tip_limit"])])
    text = rule.mark_text(align="left", dx=4, dy=14, baseline="top", color=COLORS["sgd"]).encode(
        text="label:N", y=alt.value(0))
    marker = vertical_marker(alpha, W("charts.alpha_sweep.marker", alpha=alpha))
    return alt.layer(alt.layer(lines, rule.mark_rule(color=COLORS["sgd"], strokeDash=[2, 2]), text,
                               data=L.frame(data, "run")), marker).properties(
        title=W("charts.alpha_sweep.title", scale=scale), width=WIDTH, height=HEIGHT)


def _thin(df: pd.DataFrame) -> pd.DataFrame:
    """Every step of the first 20, then every 4th: the curves keep their shape at a fraction of the points."""
    return df[(df.step <= 20) | (df.step % 4 == 0) | (df.step == df.step.max())]


def conflict_chart(run: pd.DataFrame) -> alt.VConcatChart:
    """For the fixed-weight run: both gradient norms (log) and the cosine between them, per step."""
    data = _thin(chartable(run[run.method == "fixed"][["step", "norm1", "norm2", "cosine"]]))
    names = {"norm1": W["charts.conflict.norm1"], "norm2": W["charts.conflict.norm2"]}
    quoted = {k: v.replace("\\", "\\\\").replace("'", "\\'") for k, v in names.items()}
    x = alt.X("step:Q", title=W["charts.conflict.x"], axis=alt.Axis(tickMinStep=1))
    top = alt.Chart(data).transform_fold(list(names), as_=["which", "norm"]).transform_calculate(
        gradient=f"datum.which == 'norm1' ? '{quoted['norm1']}' : '{quoted['norm2']}'").mark_line().encode(
        x=x, y=alt.Y(**_log("norm", W["charts.conflict.y"])),
        color=alt.Color("gradient:N", **_scale({names["norm1"]: OKABE_ITO["orange"],
                                                names["norm2"]: OKABE_ITO["purple"]}, W["charts.conflict.legend"],
                                               labels=False)),
        tooltip=[_tip("gradient:N"), _tip("step:Q"), _tip("norm:Q", type="quantitative", format=".4g")],
    ).properties(width=WIDTH, height=HEIGHT * 0.6)
    line = alt.Chart(data).mark_line(color=OKABE_ITO["black"]).encode(
        x=x, y=alt.Y("cosine:Q", scale=alt.Scale(domain=[-1, 1]), title=W["charts.conflict.y_cosine"]),
        tooltip=[_tip("step:Q"), _tip("cosine:Q", format=".4f")])
    zero = alt.Chart(data).mark_rule(strokeDash=[4, 3], color=OKABE_ITO["grey"]).encode(
        y=alt.datum(0), tooltip=alt.value(W["charts.conflict.tip_zero"]))
    return alt.vconcat(top, alt.layer(line, zero).properties(width=WIDTH, height=HEIGHT * 0.6)).properties(
        title=W["charts.conflict.title"])


def trajectories_chart(runs: pd.DataFrame) -> alt.LayerChart:
    """Each method's path in the (loss1, loss2) plane from the same start, over the exact trade-off curve."""
    data = _thin(chartable(runs[["method", "step", "loss1", "loss2"]]))
    paths = data[data.method != FRONT]
    data = data.assign(end=(data.method != FRONT) & (data.step == paths.step.max()))
    front, start = data[data.method == FRONT], paths[paths.step == 0][["loss1", "loss2"]].max()
    box = {k: [float(front[k].min()) / 2, float(max(front[k].max(), start[k])) * 4] for k in ("loss1", "loss2")}
    tip = [_tip("method:N"), _tip("step:Q"), _tip("loss1:Q", format=".4g"), _tip("loss2:Q", format=".4g")]
    base = alt.Chart().encode(
        x=alt.X(**_log("loss1", W["charts.trajectories.x"], box["loss1"], decades=False)),
        y=alt.Y(**_log("loss2", W["charts.trajectories.y"], box["loss2"], decades=False)),
        order="step:Q", tooltip=tip)
    curve = base.transform_filter(_is("method", FRONT)).mark_line(
        color=OKABE_ITO["grey"], strokeWidth=6, opacity=0.4)
    color = alt.Color("method:N", **_scale(METHOD_COLORS, W["charts.trajectories.legend"]))
    lines = base.transform_filter(_is("method", FRONT, "!=")).mark_line(strokeWidth=2, clip=True).encode(
        color=color)
    ends = base.transform_filter("datum.end").mark_point(size=120, filled=True, stroke=OKABE_ITO["black"],
                                                         clip=True).encode(color=color)
    return alt.layer(curve, lines, ends, data=L.frame(data, "method")).properties(
        title=W["charts.trajectories.title"], width=WIDTH, height=HEIGHT)


def final_chart(runs: pd.DataFrame) -> alt.LayerChart:
    """Both task losses at the last step, method by method, joined by a rule (a diverged run has no marks)."""
    last = runs[(runs.method != FRONT) & (runs.step == runs.step.max())]
    data = chartable(last.melt(id_vars="method", value_vars=["loss1", "loss2"], var_name="task", value_name="loss"))
    x = alt.X("method:N", sort=L.domain(METHOD_COLORS), title=None, axis=alt.Axis(labelAngle=0))
    span = alt.Chart().mark_rule(color=OKABE_ITO["grey"], strokeWidth=2).encode(
        x=x, y=alt.Y("min(loss):Q", scale=alt.Scale(type="log")), y2="max(loss):Q",
        tooltip=[_tip("method:N"), alt.Tooltip("min(loss):Q", format=".4g", title=W["charts.final.tip_lower"]),
                 alt.Tooltip("max(loss):Q", format=".4g", title=W["charts.final.tip_higher"])])
    dots = alt.Chart().mark_point(filled=True, size=140, opacity=1).encode(
        x=x, y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title=W["charts.final.y"]),
        tooltip=[_tip("method:N"), _tip("task:N"), _tip("loss:Q", format=".4g")],
        color=alt.Color("task:N", **_scale({"loss1": OKABE_ITO["orange"], "loss2": OKABE_ITO["purple"]},
                                           W["charts.final.legend"], labels=False)))
    return alt.layer(span, dots, data=L.frame(data, "method")).properties(
        title=W["charts.final.title"], width=WIDTH, height=HEIGHT)


def weights_chart(runs: pd.DataFrame) -> alt.Chart:
    """The weight each method puts on 10^m · loss2 relative to loss1, per step (PCGrad projects: no weight)."""
    data = _thin(chartable(runs[runs.method != FRONT][["method", "step", "weight2"]]).query("weight2 > 0"))
    return alt.Chart(L.frame(data, "method")).mark_line().encode(
        x=alt.X("step:Q", title=W["charts.weights.x"]),
        y=alt.Y(**_log("weight2", W["charts.weights.y"])),
        color=alt.Color("method:N", **_scale(METHOD_COLORS, W["charts.weights.legend"])),
        tooltip=[_tip("method:N"), _tip("step:Q"), alt.Tooltip("weight2:Q", format=".3g",
                                                               title=W["charts.weights.tip_weight"])],
    ).properties(title=W["charts.weights.title"], width=WIDTH, height=HEIGHT)


# The page's figures, by name: what the page draws and what the export writes (core/figures.py).
# Each data function takes the page's settings by their control keys; every exponent k means 10^k.
# Parts of an experiment that a setting does not touch are kept in a small bounded cache, so moving it
# reruns only what it changes (callers only read the frames these return).
@functools.lru_cache(maxsize=16)
def _seed_group(variants: tuple[str, ...], alpha: float, seed: int) -> dict[str, pd.DataFrame]:
    runs = core.seed_examples(variants, steps=core.SEED_STEPS, alpha=alpha, seed=seed)
    return {v: run.assign(variant=v) for v, run in runs.items()}


def _seed_runs(max_alpha_exp: int, seed: int) -> pd.DataFrame:
    # loss1_only and detached never read alpha: one run of the two serves every alpha
    runs = {**_seed_group(("loss1_only", "detached"), 1.0, seed),
            **_seed_group(("maximize", "bounded", "target"), 10.0**max_alpha_exp, seed)}
    return pd.concat([runs[v] for v in core.VARIANTS], ignore_index=True)


SCALE = find(core.CONTROLS, "scale_exp")
SCALE_EXPS = range(int(SCALE.lo), int(SCALE.hi) + 1)  # every exponent the slider offers


@functools.lru_cache(maxsize=4)
def _sweeps(seed: int) -> dict[int, pd.DataFrame]:
    # Every scale the slider offers, trained together (core.tradeoff_sweeps): moving the slider only looks one up.
    return dict(zip(SCALE_EXPS, core.tradeoff_sweeps([10.0**k for k in SCALE_EXPS], seed=seed)))


def _sweep(scale_exp: int, seed: int) -> pd.DataFrame:
    scale = 10.0**scale_exp
    limit = core.sgd_alpha_limit(scale, seed=seed)
    edge = core.tradeoff_curve([limit * scale], seed=seed).assign(alpha=limit, run="sgd limit")
    return pd.concat([_sweeps(seed)[scale_exp], edge], ignore_index=True)


@functools.lru_cache(maxsize=16)
def _balance_part(methods: tuple[str, ...], mismatch_exp: int, alpha: float, optimizer: str, seed: int) -> pd.DataFrame:
    return core.balance_run(mismatch=10.0**mismatch_exp, alpha=alpha, optimizer=optimizer, seed=seed, methods=methods)


def _balance(mismatch_exp: int, task_alpha_exp: int, optimizer: str, seed: int) -> pd.DataFrame:
    # Each method's row is an independent run, so only "fixed", the one that reads alpha, reruns when it moves.
    fixed = _balance_part(("fixed",), mismatch_exp, 10.0**task_alpha_exp, optimizer, seed)
    others = _balance_part(core.METHODS[1:], mismatch_exp, 1.0, optimizer, seed)
    front = core.pareto_front(seed=seed).rename(columns={"lam": "step"}).assign(method=FRONT)
    return pd.concat([fixed, others, front], ignore_index=True)


BALANCE = ("mismatch_exp", "task_alpha_exp", "optimizer", "seed")
FIGURES: dict[str, Figure] = {
    "seed_loss1": Figure(("max_alpha_exp", "seed"), _seed_runs, lambda df, s: seed_loss1_chart(df), experiment="seed"),
    "seed_loss2": Figure(("max_alpha_exp", "seed"), _seed_runs, lambda df, s: seed_loss2_chart(df), experiment="seed"),
    "tradeoff": Figure(("scale_exp", "seed"), _sweep,
                       lambda df, s: tradeoff_chart(df, 10.0 ** s["alpha_exp"], 10.0 ** s["scale_exp"]),
                       ("alpha_exp",), "tradeoff"),
    "alpha_sweep": Figure(("scale_exp", "seed"), _sweep,
                          lambda df, s: alpha_sweep_chart(df, 10.0 ** s["alpha_exp"], 10.0 ** s["scale_exp"]),
                          ("alpha_exp",), "tradeoff"),
    "conflict": Figure(BALANCE, _balance, lambda df, s: conflict_chart(df), experiment="conflict"),
    "trajectories": Figure(BALANCE, _balance, lambda df, s: trajectories_chart(df), experiment="balance"),
    "final": Figure(BALANCE, _balance, lambda df, s: final_chart(df), experiment="balance"),
    "weights": Figure(BALANCE, _balance, lambda df, s: weights_chart(df), experiment="balance"),
}
