"""Gradient accumulation: why gradients add up, zero_grad(), and when k micro-batches are one big batch."""

import core.accumulation as core
import ui
from core import accumulation_memory as memory
from core import accumulation_recipe as recipe
from core.charts.accumulation import FIGURES
from core.nonfinite import finite_rows, first_nonfinite

page = ui.Page("accumulation", core.CONTROLS, FIGURES)
page.header()
none4 = page.run(core.accumulation_error, 4, "none", seed=page.seed)
page.predict(none4=none4)

# 1. Forgetting zero_grad()
page.experiment("zero_grad")
lr = page.control("lr")
runs = page.figure("zero_grad_loss")
page.nonfinite(first_nonfinite(runs, "loss", by="run"))
page.figure("zero_grad_gradient")
EVERY, NEVER = core.ZERO_GRAD_RUNS
every, never = runs[runs.run == EVERY].reset_index(drop=True), runs[runs.run == NEVER].reset_index(drop=True)
lam = max(page.run(core.hessian_eigenvalues).tolist())
factor = page.run(core.sgd_factor, lr)
states = core.run_states(runs)
page.metrics({"zeroed_last": f"{every.loss.iloc[-1]:.3g}", "never_last": f"{never.loss.iloc[-1]:.3g}",
              "limit2": f"{2 / lam:.3g}", "limit4": f"{4 / lam:.3g}"})
page.reading("zero_grad", lam=lam, limit2=2 / lam, limit4=4 / lam, applied10=never.applied[10], own10=never.own[10])
page.reading(f"zero_grad_zeroed_{states[EVERY]}", lr=lr, first=every.loss.iloc[0], last=every.loss.iloc[-1],
             steps=len(every), factor=factor)
finite_never = finite_rows(never).loss
page.reading(f"zero_grad_never_{states[NEVER]}", lo=never.loss.iloc[-20:].min(), hi=never.loss.iloc[-20:].max(),
             peak=finite_never.max(), times=finite_never.max() / never.loss.iloc[0])

page.experiment("set_to_none")
moved = page.figure("none_vs_zero").query("set_to_none == 'False'").set_index("optimizer").moved
page.reading("set_to_none", **moved)

# 2. Accumulation done right
page.experiment("normalization")
k, normalization = page.controls("micro_batches", "normalization")
errors = page.figure("error_vs_k")
at_k = errors[errors.micro_batches == k].set_index("normalization").error
page.metrics({n: f"{at_k[n]:.3g}" for n in core.NORMALIZATIONS})
page.reading("normalization", k=k, none=at_k["none"], div=at_k["divide_by_steps"], glob=at_k["global_count"])
sizes = core.split_sizes(k)
(big, big_count), (small, small_count) = (list(sizes.items()) * 2)[:2]
page.reading("normalization_" + ("one" if k == 1 else "even" if len(sizes) == 1 else "uneven"), size=big, km1=k - 1,
             big=big, big_count=big_count, small=small, small_count=small_count, short_weight=k * small,
             long_weight=k * big)
curves = page.figure("training")
page.nonfinite(first_nonfinite(curves, "loss", by="run"))
state, gap = core.training_state(curves)
if state == "apart":
    state += "_none" if normalization == "none" else "_uneven"
page.reading(f"training_{state}", gap=gap, k=k)

# 3. The popular recipe
page.experiment("recipe")
ledger = page.figure("recipe")
applied = ledger[ledger.fate == recipe.APPLIED]
ratio = applied.groupby("recipe").ratio.mean()
fifth = {r: page.run(recipe.fifth_point_influence, r, seed=page.seed) for r in recipe.RECIPES}
page.metrics({"fifth_written": f"{fifth['as written']:g}", "fifth_corrected": f"{fifth['corrected']:.3g}",
              "ratio": f"{ratio['as written']:.6f}"})
page.reading("recipe", ratio=ratio["as written"], cosine=applied[applied.recipe == "as written"].cosine.min(),
             fifth_written=fifth["as written"], fifth_corrected=fifth["corrected"], ratio_fixed=ratio["corrected"],
             gap=applied.gap.max())

# 4. Variable-length sequences
page.experiment("tokens")
spread = page.control("spread")
tokens = page.figure("tokens")
row = tokens[tokens.spread == spread].set_index("normalization")
bug, fix = row.error["divide_by_steps"], row.error["global_count"]
page.metrics({"token_bug": f"{bug:.2e}", "token_fix": f"{fix:.2e}",
              "tokens": f"{row.min_tokens.iloc[0]}–{row.max_tokens.iloc[0]}"})
page.reading("tokens", spread=spread, k=k, bug=bug, fix=fix, min_tokens=row.min_tokens.iloc[0],
             max_tokens=row.max_tokens.iloc[0], tokens=row.tokens.iloc[0])
by_norm = tokens.groupby("normalization").error
page.reading("tokens_" + ("one" if k == 1 else "equal" if row.min_tokens.iloc[0] == row.max_tokens.iloc[0]
                          else "unequal"),
             bug_lo=by_norm.min()["divide_by_steps"], bug_hi=by_norm.max()["divide_by_steps"],
             fix_hi=by_norm.max()["global_count"])

# 5. BatchNorm
page.experiment("batchnorm")
bn = page.figure("batchnorm")
with_bn = bn[bn.model == "with BatchNorm"].set_index("micro_batch_size")
page.reading("batchnorm", without=bn[bn.model == "without BatchNorm"].error.max(), bn12=with_bn.error[12],
             bn2=with_bn.error[2], updates=with_bn.updates[2], running=with_bn.running_moved[2])

# 6. Memory
page.experiment("memory")
memory_k = int(page.control("memory_k"))
parts = page.figure("memory").pivot(index="micro_batches", columns="part", values="bytes") / 1e6
activations = parts[memory.PARTS[-1]]
fixed = parts[list(memory.PARTS[:-1])].sum(axis=1)[1]
mem = {"act_full": activations[1], "act_k": activations[memory_k], "fixed": fixed,
       "total_full": fixed + activations[1], "total_k": fixed + activations[memory_k], "k": memory_k}
page.metrics({key: f"{mem[key]:.2f} MB" for key in ("act_full", "act_k", "fixed")})
page.reading("memory", act_full=activations[1], params=parts.parameters[1], grads=parts.gradients[1],
             adam=parts["Adam state"][1], floor=activations[64], weight_grad=memory.WEIGHT_GRAD_BYTES / 1e6)
page.reading("memory_" + ("one" if memory_k == 1 else "split"), **mem, size=memory.EFFECTIVE_BATCH // memory_k)

page.misconceptions(
    none4=none4, div5=errors.query("micro_batches == 5 and normalization == 'divide_by_steps'").error.item(),
    tokens4=page.run(core.accumulation_error, 4, "divide_by_steps", variable_lengths=True, seed=page.seed),
    bn4=with_bn.error[6], glob_max=errors[errors.normalization == "global_count"].error.max(),
    lr=lr, applied10=never.applied[10], own10=never.own[10], act_full=activations[1], act_64=activations[64],
    fixed=fixed, total_full=fixed + activations[1], total_64=fixed + activations[64], momentum=moved["momentum"],
    adam=moved["adam"])
page.show_code(core.zero_grad_runs, core.none_versus_zero, core.micro_loss, core.accumulate, core.accumulated_and_full,
               core.token_problem, core.training_curves, recipe.run_recipe, core.batchnorm_sweep,
               memory.backward_peak, memory.StorageWatch)
page.takeaways()
