"""Figures of the loss-scaling page. Every builder takes the DataFrame its core function returns."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

import core.loss_scaling as core
from core import loss_scaling_amp as amp
from core import loss_scaling_decay as decay
from core.charts import COLORS, HEIGHT, OKABE_ITO, WIDTH, chartable, color, log_axis, vertical_marker
from core.figures import Figure
from core.fp16 import LARGEST, SMALLEST_NORMAL, SMALLEST_SUBNORMAL


def gradient_ratio_chart(df: pd.DataFrame, scale: float) -> alt.LayerChart:
    """Per weight: how far grad(s·loss) / grad(loss) is from s, against the size of that gradient."""
    data = chartable(df.assign(abs_grad=df.grad.abs(), deviation=(df.ratio / scale - 1).abs()).query("abs_grad > 0"))
    floor = 1e-18  # an exact match (deviation 0) is drawn on the floor of the log axis
    data = data.assign(shown=data.deviation.clip(lower=floor))
    points = alt.Chart(data).mark_point(filled=True, size=40, opacity=0.8).encode(
        x=log_axis("abs_grad:Q", "|gradient of the loss| for that weight"),
        y=alt.Y("shown:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e"),
                title="|ratio / s − 1| (0 drawn at 1e-18)"),
        color=color("dtype", ["float32", "float64"], "computed in"),
        tooltip=["parameter:N", "index:Q", "dtype:N", alt.Tooltip("grad:Q", format=".3e"),
                 alt.Tooltip("ratio:Q", format=".10g", title="grad(s·loss)/grad(loss)"),
                 alt.Tooltip("deviation:Q", format=".2e", title="|ratio/s − 1|")],
    )
    eps = pd.DataFrame({"y": [2.0**-24], "label": ["half a float32 ulp (2^-24)"]})
    rule = alt.Chart(eps).mark_rule(strokeDash=[4, 4], color=OKABE_ITO["grey"]).encode(y="y:Q", tooltip=["label:N"])
    return (points + rule).properties(
        title=f"Every gradient is multiplied by s = {scale:g}: the only deviation is rounding",
        width=WIDTH, height=HEIGHT)


def update_ratio_chart(sweep: pd.DataFrame, scale: float) -> alt.LayerChart:
    """Log-log: ||update at s·loss|| / ||update at loss|| against s, one line per optimizer."""
    data = chartable(sweep).query("update_ratio > 0")
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=log_axis("scale:Q", "loss multiplied by s"),
        y=alt.Y("update_ratio:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format=".0e"),
                title="update size at s·loss ÷ update size at loss"),
        color=color("optimizer", core.OPTIMIZERS),
        tooltip=["optimizer:N", alt.Tooltip("scale:Q", format=".2e", title="s"),
                 alt.Tooltip("update_ratio:Q", format=".4g", title="update ratio")],
    )
    diagonal = pd.DataFrame({"scale": [data.scale.min(), data.scale.max()]}).assign(update_ratio=lambda d: d.scale)
    diag = alt.Chart(diagonal).mark_line(strokeDash=[2, 4], color=OKABE_ITO["grey"]).encode(
        x="scale:Q", y="update_ratio:Q", tooltip=[alt.Tooltip("scale:Q", title="ratio = s", format=".0e")])
    return (diag + lines + vertical_marker(scale, f"your s = {scale:g}")).properties(
        title="How much the step shrinks when the loss does depends on the optimizer", width=WIDTH, height=HEIGHT)


def equivalent_runs_chart(curves: pd.DataFrame) -> alt.Chart:
    """Training loss over steps: SGD at loss·s beside SGD at lr·s; Adam at loss·s beside Adam at loss."""
    data = chartable(curves).query("loss > 0")
    runs = list(dict.fromkeys(curves.run))
    return alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=25)).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title="training loss (unscaled MSE)"),
        color=alt.Color("run:N", scale=alt.Scale(
            domain=runs, range=[COLORS["sgd"], OKABE_ITO["sky"], COLORS["adam"], OKABE_ITO["orange"]]),
            legend=alt.Legend(orient="right", labelLimit=260)),
        strokeDash=alt.StrokeDash("run:N", scale=alt.Scale(domain=runs, range=[[1, 0], [6, 4], [1, 0], [6, 4]]),
                                  legend=None),
        tooltip=["run:N", "step:Q", alt.Tooltip("loss:Q", format=".6g")],
    ).properties(title="Overlaid runs: a dashed line on a solid one is the same run", width=WIDTH, height=HEIGHT)


def frozen_chart(sweep: pd.DataFrame, scale: float) -> alt.LayerChart:
    """Share of float32 weights that one step did not change at all, against s."""
    data = chartable(sweep)
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=log_axis("scale:Q", "loss multiplied by s"),
        y=alt.Y("frozen_fraction:Q", axis=alt.Axis(format="%"), title="weights unchanged by step 1"),
        color=color("optimizer", core.OPTIMIZERS),
        tooltip=["optimizer:N", alt.Tooltip("scale:Q", format=".2e", title="s"),
                 alt.Tooltip("frozen_fraction:Q", format=".1%", title="unchanged")],
    )
    return (lines + vertical_marker(scale, f"your s = {scale:g}")).properties(
        title="θ + Δθ rounds back to θ in float32 when the step is tiny beside the weight", width=WIDTH, height=HEIGHT)


FP16_LIMITS = pd.DataFrame({
    "log2": [math.log2(SMALLEST_SUBNORMAL), math.log2(SMALLEST_NORMAL), math.log2(LARGEST)],
    "limit": ["smallest subnormal 2^-24", "smallest normal 2^-14", "largest 65504"],
})


def _limit_rules(field: str) -> alt.Chart:
    return alt.Chart(FP16_LIMITS.rename(columns={"log2": field})).mark_rule(strokeDash=[4, 3]).encode(
        x=f"{field}:Q", tooltip=["limit:N", alt.Tooltip(f"{field}:Q", format=".2f", title="log2")])


def magnitude_histogram_chart(hist: pd.DataFrame, log2_scale: int) -> alt.LayerChart:
    """Histogram of |2^k · gradient| in whole log2 bins, coloured by what float16 does to each bin."""
    regions = ["flushed to zero", "subnormal (precision lost)", "normal", "overflow to inf"]
    bars = alt.Chart(hist).mark_bar().encode(
        x=alt.X("log2_lo:Q", bin=alt.Bin(step=1), title=f"log2 |2^{log2_scale} × gradient|"),
        y=alt.Y("sum(count):Q", title="number of weights"),
        color=color("region", regions, "in float16"),
        tooltip=[alt.Tooltip("log2_lo:Q", title="from 2^"), "count:Q", "region:N"],
    )
    return (bars + _limit_rules("log2_lo")).properties(
        title="Where the gradients land among float16's limits", width=WIDTH, height=HEIGHT)


def fp16_sweep_chart(sweep: pd.DataFrame, log2_scale: int) -> alt.LayerChart:
    """Fraction of non-zero gradients lost to zero or to inf when 2^k · g is cast to float16."""
    lines = alt.Chart(sweep).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("log2_scale:Q", title="loss scale, log2 (16 is GradScaler's start, 65536)"),
        y=alt.Y("fraction:Q", axis=alt.Axis(format="%"), title="share of non-zero gradients"),
        color=color("fate", ["flushed to zero", "overflow to inf"], "cast to float16"),
        tooltip=["fate:N", "log2_scale:Q", alt.Tooltip("fraction:Q", format=".3%")],
    )
    return (lines + vertical_marker(log2_scale, f"your 2^{log2_scale}")).properties(
        title="Too small a scale loses gradients to zero; too large a one, to inf", width=WIDTH, height=HEIGHT)


def grad_scaler_chart(trace: pd.DataFrame) -> alt.LayerChart:
    """GradScaler's scale over steps (log2 axis), skipped steps marked."""
    events = {True: "inf found: step skipped, scale halved", False: "clean step"}
    data = trace.assign(log2_scale=trace.scale.map(math.log2), event=trace.skipped.map(events))
    base = alt.Chart(data).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("log2_scale:Q", title="log2 of the loss scale", scale=alt.Scale(zero=False)),
        tooltip=["step:Q", alt.Tooltip("scale:Q", format=",.0f"), "event:N", alt.Tooltip("loss:Q", format=".4f")],
    )
    line = base.mark_line(interpolate="step-after", color=COLORS["sgd"])
    skips = base.transform_filter("datum.skipped").mark_point(shape="cross", size=90, color=COLORS["adam"], filled=True)
    return (line + skips).properties(
        title="torch.amp.GradScaler: doubles after clean runs, halves and skips on inf", width=WIDTH, height=HEIGHT)


