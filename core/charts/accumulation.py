"""Figures of the accumulation page. Every builder takes the DataFrame its core function returns."""

from __future__ import annotations

import functools

import altair as alt
import pandas as pd

import core.accumulation as core
from core.accumulation_clipping import CLIP_RUNS, clip_accumulation_runs
from core.accumulation_memory import EFFECTIVE_BATCH, PARTS
from core.accumulation_recipe import ABSENT, APPLIED, NEVER
from core.charts import COLORS, HEIGHT, OKABE_ITO, WIDTH, chartable, vertical_marker
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


def _color(field: str, domain, title: str | None = None, **legend) -> alt.Color:
    scale = alt.Scale(domain=list(domain), range=[PALETTE[d] for d in domain])
    legend = alt.Legend(orient="right", labelLimit=300, **legend)
    return alt.Color(f"{field}:N", title=title, scale=scale, legend=legend)


def _log_y(field: str, title: str) -> alt.Y:
    return alt.Y(f"{field}:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e"), title=title)


def zero_grad_loss_chart(runs: pd.DataFrame) -> alt.Chart:
    """The loss over steps, with and without zero_grad() before each backward()."""
    data = chartable(runs).assign(shown=lambda d: d.loss.clip(lower=FLOOR))
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("step:Q", title="step"),
        y=_log_y("shown", f"loss, MSE (0 shown at {FLOOR:.0e})"),
        color=_color("run", core.ZERO_GRAD_RUNS),
        tooltip=["run:N", "step:Q", alt.Tooltip("loss:Q", format=".4g"), alt.Tooltip("w:Q", format=".4g"),
                 alt.Tooltip("b:Q", format=".4g")],
    ).properties(title="Without zero_grad(), SGD on y = 2x swings instead of settling", width=WIDTH, height=HEIGHT)


def zero_grad_gradient_chart(runs: pd.DataFrame) -> alt.Chart:
    """The gradient step() applied against the gradient of that step's loss alone (equal when zeroed)."""
    data = chartable(runs)
    zeroed, never = core.ZERO_GRAD_RUNS
    lines = pd.concat([
        data[data.run == zeroed].assign(series="zeroed: applied = this step's", value=lambda d: d.applied),
        data[data.run == never].assign(series="never zeroed: applied (sum so far)", value=lambda d: d.applied),
        data[data.run == never].assign(series="never zeroed: this step's own", value=lambda d: d.own),
    ]).assign(shown=lambda d: d.value.clip(lower=FLOOR))
    series = list(dict.fromkeys(lines.series))
    return alt.Chart(lines).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("step:Q", title="step"),
        y=_log_y("shown", f"‖gradient‖ (0 shown at {FLOOR:.0e})"),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="right", labelLimit=300),
                        scale=alt.Scale(domain=series, range=[PALETTE[zeroed], PALETTE[never], PALETTE[never]])),
        strokeDash=alt.StrokeDash("series:N", legend=None, scale=alt.Scale(domain=series,
                                                                          range=[[1, 0], [1, 0], [4, 3]])),
        tooltip=["series:N", "step:Q", alt.Tooltip("value:Q", format=".4g", title="‖gradient‖")],
    ).properties(title=".grad keeps adding: what step() applies is every gradient so far", width=WIDTH, height=HEIGHT)


def none_vs_zero_chart(df: pd.DataFrame) -> alt.LayerChart:
    """Per optimizer: how far a parameter that got no gradient moved, with .grad None or zeros."""
    status = ["skipped: .grad is None", "stepped on zeros: moved", "stepped on zeros: did not move"]
    data = df.assign(
        zero_grad=df.set_to_none.map({"True": "zero_grad()  →  .grad = None",
                                      "False": "zero_grad(set_to_none=False)  →  zeros"}),
        status=[status[0] if g == "None" else status[1] if m > 0 else status[2] for g, m in zip(df.grad, df.moved)],
        label=[f"{m:.2e}" if m else "0" for m in df.moved])
    base = alt.Chart(data).encode(
        x=alt.X("zero_grad:N", title=None, axis=alt.Axis(labelAngle=0, labelLimit=300)),
        y=alt.Y("optimizer:N", title="optimizer", sort=list(df.optimizer.unique())),
        tooltip=["optimizer:N", "zero_grad:N", alt.Tooltip("grad:N", title=".grad before step()"),
                 alt.Tooltip("moved:Q", format=".3e", title="max |change| of the idle head"), "status:N"],
    )
    cells = base.mark_rect(stroke="white").encode(color=_color("status", status, "the idle head"))
    text = base.mark_text(fontSize=13).encode(text="label:N")
    return (cells + text).properties(title="A step with no gradient: None skips the parameter, zeros may still move it",
                                     width=WIDTH, height=HEIGHT * 2 // 3)


def error_chart(sweep: pd.DataFrame, k: int) -> alt.LayerChart:
    """Log scale: ||g_acc - g_full|| / ||g_full|| against k, one line per normalization."""
    split = {True: "k divides 24", False: "last micro-batches shorter"}
    data = chartable(sweep).assign(shown=lambda d: d.error.clip(lower=FLOOR), split=lambda d: d.even.map(split))
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=30, filled=True)).encode(
        x=alt.X("micro_batches:Q", title="k, micro-batches per optimizer step (batch of 24)",
                scale=alt.Scale(domain=[1, core.BATCH_SIZE])),
        y=_log_y("shown", f"relative error (0 shown at {FLOOR:.0e})"),
        color=_color("normalization", core.NORMALIZATIONS, "micro-batch loss"),
        tooltip=["normalization:N", alt.Tooltip("micro_batches:Q", title="k"), "split:N",
                 alt.Tooltip("error:Q", format=".3e", title="relative error")],
    )
    return (lines + vertical_marker(k, f"your k = {k}")).properties(
        title="Accumulated gradient vs one big batch: only counting every item is exact for every k",
        width=WIDTH, height=HEIGHT)


