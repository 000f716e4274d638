"""Anytime-valid judging of `compare:` entries over the whole canary, updated on every scrape (pure).

The tests are those of Lindon, Sanden, Shirikian, *Rapid Regression Detection in Software
Deployments through Sequential Testing* (KDD 2022, arXiv 2205.14762), section "count data": the
canary's and the primary's events are two Poisson processes; conditional on the events of one
scrape, each one is the canary's with probability ``p = θs / (θs + 1 − s)``, where ``s`` is the
canary's share of the requests in that scrape and ``θ`` the ratio of the canary's rate to the
primary's. A mixture (a uniform prior over a fixed grid of ratios above the null) of the
likelihood ratios against ``θ0 = 1 + maxIncrease`` is a test martingale under the null, so by
Ville's inequality the probability that it *ever* reaches ``1/α`` is at most ``α = 1 − confidence``
— however often it is looked at. Batches of one scrape are fine: only the conditioning changes.
Under equal per-request rates the exact conditional law is hypergeometric, which is dominated in
convex order by the binomial used here (Hoeffding 1963), so the product stays a supermartingale.

- **errorRate**: the events are 5xx answers; regression = canary's error rate > (1 + maxIncrease)
  × the primary's.
- **latency**: the events are requests *slower than* each bound of Envoy's histogram. The paper
  tests stochastic order and equality in distribution; a regression here is the canary being
  slower at *some* bound — the one-sided form of both, so a slower tail with an unchanged median
  is caught (at the bounds above the median), while a faster canary is never "a regression". The
  per-bound e-processes are averaged (an average of e-processes is one), so the family is
  judged at level α without a Bonferroni split.

Rolling back needs the e-process at ``1/α``. Advancing needs the opposite evidence: a confidence
sequence (Robbins' beta-binomial mixture, Jeffreys prior) puts the canary's rate below
``(1 + maxIncrease) × primary's lower bound + SLACK`` — for every bound, in the latency case (an
intersection-union test, no split needed), each side at α/2. SLACK (10 percentage points) is what
makes "no regression" provable at all when the primary has no errors: showing a rate below ε
takes about ``log(1/α)/ε`` canary requests, ~50 for 10 points.

Why hand-written glue rather than a library: `savvi` (the first author's package) implements
these tests for fixed assignment probabilities through cvxpy, one object per test; a canary's
share changes at every step, and the simulation judges thousands of canaries at once, so the few
lines of numpy below (vectorised over any leading axes) replace it. `confseq` ships as a C++ sdist
only. scipy gives the special functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaln

from shipyard.delivery.checks import CompareCheck
from shipyard.delivery.judge import Decision
from shipyard.proxy.window import WindowStats, cumulative_at

GRID = np.array([1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0])
"""Alternatives, as multiples of the null ratio θ0, each with prior weight 1/len(GRID)."""
SLACK = 0.10
"""Absolute tolerance (a share of requests) added to the relative `maxIncrease` for advancing."""
PRIOR = 0.5  # Beta(1/2, 1/2) mixture of the confidence sequences


def ratio_log_lr(x_c: Any, n_c: Any, x_p: Any, n_p: Any, theta0: float) -> np.ndarray:
    """Log likelihood ratio, alternative θ0·GRID against θ0, of one scrape's events; shape (..., G).

    `x_*` events out of `n_*` requests per side (arrays broadcasting together). A scrape in
    which a side served nothing carries no information (0).
    """
    x_c, n_c, x_p, n_p = (np.asarray(a, dtype=float)[..., None] for a in (x_c, n_c, x_p, n_p))
    total = n_c + n_p
    share = np.divide(n_c, total, out=np.zeros_like(total), where=total > 0)
    informative = (share > 0) & (share < 1)
    share = np.where(informative, share, 0.5)
    theta = theta0 * GRID

    def log_odds(t: Any) -> np.ndarray:
        return np.log(t * share) - np.log1p(-share)

    # p/p0 and (1-p)/(1-p0) in log space, with p = θs/(θs + 1 − s)
    alt = np.logaddexp(0.0, log_odds(theta))
    null = np.logaddexp(0.0, log_odds(theta0))
    log_p, log_p0 = log_odds(theta) - alt, log_odds(theta0) - null
    lr = x_c * (log_p - log_p0) + x_p * (null - alt)
    return np.where(informative, lr, 0.0)


def log_mixture(cumulative_log_lr: np.ndarray) -> np.ndarray:
    """Log of the mixture e-value from per-alternative cumulative log likelihood ratios (last axis)."""
    return log_mean_exp(cumulative_log_lr, axis=-1)


def log_mean_exp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(mean(exp(x))) along `axis`, without overflow (scipy's logsumexp costs 10x more here)."""
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.mean(np.exp(x - top), axis=axis))


