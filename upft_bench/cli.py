"""The `upft-bench` command line.

    upft-bench --help
    upft-bench grade '\\boxed{\\frac12}' 0.5

Each subcommand is a module of `upft_bench.commands`, imported only when it runs, so `upft-bench --help`
stays fast (torch and lm-eval take seconds to import). The library raises `upft_bench.errors.UpftError` for a
problem the user can fix; it is printed here as one line (`--debug` shows the traceback).
"""
from __future__ import annotations

import importlib
import os

import click

from upft_bench.commands import DEBUG_ENV
from upft_bench.quiet import VERBOSE_ENV, quiet_libraries

# Commands that load models: transformers' and datasets' bars and logs are silenced there (upft_bench.quiet).
HEAVY = {"compare", "analyze", "pretrain", "sample", "build", "train", "eval"}

# name -> "module:attribute" of a click command
COMMANDS = {
    "compare": "upft_bench.commands.compare:compare_cli",
    "report": "upft_bench.commands.report:report_cli",
    "plan": "upft_bench.commands.plan:plan_cli",
    "analyze": "upft_bench.commands.analyze:analyze_cli",
    "pretrain": "upft_bench.commands.pretrain:pretrain_cli",
    "sample": "upft_bench.commands.sample:sample_cli",
    "build": "upft_bench.commands.build:build_cli",
    "train": "upft_bench.commands.train:train_cli",
    "eval": "upft_bench.commands.evaluate:eval_cli",
    "tasks": "upft_bench.commands.evaluate:tasks_cli",
    "grade": "upft_bench.commands.grade:grade_cli",
}

HELP = {
    "compare": "Run the whole comparison (base, SFT, RFT, UPFT, ...) and write tables, JSON and a plot.",
    "report": "Rebuild tables and the plot from metrics.json files of earlier comparisons.",
    "plan": "From a finished run, the designs (questions x seeds) that would settle each comparison, and their cost.",
    "analyze": "Measure UPFT's premise on a model: shared prefixes, continuation accuracy, where errors start.",
    "pretrain": "Build (or reuse) the tiny offline base model on the synthetic corpus.",
    "sample": "Sample solutions from a model for a question set (JSONL, resumable).",
    "build": "Turn a sample pool into a method's training examples (JSONL for `train`).",
    "train": "Fine-tune a model on a method's training examples with the shared training core.",
    "eval": "Evaluate a model on upft-bench's lm-eval tasks and print a table.",
    "tasks": "List upft-bench's lm-eval tasks (or print their folder with --path).",
    "grade": "Check one prediction against a gold answer and show how it was judged.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        if name in HEAVY:  # before the command's module imports transformers, datasets or lm-eval

            quiet_libraries()
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            return None
        return getattr(module, attr, None)

    def invoke(self, ctx):
        """Run the subcommand; an unexpected error is one line naming its type, unless --debug asks for more."""
        if ctx.params.get("verbose"):
            os.environ[VERBOSE_ENV] = "1"  # processes started from here (accelerate launch) are verbose too
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as err:
            if ctx.params.get("debug") or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            message = " ".join(str(err).split()) or "(no message)"
            raise click.ClickException(f"{type(err).__name__}: {message}  [traceback: upft-bench --debug ... or "
                                       f"{DEBUG_ENV}=1]") from err

    def format_commands(self, ctx, formatter):
        # Short help without importing every module.
        rows = [(name, HELP.get(name, "")) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="upft-bench")
@click.option("--debug", is_flag=True, help=f"Show the full traceback of an unexpected error (or set {DEBUG_ENV}=1).")
@click.option("--verbose", is_flag=True,
              help=f"Also show the libraries' progress bars, logs and warnings (or set {VERBOSE_ENV}=1).")
def main(debug, verbose):
    """upft-bench: Unsupervised Prefix Fine-Tuning vs SFT and RFT, accuracy and cost, in one command.

    Start with `upft-bench compare` (offline default, CPU, minutes).
    """


if __name__ == "__main__":
    main()
