"""Loss scaling: does `loss = loss / 10` make the update ten times smaller?"""

import core.loss_scaling as core
import ui
from core import fp16, loss_scaling_amp, loss_scaling_decay
from core.charts.loss_scaling import FIGURES

page = ui.Page("loss_scaling", core.CONTROLS, FIGURES)
page.header()
page.predict()


# 1. Gradients scale exactly
@page.experiment("gradients")
def _gradients():
    page.control("scale_exp")
    page.figure("gradient_ratios")
    page.readout("gradients")


# 2. The update depends on the optimizer
@page.experiment("update")
def _update():
    page.controls("lr", "steps", "eps_exp")
    page.figure("update_ratio")
    page.readout("update")


# 3. SGD: loss × s at lr is loss at lr × s, until weight decay
@page.experiment("equivalence")
def _equivalence():
    page.control("weight_decay")
    page.figure("equivalent_runs")
    page.readout("equivalence")


# 4. Coupled weight decay against AdamW
@page.experiment("decay")
def _decay():
    page.control("coupled_wd")
    page.figure("decay")
    page.readout("decay")


# 5. float32 has the last word
@page.experiment("frozen")
def _frozen():
    page.figure("frozen")
    page.readout("frozen")


# 6. Mixed precision: float16's limits and GradScaler
@page.experiment("fp16")
def _fp16():
    page.controls("fp16_log2_scale", "growth_interval")
    page.figure("fp16_histogram")
    page.figure("fp16_sweep")
    page.figure("grad_scaler")
    page.readout("fp16")


# 7. bfloat16 beside float16
@page.experiment("bf16")
def _bf16():
    page.figure("formats")
    page.readout("bf16")


# 8. GradScaler with clipping and accumulation
@page.experiment("clipping")
def _clipping():
    page.control("max_norm_exp")
    page.figure("clipping")
    page.readout("clipping")


page.misconceptions()
page.show_code(core.train, core._Run, core.gradient_ratios, core.update_outcome, core._moved, core.scaling_sweep,
               core.equivalent_runs, loss_scaling_decay.decay_sweep, loss_scaling_decay.adam_decay_identity,
               core.adam_first_step,
               core.fp16_underflow_fraction, fp16.scale_sweep, fp16.grad_scaler_trace,
               loss_scaling_amp.autocast_grad_dtypes, loss_scaling_amp.format_sweep, loss_scaling_amp.clipping_run)
page.takeaways()