def _log_martingale(k: np.ndarray, n: np.ndarray, p: np.ndarray, mix: np.ndarray | None = None) -> np.ndarray:
    """Log of Robbins' beta-binomial mixture martingale against the rate p after k events in n trials
    (`mix`, the log marginal likelihood, may be given: it does not depend on p)."""
    if mix is None:
        mix = betaln(PRIOR + k, PRIOR + n - k) - betaln(PRIOR, PRIOR)
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return mix - k * np.log(p) - (n - k) * np.log1p(-p)


def upper_bound(k: Any, n: Any, alpha: float) -> np.ndarray:
    """Anytime-valid upper confidence bound of a Bernoulli rate after k events in n trials.

    The largest p whose beta-binomial mixture martingale (Robbins 1970) stays below 1/α; 1 for n=0.
    """
    k, n = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    mix = betaln(PRIOR + k, PRIOR + n - k) - betaln(PRIOR, PRIOR)
    low, high = np.divide(k, n, out=np.zeros_like(n), where=n > 0), np.ones_like(n)
    for _ in range(30):
        mid = (low + high) / 2
        inside = _log_martingale(k, n, mid, mix) < -math.log(alpha)
        low, high = np.where(inside, mid, low), np.where(inside, high, mid)
    return np.where(n > 0, high, 1.0)


def excludes(k: Any, n: Any, rate: Any, alpha: float) -> np.ndarray:
    """Whether the confidence sequence puts the rate below `rate` (`upper_bound(k, n, alpha) < rate`,
    without the search: the martingale grows with p above k/n)."""
    k, n, rate = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (k, n, rate)))
    above = (n > 0) & (rate * n > k)
    return above & (_log_martingale(k, n, rate) >= -math.log(alpha))


def lower_bound(k: Any, n: Any, alpha: float) -> np.ndarray:
    """Anytime-valid lower confidence bound of a Bernoulli rate (0 for n=0)."""
    n = np.asarray(n, dtype=float)
    return np.where(n > 0, 1.0 - upper_bound(n - np.asarray(k, dtype=float), n, alpha), 0.0)


def allowed(primary_lower: Any, max_increase: float) -> np.ndarray:
    """The canary rate a step tolerates: the relative increase plus the absolute SLACK."""
    return (1 + max_increase) * np.asarray(primary_lower, dtype=float) + SLACK


@dataclass(frozen=True)
class Counts:
    """Events and requests per scrape of one side, shape (scrapes, series); series are the
    error count (errorRate) or the count above each histogram bound (latency)."""

    events: np.ndarray
    requests: np.ndarray


def error_counts(windows: Sequence[WindowStats]) -> Counts:
    return Counts(np.array([[w.errors_5xx] for w in windows], dtype=float).reshape(-1, 1),
                  np.array([[w.requests] for w in windows], dtype=float).reshape(-1, 1))


def latency_bounds(windows: Sequence[WindowStats]) -> tuple[float, ...]:
    """The finite bounds of the first histogram seen (Envoy's are the same for every cluster)."""
    for window in windows:
        if window.latency_buckets:
            return tuple(b for b, _ in window.latency_buckets if math.isfinite(b))
    return ()


def slower_counts(windows: Sequence[WindowStats], bounds: Sequence[float]) -> Counts:
    """Per scrape, how many requests were slower than each bound, out of the histogram's count."""
    events = np.zeros((len(windows), len(bounds)))
    requests = np.zeros((len(windows), len(bounds)))
    for row, window in enumerate(windows):
        if not window.latency_buckets:
            continue
        total = window.latency_count
        events[row] = [total - cumulative_at(window.latency_buckets, b) for b in bounds]
        requests[row] = total
    return Counts(events, requests)


