"""The facts of the accuracy-vs-loss page against independent computations: closed forms, plain-Python loops
over float64 numbers, and a second route through the same definitions."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

import core.accuracy_vs_loss as avl
import core.accuracy_vs_loss_counting as cnt
from core.controls import defaults, find

DEFAULTS = defaults(avl.CONTROLS)
RUN = {k: DEFAULTS[k] for k in ("label_noise", "epochs", "train_size")}


def softmax_rows(logits: torch.Tensor) -> list[list[float]]:
    """Softmax by hand, in Python floats (float64), with the max subtracted."""
    rows = []
    for row in logits.double().tolist():
        top = max(row)
        e = [math.exp(v - top) for v in row]
        rows.append([v / sum(e) for v in e])
    return rows


def ece_loop(logits: torch.Tensor, labels: torch.Tensor, n_bins: int) -> float:
    """ECE as its definition reads: for each bin (k/M, (k+1)/M], |accuracy - mean confidence| times its share."""
    probs, labels = softmax_rows(logits), labels.tolist()
    total = 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        members = [i for i, p in enumerate(probs) if lo < max(p) <= hi]
        if members:
            acc = sum(probs[i].index(max(probs[i])) == labels[i] for i in members) / len(members)
            conf = sum(max(probs[i]) for i in members) / len(members)
            total += len(members) / len(probs) * abs(acc - conf)
    return total


def random_logits(n: int, k: int, scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, k, generator=gen), torch.randint(0, k, (n,), generator=gen)


# --- classification_metrics: hand-made logits, closed forms ---------------------------------------------------

def test_metrics_on_hand_made_logits():
    # two classes, logits [0, a]: p(class 1) = 1 / (1 + e^-a). Rows: right at a=2, right at a=-1 (label 0),
    # wrong at a=3 (label 0), wrong at a=-0.5 (label 1).
    logits = torch.tensor([[0.0, 2.0], [0.0, -1.0], [0.0, 3.0], [0.0, -0.5]])
    labels = torch.tensor([1, 0, 0, 1])
    sig = lambda a: 1 / (1 + math.exp(-a))  # noqa: E731
    p_true = [sig(2.0), 1 - sig(-1.0), 1 - sig(3.0), sig(-0.5)]
    conf = [sig(2.0), 1 - sig(-1.0), sig(3.0), 1 - sig(-0.5)]  # 0.881, 0.731, 0.953, 0.622
    right = [1, 1, 0, 0]
    # 15 bins: 0.881 in (0.867, 0.933], 0.731 in (0.667, 0.733], 0.953 in (0.933, 1], 0.622 in (0.6, 0.667]:
    # one example per bin, so ECE is the mean of |right - conf|.
    ece = sum(abs(r - c) for r, c in zip(right, conf)) / 4
    m = avl.classification_metrics(logits, labels)
    assert m["accuracy"] == 0.5
    assert m["cross_entropy"] == pytest.approx(-sum(math.log(p) for p in p_true) / 4, rel=1e-12)
    assert m["ece"] == pytest.approx(ece, rel=1e-12)
    assert set(m) == {"accuracy", "cross_entropy", "ece"}


def test_a_confidence_on_a_bin_edge_falls_in_the_lower_bin_and_one_in_the_last():
    # equal logits: confidence exactly 0.5 = the edge of 2 bins, so bin (0, 0.5]; logits 0 vs -inf: confidence 1.
    logits = torch.tensor([[0.0, 0.0], [0.0, -math.inf]], dtype=torch.float64)
    bins = avl.reliability(logits, torch.tensor([0, 1]), n_bins=2)
    assert bins["count"].tolist() == [1, 1]
    assert bins.confidence.tolist() == [0.5, 1.0]
    assert bins.accuracy.tolist() == [1.0, 0.0]  # a tie goes to class 0; the second row is confidently wrong


@pytest.mark.parametrize(("n", "k", "scale", "n_bins", "seed"),
                         [(500, 3, 2.0, 15, 0), (300, 10, 5.0, 15, 1), (200, 2, 0.5, 7, 2), (1, 4, 3.0, 15, 3)])
def test_ece_against_a_direct_loop(n, k, scale, n_bins, seed):
    logits, labels = random_logits(n, k, scale, seed)
    # both routes sum the same float64 terms in different orders: agreement to 1e-12
    assert avl.classification_metrics(logits, labels, n_bins=n_bins)["ece"] == pytest.approx(
        ece_loop(logits, labels, n_bins), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_cross_entropy_and_accuracy_against_float64_python(seed):
    logits, labels = random_logits(400, 5, 3.0, seed)
    probs = softmax_rows(logits)
    ce = -sum(math.log(p[y]) for p, y in zip(probs, labels.tolist())) / len(probs)
    acc = sum(p.index(max(p)) == y for p, y in zip(probs, labels.tolist())) / len(probs)
    m = avl.classification_metrics(logits, labels)
    assert m["cross_entropy"] == pytest.approx(ce, rel=1e-12)
    assert m["accuracy"] == acc


@pytest.mark.parametrize(("k", "scale", "seed"), [(2, 1.0, 0), (3, 4.0, 1), (10, 0.3, 2), (10, 20.0, 3)])
def test_every_wrong_example_costs_at_least_ln2_so_loss_is_at_least_the_bound(k, scale, seed):
    logits, labels = random_logits(1000, k, scale, seed)
    per_example = nn.CrossEntropyLoss(reduction="none")(logits.double(), labels)
    wrong = logits.argmax(dim=1) != labels
    assert bool((per_example[wrong] >= math.log(2) - 1e-12).all())
    m = avl.classification_metrics(logits, labels)
    assert m["cross_entropy"] >= (1 - m["accuracy"]) * math.log(2) - 1e-12


def test_loss_split_sums_to_the_mean_loss():
    logits, labels = random_logits(300, 4, 3.0, 7)
    split = avl.loss_split(logits, labels)
    assert split["from_right"] + split["from_wrong"] == pytest.approx(
        avl.classification_metrics(logits, labels)["cross_entropy"], rel=1e-12)
    assert split["n_wrong"] == int((logits.argmax(dim=1) != labels).sum())
    assert split["per_wrong"] == pytest.approx(split["from_wrong"] * 300 / split["n_wrong"], rel=1e-12)


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="N >= 1"):
        avl.classification_metrics(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        avl.classification_metrics(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_bins"):
        avl.classification_metrics(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long), n_bins=0)
    with pytest.raises(ValueError, match="few_confidently_wrong, many_barely_wrong, all_confidently_wrong"):
        avl.preset("hedging")


# --- experiment 1: one example ----------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.0, 0.01, 0.3, 0.5, 0.51, 0.9, 1.0])
def test_one_example_is_minus_log_p_and_right_only_past_one_half(p):
    df = avl.one_example(p)
    mine = df[df.series == "your example"].iloc[0]
    assert mine.loss == (math.inf if p == 0 else pytest.approx(-math.log(p), rel=1e-12, abs=1e-15))
    assert mine.correct == (1 if p > 0.5 else 0)
    curve = df[df.series == "curve"]
    assert curve.loss.to_numpy() == pytest.approx([-math.log(q) for q in curve.p_true], rel=1e-12, abs=1e-15)


def test_example_loss_is_minus_log_p():
    assert avl.example_loss(0.49) == pytest.approx(-math.log(0.49), rel=1e-12)
    assert math.isinf(avl.example_loss(0.0)) and avl.example_loss(1.0) == 0.0


def test_example_summary_reads_the_step_and_the_curve():
    s = avl.example_summary(0.3)
    assert s["correct"] == 0 and avl.example_summary(0.7)["correct"] == 1
    assert s["l49"] - s["l51"] == pytest.approx(math.log(51 / 49), rel=1e-12)  # a small change of loss ...
    assert s["ratio"] == pytest.approx(math.log(0.51) / math.log(0.99), rel=1e-12)  # ... or a large one


# --- experiment 2: the scenario builder -------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "share", "cw", "cr"), [(100, 0.1, 0.99, 0.9), (37, 0.5, 0.7, 0.95), (1, 0.0, 0.6, 0.8)])
def test_scenario_metrics_match_their_closed_forms(n, share, cw, cr):
    logits, labels = avl.scenario(n, share, cw, cr)
    n_wrong = math.floor(n * share + 0.5)
    m = avl.classification_metrics(logits, labels)
    assert m["accuracy"] == pytest.approx(1 - n_wrong / n, abs=1e-15)
    ce = (n_wrong * -math.log(1 - cw) + (n - n_wrong) * -math.log(cr)) / n
    assert m["cross_entropy"] == pytest.approx(ce, rel=1e-12)
    # cw and cr lie in different 15ths here, so each bin holds one kind: wrong (acc 0) or right (acc 1)
    assert m["ece"] == pytest.approx((n_wrong * cw + (n - n_wrong) * (1 - cr)) / n, rel=1e-12)


def test_all_confidently_wrong_gives_infinite_loss_but_finite_accuracy_and_ece():
    table = avl.scenario_table(1, 1.0, 1.0, 1.0)
    mine = table[table.scenario == "yours"].iloc[0]
    assert mine.accuracy == 0.0 and mine.ece == 1.0
    assert math.isinf(mine.cross_entropy) and math.isinf(mine.loss_from_wrong) and mine.wrong_part == 1.0
    perfect = avl.scenario_table(10, 0.0, 0.9, 1.0).iloc[0]  # all right at p = 1: no loss at all
    assert perfect.cross_entropy == 0.0 and perfect.wrong_part == 0.0


def test_wrong_part_is_the_wrong_predictions_share_of_the_loss():
    row = avl.scenario_table(100, 0.1, 0.99, 0.9).iloc[0]
    assert row.wrong_part == pytest.approx(10 * -math.log(0.01) / (10 * -math.log(0.01) + 90 * -math.log(0.9)),
                                           rel=1e-12)


def test_presets_land_on_the_two_corners_the_page_names():
    table = avl.scenario_table(**{"n": 100, "wrong_share": 0.1, "wrong_conf": 0.99, "right_conf": 0.9}).set_index(
        "scenario")
    a, b = table.loc["few_confidently_wrong"], table.loc["many_barely_wrong"]
    assert a.accuracy > b.accuracy and a.cross_entropy > b.cross_entropy  # lower loss, lower accuracy
    assert a.cross_entropy > math.log(2)  # worse than predicting 50/50 everywhere
    assert a.loss_from_wrong > 0.8 * a.cross_entropy  # ten wrong examples carry most of it
    for name in avl.COMPARED:
        p = avl.preset(name)
        logits, labels = avl.scenario(p["n_examples"], p["wrong_share"], p["wrong_conf"], p["right_conf"])
        assert table.loc[name].cross_entropy == avl.classification_metrics(logits, labels)["cross_entropy"]


def test_at_99_to_1_the_plain_loss_beats_the_constant_predictor_by_little_and_misses_most_of_the_minority():
    m = cnt.imbalance(avl.PRESETS["rare_minority"]["majority_share"]).metrics.set_index("model")
    assert m.loc["plain loss", "accuracy"] - m.loc["majority class", "accuracy"] < 0.01
    assert m.loc["plain loss", "recall_minority"] < 0.5 < m.loc["weighted loss", "recall_minority"]


def test_every_preset_is_a_setting_the_controls_accept():
    for name, values in avl.PRESETS.items():
        for key, value in values.items():
            assert find(avl.CONTROLS, key).accepts(str(value)), (name, key, value)


# --- experiment 3: the training run -----------------------------------------------------------------------------

def test_the_training_run_is_deterministic():
    first = avl.train_noisy.__wrapped__(0.2, 5, 32, 3)
    again = avl.train_noisy.__wrapped__(0.2, 5, 32, 3)
    other = avl.train_noisy.__wrapped__(0.2, 5, 32, 4)
    assert first.curves.equals(again.curves)
    assert torch.equal(first.test[0], again.test[0])
    assert not first.curves.equals(other.curves)


def test_curves_agree_with_the_final_logits():
    run = avl.train_noisy(**RUN)
    last = run.curves[(run.curves.split == "validation") & (run.curves.epoch == RUN["epochs"])].iloc[0]
    m = avl.classification_metrics(*run.val)
    assert last.loss == pytest.approx(m["cross_entropy"], rel=1e-6)  # the same float32 logits, evaluated twice
    assert last.accuracy == m["accuracy"]
    assert last.loss_from_wrong + last.loss_from_right == pytest.approx(last.loss, rel=1e-12)


def train_noisy_with_autograd(label_noise: float, epochs: int, train_size: int, seed: int) -> avl.Trained:
    """Experiment 3's run as the textbook loop writes it: nn.Module, loss.backward(), torch.optim.SGD, and
    loss_split on each epoch's logits."""
    x, y = avl.noisy_mixture(train_size + avl.N_VAL + avl.N_TEST, label_noise, seed=seed)
    x_tr, y_tr = x[:train_size], y[:train_size]
    x_val, y_val = x[train_size:train_size + avl.N_VAL], y[train_size:train_size + avl.N_VAL]
    model = avl.mlp((avl.FEATURES, avl.HIDDEN, avl.CLASSES), nn.ReLU, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=avl.LR, momentum=avl.MOMENTUM)
    loss_fn, order = nn.CrossEntropyLoss(), avl.generator(seed + 40_000)
    rows = []
    for epoch in range(epochs + 1):
        with torch.no_grad():
            for split, (xs, ys) in (("train", (x_tr, y_tr)), ("validation", (x_val, y_val))):
                parts = avl.loss_split(model(xs), ys)
                rows.append({"epoch": epoch, "split": split, "loss": parts["from_right"] + parts["from_wrong"],
                             "accuracy": 1 - parts["n_wrong"] / len(ys), "loss_from_wrong": parts["from_wrong"],
                             "loss_from_right": parts["from_right"], "n_wrong": parts["n_wrong"],
                             "conf_wrong": parts["conf_wrong"], "per_wrong": parts["per_wrong"]})
        if epoch == epochs:
            break
        for batch in torch.randperm(train_size, generator=order).split(avl.BATCH):
            opt.zero_grad()
            loss_fn(model(x_tr[batch]), y_tr[batch]).backward()
            opt.step()
    with torch.no_grad():
        val, test = model(x_val), model(x[train_size + avl.N_VAL:])
    return avl.Trained(pd.DataFrame(rows), (val, y_val), (test, y[train_size + avl.N_VAL:]))


