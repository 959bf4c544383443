"""Reduction: `l.mean().backward()` or `l.sum().backward()`, 'none', and per-sample gradients."""

import math

import core.reduction as core
import ui
from core.charts import reduction as charts
from core.charts.reduction import FIGURES
from core.controls import find
from core.nonfinite import first_nonfinite

page = ui.Page("reduction", core.CONTROLS, FIGURES)
page.header()
page.predict()


def gap(value: float) -> str:
    """A weight gap for the words: a number, or the reason there is none."""
    return f"{value:.1e}" if math.isfinite(value) else page.words["phrases.no_gap"]


# 1. The gradient of the sum is B times the gradient of the mean
page.experiment("norms")
b = page.control("batch_size")
page.figure("norms")
sweep = charts.norm_sweep(seed=page.seed)
sum_norm, mean_norm = (page.run(core.gradient_norm, r, b, seed=page.seed) for r in ("sum", "mean"))
median = sweep.norms.pivot(index="batch_size", columns="reduction", values="median")
first = sweep.norms.pivot(index="batch_size", columns="reduction", values="first")
band = sweep.norms[sweep.norms.reduction == "mean"].set_index("batch_size")
small, large = min(core.SWEEP_BATCHES), max(core.SWEEP_BATCHES)
page.metrics({"sum_norm": f"{sum_norm:.4g}", "mean_norm": f"{mean_norm:.4g}", "ratio": f"{sum_norm / mean_norm:.6g}"})
page.reading("norms", b=b, sum_norm=sum_norm, mean_norm=mean_norm, ratio=sum_norm / mean_norm, small=small,
             large=large, sum_small=median.loc[small, "sum"], sum_large=median.loc[large, "sum"],
             mean_small=median.loc[small, "mean"], mean_large=median.loc[large, "mean"], full=sweep.full_norm,
             lo_small=band.loc[small, "lo"], hi_small=band.loc[small, "hi"], lo_large=band.loc[large, "lo"],
             hi_large=band.loc[large, "hi"])

# 2. Training: the sum at lr is a B times larger step; the sum at lr / B is the mean run
page.experiment("training")
lr, steps = page.controls("lr", "steps")
runs = charts.train_runs(b, lr=lr, steps=steps, seed=page.seed)
page.nonfinite(first_nonfinite(runs.curves, "loss", by="run"))
page.figure("training")
final = runs.curves[runs.curves.step == steps].set_index("run").loss
page.metrics({"step_ratio": f"{runs.step_ratio:.6g}", "sgd_gap": gap(runs.sgd_gap), "adam_gap": gap(runs.adam_gap)})
page.reading("training", b=b, lr=lr, lr_times_b=lr * b, step_ratio=runs.step_ratio)
state = ("mean_diverged" if "SGD, mean, lr" in runs.diverged else "one" if b == 1
         else "sum_diverged" if "SGD, sum, lr" in runs.diverged else "sum_survived")
page.reading(f"training_{state}", b=b, lr=lr, steps=steps, mean_final=final["SGD, mean, lr"],
             sum_final=final["SGD, sum, lr"], sgd_gap=gap(runs.sgd_gap))
page.reading("training_adam_same" if runs.adam_gap < 1e-2 else "training_adam_apart", adam_gap=runs.adam_gap)

# 3. A short last batch: the epoch loss three ways, and the weight of each example
page.experiment("epoch")
n, eb = page.controls("n_examples", "epoch_batch")
page.figure("epoch_loss")
page.figure("weights")
short = charts.short_batch(n, eb, seed=page.seed)
full_len = min(n, eb)
page.metrics({"mean_of_batch_means": f"{short.mean_of_batch_means:.6f}", "weighted": f"{short.weighted:.6f}",
              "true_mean": f"{short.true_mean:.6f}", "short_weight": f"{full_len / short.last_len:.3g}×"})
