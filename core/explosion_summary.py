"""The live numbers the explosion page's words quote, read off the experiments' DataFrames.

Concept: each reading on the page states a measured fact (a growth factor, a crossing gain, the step a
run blew up at); these functions compute those facts, and pick which sentence is true at the current
settings ("case" keys), so that the page only formats them and tests can hold every one of them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core.explosion import FLOAT32_MAX, spread
from core.explosion_training import CLIPS, POISON_STEP, Survival, blowups

FLOAT32_TINY = 1.1754943508222875e-38  # torch.finfo(torch.float32).tiny: below it float32 loses digits, then all


def spreads(df: pd.DataFrame, by: str, column: str) -> list[float]:
    """spread(group, column) of every group of df by `by`, in the order the groups first appear."""
    codes, _ = pd.factorize(df[by])  # 0, 1, ... in the order the groups first appear
    _, first = np.unique(codes, return_index=True)  # each group's first row
    _, from_end = np.unique(codes[::-1], return_index=True)
    values = df[column].to_numpy()
    return [float(a / b) for a, b in zip(values[first], values[len(codes) - 1 - from_end], strict=True)]


def level(ratio: float) -> bool:
    """Within a factor of ten of level: what the page calls level."""
    return 0.1 < ratio < 10


def range_case(values: pd.Series) -> str:
    """'overflow' past float32's largest number, 'underflow' below its smallest normal one, else 'fits'."""
    positive = values[values > 0]
    if positive.max() > FLOAT32_MAX:
        return "overflow"
    return "underflow" if len(positive) and positive.min() < FLOAT32_TINY else "fits"


def depth_summary(layers: pd.DataFrame, init_gain: float) -> dict:
    """Signal and weight-gradient spreads of one net (see core.explosion.spread), and which sentence fits."""
    depth = len(layers)
    signal, weight = spread(layers, "activation_grad_norm"), spread(layers, "weight_grad_norm")
    case = "both" if level(signal) and level(weight) else "cancel" if level(weight) else "spread"
    return {
        "depth": depth, "gain": init_gain, "signal": signal, "weight": weight,
        "per_layer": signal ** (1 / max(depth - 1, 1)),  # geometric mean factor per layer
        "closed": init_gain ** (depth - 1),  # what gain^(depth - 1) alone would give
        "forward": float(layers.input_norm.iloc[-1] / layers.input_norm.iloc[0]),  # last layer's input / first's
        "signal_vs_closed": signal / init_gain ** (depth - 1),
        "forward_vs_closed": float(layers.input_norm.iloc[-1] / layers.input_norm.iloc[0]) / init_gain ** (depth - 1),
        "decades": abs(math.log10(weight)),
        "weight_typical": float(np.exp(np.log(layers.weight_grad_norm).mean())),  # geometric mean over layers
        "peak": float(layers[["activation_grad_norm", "weight_grad_norm", "input_norm"]].to_numpy().max()),
        "case": case,
        "range": range_case(layers[["activation_grad_norm", "weight_grad_norm"]].stack()),
    }


def level_gain(sweep: pd.DataFrame, activation: str, quantity: str = "signal") -> float | None:
    """The init gain where the first-to-last ratio crosses 1, interpolated in log ratio; None if it never does."""
    rows = (sweep.activation.to_numpy() == activation) & (sweep.quantity.to_numpy() == quantity)
    gains, ratios = sweep.init_gain.to_numpy()[rows], sweep.ratio.to_numpy()[rows]
    order = np.argsort(gains, kind="quicksort")  # as sort_values("init_gain") orders them
    gains, logs = gains[order], np.log(ratios[order])
    for i in range(len(gains) - 1):
        if logs[i] == 0 or logs[i] * logs[i + 1] < 0:
            return float(gains[i] + (gains[i + 1] - gains[i]) * -logs[i] / (logs[i + 1] - logs[i]))
    return None


def sweep_summary(sweep: pd.DataFrame) -> dict:
    """Crossing gains of the signal per activation (None: no crossing), the range the linear and relu weight lines
    keep, the sigmoid lines' highest ratio, and which sentences fit."""
    weights = sweep[(sweep.quantity == "weight gradient") & sweep.activation.isin(["linear", "relu"])].ratio
    sigmoid = float(sweep[sweep.activation == "sigmoid"].ratio.max())
    return {**{f"{a}_cross": level_gain(sweep, a) for a in ("linear", "tanh", "relu")},
            "weight_lo": float(weights.min()), "weight_hi": float(weights.max()), "sigmoid_max": sigmoid,
            "cancel": "cancel" if level(weights.min()) and level(weights.max()) else "no_cancel",
            "sigmoid": "below" if sigmoid < 1 else "reaches"}


def time_summary(df: pd.DataFrame, spectral_radius: float, nonlinearity: str, sigma_max: float) -> dict:
    """The norms at the last step, the gated cells' largest norm, and which of Pascanu's sentences fits."""
    end = df[df.t == df.t.max()].set_index("model").norm
    rnn = float(end[f"RNN, {nonlinearity}"])
    gated = df[df.model.isin(["LSTM", "LSTM, forget bias +1", "GRU"])].norm
    pascanu = "vanish" if sigma_max < 1.0 else "grew" if rnn > 1.0 else "fell"
    return {"T": int(df.t.max()), "rho": spectral_radius, "nl": nonlinearity, "rnn": rnn,
            "bound": float(end["bound ρ^t"]), "below_bound": rnn / float(end["bound ρ^t"]), "sigma": sigma_max,
            "lstm": float(end["LSTM"]), "lstm_fb": float(end["LSTM, forget bias +1"]), "gru": float(end["GRU"]),
            "gated_max": float(gated.max()), "gated_case": "below" if gated.max() < 1.0 else "above",
            "pascanu": pascanu, "range": range_case(df.norm)}


