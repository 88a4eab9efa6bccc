"""Result rows: one dataclass per method, metrics.json assembled from them, costs relative to the reference."""
from __future__ import annotations

import dataclasses

import numpy as np

from upft_bench.config import to_dict
from upft_bench.experiment import load_experiment
from upft_bench.methods import COST_REFERENCE, METHODS
from upft_bench.results import MethodResult, SampleCost, TrainSummary, build_metrics


def _row(name, acc, sampled, tuned, model=None):
    tasks = {"upft_synth": {"exact_match": acc}, "other": {"exact_match": acc / 2}}
    sampling = SampleCost(sampled_tokens=sampled, samples=sampled // 10, sample_flops=sampled)
    return MethodResult.of(METHODS[name], sampling,
                           TrainSummary(tuned_tokens=tuned, model=model, train_flops=6 * tuned),
                           {"tasks": tasks, "eval_seconds": 1.5, "eval_flops": 100})


def test_metrics_from_rows():
    cfg = load_experiment(None)
    rows = {"base": _row("base", 0.4, 0, 0, model="base/path"), "rft": _row("rft", 0.5, 2000, 400),
            "upft": _row("upft", 0.3, 30, 100)}
    metrics = build_metrics(to_dict(cfg), "base/path", rows, ["upft_synth", "other"], 12.345)
    upft = metrics["methods"]["upft"]
    assert upft["accuracy_mean"] == (0.3 + 0.15) / 2
    assert upft[f"sampled_tokens_vs_{COST_REFERENCE}_pct"] == 1.5
    assert upft[f"tuned_tokens_vs_{COST_REFERENCE}_pct"] == 25.0
    assert metrics["methods"]["rft"]["sampled_tokens_vs_rft_pct"] == 100.0
    # base's row has every field of a method row: zero costs, its model the base model
    assert metrics["methods"]["base"].keys() == upft.keys()
    assert metrics["methods"]["base"]["sampled_tokens_vs_rft_pct"] == 0.0
    assert metrics["methods"]["base"]["model"] == "base/path" and metrics["methods"]["base"]["uses_labels"] is False
    assert metrics["total_seconds"] == 12.35 and metrics["seed"] == cfg.seed
    assert upft["total_flops"] == 30 + 600 + 100
    assert upft["flops_vs_rft_pct"] == {"sample": 1.5, "train": 25.0, "eval": 100.0,
                                        "total": round(100 * 730 / (2000 + 2400 + 100), 2)}


def test_no_reference_row_means_no_relative_cost():
    metrics = build_metrics(to_dict(load_experiment(None)), "b", {"upft": _row("upft", 0.3, 30, 100)}, ["upft_synth"],
                            1.0)
    assert metrics["methods"]["upft"]["sampled_tokens_vs_rft_pct"] is None


def test_row_fields_name_the_cost_reference():
    names = [f.name for f in dataclasses.fields(MethodResult)]
    assert names[:2] == ["method", "uses_labels"]
    assert {f"sampled_tokens_vs_{COST_REFERENCE}_pct", f"tuned_tokens_vs_{COST_REFERENCE}_pct"} <= set(names)
    assert {f.name for f in dataclasses.fields(SampleCost)} | {f.name for f in dataclasses.fields(TrainSummary)} \
        <= set(names)


def test_train_summary_from_stats():
    from upft_bench.examples import Example

    examples = [Example("a", [1], [2, 3], "prefix"), Example("b", [1], [2], "full")]
    stats = {"tuned_tokens": 3, "tuned_tokens_all_epochs": 6, "train_seconds": 1.234, "steps": 2, "final_loss": 0.5}
    s = TrainSummary.from_stats(stats, examples)
    assert (s.train_examples, s.prefix_examples, s.tuned_tokens, s.train_seconds, s.model) == (2, 1, 3, 1.23, None)


def _run(seed, outcomes: dict[str, str], name="exp"):
    """A run's metrics with per-question outcomes only (what paired statistics read)."""
    q = len(next(iter(outcomes.values())))
    methods = {m: {"tasks": {"t": {"exact_match": bits.count("1") / q, "outcomes": bits, "n": q,
                                   "correct": bits.count("1")}}} for m, bits in outcomes.items()}
    return {"name": name, "seed": seed, "tasks": ["t"], "methods": methods,
            "questions": {"t": [f"q{i}" for i in range(q)]},
            "config": {"seed": seed, "report": {"reference": "rft", "also_against": ["base"], "margin": 2.0,
                                                "bootstrap_resamples": 2000}}}


def test_paired_comparisons_pair_within_runs_and_pool_seeds():
    from upft_bench.results import paired_comparisons

    # 40 questions; upft right where rft is right plus 4 more in seed 0, and 4 fewer in seed 1.
    rft = "1" * 20 + "0" * 20
    runs = [_run(0, {"base": "0" * 40, "rft": rft, "upft": "1" * 24 + "0" * 16}),
            _run(1, {"base": "0" * 40, "rft": rft, "upft": "1" * 16 + "0" * 24})]
    comps = {(c["reference"], c["method"]): c for c in paired_comparisons(runs)}
    assert set(comps) == {("rft", "base"), ("rft", "upft"), ("base", "rft"), ("base", "upft")}
    upft = comps[("rft", "upft")]
    assert upft["seeds"] == 2 and upft["questions"] == 40 and upft["difference"] == 0.0
    assert [(t["method_only"], t["reference_only"]) for t in upft["mcnemar"]] == [(4, 0), (0, 4)]
    assert upft["ci95"][0] < 0 < upft["ci95"][1] and upft["verdict"] == "inconclusive"
    assert comps[("base", "rft")]["verdict"] == "better" and comps[("base", "rft")]["difference"] == 50.0
    # the same runs given one by one or as one list give the same figures; another reference and margin apply
    assert paired_comparisons(runs) == paired_comparisons(list(runs))
    other = paired_comparisons(runs, reference="base", also_against=[], margin=60.0)
    assert {c["reference"] for c in other} == {"base"} and all(c["margin"] == 60.0 for c in other)


def test_runs_on_other_questions_are_not_paired():
    from upft_bench.results import paired_comparisons

    a, b = _run(0, {"rft": "10", "upft": "01"}), _run(1, {"rft": "10", "upft": "01"})
    b["questions"]["t"] = ["x", "y"]
    assert paired_comparisons([a, b]) == []


def test_runs_on_several_base_builds_take_the_build_as_the_unit():
    from upft_bench.results import paired_comparisons

    rng = np.random.default_rng(0)

    def bits(p):
        return "".join("1" if x else "0" for x in rng.random(60) < p)

    runs = []
    for build in ("m0", "m1"):
        base = bits(0.4)
        for seed in (0, 1):
            r = _run(seed, {"base": base, "rft": bits(0.5), "upft": bits(0.45)})
            r["base_model"] = build
            runs.append(r)
    comps = {(c["reference"], c["method"]): c for c in paired_comparisons(runs)}
    upft = comps[("rft", "upft")]
    assert upft["seeds"] == 4 and upft["units"] == 2 and upft["unit"] == "base build"
    one_build = paired_comparisons([r for r in runs if r["base_model"] == "m0"])
    assert all(c["units"] == 2 and c["unit"] == "seed" for c in one_build)   # one build: each seed is a unit
