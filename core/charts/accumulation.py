"""Figures of the accumulation page. Every builder takes the DataFrame its core function returns."""

from __future__ import annotations

import functools

import altair as alt
import pandas as pd

import core.accumulation as core
from content import words
from core.accumulation_clipping import CLIP_RUNS, clip_accumulation_runs
from core.accumulation_memory import EFFECTIVE_BATCH, PARTS
from core.accumulation_recipe import ABSENT, APPLIED, NEVER
from core.charts import COLORS, HEIGHT, OKABE_ITO, WIDTH, Labels, chartable, label_lines, vertical_marker
from core.figures import Figure

# Colours of this page's own things, from the shared palette. The two zero_grad runs are both SGD: blue is SGD's
# house colour, and the run that forgets zero_grad() gets the warning colour. Adam's state is Adam's colour.
PALETTE = {
    "none": OKABE_ITO["purple"], "divide_by_steps": OKABE_ITO["orange"], "global_count": OKABE_ITO["green"],
    core.ZERO_GRAD_RUNS[0]: COLORS["sgd"], core.ZERO_GRAD_RUNS[1]: OKABE_ITO["vermillion"],
    "without BatchNorm": OKABE_ITO["blue"], "with BatchNorm": OKABE_ITO["orange"],
    "parameters": OKABE_ITO["grey"], "gradients": OKABE_ITO["sky"], "Adam state": COLORS["adam"],
    PARTS[-1]: OKABE_ITO["green"],
    APPLIED: OKABE_ITO["green"], NEVER: OKABE_ITO["vermillion"], ABSENT: "#eeeeee",
    "skipped: .grad is None": OKABE_ITO["sky"], "stepped on zeros: moved": OKABE_ITO["vermillion"],
    "stepped on zeros: did not move": "#eeeeee",
}
FLOOR = 1e-12  # an exact zero on a log axis is drawn here, and the axis title says so
W = words("accumulation")  # the chart words, in the reader's language (content/<lang>/accumulation.toml [charts])
L = Labels("accumulation")  # the labels of the category ids the data keep ([charts.labels])


def _color(field: str, domain, title: str | None = None, **legend) -> alt.Color:
    """Colours by id from PALETTE; the field holds labels (L.frame), the legend shows them."""
    scale = alt.Scale(domain=L.domain(domain), range=[PALETTE[d] for d in domain])
    legend = alt.Legend(orient="right", labelLimit=300, **legend)
    return alt.Color(f"{field}:N", title=title, scale=scale, legend=legend)


def _tip(shorthand: str, **kwargs) -> str | alt.Tooltip:
    """A tooltip whose title is the field's name in the reader's language ([charts.fields]); where that is the field
    name itself (English), the title is left to Vega-Lite, which shows the field name."""
    field = shorthand.split(":")[0]
    title = W[f"charts.fields.{field}"]
    if title != field:
        kwargs["title"] = title
    return alt.Tooltip(shorthand, **kwargs) if kwargs else shorthand


def _floor(key: str) -> str:
    return W(key, floor=FLOOR)


def _log_y(field: str, title: str) -> alt.Y:
    return alt.Y(f"{field}:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e"), title=title)


def zero_grad_loss_chart(runs: pd.DataFrame) -> alt.Chart:
    """The loss over steps, with and without zero_grad() before each backward()."""
    data = L.frame(chartable(runs).assign(shown=lambda d: d.loss.clip(lower=FLOOR)), "run")
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("step:Q", title=W["charts.fields.step"]),
        y=_log_y("shown", _floor("charts.zero_grad_loss.y")),
        color=_color("run", core.ZERO_GRAD_RUNS),
        tooltip=[_tip("run:N"), _tip("step:Q"), _tip("loss:Q", format=".4g"), alt.Tooltip("w:Q", format=".4g"),
                 alt.Tooltip("b:Q", format=".4g")],
    ).properties(title=W["charts.zero_grad_loss.title"], width=WIDTH, height=HEIGHT)


