"""`upft-bench compare`: the whole comparison, every method from one base model (upft_bench.compare)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from upft_bench.commands import Command
from upft_bench.compare import run_compare
from upft_bench.config import ConfigError, clipped
from upft_bench.console import say
from upft_bench.experiment import load_experiment, seed_error, sweep_overrides
from upft_bench.methods import METHOD_IDS
from upft_bench.preflight import check


def method_list(text: str) -> list[str]:
    """--methods base,upft as method ids; an error names the flag."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError("--methods: name at least one method (e.g. --methods base,upft)")
    unknown = [name for name in names if name not in METHOD_IDS]
    if unknown:
        raise ConfigError(f"--methods: unknown method {clipped(repr(unknown[0]))}; known: {', '.join(METHOD_IDS)}")
    return names


def seed_list(text: str, flag: str) -> list[int]:
    """--seeds 0,1,2 (or --base-seeds) as distinct integers >= 0; an error names the flag."""
    seeds = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            seeds.append(int(part))
        except ValueError:
            raise ConfigError(f"{flag}: {clipped(repr(part))} is not a seed (an integer >= 0), "
                              f"e.g. {flag} 0,1,2") from None
    problem = seed_error(flag, seeds)
    if problem:
        raise ConfigError(problem)
    return seeds


@click.command("compare", cls=Command)
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field, e.g. --set train.lr=1e-4 --set data.train_limit=200 (repeatable).")
@click.option("--methods", help=f"Comma-separated subset of: {','.join(METHOD_IDS)}.")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Local benchmark copies (layout of shared/data) instead of the Hub; default $UPFT_BENCH_DATA_DIR.")
@click.option("--output", type=click.Path(file_okay=False), help="Result folder (default results/<config name>).")
@click.option("--seeds", metavar="S1,S2,...",
              help="Run every method once per seed into one folder (seed-S/ each); paired statistics pool them.")
@click.option("--base-seeds", metavar="B1,B2,...",
              help="Also vary the pretraining seed of the base model built here (offline default): base-B-seed-S/.")
@click.option("--sweep", "sweeps", multiple=True, metavar="KEY=V1,V2",
              help="Train every method once per value (several --sweep: every combination) and keep, per method, the "
                   "setting with the best accuracy on validation questions held out from the training set "
                   "(data.val_limit, default 100 with a sweep), e.g. --sweep train.lr=5e-5,1e-4,2e-4.")
@click.option("--allow-overlap", is_flag=True,
              help="Run even when test questions also appear among the training questions (data.allow_overlap); "
                   "the report says how many.")
@click.option("--resume", is_flag=True,
              help="Finish an interrupted comparison in --output; finished phases are kept (with changed train, "
                   "method, sweep or eval settings, the phases that depend on them are redone).")
def compare_cli(config, overrides, methods, data_dir, output, seeds, base_seeds, sweeps, allow_overlap, resume):
    """Compare base, SFT, RFT, UPFT and UPFT+label filter from one base model: accuracy, tokens, seconds, and a
    paired verdict for each method against RFT (and the base model).

    With no CONFIG, runs the shipped offline default (baselines/default.yaml): a tiny model built and
    pretrained here on synthetic arithmetic problems, fine-tuned by every method, evaluated on upft_synth.
    Your own questions: --set data.train=FILE --set 'eval.tasks=[TEST_FILE]' (.jsonl, .csv, .parquet or
    hub:OWNER/NAME; README "Your own data").
    Writes results/<name>/ (config.yaml, samples, per-method train_stats.json and lm-eval output,
    metrics.json, compare.md, compare.png, loss.png) and prints the Markdown tables. The verdict tables come first: for
    each method the accuracy difference to the reference on the same questions with its 95% interval over
    questions and seeds, exact tests, the chance this design had to show equivalence, and equivalent / better /
    worse / inconclusive against the margin `report.margin` (2 points by default).
    """
    overrides = list(overrides)
    # The command's own flags are checked here and become overrides; an error still names the flag, not them.
    labels = {}

    def add(override: str, flag: str):
        overrides.append(override)
        labels[override] = flag

    if methods is not None:
        add(f"methods={json.dumps(method_list(methods))}", f"--methods {methods}")
    if seeds is not None:
        add(f"seeds={json.dumps(seed_list(seeds, '--seeds'))}", f"--seeds {seeds}")
    if base_seeds is not None:
        add(f"base_seeds={json.dumps(seed_list(base_seeds, '--base-seeds'))}", f"--base-seeds {base_seeds}")
    if sweeps:
        for override in sweep_overrides(sweeps, config, overrides):
            add(override, " ".join(f"--sweep {s}" for s in sweeps))
    if data_dir:
        add(f"data.data_dir={json.dumps(data_dir)}", f"--data-dir {data_dir}")
    if allow_overlap:
        add("data.allow_overlap=true", "--allow-overlap")
    cfg = load_experiment(config, overrides, labels)
    check(cfg)  # every input, before anything is written: a bad one leaves no folder behind
    out = Path(output) if output else Path("results") / cfg.name
    metrics = run_compare(cfg, out, resume=resume)
    click.echo((out / "compare.md").read_text())
    say(f"[done] {out}/compare.md, metrics.json, compare.png ({metrics['total_seconds']:.0f} s in all)")