@pytest.mark.parametrize("label_noise, epochs, train_size, seed",
                         [(0.2, 12, 64, 0), (0.0, 3, 16, 1), (0.5, 2, 256, 2), (0.35, 7, 48, 5)])
def test_the_run_is_the_autograd_and_torch_optim_run_bit_for_bit(label_noise, epochs, train_size, seed):
    fast = avl.train_noisy.__wrapped__(label_noise, epochs, train_size, seed)
    plain = train_noisy_with_autograd(label_noise, epochs, train_size, seed)
    pd.testing.assert_frame_equal(fast.curves, plain.curves, check_exact=True)
    for a, b in (fast.val, plain.val), (fast.test, plain.test):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("label_noise, train_size, seed", [(0.2, 64, 0), (0.5, 16, 3), (0.0, 256, 1)])
def test_flipped_in_training_compares_the_noisy_labels_with_the_clean_ones(label_noise, train_size, seed):
    n = train_size + avl.N_VAL + avl.N_TEST
    _, noisy = avl.noisy_mixture(n, label_noise, seed=seed)
    _, clean = avl.noisy_mixture(n, 0.0, seed=seed)
    assert avl.flipped_in_training(label_noise, train_size, seed) == int((noisy != clean)[:train_size].sum())


def test_at_defaults_validation_loss_turns_up_while_accuracy_does_not_fall():
    turn = avl.loss_turn(avl.overfit_curves(**RUN))
    assert turn["turned"] and turn["epoch"] < turn["last"]
    assert turn["loss_end"] > 1.2 * turn["loss_turn"]
    assert turn["accuracy_end"] >= turn["accuracy_turn"] - 0.01  # the page says "level or higher"
    assert turn["conf_wrong_end"] > turn["conf_wrong_turn"]  # more sure of the examples it gets wrong
    assert turn["loss_from_wrong_end"] > turn["loss_from_wrong_turn"]
    assert turn["story"] in ("rose", "level")
    assert turn["per_wrong_end"] > turn["per_wrong_turn"]  # each mistake dearer ...
    per_right = [(turn[f"loss_{w}"] - turn[f"loss_from_wrong_{w}"]) / (avl.N_VAL - turn[f"n_wrong_{w}"])
                 for w in ("turn", "end")]
    assert per_right[1] < per_right[0]  # ... each right answer cheaper (the short answer says so)
    train = avl.overfit_curves(**RUN).query("split == 'train'").iloc[-1]
    assert train.accuracy == 1.0  # every noisy training label memorised


