"""Accuracy vs loss: why the two disagree, what calibration is, and what class imbalance does to accuracy.

Concept: accuracy asks only which side of the decision boundary each example falls on; cross-entropy
asks how much probability the model gave the true class. So a model can grow more accurate and more
over-confident at once, and its few confident mistakes can outweigh everything else in the mean loss.
A wrong example always costs at least ln 2 nats (the true class has at most half the probability), so
the mean loss is never below (1 - accuracy) * ln 2.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from core.controls import Control
from core.data import generator, mlp

LN2 = math.log(2.0)

# Experiment 3's data: a 3-class Gaussian mixture in 400 dimensions, 1000 validation and 1000 test
# examples. With far more dimensions than training examples the small MLP fits every noisy training
# label, yet its decision boundary keeps following the class means: accuracy holds while confidence grows.
CLASSES, FEATURES, HIDDEN, SEPARATION, N_VAL, N_TEST = 3, 400, 32, 4.0, 1000, 1000
BATCH, LR, MOMENTUM = 32, 0.05, 0.9
T_MIN, T_MAX = 1e-2, 1e2  # temperature scaling searches log T within these bounds

CONTROLS = (
    Control("p_true", "float", default=0.3, lo=0.0, hi=1.0, step=0.01),  # wrong, but far from hopeless
    Control("n_examples", "int", default=100, lo=1, hi=1000),  # 100: every share reads as a count
    Control("wrong_share", "float", default=0.1, lo=0.0, hi=1.0, step=0.01),  # 90% accurate, the usual "good"
    Control("wrong_conf", "float", default=0.99, lo=0.51, hi=1.0, step=0.001),  # confidently wrong; 1.0: p = 0
    Control("right_conf", "float", default=0.9, lo=0.51, hi=1.0, step=0.001),
    Control("label_noise", "float", default=0.2, lo=0.0, hi=0.5, step=0.05),  # one label in five flipped
    Control("epochs", "int", default=40, lo=1, hi=200),  # long past the turn, into the plateau
    Control("train_size", "int", default=64, lo=16, hi=256, step=16),  # few examples, 400 features: memorised
    Control("majority_share", "float", default=0.95, lo=0.5, hi=1.0, step=0.01),  # the misconception's 95/5
    Control("batch_size", "int", default=32, lo=1, hi=256),  # 100 = 3 × 32 + 4: a short last batch
    Control("eval_examples", "int", default=100, lo=1, hi=N_TEST),
    Control("smoothing", "float", default=0.1, lo=0.0, hi=0.5, step=0.05),  # 0.1: the common choice (Szegedy et al.)
    Control("ece_bins", "int", default=15, lo=1, hi=100),  # 15: Guo et al.'s choice, and this page's
)

# Teaching moments, each a named setting of the controls above. The scenario builder draws the first two
# beside yours: the corners the learners ask about.
PRESETS = {
    "few_confidently_wrong": {"n_examples": 100, "wrong_share": 0.1, "wrong_conf": 0.999, "right_conf": 0.9},
    "many_barely_wrong": {"n_examples": 100, "wrong_share": 0.6, "wrong_conf": 0.55, "right_conf": 0.62},
    "all_confidently_wrong": {"wrong_share": 1.0, "wrong_conf": 1.0},  # p(true) = 0 somewhere: the mean loss is inf
    "rare_minority": {"majority_share": 0.99},  # 99% for nothing; the plain loss finds few of the 1%
}
COMPARED = ("few_confidently_wrong", "many_barely_wrong")


def _check(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.ndim != 2 or labels.shape != logits.shape[:1] or len(labels) == 0:
        raise ValueError(f"need logits (N, K) and labels (N,) with N >= 1; got {tuple(logits.shape)}, "
                         f"{tuple(labels.shape)}")


def reliability(logits: torch.Tensor, labels: torch.Tensor, *, n_bins: int = 15) -> pd.DataFrame:
    """Calibration: the reliability diagram's bins. Top-label confidence, equal-width bins (lo, hi] over [0, 1].

    Columns: bin, lo, hi, count, confidence (mean in the bin), accuracy (share right in the bin), gap.
    Empty bins have count 0 and NaN confidence and accuracy.
    """
    _check(logits, labels)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    conf, pred = torch.softmax(logits.double(), dim=1).max(dim=1)  # (N,), (N,)
    edges = torch.tensor([k / n_bins for k in range(n_bins + 1)], dtype=torch.float64)
    index = torch.bucketize(conf, edges[1:-1], right=False)  # bin b holds edges[b] < conf <= edges[b + 1]
    count = torch.bincount(index, minlength=n_bins).double()  # (n_bins,)
    conf_sum = torch.bincount(index, weights=conf, minlength=n_bins)
    right_sum = torch.bincount(index, weights=(pred == labels).double(), minlength=n_bins)
    df = pd.DataFrame({"bin": range(n_bins), "lo": edges[:-1].numpy(), "hi": edges[1:].numpy(),
                       "count": count.numpy().astype(int), "confidence": (conf_sum / count).numpy(),
                       "accuracy": (right_sum / count).numpy()})
    return df.assign(gap=df.confidence - df.accuracy)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, *, n_bins: int = 15) -> dict:
    """Accuracy, mean cross-entropy (nn.CrossEntropyLoss) and ECE of a set of predictions, in float64.

    ECE (Naeini et al. 2015; Guo et al. 2017): the top-label confidence's gap to the accuracy in each of
    n_bins equal-width bins (lo, hi], weighted by the bin's share of the examples.
    """
    _check(logits, labels)
    z = logits.double()  # (N, K)
    bins = reliability(z, labels, n_bins=n_bins)
    filled = bins[bins["count"] > 0]
    return {
        "accuracy": (z.argmax(dim=1) == labels).double().mean().item(),
        "cross_entropy": nn.CrossEntropyLoss()(z, labels).item(),
        "ece": float((filled["count"] * filled.gap.abs()).sum() / len(labels)),
    }


def loss_split(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Where the mean loss comes from: the right and the wrong predictions' parts (they sum to the mean)."""
    per_example = nn.CrossEntropyLoss(reduction="none")(logits.double(), labels)  # (N,)
    probs = torch.softmax(logits.double(), dim=1)  # (N, K)
    wrong = probs.argmax(dim=1) != labels
    n = len(labels)
    return {"from_right": per_example[~wrong].sum().item() / n, "from_wrong": per_example[wrong].sum().item() / n,
            "n_wrong": int(wrong.sum()), "conf_wrong": probs.max(dim=1).values[wrong].mean().item(),
            "per_wrong": per_example[wrong].mean().item()}  # the last two are NaN when nothing is wrong


