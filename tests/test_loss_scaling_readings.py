"""The loss-scaling page's readings over the whole control space: sound sentences whose branch fits their numbers."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import settings as hsettings

import core.loss_scaling as ls
from content import words
from core import loss_scaling_amp as amp
from core.export import settings_for
from core.figures import registry
from core.loss_scaling_readings import READINGS, preset_link
from core.readings import evidence, placeholders, problems
from tests.strategies import check_readout, diverged, settings_of

PAGE = "loss_scaling"
SETTINGS = settings_of(ls.CONTROLS)


def keys(readout) -> list[str]:
    return [r.key.rsplit(".", 1)[1] for r in readout.readings]



@hsettings(max_examples=6)
@given(SETTINGS)
def test_update_reading(settings):
    readout = READINGS["update"](settings)
    check_readout(PAGE, readout)
    s, lr, steps, eps = 10.0 ** settings["scale_exp"], settings["lr"], settings["steps"], 10.0 ** settings["eps_exp"]
    for name in ("sgd", "adam"):
        runs = []
        for scale in (s, 1.0):
            model, x, y = ls.reference_problem(settings["seed"])
            runs.append(diverged(ls.train(model, x, y, optimizer=name, scale=scale, lr=lr, steps=steps, eps=eps)))
        warned = any(r.tone == "warning" and r.values["name"] == ls.NAMES[name] for r in readout.readings)
        assert warned == any(runs), (name, runs)
        assert (readout.metrics[name] == "—") == any(runs)
    found = keys(readout)
    if "reading_sgd_one" in found:
        (r,) = [r for r in readout.readings if r.key.endswith("sgd_one")]
        assert steps == 1 and abs(r.values["sgd"] / s - 1) < 1e-2
    assert ("reading_sgd_many" in found) <= (steps > 1)
    sweep = registry(PAGE)["update_ratio"].data(lr=lr, steps=steps, eps_exp=settings["eps_exp"], seed=settings["seed"])
    adam = sweep[sweep.optimizer == "adam"].sort_values("scale")
    for r in readout.readings:
        if r.key.endswith("reading_knee"):
            assert (adam[adam.scale <= r.values["knee"]].update_ratio < 0.5).all()
            above = adam[adam.scale > r.values["knee"]]
            assert len(above) == 0 or not above.update_ratio.iloc[0] < 0.5
        if r.key.endswith("reading_no_knee"):
            assert not adam.update_ratio.iloc[0] < 0.5


@hsettings(max_examples=10)
@given(SETTINGS)
def test_equivalence_reading(settings):
    readout = READINGS["equivalence"](settings)
    check_readout(PAGE, readout)
    runs = ls.equivalent_runs(10.0 ** settings["scale_exp"], lr=settings["lr"], weight_decay=settings["weight_decay"],
                              eps=10.0 ** settings["eps_exp"], seed=settings["seed"])
    sgd_broke = any(diverged(g.loss) for r, g in runs.curves.groupby("run") if r.startswith("SGD"))
    found = keys(readout)
    assert ("reading_sgd_diverged" in found) == sgd_broke
    if not sgd_broke:
        assert ("reading_same" in found) == (runs.sgd_gap <= 1e-5)
        assert ("reading_decay" in found) == (runs.sgd_gap > 1e-5 and settings["weight_decay"] > 0)
    adam = [r for r in readout.readings if r.key.endswith("reading_adam")]
    if adam:  # eps / s is computed from the eps control, not from torch's default
        assert adam[0].values["eps_s"] == 10.0 ** settings["eps_exp"] / 10.0 ** settings["scale_exp"]


@hsettings(max_examples=10)
@given(SETTINGS)
def test_decay_reading(settings):
    readout = READINGS["decay"](settings)
    check_readout(PAGE, readout)
    found = keys(readout)
    if "reading_diverged" not in found:
        assert ("reading_off" in found) == (settings["coupled_wd"] == 0)
        (r,) = [r for r in readout.readings if "adamw" in r.key]
        assert r.key.endswith("adamw_ignores") == (abs(r.values["adamw"] - 1) < 1e-2)


@hsettings(max_examples=10)
@given(SETTINGS)
def test_frozen_reading(settings):
    readout = READINGS["frozen"](settings)
    check_readout(PAGE, readout)
    (adam,) = [r for r in readout.readings if "adam" in r.key]
    assert adam.key.endswith("moving") == (adam.values["adam_first"] >= 0.9)


@hsettings(max_examples=10)
@given(SETTINGS)
def test_fp16_bf16_gradients_readings(settings):
    for key in ("fp16", "bf16", "gradients"):
        check_readout(PAGE, READINGS[key](settings))
    trace = ls.grad_scaler_run(growth_interval=settings["growth_interval"], seed=settings["seed"])
    found = keys(READINGS["fp16"](settings))
    expected = "clean" if not trace.skipped.any() else "grew" if trace.scale.max() > 2.0**16 else "capped"
    assert f"reading_scaler_{expected}" in found


@hsettings(max_examples=10)
@given(SETTINGS)
def test_clipping_reading(settings):
    readout = READINGS["clipping"](settings)
    check_readout(PAGE, readout)
    v = readout.readings[0].values
    assert math.isclose(v["measured"], v["scale"] * v["true"], rel_tol=1e-3)  # it measured S times the true norm
    assert readout.readings[0].key.endswith("wrong_clipped") == (v["measured"] > v["max_norm"])
    assert readout.readings[1].key.endswith("right_clipped") == (v["true"] > v["max_norm"])


@hsettings(max_examples=6)
@given(SETTINGS)
def test_misconception_evidence_refutes_or_says_where(settings):
    readout = READINGS["misconceptions"](settings)
    check_readout(PAGE, readout)
    w = words(PAGE)
    texts = evidence(readout, w)
    for item in w["misconceptions"]:
        text = item["evidence"].format(**texts)
        assert not problems(text), text
    for r in readout.readings:
        if r.key.endswith("_elsewhere"):
            assert "](/loss_scaling?" in w(r.key, **r.values)  # it names and links where the claim is refuted
        if r.key == "evidence.tenth_here":
            assert not 0.05 < r.values["adam"] < 0.2  # Adam's step is not a tenth
        if r.key == "evidence.ignore_here":
            assert max(abs(r.values["adam"] - 1), abs(r.values["rmsprop"] - 1)) > 1e-2


def test_the_links_of_elsewhere_land_where_the_claim_is_refuted():
    link = preset_link(PAGE, "loss_div_10")
    assert link == "/loss_scaling?loss_scaling_scale_exp=-1"
    readout = READINGS["misconceptions"](settings_for(PAGE, "loss_div_10"))
    assert all(r.key.endswith("_here") for r in readout.readings)


@hsettings(max_examples=10)
@given(SETTINGS)
def test_every_why_of_the_predict_block_fills(settings):
    w = words(PAGE)
    (reading,) = READINGS["predict"](settings).readings
    assert reading.key == "predict.why"
    why = w["predict.why"]
    assert len(why) == len(w["predict.options"])
    for template in why:
        assert placeholders(template) <= set(reading.values)
        text = template.format(**reading.values)
        assert not problems(text, reading.values), text
    # the right answer's numbers: SGD a tenth, Adam about the same
    assert abs(reading.values["sgd"] - 0.1) < 1e-3 and abs(reading.values["adam"] - 1) < 1e-2


def test_every_reading_key_exists_at_the_defaults_and_presets():
    for preset in (None, *ls.PRESETS):
        settings = settings_for(PAGE, preset)
        for key, reader in READINGS.items():
            if key != "predict":
                check_readout(PAGE, reader(settings))


def test_sgd_at_lr_one_and_fifty_steps_is_read_as_a_divergence_not_a_nan():
    """The reported case: lr = 1, 50 steps printed "SGD moved nan times as far"."""
    settings = {**settings_for(PAGE, None), "lr": 1.0, "steps": 50}
    readout = READINGS["update"](settings)
    texts = check_readout(PAGE, readout)
    assert readout.metrics["sgd"] == "—"
    assert any("SGD diverged" in t for t in texts) and not any("nan" in t for t in texts)
    assert amp.ROUTES  # the page's clipping routes are importable beside the readers
