"""Calibration of the verdict engine by simulation: coverage and false "better"/"worse" when the truth is 0.

    python benchmarks/bench_calibration.py                      # 300 repetitions per setting, seconds
    python benchmarks/bench_calibration.py --reps 300 --others  # also the alternatives, about 2 minutes

A latent question difficulty u ~ N(0, 1); a run of a method gets question q right when u_q + 0.3·noise + a > 0,
with `a` the method's effect in that seed, a ~ N(0, seed_sd). Method and reference are the same model up to that
seed effect, so the true mean difference is 0. The reference is either one row per seed (its own seed effects,
like rft) or one shared row without a seed effect (like the base model, evaluated once). For each setting it prints
how often the 95% interval covers 0 and how often it excludes 0, a false "better" or "worse" (should be 5%).

"fiducial" is upft_bench.stats.difference_intervals, what verdicts use. With --others: "bootstrap", the two-level
percentile bootstrap the verdicts used before (upft_bench.stats.paired_bootstrap, 2,000 resamples here), and
"satterthwaite", a t interval on the same ANOVA components with Satterthwaite degrees of freedom.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.stats import t as student_t

from upft_bench.stats import difference_intervals, paired_bootstrap, variance_components


def satterthwaite_interval(d: np.ndarray) -> tuple[float, float]:
    """mean ± t_{0.975, df}·SE with the components truncated at 0 and df = (Σ terms)² / Σ(term²/df_term)."""
    units, questions = d.shape
    fit = variance_components(d)
    ms = fit["mean_squares"]
    ms_q, ms_u, ms_e = ms["question"], ms["unit"], ms["residual"]
    dfs = {"q": questions - 1, "u": units - 1, "e": (questions - 1) * (units - 1)}
    if ms_q >= ms_e and ms_u >= ms_e:
        terms = [(ms_q, dfs["q"]), (ms_u, dfs["u"]), (-ms_e, dfs["e"])]
    elif ms_q >= ms_e:
        terms = [(ms_q, dfs["q"])]
    elif ms_u >= ms_e:
        terms = [(ms_u, dfs["u"])]
    else:
        terms = [(ms_e, dfs["e"])]
    total = sum(v for v, _ in terms)
    df = max(1.0, total ** 2 / sum(v * v / k for v, k in terms)) if total > 0 else questions - 1
    half = student_t.ppf(0.975, df) * math.sqrt(max(total, 0.0) / (questions * units))
    return fit["estimate"] - half, fit["estimate"] + half


def simulate(reps: int, seed_sd: float, shared: bool, questions: int = 300, seeds: int = 3, rng_seed: int = 0,
             others: bool = False) -> dict:
    rng = np.random.default_rng(rng_seed)
    names = ["fiducial"] + (["bootstrap", "satterthwaite"] if others else [])
    hits = {k: [0, 0] for k in names}
    for _ in range(reps):
        u = rng.normal(size=questions)

        def runs(n, sd, u=u):
            return u[None, :] + 0.3 * rng.normal(size=(n, questions)) + rng.normal(0, sd, size=(n, 1)) > 0

        method = runs(seeds, seed_sd)
        reference = runs(1, 0.0) if shared else runs(seeds, seed_sd)
        d = method.astype(np.int8) - reference.astype(np.int8)
        intervals = {"fiducial": difference_intervals(d)["ci95"]}
        if others:
            intervals["bootstrap"] = paired_bootstrap(d, n_resamples=2000, seed=0, confidence=(0.95,))["intervals"][
                0.95]
            intervals["satterthwaite"] = satterthwaite_interval(d)
        for name, (lo, hi) in intervals.items():
            hits[name][0] += lo <= 0 <= hi
            hits[name][1] += lo > 0 or hi < 0
    return {k: {"coverage": v[0] / reps, "false_better_or_worse": v[1] / reps} for k, v in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--others", action="store_true", help="also the bootstrap and Satterthwaite intervals (slower)")
    args = ap.parse_args()
    print(f"{args.reps} repetitions, 300 questions x 3 seeds, true difference 0\n")
    print("| seed sd | reference | interval | coverage % | better/worse % |")
    print("|---|---|---|---|---|")
    t0 = time.time()
    for sd in (0.05, 0.1, 0.2):
        for shared in (False, True):
            out = simulate(args.reps, sd, shared, others=args.others)
            for name, figs in out.items():
                print(f"| {sd} | {'one shared row' if shared else 'one per seed'} | {name} | "
                      f"{100 * figs['coverage']:.1f} | {100 * figs['false_better_or_worse']:.1f} |")
    print(f"\n{time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