def synthetic_curves(val_loss, val_acc, wrong_loss):
    rows = [{"epoch": e, "split": "validation", "loss": loss, "accuracy": a, "loss_from_wrong": w, "n_wrong": 1.0,
             "conf_wrong": 0.5, "per_wrong": w} for e, (loss, a, w) in enumerate(zip(val_loss, val_acc, wrong_loss))]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("loss", "acc", "wrong", "story"), [
    ([1.0, 0.8, 0.9], [0.5, 0.6, 0.7], [0.5, 0.4, 0.6], "rose"),
    ([1.0, 0.8, 0.9], [0.5, 0.6, 0.602], [0.5, 0.4, 0.6], "level"),
    ([1.0, 0.8, 0.9], [0.5, 0.6, 0.5], [0.5, 0.4, 0.6], "fell"),
    ([1.0, 0.8, 0.9], [0.5, 0.6, 0.7], [0.5, 0.4, 0.3], "other"),
    ([1.0, 0.8, 0.81], [0.5, 0.6, 0.7], [0.5, 0.4, 0.6], "no_turn"),  # up by 1.25%, under the 2% threshold
    ([1.0, 0.9, 0.8], [0.5, 0.6, 0.7], [0.5, 0.4, 0.3], "no_turn"),
])
def test_loss_turn_tells_the_story_of_a_run(loss, acc, wrong, story):
    turn = avl.loss_turn(synthetic_curves(loss, acc, wrong))
    assert turn["story"] == story
    assert turn["epoch"] == loss.index(min(loss))


