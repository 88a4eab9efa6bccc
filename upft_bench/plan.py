"""`upft-bench plan`: which designs (questions x seeds) would settle each comparison, and what they would cost.

    upft-bench plan results/reference                          # a finished run as the pilot
    upft-bench plan results/reference --margin 3 --power 0.9 --reference base
    upft-bench plan --se-question 1.6 --questions 300 --seed-sd 2.5   # no run: from given components

From a finished run it estimates, for every comparison, the variance components of the paired difference
(questions, seeds, their interaction; upft_bench.stats), and for each number of seeds the fewest questions (never
fewer than the run used) at which the chance of showing equivalence within ±margin reaches the target power, if the
true difference were 0. Each design is priced from the run's own measured costs: per seed the two methods' sampling
and training, per question their evaluation (FLOPs, and wall seconds on the machine that ran it). A comparison that
no design up to --max-seeds settles within --budget times this run's cost is named as such.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from upft_bench.report import experiment_groups, load_metrics, points
from upft_bench.results import paired_outcomes, report_settings, runs_of
from upft_bench.stats import (
    Components,
    difference_intervals,
    equivalence_designs,
    equivalence_power,
    verdict,
)

# Units a design may have by default, and the budget: a multiple of what the comparison cost in the pilot run.
MAX_SEEDS = 10
BUDGET = 10.0


@dataclass
class Cost:
    """What one comparison costs per unit of its design: `per_unit` (sampling and training of both methods in one
    seed, or in one base build's seeds) and `per_question` (evaluating one more question in one unit), in FLOPs
    and wall seconds (None where a run did not record them)."""

    per_unit_flops: float | None
    per_question_flops: float | None
    per_unit_seconds: float
    per_question_seconds: float

    def flops(self, questions: int, units: int) -> float | None:
        if self.per_unit_flops is None or self.per_question_flops is None:
            return None
        return units * (self.per_unit_flops + questions * self.per_question_flops)

    def seconds(self, questions: int, units: int) -> float:
        return units * (self.per_unit_seconds + questions * self.per_question_seconds)


def _mean(values):
    values = list(values)
    return None if any(v is None for v in values) else statistics.fmean(values)


def comparison_cost(runs: list[dict], method: str, reference: str, units: int) -> Cost:
    """Per-unit and per-question cost of comparing `method` with `reference` on `task`, from the runs' rows.

    A method's sampling and training happen once per run; its evaluation once per run and question, except for a
    model evaluated once and reused by every run of its build (the base model: `model` set in its row), which
    costs one evaluation per unit. Evaluation cost per question is the run's evaluation cost over all the
    questions it evaluated (every task)."""
    runs_per_unit = len(runs) / units
    per_unit_flops, per_question_flops = 0.0, 0.0
    per_unit_seconds, per_question_seconds = 0.0, 0.0
    flops_known = True
    for name in (method, reference):
        rows = [r["methods"][name] for r in runs]
        shared = all(row.get("model") for row in rows)  # the same model in every run of a build: evaluated once
        times = 1 if shared else runs_per_unit
        n_questions = [sum(t.get("n") or 0 for t in row["tasks"].values()) or 1 for row in rows]
        fixed = _mean((row.get("sample_flops") or 0) + (row.get("train_flops") or 0)
                      if row.get("sample_flops") is not None and row.get("train_flops") is not None else None
                      for row in rows)
        each = _mean(row.get("eval_flops") / n if row.get("eval_flops") is not None else None
                     for row, n in zip(rows, n_questions))
        if fixed is None or each is None:
            flops_known = False
        else:
            per_unit_flops += (0 if shared else runs_per_unit * fixed)
            per_question_flops += times * each
        per_unit_seconds += 0 if shared else runs_per_unit * statistics.fmean(
            (row.get("sample_seconds") or 0) + (row.get("train_seconds") or 0) for row in rows)
        per_question_seconds += times * statistics.fmean(
            (row.get("eval_seconds") or 0) / n for row, n in zip(rows, n_questions))
    return Cost(per_unit_flops if flops_known else None, per_question_flops if flops_known else None,
                per_unit_seconds, per_question_seconds)


def plan_designs(comps: Components, questions: int, units: int, margin: float, power: float, max_units: int,
                 max_questions: int | None, cost: Cost | None) -> list[dict]:
    """One row per unit count that reaches `power`: the fewest questions (>= `questions`), the power there, and
    the design's cost (FLOPs, seconds, multiple of the pilot's) when `cost` is known. Fractions in `margin`."""
    kwargs = {"max_questions": max_questions} if max_questions else {}
    rows = []
    for d in equivalence_designs(comps, margin, target=power, min_questions=questions,
                                 units=range(1, max_units + 1), **kwargs):
        row = {"units": d["units"], "questions": d["questions"], "power_limit": d["power_limit"]}
        if d["questions"] is not None:
            row["power"] = equivalence_power(comps, d["questions"], d["units"], margin)
            if cost is not None:
                pilot_flops = cost.flops(questions, units)
                row["flops"] = cost.flops(d["questions"], d["units"])
                row["seconds"] = cost.seconds(d["questions"], d["units"])
                row["times_pilot"] = (row["flops"] / pilot_flops if row["flops"] and pilot_flops else
                                      row["seconds"] / max(cost.seconds(questions, units), 1e-9))
        rows.append(row)
    return rows


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def designs_table(rows: list[dict], unit: str) -> str:
    reachable = [r for r in rows if r["questions"] is not None]
    with_cost = any("flops" in r for r in reachable)
    headers = [f"{unit}s", "questions", "TOST power"] + (["FLOPs", "x this run", "wall time here"] if with_cost
                                                         else [])
    body = []
    for r in reachable:
        cells = [r["units"], f"{r['questions']:,}", f"{100 * r['power']:.0f}%"]
        if with_cost:
            cells += ["" if r.get("flops") is None else f"{r['flops']:.2e}", f"{r['times_pilot']:.1f}",
                      _hours(r["seconds"])]
        body.append(cells)
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def plan_run(path: Path, margin: float | None, power: float, reference: str | None, max_units: int,
             max_questions: int | None, budget: float) -> str:
    """The planner's report for a finished run (a result folder or metrics.json)."""
    metrics = load_metrics(path)
    parts = []
    for group in experiment_groups(runs_of(metrics)):
        ref, others, margin_pts = report_settings(group, reference, [] if reference else None, margin)
        for pair in paired_outcomes(group, [ref, *others]):
            diffs = pair["outcomes"].astype(int) - pair["reference_outcomes"].astype(int)
            fit = difference_intervals(diffs, pair["units"])
            comps, units, n_q = fit["components"], fit["units"], diffs.shape[1]
            unit = pair["unit_name"]
            cost = comparison_cost(group, pair["method"], pair["reference"], units)
            now = equivalence_power(comps, n_q, units, margin_pts / 100)
            share = (comps.unit or 0.0) / units / fit["variance"] if fit["variance"] > 0 else 0.0
            parts.append(f"### {pair['method']} against {pair['reference']} ({pair['task']})\n")
            parts.append(
                f"This run: {n_q:,} questions x {units} {unit}{'s' if units > 1 else ''}, difference "
                f"{points(100 * fit['estimate'])} points (95% CI {points(100 * fit['ci95'][0])} to "
                f"{points(100 * fit['ci95'][1])}); the {unit}s' share of its variance {100 * share:.0f}%; chance to "
                f"show equivalence within ±{margin_pts:g} if the true difference were 0: {100 * now:.0f}%."
                + (" One seed cannot measure the seed component: these designs assume it is 0; run two or more "
                   "seeds to plan with it." if comps.unit is None else "") + "\n")
            decided = verdict(*(tuple(round(100 * v, 4) for v in fit[k]) for k in ("ci95", "ci90")), margin_pts)
            if decided in ("better", "worse"):
                parts.append(f"This run settles it: {decided} (the 95% interval excludes 0), so no equivalence "
                             "design is planned.\n")
                continue
            rows = plan_designs(comps, n_q, units, margin_pts / 100, power, max_units, max_questions, cost)
            reachable = [r for r in rows if r["questions"] is not None]
            if reachable:
                parts.append(designs_table(rows, unit) + "\n")
            cheapest = min(reachable, key=lambda r: r.get("times_pilot", r["units"] * r["questions"]),
                           default=None)
            limit = next((r["power_limit"] for r in rows if r["units"] == units), None)
            if cheapest is None:
                parts.append(f"No design up to {max_units} {unit}s reaches {100 * power:.0f}% "
                             + (f"within {max_questions:,} questions " if max_questions else "")
                             + f"(with unlimited questions, {units} {unit}s reach {100 * (limit or 0):.0f}%): "
                             "no affordable design settles this comparison.\n")
            elif cheapest.get("times_pilot") is not None and cheapest["times_pilot"] > budget:
                parts.append(f"The cheapest, {cheapest['questions']:,} questions x {cheapest['units']} {unit}s, "
                             f"costs {cheapest['times_pilot']:.0f} times this run, over the budget of {budget:g}x: "
                             "no affordable design settles this comparison.\n")
            else:
                parts.append(f"Cheapest: {cheapest['questions']:,} questions x {cheapest['units']} {unit}s"
                             + (f" ({cheapest['times_pilot']:.1f} times this run)" if "times_pilot" in cheapest
                                else "") + ".\n")
            if limit is not None and limit < power and cheapest is not None:
                parts.append(f"At {units} {unit}s even unlimited questions reach only {100 * limit:.0f}%: more "
                             f"{unit}s, not more questions, is what helps here.\n")
    header = (f"Designs that would show equivalence within ±{margin_pts:g} points with {100 * power:.0f}% power "
              f"if the true difference were 0 (TOST at 5%), never fewer questions than this run used. Costs scale "
              "this run's measured per-seed sampling and training and per-question evaluation of the two methods; "
              "wall time is on the machine that ran it. Equivalence power assumes the variance components measured "
              "here; with few seeds the seed component itself is uncertain.\n")
    return "\n".join([header, *parts])


def plan_components(se_question: float, questions: int, seed_sd: float, margin: float, power: float,
                    max_units: int, max_questions: int | None) -> str:
    """The planner from given components: the question-level SE (points) of one seed's difference at `questions`
    questions, and the seed-to-seed SD (points) of the difference. All question-level variance is treated as a
    persistent question effect, which more seeds do not shrink (the cautious reading when the split is unknown)."""
    comps = Components(question=(se_question / 100) ** 2 * questions, unit=(seed_sd / 100) ** 2 or None,
                       residual=0.0)
    rows = plan_designs(comps, questions, 1, margin / 100, power, max_units, max_questions, None)
    limit = {r["units"]: r["power_limit"] for r in rows}
    text = (f"Given: SE {se_question:g} points from questions at {questions:,} questions, seed SD {seed_sd:g} points. "
            f"Designs that show equivalence within ±{margin:g} points with {100 * power:.0f}% power if the true "
            "difference were 0:\n\n")
    if any(r["questions"] is not None for r in rows):
        text += designs_table(rows, "seed") + "\n"
    else:
        text += (f"none up to {max_units} seeds (with unlimited questions, {max_units} seeds reach "
                 f"{100 * limit.get(max_units, 0):.0f}%).\n")
    return text
