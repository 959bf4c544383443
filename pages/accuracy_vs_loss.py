"""Accuracy vs loss: how can validation loss and validation accuracy both go up?"""

import math

import core.accuracy_vs_loss as core
import core.accuracy_vs_loss_counting as counting
import ui
from core.charts.accuracy_vs_loss import FIGURES, text


def pct(value: float, fmt: str = ".1%") -> str:
    return "—" if math.isnan(value) else format(value, fmt)


page = ui.Page("accuracy_vs_loss", core.CONTROLS, FIGURES)
page.header()
page.predict()

# 1. One example: a step against a curve
page.experiment("one")
p = page.control("p_true")
page.figure("one_example")
one = core.example_summary(p)
verdict = page.words["verdict.right" if one["correct"] else "verdict.wrong"]
page.metrics({"p": f"{p:.2f}", "loss": text(one["loss"]), "verdict": verdict})
page.reading("one", **{**one, "loss": text(one["loss"])}, verdict=verdict)
if math.isinf(one["loss"]):
    page.reading("one_zero")

# 2. Scenario builder
page.experiment("scenario")
page.controls("n_examples", "wrong_share")
page.controls("wrong_conf", "right_conf")
table = page.figure("scenario_plane").set_index("scenario")
page.figure("loss_split")
mine, a, b = (table.loc[name] for name in ("yours", *core.COMPARED))
page.metrics({"accuracy": f"{mine.accuracy:.1%}", "cross_entropy": text(mine.cross_entropy),
              "ece": f"{mine.ece:.3f}", "wrong_part": f"{mine.wrong_part:.0%}"})
presets = {"a_acc": a.accuracy, "a_ce": a.cross_entropy, "a_part": a.wrong_part, "a_wrong": int(a.n_wrong),
           "b_acc": b.accuracy,
           "b_ce": b.cross_entropy, "b_floor": (1 - b.accuracy) * core.LN2, "ln2": core.LN2, "ln3": math.log(3)}
page.reading("scenario", n=int(mine.n), n_wrong=int(mine.n_wrong), acc=mine.accuracy, ce=text(mine.cross_entropy),
             ece=mine.ece, wrong_part=mine.wrong_part, **presets)
if math.isinf(mine.cross_entropy):
    page.reading("scenario_inf")

# 3. A real run: the validation loss turns, accuracy does not follow
page.experiment("overfit")
label_noise, epochs, train_size = page.controls("label_noise", "epochs", "train_size")
run = {"label_noise": label_noise, "epochs": epochs, "train_size": train_size, "seed": page.seed}
curves = page.figure("overfit_loss")
page.figure("overfit_accuracy")
turn = core.loss_turn(curves)
page.metrics({"turn": str(turn["epoch"]), "val_loss": f"{turn['loss_turn']:.3f} → {turn['loss_end']:.3f}",
              "val_acc": f"{turn['accuracy_turn']:.1%} → {turn['accuracy_end']:.1%}",
              "conf_wrong": f"{pct(turn['conf_wrong_turn'], '.0%')} → {pct(turn['conf_wrong_end'], '.0%')}"})
trained = curves[(curves.split == "train") & (curves.epoch == turn["last"])].iloc[0]
turned = {"turn": turn["epoch"], "last": turn["last"], **{k: turn[k] for k in ("loss_turn", "loss_end")},
          "acc_turn": turn["accuracy_turn"], "acc_end": turn["accuracy_end"]}
page.reading("overfit", train_size=train_size, train_acc=trained.accuracy, train_loss=trained.loss, **turned)
if trained.accuracy == 1.0 and label_noise > 0:
    page.reading("overfit_memorised")
page.reading(f"overfit_{turn['story']}", **turned, n_wrong_turn=int(turn["n_wrong_turn"]),
             n_wrong_end=int(turn["n_wrong_end"]), wrong_turn=turn["loss_from_wrong_turn"],
             wrong_end=turn["loss_from_wrong_end"], per_turn=turn["per_wrong_turn"], per_end=turn["per_wrong_end"],
             conf_turn=pct(turn["conf_wrong_turn"], ".0%"), conf_end=pct(turn["conf_wrong_end"], ".0%"))