def zero_grad_gradient_chart(runs: pd.DataFrame) -> alt.Chart:
    """The gradient step() applied against the gradient of that step's loss alone (equal when zeroed)."""
    data = chartable(runs)
    zeroed, never = core.ZERO_GRAD_RUNS
    lines = pd.concat([
        data[data.run == zeroed].assign(series=W["charts.zero_grad_gradient.zeroed"], value=lambda d: d.applied),
        data[data.run == never].assign(series=W["charts.zero_grad_gradient.never_applied"],
                                       value=lambda d: d.applied),
        data[data.run == never].assign(series=W["charts.zero_grad_gradient.never_own"], value=lambda d: d.own),
    ]).assign(shown=lambda d: d.value.clip(lower=FLOOR))
    series = list(dict.fromkeys(lines.series))
    return alt.Chart(lines).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("step:Q", title=W["charts.fields.step"]),
        y=_log_y("shown", _floor("charts.zero_grad_gradient.y")),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="right", labelLimit=300),
                        scale=alt.Scale(domain=series, range=[PALETTE[zeroed], PALETTE[never], PALETTE[never]])),
        strokeDash=alt.StrokeDash("series:N", legend=None, scale=alt.Scale(domain=series,
                                                                          range=[[1, 0], [1, 0], [4, 3]])),
        tooltip=[_tip("series:N"), _tip("step:Q"),
                 alt.Tooltip("value:Q", format=".4g", title=W["charts.zero_grad_gradient.tip_value"])],
    ).properties(title=W["charts.zero_grad_gradient.title"], width=WIDTH, height=HEIGHT)


def none_vs_zero_chart(df: pd.DataFrame) -> alt.LayerChart:
    """Per optimizer: how far a parameter that got no gradient moved, with .grad None or zeros."""
    status = ["skipped: .grad is None", "stepped on zeros: moved", "stepped on zeros: did not move"]
    columns = {"True": W["charts.none_vs_zero.set_to_none"], "False": W["charts.none_vs_zero.zeros"]}
    data = L.frame(df.assign(
        zero_grad=df.set_to_none.map(columns),
        status=[status[0] if g == "None" else status[1] if m > 0 else status[2] for g, m in zip(df.grad, df.moved)],
        label=[f"{m:.2e}" if m else "0" for m in df.moved]), "optimizer", "grad", "status")
    base = alt.Chart(data).encode(
        x=alt.X("zero_grad:N", title=None, axis=alt.Axis(labelAngle=0, labelExpr=label_lines(columns.values()))),
        y=alt.Y("optimizer:N", title=W["charts.fields.optimizer"], sort=L.domain(df.optimizer.unique())),
        tooltip=[_tip("optimizer:N"), _tip("zero_grad:N"),
                 alt.Tooltip("grad:N", title=W["charts.none_vs_zero.tip_grad"]),
                 alt.Tooltip("moved:Q", format=".3e", title=W["charts.none_vs_zero.tip_moved"]), _tip("status:N")],
    )
    cells = base.mark_rect(stroke="white").encode(color=_color("status", status, W["charts.none_vs_zero.legend"]))
    text = base.mark_text(fontSize=13).encode(text="label:N")
    return (cells + text).properties(title=W["charts.none_vs_zero.title"], width=WIDTH, height=HEIGHT * 2 // 3)


def error_chart(sweep: pd.DataFrame, k: int) -> alt.LayerChart:
    """Log scale: ||g_acc - g_full|| / ||g_full|| against k, one line per normalization."""
    split = {True: W("charts.error_vs_k.even", batch_size=core.BATCH_SIZE), False: W["charts.error_vs_k.uneven"]}
    data = chartable(sweep).assign(shown=lambda d: d.error.clip(lower=FLOOR), split=lambda d: d.even.map(split))
    lines = alt.Chart(L.frame(data, "normalization")).mark_line(point=alt.OverlayMarkDef(size=30, filled=True)).encode(
        x=alt.X("micro_batches:Q", title=W("charts.error_vs_k.x", batch_size=core.BATCH_SIZE),
                scale=alt.Scale(domain=[1, core.BATCH_SIZE])),
        y=_log_y("shown", _floor("charts.common.relative_error_y")),
        color=_color("normalization", core.NORMALIZATIONS, W["charts.common.micro_batch_loss"]),
        tooltip=[_tip("normalization:N"), alt.Tooltip("micro_batches:Q", title="k"), _tip("split:N"),
                 alt.Tooltip("error:Q", format=".3e", title=W["charts.common.relative_error"])],
    )
    return (lines + vertical_marker(k, W("charts.error_vs_k.marker", k=k))).properties(
        title=W["charts.error_vs_k.title"], width=WIDTH, height=HEIGHT)


def training_chart(curves: pd.DataFrame, k: int, normalization: str) -> alt.Chart:
    """Training loss over SGD steps: one batch of 24, and k accumulated micro-batches (dashed)."""
    data = chartable(curves).assign(shown=lambda d: d.loss.clip(lower=FLOOR))
    runs = ["one batch", "accumulated"]
    names = {"one batch": W("charts.training.one_batch", batch_size=core.BATCH_SIZE),
             "accumulated": W("charts.training.accumulated", k=k, normalization=L(normalization))}
    data = data.assign(label=data.run.map(names))
    labels = [names[r] for r in runs]
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=25)).encode(
        x=alt.X("step:Q", title=W["charts.training.x"]),
        y=_log_y("shown", W["charts.common.full_batch_loss"]),
        color=alt.Color("label:N", title=None, legend=alt.Legend(orient="right", labelLimit=300),
                        scale=alt.Scale(domain=labels, range=[COLORS["sgd"], PALETTE[normalization]])),
        strokeDash=alt.StrokeDash("label:N", legend=None, scale=alt.Scale(domain=labels, range=[[1, 0], [6, 4]])),
        tooltip=[alt.Tooltip("label:N", title=W["charts.fields.run"]), _tip("step:Q"), _tip("loss:Q", format=".6g")],
    ).properties(title=W["charts.training.title"], width=WIDTH, height=HEIGHT)


