"""Evaluation: logits over a held-out set, loss and accuracy; calibration, TTA, ensembles, confusion."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .contracts import CALIBRATE_METHODS
from .runtime.device import autocast_for


@dataclass
class EvalResult:
    loss: float
    acc: float
    logits: torch.Tensor  # [N, classes], float32, on the device
    targets: torch.Tensor


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int, prepare: Callable[[torch.Tensor], torch.Tensor],
            amp_dtype: torch.dtype | None = None, channels_last: bool = False) -> torch.Tensor:
    """Logits (float32) for every image in x (uint8 [N,C,H,W] on the model's device)."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        xb = prepare(x[i : i + batch_size])
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast_for(xb.device, amp_dtype):
            out.append(model(xb).float())
    model.train(was_training)
    if not out:
        return torch.empty(0, 0, device=x.device)
    return torch.cat(out)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
             prepare: Callable[[torch.Tensor], torch.Tensor], amp_dtype: torch.dtype | None = None,
             channels_last: bool = False) -> EvalResult:
    logits = predict(model, x, batch_size, prepare, amp_dtype, channels_last)
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).float().mean().item()
    return EvalResult(loss, acc, logits, y)


# ------------------------------------------------------------------------------- calibration
#
# Everything below works on logits that are already computed (one forward pass per split), so the
# passes can reuse them: the ECE and the temperature fit never touch the model.


