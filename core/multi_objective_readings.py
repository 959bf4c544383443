"""What the multi-objective page says about its numbers: each experiment's branch and values, chosen here.

Every reader takes the page's settings (every control by key, plus "seed") and a `run` (core.readings),
fetches the figures' own data through it and returns the metric tiles and the paragraphs (content keys
in content/en/multi_objective.toml with the values their placeholders take). A run that went non-finite
is read as a divergence, with the step (or alpha) where it happened; its numbers print as a dash.
"""

from __future__ import annotations

import math

import core.multi_objective as mo
from core import multi_objective_balance as balance
from core.nonfinite import first_nonfinite
from core.readings import Reading, Readout, Run, direct, figure_data

PAGE = "multi_objective"
FRONT = "true trade-off"  # the rows of the balance figures that hold the exact trade-off, not a run
SETTLED_GAP, SETTLED_SLOPE = 0.1, 1e-3  # the target run has settled: within 0.1 of its target, moving < 1e-3 a step


def say(key: str, values: dict, tone: str = "text") -> Reading:
    """The paragraph experiments.<key>.reading with its values."""
    return Reading(f"experiments.{key}.reading", values, tone)


def num(x: float, fmt: str = ".3g") -> str:
    """A live number for the words; a diverged run's inf or NaN reads as a dash."""
    return format(x, fmt) if math.isfinite(x) else "—"


def seed_facts(settings: dict, run: Run = direct) -> dict:
    """Experiment 1's numbers: seed_summary of the four loops, the requires_grad of each route, the flag gap."""
    runs = figure_data(PAGE, "seed_loss1", settings, run)
    facts = mo.seed_summary(runs)
    alpha = 10.0 ** settings["max_alpha_exp"]
    push, push32 = mo.tanh_push(alpha, facts["loss2_bounded"])
    return {**facts, "alpha": alpha, "steps": int(runs.step.max()) + 1, "push": push, "push32": push32,
            "target": mo.LOSS2_TARGET, "target_gap": abs(facts["loss2_target"] - mo.LOSS2_TARGET),
            "grad": run(mo.loss2_requires_grad, seed=settings["seed"]),
            "flag_gap": run(mo.maximize_flag_gap, seed=settings["seed"])}


def read_seed(settings: dict, run: Run = direct) -> Readout:
    f = seed_facts(settings, run)
    grad = f["grad"]
    values = {k: f[k] for k in ("steps", "alpha", "gap", "loss2_start", "loss2_maximize", "slope_maximize",
                                "loss2_bounded", "slope_bounded", "push", "push32", "loss2_target",
                                "slope_target", "loss1_target", "target", "target_gap", "loss1_maximize",
                                "loss1_loss1_only")}
    values.update(stack=grad["torch.stack"], plain=grad["sum()"])
    readings = [say("seed", values),
                say("seed_maximize_" + ("rising" if f["slope_maximize"] > 0 else "flat"), values),
                say("seed_bounded_" + ("zero" if f["push32"] == 0 else "pushed"), values),
                say("seed_target_" + ("settled" if target_settled(f) else "approaching"), values),
                say("seed_" + ("pays" if f["pays"] else "free"), values),
                say("seed_flag", {"flag_gap": f["flag_gap"], "flag_steps": mo.FLAG_STEPS})]
    metrics = {"requires_grad": str(grad["torch.tensor"]), "gap": f"{f['gap']:.1e}",
               "slope": f"{f['slope_maximize']:+.4f}", "flag_gap": f"{f['flag_gap']:.1e}"}
    return Readout(tuple(readings), metrics)


def target_settled(f: dict) -> bool:
    return f["target_gap"] < SETTLED_GAP and abs(f["slope_target"]) < SETTLED_SLOPE