def one_example(p_true: float) -> pd.DataFrame:
    """One example, two classes: cross-entropy -log p(true) beside accuracy's step at the boundary p = 0.5.

    Columns: series ("curve" or "your example"), p_true, loss (inf at p = 0), correct (1 or 0). The true
    class is class 1, so a tie at 0.5 goes to the rival (argmax takes the first) and counts as wrong.
    """
    p = torch.cat([torch.linspace(0.005, 1.0, 200, dtype=torch.float64), torch.tensor([p_true], dtype=torch.float64)])
    logits = torch.log(torch.stack([1 - p, p], dim=1))  # (P, 2): log-probabilities are valid logits
    labels = torch.ones(len(p), dtype=torch.long)
    loss = nn.CrossEntropyLoss(reduction="none")(logits, labels)  # (P,)
    return pd.DataFrame({"series": ["curve"] * (len(p) - 1) + ["your example"], "p_true": p.numpy(),
                         "loss": loss.numpy() + 0.0, "correct": (logits.argmax(dim=1) == labels).int().numpy()})


def example_loss(p_true: float) -> float:
    """One example's cross-entropy, -log p(true), through nn.CrossEntropyLoss (inf at p = 0)."""
    return one_example(p_true).loss.iloc[-1]


def example_summary(p_true: float) -> dict:
    """One example's loss and verdict at p_true, beside the losses either side of the boundary and near certainty."""
    at = {f"l{round(q * 100):02d}": example_loss(q) for q in (0.01, 0.49, 0.51, 0.99)}
    correct = int(one_example(p_true).correct.iloc[-1])
    return {"p": p_true, "loss": example_loss(p_true), "correct": correct, **at, "ratio": at["l51"] / at["l99"]}