def recipe_chart(ledger: pd.DataFrame) -> alt.LayerChart:
    """Heat map, window of .grad × example: the coefficient of each example's gradient, and whether it was applied."""
    # each window of .grad, named from the data: its epoch and, if applied, its update's number in its recipe
    windows = ledger.drop_duplicates(["recipe", "order"]).sort_values(["recipe", "order"], kind="stable")
    updates = (windows.fate == APPLIED).groupby(windows.recipe).cumsum()
    names = {(r, o): W("charts.recipe.update", epoch=e, update=u) if f == APPLIED else W("charts.recipe.never", epoch=e)
             for r, o, e, f, u in zip(windows.recipe, windows.order, windows.epoch, windows.fate, updates)}
    rows = [names[r, o] for r, o in zip(ledger.recipe, ledger.order)]
    data = L.frame(ledger.assign(
        row=rows,
        window=[W("charts.recipe.window", recipe=L(r), row=w) for r, w in zip(ledger.recipe, rows)],
        position=ledger.recipe.map({r: i for i, r in enumerate(ledger.recipe.unique())}) * 100 + ledger.order,
        label=[f"×{c:g}" if c else "" for c in ledger.coefficient],
        point=[f"x={e}, y={2 * e}" for e in ledger.example]), "recipe", "status")
    order = list(data.sort_values("position").window.unique())
    base = alt.Chart(data).encode(
        x=alt.X("point:N", title=W["charts.recipe.x"], sort=None, axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("window:N", title=None, sort=order, axis=alt.Axis(labelLimit=320)),
        tooltip=[_tip("recipe:N"), alt.Tooltip("row:N", title=W["charts.recipe.tip_window"]), _tip("point:N"),
                 alt.Tooltip("coefficient:Q", format=".3g", title=W["charts.recipe.tip_coefficient"]), _tip("status:N"),
                 alt.Tooltip("ratio:Q", format=".6f", title=W["charts.recipe.tip_ratio"])],
    )
    cells = base.mark_rect(stroke="white").encode(color=_color("status", [APPLIED, NEVER, ABSENT], None))
    text = base.mark_text(fontSize=12).encode(text="label:N")
    return (cells + text).properties(title=W["charts.recipe.title"], width=WIDTH, height=30 * len(order) + 60)


def token_chart(sweep: pd.DataFrame, spread: int) -> alt.LayerChart:
    """Log scale: the token model's relative gradient error against the spread of sequence lengths."""
    data = chartable(sweep).assign(shown=lambda d: d.error.clip(lower=FLOOR))
    lines = alt.Chart(L.frame(data, "normalization")).mark_line(point=alt.OverlayMarkDef(size=30, filled=True)).encode(
        x=alt.X("spread:Q", title=W("charts.tokens.x", mean=core.MEAN_LENGTH)),
        y=_log_y("shown", _floor("charts.common.relative_error_y")),
        color=_color("normalization", core.NORMALIZATIONS[1:], W["charts.common.micro_batch_loss"]),
        tooltip=[_tip("normalization:N"), _tip("spread:Q"),
                 alt.Tooltip("error:Q", format=".3e", title=W["charts.common.relative_error"]),
                 alt.Tooltip("min_tokens:Q", title=W["charts.tokens.tip_min"]),
                 alt.Tooltip("max_tokens:Q", title=W["charts.tokens.tip_max"])],
    )
    return (lines + vertical_marker(spread, W("charts.tokens.marker", spread=spread))).properties(
        title=W["charts.tokens.title"], width=WIDTH, height=HEIGHT)


def batchnorm_chart(sweep: pd.DataFrame) -> alt.Chart:
    """Log-log: accumulation's relative gradient error against micro-batch size, with and without BatchNorm1d."""
    data = L.frame(chartable(sweep).assign(shown=lambda d: d.error.clip(lower=FLOOR)), "model")
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=40, filled=True)).encode(
        x=alt.X("micro_batch_size:Q", title=W("charts.batchnorm.x", batch_size=core.BATCH_SIZE),
                scale=alt.Scale(type="log", domain=[1, core.BATCH_SIZE]),
                axis=alt.Axis(values=[1, 2, 3, 4, 6, 8, 12, 24])),
        y=_log_y("shown", _floor("charts.common.relative_error_y")),
        color=_color("model", ["without BatchNorm", "with BatchNorm"], None),
        tooltip=[_tip("model:N"), _tip("micro_batch_size:Q"), alt.Tooltip("micro_batches:Q", title="k"),
                 alt.Tooltip("error:Q", format=".3e", title=W["charts.common.relative_error"]),
                 alt.Tooltip("updates:Q", title=W["charts.batchnorm.tip_updates"]),
                 alt.Tooltip("running_moved:Q", format=".2f", title=W["charts.batchnorm.tip_running"])],
    ).properties(title=W["charts.batchnorm.title"], width=WIDTH, height=HEIGHT)


