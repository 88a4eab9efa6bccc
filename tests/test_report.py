"""Reports rebuild tables and the plot from metrics.json alone; bad files are named."""
from __future__ import annotations

import json

from click.testing import CliRunner

from upft_bench.cli import main
from upft_bench.report import (
    method_table,
    paper_uncertainty_table,
    render_tables,
    seed_groups,
    seeds_table,
    verdict_prose,
)


def _metrics(name="r", paper_model=None):
    def row(acc, sampled, tuned):
        task = {"exact_match": acc, "exact_match_stderr": 0.02, "extracted": 0.9, "stated": 0.8,
                "mean_output_tokens": 50.0}
        return {"tasks": {"upft_synth": task},
                "accuracy_mean": acc, "sampled_tokens": sampled, "tuned_tokens": tuned, "sample_seconds": 1.0,
                "train_seconds": 2.0, "eval_seconds": 3.0,
                "sampled_tokens_vs_rft_pct": round(100 * sampled / 1000, 2),
                "tuned_tokens_vs_rft_pct": round(100 * tuned / 200, 2)}
    return {"name": name, "base_model": "m", "paper_model": paper_model, "tasks": ["upft_synth"],
            "train_questions": "synth/train", "seed": 0,
            "methods": {"base": row(0.2, 0, 0), "rft": row(0.3, 1000, 200), "upft": row(0.25, 15, 40)}}


def test_method_table_cells_come_from_metrics():
    lines = method_table(_metrics()).splitlines()
    upft = [c.strip() for c in next(ln for ln in lines if ln.startswith("| upft")).strip("|").split("|")]
    # no per-question counts (an older file): the normal interval from the standard error
    assert upft == ["upft", "25.0 (21.1-28.9)", "90.0", "80.0", "50.0", "15", "40", "", "", "", "1.0", "2.0", "3.0",
                    "1.5%", "20.0%", ""]   # an older file without FLOPs: those cells stay empty


def test_reported_table_only_for_paper_models():
    assert "reported by the paper" not in render_tables([_metrics()])
    text = render_tables([_metrics(paper_model="Qwen2.5-Math-7B-Instruct")])
    assert "reported by the paper" in text and "95.2" in text and "51.7M" in text


def test_report_cli_rebuilds_and_names_bad_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps(_metrics()))
    result = CliRunner().invoke(main, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "compare.md").read_text() in result.output and (run / "compare.png").stat().st_size > 1000
    two = CliRunner().invoke(main, ["report", str(run), str(run / "metrics.json"), "--output", str(tmp_path / "ab")])
    assert two.exit_code == 0 and (tmp_path / "ab" / "compare.png").exists()
    (tmp_path / "bad.json").write_text("{}")
    bad = CliRunner().invoke(main, ["report", str(tmp_path / "bad.json")])
    assert bad.exit_code != 0 and "bad.json: missing field 'name'" in bad.output


def _seeded(seed, upft_acc, lr=1e-4):
    m = _metrics()
    m["seed"] = seed
    m["config"] = {"seed": seed, "train": {"seed": seed, "lr": lr}, "sampling": {"seed": seed}}
    m["methods"]["upft"]["tasks"]["upft_synth"]["exact_match"] = upft_acc
    return m


def test_runs_differing_only_by_seed_get_a_spread_table():
    runs = [_seeded(0, 0.20), _seeded(1, 0.30), _seeded(2, 0.25), _seeded(3, 0.9, lr=1e-3)]
    groups = seed_groups(runs)
    assert [[m["seed"] for m in g] for g in groups] == [[0, 1, 2]]   # another lr is another experiment
    text = render_tables(runs)
    assert "### r: across 3 seeds (0, 1, 2)" in text
    upft = next(ln for ln in seeds_table(groups[0]).splitlines() if ln.startswith("| upft"))
    cells = [c.strip() for c in upft.strip("|").split("|")]
    assert cells == ["upft", "25.0 ± 5.0 (20.0-30.0)", "80.0", "1.5%", "20.0%"]


def test_no_spread_table_without_configs_or_with_a_repeated_seed():
    assert seed_groups([_metrics(), _metrics()]) == []
    assert seed_groups([_seeded(0, 0.2), _seeded(0, 0.3)]) == []
    assert "across" not in render_tables([_seeded(0, 0.2)])


