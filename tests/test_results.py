"""Result rows: one dataclass per method, metrics.json assembled from them, costs relative to the reference."""
from __future__ import annotations

import dataclasses

from upft_bench.experiment import load_experiment
from upft_bench.methods import COST_REFERENCE, METHODS
from upft_bench.results import MethodResult, SampleCost, TrainSummary, build_metrics


def _row(name, acc, sampled, tuned, model=None):
    tasks = {"upft_synth": {"exact_match": acc}, "other": {"exact_match": acc / 2}}
    return MethodResult.of(METHODS[name], SampleCost(sampled_tokens=sampled, samples=sampled // 10),
                           TrainSummary(tuned_tokens=tuned, model=model), tasks, 1.5)


def test_metrics_from_rows():
    cfg = load_experiment(None)
    rows = {"base": _row("base", 0.4, 0, 0, model="base/path"), "rft": _row("rft", 0.5, 2000, 400),
            "upft": _row("upft", 0.3, 30, 100)}
    metrics = build_metrics(cfg, "base/path", rows, ["upft_synth", "other"], 12.345)
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


def test_no_reference_row_means_no_relative_cost():
    metrics = build_metrics(load_experiment(None), "b", {"upft": _row("upft", 0.3, 30, 100)}, ["upft_synth"], 1.0)
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