def test_loss_turn_reads_the_lowest_validation_epoch():
    curves = avl.overfit_curves(**RUN)
    val = curves[curves.split == "validation"]
    assert avl.loss_turn(curves)["epoch"] == int(val.epoch[val.loss.idxmin()])


# --- experiment 4: temperature scaling --------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "q"), [(4.0, 0.8), (1.0, 0.95), (6.0, 0.6)])
def test_fit_temperature_matches_the_closed_form(a, q):
    # n examples with logits [0, a], a share q labelled 1: mean NLL = -q log s(a/T) - (1-q) log s(-a/T),
    # lowest where s(a/T) = q, so T = a / logit(q).
    n_pos = int(q * 100)
    logits = torch.tensor([[0.0, a]] * 100)
    labels = torch.tensor([1] * n_pos + [0] * (100 - n_pos))
    expected = a / math.log(q / (1 - q))
    assert avl.fit_temperature(logits, labels) == pytest.approx(expected, rel=1e-6)


def test_fit_temperature_when_no_finite_optimum_exists():
    logits, labels = torch.tensor([[0.0, 2.0], [3.0, 0.0]]), torch.tensor([1, 0])
    t = avl.fit_temperature(logits, labels)  # all right: the loss falls all the way to T -> 0
    assert avl.T_MIN <= t < 0.1 and nll(logits, labels, t) < 1e-9  # the search stops where the loss is flat
    tie = torch.tensor([[0.0, 2.0], [0.0, 2.0]])
    assert avl.fit_temperature(tie, torch.tensor([1, 0])) == pytest.approx(avl.T_MAX)  # 50/50 labels: T -> inf