def clipping_summary(runs: pd.DataFrame, threshold: float, n_parameters: int) -> dict:
    """Per clip mode: blow-up step or final loss; how often norm clipping acted; the largest norms after."""
    found = blowups(runs)
    clipping, loss = runs.clipping.to_numpy(), runs.loss.to_numpy(dtype=float)
    before, after = runs.grad_norm.to_numpy(dtype=float), runs.clipped_grad_norm.to_numpy(dtype=float)
    finite = np.isfinite(before) & np.isfinite(after) & (before > 0)
    norm = (clipping == "norm") & np.isfinite(after)
    value = (clipping == "value") & np.isfinite(after)
    end = {c: float(loss[clipping == c][-1]) for c in CLIPS}
    return {
        "start": float(loss[0]),  # every run starts from the same weights
        "norm_worse": found.get("norm") is None and end["norm"] > float(loss[0]),
        "blown": {c: found.get(c) for c in CLIPS},
        "end_loss": end,
        "norm_clipped": int((before[norm] > threshold).sum()), "norm_steps": int(norm.sum()),
        "norm_max_after": largest(after[norm]),
        "value_max_after": largest(after[value]),
        "value_cap": threshold * math.sqrt(n_parameters), "n_params": n_parameters,
        "max_ratio": largest(after[finite] / before[finite]),
    }


def largest(values: np.ndarray) -> float:
    """The largest of finite values; NaN when there are none, as pandas' max says."""
    return float(values.max()) if len(values) else math.nan


def direction_summary(vectors: pd.DataFrame, threshold: float) -> dict:
    """The 2-D clip: which clip acted, how far each turned the gradient, the lengths before and after."""
    v = vectors.set_index("vector")
    g = v.loc["gradient"]
    case = "none" if g.norm <= threshold else "norm_only" if max(abs(g.x), abs(g.y)) <= threshold else "both"
    return {"case": case, "n0": float(g.norm), "a0": float(g.angle), "thr": threshold,
            "n_norm": float(v.loc["clip_grad_norm_"].norm), "t_norm": float(v.loc["clip_grad_norm_"].turn),
            "n_value": float(v.loc["clip_grad_value_"].norm), "t_value": float(v.loc["clip_grad_value_"].turn),
            "a_value": float(v.loc["clip_grad_value_"].angle)}


def single_sample_summary(df: pd.DataFrame) -> dict:
    """Per-layer growth of the signal for the batch and for each sample alone; single-sample / batch gradient size."""
    batch = df[df.run == "batch"]
    samples = df[df.run != "batch"]
    depth = len(batch)

    def per_layer(d: pd.DataFrame) -> float:
        return spread(d, "activation_grad_norm") ** (1 / max(depth - 1, 1))

    growth = pd.Series([ratio ** (1 / max(depth - 1, 1)) for ratio in spreads(samples, "run", "activation_grad_norm")])
    first = samples[samples.layer == 1].weight_grad_norm / float(batch.weight_grad_norm.iloc[0])
    return {"p_batch": per_layer(batch), "p_lo": float(growth.min()), "p_hi": float(growth.max()),
            "ratio_lo": float(first.min()), "ratio_hi": float(first.max()), "ratio_mean": float(first.mean()),
            "samples": len(growth), "within": bool(growth.min() <= per_layer(batch) <= growth.max())}


def survival_summary(survival: Survival) -> dict:
    """Where the unguarded run went NaN, what the guards skipped and where they ended, and the raised error."""
    c = survival.curves.set_index(["guard", "step"]).unstack("guard")
    loss, skipped = c["loss"], c["skipped"]
    bad = loss.index[~np.isfinite(loss["none"].to_numpy(dtype=float))]
    return {"p": POISON_STEP, "none_from": int(bad[0]) if len(bad) else None,
            "skip_end": float(loss["skip"].iloc[-1]), "scaler_end": float(loss["grad_scaler"].iloc[-1]),
            "skip_skips": int(skipped["skip"].sum()), "scaler_skips": int(skipped["grad_scaler"].sum()),
            "gap": float((loss["grad_scaler"] - loss["skip"]).abs().max()), "steps": len(loss),
            "error_step": survival.error_step, "error": survival.error}


def saturation_summary(comparison: pd.DataFrame) -> dict:
    """Per activation at the same weights: the signal's growth back to the input and the largest |phi'| met."""
    growth = dict(zip(pd.unique(comparison.activation), spreads(comparison, "activation", "activation_grad_norm")))
    slope = comparison.groupby("activation").max_derivative.max()
    return {"g_linear": float(growth["linear"]), "g_tanh": float(growth["tanh"]), "g_sigmoid": float(growth["sigmoid"]),
            "d_tanh": float(slope["tanh"]), "d_sigmoid": float(slope["sigmoid"])}


def clip_layers_summary(clipped: pd.DataFrame, sigmoid: pd.DataFrame) -> dict:
    """clip_grad_norm_ on the depth net: its one total norm, the factors the layers got, their own norms' range;
    and the first layer of the sigmoid net before and after."""
    return {"total": float(clipped.total.iloc[0]), "f_min": float(clipped.factor.min()),
            "f_max": float(clipped.factor.max()), "n_min": float(clipped.before.min()),
            "n_max": float(clipped.before.max()), "layers": len(clipped),
            "clipped": bool(clipped.factor.max() < 1.0),
            "sig_before": float(sigmoid.before.iloc[0]), "sig_after": float(sigmoid.after.iloc[0]),
            "sig_factor": float(sigmoid.factor.iloc[0])}
