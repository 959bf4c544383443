"""Exploding gradients: where exploding and vanishing gradients come from, and what clipping does."""

import core.explosion as core
import ui
from core import explosion_summary as summary
from core import explosion_training as training
from core.charts import explosion as charts
from core.charts.explosion import FIGURES
from core.nonfinite import first_nonfinite

page = ui.Page("explosion", core.CONTROLS, FIGURES)
page.header()
page.predict()


def status(blown_at: int | None, loss: float) -> str:
    """How a training run ended, in words."""
    return page.words("phrases.blew", step=blown_at) if blown_at is not None else page.words("phrases.ended", loss=loss)


def gain_text(gain: float | None) -> str:
    return f"{gain:.2f}" if gain is not None else page.words["phrases.never"]


# 1. Through depth
page.experiment("depth")
activation, depth, gain = page.controls("activation", "depth", "init_gain")
d = summary.depth_summary(page.figure("layers"), gain)
page.metrics({"signal": f"{d['signal']:.3g}", "per_layer": f"{d['per_layer']:.3f}", "closed": f"{d['closed']:.3g}",
              "weight": f"{d['weight']:.3g}"})
page.reading("depth", **d)
if activation == "linear":
    page.reading("depth_linear", **d)
page.reading(f"depth_{d['case']}", **d)
if d["case"] == "spread":
    page.reading(f"depth_spread_{activation}", **d)
if d["range"] != "fits":
    page.reading(f"depth_{d['range']}", **d)
sw = summary.sweep_summary(page.figure("gain_sweep"))
page.reading("depth_sweep", **{key: gain_text(sw[key]) for key in ("linear_cross", "relu_cross", "tanh_cross")})
page.reading(f"depth_sweep_{sw['cancel']}", **sw)
page.reading(f"depth_sweep_sigmoid_{sw['sigmoid']}", depth=depth, **sw)

# 2. Through time
page.experiment("time")
seq_len, rho, nonlinearity = page.controls("seq_len", "spectral_radius", "nonlinearity")
sigma = page.run(core.pascanu_condition, rho, nonlinearity, seed=page.seed)["sigma_max"]
t = summary.time_summary(page.figure("time"), rho, nonlinearity, sigma)
page.metrics({"rnn_end": f"{t['rnn']:.3g}", "bound_end": f"{t['bound']:.3g}", "sigma": f"{t['sigma']:.4f}",
              "lstm_end": f"{t['lstm']:.2e}", "gru_end": f"{t['gru']:.2e}"})
page.reading("time", **t)
page.reading(f"time_{nonlinearity}", **t)
page.reading(f"time_pascanu_{t['pascanu']}", **t)
page.reading(f"time_gated_{t['gated_case']}", **t)
if t["range"] != "fits":
    page.reading(f"time_{t['range']}", **t)

# 3. A learning rate that blows up, with and without clipping
page.experiment("clipping")
lr, threshold, steps = page.controls("lr", "threshold", "steps")
runs = charts.clipping_runs(threshold, lr, steps, page.seed)
page.nonfinite({page.words[f"runs.clip_{mode}"]: step for mode, step in core.blowups(runs).items()})
page.figure("training_loss")
page.figure("training_norms")
c = summary.clipping_summary(runs, threshold, training.N_PARAMETERS)
ends = {mode: status(c["blown"][mode], c["end_loss"][mode]) for mode in core.CLIPS}
page.metrics({**ends, "norm_clipped": f"{c['norm_clipped']} / {c['norm_steps']}"})
page.reading("clipping", lr=lr, thr=threshold, step_cap=lr * threshold, **ends, **c)
if c["norm_worse"]:
    page.reading("clipping_worse")

# 4. Norm clipping keeps the direction, value clipping turns it
page.experiment("direction")
page.controls("g_x", "g_y")
v = summary.direction_summary(page.figure("clip_2d"), threshold)
page.metrics({"n_norm": f"{v['n_norm']:.4g}", "turn_norm": f"{v['t_norm']:.1g}°", "n_value": f"{v['n_value']:.4g}",
              "turn_value": f"{v['t_value']:.2f}°"})
page.reading(f"direction_{v['case']}", **v)

# 5. Surviving one non-finite step
page.experiment("survival")
survival = charts.survival(page.seed)
broken = first_nonfinite(survival.curves, "loss", by="guard")
page.nonfinite({page.words[f"runs.guard_{guard}"]: step for guard, step in broken.items()})
page.figure("survival")
s = summary.survival_summary(survival)
page.metrics({"skip_end": f"{s['skip_end']:.4g}", "scaler_end": f"{s['scaler_end']:.4g}",
              "error_step": str(s["error_step"])})
page.reading("survival", **s)

# Misconceptions: experiment 1's net under every activation, clipped, and one sample at a time
comparison = page.run(core.activation_comparison, depth, init_gain=gain, seed=page.seed)
clipped = page.run(core.clip_each_layer, depth, threshold, activation=activation, init_gain=gain, seed=page.seed)
sigmoid = page.run(core.clip_each_layer, depth, threshold, activation="sigmoid", init_gain=gain, seed=page.seed)
single = page.run(core.single_sample_gradients, depth, activation=activation, init_gain=gain, seed=page.seed)
layers_clip, alone = summary.clip_layers_summary(clipped, sigmoid), summary.single_sample_summary(single)
page.misconceptions(depth=depth, gain=gain, thr=threshold, max_ratio=c["max_ratio"],
                    clip_note=page.words["phrases.clip_acted" if layers_clip["clipped"] else "phrases.clip_idle"],
                    inside=page.words["phrases.inside" if alone["within"] else "phrases.outside"],
                    **summary.saturation_summary(comparison), **layers_clip, **alone)
page.show_code(core.layer_gradient_norms, core.depth_problem, core.backward_norms, core.gain_sweep,
               core.rnn_gradient_norms, core.gated_trajectory_norms, training.clip_gradients, training.clipped_training,
               core.clip_2d, core.surviving_runs, core.clip_each_layer, core.single_sample_gradients)
page.takeaways()