def nll(logits: torch.Tensor, labels: torch.Tensor, t: float) -> float:
    return nn.CrossEntropyLoss()(logits.double() / t, labels).item()


def test_fitted_temperature_is_the_minimum_of_a_plain_grid():
    run = avl.train_noisy(**RUN)
    t = avl.fit_temperature(*run.val)
    grid = [math.exp(math.log(avl.T_MIN) + i * (math.log(avl.T_MAX) - math.log(avl.T_MIN)) / 4000) for i in range(4001)]
    best = min(grid, key=lambda g: nll(*run.val, g))
    assert t == pytest.approx(best, rel=2e-3)  # the grid's spacing in T is 0.23%
    assert nll(*run.val, t) <= nll(*run.val, best) + 1e-12


def test_temperature_scaling_keeps_accuracy_and_lowers_nll_and_ece_at_defaults():
    cal = avl.calibrate(**RUN)
    assert cal.argmax_moved == 0 and cal.after["accuracy"] == cal.before["accuracy"]
    assert cal.temperature > 1  # the trained model is over-confident
    assert cal.after["cross_entropy"] < cal.before["cross_entropy"]
    assert cal.after["ece"] < cal.before["ece"]
    run = avl.train_noisy(**RUN)
    assert nll(*run.val, cal.temperature) <= nll(*run.val, 1.0)  # on the set it was fitted on, always
    bins = cal.bins[cal.bins.model == "as trained"]
    filled = bins[bins["count"] > 0]
    assert (filled["count"] * filled.gap.abs()).sum() / len(run.test[1]) == pytest.approx(cal.before["ece"])


