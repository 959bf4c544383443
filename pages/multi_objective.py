"""Combining objectives: minimise one loss, maximise another, and weight terms of very different size."""

import math

import core.multi_objective as core
import ui
from core import multi_objective_balance as balance
from core.charts.multi_objective import FIGURES, FRONT
from core.nonfinite import first_nonfinite

page = ui.Page("multi_objective", core.CONTROLS, FIGURES)
page.header()
page.predict()


def num(x: float, fmt: str = ".3g") -> str:
    """A live number for the words; a diverged run's inf or NaN reads as a dash."""
    return format(x, fmt) if math.isfinite(x) else "—"


# 1. The learner's loop: a detached loss2 does nothing; a real one has no maximum
page.experiment("seed")
max_alpha = 10.0 ** page.control("max_alpha_exp")
runs = page.figure("seed_loss1")
page.figure("seed_loss2")
seed = core.seed_summary(runs)
grad = page.run(core.loss2_requires_grad, seed=page.seed)
flag_gap = page.run(core.maximize_flag_gap, seed=page.seed)
page.metrics({"requires_grad": str(grad["torch.tensor"]), "gap": f"{seed['gap']:.1e}",
              "slope": f"{seed['slope_maximize']:+.4f}", "flag_gap": f"{flag_gap:.1e}"})
page.reading("seed", steps=core.SEED_STEPS, alpha=max_alpha, stack=grad["torch.stack"],
             plain=grad["sum()"], **seed)
page.reading("seed_pays" if seed["pays"] else "seed_free", alpha=max_alpha, **seed)
page.reading("seed_flag", flag_gap=flag_gap, flag_steps=core.FLAG_STEPS)

# 2. The trade-off curve, and a mismatch in scale
page.experiment("tradeoff")
alpha_exp, scale_exp = page.controls("alpha_exp", "scale_exp")
alpha, scale = 10.0**alpha_exp, 10.0**scale_exp
sweep = page.figure("tradeoff")
page.figure("alpha_sweep")
page.nonfinite(first_nonfinite(sweep[sweep.run == "sgd"], "loss1", at="alpha", by="run"), what="α")
yours = sweep[(sweep.run != "sgd limit") & (sweep.alpha.sub(alpha).abs() < 1e-9 * alpha)].set_index("run")
knee = page.run(core.knee_alpha, scale, seed=page.seed)
limit = page.run(core.sgd_alpha_limit, scale, seed=page.seed)
page.metrics({"exact": f"{yours.loc['exact', 'loss1']:.3g} / {yours.loc['exact', 'loss2']:.3g}",
              "knee": f"{knee:.3g}", "limit": f"{limit:.3g}",
              "adam_error": num(abs(yours.loc["adam", "loss1"] / yours.loc["exact", "loss1"] - 1), ".1e")})
page.reading("tradeoff", alpha=alpha, scale=scale, effective=alpha * scale, knee=knee,
             limit=limit, headroom=limit / knee, l1=yours.loc["exact", "loss1"], l2=yours.loc["exact", "loss2"])
if scale_exp:
    page.reading("tradeoff_shift", knee0=knee * scale, scale=scale)
page.reading("tradeoff_sgd_" + ("diverged" if alpha > limit else "stable"), alpha=alpha, limit=limit,
             sgd=num(yours.loc["sgd", "loss1"], ".4g"), exact=yours.loc["exact", "loss1"])
big, small = (page.run(core.overall_scale_gap, factor, seed=page.seed) for factor in core.OVERALL_FACTORS)
page.reading("tradeoff_overall", big=core.OVERALL_FACTORS[0], small=core.OVERALL_FACTORS[1], adam_big=big.adam_gap,
             adam_small=small.adam_gap, sgd_small=small.sgd_gap, steps=core.OVERALL_STEPS)

# 3. Conflict: two gradients on one shared model
page.experiment("conflict")
mismatch_exp, task_alpha_exp, optimizer = page.controls("mismatch_exp", "task_alpha_exp", "optimizer")
mismatch, task_alpha = 10.0**mismatch_exp, 10.0**task_alpha_exp
tasks = page.figure("conflict")
tasks = tasks[tasks.method != FRONT].astype({"step": int})
diverged = first_nonfinite(tasks, "loss1", by="method")
page.nonfinite(diverged)
b = balance.balance_summary(tasks, mismatch, task_alpha)
page.metrics({"ratio_start": f"{b['ratio_start']:.3g}", "cos_start": f"{b['cos_start']:+.3f}",
              "cos_end": num(b["cos_end"], "+.3f"), "pull_end": num(b["pull_end"])})
page.reading("conflict", m=mismatch_exp, alpha=task_alpha, ratio_start=b["ratio_start"])
page.reading("conflict_start_" + ("agree" if b["cos_start"] > 0 else "against"), cos_start=b["cos_start"])
page.reading("conflict_" + b["conflict_state"], conflict_from=b["conflict_from"], cos_end=b["cos_end"],
             pull_end=b["pull_end"])

# 4. Six ways to combine the two gradients
page.experiment("balance")
page.figure("trajectories")
page.figure("final")
page.figure("weights")
page.metrics({m: f"{num(b[m + '_loss1'])} / {num(b[m + '_loss2'])}" for m in balance.METHODS})
page.reading("balance", mismatch=mismatch, optimizer=optimizer, steps=balance.STEPS,
             **{k: num(v) for k, v in b.items() if k.endswith(("_loss1", "_loss2"))})
if "uncertainty" not in diverged:
    page.reading("balance_uncertainty_" + b["uncertainty_state"], weight=b["uncertainty_weight"],
                 target=b["uncertainty_target"], loss1=b["uncertainty_loss1"], loss2=b["uncertainty_loss2"],
                 start1=b["start_loss1"], start2=b["start_loss2"])
if diverged:
    page.reading("balance_diverged", methods=", ".join(diverged))

page.misconceptions(gap=seed["gap"], requires_grad=grad["torch.tensor"], steps=core.SEED_STEPS,
                    slope=seed["slope_maximize"], loss2=seed["loss2_maximize"], bounded=seed["loss2_bounded"],
                    bounded_slope=seed["slope_bounded"], ratio=b["normalized_ratio"],
                    initial=f"{num(b['initial_loss1'])} / {num(b['initial_loss2'])}",
                    unit=f"{num(b['unit_norm_loss1'])} / {num(b['unit_norm_loss2'])}")
page.show_code(core.seed_example, core.tradeoff_curve, core.train_tradeoff, balance.balance_run, balance.pcgrad,
               balance.mgda)
page.takeaways()
