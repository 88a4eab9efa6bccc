"""Statistics for a paired comparison of two methods evaluated on the same questions, over seeds.

    from upft_bench.stats import compare_paired
    # method: (runs, questions) 0/1 outcomes; reference: the same questions, one row (broadcast) or one per run
    result = compare_paired(upft_correct, rft_correct, margin=2.0)   # margin in points (percent)
    result["difference"], result["ci95"], result["verdict"]          # e.g. 1.3, [-0.7, 3.3], "inconclusive"

The design is crossed: every run (a seed; with base builds, the seeds of each build) answers the same questions.
A per-question difference d[u, q] = method - reference varies with the question, with the unit (seed, or base
build), and with their interaction, and the mean difference's variance has a part of each (docs/METHODS.md):

    Var(mean) = s2_question / Q + s2_unit / U + s2_residual / (Q·U)

The pieces:

* `variance_components` estimates the three parts from the two-way ANOVA of the (unit, question) table;
  `difference_intervals` gives the mean's 95% and 90% intervals: the generalized (fiducial) interval of the
  crossed design (`fiducial_half_width`), which keeps the few degrees of freedom of the seed component in view,
  never narrower than what an exact bound on the discordance rate allows (`discordance_floor`). No resampling:
  the same outcomes always give the same interval and verdict. With one seed it is the paired t interval.
* `signflip_test` is the exact two-sided sign-flip test with the question as the unit (a question discordant in
  every seed counts once, with its weight); `mcnemar_exact` is the exact test of one seed's paired 2x2 table.
* `equivalence_power` is the chance that TOST at ±margin succeeds if the true difference were 0, for a design;
  `equivalence_designs` lists the smallest question counts per number of units that reach a target power.
* `verdict` turns the intervals and the margin into "equivalent", "better", "worse" or "inconclusive".
* `paired_bootstrap` (questions and seeds resampled) is kept as a cross-check; no verdict depends on it.

Fractions (0..1) throughout, except `compare_paired`, which reports points (percent).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr
from scipy.stats import binom, binomtest, chi2, norm
from scipy.stats import t as student_t

__all__ = [
    "wilson_interval",
    "accuracy_interval",
    "mcnemar_exact",
    "paired_table",
    "paired_bootstrap",
    "Components",
    "variance_components",
    "discordance_floor",
    "fiducial_half_width",
    "difference_intervals",
    "signflip_test",
    "minimum_detectable_difference",
    "equivalence_power",
    "equivalence_designs",
    "verdict",
    "compare_paired",
    "TARGET_POWER",
]

# Cells (resamples x questions) of weights held at once by `paired_bootstrap`.
_CHUNK_CELLS = 1 << 20
# The power a design is planned for (`equivalence_designs`, `upft-bench plan --power`).
TARGET_POWER = 0.8
# Units (seeds) a design may have when `compare_paired` names the smallest one that reaches TARGET_POWER.
_MAX_DESIGN_UNITS = 20
# Questions beyond which a design is "unreachable" (power keeps rising only through the unit component).
_MAX_DESIGN_QUESTIONS = 10_000_000
# Cells (distribution length x items) above which `signflip_test` uses the normal approximation.
_EXACT_SIGNFLIP_CELLS = 50_000_000


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


def accuracy_interval(task: dict) -> tuple[float, float] | None:
    """95% interval of a task's accuracy (fractions): Wilson's, which stays valid near 0% and 100%.

    For a group row (an unweighted mean over tasks) or an older file without counts: the normal interval from
    lm-eval's standard error, clipped to [0, 1]; None when neither is known.
    """
    if task.get("correct") is not None and task.get("n") and "outcomes" in task:
        return wilson_interval(int(task["correct"]), int(task["n"]))
    se = task.get("exact_match_stderr")
    if se is None:
        return None
    return max(0.0, task["exact_match"] - 1.96 * se), min(1.0, task["exact_match"] + 1.96 * se)


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
    """Two-level paired bootstrap of the mean per-question difference (a cross-check; verdicts do not use it).

    `diffs`: array (S seeds, Q questions) of method - reference per question (-1/0/1); a 1-D array is one seed.
    Estimate = mean(diffs). Each resample draws Q question indices with replacement (the same for every seed: the
    questions are shared) and, when S > 1, S seed indices with replacement; its statistic is the mean over the drawn
    cells: with multinomial count weights w_seed (S) and w_q (Q), stat = sum_{s,q} w_seed[s]·w_q[q]·d[s,q] / (S·Q).
    Returns {"estimate", "se": std of the statistics (ddof=1), "intervals": {c: (lo, hi)}} with percentile
    intervals at each confidence c, all fractions. Deterministic for a fixed `seed` (PCG64). With three seeds it
    understates the seed component (docs/METHODS.md): 3 seeds give 10 distinct seed draws and no small-sample
    correction.
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


