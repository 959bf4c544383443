"""What the accuracy-vs-loss page says about its numbers: each experiment's branch and values, chosen here.

Every reader takes the page's settings (every control by key, plus "seed") and a `run` (core.readings),
fetches the figures' own data through it and returns the metric tiles and the paragraphs (content keys in
content/en/accuracy_vs_loss.toml with their values). A number that can be undefined (the confidence of no
wrong prediction) or infinite (the loss of p = 0) reaches the words already formatted: a dash or ∞.
"""

from __future__ import annotations

import math

import core.accuracy_vs_loss as core
import core.accuracy_vs_loss_counting as counting
import core.accuracy_vs_loss_smoothing as smoothing
from content import words
from core.readings import Reading, Readout, Run, direct, figure_data

PAGE = "accuracy_vs_loss"
SHOWS_AT = 0.95  # the misconception's "95% accuracy": the constant predictor must reach it to refute the claim


def say(key: str, values: dict | None = None, tone: str = "text") -> Reading:
    return Reading(f"experiments.{key}.reading", values or {}, tone)


def text(value: float, fmt: str = ".3f") -> str:
    """A number for the words: ∞ for an infinite loss, a dash for an undefined value."""
    return "∞" if math.isinf(value) else "—" if math.isnan(value) else format(value, fmt)


def pct(value: float, fmt: str = ".1%") -> str:
    return "—" if math.isnan(value) else format(value, fmt)


def read_one(settings: dict, run: Run = direct) -> Readout:
    one = run(core.example_summary, settings["p_true"])
    verdict = words(PAGE)["verdict.right" if one["correct"] else "verdict.wrong"]
    values = {**one, "loss": text(one["loss"]), "verdict": verdict}
    readings = [say("one", values)] + ([say("one_zero")] if math.isinf(one["loss"]) else [])
    return Readout(tuple(readings), {"p": f"{one['p']:.2f}", "loss": text(one["loss"]), "verdict": verdict})


def scenario_facts(settings: dict, run: Run = direct) -> dict:
    table = figure_data(PAGE, "scenario_plane", settings, run).set_index("scenario")
    mine, a, b = (table.loc[name] for name in ("yours", *core.COMPARED))
    return {"mine": mine, "a_acc": a.accuracy, "a_ce": a.cross_entropy, "a_part": a.wrong_part,
            "a_wrong": int(a.n_wrong), "b_acc": b.accuracy, "b_ce": b.cross_entropy,
            "b_floor": (1 - b.accuracy) * core.LN2, "ln2": core.LN2, "ln3": math.log(3)}


def read_scenario(settings: dict, run: Run = direct) -> Readout:
    f = scenario_facts(settings, run)
    mine = f.pop("mine")
    values = {"n": int(mine.n), "n_wrong": int(mine.n_wrong), "acc": mine.accuracy, "ce": text(mine.cross_entropy),
              "ece": mine.ece, "wrong_part": mine.wrong_part, **f}
    readings = [say("scenario", values)] + ([say("scenario_inf")] if math.isinf(mine.cross_entropy) else [])
    metrics = {"accuracy": f"{mine.accuracy:.1%}", "cross_entropy": text(mine.cross_entropy),
               "ece": f"{mine.ece:.3f}", "wrong_part": f"{mine.wrong_part:.0%}"}
    return Readout(tuple(readings), metrics)


def overfit_facts(settings: dict, run: Run = direct) -> dict:
    """Experiment 3's run: loss_turn's numbers, the training set's at the end, and how many labels were flipped."""
    curves = figure_data(PAGE, "overfit_loss", settings, run)
    turn = core.loss_turn(curves)
    trained = curves[(curves.split == "train") & (curves.epoch == turn["last"])].iloc[0]
    flipped = run(core.flipped_in_training, settings["label_noise"], settings["train_size"], seed=settings["seed"])
    return {**turn, "train_acc": float(trained.accuracy), "train_loss": float(trained.loss), "flipped": flipped}


def turned_values(t: dict) -> dict:
    return {"turn": t["epoch"], "last": t["last"], "loss_turn": t["loss_turn"], "loss_end": t["loss_end"],
            "acc_turn": t["accuracy_turn"], "acc_end": t["accuracy_end"]}


def read_overfit(settings: dict, run: Run = direct) -> Readout:
    t = overfit_facts(settings, run)
    turned = turned_values(t)
    readings = [say("overfit", {**turned, "train_size": settings["train_size"], "train_acc": t["train_acc"],
                                "train_loss": t["train_loss"]})]
    if t["train_acc"] == 1.0 and t["flipped"] > 0:
        readings.append(say("overfit_memorised", {"flipped": t["flipped"]}))
    readings.append(say(f"overfit_{t['story']}", {
        **turned, "n_wrong_turn": int(t["n_wrong_turn"]), "n_wrong_end": int(t["n_wrong_end"]),
        "wrong_turn": t["loss_from_wrong_turn"], "wrong_end": t["loss_from_wrong_end"],
        "rise": t["loss_end"] - t["loss_turn"], "wrong_rise": t["loss_from_wrong_end"] - t["loss_from_wrong_turn"],
        "per_turn": text(t["per_wrong_turn"], ".2f"), "per_end": text(t["per_wrong_end"], ".2f"),
        "conf_turn": pct(t["conf_wrong_turn"], ".0%"), "conf_end": pct(t["conf_wrong_end"], ".0%")}))
    metrics = {"turn": str(t["epoch"]), "val_loss": f"{t['loss_turn']:.3f} → {t['loss_end']:.3f}",
               "val_acc": f"{t['accuracy_turn']:.1%} → {t['accuracy_end']:.1%}",
               "conf_wrong": f"{pct(t['conf_wrong_turn'], '.0%')} → {pct(t['conf_wrong_end'], '.0%')}"}
    return Readout(tuple(readings), metrics)


