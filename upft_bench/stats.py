"""Statistics for a paired comparison of two methods evaluated on the same questions.

    from upft_bench.stats import compare_paired
    # method: (seeds, questions) 0/1 outcomes; reference: the same questions, one row (broadcast) or one per seed
    result = compare_paired(upft_correct, rft_correct, margin=2.0)   # margin in points (percent)
    result["difference"], result["ci95"], result["verdict"]          # e.g. 1.3, [-0.7, 3.3], "inconclusive"

The pieces:

* `paired_bootstrap` resamples questions (shared by both methods, so the pairing is kept) and, with several
  seeds, seeds too; its percentile intervals give the 95% interval of the difference and the 90% interval that
  the equivalence test (TOST at 5%) reads.
* `mcnemar_exact` is the exact McNemar test of one paired 2x2 table (`paired_table`).
* `minimum_detectable_difference` is the smallest true difference the comparison would detect at 80% power.
* `verdict` turns the intervals and an equivalence margin into "equivalent", "better", "worse" or "inconclusive";
  `questions_needed` says roughly how many questions an inconclusive comparison would need.

Fractions (0..1) throughout, except `compare_paired`, which reports points (percent).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.stats import binomtest, norm

__all__ = [
    "wilson_interval",
    "mcnemar_exact",
    "paired_table",
    "paired_bootstrap",
    "minimum_detectable_difference",
    "verdict",
    "questions_needed",
    "compare_paired",
]

# Cells (resamples x questions) of weights held at once by `paired_bootstrap`.
_CHUNK_CELLS = 1 << 20


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the fraction `correct / n`, within [0, 1].

    (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = z_{(1+confidence)/2}; valid at 0 and n.
    `n == 0` gives (0.0, 1.0): nothing is known.
    """
    if n < 0 or not 0 <= correct <= max(n, 0):
        raise ValueError(f"need 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value of a paired table with discordant counts `b` and `c`.

    b: questions the method gets right and the reference wrong; c: the opposite. Under the null each discordant
    question is a fair coin, so p = binomtest(b, b + c, 0.5).pvalue = min(1, 2·P(Bin(b+c, ½) <= min(b, c))).
    No discordant questions (b + c == 0) gives 1.0.
    """
    if b < 0 or c < 0:
        raise ValueError(f"counts must be >= 0, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    return float(binomtest(int(b), int(b + c), 0.5).pvalue)


def paired_table(method: Sequence[bool], reference: Sequence[bool]) -> dict:
    """The paired 2x2 table of two 0/1 outcome sequences over the same questions.

    {"both_right", "method_only", "reference_only", "both_wrong"}: counts of (1,1), (1,0), (0,1), (0,0).
    """
    m = np.asarray(method, dtype=bool).ravel()
    r = np.asarray(reference, dtype=bool).ravel()
    if m.shape != r.shape:
        raise ValueError(f"method and reference differ in length: {m.shape[0]} vs {r.shape[0]}")
    return {
        "both_right": int(np.count_nonzero(m & r)),
        "method_only": int(np.count_nonzero(m & ~r)),
        "reference_only": int(np.count_nonzero(~m & r)),
        "both_wrong": int(np.count_nonzero(~m & ~r)),
    }


def paired_bootstrap(
    diffs,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: tuple[float, ...] = (0.95, 0.90),
) -> dict:
    """Two-level paired bootstrap of the mean per-question difference.

    `diffs`: array (S seeds, Q questions) of method - reference per question (-1/0/1); a 1-D array is one seed.
    Estimate = mean(diffs). Each resample draws Q question indices with replacement (the same for every seed: the
    questions are shared) and, when S > 1, S seed indices with replacement; its statistic is the mean over the drawn
    cells: with multinomial count weights w_seed (S) and w_q (Q), stat = sum_{s,q} w_seed[s]·w_q[q]·d[s,q] / (S·Q).
    Returns {"estimate", "se": std of the statistics (ddof=1), "intervals": {c: (lo, hi)}} with percentile
    intervals at each confidence c, all fractions. Deterministic for a fixed `seed` (PCG64).
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2 or d.shape[0] == 0 or d.shape[1] == 0:
        raise ValueError(f"diffs must be a non-empty (seeds, questions) array, got shape {np.shape(diffs)}")
    if n_resamples < 2:
        raise ValueError(f"n_resamples must be >= 2, got {n_resamples}")
    for c in confidence:
        if not 0 < c < 1:
            raise ValueError(f"confidence levels must lie in (0, 1), got {c}")
    n_seeds, n_q = d.shape
    rng = np.random.Generator(np.random.PCG64(seed))
    p_q = np.full(n_q, 1.0 / n_q)
    p_s = np.full(n_seeds, 1.0 / n_seeds)
    chunk = max(1, _CHUNK_CELLS // n_q)
    stats = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        w_q = rng.multinomial(n_q, p_q, size=b).astype(np.float64)  # (b, Q)
        if n_seeds > 1:
            w_seed = rng.multinomial(n_seeds, p_s, size=b).astype(np.float64)  # (b, S)
            m = w_seed @ d  # (b, Q): each question's difference summed over the drawn seeds
        else:
            m = np.broadcast_to(d[0], (b, n_q))
        stats[start:start + b] = (m * w_q).sum(axis=1) / (n_seeds * n_q)
    intervals = {}
    for c in confidence:
        lo, hi = np.quantile(stats, [(1 - c) / 2, (1 + c) / 2])
        intervals[c] = (float(lo), float(hi))
    return {"estimate": float(d.mean()), "se": float(stats.std(ddof=1)), "intervals": intervals}


def minimum_detectable_difference(se: float, alpha: float = 0.05, power: float = 0.80) -> float:
    """(z_{1-alpha/2} + z_{power})·se: the smallest true difference a two-sided test at `alpha` detects with `power`.

    At the defaults, (1.95996 + 0.84162)·se ≈ 2.80·se.
    """
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * se)


def verdict(ci95: tuple[float, float], ci90: tuple[float, float], margin: float) -> str:
    """The comparison's verdict; intervals and margin in the same unit.

    "equivalent" when -margin < ci90 low and ci90 high < margin (TOST at 5%: both one-sided tests reject), checked
    first; else "better" when ci95 low > 0; else "worse" when ci95 high < 0; else "inconclusive". An interval
    touching ±margin is not equivalent, one touching 0 is not better or worse.
    """
    if -margin < ci90[0] and ci90[1] < margin:
        return "equivalent"
    if ci95[0] > 0:
        return "better"
    if ci95[1] < 0:
        return "worse"
    return "inconclusive"


def questions_needed(n: int, se: float, difference: float, margin: float, alpha: float = 0.05) -> int | None:
    """Rough total number of questions at which an inconclusive comparison would resolve.

    Assumes the standard error shrinks as 1/sqrt(n), se_m = se·sqrt(n/m), and the observed difference stays. If
    |difference| < margin, equivalence is shown once z_{1-alpha}·se_m + |difference| < margin, so
    m = ceil(n·(z_{1-alpha}·se / (margin - |difference|))²); otherwise the difference is shown once
    z_{1-alpha/2}·se_m < |difference|, so m = ceil(n·(z_{1-alpha/2}·se / |difference|)²).
    `difference == 0` with `margin == 0` can never resolve: None.
    """
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    if se < 0 or margin < 0:
        raise ValueError(f"se and margin must be >= 0, got se={se}, margin={margin}")
    gap = abs(difference)
    if gap < margin:
        z, room = norm.ppf(1 - alpha), margin - gap
    elif gap > 0:
        z, room = norm.ppf(1 - alpha / 2), gap
    else:
        return None
    return int(math.ceil(n * (z * se / room) ** 2))


def _outcomes(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty (questions,) or (seeds, questions) array, got {np.shape(x)}")
    if a.dtype != bool and not np.isin(a, (0, 1)).all():
        raise ValueError(f"{name} must hold 0/1 (or bool) outcomes")
    return a.astype(bool)


def _round(x: float) -> float:
    return round(float(x), 4)


def _round_p(p: float) -> float:
    # four significant digits, so that a very small p stays visible (4 decimals would show 0.0)
    return float(f"{p:.4g}")


def compare_paired(method, reference, margin: float, n_resamples: int = 10_000, seed: int = 0) -> dict:
    """Paired comparison of `method` against `reference` on the same questions; figures in points.

    `method`, `reference`: 0/1 (bool) arrays of shape (S, Q), or (Q,) for S = 1. One side with a single row and
    the other with S rows is broadcast: the single row pairs with every seed (e.g. a base model evaluated once).
    `margin` is the equivalence margin in points. difference = 100·mean(method - reference), its se and intervals
    from `paired_bootstrap`, exact McNemar p per seed and on the summed tables, mde = 2.80·se, the `verdict`, and
    `questions_needed` when inconclusive. Floats are rounded to 4 decimals (p-values to 4 significant digits), and
    the verdict is read from the rounded figures, so an interval that touches the margin in the output is not
    "equivalent". Identical inputs give identical output (a plain, JSON-able dict).
    """
    m = _outcomes(method, "method")
    r = _outcomes(reference, "reference")
    if m.shape != r.shape:
        if m.shape[1] == r.shape[1] and 1 in (m.shape[0], r.shape[0]):
            shape = (max(m.shape[0], r.shape[0]), m.shape[1])
            m, r = np.broadcast_to(m, shape), np.broadcast_to(r, shape)
        else:
            raise ValueError(
                f"method and reference shapes do not pair: method {np.shape(method)}, reference {np.shape(reference)}"
            )
    n_seeds, n_q = m.shape
    diffs = m.astype(np.int8) - r.astype(np.int8)
    boot = paired_bootstrap(diffs, n_resamples=n_resamples, seed=seed, confidence=(0.95, 0.90))
    ci95 = [_round(100 * v) for v in boot["intervals"][0.95]]
    ci90 = [_round(100 * v) for v in boot["intervals"][0.90]]
    difference = _round(100 * boot["estimate"])
    se = _round(100 * boot["se"])

    tables = []
    for i in range(n_seeds):
        t = paired_table(m[i], r[i])
        tables.append({
            "seed_index": i,
            "method_only": t["method_only"],
            "reference_only": t["reference_only"],
            "both_right": t["both_right"],
            "both_wrong": t["both_wrong"],
            "p": _round_p(mcnemar_exact(t["method_only"], t["reference_only"])),
        })
    pooled_b = sum(t["method_only"] for t in tables)
    pooled_c = sum(t["reference_only"] for t in tables)

    margin = float(margin)
    outcome = verdict((ci95[0], ci95[1]), (ci90[0], ci90[1]), margin)
    return {
        "questions": int(n_q),
        "seeds": int(n_seeds),
        "accuracy": _round(100 * m.mean()),
        "reference_accuracy": _round(100 * r.mean()),
        "difference": difference,
        "ci95": ci95,
        "ci90": ci90,
        "se": se,
        "mcnemar": tables,
        "mcnemar_p_pooled": _round_p(mcnemar_exact(pooled_b, pooled_c)),
        "mde": _round(minimum_detectable_difference(se)),
        "margin": margin,
        "verdict": outcome,
        "questions_needed": questions_needed(n_q, se, difference, margin) if outcome == "inconclusive" else None,
    }
