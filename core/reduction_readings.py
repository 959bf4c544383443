"""What the reduction page says about its numbers: each experiment's sentences, chosen and filled here.

Every reader takes the page's settings (every control by its key, and "seed") and the `run` that computes (or
fetches from the page's cache) each result, and returns the metric tiles and the paragraphs as content keys of
content/en/reduction.toml with their values. A run that diverged is read as a divergence with its step.
"""

from __future__ import annotations

import math

import core.reduction as core
from core import reduction_elements as elements
from core.loss_scaling import divergence_step
from core.loss_scaling_readings import DASH, finite, fmt, preset_link
from core.readings import Reading, Readout, Run, direct, figure_data

PAGE = "reduction"
SAME = 1e-4  # a largest weight gap at or below this is float32 rounding between two routes to one run


def _charts():
    from core.charts import reduction as charts  # the page's shared, bounded caches of one experiment

    return charts


def read_norms(settings, run: Run = direct) -> Readout:
    b, seed = settings["batch_size"], settings["seed"]
    sweep = run(_charts().norm_sweep, seed=seed)
    sum_norm, mean_norm = (run(core.gradient_norm, r, b, seed=seed) for r in ("sum", "mean"))
    median = sweep.norms.pivot(index="batch_size", columns="reduction", values="median")
    band = sweep.norms[sweep.norms.reduction == "mean"].set_index("batch_size")
    small, large = min(core.SWEEP_BATCHES), max(core.SWEEP_BATCHES)
    values = {"b": b, "sum_norm": sum_norm, "mean_norm": mean_norm, "ratio": sum_norm / mean_norm, "small": small,
              "large": large, "sum_small": median.loc[small, "sum"], "sum_large": median.loc[large, "sum"],
              "mean_small": median.loc[small, "mean"], "mean_large": median.loc[large, "mean"],
              "full": sweep.full_norm, "lo_small": band.loc[small, "lo"], "hi_small": band.loc[small, "hi"],
              "lo_large": band.loc[large, "lo"], "hi_large": band.loc[large, "hi"]}
    values = {k: float(v) if not isinstance(v, int) else v for k, v in values.items()}
    return Readout((Reading("experiments.norms.reading", values),),
                   {"sum_norm": f"{sum_norm:.4g}", "mean_norm": f"{mean_norm:.4g}", "ratio": f"{values['ratio']:.6g}"})


def _breaks(curves) -> dict[str, int]:
    return {name: at for name, group in curves.groupby("run", sort=False)
            if (at := divergence_step(group.sort_values("step").loss.tolist())) is not None}