DECAY_LABELS = {"adam": "Adam(weight_decay)", "adamw": "AdamW(weight_decay)", "rmsprop": "RMSprop(weight_decay)",
                "adagrad": "Adagrad(weight_decay)"}


def decay_chart(sweep: pd.DataFrame, scale: float) -> alt.LayerChart:
    """Log x: the 20-step update ratio on s·loss against s, for the coupled-decay optimizers and AdamW."""
    data = chartable(sweep).query("update_ratio > 0")
    data = data.assign(run=data.optimizer.map(DECAY_LABELS))
    domain = [DECAY_LABELS[o] for o in decay.DECAY_OPTIMIZERS]
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=25)).encode(
        x=log_axis("scale:Q", "loss multiplied by s"),
        y=alt.Y("update_ratio:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="~g"),
                title="update size at s·loss ÷ update size at loss"),
        color=alt.Color("run:N", title="optimizer", legend=alt.Legend(orient="right", labelLimit=260), scale=alt.Scale(
            domain=domain, range=[COLORS[o] for o in decay.DECAY_OPTIMIZERS])),
        tooltip=["run:N", alt.Tooltip("scale:Q", format=".0e", title="s"),
                 alt.Tooltip("update_ratio:Q", format=".4f", title="update ratio")],
    )
    one = alt.Chart(pd.DataFrame({"y": [1.0], "label": ["ratio 1: the scale ignored"]})).mark_rule(
        strokeDash=[2, 4], color=OKABE_ITO["grey"]).encode(y="y:Q", tooltip=["label:N"])
    return (one + lines + vertical_marker(scale, f"your s = {scale:g}")).properties(
        title="With coupled weight decay the loss scale reaches Adam, RMSprop and Adagrad; AdamW ignores it",
        width=WIDTH, height=HEIGHT)


