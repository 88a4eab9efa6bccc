"""Selection: the sweep grid, per-method settings, the choice on validation, validation disjoint from training."""
from __future__ import annotations

import dataclasses

import pytest

from upft_bench.config import ConfigError
from upft_bench.experiment import load_experiment
from upft_bench.selection import choose, configured, grid, setting_tag, validation_questions


def test_grid_is_every_combination_in_order():
    assert grid({}) == [{}]
    assert grid({"train.lr": [1, 2], "method.prefix_tokens": [8, 16]}) == [
        {"train.lr": 1, "method.prefix_tokens": 8}, {"train.lr": 1, "method.prefix_tokens": 16},
        {"train.lr": 2, "method.prefix_tokens": 8}, {"train.lr": 2, "method.prefix_tokens": 16}]
    assert setting_tag({"train.lr": 0.0001, "method.prefix_tokens": 8}) == "train.lr=0.0001,method.prefix_tokens=8"


def test_choice_is_the_best_validation_accuracy_first_of_equals():
    scores = [({"a": 1}, {"accuracy": 0.2}), ({"a": 2}, {"accuracy": 0.5}), ({"a": 3}, {"accuracy": 0.5})]
    assert choose(scores) == 1
    assert choose([({"a": 1}, {"accuracy": 0.0}), ({"a": 2}, {"accuracy": 0.0})]) == 0


def test_settings_are_typed_per_method_and_validated():
    cfg = load_experiment(None, ["sweep={train.lr: [1e-4, 2e-4]}", "data.val_limit=20",
                                 "per_method={sft: {train.lr: 5e-5, train.epochs: 3}}"])
    assert cfg.sweep == {"train.lr": [1e-4, 2e-4]}   # YAML's "1e-4" strings become the field's float
    assert configured(cfg, "sft", {}).train.lr == 5e-5 and configured(cfg, "sft", {}).train.epochs == 3
    assert configured(cfg, "sft", {"train.lr": 2e-4}).train.lr == 2e-4   # the sweep setting wins
    assert configured(cfg, "rft", {}).train.lr == cfg.train.lr
    assert configured(cfg, "sft", {}).seed == cfg.seed
    with pytest.raises(ConfigError, match="set data.val_limit"):
        load_experiment(None, ["sweep={train.lr: [1e-4]}"])
    with pytest.raises(ConfigError, match="'sampling.temperature' is not a setting that can vary"):
        load_experiment(None, ["sweep={sampling.temperature: [0.6]}", "data.val_limit=5"])
    with pytest.raises(ConfigError, match="'train.seed' is not a setting"):
        load_experiment(None, ["per_method={sft: {train.seed: 3}}"])
    with pytest.raises(ConfigError, match="per_method: 'sfft' must be a method id"):
        load_experiment(None, ["per_method={sfft: {train.lr: 1e-4}}"])


def test_validation_questions_follow_the_training_questions():
    from upft_bench.data import load_questions

    cfg = load_experiment(None, ["data.train_limit=30", "data.val_limit=10"])
    val = validation_questions(cfg)
    train = load_questions("synth", "train", limit=30)
    assert len(val) == 10 and not {q.id for q in val} & {q.id for q in train}
    assert [q.id for q in val] == [q.id for q in load_questions("synth", "train", limit=40)[30:]]
    assert not {q.id for q in val} & {q.id for q in load_questions("synth", "test")}
    assert validation_questions(load_experiment(None)) == []


def test_output_profile_tells_a_short_stop_from_a_wrong_first_step():
    from upft_bench.data import load_questions
    from upft_bench.sampling import Sample
    from upft_bench.selection import output_profile

    q = load_questions("synth", "train", limit=1)[0]
    first = q.solution.split(". ")[0] + "."  # the reference's first equation, "a OP b = c (tag)."
    a, rest = first.split(" ", 1)
    wrong_first = f"{int(a) + 1} {rest}"

    def sample(text, reason="stop"):
        return Sample(q.id, 0, "", [], text, reason, len(text.split()) + (reason == "stop"), 160, 0.0)

    samples = [sample(q.solution), sample(first), sample(wrong_first + " The answer is \\boxed{3}."),
               sample(first + " 1 + 1 = 2 (x). 2 + 2 = 4", reason="length")]
    profile = output_profile(samples, [q] * 4)
    assert profile["stated"] == 0.5  # the reference and the boxed wrong answer
    assert profile["stopped_short"] == 0.25  # the bare first step ended with the stop token, no answer
    assert profile["first_step"] == 0.75  # every sample but the one whose first step misreads the start
    assert profile["mean_tokens"] == sum(s.num_tokens for s in samples) / 4
    other = load_questions("synth", "train", limit=1)[0]
    other = dataclasses.replace(other, meta={})
    assert output_profile([sample(q.solution)], [other])["first_step"] is None  # not a checkable synthetic chain
    assert output_profile([], [])["stated"] is None