def read_training(settings, run: Run = direct) -> Readout:
    b, lr, steps, seed = settings["batch_size"], settings["lr"], settings["steps"], settings["seed"]
    runs = _charts().training_runs(figure_data(PAGE, "training", settings, run))
    broke = _breaks(runs.curves)
    final = runs.curves[runs.curves.step == steps].set_index("run").loss
    readings = [Reading("experiments.training.reading", {"b": b, "lr": lr, "lr_times_b": lr * b,
                                                         "step_ratio": runs.step_ratio})]
    values = {"b": b, "lr": lr, "steps": steps, "lr_times_b": lr * b}
    if "SGD, mean, lr" in broke:
        readings.append(Reading("experiments.training.reading_mean_diverged",
                                {**values, "at": broke["SGD, mean, lr"]}, "warning"))
    else:
        values["mean_final"] = float(final["SGD, mean, lr"])
        if b == 1:
            readings.append(Reading("experiments.training.reading_one", values))
        elif "SGD, sum, lr" in broke:
            readings.append(Reading("experiments.training.reading_sum_diverged",
                                    {**values, "at": broke["SGD, sum, lr"]}, "warning"))
        else:
            readings.append(Reading("experiments.training.reading_sum_survived",
                                    {**values, "sum_final": float(final["SGD, sum, lr"])}))
        if "SGD, sum, lr / B" in broke or not finite(runs.sgd_gap):
            readings.append(Reading("experiments.training.reading_lr_b_diverged",
                                    {"at": broke.get("SGD, sum, lr / B", steps)}, "warning"))
        else:
            key = "reading_lr_b_same" if runs.sgd_gap <= SAME else "reading_lr_b_rounding"
            readings.append(Reading(f"experiments.training.{key}", {"sgd_gap": runs.sgd_gap}))
    adam_broke = [broke[r] for r in ("Adam, mean, lr", "Adam, sum, lr") if r in broke]
    if adam_broke or not finite(runs.adam_gap):
        readings.append(Reading("experiments.training.reading_adam_diverged", {"at": min(adam_broke, default=steps)},
                                "warning"))
    else:
        key = "reading_adam_same" if runs.adam_gap < 1e-2 else "reading_adam_apart"
        readings.append(Reading(f"experiments.training.{key}", {"adam_gap": runs.adam_gap}))
    best = elements.best_lr(run(elements.lr_by_batch, seed=seed))
    small, mid, large = elements.LR_BATCHES
    moves = len(set(best.values())) > 1
    key = "reading_best_lr" if moves else "reading_best_same"
    readings.append(Reading(f"experiments.training.{key}", {
        "best_small": best.get(small, math.nan), "best_mid": best.get(mid, math.nan),
        "best_large": best.get(large, math.nan), "small": small, "mid": mid, "large": large,
        "epochs": elements.EPOCHS}))
    metrics = {"step_ratio": f"{runs.step_ratio:.6g}", "sgd_gap": fmt(runs.sgd_gap, ".1e"),
               "adam_gap": fmt(runs.adam_gap, ".1e")}
    return Readout(tuple(readings), metrics)


def read_epoch(settings, run: Run = direct) -> Readout:
    n, eb, seed = settings["n_examples"], settings["epoch_batch"], settings["seed"]
    short = run(_charts().short_batch, n, eb, seed=seed)
    full_len = min(n, eb)
    layout = "single" if n <= eb else "even" if n % eb == 0 else "short"
    values = {"n": n, "b": eb, "full": n // eb, "last": short.last_len, "batches": math.ceil(n / eb),
              "mobm": short.mean_of_batch_means, "weighted": short.weighted, "true": short.true_mean,
              "off": abs(short.mean_of_batch_means / short.true_mean - 1), "gap": abs(short.weighted - short.true_mean),
              "ratio": full_len / short.last_len}
    return Readout((Reading(f"experiments.epoch.reading_{layout}", values),),
                   {"mean_of_batch_means": f"{short.mean_of_batch_means:.6f}", "weighted": f"{short.weighted:.6f}",
                    "true_mean": f"{short.true_mean:.6f}", "short_weight": f"{values['ratio']:.3g}×"})


def read_d2l(settings, run: Run = direct) -> Readout:
    n, eb, lr, seed = settings["n_examples"], settings["epoch_batch"], settings["lr"], settings["seed"]
    d2l = run(core.d2l_routes, n, eb, lr=lr, seed=seed)
    values = {"n": n, "b": eb, "lr": lr, "gap_d2l": d2l.gap_d2l, "gap_none_mean": d2l.gap_none_mean,
              "loss_gap": d2l.loss_gap}
    metrics = {"gap_d2l": fmt(d2l.gap_d2l, ".1e"), "gap_none_mean": fmt(d2l.gap_none_mean, ".1e"),
               "loss_gap": fmt(d2l.loss_gap, ".1e")}
    if d2l.diverged or not finite(d2l.gap_d2l, d2l.gap_none_mean, d2l.loss_gap):
        return Readout((Reading("experiments.d2l.reading_diverged", {"n": n, "b": eb, "lr": lr}, "warning"),),
                       {k: DASH for k in metrics})
    key = "reading" if max(d2l.gap_d2l, d2l.gap_none_mean) <= SAME else "reading_rounding"
    return Readout((Reading(f"experiments.d2l.{key}", values),), metrics)


