"""`upft-bench report`: tables and plot rebuilt from metrics.json files (upft_bench.report)."""
from __future__ import annotations

from pathlib import Path

import click

from upft_bench.commands import Command
from upft_bench.report import load_metrics, paper_report, render_report


@click.command("report", cls=Command)
@click.argument("runs", nargs=-1, type=click.Path(exists=True))
@click.option("--paper", "paper_only", is_flag=True,
              help="Print the paper's reported accuracies with each gain in binomial standard errors, and exit.")
@click.option("--output", type=click.Path(file_okay=False),
              help="Where to write compare.md/compare.png/loss.png (default: the single RUN's folder; required for "
                   "several).")
@click.option("--reference", help="Compare every method with this one (default: the runs' report.reference, rft).")
@click.option("--margin", type=float, help="Equivalence margin in accuracy points (default: report.margin, 2).")
def report_cli(runs, output, reference, margin, paper_only):
    """Rebuild the Markdown tables and the plot from RUNS (result folders or metrics.json files).

    Runs of one experiment under different seeds (given as separate folders, or one several-seed folder) are
    pooled: the paired statistics and verdicts are recomputed from their per-question outcomes. With --paper, no
    RUNS: the paper's own table with its gains in units of their noise.
    """
    if paper_only:
        click.echo(paper_report())
        return
    if not runs:
        raise click.UsageError("give one or more RUNS (result folders or metrics.json files), or --paper")
    metrics = [load_metrics(Path(r)) for r in runs]
    if output is None:
        if len(runs) != 1:
            raise click.UsageError("several runs: pass --output for the combined report")
        first = Path(runs[0])
        output = first if first.is_dir() else first.parent
    render_report(metrics, Path(output), reference=reference, margin=margin)
    click.echo((Path(output) / "compare.md").read_text())