def memory_chart(sweep: pd.DataFrame, k: int) -> alt.Chart:
    """Stacked bars: memory of one optimizer step over 1024 examples in k micro-batches, by part."""
    data = L.frame(sweep.assign(
        megabytes=sweep["bytes"] / 1e6,
        setting=[f"k = {m} × {s}" for m, s in zip(sweep.micro_batches, sweep.micro_batch_size)],
        yours=sweep.micro_batches == k, part_order=sweep.part.map(PARTS.index)), "part")
    order = list(dict.fromkeys(data.sort_values("micro_batches").setting))
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("setting:N", sort=order, title=W("charts.memory.x", examples=EFFECTIVE_BATCH),
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("megabytes:Q", stack="zero", title=W["charts.memory.y"]),
        color=_color("part", PARTS, None),
        order=alt.Order("part_order:Q"),
        opacity=alt.condition("datum.yours", alt.value(1.0), alt.value(0.45)),
        tooltip=[_tip("setting:N"), _tip("part:N"),
                 alt.Tooltip("megabytes:Q", format=".3f", title=W["charts.memory.tip_mb"])],
    ).properties(title=W("charts.memory.title", k=k), width=WIDTH, height=HEIGHT)


CLIP_COLORS = dict(zip(CLIP_RUNS, (COLORS["sgd"], OKABE_ITO["green"], OKABE_ITO["orange"], OKABE_ITO["vermillion"])))


def clip_schedule_chart(runs: pd.DataFrame, column: str, title: str, y_title: str, log: bool) -> alt.Chart:
    """Per optimizer step, one line per way of clipping and scheduling; dashed for the one-batch reference."""
    data = L.frame(chartable(runs), "run")
    if log:
        data = data.assign(shown=lambda d: d[column].clip(lower=FLOOR))
        y = _log_y("shown", y_title)
    else:
        data = data.assign(shown=data[column])
        y = alt.Y("shown:Q", title=y_title)
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("step:Q", title=W["charts.clip_schedule.x"]), y=y,
        color=alt.Color("run:N", title=None, legend=alt.Legend(orient="right", labelLimit=300),
                        scale=alt.Scale(domain=L.domain(CLIP_COLORS), range=list(CLIP_COLORS.values()))),
        strokeDash=alt.StrokeDash("run:N", legend=None, scale=alt.Scale(
            domain=L.domain(CLIP_COLORS), range=[[6, 4], [1, 0], [1, 0], [1, 0]])),
        tooltip=[_tip("run:N"), _tip("step:Q"), _tip("loss:Q", format=".5g"), _tip("lr:Q", format=".4g"),
                 alt.Tooltip("grad_norm:Q", format=".4g", title=W["charts.clip_schedule.tip_grad_norm"]),
                 _tip("clipped:N")],
    ).properties(title=title, width=WIDTH, height=HEIGHT)