# 4. Calibration and temperature scaling (the model of experiment 3)
page.experiment("calibration")
cal = page.run(core.calibrate, **run)
page.figure("reliability")
before, after = cal.before, cal.after
page.metrics({"temperature": f"{cal.temperature:.3f}",
              "test_acc": f"{before['accuracy']:.1%} → {after['accuracy']:.1%}",
              "test_nll": f"{before['cross_entropy']:.3f} → {after['cross_entropy']:.3f}",
              "test_ece": f"{before['ece']:.3f} → {after['ece']:.3f}"})
page.reading("calibration", t=cal.temperature, acc_before=before["accuracy"], acc_after=after["accuracy"],
             moved=cal.argmax_moved, nll_before=before["cross_entropy"], nll_after=after["cross_entropy"],
             ece_before=before["ece"], ece_after=after["ece"])
page.reading("calibration_over" if cal.temperature > 1 else "calibration_under")
if not (after["cross_entropy"] < before["cross_entropy"] and after["ece"] < before["ece"]):
    page.reading("calibration_mixed")

# 5. Class imbalance
page.experiment("imbalance")
share = page.control("majority_share")
page.figure("confusion")
page.figure("imbalance_metrics")
imb = page.run(counting.imbalance, share, seed=page.seed)
m = imb.metrics.set_index("model")
maj, plain, weighted = (m.loc[name] for name in counting.MODELS)
page.metrics({"majority_acc": f"{maj.accuracy:.1%}",
              "plain": f"{plain.accuracy:.1%} / {pct(plain.recall_minority, '.0%')}",
              "weighted": f"{weighted.accuracy:.1%} / {pct(weighted.recall_minority, '.0%')}",
              "balanced": f"{plain.balanced_accuracy:.1%} → {weighted.balanced_accuracy:.1%}"})
if math.isnan(maj.recall_minority):
    page.reading("imbalance_single")
else:
    page.reading("imbalance", share=imb.majority_share, maj_acc=maj.accuracy, maj_bal=maj.balanced_accuracy,
                 plain_acc=plain.accuracy, plain_rec=pct(plain.recall_minority, ".0%"), w0=imb.weights[0],
                 w1=imb.weights[1], weighted_acc=weighted.accuracy, weighted_rec=pct(weighted.recall_minority, ".0%"),
                 plain_bal=plain.balanced_accuracy, weighted_bal=weighted.balanced_accuracy)
    traded = weighted.recall_minority > plain.recall_minority and weighted.accuracy < plain.accuracy
    page.reading("imbalance_traded" if traded else "imbalance_same")

# 6. Bookkeeping over batches
page.experiment("bookkeeping")
batch_size, _ = page.controls("batch_size", "eval_examples")
books = counting.bookkeeping_summary(page.figure("batches"))
page.metrics({"acc_counted": f"{books['accuracy_counted']:.2%}", "acc_averaged": f"{books['accuracy_averaged']:.2%}",
              "loss_counted": f"{books['loss_counted']:.4f}", "loss_averaged": f"{books['loss_averaged']:.4f}"})
page.reading("bookkeeping", b=batch_size, **books, last=books["last_size"])
kind = "single" if books["batches"] == 1 else "even" if books["n"] % batch_size == 0 else "short"
page.reading(f"bookkeeping_{kind}", b=batch_size, last=books["last_size"])

page.misconceptions(**turned, **presets, share=imb.majority_share, maj_acc=maj.accuracy,
                    maj_rec=pct(maj.recall_minority, ".0%") if not math.isnan(maj.recall_minority) else
                    page.words["phrases.no_minority"], acc_counted=books["accuracy_counted"],
                    acc_averaged=books["accuracy_averaged"], n=books["n"], b=batch_size)
page.show_code(core.classification_metrics, core.reliability, core.one_example, core.scenario, core.train_noisy,
               core.loss_turn, core.fit_temperature, core.calibrate, counting.class_weights, counting.imbalance,
               counting.batch_counts, counting.bookkeeping_summary)
page.takeaways()