# ---------------------------------------------------------------------------------------------- the crossed design
@dataclass(frozen=True)
class Components:
    """Variance components of the per-question difference (fractions²) in a questions x units design.

    question: the persistent question effect (how much the true per-question difference varies between
    questions); unit: the seed (or base build) effect on the mean difference; residual: their interaction and
    noise, which shrinks with questions *and* units. `unit` is None when one unit cannot estimate it (one seed):
    then `residual` is 0 and `question` holds all the question-level variance, so more seeds are never credited
    with shrinking it.
    """

    question: float
    unit: float | None
    residual: float

    def variance(self, questions: int, units: int) -> float:
        """Var of the mean difference of a design with `questions` questions and `units` units."""
        return self.question / questions + (self.unit or 0.0) / units + self.residual / (questions * units)

    def mean_squares(self, questions: int, units: int) -> dict:
        """The design's expected mean squares: question res + U·question, unit res + Q·unit, residual res."""
        res = self.residual
        return {"question": res + units * self.question, "unit": res + questions * (self.unit or 0.0),
                "residual": res}

    def half_width(self, questions: int, units: int, confidence: float) -> float:
        """The interval's half-width a design gets when its mean squares come out at their expected values (the
        discordance floor included). One unit is the ordinary paired t interval, which cannot see the unit
        component."""
        if units == 1:
            half = float(student_t.ppf((1 + confidence) / 2, max(questions - 1, 1))) * math.sqrt(
                (self.question + self.residual) / questions)
        else:
            ms = self.mean_squares(questions, units)
            half = fiducial_half_width(ms["question"], ms["unit"], ms["residual"], questions, units, confidence)
        return max(half, discordance_floor(questions, confidence))


