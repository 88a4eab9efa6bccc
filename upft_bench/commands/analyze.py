"""`upft-bench analyze`: UPFT's premise measured on a model (upft_bench.analysis)."""
from __future__ import annotations

from pathlib import Path

import click

from upft_bench.analysis import run_analysis
from upft_bench.commands import Command
from upft_bench.console import say
from upft_bench.experiment import load_experiment


@click.command("analyze", cls=Command)
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--model", help="Model to analyse (folder, Hub id or .gguf file; default: the config's base model).")
@click.option("--data", help="Question set to analyse (default: the config's data.train), e.g. gsm8k.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Local benchmark copies (default $UPFT_BENCH_DATA_DIR).")
@click.option("--k", "ks", help="Prefix lengths in tokens, comma-separated (default 4,8,16,32).")
@click.option("--samples", type=int, help="Full samples per question (default 16).")
@click.option("--rollouts", type=int, help="Continuations from each prefix (default 4).")
@click.option("--questions", type=int, help="Questions analysed, the first of the training set (default 100).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
@click.option("--output", type=click.Path(file_okay=False), help="Folder (default results/<config name>/analysis).")
def analyze_cli(config, model, data, data_dir, ks, samples, rollouts, questions, overrides, output):
    """Measure UPFT's premise before training: do sampled solutions share their first k tokens, and are
    continuations from the shared prefix as accurate as full samples? Also where errors start and what a
    prefix contains. Writes analysis.md, analysis.json and analysis.png."""
    overrides = list(overrides)
    for key, value in (("data.train", data), ("data.data_dir", data_dir), ("analyze.ks", ks and f"[{ks}]"),
                       ("analyze.samples", samples), ("analyze.rollouts", rollouts),
                       ("analyze.questions", questions)):
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = load_experiment(config, overrides)
    out = Path(output) if output else Path("results") / cfg.name / "analysis"
    results = run_analysis(cfg, out, model=model)
    click.echo((out / "analysis.md").read_text())
    say(f"[done] {out}/analysis.md, analysis.json, analysis.png ({results['seconds']:.0f} s)")