def tradeoff_facts(settings: dict, run: Run = direct) -> dict:
    """Experiment 2's numbers at the reader's alpha and scale."""
    alpha, scale = 10.0 ** settings["alpha_exp"], 10.0 ** settings["scale_exp"]
    sweep = figure_data(PAGE, "tradeoff", settings, run)
    yours = sweep[(sweep.run != "sgd limit") & (sweep.alpha.sub(alpha).abs() < 1e-9 * alpha)].set_index("run")
    sgd = sweep[sweep.run == "sgd"]
    big, small = (run(mo.overall_scale_gap, factor, seed=settings["seed"]) for factor in mo.OVERALL_FACTORS)
    return {"alpha": alpha, "scale": scale, "scale_exp": settings["scale_exp"],
            "knee": run(mo.knee_alpha, scale, seed=settings["seed"]),
            "limit": run(mo.sgd_alpha_limit, scale, seed=settings["seed"]),
            "l1": float(yours.loc["exact", "loss1"]), "l2": float(yours.loc["exact", "loss2"]),
            "sgd": float(yours.loc["sgd", "loss1"]), "adam": float(yours.loc["adam", "loss1"]),
            "first_bad": first_nonfinite(sgd, "loss1", at="alpha").get(None), "big": big, "small": small}


def read_tradeoff(settings: dict, run: Run = direct) -> Readout:
    f = tradeoff_facts(settings, run)
    alpha, scale, knee, limit = f["alpha"], f["scale"], f["knee"], f["limit"]
    readings = []
    if f["first_bad"] is not None:
        readings.append(say("tradeoff_nonfinite", {"at": f["first_bad"]}, tone="warning"))
    readings.append(say("tradeoff", {
        "alpha": alpha, "scale": scale, "effective": alpha * scale, "knee": knee, "limit": limit,
        "headroom": limit / knee, "l1": f["l1"], "l2": f["l2"]}))
    if f["scale_exp"]:
        readings.append(say("tradeoff_shift", {"knee0": knee * scale, "scale": scale}))
    diverged = not math.isfinite(f["sgd"])
    readings.append(say("tradeoff_sgd_" + ("diverged" if diverged else "stable"), {
        "alpha": alpha, "limit": limit, "sgd": num(f["sgd"], ".4g"), "exact": f["l1"],
        "at": num(f["first_bad"] if diverged else math.nan, ".3g")}))
    big, small = f["big"], f["small"]
    overall = {"big": mo.OVERALL_FACTORS[0], "small": mo.OVERALL_FACTORS[1], "adam_big": big.adam_gap,
               "adam_small": small.adam_gap, "sgd_small": num(small.sgd_gap, ".2g"), "steps": mo.OVERALL_STEPS,
               "sgd_big": num(big.sgd_gap, ".2g")}
    readings.append(say("tradeoff_overall_" + ("diverged" if not math.isfinite(big.sgd_gap)
                                                                else "moved"), overall))
    metrics = {"exact": f"{f['l1']:.3g} / {f['l2']:.3g}", "knee": f"{knee:.3g}", "limit": f"{limit:.3g}",
               "adam_error": num(abs(f["adam"] / f["l1"] - 1), ".1e")}
    return Readout(tuple(readings), metrics)


def balance_facts(settings: dict, run: Run = direct) -> tuple[dict, dict, dict]:
    """Experiments 3 and 4: balance_summary of the six runs, where each went non-finite, and the settings read."""
    mismatch, alpha = 10.0 ** settings["mismatch_exp"], 10.0 ** settings["task_alpha_exp"]
    tasks = figure_data(PAGE, "conflict", settings, run)
    tasks = tasks[tasks.method != FRONT].astype({"step": int})
    diverged = first_nonfinite(tasks, "loss1", by="method")
    facts = balance.balance_summary(tasks, mismatch, alpha)
    return facts, diverged, {"mismatch": mismatch, "alpha": alpha, "m": settings["mismatch_exp"],
                             "optimizer": settings["optimizer"]}