def test_dividing_by_any_positive_temperature_keeps_every_argmax():
    logits, _ = random_logits(1000, 10, 5.0, 11)
    for t in (avl.T_MIN, 0.3, 1.0, 7.0, avl.T_MAX):
        assert torch.equal((logits / t).argmax(dim=1), logits.argmax(dim=1))


# --- experiment 5: class imbalance ------------------------------------------------------------------------------

@pytest.mark.parametrize("share", [0.5, 0.8, 0.95, 0.99, 1.0])
def test_the_majority_predictor_scores_the_majority_share(share):
    result = cnt.imbalance(share)
    majority = result.metrics.set_index("model").loc["majority class"]
    assert result.majority_share == math.floor(cnt.N_TEST * share + 0.5) / cnt.N_TEST
    assert majority.accuracy == result.majority_share
    assert majority.balanced_accuracy == (1.0 if share == 1.0 else 0.5)


def test_recalls_and_balanced_accuracy_against_a_loop():
    gen = torch.Generator().manual_seed(5)
    y = torch.randint(0, 2, (200,), generator=gen)
    pred = torch.randint(0, 2, (200,), generator=gen)
    matrix = cnt.confusion(pred, y)
    for t in range(2):
        for p in range(2):
            assert matrix[t, p] == sum(1 for a, b in zip(y.tolist(), pred.tolist()) if a == t and b == p)
    rec = [sum(1 for a, b in zip(y.tolist(), pred.tolist()) if a == b == c) / y.tolist().count(c) for c in range(2)]
    assert cnt.recalls(matrix) == pytest.approx(rec, rel=1e-15)


