"""Combining objectives: minimise one loss, maximise another, and weight terms of very different size."""

import core.multi_objective as core
import ui
from core import multi_objective_balance as balance
from core import multi_objective_readings as readings
from core.charts.multi_objective import FIGURES

page = ui.Page("multi_objective", core.CONTROLS, FIGURES)
page.header()
page.predict()


# 1. The learner's loop: a detached loss2 does nothing; a real one has no maximum, nor does its tanh
@page.experiment("seed")
def _seed():
    page.control("max_alpha_exp")
    page.figure("seed_loss1")
    page.figure("seed_loss2")
    page.readout("seed")


# 2. The trade-off curve, and a mismatch in scale
@page.experiment("tradeoff")
def _tradeoff():
    page.controls("alpha_exp", "scale_exp")
    page.figure("tradeoff")
    page.figure("alpha_sweep")
    page.readout("tradeoff")


# 3. Conflict: two gradients on one shared model
@page.experiment("conflict")
def _conflict():
    page.controls("mismatch_exp", "task_alpha_exp", "optimizer")
    page.figure("conflict")
    page.readout("conflict")


# 4. Six ways to combine the two gradients
@page.experiment("balance")
def _balance():
    page.figure("trajectories")
    page.figure("final")
    page.figure("weights")
    page.readout("balance")


page.misconceptions()
page.show_code(core.seed_example, core.seed_examples, core.adam_update, core.tanh_push, core.tradeoff_curve,
               core.train_tradeoff, core.tradeoff_sweeps, balance.balance_run, balance.pcgrad, balance.mgda,
               readings.read_seed)
page.takeaways()
