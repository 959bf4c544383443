"""What the explosion page says about its numbers: every reading chosen and filled here (DESIGN rule 11).

Each reader takes the page's settings (every control plus "seed") and the page's `run`, fetches the very results
the figures draw (figure_data) or plain core calls through run, and returns the metric tiles and the paragraphs
(content key + the values its placeholders take). core/explosion.py exports them as READINGS.
"""

from __future__ import annotations

import math

from core import explosion as ex
from core import explosion_residual as residual
from core import explosion_summary as summary
from core import explosion_training as training
from core.readings import Reading, Readout, Run, direct, figure_data

PAGE = "explosion"
SIGNAL = "activation_grad_norm"


def e(key: str, values: dict | None = None, tone: str = "text") -> Reading:
    return Reading(f"experiments.{key}.reading", values or {}, tone)


def read_depth(settings: dict, run: Run = direct) -> Readout:
    """Experiment 1: the layer chart's spreads and which sentences fit, then the gain sweep's crossings."""
    activation = settings["activation"]
    d = summary.depth_summary(figure_data(PAGE, "layers", settings, run), settings["init_gain"])
    readings = [e("depth", d)]
    if activation == "linear":
        readings.append(e("depth_linear", d))
    readings.append(e(f"depth_{d['case']}", d))
    if d["case"] == "spread":
        readings.append(e(f"depth_spread_{activation}", d))
    if d["range"] != "fits":
        readings.append(e(f"depth_{d['range']}", d))
    sweep = figure_data(PAGE, "gain_sweep", settings, run)
    sw = summary.sweep_summary(sweep)
    tanh = sweep[(sweep.activation == "tanh") & (sweep.quantity == "signal")].set_index("init_gain").ratio
    readings.append(e("depth_sweep", {"depth": d["depth"]}))
    for name in ("linear", "relu", "tanh"):
        cross = sw[f"{name}_cross"]
        values = {"gain": cross, "at_1": float(tanh[1.0]), "depth": d["depth"], "calculated": 5 / 3}
        readings.append(e(f"depth_sweep_{name}_{'cross' if cross is not None else 'never'}", values))
    readings.append(e(f"depth_sweep_{sw['cancel']}", sw))
    readings.append(e(f"depth_sweep_sigmoid_{sw['sigmoid']}", {**sw, "depth": d["depth"]}))
    metrics = {"signal": f"{d['signal']:.3g}", "per_layer": f"{d['per_layer']:.3f}", "closed": f"{d['closed']:.3g}",
               "weight": f"{d['weight']:.3g}"}
    return Readout(tuple(readings), metrics)


def read_time(settings: dict, run: Run = direct) -> Readout:
    """Experiment 2: the RNN's norm at T beside rho^T, Pascanu's condition, the gated cells."""
    rho, nonlinearity = settings["spectral_radius"], settings["nonlinearity"]
    sigma = run(ex.pascanu_condition, rho, nonlinearity, seed=settings["seed"])["sigma_max"]
    t = summary.time_summary(figure_data(PAGE, "time", settings, run), rho, nonlinearity, sigma)
    readings = [e("time", t), e(f"time_{nonlinearity}", t), e(f"time_pascanu_{t['pascanu']}", t),
                e(f"time_gated_{t['gated_case']}", t)]
    if t["range"] != "fits":
        readings.append(e(f"time_{t['range']}", t))
    metrics = {"rnn_end": f"{t['rnn']:.3g}", "bound_end": f"{t['bound']:.3g}", "sigma": f"{t['sigma']:.4f}",
               "lstm_end": f"{t['lstm']:.2e}", "gru_end": f"{t['gru']:.2e}"}
    return Readout(tuple(readings), metrics)


def read_clipping(settings: dict, run: Run = direct) -> Readout:
    """Experiment 3: where each run went non-finite (a warning), or where it ended; what norm clipping did."""
    lr, threshold = settings["lr"], settings["threshold"]
    c = summary.clipping_summary(figure_data(PAGE, "training_loss", settings, run), threshold, training.N_PARAMETERS)
    warnings, ends, metrics = [], [], {}
    for mode in ex.CLIPS:
        step = c["blown"][mode]
        if step is not None:
            warnings.append(e(f"clipping_blew_{mode}", {"step": step}, "warning"))
            metrics[f"{mode}_blew"] = str(step)
        else:
            end = c["end_loss"][mode]
            ends.append(e(f"clipping_ended_{mode}", {"loss": end, "times": end / c["start"]}))
            metrics[f"{mode}_end"] = f"{end:.3g}"
    metrics["norm_clipped"] = f"{c['norm_clipped']} / {c['norm_steps']}"
    values = {k: v for k, v in c.items() if not isinstance(v, dict)}
    readings = [*warnings, e("clipping", {**values, "lr": lr, "thr": threshold, "step_cap": lr * threshold}), *ends]
    if c["norm_worse"]:
        readings.append(e("clipping_worse", {"start": c["start"], "end": c["end_loss"]["norm"]}))
    return Readout(tuple(readings), metrics)


def read_direction(settings: dict, run: Run = direct) -> Readout:
    """Experiment 4: which clip acted on the 2-D gradient; clip_grad_norm_'s factor max_norm / (norm + 1e-6)."""
    threshold = settings["threshold"]
    v = summary.direction_summary(figure_data(PAGE, "clip_2d", settings, run), threshold)
    v["factor"] = min(1.0, threshold / (v["n0"] + 1e-6))  # what clip_grad_norm_ multiplies by
    metrics = {"n_norm": f"{v['n_norm']:.4g}", "turn_norm": f"{v['t_norm']:.1g}°", "n_value": f"{v['n_value']:.4g}",
               "turn_value": f"{v['t_value']:.2f}°"}
    return Readout((e(f"direction_{v['case']}", v),), metrics)