# The page's figures, by name: what the page draws and what the export writes (core/figures.py). The data functions
# are memoised by their arguments (bounded), so a chart redrawn for a marker does not recompute its experiment.
@functools.lru_cache(maxsize=16)
def _zero_grad(lr: float, seed: int) -> pd.DataFrame:
    return core.zero_grad_runs(lr, seed=seed)


@functools.lru_cache(maxsize=8)
def _none_vs_zero(seed: int) -> pd.DataFrame:
    return core.none_versus_zero(seed=seed)


@functools.lru_cache(maxsize=8)
def _errors(seed: int) -> pd.DataFrame:
    return core.error_sweep(seed=seed)


@functools.lru_cache(maxsize=16)
def _training(micro_batches: int, normalization: str, seed: int) -> pd.DataFrame:
    return core.training_curves(micro_batches, normalization, seed=seed)


@functools.lru_cache(maxsize=8)
def _recipe(seed: int) -> pd.DataFrame:
    return core.recipe_ledger(seed=seed)


@functools.lru_cache(maxsize=16)
def _tokens(micro_batches: int, seed: int) -> pd.DataFrame:
    return core.token_sweep(micro_batches, seed=seed)


@functools.lru_cache(maxsize=8)
def _batchnorm(seed: int) -> pd.DataFrame:
    return core.batchnorm_sweep(seed=seed)


@functools.lru_cache(maxsize=8)
def _memory(seed: int) -> pd.DataFrame:
    return core.memory_sweep(seed=seed)


@functools.lru_cache(maxsize=16)
def _clip_schedule(micro_batches: int, max_norm: float, seed: int) -> pd.DataFrame:
    return clip_accumulation_runs(micro_batches, max_norm, seed=seed)


FIGURES: dict[str, Figure] = {
    "zero_grad_loss": Figure(("lr", "seed"), _zero_grad, lambda df, s: zero_grad_loss_chart(df),
                             experiment="zero_grad"),
    "zero_grad_gradient": Figure(("lr", "seed"), _zero_grad, lambda df, s: zero_grad_gradient_chart(df),
                                 experiment="zero_grad"),
    "none_vs_zero": Figure(("seed",), _none_vs_zero, lambda df, s: none_vs_zero_chart(df), experiment="set_to_none"),
    "error_vs_k": Figure(("seed",), _errors, lambda df, s: error_chart(df, s["micro_batches"]), ("micro_batches",),
                         "normalization"),
    "training": Figure(("micro_batches", "normalization", "seed"), _training,
                       lambda df, s: training_chart(df, s["micro_batches"], s["normalization"]),
                       experiment="normalization"),
    "recipe": Figure(("seed",), _recipe, lambda df, s: recipe_chart(df), experiment="recipe"),
    "tokens": Figure(("micro_batches", "seed"), _tokens, lambda df, s: token_chart(df, s["spread"]), ("spread",),
                     "tokens"),
    "batchnorm": Figure(("seed",), _batchnorm, lambda df, s: batchnorm_chart(df), experiment="batchnorm"),
    "memory": Figure(("seed",), _memory, lambda df, s: memory_chart(df, int(s["memory_k"])), ("memory_k",), "memory"),
    "clip_schedule_loss": Figure(("micro_batches", "max_norm", "seed"), _clip_schedule, lambda df, s: (
        clip_schedule_chart(df, "loss", W["charts.clip_schedule.loss_title"], W["charts.common.full_batch_loss"],
                            True)), experiment="clip_schedule"),
    "clip_schedule_lr": Figure(("micro_batches", "max_norm", "seed"), _clip_schedule, lambda df, s: (
        clip_schedule_chart(df, "lr", W["charts.clip_schedule.lr_title"], W["charts.clip_schedule.lr_y"],
                            False)), experiment="clip_schedule"),
}