def run_settings(settings: dict) -> dict:
    return {k: settings[k] for k in ("label_noise", "epochs", "train_size", "seed")}


def read_calibration(settings: dict, run: Run = direct) -> Readout:
    cal = run(core.calibrate, **run_settings(settings))
    before, after = cal.before, cal.after
    readings = [say("calibration", {
        "t": cal.temperature, "acc_before": before["accuracy"], "acc_after": after["accuracy"],
        "moved": cal.argmax_moved, "nll_before": before["cross_entropy"], "nll_after": after["cross_entropy"],
        "ece_before": before["ece"], "ece_after": after["ece"]}),
        say("calibration_over" if cal.temperature > 1 else "calibration_under")]
    if not (after["cross_entropy"] < before["cross_entropy"] and after["ece"] < before["ece"]):
        readings.append(say("calibration_mixed"))
    metrics = {"temperature": f"{cal.temperature:.3f}",
               "test_acc": f"{before['accuracy']:.1%} → {after['accuracy']:.1%}",
               "test_nll": f"{before['cross_entropy']:.3f} → {after['cross_entropy']:.3f}",
               "test_ece": f"{before['ece']:.3f} → {after['ece']:.3f}"}
    return Readout(tuple(readings), metrics)


def imbalance_facts(settings: dict, run: Run = direct) -> tuple:
    imb = run(counting.imbalance, settings["majority_share"], seed=settings["seed"])
    m = imb.metrics.set_index("model")
    return (imb, *(m.loc[name] for name in counting.MODELS))


def read_imbalance(settings: dict, run: Run = direct) -> Readout:
    imb, maj, plain, weighted = imbalance_facts(settings, run)
    if math.isnan(maj.recall_minority):
        readings = [say("imbalance_single")]
    else:
        traded = weighted.recall_minority > plain.recall_minority and weighted.accuracy < plain.accuracy
        readings = [say("imbalance", {
            "share": imb.majority_share, "maj_acc": maj.accuracy, "maj_bal": maj.balanced_accuracy,
            "plain_acc": plain.accuracy, "plain_rec": pct(plain.recall_minority, ".0%"), "w0": imb.weights[0],
            "w1": imb.weights[1], "weighted_acc": weighted.accuracy,
            "weighted_rec": pct(weighted.recall_minority, ".0%"),
            "plain_bal": plain.balanced_accuracy, "weighted_bal": weighted.balanced_accuracy}),
            say("imbalance_traded" if traded else "imbalance_same")]
    metrics = {"majority_acc": f"{maj.accuracy:.1%}",
               "plain": f"{plain.accuracy:.1%} / {pct(plain.recall_minority, '.0%')}",
               "weighted": f"{weighted.accuracy:.1%} / {pct(weighted.recall_minority, '.0%')}",
               "balanced": f"{plain.balanced_accuracy:.1%} → {weighted.balanced_accuracy:.1%}"}
    return Readout(tuple(readings), metrics)


def bookkeeping_kind(books: dict, batch_size: int) -> str:
    return "single" if books["batches"] == 1 else "even" if books["n"] % batch_size == 0 else "short"


def read_bookkeeping(settings: dict, run: Run = direct) -> Readout:
    books = counting.bookkeeping_summary(figure_data(PAGE, "batches", settings, run))
    b = settings["batch_size"]
    readings = [say("bookkeeping", {**books, "b": b, "last": books["last_size"]}),
                say(f"bookkeeping_{bookkeeping_kind(books, b)}", {"b": b, "last": books["last_size"]})]
    metrics = {"acc_counted": f"{books['accuracy_counted']:.2%}", "acc_averaged": f"{books['accuracy_averaged']:.2%}",
               "loss_counted": f"{books['loss_counted']:.4f}", "loss_averaged": f"{books['loss_averaged']:.4f}"}
    return Readout(tuple(readings), metrics)