def _with_outcomes(seed, upft_bits):
    m = _seeded(seed, upft_bits.count("1") / len(upft_bits))
    q = len(upft_bits)
    m["questions"] = {"upft_synth": [f"q{i}" for i in range(q)]}
    m["config"]["report"] = {"reference": "rft", "also_against": ["base"], "margin": 2.0, "bootstrap_resamples": 1000}
    bits = {"base": "0" * q, "rft": "1" * (q // 2) + "0" * (q - q // 2), "upft": upft_bits}
    for name, b in bits.items():
        m["methods"][name]["tasks"]["upft_synth"].update(outcomes=b, n=q, correct=b.count("1"),
                                                         exact_match=b.count("1") / q)
    return m


def test_verdict_tables_open_the_report_and_come_from_outcomes():
    runs = [_with_outcomes(0, "1" * 30 + "0" * 30), _with_outcomes(1, "1" * 34 + "0" * 26)]
    text = render_tables(runs)
    assert text.startswith("### r: each method against rft, 2 seeds (0, 1)")
    assert "### r: each method against base, 2 seeds (0, 1)" in text
    assert text.index("each method against") < text.index("across 2 seeds") < text.index("measured, seed 0")
    upft = next(ln for ln in text.splitlines() if ln.startswith("| upft"))
    cells = [c.strip() for c in upft.strip("|").split("|")]
    assert cells[:3] == ["upft", "upft_synth", "53.3"] and cells[3].startswith("+3.3 (")
    assert cells[4].endswith("%") and len(cells[5].split(", ")) == 2   # seed share; McNemar p of each seed
    assert float(cells[6]) > 0 and cells[8].endswith("%")   # sign-flip p over both seeds; TOST power
    base = next(ln for ln in text.splitlines() if ln.startswith("| base") and "upft_synth" in ln)
    assert base.rstrip(" |").endswith("worse")
    # a wider margin changes the verdict; the reference can be another method
    wide = render_tables(runs, margin=60.0)
    assert "equivalent (within ±60)" in wide
    assert "each method against base" in render_tables(runs, reference="base")


def test_accuracy_cells_carry_wilson_intervals():
    m = _with_outcomes(0, "0" * 60)
    upft = next(ln for ln in method_table(m).splitlines() if ln.startswith("| upft"))
    assert "0.0 (0.0-6.0)" in upft   # Wilson at 0 of 60: (0, 0.0602)


def _comparison(method, verdict, difference, ci95, power=0.0, share=0.1, design=None):
    return {"method": method, "reference": "rft", "task": "t", "verdict": verdict, "difference": difference,
            "ci95": ci95, "margin": 2.0, "equivalence_power": power, "unit_share": share, "units": 3,
            "unit": "seed", "equivalence_design": design, "equivalence_power_limit": 0.3}


def test_prose_is_written_from_the_verdicts_and_never_reads_inconclusive_as_no_difference():
    rows = [_comparison("sft", "better", 22.6, [17.0, 28.0]),
            _comparison("upft", "worse", -5.9, [-10.7, -1.1]),
            _comparison("sft_self", "inconclusive", -0.1, [-4.6, 4.4], share=0.66),
            _comparison("base", "inconclusive", 0.3, [-1.0, 1.6], power=0.4,
                        design={"questions": 900, "units": 4, "target_power": 0.8})]
    text = verdict_prose(rows, "rft")
    assert "Better than rft: sft (+22.6, +17.0 to +28.0)." in text
    assert "Worse than rft: upft (-5.9, -10.7 to -1.1)." in text
    assert "Inconclusive against rft: sft_self (-0.1, -4.6 to +4.4), base (+0.3, -1.0 to +1.6)" in text
    assert "holds both a difference and none" in text
    for phrase in ("no different", "unchanged", "no difference", "same as", "leaves it where it was"):
        assert phrase not in text.lower()
    assert "Seeds carry most of the variance for sft_self" in text
    assert "base 900 questions x 4 seeds" in text and "sft_self none up to 20 seeds" in text
    # every comparison out of reach: said once, in words
    assert "cannot show equivalence to rft" in verdict_prose(rows[:3], "rft")
    assert "cannot show equivalence" not in text   # base's design could (power 40%)


def test_the_paper_table_puts_each_gain_in_standard_errors():
    table = paper_uncertainty_table("Qwen2.5-Math-7B-Instruct")
    upft = next(ln for ln in table.splitlines() if ln.startswith("| upft (PRM)"))
    cells = [c.strip() for c in upft.strip("|").split("|")]
    # MATH500: +1.6 over base (84.0) on 500 questions, binomial SE 100·sqrt(0.84·0.16/500) = 1.64 points
    assert cells[2] == "+1.6 (+8 q, +1.0 SE)"
    assert cells[3] == "+3.3 (+1 q, +0.5 SE)"   # AIME: one question of 30
    assert "0 of 16 differences from base reach 2 SE" in table
    llama = paper_uncertainty_table("Llama-3.1-8B-Instruct")
    assert "**+4.0 (+53 q, +3.8 SE)**" in llama   # rft's GSM8K gain over base: 2 SE or more, in bold
    out = CliRunner().invoke(main, ["report", "--paper"])
    assert out.exit_code == 0 and out.output.count("in units of their noise") == 3


def test_plot_draws_forest_panels_and_costs(tmp_path):
    from upft_bench.report import render_report

    runs = [_with_outcomes(0, "1" * 30 + "0" * 30), _with_outcomes(1, "1" * 34 + "0" * 26)]
    render_report(runs, tmp_path)
    assert (tmp_path / "compare.png").stat().st_size > 10_000


def test_runs_over_base_builds_are_named_as_builds_and_seeds():
    from upft_bench.report import _runs_words

    def run(build, seed):
        return {"seed": seed, "base_model": f"/cache/base-s{build}", "config": {"pretrain": {"seed": build}}}

    assert _runs_words([run(0, 0)]) == "seed 0"
    assert _runs_words([run(0, 0), run(0, 1)]) == "2 seeds (0, 1)"
    assert _runs_words([run(b, s) for b in (0, 1, 2) for s in (0, 1)]) == (
        "3 base builds (pretraining seeds 0, 1, 2) x seeds 0, 1")
    assert _runs_words([run(b, 0) for b in (0, 1, 2)]) == "3 base builds (pretraining seeds 0, 1, 2) x seed 0"
