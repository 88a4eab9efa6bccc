"""The `upft-bench` subcommands, one module each: the only modules that speak click.

`upft_bench.cli` imports a command's module only when that command runs, so `upft-bench --help` stays fast. A
command parses its options, calls the library, and prints; the library raises `upft_bench.errors.UpftError`
for anything the user can fix, and `upft_bench.cli` prints it as one line.
"""
from __future__ import annotations

import os

import click

from upft_bench.errors import UpftError

DEBUG_ENV = "UPFT_BENCH_DEBUG"  # 1: show the traceback of an error (as `upft-bench --debug` does)


def debugging(ctx: click.Context) -> bool:
    """--debug on the command line (the root group's option) or UPFT_BENCH_DEBUG set."""
    return bool(ctx.find_root().params.get("debug")) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


class Command(click.Command):
    """A subcommand whose UpftError (a problem the user can fix) is printed as its one-line message, however the
    command is invoked (through `upft-bench`, or directly as a click command)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UpftError as err:
            if debugging(ctx):
                raise
            raise click.ClickException(str(err)) from err


# --field KEY=COLUMN: the columns of your own question files (upft_bench.data.own_questions), for eval/sample/build.
field_option = click.option(
    "--field", "fields", multiple=True, metavar="KEY=COLUMN",
    help="For your own question files (.jsonl/.csv/.parquet, hub:OWNER/NAME): the column holding question, answer, "
         "solution or id (repeatable), e.g. --field question=problem.")


def parse_fields(items) -> dict[str, str]:
    """--field KEY=COLUMN options as {key: column}; a malformed one is a usage error naming the flag."""
    columns = {}
    for item in items:
        key, sep, column = item.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise click.BadParameter(f"{item!r}: expected KEY=COLUMN, e.g. question=problem", param_hint="--field")
        columns[key.strip()] = column.strip()
    return columns