def variance_components(d) -> dict:
    """Two-way random-effects ANOVA (units x questions, one observation per cell) of per-question differences.

    `d`: (U units, Q questions) of differences (fractions; a unit's row may be a mean over its seeds). Returns
    {"estimate", "variance" (of the mean, each component truncated at 0), "components": Components,
    "mean_squares"}. With E[MS_Q] = res + U·question, E[MS_U] = res + Q·unit, E[MS_E] = res, the components are
    question = (MS_Q - MS_E)/U, unit = (MS_U - MS_E)/Q, residual = MS_E. With one unit it is the ordinary paired
    analysis: Var = s²/Q.
    """
    d = np.asarray(d, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    units, questions = d.shape
    if units == 0 or questions < 2:
        raise ValueError(f"need at least one unit and two questions, got shape {d.shape}")
    grand = float(d.mean())
    q_means, u_means = d.mean(axis=0), d.mean(axis=1)
    if units == 1:
        ms_q = float(d[0].var(ddof=1))
        comps = Components(question=ms_q, unit=None, residual=0.0)
        return {"estimate": grand, "variance": ms_q / questions, "components": comps,
                "mean_squares": {"question": ms_q}}
    ms_q = units * float(((q_means - grand) ** 2).sum()) / (questions - 1)
    ms_u = questions * float(((u_means - grand) ** 2).sum()) / (units - 1)
    resid = d - q_means[None, :] - u_means[:, None] + grand
    ms_e = float((resid ** 2).sum()) / ((questions - 1) * (units - 1))
    comps = Components(question=max(0.0, (ms_q - ms_e) / units), unit=max(0.0, (ms_u - ms_e) / questions),
                       residual=ms_e)
    return {"estimate": grand, "variance": comps.variance(questions, units), "components": comps,
            "mean_squares": {"question": ms_q, "unit": ms_u, "residual": ms_e}}


@lru_cache(maxsize=256)
def _chi2_nodes(df: int) -> np.ndarray:
    """Equal-weight nodes of chi²_df / df (the midpoints of `n` equal-probability bins); one node, 1, when df is
    large enough that a mean square with it is as good as known (its relative sd sqrt(2/df) <= 0.1)."""
    if df >= 200:
        return np.ones(1)
    n = 256 if df < 10 else 32
    return chi2.ppf((np.arange(n) + 0.5) / n, df) / df


def fiducial_half_width(ms_q: float, ms_u: float, ms_e: float, questions: int, units: int, confidence: float
                        ) -> float:
    """Half-width of the generalized (fiducial) confidence interval of the mean in the crossed design.

    The mean's generalized pivot is  mean - Z·sqrt(V*),  V* = q*/Q + u*/U + e*/(Q·U)  with the components
    recomputed from each mean square divided by its own chi²/df draw (MS_Q·df_q/chi²_{df_q}, ...) and truncated
    at 0 (Weerahandi 1993; Hannig, Iyer & Patterson 2006). The interval is mean ± h with
    E[2Φ(h / sqrt(V*)) - 1] = confidence. The expectation runs over a fixed grid of chi² quantiles
    (`_chi2_nodes`), so the result is deterministic: no random draw decides it. It keeps the few degrees of freedom
    of the unit mean square (U - 1) in view, where a Satterthwaite t interval on the same components is liberal
    with three seeds (docs/METHODS.md: 93-95% coverage of a 95% interval, against 95-98% here).
    """
    xq = _chi2_nodes(questions - 1)[:, None, None]
    xu = _chi2_nodes(units - 1)[None, :, None]
    xe = _chi2_nodes((questions - 1) * (units - 1))[None, None, :]
    e = ms_e / xe
    q_star = np.maximum(0.0, (ms_q / xq - e) / units)
    u_star = np.maximum(0.0, (ms_u / xu - e) / questions)
    w = np.sqrt(np.broadcast_to(q_star / questions + u_star / units + e / (questions * units),
                                (xq.size, xu.size, xe.size))).ravel()
    if not (w > 0).any():
        return 0.0
    positive = w[w > 0]
    at_zero = 1.0 - positive.size / w.size  # draws with no variance cover at any h

    def coverage(h: float) -> float:
        return at_zero + float(np.mean(2.0 * ndtr(h / positive) - 1.0)) * (1.0 - at_zero) - confidence

    high = float(positive.max()) * 10.0
    return float(brentq(coverage, 0.0, high, xtol=1e-10, rtol=1e-10))


def discordance_floor(questions: int, confidence: float) -> float:
    """1 - ((1 - confidence)/2)^(1/Q): the exact (Clopper-Pearson) upper bound of the rate at which two methods
    disagree on a question when none of Q questions showed a disagreement. |true difference| <= that rate, so no
    interval of the difference on Q questions is justified in being narrower than ± this (about 3.7/Q at 95%)."""
    return 1.0 - ((1.0 - confidence) / 2.0) ** (1.0 / questions)


def signflip_test(diffs) -> float:
    """Exact two-sided sign-flip (permutation) test with the question as the unit.

    `diffs`: (runs, questions) of method - reference (-1/0/1). Each question's difference summed over the runs,
    k_q, is one observation: under the null (no difference on these questions) its sign is a fair coin, so
    T = sum(k_q) has the distribution of sum(±|k_q|), computed exactly by convolution (lattice of integers), and
    p = P(|T| >= |T_observed|). A question discordant in every seed counts once, with weight 3 (of three seeds),
    not as three independent questions. With one run it is the exact McNemar test. Deterministic; above
    `_EXACT_SIGNFLIP_CELLS` of work it uses the normal approximation with the exact variance sum(k_q²).
    """
    d = np.asarray(diffs)
    if d.ndim == 1:
        d = d[None, :]
    k = d.astype(np.int64).sum(axis=0)
    t_obs = int(abs(k.sum()))
    weights = np.abs(k[k != 0])
    if weights.size == 0:
        return 1.0
    total = int(weights.sum())
    values, counts = np.unique(weights, return_counts=True)
    if (2 * total + 1) * (2 * total + 1) > _EXACT_SIGNFLIP_CELLS:
        z = (t_obs - 0.5) / math.sqrt(float((weights.astype(np.float64) ** 2).sum()))  # continuity-corrected
        return float(min(1.0, 2 * norm.sf(z)))
    dist = np.ones(1)
    for a, n in zip(values.tolist(), counts.tolist()):
        # n questions of weight a contribute a·(2B - n), B ~ Bin(n, 1/2): values -a·n .. a·n in steps of 2a
        kernel = np.zeros(2 * a * n + 1)
        kernel[:: 2 * a] = binom.pmf(np.arange(n + 1), n, 0.5)
        dist = np.convolve(dist, kernel)
    support = np.arange(dist.size) - total
    return float(min(1.0, dist[np.abs(support) >= t_obs].sum()))


def minimum_detectable_difference(se: float, alpha: float = 0.05, power: float = 0.80, half_width: float | None = None
                                  ) -> float:
    """The smallest true difference a two-sided test at `alpha` detects with `power`: half_width + z_{power}·se,
    where half_width is the test's (1 - alpha) interval half-width (default z_{1-alpha/2}·se). At the defaults and
    a normal interval, ≈ 2.80·se."""
    half = norm.ppf(1 - alpha / 2) * se if half_width is None else half_width
    return float(half + norm.ppf(power) * se)


def equivalence_power(comps: Components, questions: int, units: int, margin: float, alpha: float = 0.05) -> float:
    """Chance that TOST at ±margin (the 1 - 2·alpha interval inside it) succeeds if the true difference were 0,
    for a design of `questions` x `units` with these components (fractions). Closed form: 2·Φ((margin - h)/sd) - 1,
    sd the mean's standard deviation, h the design's 90% half-width (`Components.half_width`); 0 when h >= margin.
    """
    sd = math.sqrt(comps.variance(questions, units))
    room = margin - comps.half_width(questions, units, 1 - 2 * alpha)
    if room <= 0:
        return 0.0
    if sd == 0:
        return 1.0
    return float(max(0.0, 2 * norm.cdf(room / sd) - 1))


def _smallest_questions(power_at, target: float, min_questions: int, max_questions: int) -> int | None:
    """The smallest Q in [min_questions, max_questions] with power_at(Q) >= target (power rises with Q)."""
    if power_at(max_questions) < target:
        return None
    lo, hi = min_questions, max_questions
    if power_at(lo) >= target:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power_at(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def equivalence_designs(comps: Components, margin: float, target: float = TARGET_POWER, min_questions: int = 2,
                        units: Sequence[int] = range(1, _MAX_DESIGN_UNITS + 1),
                        max_questions: int = _MAX_DESIGN_QUESTIONS) -> list[dict]:
    """For each unit count in `units`: the fewest questions (>= min_questions, <= max_questions) at which
    equivalence power reaches `target`, or None; and the power with unlimited questions at that unit count, which
    only more units can raise. A one-unit design is left out when a unit component was measured (one seed cannot
    see it, so its interval would not)."""
    out = []
    for u in units:
        if u == 1 and comps.unit is not None:
            continue

        def power_at(q, u=u):
            return equivalence_power(comps, q, u, margin)

        out.append({"units": int(u), "questions": _smallest_questions(power_at, target, min_questions, max_questions),
                    "power_limit": round(power_at(_MAX_DESIGN_QUESTIONS), 4)})
    return out


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


# ---------------------------------------------------------------------------------------------- one comparison
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


def _unit_means(diffs: np.ndarray, units: Sequence | None) -> tuple[np.ndarray, list]:
    """Rows grouped by unit label (every row its own unit when None), each unit's row the mean of its runs."""
    labels = list(range(diffs.shape[0])) if units is None else list(units)
    if len(labels) != diffs.shape[0]:
        raise ValueError(f"units: {len(labels)} labels for {diffs.shape[0]} runs")
    order = list(dict.fromkeys(labels))
    sizes = {u: labels.count(u) for u in order}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"units: every unit needs the same number of runs, got {sizes}")
    rows = np.stack([diffs[[i for i, lab in enumerate(labels) if lab == u]].mean(axis=0) for u in order])
    return rows, order


def difference_intervals(diffs, units: Sequence | None = None) -> dict:
    """The mean difference of a (runs, questions) table and its 95% and 90% intervals (fractions).

    Runs are grouped into units (`_unit_means`); the ANOVA of units x questions gives the components, and the
    intervals are the fiducial interval of the crossed design (`fiducial_half_width`; with one unit, the paired t
    interval on Q - 1 df), each at least the discordance floor, clipped to [-1, 1].
    {"estimate", "variance", "components", "units", "half95", "ci95", "ci90"}.
    """
    d = np.asarray(diffs)
    if d.ndim == 1:
        d = d[None, :]
    unit_rows, unit_labels = _unit_means(d, units)
    n_q, n_units = d.shape[1], len(unit_labels)
    if n_q >= 2:
        fit = variance_components(unit_rows)
        comps, estimate, variance, ms = fit["components"], fit["estimate"], fit["variance"], fit["mean_squares"]
    else:  # one question: no spread to estimate; only the discordance floor (about ±98 points) bounds it
        comps, estimate, variance, ms = Components(0.0, None, 0.0), float(d.mean()), 0.0, None
    out = {"estimate": estimate, "variance": variance, "components": comps, "units": n_units}
    for confidence, key in ((0.95, "ci95"), (0.90, "ci90")):
        if ms is None:
            half = 0.0
        elif n_units == 1:
            half = float(student_t.ppf((1 + confidence) / 2, n_q - 1)) * math.sqrt(variance)
        else:
            half = fiducial_half_width(ms["question"], ms["unit"], ms["residual"], n_q, n_units, confidence)
        half = max(half, discordance_floor(n_q, confidence))
        out[key] = (max(-1.0, estimate - half), min(1.0, estimate + half))
        if key == "ci95":
            out["half95"] = half
    return out


def compare_paired(method, reference, margin: float, units: Sequence | None = None, n_resamples: int = 10_000,
                   seed: int = 0, unit_name: str = "seed") -> dict:
    """Paired comparison of `method` against `reference` on the same questions over runs; figures in points.

    `method`, `reference`: 0/1 (bool) arrays of shape (R runs, Q questions), or (Q,) for one run. One side with a
    single row and the other with R rows is broadcast: the single row pairs with every run (e.g. a base model
    evaluated once). `units`: a label per run naming its unit of replication, when runs are nested (the base
    build of each run, when base builds vary: the unit is then the build, its runs averaged); default: every run
    is a unit (a seed). `margin`: the equivalence margin in points.

    difference = 100·mean(method - reference); its variance components from the crossed questions x units ANOVA
    (`variance_components`), its intervals (`difference_intervals`), the exact question-level
    sign-flip p and each run's exact McNemar p, mde, the equivalence power of this design and the smallest designs
    (questions x units) that reach TARGET_POWER, and the `verdict`, read from the rounded figures (an interval that
    touches the margin in the output is not "equivalent"). `n_resamples`/`seed` drive only the bootstrap
    cross-check (`bootstrap_ci95`; 0 resamples: none). Identical inputs give identical output (a plain, JSON-able dict).
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
    n_runs, n_q = m.shape
    diffs = m.astype(np.int8) - r.astype(np.int8)
    fit = difference_intervals(diffs, units)
    comps, estimate, variance, n_units = (fit[k] for k in ("components", "estimate", "variance", "units"))
    ci95 = [_round(100 * v) for v in fit["ci95"]]
    ci90 = [_round(100 * v) for v in fit["ci90"]]
    se = math.sqrt(variance)
    unit_part = (comps.unit or 0.0) / n_units
    margin = float(margin)
    margin_f = margin / 100

    tables = []
    for i in range(n_runs):
        t = paired_table(m[i], r[i])
        tables.append({
            "seed_index": i,
            "method_only": t["method_only"],
            "reference_only": t["reference_only"],
            "both_right": t["both_right"],
            "both_wrong": t["both_wrong"],
            "p": _round_p(mcnemar_exact(t["method_only"], t["reference_only"])),
        })
    boot = paired_bootstrap(diffs, n_resamples=n_resamples, seed=seed, confidence=(0.95,)) if n_resamples else None

    power = equivalence_power(comps, n_q, n_units, margin_f) if variance > 0 else None
    designs = equivalence_designs(comps, margin_f, min_questions=n_q) if variance > 0 else []
    reachable = [d for d in designs if d["questions"] is not None]
    limit_now = next((d["power_limit"] for d in designs if d["units"] == n_units), None)
    outcome = verdict((ci95[0], ci95[1]), (ci90[0], ci90[1]), margin)
    return {
        "questions": int(n_q),
        "seeds": int(n_runs),
        "units": int(n_units),
        "unit": unit_name,
        "accuracy": _round(100 * m.mean()),
        "reference_accuracy": _round(100 * r.mean()),
        "difference": _round(100 * estimate),
        "se": _round(100 * se),
        "ci95": ci95,
        "ci90": ci90,
        "interval": "fiducial, crossed questions x units",
        # variance components in points² (question, unit, residual) and the unit's share of the mean's variance
        "components": {"question": _round(1e4 * comps.question),
                       "unit": None if comps.unit is None else _round(1e4 * comps.unit),
                       "residual": _round(1e4 * comps.residual)},
        "unit_share": _round(unit_part / variance) if variance > 0 else None,
        "mcnemar": tables,
        "signflip_p": _round_p(signflip_test(diffs)),
        "bootstrap_ci95": [_round(100 * v) for v in boot["intervals"][0.95]] if boot else None,
        "mde": _round(100 * minimum_detectable_difference(se, half_width=fit["half95"])),
        "margin": margin,
        "equivalence_power": None if power is None else _round(power),
        # the fewest units (then questions, never fewer than used) at which equivalence power reaches the target
        "equivalence_design": ({"questions": reachable[0]["questions"], "units": reachable[0]["units"],
                                "target_power": TARGET_POWER} if reachable else None),
        # equivalence power with unlimited questions at this many units: what more questions alone can reach
        "equivalence_power_limit": limit_now,
        "verdict": outcome,
    }