def _noise(settings, run: Run) -> dict:
    seed, sb = settings["seed"], settings["sample_batch"]
    ps = run(_charts().per_sample, sb, seed=seed)
    spread = run(_charts().norm_sweep, seed=seed).spread.set_index("batch_size")
    small, large = min(core.SWEEP_BATCHES), max(core.SWEEP_BATCHES)
    return {"mean_norm": ps.mean_norm, "batch_norm": ps.batch_norm, "small": small, "large": large, "sb": sb,
            "s_small": float(spread.loc[small, "spread"]), "s_large": float(spread.loc[large, "spread"]),
            "acc_gap": ps.accumulated_gap, "c_small": float(spread.loc[small, "closed_form"]),
            "c_large": float(spread.loc[large, "closed_form"]),
            "w_large": float(spread.loc[large, "spread_without"]),
            "cw_large": float(spread.loc[large, "closed_form_without"]), "pool": core.N_POOL,
            "norm_ratio": ps.mean_norm / ps.batch_norm, "vmap_ms": ps.vmap_ms, "loop_ms": ps.loop_ms,
            "speedup": ps.loop_ms / ps.vmap_ms, "loop_gap": ps.loop_gap}


def read_per_sample(settings, run: Run = direct) -> Readout:
    v = _noise(settings, run)
    timing = "per_sample_faster" if v["speedup"] > 1 else "per_sample_slower"
    readings = (Reading(f"experiments.per_sample.reading_{timing}", v), Reading("experiments.per_sample.reading", v))
    return Readout(readings,
                   {"vmap_ms": f"{v['vmap_ms']:.2f} ms", "loop_ms": f"{v['loop_ms']:.2f} ms",
                    "speedup": f"{v['speedup']:.1f}×", "loop_gap": f"{v['loop_gap']:.1e}"})


def _weights(w: float, seed: int, run: Run) -> dict:
    cw = run(core.class_weights, w, seed=seed)
    n = len(cw.examples)
    return {"n": n, "rare": cw.rare, "count": int((cw.examples.target == cw.rare).sum()), "w": w,
            "weight_sum": cw.weight_sum, "total": cw.total, "library": cw.library_mean,
            "over_weights": cw.total / cw.weight_sum, "over_n": cw.total / n}


def read_class_weights(settings, run: Run = direct) -> Readout:
    v = _weights(settings["class_weight"], settings["seed"], run)
    key = "reading" if v["w"] != 1 else "reading_plain"
    return Readout((Reading(f"experiments.class_weights.{key}", v),),
                   {"library_mean": f"{v['library']:.6f}", "over_weights": f"{v['over_weights']:.6f}",
                    "over_n": f"{v['over_n']:.6f}", "weight_sum": f"{v['weight_sum']:g}"})


def _elements(settings, run: Run) -> dict:
    b, d, ignored, seed = settings["batch_size"], settings["outputs"], settings["ignored"], settings["seed"]
    ratios = run(_charts().element_ratios, b, seed=seed).set_index("outputs")
    ce = run(_charts().ignore_index_mean, ignored, seed=seed)
    return {"b": b, "d": d, "ratio": float(ratios.loc[d, "ratio"]), "bd": b * d,
            "mean_loss": float(ratios.loc[d, "mean_loss"]), "sum_over_bd": float(ratios.loc[d, "sum_over_bd"]),
            "ignored": ignored, "kept": ce.kept, "n_ce": elements.N_CE, "library": ce.library_mean,
            "over_kept": ce.total / ce.kept, "over_n": ce.total / elements.N_CE, "total": ce.total}


def read_elements(settings, run: Run = direct) -> Readout:
    v = _elements(settings, run)
    readings = (Reading("experiments.elements.reading" if v["d"] > 1 else "experiments.elements.reading_one", v),
                Reading("experiments.elements.reading_ignore" if v["ignored"] else "experiments.elements.reading_none",
                        v),
                Reading("experiments.elements.reading_ddp", {}))
    return Readout(readings, {"element_ratio": f"{v['ratio']:.6g}", "b_times_d": f"{v['bd']:,}",
                              "ce_library": f"{v['library']:.6f}", "ce_over_kept": f"{v['over_kept']:.6f}",
                              "ce_over_n": f"{v['over_n']:.6f}"})


