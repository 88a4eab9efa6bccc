"""The preference objective of the one training core (train.objective=dpo): the loss, pairs, the reference, resume."""
from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from helpers import fp32, make_examples, make_pairs  # tests/helpers.py (pytest puts tests/ on sys.path)
from safetensors.torch import load_file

from upft_bench.compute import ModelShape, forward_flops, training_flops
from upft_bench.examples import Example, ExamplesError, count_tuned_tokens
from upft_bench.tiny import save_random_model
from upft_bench.train import TrainConfig, dpo_loss, reference_positions, train, trained_positions, training_units


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("tiny") / "base", size="test", seed=0)


def test_dpo_loss_equals_the_closed_form():
    pc, pw = torch.tensor([-3.0, -10.0, -1.0]), torch.tensor([-4.0, -2.0, -1.0])
    rc, rw = torch.tensor([-3.5, -9.0, -2.0]), torch.tensor([-3.0, -2.5, -0.5])
    beta = 0.3
    got = dpo_loss(pc, pw, rc, rw, beta)
    for i in range(3):
        margin = beta * ((pc[i] - rc[i]) - (pw[i] - rw[i])).item()
        assert got[i].item() == pytest.approx(math.log1p(math.exp(-margin)), rel=1e-6)
    # at the reference (policy == reference) every pair costs log 2, whatever beta
    assert dpo_loss(rc, rw, rc, rw, 5.0).tolist() == pytest.approx([math.log(2)] * 3)


def test_units_are_pairs_of_one_question_in_order():
    pairs = make_pairs(3)
    assert training_units(pairs, "dpo") == [(0, 1), (2, 3), (4, 5)]
    assert training_units(pairs, "sft") == [(i,) for i in range(6)]
    swapped = [pairs[1], pairs[0], *pairs[2:]]
    with pytest.raises(ExamplesError, match=r"^example 1 .*expected kind 'chosen', got 'rejected'"):
        training_units(swapped, "dpo")
    other = [pairs[0], Example("q9", pairs[0].prompt_ids, [7, 8], "rejected")]
    with pytest.raises(ExamplesError, match=r"^example 2 .*same question and prompt"):
        training_units(other, "dpo")
    with pytest.raises(ExamplesError, match=r"^example 5: .*no rejected one"):
        training_units(pairs[:5], "dpo")
    with pytest.raises(ValueError, match="objective must be"):
        TrainConfig(objective="ppo")


def test_dpo_starts_at_log_2_and_raises_the_chosen_over_the_rejected(base, tmp_path):
    """Step 1's loss is log 2 exactly when the reference is the model as loaded; training then widens the
    margin, and it is the summed log-probabilities (a pair's lengths differ) that move."""
    pairs = make_pairs(16, seed=1)
    cfg = fp32(objective="dpo", dpo_beta=0.5, epochs=3, lr=3e-3, batch_size=4, micro_batch_size=2)
    stats = train(base, pairs, cfg, tmp_path / "run")
    curve = [p["loss"] for p in stats["loss_curve"]]
    assert curve[0] == pytest.approx(math.log(2), abs=1e-5)
    assert curve[-1] < 0.5 * curve[0]
    assert stats["steps"] == 12 and stats["tuned_tokens"] == count_tuned_tokens(pairs)
    assert stats["epochs_completed"] == 3.0


def test_dpo_is_the_same_whatever_the_micro_batch(base, tmp_path):
    pairs = make_pairs(10, seed=2)
    runs = [train(base, pairs, fp32(objective="dpo", batch_size=4, micro_batch_size=m, epochs=2), tmp_path / f"m{m}")
            for m in (1, 4)]
    assert [p["loss"] for p in runs[0]["loss_curve"]] == pytest.approx([p["loss"] for p in runs[1]["loss_curve"]],
                                                                       rel=1e-5)
    a, b = (load_file(str(tmp_path / f"m{m}" / "model" / "model.safetensors")) for m in (1, 4))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_dpo_resumes_against_the_original_reference(base, tmp_path):
    """A resumed run recomputes the reference from the weights it was started from, not from the checkpoint's:
    it ends with the uninterrupted run's loss curve and weights, bit for bit."""
    pairs = make_pairs(12, seed=3)
    cfg = fp32(objective="dpo", batch_size=2, micro_batch_size=2, epochs=1, save_every=2, keep_checkpoints=5,
               lr=3e-3)
    full = train(base, pairs, cfg, tmp_path / "run")
    kept = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    shutil.rmtree(tmp_path / "run" / "model")
    (tmp_path / "run" / "train_stats.json").unlink()
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "step-4")
    again = train(base, pairs, cfg, tmp_path / "run", resume=True)
    assert again["resumed_from_step"] == 2
    assert [p["loss"] for p in again["loss_curve"]] == [p["loss"] for p in full["loss_curve"]]
    got = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert all(torch.equal(got[k], kept[k]) for k in kept)


def test_positions_count_both_sequences_and_the_reference_once(base):
    pairs = make_pairs(6, seed=4)
    cfg = fp32(objective="dpo", batch_size=4, epochs=2)
    lengths = [len(e.prompt_ids) + len(e.response_ids) - 1 for e in pairs]
    assert sorted(trained_positions(pairs, cfg)) == sorted(lengths * 2)
    assert sorted(reference_positions(pairs, cfg)) == sorted(lengths)
    assert reference_positions(make_examples(4), fp32()) == []
    shape = ModelShape.from_model_dir(base)
    policy = training_flops(shape, trained_positions(pairs, cfg))
    assert policy == sum(3 * forward_flops(shape, n) for n in lengths * 2)


def test_a_plain_runs_resume_key_has_no_preference_fields(base, tmp_path):
    from upft_bench.train import _resume_key

    assert "objective" not in _resume_key(TrainConfig()) and "dpo_beta" not in _resume_key(TrainConfig())
    assert _resume_key(TrainConfig(objective="dpo"))["dpo_beta"] == 0.1
    stats = train(base, make_examples(8), fp32(), tmp_path / "sft")
    assert json.loads((tmp_path / "sft" / "train_stats.json").read_text())["steps"] == stats["steps"] == 1
