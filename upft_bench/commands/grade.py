"""`upft-bench grade`: one prediction against one gold answer, with every step of the verdict."""
from __future__ import annotations

import json

import click

from upft_bench.commands import Command
from upft_bench.errors import InputError
from upft_bench.grading import MAX_TIMEOUT, judging


@click.command("grade", cls=Command)
@click.argument("pred")
@click.argument("gold")
@click.option("--kind", type=click.Choice(["math", "choice"]), default="math", show_default=True)
@click.option("--timeout", type=float, default=5.0, show_default=True,
              help=f"Seconds for the sympy part, at most {MAX_TIMEOUT:g}.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def grade_cli(pred, gold, kind, timeout, as_json):
    """Check one prediction PRED against a gold answer GOLD and show how it was judged."""
    if not 0 < timeout <= MAX_TIMEOUT:  # NaN fails too; inf would overflow the deadline
        raise InputError(f"--timeout: must be seconds in (0, {MAX_TIMEOUT:g}], got {timeout:g}")
    info = judging.grade_case(pred, gold, kind, timeout).as_dict()
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False))
        return
    rows = [("extracted", info["extracted"]), ("gold", info["gold"]), ("pred form", info["pred_form"]),
            ("gold form", info["gold_form"]),
            ("verdict", ("correct" if info["verdict"] else "wrong") + f" ({info['reason']})")]
    for name, value in rows:
        click.echo(f"{name + ':':<11}{value}")
