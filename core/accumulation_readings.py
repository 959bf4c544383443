"""What the accumulation page says about its numbers: every reading chosen and filled here (DESIGN rule 11).

Each reader takes the page's settings (every control plus "seed") and the page's `run`, fetches the results the
figures draw (figure_data) or plain core calls through run, and returns the metric tiles and the paragraphs.
core/accumulation.py exports them as READINGS.
"""

from __future__ import annotations

import numpy as np

from core import accumulation as core
from core import accumulation_batchnorm as batchnorm
from core import accumulation_clipping as clipping
from core import accumulation_memory as memory
from core import accumulation_recipe as recipe
from core.nonfinite import first_nonfinite
from core.readings import Reading, Readout, Run, direct, figure_data

PAGE = "accumulation"
EVERY, NEVER = core.ZERO_GRAD_RUNS


def e(key: str, values: dict | None = None, tone: str = "text") -> Reading:
    return Reading(f"experiments.{key}.reading", values or {}, tone)


def zero_grad_states(runs, factor: float) -> dict[str, str]:
    """Each zero_grad run's fate. Zeroed: "nonfinite", "diverged" (|1 - lr·λ| > 1: the error grows along the
    steepest direction), "settles" (below 1/1000 of its start) or "slow". Never zeroed: "nonfinite", "diverged"
    (past 10 000 times its start) or "oscillates"."""
    states = {}
    for name, loss in runs.groupby("run", sort=False).loss:
        first, finite = float(loss.iloc[0]), bool(np.isfinite(loss).all())
        if not finite:
            states[name] = "nonfinite"
        elif name == EVERY:
            states[name] = "diverged" if factor > 1 else "settles" if loss.iloc[-1] < 1e-3 * first else "slow"
        else:
            states[name] = "diverged" if loss.max() > 1e4 * first else "oscillates"
    return states


def read_zero_grad(settings: dict, run: Run = direct) -> Readout:
    lr = settings["lr"]
    runs = figure_data(PAGE, "zero_grad_loss", settings, run)
    lam = max(run(core.hessian_eigenvalues).tolist())
    factor = run(core.sgd_factor, lr)
    every, never = (runs[runs.run == r].reset_index(drop=True) for r in core.ZERO_GRAD_RUNS)
    states = zero_grad_states(runs, factor)
    broken = first_nonfinite(runs, "loss", by="run")
    readings = [e(f"zero_grad_nonfinite_{'zeroed' if name == EVERY else 'never'}", {"at": int(at), "lr": lr},
                  "warning") for name, at in broken.items()]
    readings.append(e("zero_grad", {"lam": lam, "limit2": 2 / lam, "limit4": 4 / lam,
                                    "applied10": float(never.applied[10]), "own10": float(never.own[10])}))
    if states[EVERY] != "nonfinite":
        readings.append(e(f"zero_grad_zeroed_{states[EVERY]}", {
            "lr": lr, "first": float(every.loss.iloc[0]), "last": float(every.loss.iloc[-1]), "steps": len(every),
            "factor": factor}))
    if states[NEVER] != "nonfinite":
        tail = never.loss.iloc[-20:]
        readings.append(e(f"zero_grad_never_{states[NEVER]}", {
            "lo": float(tail.min()), "hi": float(tail.max()), "peak": float(never.loss.max()),
            "times": float(never.loss.max() / never.loss.iloc[0])}))
    metrics = {}
    for name, run_df, key in ((EVERY, every, "zeroed"), (NEVER, never, "never")):
        if name in broken:
            metrics[f"{key}_blew"] = str(int(broken[name]))
        else:
            metrics[f"{key}_last"] = f"{run_df.loss.iloc[-1]:.3g}"
    metrics |= {"limit2": f"{2 / lam:.3g}", "limit4": f"{4 / lam:.3g}"}
    return Readout(tuple(readings), metrics)


def read_set_to_none(settings: dict, run: Run = direct) -> Readout:
    df = figure_data(PAGE, "none_vs_zero", settings, run)
    moved = df[df.set_to_none == "False"].set_index("optimizer").moved
    return Readout((e("set_to_none", {k: float(v) for k, v in moved.items()}),))


