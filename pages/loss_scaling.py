"""Loss scaling: does `loss = loss / 10` make the update ten times smaller?"""

import core.loss_scaling as core
import ui
from core import fp16
from core.charts.loss_scaling import FIGURES
from core.nonfinite import first_nonfinite

page = ui.Page("loss_scaling", core.CONTROLS, FIGURES)
page.header()
page.predict()

# 1. Gradients scale exactly
page.experiment("gradients")
s = 10.0 ** page.control("scale_exp")
ratios = page.figure("gradient_ratios")
worst = (ratios.ratio / s - 1).abs().groupby(ratios.dtype).max()
cosine = page.run(core.gradient_cosine, s, seed=page.seed)
page.metrics({"dev32": f"{worst['float32']:.1e}", "dev64": f"{worst['float64']:.1e}", "cosine": f"{1 - cosine:.1e}"})
page.reading("gradients", s=s, dev32=worst["float32"], dev64=worst["float64"], cosine=cosine)

# 2. The update depends on the optimizer
page.experiment("update")
lr, steps, eps_exp = page.controls("lr", "steps", "eps_exp")
eps = 10.0**eps_exp
sweep = page.figure("update_ratio")
at_s = {name: page.run(core.update_ratio, name, s, steps=steps, seed=page.seed, lr=lr, eps=eps)
        for name in core.OPTIMIZERS}
page.metrics({name: f"{at_s[name]:.4g}" for name in core.OPTIMIZERS})
knee = core.threshold_scale(sweep, "adam")
page.reading("update", s=s, lr=lr, sgd=at_s["sgd"], adam=at_s["adam"], eps=eps, steps=steps,
             knee=f"{knee:.0e}" if knee else "—")

# 3. SGD: loss × s at lr is loss at lr × s, until weight decay
page.experiment("equivalence")
weight_decay = page.control("weight_decay")
runs = page.run(core.equivalent_runs, s, lr=lr, weight_decay=weight_decay, seed=page.seed)
page.nonfinite(first_nonfinite(runs.curves, "loss", by="run"))
page.figure("equivalent_runs")
page.metrics({"sgd_gap": f"{runs.sgd_gap:.2e}", "adam_gap": f"{runs.adam_gap:.2e}"})
page.reading("equivalence", s=s, lr=lr, lr_s=lr * s, wd=weight_decay, sgd_gap=runs.sgd_gap, adam_gap=runs.adam_gap,
             eps_s=1e-8 / s)
page.reading("equivalence_" + ("diverged" if runs.diverged else "decay" if weight_decay else "same"))

# 4. float32 has the last word
page.experiment("frozen")
page.figure("frozen")
sgd_frozen = sweep[(sweep.optimizer == "sgd") & (sweep.frozen_fraction == 1.0)].scale
page.reading("frozen", lr=lr, all_frozen=f"{sgd_frozen.max():.0e}" if len(sgd_frozen) else "—")

# 5. Mixed precision: float16's limits and GradScaler
page.experiment("fp16")
k, growth_interval = page.controls("fp16_log2_scale", "growth_interval")
hist = page.figure("fp16_histogram")
fates = page.figure("fp16_sweep")
at_k = fates[fates.log2_scale == k].set_index("fate").fraction
page.metrics({"flushed": f"{at_k['flushed to zero']:.3%}", "overflow": f"{at_k['overflow to inf']:.3%}"})
trace = page.figure("grad_scaler")
page.reading("fp16", k=k, n=int(hist["count"].sum()), skipped=int(trace.skipped.sum()), steps=len(trace),
             top=int(trace.scale.max()), growth_interval=growth_interval)

page.misconceptions(s=s, adam=at_s["adam"], sgd=at_s["sgd"], cosine=cosine,
                    scaler_gap=page.run(core.scaler_update_gap, seed=page.seed))
page.show_code(core.train, core.gradient_ratios, core.update_ratio, core.scaling_sweep, core.equivalent_runs,
               core.fp16_underflow_fraction, fp16.scale_sweep, fp16.grad_scaler_trace)
page.takeaways()