def _nll(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return F.cross_entropy(logits.double(), targets).item()


def _accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return (logits.argmax(1) == targets).double().mean().item() if targets.numel() else float("nan")


def reliability(probs: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> tuple[float, list[dict]]:
    """(ECE, per-bin rows) for class probabilities [N, K]: top-1 confidence in `bins` equal-width bins.

    Bin i holds confidences in [i/bins, (i+1)/bins) (a confidence of exactly 1 goes in the last bin);
    ECE = sum over bins of |accuracy - mean confidence| * (share of samples), torchmetrics'
    MulticlassCalibrationError(norm="l1"). Each row: lower, upper, conf, acc, count (conf and acc
    are None for an empty bin).
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    probs = probs.detach().double()
    conf, pred = probs.max(1)
    correct = (pred == targets).double()
    bounds = torch.linspace(0, 1, bins + 1, dtype=torch.float64, device=probs.device)
    idx = (torch.bucketize(conf, bounds, right=True) - 1).clamp(0, bins - 1)
    count = torch.zeros(bins, dtype=torch.float64, device=probs.device).scatter_add_(0, idx, torch.ones_like(conf))
    conf_sum = torch.zeros_like(count).scatter_add_(0, idx, conf)
    acc_sum = torch.zeros_like(count).scatter_add_(0, idx, correct)
    n = max(conf.numel(), 1)
    safe = count.clamp_min(1)
    ece = ((acc_sum / safe - conf_sum / safe).abs() * count / n).sum().item()
    rows = []
    for i, (c, cs, a) in enumerate(zip(count.tolist(), conf_sum.tolist(), acc_sum.tolist())):
        rows.append({"lower": i / bins, "upper": (i + 1) / bins, "conf": cs / c if c else None,
                     "acc": a / c if c else None, "count": int(c)})
    return ece, rows


def expected_calibration_error(logits: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> float:
    """Top-1 ECE of logits [N, K] with `bins` equal-width confidence bins (L1, like torchmetrics)."""
    return reliability(F.softmax(logits.detach().double(), dim=1), targets, bins)[0]


class TemperatureFitError(ValueError):
    """A temperature fit that did not converge to a usable T: nothing is applied or stored."""


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, max_iter: int = 100) -> float:
    """The temperature T > 0 minimizing the NLL of logits / T: LBFGS on log T from T = 1, strong Wolfe line search.

    On log T every step keeps T positive, and the line search makes each step lower the NLL, so the fit
    converges from either side of T = 1 (under-confident logits, T < 1, included)."""
    if targets.numel() == 0:
        raise ValueError("cannot fit a temperature on an empty split")
    logits = logits.detach().double()
    log_t = torch.zeros((), dtype=torch.float64, device=logits.device, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    t = float(log_t.detach().exp())
    if not math.isfinite(t) or t <= 0:  # non-finite logits
        raise TemperatureFitError(f"the temperature fit gave T = {t:g}: the logits are not finite; nothing applied")
    # LBFGS never makes the fit worse than where it started, but guard against a bad line search
    return t if _nll(logits / t, targets) <= _nll(logits, targets) + 1e-12 else 1.0


def fit_temperature_guide(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The guide's calibrate_model (§6) as printed there: T = 1.5, LBFGS(lr=0.01) on T itself, 50 calls of
    step (each up to LBFGS's default 20 iterations, no line search), in float32 on the CPU.

    Its fixed steps on T (not log T) can cross T = 0 on under-confident logits (the best T below 1, as
    label smoothing makes them) and run away: T = -245.7 measured. A T that is not finite and positive,
    or that fits the held-out split worse than no temperature at all (T = 1), is a TemperatureFitError:
    never applied."""
    if targets.numel() == 0:
        raise ValueError("cannot fit a temperature on an empty split")
    logits, targets = logits.detach().float().cpu(), targets.cpu()
    temperature = nn.Parameter(torch.ones(1) * 1.5)
    optimizer = torch.optim.LBFGS([temperature], lr=0.01)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / temperature, targets)
        loss.backward()
        return loss

    with torch.enable_grad():
        for _ in range(50):
            optimizer.step(closure)
    t = float(temperature.detach())
    advice = 'use evaluate.calibrate_method = "log_t" (cockpit calibrate --method log_t)'
    if not math.isfinite(t) or t <= 0:
        raise TemperatureFitError(f"the guide's temperature fit diverged to T = {t:.4g} (not a temperature: it must "
                                  f"be positive); nothing applied: {advice}")
    if _nll(logits.double() / t, targets) > _nll(logits, targets):
        raise TemperatureFitError(f"the guide's temperature fit stopped at T = {t:.4g}, which fits the validation split "
                                  f"worse than no temperature; nothing applied: {advice}")
    return t


def _split_summary(logits: torch.Tensor, targets: torch.Tensor, bins: int) -> tuple[dict, list[dict]]:
    ece, rows = reliability(F.softmax(logits.double(), dim=1), targets, bins)
    return {"nll": _nll(logits, targets), "ece": ece, "acc": _accuracy(logits, targets)}, rows


def calibrate(val_logits: torch.Tensor, val_targets: torch.Tensor, test_logits: torch.Tensor,
              test_targets: torch.Tensor, bins: int = 15, method: str = "log_t") -> dict:
    """Temperature scaling: fit T on the validation logits (`method`: "log_t", fit_temperature, or "guide",
    fit_temperature_guide), report the test set before and after.

    Returns {before: {nll, ece, acc}, after: {nll, ece, acc}, temperature, reliability: {before:
    [{lower, upper, conf, acc, count}], after: [...]}, val_nll: {before, after}, bins, val_size,
    test_size}.
    """
    if val_targets.numel() == 0:
        raise ValueError("calibration needs a validation split: set data.val_size > 0")
    if method not in CALIBRATE_METHODS:
        raise ValueError(f"unknown calibration method {method!r}; valid: {', '.join(CALIBRATE_METHODS)}")
    t = (fit_temperature_guide if method == "guide" else fit_temperature)(val_logits, val_targets)
    before, rel_before = _split_summary(test_logits, test_targets, bins)
    after, rel_after = _split_summary(test_logits.double() / t, test_targets, bins)
    val_before = _nll(val_logits, val_targets)
    val_after = _nll(val_logits.double() / t, val_targets)
    return {
        "before": before,
        "after": after,
        "temperature": t,
        "method": method,
        "reliability": {"before": rel_before, "after": rel_after},
        "val_nll": {"before": val_before, "after": val_after},
        "bins": bins,
        "val_size": int(val_targets.numel()),
        "test_size": int(test_targets.numel()),
    }


# ------------------------------------------------------------------------------------------ TTA

TTA_VIEWS = ("identity", "flip", "translate", "airbench")
# airbench's tta_level 2: half on the image and its mirror, half on both shifted 1 px along each
# diagonal; its six weights sum to 1, so the group counts as one view beside any others (weight 1 each)
AIRBENCH_VIEWS = {"airbench": (0, 0, False, 0.25), "airbench_flip": (0, 0, True, 0.25),
                  "airbench_dr1": (1, 1, False, 0.125), "airbench_dr1_flip": (1, 1, True, 0.125),
                  "airbench_ul1": (-1, -1, False, 0.125), "airbench_ul1_flip": (-1, -1, True, 0.125)}


def view_weight(name: str) -> float:
    return AIRBENCH_VIEWS[name][3] if name in AIRBENCH_VIEWS else 1.0


def shift_batch(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift images by (dy, dx) pixels (content moves down/right for positive values), reflect padding.

    x is uint8 or float [N, C, H, W]; the result is float32 in [0, 1] (what `Augmenter.eval` accepts).
    """
    from .augment import to_float

    xf = to_float(x)
    p = max(abs(dy), abs(dx))
    if p == 0:
        return xf
    h, w = xf.shape[-2:]
    if p >= min(h, w):
        raise ValueError(f"cannot shift a {h}x{w} image by {p} pixels with reflect padding")
    padded = F.pad(xf, (p, p, p, p), mode="reflect")
    top, left = p - dy, p - dx
    return padded[..., top : top + h, left : left + w]


def _view_fns(views, translate: int, augment) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
    out: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = []
    for v in views:
        if v == "identity":
            out.append(("identity", augment.eval))
        elif v == "flip":
            out.append(("flip", lambda xb: augment.eval(xb.flip(-1))))
        elif v == "translate":
            t = int(translate)
            if t < 1:
                raise ValueError(f"translate views need a shift >= 1 pixel, got {t}")
            for name, dy, dx in ((f"right{t}", 0, t), (f"left{t}", 0, -t), (f"down{t}", t, 0), (f"up{t}", -t, 0)):
                out.append((name, lambda xb, dy=dy, dx=dx: augment.eval(shift_batch(xb, dy, dx))))
        elif v == "airbench":
            for name, (dy, dx, flip, _) in AIRBENCH_VIEWS.items():
                out.append((name, lambda xb, dy=dy, dx=dx, flip=flip: augment.eval(  # shift, then mirror
                    shift_batch(xb, dy, dx).flip(-1) if flip else shift_batch(xb, dy, dx))))
        else:
            raise ValueError(f"unknown TTA view {v!r}; valid: {', '.join(TTA_VIEWS)}")
    return out


def tta_logits(model: nn.Module, x: torch.Tensor, augment, views=("identity", "flip"), translate: int = 2,
               random_views: int = 0, seed: int = 0, batch_size: int = 1024, amp_dtype: torch.dtype | None = None,
               channels_last: bool = False) -> dict[str, torch.Tensor]:
    """Logits [N, K] per view name: deterministic views, then `random_views` seeded training augmentations.

    Random views draw from torch's global RNG (that is what `Augmenter.train` uses) inside
    `torch.random.fork_rng`, seeded with `seed + i`: reproducible, and the caller's RNG state (a live
    training run's) is exactly as it was afterwards.
    """
    out: dict[str, torch.Tensor] = {}
    for name, fn in _view_fns(views, translate, augment):
        out[name] = predict(model, x, batch_size, fn, amp_dtype, channels_last)
    if random_views:
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            for i in range(int(random_views)):
                torch.manual_seed(int(seed) + i)
                out[f"random{i + 1}"] = predict(model, x, batch_size, augment.train, amp_dtype, channels_last)
    return out


def combine_logits(logits: list[torch.Tensor], combine: str = "logits", weights: list[float] | None = None) -> torch.Tensor:
    """Average views' logits, or their probabilities (returned as log-probabilities, so argmax and NLL work);
    a weighted average where `weights` are given (one per view)."""
    stack = torch.stack([lg.double() for lg in logits])
    w = torch.tensor(weights or [1.0] * len(logits), dtype=torch.float64, device=stack.device)
    w = (w / w.sum()).view(-1, *[1] * (stack.dim() - 1))
    if combine == "logits":
        return (stack * w).sum(0)
    if combine == "probs":
        return (F.softmax(stack, dim=-1) * w).sum(0).clamp_min(1e-300).log()
    raise ValueError(f"combine must be 'logits' or 'probs', got {combine!r}")


def tta_evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, augment, views=("identity", "flip"),
                 translate: int = 2, random_views: int = 0, combine: str = "logits", seed: int = 0,
                 batch_size: int = 1024, amp_dtype: torch.dtype | None = None, channels_last: bool = False,
                 bins: int = 15, return_logits: bool = False) -> dict:
    """Test-time augmentation: accuracy without TTA (the identity view), with TTA, and per view.

    Returns {base_acc, base_loss, tta_acc, tta_loss, delta, ece, views: {name: acc}, combine, n_views}
    (plus "_logits" and "_base_logits", the combined and the identity view's logits, when
    `return_logits`: drop them before storing the dict). The identity view is always
    computed for the baseline; it joins the average only when listed in `views`.
    """
    if combine not in ("logits", "probs"):
        raise ValueError(f"combine must be 'logits' or 'probs', got {combine!r}")
    views = list(views)
    per_view = tta_logits(model, x, augment, views, translate, random_views, seed, batch_size, amp_dtype,
                          channels_last)
    if not per_view:
        raise ValueError("TTA needs at least one view (evaluate.tta_views or evaluate.tta_random_views)")
    seen = per_view.get("identity", per_view.get("airbench"))  # the same view under either name
    base = seen if seen is not None else predict(model, x, batch_size, augment.eval,
                                                                       amp_dtype, channels_last)
    combined = combine_logits(list(per_view.values()), combine, [view_weight(n) for n in per_view])
    base_acc, tta_acc = _accuracy(base, y), _accuracy(combined, y)
    out = {
        "base_acc": base_acc,
        "base_loss": _nll(base, y),
        "tta_acc": tta_acc,
        "tta_loss": _nll(combined, y),
        "delta": tta_acc - base_acc,
        "ece": expected_calibration_error(combined, y, bins),
        "views": {name: _accuracy(lg, y) for name, lg in per_view.items()},
        "combine": combine,
        "n_views": len(per_view),
        "random_views": int(random_views),
        "seed": int(seed),
    }
    if return_logits:
        out["_logits"], out["_base_logits"] = combined, base
    return out


# ------------------------------------------------------------------------------------ ensembles


def majority_vote(preds: torch.Tensor, mean_prob: torch.Tensor) -> torch.Tensor:
    """Per sample, the class with the most votes among the members' predictions `preds` [M, N];
    ties broken by the mean probability [N, K] (the vote count dominates: probabilities are < 1).
    With two members every disagreement is a tie, so this is close to the mean probability."""
    votes = torch.zeros_like(mean_prob).scatter_add_(1, preds.T, torch.ones_like(preds.T, dtype=mean_prob.dtype))
    return (votes + mean_prob).argmax(1)


def mode_vote(preds: torch.Tensor) -> torch.Tensor:
    """The guide's vote, literally: `torch.mode` over the members' top-1 predictions `preds` [M, N].
    A tie goes to the lowest class index (torch.mode's rule on the CPU; computed there so that every
    device gives the same answer): with two members, every disagreement goes to the lower class."""
    return torch.mode(preds.cpu(), 0).values.to(preds.device)


def ensemble_evaluate(logits: list[torch.Tensor], targets: torch.Tensor, names: list[str] | None = None) -> dict:
    """Three ensembles of members' logits [N, K] (same samples, same order), each against the best member:

    - mean probability: the class with the highest mean softmax probability (`mean_prob_acc`, `gain`);
    - majority vote: each member's top-1 is one vote, a tie (with two members, every disagreement)
      to the tied class with the highest mean probability (`vote_acc`, `vote_gain`);
    - the guide's vote: `torch.mode` over the members' top-1, a tie to the lowest class index
      (`mode_vote_acc`, `mode_vote_gain`): what the guide's ensemble gains (+1.2/+1.5/+1.8%) measure.
    Also {members: [{run, acc, nll}], best_member_acc, nll (of the mean probability)}.
    """
    if not logits:
        raise ValueError("an ensemble needs at least one member")
    shapes = {tuple(lg.shape) for lg in logits}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members disagree on the logits' shape: {sorted(shapes)}")
    names = list(names) if names is not None else [f"member{i + 1}" for i in range(len(logits))]
    if len(names) != len(logits):
        raise ValueError(f"{len(names)} names for {len(logits)} members")
    targets = targets.to(logits[0].device)
    mean_prob = torch.stack([F.softmax(lg.double(), 1) for lg in logits]).mean(0)
    preds = torch.stack([lg.argmax(1) for lg in logits])
    vote = majority_vote(preds, mean_prob)
    mode_acc = (mode_vote(preds) == targets).double().mean().item()
    members = [{"run": n, "acc": _accuracy(lg, targets), "nll": _nll(lg, targets)} for n, lg in zip(names, logits)]
    best = max(m["acc"] for m in members)
    vote_acc = (vote == targets).double().mean().item()
    mean_acc = _accuracy(mean_prob, targets)
    return {
        "members": members,
        "vote_acc": vote_acc,
        "mean_prob_acc": mean_acc,
        "best_member_acc": best,
        "gain": mean_acc - best,
        "vote_gain": vote_acc - best,
        "mode_vote_acc": mode_acc,
        "mode_vote_gain": mode_acc - best,
        "nll": F.nll_loss(mean_prob.clamp_min(1e-300).log(), targets).item(),
    }


def confusion(logits: torch.Tensor, targets: torch.Tensor, classes: list[str] | None = None) -> dict:
    """{classes, matrix (rows: true class, columns: predicted), per_class_acc (None for an absent class)}."""
    k = logits.shape[1] if logits.dim() == 2 else 0
    classes = list(classes) if classes is not None else [str(i) for i in range(k)]
    k = max(k, len(classes))
    pred = logits.argmax(1)
    m = torch.bincount(targets.long() * k + pred, minlength=k * k).reshape(k, k).cpu()
    matrix = m.tolist()
    per_class = [(row[i] / s) if (s := sum(row)) else None for i, row in enumerate(matrix)]
    return {"classes": classes, "matrix": matrix, "per_class_acc": per_class}
