"""Accuracy vs loss: how can validation loss and validation accuracy both go up?"""

import core.accuracy_vs_loss as core
import core.accuracy_vs_loss_counting as counting
import core.accuracy_vs_loss_readings as readings
import core.accuracy_vs_loss_smoothing as smoothing
import ui
from core.charts.accuracy_vs_loss import FIGURES

page = ui.Page("accuracy_vs_loss", core.CONTROLS, FIGURES)
page.header()
page.predict()


# 1. One example: a step against a curve
@page.experiment("one")
def _one():
    page.control("p_true")
    page.figure("one_example")
    page.readout("one")


# 2. Scenario builder
@page.experiment("scenario")
def _scenario():
    page.controls("n_examples", "wrong_share")
    page.controls("wrong_conf", "right_conf")
    page.figure("scenario_plane")
    page.figure("loss_split")
    page.readout("scenario")


# 3. A real run: the validation loss turns, accuracy does not follow
@page.experiment("overfit")
def _overfit():
    page.controls("label_noise", "epochs", "train_size")
    page.figure("overfit_loss")
    page.figure("overfit_accuracy")
    page.readout("overfit")


# 4. Calibration and temperature scaling (the model of experiment 3)
@page.experiment("calibration")
def _calibration():
    page.figure("reliability")
    page.readout("calibration")


# 5. Class imbalance
@page.experiment("imbalance")
def _imbalance():
    page.control("majority_share")
    page.figure("confusion")
    page.figure("imbalance_metrics")
    page.readout("imbalance")


# 6. Bookkeeping over batches
@page.experiment("bookkeeping")
def _bookkeeping():
    page.controls("batch_size", "eval_examples")
    page.figure("batches")
    page.readout("bookkeeping")


# 7. Label smoothing: the loss floor and the calibration
@page.experiment("smoothing")
def _smoothing():
    page.control("smoothing")
    page.figure("smoothing_floor")
    page.figure("smoothing_calibration")
    page.readout("smoothing")


# 8. ECE over its number of bins (the predictions of experiments 3 and 4)
@page.experiment("bins")
def _bins():
    page.control("ece_bins")
    page.figure("ece_bins")
    page.readout("bins")


page.misconceptions()
page.show_code(core.classification_metrics, core.reliability, core.one_example, core.scenario, core.train_noisy,
               core.loss_turn, core.fit_temperature, core.calibrate, counting.class_weights, counting.imbalance,
               counting.batch_counts, counting.bookkeeping_summary, smoothing.smoothing_floor,
               smoothing.smoothing_sweep, smoothing.ece_over_bins, smoothing.ece_by_bins, readings.read_overfit)
page.takeaways()
