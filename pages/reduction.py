"""Reduction: `l.mean().backward()` or `l.sum().backward()`, 'none', and per-sample gradients."""

import core.reduction as core
import ui
from core import reduction_elements
from core.charts.reduction import FIGURES

page = ui.Page("reduction", core.CONTROLS, FIGURES)
page.header()
page.predict()


# 1. The gradient of the sum is B times the gradient of the mean
@page.experiment("norms")
def _norms():
    page.control("batch_size")
    page.figure("norms")
    page.readout("norms")


# 2. Training: the sum at lr is a B times larger step; the sum at lr / B is the mean run
@page.experiment("training")
def _training():
    page.controls("lr", "steps")
    page.figure("training")
    page.figure("lr_batch")
    page.readout("training")


# 3. A short last batch: the epoch loss three ways, and the weight of each example
@page.experiment("epoch")
def _epoch():
    page.controls("n_examples", "epoch_batch")
    page.figure("epoch_loss")
    page.figure("weights")
    page.readout("epoch")


# 4. d2l's hand-written updater is SGD on the mean
@page.experiment("d2l")
def _d2l():
    page.readout("d2l")


# 5. Per-sample gradients: torch.func against a loop; noise, not explosion
@page.experiment("per_sample")
def _per_sample():
    page.control("sample_batch")
    page.figure("per_sample")
    page.figure("spread")
    page.readout("per_sample")


# 6. Class weights: 'mean' divides by the sum of the targets' weights
@page.experiment("class_weights")
def _class_weights():
    page.control("class_weight")
    page.readout("class_weights")


# 7. What 'mean' divides by: every element, and only the kept targets
@page.experiment("elements")
def _elements():
    page.controls("outputs", "ignored")
    page.figure("elements")
    page.figure("ignored")
    page.readout("elements")


page.misconceptions()
page.show_code(core.gradient_norm, core.norm_sweep, core.train_runs, reduction_elements.lr_by_batch, core.epoch_loss,
               core.short_batch, core.d2l_sgd, core.d2l_routes, core.per_sample_gradients,
               core.per_sample_gradients_loop, core.per_sample, core.class_weights, reduction_elements.element_ratios,
               reduction_elements.ignore_index_mean)
page.takeaways()