def smoothing_facts(settings: dict, run: Run = direct) -> dict:
    """Experiment 7 at the reader's eps, beside the unsmoothed run (eps = 0) of the same sweep."""
    sweep = figure_data(PAGE, "smoothing_floor", settings, run).set_index("smoothing")
    eps = settings["smoothing"]
    yours, plain = sweep.loc[round(eps, 2)], sweep.loc[0.0]
    return {"eps": eps, "k": core.CLASSES, "floor": yours.floor, "train": yours.train_loss,
            "above": yours.train_loss - yours.floor, "top": smoothing.top_confidence(eps), "rest": eps / core.CLASSES,
            "ece": yours.test_ece, "ece0": plain.test_ece, "conf": yours.test_confidence,
            "acc": yours.test_accuracy, "conf0": plain.test_confidence, "acc0": plain.test_accuracy,
            "nll": yours.test_nll, "nll0": plain.test_nll, "steps": smoothing.SMOOTH_STEPS,
            "best": float(sweep.test_ece.idxmin()), "best_ece": float(sweep.test_ece.min())}


def read_smoothing(settings: dict, run: Run = direct) -> Readout:
    f = smoothing_facts(settings, run)
    side = "over" if f["conf"] > f["acc"] else "under"
    readings = [say("smoothing", f), say(f"smoothing_{side}", f),
                say("smoothing_best", f)]
    metrics = {"floor": f"{f['floor']:.4f}", "train_smoothed": f"{f['train']:.4f}",
               "smoothed_ece": f"{f['ece0']:.3f} → {f['ece']:.3f}",
               "smoothed_conf": f"{f['conf']:.1%} / {f['acc']:.1%}"}
    return Readout(tuple(readings), metrics)


def bins_facts(settings: dict, run: Run = direct) -> dict:
    df = figure_data(PAGE, "ece_bins", settings, run)
    by = {m: g.set_index("bins").ece for m, g in df.groupby("model")}
    trained, scaled = by["as trained"], by["temperature-scaled"]
    n = settings["ece_bins"]
    order = (trained > scaled)  # as trained looks worse at this many bins
    return {"bins": n, "ece": trained.loc[n], "ece_scaled": scaled.loc[n], "ece15": trained.loc[15],
            "scaled15": scaled.loc[15], "one": trained.loc[1], "lo": trained.min(), "hi": trained.max(),
            "lo_bins": int(trained.idxmin()), "hi_bins": int(trained.idxmax()),
            "scaled_lo": scaled.min(), "scaled_hi": scaled.max(), "agree": int(order.sum()), "total": len(order),
            "worse_here": bool(order.loc[n])}


def read_bins(settings: dict, run: Run = direct) -> Readout:
    f = bins_facts(settings, run)
    readings = [say("bins", f), say("bins_order_" + ("holds" if f["agree"] in (0, f["total"]) else "flips"), f)]
    metrics = {"ece_yours": f"{f['ece']:.3f} / {f['ece_scaled']:.3f}", "ece_range": f"{f['lo']:.3f} – {f['hi']:.3f}"}
    return Readout(tuple(readings), metrics)


def read_misconceptions(settings: dict, run: Run = direct) -> Readout:
    """The values every misconception's evidence takes. Where a setting hides the effect, a note says so and names
    the preset that shows it (the notes' words are the page's, under [notes])."""
    w = words(PAGE)
    t = overfit_facts(settings, run)
    turned = turned_values(t)
    s = scenario_facts(settings, run)
    s.pop("mine")
    imb, maj, _, _ = imbalance_facts(settings, run)
    books = counting.bookkeeping_summary(figure_data(PAGE, "batches", settings, run))
    shows = t["story"] in ("rose", "level")
    parted = f"{books['accuracy_counted']:.2%}" != f"{books['accuracy_averaged']:.2%}"
    values = {**turned, **s, "share": imb.majority_share, "maj_acc": maj.accuracy,
              "maj_rec": w["phrases.no_minority"] if math.isnan(maj.recall_minority) else pct(maj.recall_minority,
                                                                                             ".0%"),
              "acc_counted": books["accuracy_counted"], "acc_averaged": books["accuracy_averaged"], "n": books["n"],
              "b": settings["batch_size"],
              "overfit_note": "" if shows else w("notes.overfit_elsewhere", story=w[f"notes.story_{t['story']}"]),
              "imbalance_note": "" if maj.accuracy >= SHOWS_AT else w("notes.imbalance_elsewhere"),
              "books_note": "" if parted else w("notes.books_elsewhere")}
    return Readout((Reading("misconceptions", values),))


def read_predict(settings: dict, run: Run = direct) -> Readout:
    """The values of predict.why, one sentence per option, from experiment 3's run at these settings."""
    t = overfit_facts(settings, run)
    values = {**turned_values(t), "n_wrong_turn": int(t["n_wrong_turn"]), "n_wrong_end": int(t["n_wrong_end"]),
              "per_turn": text(t["per_wrong_turn"], ".2f"), "per_end": text(t["per_wrong_end"], ".2f")}
    return Readout((Reading("predict.why", values),))


READINGS = {"one": read_one, "scenario": read_scenario, "overfit": read_overfit, "calibration": read_calibration,
            "imbalance": read_imbalance, "bookkeeping": read_bookkeeping, "smoothing": read_smoothing,
            "bins": read_bins, "misconceptions": read_misconceptions, "predict": read_predict}
