"""`upft-bench grade` (upft_bench/commands/grade.py).

    HF_HUB_OFFLINE=1 python -m pytest -q tests/grading/test_cli.py
"""
from __future__ import annotations

import json

from click.testing import CliRunner

from upft_bench.commands.grade import grade_cli


def test_cli_prints_forms_and_verdict():
    runner = CliRunner()
    ok = runner.invoke(grade_cli, ["\\boxed{\\dfrac12}", "0.5"])
    assert ok.exit_code == 0, ok.output
    assert "extracted:" in ok.output and "correct" in ok.output and "\\frac12" in ok.output
    wrong = runner.invoke(grade_cli, ["The answer is 3", "4"])
    assert wrong.exit_code == 0 and "wrong" in wrong.output
    as_json = runner.invoke(grade_cli, ["(B)", "B", "--kind", "choice", "--json"])
    info = json.loads(as_json.output)
    assert info["verdict"] is True and info["extracted"] == "B"


def test_cli_is_wired_into_the_main_group():
    from upft_bench.cli import main

    result = CliRunner().invoke(main, ["grade", "x^2+2x+1", "(x+1)^2", "--timeout", "5"])
    assert result.exit_code == 0, result.output
    assert "correct" in result.output
