"""What the loss-scaling page says about its numbers: each experiment's sentences, chosen and filled here.

Every reader takes the page's settings (every control by its key, and "seed") and the `run` that computes
(or fetches from the page's cache) each result; it returns the metric tiles and the paragraphs, each a content
key of content/en/loss_scaling.toml and the values it takes. A run that went non-finite or past a million is
read as a divergence, with the step where it happened, and none of its numbers is printed.
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

import torch

import core.loss_scaling as ls
from core import loss_scaling_amp as amp
from core import loss_scaling_decay as decay
from core.controls import defaults, preset_settings
from core.readings import Reading, Readout, Run, direct, figure_data

PAGE = "loss_scaling"
DASH = "—"  # a metric that has no number: its run diverged


def preset_link(page: str, name: str) -> str:
    """The relative link of a page's preset, as the page's preset links write it (only what differs from defaults)."""
    import importlib

    module = importlib.import_module(f"core.{page}")
    base = defaults(module.CONTROLS)
    values = preset_settings(module.CONTROLS, module.PRESETS, name)
    keep = set(module.PRESETS[name])  # the preset's own keys stay in the link even where they equal the default
    return f"/{page}?" + urlencode({f"{page}_{k}": str(v).lower() if isinstance(v, bool) else v
                                    for k, v in values.items() if v != base[k] or k in keep})


def finite(*values: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def fmt(value: float, spec: str) -> str:
    return format(value, spec) if finite(value) else DASH


def _common(settings) -> tuple[float, float, int, float, int]:
    return (10.0 ** settings["scale_exp"], settings["lr"], settings["steps"], 10.0 ** settings["eps_exp"],
            settings["seed"])


def prefix_scale(sweep, optimizer: str, holds) -> float | None:
    """The largest swept s such that `holds(row)` at every swept scale up to s (None if not at the smallest)."""
    rows = sweep[sweep.optimizer == optimizer].sort_values("scale")
    found = None
    for row in rows.itertuples(index=False):
        if not holds(row):
            break
        found = float(row.scale)
    return found


def read_gradients(settings, run: Run = direct) -> Readout:
    s, seed = 10.0 ** settings["scale_exp"], settings["seed"]
    ratios = figure_data(PAGE, "gradient_ratios", settings, run)
    dev = (ratios.ratio / s - 1).abs().groupby(ratios.dtype).max().fillna(0.0)
    cosine = run(ls.gradient_cosine, s, seed=seed)
    values = {"s": s, "dev32": float(dev["float32"]), "dev64": float(dev["float64"]), "cosine": cosine}
    key = "reading" if values["dev32"] > 0 else "reading_exact"
    metrics = {"dev32": f"{values['dev32']:.1e}", "dev64": f"{values['dev64']:.1e}", "cosine": f"{1 - cosine:.1e}"}
    return Readout((Reading(f"experiments.gradients.{key}", values),), metrics)


def read_update(settings, run: Run = direct) -> Readout:
    s, lr, steps, eps, seed = _common(settings)
    outcomes = {name: run(ls.update_outcome, name, s, steps=steps, seed=seed, lr=lr, eps=eps)
                for name in ls.OPTIMIZERS}
    sweep = figure_data(PAGE, "update_ratio", settings, run)
    readings = [Reading("experiments.update.reading", {"s": s, "steps": steps, "lr": lr})]
    broke = {}
    for name, o in outcomes.items():
        if o.scaled_diverged is not None or o.plain_diverged is not None or not finite(o.ratio):
            which = ("both" if o.scaled_diverged is not None and o.plain_diverged is not None
                     else "scaled" if o.scaled_diverged is not None else "plain")
            at = min(v for v in (o.scaled_diverged, o.plain_diverged, steps) if v is not None)
            broke[name] = at
            readings.append(Reading(f"experiments.update.reading_diverged_{which}",
                                    {"name": ls.NAMES[name], "at": at, "lr": lr, "s": s}, "warning"))
    sgd, adam = outcomes["sgd"].ratio, outcomes["adam"].ratio
    if "sgd" not in broke:
        if steps > 1:
            readings.append(Reading("experiments.update.reading_sgd_many", {"sgd": sgd, "s": s, "steps": steps}))
        elif abs(sgd / s - 1) < 1e-2:
            readings.append(Reading("experiments.update.reading_sgd_one", {"sgd": sgd, "s": s}))
        else:
            frozen = sweep[(sweep.optimizer == "sgd") & (sweep.scale == s)].frozen_fraction
            readings.append(Reading("experiments.update.reading_sgd_rounded",
                                    {"sgd": sgd, "s": s, "frozen": float(frozen.iloc[0]) if len(frozen) else 0.0}))
    if "adam" not in broke:
        readings.append(Reading("experiments.update.reading_adam", {"adam": adam, "eps": eps}))
        knee = ls.threshold_scale(sweep, "adam")
        readings.append(Reading("experiments.update.reading_knee", {"knee": knee}) if knee is not None
                        else Reading("experiments.update.reading_no_knee", {"eps": eps}))
    metrics = {name: DASH if name in broke else fmt(o.ratio, ".4g") for name, o in outcomes.items()}
    return Readout(tuple(readings), metrics)


def _curve_breaks(curves) -> dict[str, int]:
    return {run: step for run, group in curves.groupby("run", sort=False)
            if (step := ls.divergence_step(group.sort_values("step").loss.tolist())) is not None}


def read_equivalence(settings, run: Run = direct) -> Readout:
    s, lr, _, eps, seed = _common(settings)
    wd = settings["weight_decay"]
    runs = run(ls.equivalent_runs, s, lr=lr, weight_decay=wd, eps=eps, seed=seed)
    broke = _curve_breaks(runs.curves)
    sgd_broke = [broke[r] for r in (ls.SGD_SCALED, ls.SGD_LR) if r in broke]
    adam_broke = [broke[r] for r in (ls.ADAM_SCALED, ls.ADAM_PLAIN) if r in broke]
    readings = []
    base = {"s": s, "lr": lr, "lr_s": lr * s, "wd": wd}
    if sgd_broke or not finite(runs.sgd_gap):
        readings.append(Reading("experiments.equivalence.reading_sgd_diverged",
                                {**base, "at": min(sgd_broke, default=20)}, "warning"))
    else:
        readings.append(Reading("experiments.equivalence.reading_sgd", {**base, "sgd_gap": runs.sgd_gap}))
        branch = "same" if runs.sgd_gap <= 1e-5 else "decay" if wd > 0 else "rounding"
        readings.append(Reading(f"experiments.equivalence.reading_{branch}", {"sgd_gap": runs.sgd_gap, "wd": wd}))
    if adam_broke or not finite(runs.adam_gap):
        readings.append(Reading("experiments.equivalence.reading_adam_diverged",
                                {"at": min(adam_broke, default=20), "lr": lr}, "warning"))
    else:
        readings.append(Reading("experiments.equivalence.reading_adam",
                                {"adam_gap": runs.adam_gap, "eps": eps, "eps_s": eps / s, "s": s}))
    return Readout(tuple(readings), {"sgd_gap": DASH if sgd_broke else fmt(runs.sgd_gap, ".2e"),
                                     "adam_gap": DASH if adam_broke else fmt(runs.adam_gap, ".2e")})


def read_decay(settings, run: Run = direct) -> Readout:
    s, lr, _, eps, seed = _common(settings)
    wd = settings["coupled_wd"]
    sweep = figure_data(PAGE, "decay", settings, run)
    at = sweep[sweep.scale == s].set_index("optimizer").update_ratio
    ratios = {name: float(at.get(name, float("nan"))) for name in decay.DECAY_OPTIMIZERS}
    identity = run(decay.adam_decay_identity, s, wd, lr=lr, eps=eps, seed=seed)
    metrics = {f"decay_{name}": fmt(r, ".4f") for name, r in ratios.items()} | {"identity_gap": fmt(identity, ".1e")}
    if not finite(*ratios.values(), identity):
        return Readout((Reading("experiments.decay.reading_diverged", {"lr": lr, "s": s}, "warning"),), metrics)
    values = {**ratios, "s": s, "wd": wd, "wd_s": wd / s, "eps": eps, "eps_s": eps / s, "identity_gap": identity,
              "steps": decay.DECAY_STEPS}
    readings = [Reading("experiments.decay.reading" if wd > 0 else "experiments.decay.reading_off", values)]
    readings.append(Reading("experiments.decay.reading_adamw_ignores" if abs(ratios["adamw"] - 1) < 1e-2
                            else "experiments.decay.reading_adamw_eps", values))
    return Readout(tuple(readings), metrics)


def read_frozen(settings, run: Run = direct) -> Readout:
    s, lr, _, eps, seed = _common(settings)
    sweep = figure_data(PAGE, "update_ratio", settings, run)
    all_frozen = prefix_scale(sweep, "sgd", lambda row: row.frozen_fraction == 1.0)
    readings = [Reading("experiments.frozen.reading", {"lr": lr, "all_frozen": all_frozen}) if all_frozen
                else Reading("experiments.frozen.reading_sgd_moves", {"lr": lr})]
    first, frozen = run(ls.adam_first_step, s, lr=lr, eps=eps, seed=seed)
    big_first, big_frozen = run(ls.adam_first_step, s, lr=lr, eps=1e-2, seed=seed)
    values = {"s": s, "eps": eps, "adam_first": first, "adam_frozen": frozen, "big_first": big_first,
              "big_frozen": big_frozen}
    readings.append(Reading("experiments.frozen.reading_adam_moving" if first >= 0.9
                            else "experiments.frozen.reading_adam_shrunk", values))
    return Readout(tuple(readings), {"adam_first": f"{first:.3g}", "adam_frozen": f"{frozen:.1%}"})


def read_fp16(settings, run: Run = direct) -> Readout:
    k, gi, seed = settings["fp16_log2_scale"], settings["growth_interval"], settings["seed"]
    hist = figure_data(PAGE, "fp16_histogram", settings, run)
    fates = figure_data(PAGE, "fp16_sweep", settings, run)
    trace = figure_data(PAGE, "grad_scaler", settings, run)
    at_k = fates[fates.log2_scale == k].set_index("fate").fraction
    skipped, top, start = int(trace.skipped.sum()), float(trace.scale.max()), float(trace.scale.iloc[0])
    scaler = "clean" if skipped == 0 else "grew" if top > start else "capped"
    dtypes = run(amp.autocast_grad_dtypes, seed=seed)
    readings = (
        Reading("experiments.fp16.reading", {"n": int(hist["count"].sum()), "k": k}),
        Reading(f"experiments.fp16.reading_scaler_{scaler}",
                {"growth_interval": gi, "top": int(top), "skipped": skipped, "steps": len(trace)}),
        Reading("experiments.fp16.reading_dtypes", {"param": dtypes["param"], "activation": dtypes["activation"]}),
    )
    return Readout(readings, {"flushed": f"{at_k['flushed to zero']:.3%}",
                              "overflow": f"{at_k['overflow to inf']:.3%}"})


def read_bf16(settings, run: Run = direct) -> Readout:
    k = settings["fp16_log2_scale"]
    sweep = figure_data(PAGE, "formats", settings, run)
    at = sweep[sweep.log2_scale == k].set_index("dtype")
    bf, half = torch.finfo(torch.bfloat16), torch.finfo(torch.float16)
    values = {"k": k, "fp16_lost": float(at.lost["float16"]), "bf16_lost": float(at.lost["bfloat16"]),
              "fp16_err": float(at.rel_error["float16"]), "bf16_err": float(at.rel_error["bfloat16"]),
              "bf16_tiny": bf.tiny, "bf16_max": bf.max, "bf16_eps": bf.eps, "fp16_eps": half.eps}
    key = "reading" if values["bf16_lost"] == 0 else "reading_bf16_lost"
    return Readout((Reading(f"experiments.bf16.{key}", values),),
                   {"fp16_lost": f"{values['fp16_lost']:.3%}", "bf16_lost": f"{values['bf16_lost']:.3%}",
                    "fp16_err": f"{values['fp16_err']:.1e}", "bf16_err": f"{values['bf16_err']:.1e}"})


def read_clipping(settings, run: Run = direct) -> Readout:
    max_norm = 10.0 ** settings["max_norm_exp"]
    trace = figure_data(PAGE, "clipping", settings, run)
    first = trace[trace.step == 1].set_index("route")
    right, wrong = first.loc["clip after unscale_"], first.loc["clip the scaled gradients"]
    values = {"max_norm": max_norm, "scale": float(wrong.scale), "true": float(right.true_norm),
              "measured": float(wrong.measured), "wrong_applied": float(wrong.applied),
              "right_applied": float(right.applied), "micro": amp.MICRO_BATCHES}
    readings = [
        Reading("experiments.clipping.reading_wrong_clipped" if values["measured"] > max_norm
                else "experiments.clipping.reading_wrong_unclipped", values),
        Reading("experiments.clipping.reading_right_clipped" if values["true"] > max_norm
                else "experiments.clipping.reading_right_unclipped", values),
        Reading("experiments.clipping.reading_accumulation", values),
    ]
    if trace.skipped.any():
        readings.append(Reading("experiments.clipping.reading_skipped", {"skipped": int(trace.skipped.sum())}, "note"))
    return Readout(tuple(readings), {"clip_true": f"{values['true']:.4g}", "clip_measured": f"{values['measured']:.4g}",
                                     "clip_wrong": f"{values['wrong_applied']:.3g}",
                                     "clip_right": f"{values['right_applied']:.4g}"})


def read_misconceptions(settings, run: Run = direct) -> Readout:
    """One reading per misconception, "…_here" (the live number refutes the claim) or "…_elsewhere" (with a link)."""
    s, lr, _, eps, seed = _common(settings)
    link = preset_link(PAGE, "loss_div_10")
    tenth = {n: run(ls.update_outcome, n, 0.1, steps=1, seed=seed, lr=lr, eps=eps).ratio for n in ("sgd", "adam")}
    readings = []
    ok = finite(*tenth.values()) and not 0.05 < tenth["adam"] < 0.2
    readings.append(Reading("evidence.tenth_here" if ok else "evidence.tenth_elsewhere",
                            {**tenth, "eps": eps, "link": link}))
    cosine = run(ls.gradient_cosine, s, seed=seed)
    readings.append(Reading("evidence.direction_here" if 1 - cosine < 1e-6 else "evidence.direction_elsewhere",
                            {"s": s, "cosine": cosine, "link": link}))
    gap = run(ls.scaler_update_gap, seed=seed)
    readings.append(Reading("evidence.scaler_here" if gap == 0 else "evidence.scaler_elsewhere", {"scaler_gap": gap}))
    wd = settings["coupled_wd"]
    sweep = figure_data(PAGE, "decay", settings, run)
    at = sweep[sweep.scale == s].set_index("optimizer").update_ratio
    adam, rmsprop = float(at.get("adam", float("nan"))), float(at.get("rmsprop", float("nan")))
    refutes = finite(adam, rmsprop) and max(abs(adam - 1), abs(rmsprop - 1)) > 1e-2
    readings.append(Reading("evidence.ignore_here" if refutes else "evidence.ignore_elsewhere",
                            {"s": s, "wd": wd, "adam": adam, "rmsprop": rmsprop, "link": link}))
    clip = read_clipping(settings, run).readings[0]
    readings.append(Reading("evidence.clip_here" if clip.key.endswith("wrong_clipped") else "evidence.clip_elsewhere",
                            {**clip.values, "link": link}))
    return Readout(tuple(readings))


def read_predict(settings, run: Run = direct) -> Readout:
    """The numbers behind each predict option's why: loss / 10, one step at the page's lr, torch's default eps."""
    lr, seed = settings["lr"], settings["seed"]
    values = {n: run(ls.update_outcome, n, 0.1, steps=1, seed=seed, lr=lr, eps=1e-8).ratio
              for n in ("sgd", "momentum", "adam", "adamw")}
    values |= {"lr": lr, "one_minus_cos": 1 - run(ls.gradient_cosine, 0.1, seed=seed)}
    return Readout((Reading("predict.why", values),))


READINGS = {
    "gradients": read_gradients, "update": read_update, "equivalence": read_equivalence, "decay": read_decay,
    "frozen": read_frozen, "fp16": read_fp16, "bf16": read_bf16, "clipping": read_clipping,
    "misconceptions": read_misconceptions, "predict": read_predict,
}