def read_misconceptions(settings, run: Run = direct) -> Readout:
    """One reading per misconception: "..._here" refutes it at these settings; otherwise it says where it shows."""
    b, lr, steps, seed = settings["batch_size"], settings["lr"], settings["steps"], settings["seed"]
    sweep = run(_charts().norm_sweep, seed=seed)
    first = sweep.norms.pivot(index="batch_size", columns="reduction", values="first")
    large = max(core.SWEEP_BATCHES)
    runs = _charts().training_runs(figure_data(PAGE, "training", settings, run))
    big_ratio = float(first.loc[large, "sum"] / first.loc[large, "mean"])
    readings = [Reading("evidence.printed_here", {"b": b, "step_ratio": runs.step_ratio, "large": large,
                                                  "big_ratio": big_ratio})]
    faster = {"steps": steps, "lr": lr, "lr_b": lr / b, "lr_times_b": lr * b, "sgd_gap": runs.sgd_gap,
              "link": preset_link(PAGE, "sum_small_lr")}
    if finite(runs.sgd_gap) and runs.sgd_gap <= SAME and "SGD, mean, lr" not in _breaks(runs.curves):
        readings.append(Reading("evidence.faster_here", faster))
    else:
        readings.append(Reading("evidence.faster_elsewhere", {k: v for k, v in faster.items() if k != "sgd_gap"}))
    noise = _noise(settings, run)
    refutes = noise["mean_norm"] >= noise["batch_norm"] and noise["s_small"] > noise["s_large"]
    readings.append(Reading("evidence.explode_here" if refutes else "evidence.explode_elsewhere",
                            {**noise, "link": preset_link(PAGE, "all_per_sample")}))
    weights = _weights(settings["class_weight"], seed, run)
    shapes = _elements(settings, run)
    if weights["w"] != 1:
        readings.append(Reading("evidence.divides_weights", weights))
    elif shapes["ignored"]:
        readings.append(Reading("evidence.divides_ignore", shapes))
    elif shapes["d"] > 1:
        readings.append(Reading("evidence.divides_outputs", shapes))
    else:
        readings.append(Reading("evidence.divides_elsewhere", {"link": preset_link(PAGE, "batches_of_one")}))
    best = elements.best_lr(run(elements.lr_by_batch, seed=seed))
    small, mid, big = elements.LR_BATCHES
    lr_values = {"best_small": best.get(small, math.nan), "best_large": best.get(big, math.nan), "small": small,
                 "large": big, "epochs": elements.EPOCHS, "link": f"/{PAGE}?seed=0"}
    moves = finite(lr_values["best_small"], lr_values["best_large"]) and len(set(best.values())) > 1
    readings.append(Reading("evidence.same_lr_here" if moves else "evidence.same_lr_elsewhere",
                            lr_values if moves else {"link": lr_values["link"], "epochs": elements.EPOCHS}))
    return Readout(tuple(readings))


def read_predict(settings, run: Run = direct) -> Readout:
    """The numbers behind each predict option's why: B = 32 as the question says, at the page's lr."""
    lr, seed, b = settings["lr"], settings["seed"], 32
    summed, mean = (run(core.gradient_norm, r, b, seed=seed) for r in ("sum", "mean"))
    values = {"ratio": summed / mean, "lr": lr, "lr_32": lr * b, "first_gap": abs(summed / b / mean - 1)}
    return Readout((Reading("predict.why", values),))


READINGS = {
    "norms": read_norms, "training": read_training, "epoch": read_epoch, "d2l": read_d2l,
    "per_sample": read_per_sample, "class_weights": read_class_weights, "elements": read_elements,
    "misconceptions": read_misconceptions, "predict": read_predict,
}