def training_chart(curves: pd.DataFrame, k: int, normalization: str) -> alt.Chart:
    """Training loss over SGD steps: one batch of 24, and k accumulated micro-batches (dashed)."""
    data = chartable(curves).assign(shown=lambda d: d.loss.clip(lower=FLOOR))
    runs = ["one batch", "accumulated"]
    names = {"one batch": "one batch of 24", "accumulated": f"{k} accumulated micro-batches, {normalization}"}
    data = data.assign(label=data.run.map(names))
    labels = [names[r] for r in runs]
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=25)).encode(
        x=alt.X("step:Q", title="SGD step (lr 0.1)"),
        y=_log_y("shown", "full-batch loss (MSE)"),
        color=alt.Color("label:N", title=None, legend=alt.Legend(orient="right", labelLimit=300),
                        scale=alt.Scale(domain=labels, range=[COLORS["sgd"], PALETTE[normalization]])),
        strokeDash=alt.StrokeDash("label:N", legend=None, scale=alt.Scale(domain=labels, range=[[1, 0], [6, 4]])),
        tooltip=[alt.Tooltip("label:N", title="run"), "step:Q", alt.Tooltip("loss:Q", format=".6g")],
    ).properties(title="Training: a dashed line on the solid one is the same run", width=WIDTH, height=HEIGHT)


def recipe_chart(ledger: pd.DataFrame) -> alt.LayerChart:
    """Heat map, window of .grad × example: the coefficient of each example's gradient, and whether it was applied."""
    data = ledger.assign(
        window=ledger.recipe + " · " + ledger.row,
        position=ledger.recipe.map({r: i for i, r in enumerate(ledger.recipe.unique())}) * 100 + ledger.order,
        label=[f"×{c:g}" if c else "" for c in ledger.coefficient],
        point=[f"x={e}, y={2 * e}" for e in ledger.example])
    order = list(data.sort_values("position").window.unique())
    base = alt.Chart(data).encode(
        x=alt.X("point:N", title="example", sort=None, axis=alt.Axis(labelAngle=0, orient="top")),
        y=alt.Y("window:N", title=None, sort=order, axis=alt.Axis(labelLimit=320)),
        tooltip=["recipe:N", alt.Tooltip("row:N", title="window"), "point:N",
                 alt.Tooltip("coefficient:Q", format=".3g", title="coefficient of its gradient"), "status:N",
                 alt.Tooltip("ratio:Q", format=".6f", title="‖applied‖ / ‖mean-loss gradient‖")],
    )
    cells = base.mark_rect(stroke="white").encode(color=_color("status", [APPLIED, NEVER, ABSENT], None))
    text = base.mark_text(fontSize=12).encode(text="label:N")
    return (cells + text).properties(
        title="Which examples reach each update: the recipe as written never applies the fifth point",
        width=WIDTH, height=30 * len(order) + 60)


def token_chart(sweep: pd.DataFrame, spread: int) -> alt.LayerChart:
    """Log scale: the token model's relative gradient error against the spread of sequence lengths."""
    data = chartable(sweep).assign(shown=lambda d: d.error.clip(lower=FLOOR))
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=30, filled=True)).encode(
        x=alt.X("spread:Q", title=f"spread of sequence lengths ({core.MEAN_LENGTH} ± spread real tokens)"),
        y=_log_y("shown", f"relative error (0 shown at {FLOOR:.0e})"),
        color=_color("normalization", core.NORMALIZATIONS[1:], "micro-batch loss"),
        tooltip=["normalization:N", "spread:Q", alt.Tooltip("error:Q", format=".3e", title="relative error"),
                 alt.Tooltip("min_tokens:Q", title="fewest real tokens in a micro-batch"),
                 alt.Tooltip("max_tokens:Q", title="most real tokens in a micro-batch")],
    )
    return (lines + vertical_marker(spread, f"your spread = {spread}")).properties(
        title="Token means per micro-batch drift from the token mean as lengths spread; counting all tokens does not",
        width=WIDTH, height=HEIGHT)