def scenario(n: int, wrong_share: float, wrong_conf: float, right_conf: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Accuracy vs loss, built by hand: n two-class predictions, a share of them wrong at a given confidence.

    Returns logits (N, 2) = log-probabilities (-inf where a probability is 0) and labels (N,).
    """
    n_wrong = math.floor(n * wrong_share + 0.5)
    labels = torch.arange(n) % 2  # half of each class
    p_true = torch.full((n,), right_conf, dtype=torch.float64)
    p_true[:n_wrong] = 1 - wrong_conf
    probs = torch.stack([1 - p_true, p_true], dim=1)  # (N, 2), in class order (rival, true)
    probs = torch.where(labels[:, None] == 1, probs, probs.flip(1))
    return torch.log(probs), labels


def scenario_table(n: int, wrong_share: float, wrong_conf: float, right_conf: float) -> pd.DataFrame:
    """The scenario builder: accuracy, cross-entropy, ECE and the loss split of your predictions and the presets."""
    rows = []
    compared = {name: tuple(PRESETS[name][k] for k in ("n_examples", "wrong_share", "wrong_conf", "right_conf"))
                for name in COMPARED}
    for name, args in {"yours": (n, wrong_share, wrong_conf, right_conf), **compared}.items():
        logits, labels = scenario(*args)
        split = loss_split(logits, labels)
        rows.append({"scenario": name, "n": args[0], "n_wrong": split["n_wrong"], "wrong_conf": args[2],
                     "right_conf": args[3], **classification_metrics(logits, labels),
                     "loss_from_right": split["from_right"], "loss_from_wrong": split["from_wrong"]})
    df = pd.DataFrame(rows)
    share = (df.loss_from_wrong / df.cross_entropy).where(df.cross_entropy > 0, 0.0)  # no loss: none of it wrong
    return df.assign(wrong_part=share.where(~df.loss_from_wrong.map(math.isinf), 1.0))  # inf / inf: all of it


def preset(name: str) -> dict:
    """A teaching moment by name: the control values it sets (the others keep their defaults)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


@functools.lru_cache(maxsize=4)  # runs at other noise levels and flipped_in_training share the draws; bounded
def _mixture_draws(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """noisy_mixture's random draws, none of which depends on label_noise: x (N, D), the clean labels y (N,), the
    uniform u (N,) that decides each flip and the class other (N,) a flipped label takes. Never modify them in place.
    """
    gen = generator(seed + 30_000)
    means = torch.randn(CLASSES, FEATURES, generator=gen)
    means = SEPARATION * means / means.norm(dim=1, keepdim=True)  # (K, D)
    y = torch.randint(0, CLASSES, (n,), generator=gen)
    x = torch.randn(n, FEATURES, generator=gen) + means[y]  # (N, D)
    u = torch.rand(n, generator=gen)
    other = (y + torch.randint(1, CLASSES, (n,), generator=gen)) % CLASSES  # never y itself
    return x, y, u, other


def noisy_mixture(n: int, label_noise: float, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy labels: a Gaussian mixture (one mean per class), each label flipped to another class with probability.

    Returns x (N, FEATURES) and y (N,). The draws do not depend on label_noise, so the same seed gives the
    same inputs and the same clean labels at every noise level. x is shared between calls: never modify it in place.
    """
    x, y, u, other = _mixture_draws(n, seed)
    return x, torch.where(u < label_noise, other, y)


@dataclass(frozen=True)
class Trained:
    curves: pd.DataFrame  # epoch, split, loss, accuracy, loss_from_wrong/right, n_wrong, conf_wrong, per_wrong
    val: tuple[torch.Tensor, torch.Tensor]  # final logits (N_VAL, K), labels: never modify in place
    test: tuple[torch.Tensor, torch.Tensor]  # final logits (N_TEST, K), labels


@functools.lru_cache(maxsize=8)  # calibration and bookkeeping reuse the run; bounded (DESIGN rule 7)
def train_noisy(label_noise: float, epochs: int, train_size: int, seed: int = 0) -> Trained:
    """Overfitting: a 400 -> 32 -> 3 MLP trained with SGD + momentum on few noisy labels, measured every epoch.

    Each epoch keeps the train and validation logits; the curves are read from all of them at once after training
    (_loss_splits: loss_split's numbers, epoch by epoch).
    """
    x, y = noisy_mixture(train_size + N_VAL + N_TEST, label_noise, seed=seed)
    x_tr, y_tr = x[:train_size], y[:train_size]
    x_val, y_val = x[train_size:train_size + N_VAL], y[train_size:train_size + N_VAL]
    model = mlp((FEATURES, HIDDEN, CLASSES), nn.ReLU, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn, order = nn.CrossEntropyLoss(), generator(seed + 40_000)
    logits = {"train": [], "validation": []}  # per epoch: (N, K)
    for epoch in range(epochs + 1):
        with torch.no_grad():
            logits["train"].append(model(x_tr))
            logits["validation"].append(model(x_val))
        if epoch == epochs:
            break
        for batch in torch.randperm(train_size, generator=order).split(BATCH):
            opt.zero_grad()
            loss_fn(model(x_tr[batch]), y_tr[batch]).backward()
            opt.step()
    with torch.no_grad():
        test = model(x[train_size + N_VAL:])
    frames = [pd.DataFrame({"epoch": range(epochs + 1), "split": split, **_loss_splits(torch.stack(logits[split]), ys)})
              for split, ys in (("train", y_tr), ("validation", y_val))]
    curves = pd.concat(frames).sort_values("epoch", kind="stable", ignore_index=True)  # each epoch: train, validation
    return Trained(curves, (logits["validation"][-1], y_val), (test, y[train_size + N_VAL:]))


def _loss_splits(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, list]:
    """loss_split of each epoch's logits (E, N, K) as train_noisy's columns, one value per epoch in each.

    Columns: loss, accuracy, loss_from_wrong, loss_from_right, n_wrong, conf_wrong, per_wrong. Every epoch goes
    through each tensor operation at once, and each epoch's sums and means run over its own examples in
    loss_split's order, so the numbers are loss_split's.
    """
    e, n, k = logits.shape
    z = logits.double().reshape(e * n, k)
    per_example = nn.CrossEntropyLoss(reduction="none")(z, labels.repeat(e)).view(e, n)  # (E, N)
    probs = torch.softmax(z, dim=1).view(e, n, k)  # (E, N, K)
    wrong = probs.argmax(dim=2) != labels  # (E, N)
    n_wrong = wrong.sum(dim=1).tolist()
    right_parts = per_example[~wrong].split([n - w for w in n_wrong])  # epoch by epoch
    wrong_parts, conf_parts = per_example[wrong].split(n_wrong), probs.max(dim=2).values[wrong].split(n_wrong)

    def each(reduce, parts: tuple[torch.Tensor, ...]) -> list[float]:
        return torch.stack([reduce(t) for t in parts]).tolist()  # NaN: the mean of no wrong example

    from_right = [s / n for s in each(torch.sum, right_parts)]
    from_wrong = [s / n for s in each(torch.sum, wrong_parts)]
    return {"loss": [r + w for r, w in zip(from_right, from_wrong)], "accuracy": [1 - w / n for w in n_wrong],
            "loss_from_wrong": from_wrong, "loss_from_right": from_right, "n_wrong": n_wrong,
            "conf_wrong": each(torch.mean, conf_parts), "per_wrong": each(torch.mean, wrong_parts)}


def overfit_curves(*, label_noise: float, epochs: int, train_size: int, seed: int = 0) -> pd.DataFrame:
    """Validation loss vs accuracy over training: train and validation loss and accuracy per epoch (epoch 0: init)."""
    return train_noisy(label_noise, epochs, train_size, seed).curves


def loss_turn(curves: pd.DataFrame, *, rise: float = 0.02, level: float = 0.005) -> dict:
    """Where the validation loss turns: its lowest epoch, and the numbers there and at the last epoch.

    "turned": the last epoch's loss is more than `rise` (relative) above the lowest. "story" reads the run:
    "no_turn"; "fell" (accuracy down by more than `level`); "rose" or "level" when the loss carried by the
    wrong predictions grew while accuracy rose or held; "other" for anything else.
    """
    val = curves[curves.split == "validation"].set_index("epoch")
    best, last = val.loss.idxmin(), val.index.max()
    at = lambda e, col: float(val.at[e, col])  # noqa: E731
    out = {"epoch": int(best), "last": int(last), "turned": at(last, "loss") > (1 + rise) * at(best, "loss"),
           **{f"{col}_{name}": at(e, col) for name, e in (("turn", best), ("end", last))
              for col in ("loss", "accuracy", "loss_from_wrong", "n_wrong", "conf_wrong", "per_wrong")}}
    change = out["accuracy_end"] - out["accuracy_turn"]
    dearer = out["loss_from_wrong_end"] > out["loss_from_wrong_turn"]
    out["story"] = ("no_turn" if not out["turned"] else "fell" if change < -level else
                    "other" if not dearer else "rose" if change > level else "level")
    return out


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 that minimises the mean cross-entropy of softmax(logits / T).

    torch.optim.LBFGS on log T in float64, with log T clamped to [log T_MIN, log T_MAX]. When no finite
    optimum exists (every example right: the loss falls all the way to T -> 0) the search stops at a bound
    or where the loss has gone flat in float64.
    """
    _check(logits, labels)
    z = logits.detach().double()  # (N, K)
    bounds = (math.log(T_MIN), math.log(T_MAX))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(z / log_t.clamp(*bounds).exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return math.exp(min(max(log_t.item(), bounds[0]), bounds[1]))


@dataclass(frozen=True)
class Calibration:
    temperature: float  # fitted on the validation set
    before: dict  # classification_metrics on the test set, as trained
    after: dict  # the same with logits / temperature
    argmax_moved: int  # test predictions whose class changed (0: dividing by T > 0 keeps the order)
    bins: pd.DataFrame  # reliability() rows with a "model" column: "as trained" or "temperature-scaled"


@functools.lru_cache(maxsize=8)  # the reliability diagram, the readings and ECE over bins read one fit; bounded
def calibrate(*, label_noise: float, epochs: int, train_size: int, seed: int = 0) -> Calibration:
    """Calibration: ECE and the reliability diagram of experiment 3's model, before and after temperature scaling."""
    run = train_noisy(label_noise, epochs, train_size, seed)
    temperature = fit_temperature(*run.val)
    logits, labels = run.test
    scaled = logits / temperature
    bins = pd.concat([reliability(logits, labels).assign(model="as trained"),
                      reliability(scaled, labels).assign(model="temperature-scaled")], ignore_index=True)
    moved = int((logits.argmax(dim=1) != scaled.argmax(dim=1)).sum())
    return Calibration(temperature, classification_metrics(logits, labels), classification_metrics(scaled, labels),
                       moved, bins)


def flipped_in_training(label_noise: float, train_size: int, seed: int = 0) -> int:
    """How many of experiment 3's training labels noisy_mixture flipped (0: every training label is clean)."""
    _, _, u, _ = _mixture_draws(train_size + N_VAL + N_TEST, seed)
    return int((u[:train_size] < label_noise).sum())  # a flipped label always takes another class


def __getattr__(name: str):
    """READINGS, from core/accuracy_vs_loss_readings.py, loaded on first use (that module imports this one)."""
    if name == "READINGS":
        from core.accuracy_vs_loss_readings import READINGS

        return READINGS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