def judge_sequential(check: CompareCheck, canary: Sequence[WindowStats],
                     primary: Sequence[WindowStats]) -> Decision:
    """The decision of one compare entry from the scrape-by-scrape traffic of both sides.

    `canary[i]` and `primary[i]` cover the same interval between two scrapes. fail: a regression
    is shown (roll back); pass: a regression beyond the tolerance is ruled out; inconclusive:
    neither yet. `inputs` holds the evidence and its distance to each decision.
    """
    alpha = 1 - check.confidence
    if check.compare == "errorRate":
        names: tuple[str, ...] = ("5xx",)
        c, p = error_counts(canary), error_counts(primary)
    else:
        bounds = latency_bounds([*canary, *primary])
        names = tuple(f"slower than {b:g}ms" for b in bounds)
        c, p = slower_counts(canary, bounds), slower_counts(primary, bounds)
    if not names or not len(canary):
        return Decision(check.label, "inconclusive", f"{check.compare}: no traffic measured yet",
                        {"compare": check.compare, "e_value": 1.0, "rollback_at": 1 / alpha})
    per_series = log_mixture(ratio_log_lr(c.events, c.requests, p.events, p.requests,
                                          1 + check.max_increase).sum(axis=0))
    log_e = float(log_mean_exp(per_series))
    kc, nc = c.events.sum(axis=0), c.requests.sum(axis=0)
    kp, np_ = p.events.sum(axis=0), p.requests.sum(axis=0)
    upper = upper_bound(kc, nc, alpha / 2)
    limit = allowed(lower_bound(kp, np_, alpha / 2), check.max_increase)
    margin = limit - upper
    worst = int(np.argmax(per_series))
    binding = int(np.argmin(margin))
    e_value = math.exp(min(log_e, 700.0))
    inputs = {
        "compare": check.compare, "max_increase": check.max_increase,
        "confidence": check.confidence, "test": "mixture SPRT of rate ratios (Lindon et al. 2022)",
        "e_value": _finite(e_value), "rollback_at": round(1 / alpha, 6),
        "worst": names[worst], "binding": names[binding],
        "canary": {"requests": int(c.requests[:, 0].sum()), "events": int(kc[binding]),
                   "rate": _share(kc[binding], nc[binding]), "upper": float(upper[binding])},
        "primary": {"requests": int(p.requests[:, 0].sum()), "events": int(kp[binding]),
                    "rate": _share(kp[binding], np_[binding])},
        "allowed": float(limit[binding]), "slack": SLACK,
    }
    what = "errorRate" if check.compare == "errorRate" else f"latency ({names[worst]})"
    evidence = (f"{what}: e-value {_short(e_value)} (rollback at {1 / alpha:g}); "
                f"canary {inputs['canary']['requests']} vs primary {inputs['primary']['requests']} requests")
    if log_e >= math.log(1 / alpha):
        kw, nw, kpw, npw = kc[worst], nc[worst], kp[worst], np_[worst]
        reason = (f"{evidence}: canary {names[worst]} {_pct(kw, nw)} vs primary {_pct(kpw, npw)}, "
                  f"more than {check.max_increase * 100:g}% higher — a regression")
        return Decision(check.label, "fail", reason, inputs)
    bound = (f"canary {names[binding]} {_pct(kc[binding], nc[binding])}, ≤ {upper[binding] * 100:.3g}% "
             f"with {check.confidence * 100:g}% confidence; tolerated ≤ {limit[binding] * 100:.3g}%")
    if margin[binding] > 0:
        return Decision(check.label, "pass", f"{evidence}; {bound}: regression ruled out", inputs)
    return Decision(check.label, "inconclusive",
                    f"{evidence}; {bound}: waiting for the bound to drop "
                    f"{-margin[binding] * 100:.3g} points, or the e-value to reach {1 / alpha:g}", inputs)


def _share(k: float, n: float) -> float | None:
    return float(k / n) if n > 0 else None


def _pct(k: float, n: float) -> str:
    return f"{100 * k / n:.3g}% ({int(k)}/{int(n)})" if n > 0 else "(no requests)"


def _short(value: float) -> str:
    return f"{value:.3g}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
