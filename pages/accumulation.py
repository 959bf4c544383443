"""Gradient accumulation: why gradients add up, zero_grad(), and when k micro-batches are one big batch."""

import core.accumulation as core
import ui
from core import accumulation_batchnorm as batchnorm
from core import accumulation_clipping as clipping
from core import accumulation_memory as memory
from core import accumulation_recipe as recipe
from core.charts.accumulation import FIGURES

page = ui.Page("accumulation", core.CONTROLS, FIGURES)
page.header()
page.predict(none4=page.run(core.accumulation_error, 4, "none", seed=page.seed))


# 1. Forgetting zero_grad()
@page.experiment("zero_grad")
def _zero_grad():
    page.control("lr")
    page.figure("zero_grad_loss")
    page.figure("zero_grad_gradient")
    page.readout("zero_grad")


@page.experiment("set_to_none")
def _set_to_none():
    page.figure("none_vs_zero")
    page.readout("set_to_none")


# 2. Accumulation done right
@page.experiment("normalization")
def _normalization():
    page.controls("micro_batches", "normalization")
    page.figure("error_vs_k")
    page.figure("training")
    page.readout("normalization")


# 3. The popular recipe
@page.experiment("recipe")
def _recipe():
    page.figure("recipe")
    page.readout("recipe")


# 4. Variable-length sequences
@page.experiment("tokens")
def _tokens():
    page.control("spread")
    page.figure("tokens")
    page.readout("tokens")


# 5. BatchNorm
@page.experiment("batchnorm")
def _batchnorm():
    page.figure("batchnorm")
    page.readout("batchnorm")


# 6. Memory
@page.experiment("memory")
def _memory():
    page.control("memory_k")
    page.figure("memory")
    page.readout("memory")


# 7. Clipping and the scheduler, with experiment 2's k
@page.experiment("clip_schedule")
def _clip_schedule():
    page.control("max_norm")
    page.figure("clip_schedule_loss")
    page.figure("clip_schedule_lr")
    page.readout("clip_schedule")


page.misconceptions()
page.show_code(core.zero_grad_runs, core.none_versus_zero, core.micro_loss, core.accumulate, core.accumulated_and_full,
               core.token_problem, core.training_curves, recipe.run_recipe, core.batchnorm_sweep,
               batchnorm.single_example_batchnorm, memory.backward_peak, memory.StorageWatch,
               clipping.clip_accumulation_runs, clipping.micro_batch_gradients)
page.takeaways()
