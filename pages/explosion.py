"""Exploding gradients: where exploding and vanishing gradients come from, and what clipping does."""

import core.explosion as core
import ui
from core import explosion_residual as residual
from core import explosion_training as training
from core.charts.explosion import FIGURES

page = ui.Page("explosion", core.CONTROLS, FIGURES)
page.header()
page.predict()


# 1. Through depth
@page.experiment("depth")
def _depth():
    page.controls("activation", "depth", "init_gain")
    page.figure("layers")
    page.figure("gain_sweep")
    page.readout("depth")


# 2. Through time
@page.experiment("time")
def _time():
    page.controls("seq_len", "spectral_radius", "nonlinearity")
    page.figure("time")
    page.readout("time")


# 3. A learning rate that blows up, with and without clipping
@page.experiment("clipping")
def _clipping():
    page.controls("lr", "threshold", "steps")
    page.figure("training_loss")
    page.figure("training_norms")
    page.readout("clipping")


# 4. Norm clipping keeps the direction, value clipping turns it
@page.experiment("direction")
def _direction():
    page.controls("g_x", "g_y")
    page.figure("clip_2d")
    page.readout("direction")


# 5. Surviving one non-finite step
@page.experiment("survival")
def _survival():
    page.figure("survival")
    page.readout("survival")


# 6. Residual connections, at experiment 1's depth, gain and activation
@page.experiment("residual")
def _residual():
    page.figure("residual")
    page.readout("residual")

# Misconceptions: experiment 1's net under every activation, clipped, and one sample at a time
page.misconceptions()
page.show_code(core.layer_gradient_norms, core.depth_problem, core.backward_norms, core.gain_sweep,
               core.rnn_gradient_norms, core.gated_trajectory_norms, training.clip_gradients, training.training_steps,
               core.clip_2d, core.surviving_runs, training.poisoned_step, residual.ResidualBlock,
               residual.hooked_norms, residual.residual_comparison, core.clip_each_layer, core.single_sample_gradients)
page.takeaways()