layout = "single" if n <= eb else "even" if n % eb == 0 else "short"
page.reading(f"epoch_{layout}", n=n, b=eb, full=n // eb, last=short.last_len, batches=math.ceil(n / eb),
             mobm=short.mean_of_batch_means, weighted=short.weighted, true=short.true_mean,
             off=abs(short.mean_of_batch_means / short.true_mean - 1), gap=abs(short.weighted - short.true_mean),
             ratio=full_len / short.last_len)

# 4. d2l's hand-written updater is SGD on the mean
page.experiment("d2l")
d2l = page.run(core.d2l_routes, n, eb, lr=lr, seed=page.seed)
page.metrics({"gap_d2l": gap(d2l.gap_d2l), "gap_none_mean": gap(d2l.gap_none_mean), "loss_gap": gap(d2l.loss_gap)})
page.reading("d2l_diverged" if d2l.diverged else "d2l", n=n, b=eb, lr=lr, gap_d2l=d2l.gap_d2l,
             gap_none_mean=d2l.gap_none_mean, loss_gap=d2l.loss_gap)

# 5. Per-sample gradients: torch.func against a loop; noise, not explosion
page.experiment("per_sample")
sb = page.control("sample_batch")
page.figure("per_sample")
page.figure("spread")
ps = charts.per_sample(sb, seed=page.seed)
spread = sweep.spread.set_index("batch_size")
speedup = ps.loop_ms / ps.vmap_ms
page.metrics({"vmap_ms": f"{ps.vmap_ms:.2f} ms", "loop_ms": f"{ps.loop_ms:.2f} ms", "speedup": f"{speedup:.1f}×",
              "loop_gap": f"{ps.loop_gap:.1e}"})
page.reading("per_sample_faster" if speedup > 1 else "per_sample_slower", sb=sb, vmap_ms=ps.vmap_ms,
             loop_ms=ps.loop_ms, speedup=speedup, loop_gap=ps.loop_gap)
noise = {"mean_norm": ps.mean_norm, "batch_norm": ps.batch_norm, "small": small, "large": large, "sb": sb,
         "s_small": spread.loc[small, "spread"], "s_large": spread.loc[large, "spread"], "acc_gap": ps.accumulated_gap}
page.reading("per_sample", norm_ratio=ps.mean_norm / ps.batch_norm, c_small=spread.loc[small, "closed_form"],
             c_large=spread.loc[large, "closed_form"], **noise)

# 6. Class weights: 'mean' divides by the sum of the targets' weights
page.experiment("class_weights")
w = page.control("class_weight")
cw = page.run(core.class_weights, w, seed=page.seed)
page.metrics({"library_mean": f"{cw.library_mean:.6f}", "over_weights": f"{cw.total / cw.weight_sum:.6f}",
              "over_n": f"{cw.total / len(cw.examples):.6f}", "weight_sum": f"{cw.weight_sum:g}"})
page.reading("class_weights" if w != 1 else "class_weights_plain", n=len(cw.examples), rare=cw.rare,
             count=int((cw.examples.target == cw.rare).sum()), w=w, weight_sum=cw.weight_sum, total=cw.total,
             library=cw.library_mean, over_weights=cw.total / cw.weight_sum, over_n=cw.total / len(cw.examples))

# At w = 1 the divisor is N, which refutes nothing: the last misconception then reads the default weight.
w_used = w if w != 1 else find(core.CONTROLS, "class_weight").default
shown = page.run(core.class_weights, w_used, seed=page.seed)
page.misconceptions(b=b, step_ratio=runs.step_ratio, big_ratio=first.loc[large, "sum"] /
                    first.loc[large, "mean"], steps=steps, lr=lr, lr_b=lr / b, lr_times_b=lr * b,
                    sgd_gap=gap(runs.sgd_gap), w_used=w_used, rare=shown.rare,
                    weight_sum=shown.weight_sum, n=len(shown.examples), library=shown.library_mean,
                    over_n=shown.total / len(shown.examples), **noise)
page.show_code(core.gradient_norm, core.norm_sweep, core.train_runs, core.epoch_loss, core.short_batch, core.d2l_sgd,
               core.d2l_routes, core.per_sample_gradients, core.per_sample_gradients_loop, core.per_sample,
               core.class_weights)
page.takeaways()