def read_normalization(settings: dict, run: Run = direct) -> Readout:
    k, normalization = settings["micro_batches"], settings["normalization"]
    errors = figure_data(PAGE, "error_vs_k", settings, run)
    at_k = errors[errors.micro_batches == k].set_index("normalization").error
    readings = [e("normalization", {"k": k, "none": float(at_k["none"]), "div": float(at_k["divide_by_steps"]),
                                    "glob": float(at_k["global_count"])})]
    sizes = core.split_sizes(k)
    (big, big_count), (small, small_count) = (list(sizes.items()) * 2)[:2]
    case = "one" if k == 1 else "even" if len(sizes) == 1 else "uneven"
    readings.append(e(f"normalization_{case}", {"size": big, "km1": k - 1, "big": big, "big_count": big_count,
                                                "small": small, "small_count": small_count,
                                                "short_weight": k * small, "long_weight": k * big}))
    curves = figure_data(PAGE, "training", settings, run)
    broken = first_nonfinite(curves, "loss", by="run")
    wide = curves.pivot(index="step", columns="run", values="loss")
    if broken:
        readings.append(e("training_nonfinite", {"at": int(min(broken.values())), "k": k}, "warning"))
    elif wide.to_numpy().max() > 1e6:
        readings.append(e("training_diverged", {"k": k, "peak": float(wide["accumulated"].max())}))
    else:
        gap = float(((wide["accumulated"] - wide["one batch"]).abs() / wide["one batch"]).max())
        state = "same" if gap < 1e-4 else "apart_none" if normalization == "none" else "apart_uneven"
        readings.append(e(f"training_{state}", {"gap": gap, "k": k}))
    metrics = {n: f"{at_k[n]:.3g}" for n in core.NORMALIZATIONS}
    return Readout(tuple(readings), metrics)


def read_recipe(settings: dict, run: Run = direct) -> Readout:
    ledger = figure_data(PAGE, "recipe", settings, run)
    applied = ledger[ledger.fate == recipe.APPLIED]
    ratio = applied.groupby("recipe").ratio.mean()
    fifth = {r: run(recipe.fifth_point_influence, r, seed=settings["seed"]) for r in recipe.RECIPES}
    written = applied[applied.recipe == "as written"]
    values = {"ratio": float(ratio["as written"]), "cosine": float(written.cosine.min()),
              "fifth_written": fifth["as written"], "fifth_corrected": fifth["corrected"],
              "ratio_fixed": float(ratio["corrected"]), "gap": float(applied.gap.max())}
    metrics = {"fifth_written": f"{fifth['as written']:g}", "fifth_corrected": f"{fifth['corrected']:.3g}",
               "ratio": f"{ratio['as written']:.6f}"}
    return Readout((e("recipe", values),), metrics)


def read_tokens(settings: dict, run: Run = direct) -> Readout:
    k, spread = settings["micro_batches"], settings["spread"]
    tokens = figure_data(PAGE, "tokens", settings, run)
    row = tokens[tokens.spread == spread].set_index("normalization")
    bug, fix = float(row.error["divide_by_steps"]), float(row.error["global_count"])
    lo, hi = int(row.min_tokens.iloc[0]), int(row.max_tokens.iloc[0])
    by_norm = tokens.groupby("normalization").error
    readings = (e("tokens", {"spread": spread, "k": k, "bug": bug, "fix": fix, "min_tokens": lo, "max_tokens": hi,
                             "tokens": int(row.tokens.iloc[0])}),
                e("tokens_" + ("one" if k == 1 else "equal" if lo == hi else "unequal"),
                  {"bug_lo": float(by_norm.min()["divide_by_steps"]), "bug_hi": float(by_norm.max()["divide_by_steps"]),
                   "fix_hi": float(by_norm.max()["global_count"])}))
    return Readout(readings, {"token_bug": f"{bug:.2e}", "token_fix": f"{fix:.2e}", "tokens": f"{lo}–{hi}"})


def read_batchnorm(settings: dict, run: Run = direct) -> Readout:
    bn = figure_data(PAGE, "batchnorm", settings, run)
    with_bn = bn[bn.model == "with BatchNorm"].set_index("micro_batch_size")
    one = run(batchnorm.single_example_batchnorm, seed=settings["seed"])
    values = {"without": float(bn[bn.model == "without BatchNorm"].error.max()), "bn12": float(with_bn.error[12]),
              "bn2": float(with_bn.error[2]), "updates": int(with_bn.updates[2]),
              "running": float(with_bn.running_moved[2])}
    flat, seq, image = (one[layout] for layout in batchnorm.LAYOUTS)
    return Readout((e("batchnorm", values), e(f"batchnorm_one_{flat}_{seq}_{image}")))


def memory_values(settings: dict, run: Run) -> dict:
    parts = figure_data(PAGE, "memory", settings, run).pivot(index="micro_batches", columns="part", values="bytes")
    parts = parts / 1e6
    activations = parts[memory.PARTS[-1]]
    fixed = float(parts[list(memory.PARTS[:-1])].sum(axis=1)[1])
    k = int(settings["memory_k"])
    return {"act_full": float(activations[1]), "act_k": float(activations[k]), "act_64": float(activations[64]),
            "fixed": fixed, "total_full": fixed + float(activations[1]), "total_k": fixed + float(activations[k]),
            "total_64": fixed + float(activations[64]), "k": k, "size": memory.EFFECTIVE_BATCH // k,
            "params": float(parts.parameters[1]), "grads": float(parts.gradients[1]),
            "adam": float(parts["Adam state"][1]), "floor": float(activations[64]),
            "weight_grad": memory.WEIGHT_GRAD_BYTES / 1e6}


