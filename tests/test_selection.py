"""Selection: the sweep grid, per-method settings, the choice on validation, validation disjoint from training."""
from __future__ import annotations

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