def batchnorm_chart(sweep: pd.DataFrame) -> alt.Chart:
    """Log-log: accumulation's relative gradient error against micro-batch size, with and without BatchNorm1d."""
    data = chartable(sweep).assign(shown=lambda d: d.error.clip(lower=FLOOR))
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=40, filled=True)).encode(
        x=alt.X("micro_batch_size:Q", title="micro-batch size (batch of 24, global_count)",
                scale=alt.Scale(type="log", domain=[1, core.BATCH_SIZE]),
                axis=alt.Axis(values=[1, 2, 3, 4, 6, 8, 12, 24])),
        y=_log_y("shown", f"relative error (0 shown at {FLOOR:.0e})"),
        color=_color("model", ["without BatchNorm", "with BatchNorm"], None),
        tooltip=["model:N", "micro_batch_size:Q", alt.Tooltip("micro_batches:Q", title="k"),
                 alt.Tooltip("error:Q", format=".3e", title="relative error"),
                 alt.Tooltip("updates:Q", title="running-stat updates per step"),
                 alt.Tooltip("running_moved:Q", format=".2f", title="running_mean moved, × one full pass")],
    ).properties(title="BatchNorm normalizes each micro-batch by its own statistics: accumulation is no longer exact",
                 width=WIDTH, height=HEIGHT)


def memory_chart(sweep: pd.DataFrame, k: int) -> alt.Chart:
    """Stacked bars: memory of one optimizer step over 1024 examples in k micro-batches, by part."""
    data = sweep.assign(megabytes=sweep["bytes"] / 1e6,
                        setting=[f"k = {m} × {s}" for m, s in zip(sweep.micro_batches, sweep.micro_batch_size)],
                        yours=sweep.micro_batches == k, part_order=sweep.part.map(PARTS.index))
    order = list(dict.fromkeys(data.sort_values("micro_batches").setting))
    return alt.Chart(data).mark_bar().encode(
        x=alt.X("setting:N", sort=order, title=f"{EFFECTIVE_BATCH} examples as k micro-batches × their size",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("megabytes:Q", stack="zero", title="memory (MB)"),
        color=_color("part", PARTS, None),
        order=alt.Order("part_order:Q"),
        opacity=alt.condition("datum.yours", alt.value(1.0), alt.value(0.45)),
        tooltip=["setting:N", "part:N", alt.Tooltip("megabytes:Q", format=".3f", title="MB")],
    ).properties(
        title=f"Only the activations shrink with the micro-batch (yours, k = {k}, in full colour)",
        width=WIDTH, height=HEIGHT)


CLIP_COLORS = dict(zip(CLIP_RUNS, (COLORS["sgd"], OKABE_ITO["green"], OKABE_ITO["orange"], OKABE_ITO["vermillion"])))


def clip_schedule_chart(runs: pd.DataFrame, column: str, title: str, y_title: str, log: bool) -> alt.Chart:
    """Per optimizer step, one line per way of clipping and scheduling; dashed for the one-batch reference."""
    data = chartable(runs)
    if log:
        data = data.assign(shown=lambda d: d[column].clip(lower=FLOOR))
        y = _log_y("shown", y_title)
    else:
        data = data.assign(shown=data[column])
        y = alt.Y("shown:Q", title=y_title)
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("step:Q", title="optimizer step"), y=y,
        color=alt.Color("run:N", title=None, legend=alt.Legend(orient="right", labelLimit=300),
                        scale=alt.Scale(domain=list(CLIP_COLORS), range=list(CLIP_COLORS.values()))),
        strokeDash=alt.StrokeDash("run:N", legend=None, scale=alt.Scale(
            domain=list(CLIP_COLORS), range=[[6, 4], [1, 0], [1, 0], [1, 0]])),
        tooltip=["run:N", "step:Q", alt.Tooltip("loss:Q", format=".5g"), alt.Tooltip("lr:Q", format=".4g"),
                 alt.Tooltip("grad_norm:Q", format=".4g", title="‖applied gradient‖"), "clipped:N"],
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
        clip_schedule_chart(df, "loss", "Clip and schedule once per optimizer step, and the one batch is matched",
                            "full-batch loss (MSE)", True)), experiment="clip_schedule"),
    "clip_schedule_lr": Figure(("micro_batches", "max_norm", "seed"), _clip_schedule, lambda df, s: (
        clip_schedule_chart(df, "lr", "LinearLR stepped per micro-batch reaches 0 k times too soon", "learning rate",
                            False)), experiment="clip_schedule"),
}
