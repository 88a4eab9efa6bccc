"""`upft-bench plan`: the designs that would settle each comparison of a run, with their cost (upft_bench.plan)."""
from __future__ import annotations

from pathlib import Path

import click

from upft_bench.commands import Command
from upft_bench.plan import BUDGET, MAX_SEEDS, plan_components, plan_run
from upft_bench.stats import TARGET_POWER


@click.command("plan", cls=Command)
@click.argument("run", required=False, type=click.Path(exists=True))
@click.option("--margin", type=float, help="Equivalence margin in accuracy points (default: the run's, 2).")
@click.option("--power", type=click.FloatRange(0.05, 0.999), default=TARGET_POWER, show_default=True,
              help="Target chance of showing equivalence if the true difference were 0.")
@click.option("--reference", help="Plan only the comparisons against this method (default: the run's references).")
@click.option("--max-seeds", type=click.IntRange(1, 200), default=MAX_SEEDS, show_default=True,
              help="Most seeds (or base builds) a design may have.")
@click.option("--max-questions", type=click.IntRange(2, None),
              help="Most test questions a design may have (e.g. the benchmark's size; default: no limit).")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=BUDGET, show_default=True,
              help="Affordable: at most this many times what the comparison cost in RUN.")
@click.option("--se-question", type=click.FloatRange(min=0, min_open=True),
              help="Without RUN: standard error (points) of one seed's paired difference at --questions.")
@click.option("--seed-sd", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Without RUN: standard deviation (points) of the difference from seed to seed.")
@click.option("--questions", type=click.IntRange(2, None), default=300, show_default=True,
              help="Without RUN: the questions --se-question was measured on.")
def plan_cli(run, margin, power, reference, max_seeds, max_questions, budget, se_question, seed_sd, questions):
    """Plan the design (questions x seeds) that would settle each comparison of RUN, with its cost.

    For every comparison of a finished run (a result folder or metrics.json): the variance components of the
    paired difference, and for each seed count the fewest questions at which TOST at ±margin would succeed with
    --power if the true difference were 0, priced from the run's measured costs; the comparisons that no design
    up to --max-seeds within --budget settles are named. Without RUN, give --se-question (and --seed-sd).
    """
    if run is None:
        if se_question is None:
            raise click.UsageError("give a RUN folder, or --se-question (and --seed-sd) to plan from components")
        click.echo(plan_components(se_question, questions, seed_sd, margin if margin is not None else 2.0, power,
                                   max_seeds, max_questions))
        return
    if se_question is not None:
        raise click.UsageError("--se-question plans without a RUN; give one or the other")
    click.echo(plan_run(Path(run), margin, power, reference, max_seeds, max_questions, budget))