CLIP_COLORS = {"no clipping": OKABE_ITO["grey"], "clip after unscale_": OKABE_ITO["green"],
               "clip the scaled gradients": OKABE_ITO["vermillion"]}


def clipping_chart(trace: pd.DataFrame, max_norm: float) -> alt.LayerChart:
    """Per optimizer step: the norm of the gradient each route stepped with, beside the threshold max_norm."""
    data = chartable(trace[["step", "route", "scale", "true_norm", "applied"]])
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=40)).encode(
        x=alt.X("step:Q", title="optimizer step (each after 4 micro-batches)", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("applied:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="~g"),
                title="‖gradient the optimizer used‖ (unscaled)"),
        color=alt.Color("route:N", title="clip_grad_norm_", legend=alt.Legend(orient="right", labelLimit=260),
                        scale=alt.Scale(domain=list(CLIP_COLORS), range=list(CLIP_COLORS.values()))),
        tooltip=["route:N", "step:Q", alt.Tooltip("scale:Q", format=",.0f", title="GradScaler scale"),
                 alt.Tooltip("true_norm:Q", format=".4g", title="true ‖gradient‖"),
                 alt.Tooltip("applied:Q", format=".4g", title="‖gradient used‖")],
    )
    rule = alt.Chart(pd.DataFrame({"y": [max_norm], "label": [f"max_norm = {max_norm:g}"]})).mark_rule(
        strokeDash=[6, 3], color=OKABE_ITO["black"]).encode(
        y="y:Q", tooltip=["label:N", alt.Tooltip("y:Q", format="g")])
    return (lines + rule).properties(
        title="Clipping the still-scaled gradients clips them to max_norm / scale", width=WIDTH, height=HEIGHT)


FORMAT_COLORS = {"float16": OKABE_ITO["vermillion"], "bfloat16": OKABE_ITO["green"]}


def formats_chart(sweep: pd.DataFrame, log2_scale: int) -> alt.LayerChart:
    """Against the loss scale 2^k: the share of gradients lost to zero or inf, in float16 and in bfloat16."""
    data = chartable(sweep)
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("log2_scale:Q", title="loss scale, log2"),
        y=alt.Y("lost:Q", axis=alt.Axis(format="%"), title="share of gradients flushed to 0 or overflowed"),
        color=alt.Color("dtype:N", title="cast to", legend=alt.Legend(orient="right"),
                        scale=alt.Scale(domain=list(FORMAT_COLORS), range=list(FORMAT_COLORS.values()))),
        tooltip=["dtype:N", "log2_scale:Q", alt.Tooltip("lost:Q", format=".3%", title="lost"),
                 alt.Tooltip("rel_error:Q", format=".2e", title="median relative rounding error")],
    )
    return (lines + vertical_marker(log2_scale, f"your 2^{log2_scale}")).properties(
        title="bfloat16 loses nothing at any of these scales; float16 needs the right one", width=WIDTH, height=HEIGHT)


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