def read_memory(settings: dict, run: Run = direct) -> Readout:
    mem = memory_values(settings, run)
    readings = (e("memory", mem), e("memory_" + ("one" if mem["k"] == 1 else "split"), mem))
    return Readout(readings, {key: f"{mem[key]:.2f} MB" for key in ("act_full", "act_k", "fixed")})


def read_clip_schedule(settings: dict, run: Run = direct) -> Readout:
    """The new experiment: clip and schedule once per optimizer step, against clipping each micro-batch and
    stepping the scheduler per micro-batch."""
    k, max_norm = settings["micro_batches"], settings["max_norm"]
    runs = figure_data(PAGE, "clip_schedule_loss", settings, run)
    loss = runs.pivot(index="step", columns="run", values="loss")
    lr = runs.pivot(index="step", columns="run", values="lr")
    first = run(clipping.first_step_gradients, k, max_norm, seed=settings["seed"])
    one = loss["one batch"]
    gap = lambda name: float(((loss[name] - one).abs() / one).max())  # noqa: E731
    values = {"k": k, "max_norm": max_norm, "gap_once": gap(clipping.CLIP_RUNS[1]),
              "gap_each": gap(clipping.CLIP_RUNS[2]),
              "end_one": float(one.iloc[-1]), "end_each": float(loss[clipping.CLIP_RUNS[2]].iloc[-1]),
              "end_sched": float(loss[clipping.CLIP_RUNS[3]].iloc[-1]), "steps": clipping.CLIP_STEPS,
              "lr0": clipping.CLIP_LR, "zero_at": int((lr[clipping.CLIP_RUNS[3]] > 0).sum()),
              "cut_once": int(runs[runs.run == clipping.CLIP_RUNS[1]].clipped.sum()), **first}
    if k == 1:
        readings = (e("clip_schedule_one", values),)
    else:
        each = "differs" if first["difference"] > 1e-4 or values["gap_each"] > 1e-4 else "same"
        readings = (e("clip_schedule", values), e(f"clip_schedule_each_{each}", values),
                    e("clip_schedule_scheduler", values))
    metrics = {"clip_once_gap": f"{values['gap_once']:.1e}", "clip_each_difference": f"{first['difference']:.3g}",
               "scheduler_zero_at": str(values["zero_at"])}
    return Readout(readings, metrics)


def read_misconceptions(settings: dict, run: Run = direct) -> Readout:
    seed = settings["seed"]
    errors = figure_data(PAGE, "error_vs_k", settings, run)
    bn = figure_data(PAGE, "batchnorm", settings, run)
    with_bn = bn[bn.model == "with BatchNorm"].set_index("micro_batch_size")
    runs = figure_data(PAGE, "zero_grad_loss", settings, run)
    never = runs[runs.run == NEVER].reset_index(drop=True)
    moved = figure_data(PAGE, "none_vs_zero", settings, run)
    moved = moved[moved.set_to_none == "False"].set_index("optimizer").moved
    mem = memory_values(settings, run)
    values = {
        "none4": run(core.accumulation_error, 4, "none", seed=seed),
        "div5": float(errors.query("micro_batches == 5 and normalization == 'divide_by_steps'").error.item()),
        "tokens4": run(core.accumulation_error, 4, "divide_by_steps", variable_lengths=True, seed=seed),
        "bn4": float(with_bn.error[6]), "glob_max": float(errors[errors.normalization == "global_count"].error.max()),
        "lr": settings["lr"], "applied10": float(never.applied[10]), "own10": float(never.own[10]),
        "momentum": float(moved["momentum"]), "adam": float(moved["adam"]),
        **{key: mem[key] for key in ("act_full", "act_64", "fixed", "total_full", "total_64")}}
    return Readout((Reading("misconceptions", values),))


def read_predict(settings: dict, run: Run = direct) -> Readout:
    """predict.why's values: the predict block's own setting, 4 micro-batch means summed against one batch of 24."""
    acc, full = run(core.accumulated_and_full, 4, "none", seed=settings["seed"])
    values = {"ratio": (acc.norm() / full.norm()).item(),
              "cosine": float((acc @ full / (acc.norm() * full.norm())).item()), "micro": core.BATCH_SIZE // 4}
    return Readout((Reading("predict.why", values),))


READINGS = {"zero_grad": read_zero_grad, "set_to_none": read_set_to_none, "normalization": read_normalization,
            "recipe": read_recipe, "tokens": read_tokens, "batchnorm": read_batchnorm, "memory": read_memory,
            "clip_schedule": read_clip_schedule, "misconceptions": read_misconceptions, "predict": read_predict}