def test_class_weights_give_each_class_the_same_total_weight_and_match_a_manual_weighted_mean():
    x, y = cnt.imbalanced_data(1000, 0.95)
    w = cnt.class_weights(y)
    totals = [w[c].item() * (y == c).sum().item() for c in range(2)]
    assert totals == pytest.approx([500.0, 500.0], rel=1e-6)
    logits = torch.randn(1000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    per = nn.CrossEntropyLoss(reduction="none")(logits, y)
    manual = (w.double()[y] * per).sum() / w.double()[y].sum()
    assert nn.CrossEntropyLoss(weight=w.double())(logits, y).item() == pytest.approx(manual.item(), rel=1e-12)
    assert cnt.class_weights(torch.zeros(10, dtype=torch.long)).tolist() == [0.5, 0.0]  # an absent class: 0


@pytest.mark.parametrize("share, seed, weighted", [(0.95, 0, True), (0.5, 1, False), (1.0, 0, True), (0.8, 4, True)])
def test_train_linear_is_the_torch_optim_adam_run_bit_for_bit(share, seed, weighted):
    x, y = cnt.imbalanced_data(300, share, seed=seed)
    weight = cnt.class_weights(y) if weighted else None
    model = cnt.seeded_init_(nn.Linear(2, 2, device="meta"), cnt.generator(seed))
    opt, loss_fn = torch.optim.Adam(model.parameters(), lr=cnt.LR), nn.CrossEntropyLoss(weight=weight)
    for _ in range(cnt.STEPS):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    fast = cnt.train_linear(x, y, weight, seed=seed)
    assert torch.equal(fast.weight, model.weight) and torch.equal(fast.bias, model.bias)
    side_by_side = cnt.train_linears(x, y, (None, weight), seed=seed)[1]  # the other run never touches this one
    assert torch.equal(side_by_side.weight, model.weight) and torch.equal(side_by_side.bias, model.bias)


def test_at_95_to_5_the_weighted_loss_finds_more_of_the_minority():
    m = cnt.imbalance(0.95).metrics.set_index("model")
    assert m.loc["weighted loss", "recall_minority"] > m.loc["plain loss", "recall_minority"]
    assert m.loc["weighted loss", "balanced_accuracy"] > m.loc["plain loss", "balanced_accuracy"]
    assert m.loc["weighted loss", "accuracy"] < m.loc["plain loss", "accuracy"]


def test_only_one_class_leaves_minority_recall_undefined_not_a_crash():
    result = cnt.imbalance(1.0)
    assert result.metrics.recall_minority.isna().all()
    assert result.confusion[result.confusion.true == "minority"].row_share.isna().all()


# --- experiment 6: bookkeeping over batches ---------------------------------------------------------------------

@pytest.mark.parametrize(("n", "batch"), [(100, 32), (100, 25), (7, 1), (1, 256), (1000, 256)])
def test_counting_gives_the_whole_set_accuracy_and_loss(n, batch):
    logits, labels = random_logits(n, 3, 2.0, n + batch)
    summary = cnt.bookkeeping_summary(cnt.batch_counts(logits, labels, batch))
    whole = avl.classification_metrics(logits, labels)
    assert summary["accuracy_counted"] == pytest.approx(whole["accuracy"], abs=1e-15)
    assert summary["loss_counted"] == pytest.approx(whole["cross_entropy"], rel=1e-12)
    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    assert summary["batches"] == len(sizes) and summary["last_size"] == sizes[-1]
    # averaging per-batch means by hand
    right = (logits.argmax(dim=1) == labels).tolist()
    starts = range(0, n, batch)
    averaged = sum(sum(right[s:s + batch]) / len(right[s:s + batch]) for s in starts) / len(sizes)
    assert summary["accuracy_averaged"] == pytest.approx(averaged, rel=1e-12)
    if n % batch == 0:  # equal batches: the two bookkeepings agree
        assert summary["accuracy_averaged"] == pytest.approx(summary["accuracy_counted"], rel=1e-12)


def test_controls_are_unique_and_every_default_is_valid():
    keys = [c.key for c in avl.CONTROLS]
    assert len(keys) == len(set(keys))
    assert DEFAULTS["eval_examples"] <= avl.N_TEST


@pytest.mark.parametrize("k", [2, 3, 10])
def test_hedging_on_every_example_costs_ln_k_whatever_the_labels(k):
    logits, labels = torch.zeros(50, k), torch.arange(50) % k
    assert avl.classification_metrics(logits, labels)["cross_entropy"] == pytest.approx(math.log(k), rel=1e-12)
