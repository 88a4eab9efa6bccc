"""`upft-bench plan`: designs that would settle each comparison, priced from the run's own costs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from upft_bench.cli import main
from upft_bench.plan import comparison_cost, plan_components
from upft_bench.stats import Components, equivalence_power


def _row(bits: str, sample=0.0, train=0.0, evalf=300.0, model=None):
    q = len(bits)
    return {"tasks": {"t": {"exact_match": bits.count("1") / q, "outcomes": bits, "n": q,
                            "correct": bits.count("1")}},
            "sample_flops": sample, "train_flops": train, "eval_flops": evalf,
            "sample_seconds": sample / 100, "train_seconds": train / 100, "eval_seconds": evalf / 100,
            "model": model}


def _runs(q=300, seeds=3):
    rng = np.random.default_rng(0)
    base = "".join("1" if x else "0" for x in rng.random(q) < 0.5)
    runs = []
    for s in range(seeds):
        def noisy(bits, flip):
            return "".join(c if rng.random() > flip else ("1" if c == "0" else "0") for c in bits)
        runs.append({"name": "exp", "seed": s, "tasks": ["t"], "base_model": "m",
                     "questions": {"t": [f"q{i}" for i in range(q)]},
                     "methods": {"base": _row(base, model="m"),
                                 "rft": _row(noisy(base, 0.05), sample=1000.0, train=200.0),
                                 "upft": _row(noisy(base, 0.05), sample=10.0, train=150.0),
                                 "sft": _row("1" * q, train=300.0)},
                     "config": {"seed": s, "report": {"reference": "rft", "also_against": ["base"],
                                                      "margin": 2.0, "bootstrap_resamples": 0}}})
    return runs


def test_costs_per_seed_and_per_question_from_the_rows():
    runs = _runs()
    cost = comparison_cost(runs, "upft", "rft", units=3)
    assert cost.per_unit_flops == pytest.approx(10 + 150 + 1000 + 200)   # both methods sample and train per seed
    assert cost.per_question_flops == pytest.approx(2.0)                 # both evaluate 300 questions for 300 FLOPs
    assert cost.flops(300, 3) == pytest.approx(3 * (1360 + 600))
    base = comparison_cost(runs, "upft", "base", units=3)
    # the base model is never sampled or trained, and is evaluated once per unit (here a seed)
    assert base.per_unit_flops == pytest.approx(160) and base.per_question_flops == pytest.approx(2.0)
    # with base builds as units (3 seeds each), a trained method counts 3 runs per unit, the base model one
    built = comparison_cost(runs, "upft", "base", units=1)
    assert built.per_unit_flops == pytest.approx(3 * 160) and built.per_question_flops == pytest.approx(3 + 1)


def test_plan_prints_designs_never_below_the_questions_used(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"name": "exp", "kind": "experiment", "tasks": ["t"],
                                                  "runs": _runs(), "seeds": [0, 1, 2]}))
    out = CliRunner().invoke(main, ["plan", str(run), "--max-seeds", "6"])
    assert out.exit_code == 0, out.output
    text = out.output
    assert "### upft against rft (t)" in text and "### sft against base (t)" in text
    assert "This run settles it: better" in text   # sft is right everywhere: nothing to plan
    section = text.split("### upft against rft (t)")[1].split("###")[0]
    table = [ln for ln in section.splitlines() if ln.startswith("| ") and "seeds" not in ln]
    assert table, section
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert int(cells[0]) >= 2 and int(cells[1].replace(",", "")) >= 300 and cells[2].endswith("%")
    assert "Cheapest:" in section or "no affordable design" in section
    # a tight budget: the same comparisons are named as not affordable
    poor = CliRunner().invoke(main, ["plan", str(run), "--budget", "0.01", "--reference", "rft"])
    assert poor.exit_code == 0 and "over the budget" in poor.output and "against base" not in poor.output


def test_plan_from_given_components():
    text = plan_components(se_question=1.0, questions=300, seed_sd=0.0, margin=2.0, power=0.8, max_units=4,
                           max_questions=None)
    assert "| 1 " in text   # no seed component: one seed will do
    comps = Components(question=0.01 ** 2 * 300, unit=None, residual=0.0)
    first = next(ln for ln in text.splitlines() if ln.startswith("| 1 "))
    q = int(first.split("|")[2].strip().replace(",", ""))
    assert equivalence_power(comps, q, 1, 0.02) >= 0.8 > equivalence_power(comps, q - 1, 1, 0.02)
    hard = plan_components(se_question=1.0, questions=300, seed_sd=4.0, margin=2.0, power=0.8, max_units=3,
                           max_questions=None)
    assert "none up to 3 seeds" in hard
    usage = CliRunner().invoke(main, ["plan"])
    assert usage.exit_code != 0 and "--se-question" in usage.output