def read_conflict(settings: dict, run: Run = direct) -> Readout:
    b, diverged, s = balance_facts(settings, run)
    readings = [say("conflict", {"m": s["m"], "alpha": s["alpha"],
                                                         "ratio_start": b["ratio_start"]}),
                say("conflict_start_" + ("agree" if b["cos_start"] > 0 else "against"),
                        {"cos_start": b["cos_start"]})]
    state = b["conflict_state"]
    values = {"conflict_from": b["conflict_from"], "cos_end": b["cos_end"], "pull_end": b["pull_end"]}
    if state == "diverged":
        values = {"step": int(diverged["fixed"]), "optimizer": s["optimizer"]}
    readings.append(say("conflict_" + state, values, tone="warning" if state == "diverged" else "text"))
    metrics = {"ratio_start": f"{b['ratio_start']:.3g}", "cos_start": f"{b['cos_start']:+.3f}",
               "cos_end": num(b["cos_end"], "+.3f"), "pull_end": num(b["pull_end"])}
    return Readout(tuple(readings), metrics)


def read_balance(settings: dict, run: Run = direct) -> Readout:
    b, diverged, s = balance_facts(settings, run)
    losses = {k: num(v) for k, v in b.items() if k.endswith(("_loss1", "_loss2"))}
    readings = [say("balance", {"mismatch": s["mismatch"], "optimizer": s["optimizer"],
                                                        "steps": balance.STEPS, **losses})]
    if "uncertainty" not in diverged:
        state = b["uncertainty_state"]
        if state == "blown":  # its weights may have overflowed: only its losses, as printed numbers
            values = {"loss1": num(b["uncertainty_loss1"]), "loss2": num(b["uncertainty_loss2"]),
                      "start1": num(b["start_loss1"]), "start2": num(b["start_loss2"])}
        else:
            values = {"weight": b["uncertainty_weight"], "target": b["uncertainty_target"],
                      "loss1": b["uncertainty_loss1"], "loss2": b["uncertainty_loss2"],
                      "raw": b["uncertainty_weight"] * s["mismatch"]}
        if state == "settled":
            state += "_noisy" if b["uncertainty_loss2"] > b["uncertainty_loss1"] else "_clean"
        readings.append(say("balance_uncertainty_" + state, values))
    if diverged:
        where = ", ".join(f"{m} (step {int(at)})" for m, at in diverged.items())
        readings.append(say("balance_diverged", {"methods": where, "optimizer": s["optimizer"]},
                                tone="warning"))
    metrics = {m: f"{num(b[m + '_loss1'])} / {num(b[m + '_loss2'])}" for m in balance.METHODS}
    return Readout(tuple(readings), metrics)


def read_misconceptions(settings: dict, run: Run = direct) -> Readout:
    """The values every misconception's evidence takes: each refutes its claim at every setting (tests hold it)."""
    f = seed_facts(settings, run)
    b, _, _ = balance_facts(settings, run)
    values = {"gap": f["gap"], "requires_grad": f["grad"]["torch.tensor"], "steps": f["steps"],
              "slope": f["slope_maximize"], "loss2": f["loss2_maximize"], "bounded": f["loss2_bounded"],
              "push": f["push"], "target": f["target"], "loss2_target": f["loss2_target"],
              "ratio": b["normalized_ratio"], "initial": f"{num(b['initial_loss1'])} / {num(b['initial_loss2'])}",
              "unit": f"{num(b['unit_norm_loss1'])} / {num(b['unit_norm_loss2'])}"}
    return Readout((Reading("misconceptions", values),))


def read_predict(settings: dict, run: Run = direct) -> Readout:
    """The values of predict.why, one sentence per option: why each is right or wrong, from experiment 1."""
    f = seed_facts(settings, run)
    values = {"requires_grad": f["grad"]["torch.tensor"], "gap": f["gap"], "steps": f["steps"],
              "loss2_start": f["loss2_start"], "loss1_end": f["loss1_loss1_only"]}
    return Readout((Reading("predict.why", values),))


READINGS = {"seed": read_seed, "tradeoff": read_tradeoff, "conflict": read_conflict, "balance": read_balance,
            "misconceptions": read_misconceptions, "predict": read_predict}