def read_survival(settings: dict, run: Run = direct) -> Readout:
    """Experiment 5: the corrupt batch's finite loss and NaN gradients, and how each guard fared."""
    seed = settings["seed"]
    s = summary.survival_summary(run(training.surviving_runs, seed=seed))
    p = run(training.poisoned_step, seed)
    readings = [e("survival_batch_" + ("finite" if p["loss_finite"] else "nonfinite"), {**p, "p": s["p"]})]
    if s["none_from"] is not None:
        readings.insert(0, e("survival_nan", {"at": s["none_from"]}, "warning"))
    values = {k: v for k, v in s.items() if k not in ("error_step", "error", "none_from")}
    readings.append(e("survival_guards", values))
    if s["error_step"] is not None:
        readings.append(e("survival_error", {"error_step": s["error_step"], "error": s["error"]}))
    metrics = {"skip_end": f"{s['skip_end']:.4g}", "scaler_end": f"{s['scaler_end']:.4g}"}
    if s["error_step"] is not None:
        metrics["error_step"] = str(s["error_step"])
    return Readout(tuple(readings), metrics)


def read_residual(settings: dict, run: Run = direct) -> Readout:
    """Experiment 6: the plain net's and the residual net's signal spreads at the same depth, gain and weights."""
    df = figure_data(PAGE, "residual", settings, run)
    depth = int(df.layer.max())
    spreads = {net: float(d.signal.iloc[0] / d.signal.iloc[-1]) for net, d in df.groupby("net", sort=False)}
    plain, res = spreads[residual.NETS[0]], spreads[residual.NETS[1]]
    per = {name: value ** (1 / max(depth - 1, 1)) for name, value in (("plain_per", plain), ("res_per", res))}
    values = {"depth": depth, "gain": settings["init_gain"], "activation": settings["activation"], "plain": plain,
              "res": res, **per}
    plain_case = "level" if summary.level(plain) else "exploded" if plain > 1 else "vanished"
    if summary.level(res):
        res_case = "level"
    elif abs(math.log(res)) < abs(math.log(plain)):
        res_case = "milder"
    else:
        res_case = "no_better"
    readings = (e(f"residual_plain_{plain_case}", values), e(f"residual_{res_case}", values))
    return Readout(readings, {"plain": f"{plain:.3g}", "residual": f"{res:.3g}"})


def read_misconceptions(settings: dict, run: Run = direct) -> Readout:
    """The values of every misconception's evidence, each of which refutes its claim at every setting."""
    depth, gain, activation, seed = settings["depth"], settings["init_gain"], settings["activation"], settings["seed"]
    saturation = summary.saturation_summary(run(ex.activation_comparison, depth, init_gain=gain, seed=seed))
    preset = run(ex.layer_gradient_norms, 50, activation="tanh", init_gain=3.0, seed=seed)
    preset_signal = ex.spread(preset, SIGNAL)
    clipped = run(ex.clip_each_layer, depth, settings["threshold"], activation=activation, init_gain=gain, seed=seed)
    clip_thr = settings["threshold"]
    if float(clipped.total.iloc[0]) <= clip_thr:  # the clip would not act: show it at half the total norm instead
        clip_thr = float(clipped.total.iloc[0]) / 2
        clipped = run(ex.clip_each_layer, depth, clip_thr, activation=activation, init_gain=gain, seed=seed)
    sigmoid = run(ex.clip_each_layer, depth, settings["threshold"], activation="sigmoid", init_gain=gain, seed=seed)
    layers = summary.clip_layers_summary(clipped, sigmoid)
    alone = summary.single_sample_summary(run(ex.single_sample_gradients, depth, activation=activation,
                                              init_gain=gain, seed=seed))
    runs = figure_data(PAGE, "training_loss", settings, run)
    c = summary.clipping_summary(runs, settings["threshold"], training.N_PARAMETERS)
    values = {"depth": depth, "gain": gain, "thr": settings["threshold"], "clip_thr": clip_thr,
              "max_ratio": c["max_ratio"], "preset_signal": preset_signal,
              "preset_per_layer": preset_signal ** (1 / 49), **saturation,
              **{k: v for k, v in layers.items() if not isinstance(v, bool)},
              **{k: v for k, v in alone.items() if not isinstance(v, bool)}}
    return Readout((Reading("misconceptions", values),))


def read_predict(settings: dict, run: Run = direct) -> Readout:
    """The values of predict.why: each option's verdict with experiment 1's live numbers."""
    depth, gain, seed = settings["depth"], settings["init_gain"], settings["seed"]
    saturation = summary.saturation_summary(run(ex.activation_comparison, depth, init_gain=gain, seed=seed))
    alone = summary.single_sample_summary(run(ex.single_sample_gradients, depth, activation=settings["activation"],
                                              init_gain=gain, seed=seed))
    values = {"depth": depth, "gain": gain, "closed": gain ** (depth - 1), "activation": settings["activation"],
              **saturation, **{k: v for k, v in alone.items() if not isinstance(v, bool)}}
    return Readout((Reading("predict.why", values),))


READINGS = {"depth": read_depth, "time": read_time, "clipping": read_clipping, "direction": read_direction,
            "survival": read_survival, "residual": read_residual, "misconceptions": read_misconceptions,
            "predict": read_predict}
