"""Sampling: token counting, per-request limits, determinism, resume after an interruption, the cache."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from upft_bench import sampling
from upft_bench.data import Question
from upft_bench.prompts import end_of_turn_id
from upft_bench.sampling import (
    SampleRequest,
    SamplesFileError,
    SamplingConfig,
    read_samples,
    sample_solutions,
    summarise,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from upft_bench.tiny import save_random_model

    return str(save_random_model(tmp_path_factory.mktemp("tiny") / "model", size="test"))


@pytest.fixture(scope="module")
def tokenizer(model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)


QUESTIONS = [Question(f"q{i}", f"Tom has {i} apples and buys {i + 3} more." + " Count them." * (i % 3), str(2 * i + 3))
             for i in range(6)]


def _requests(k=4, full=24, n=2):
    # Mixed limits, as UPFT plans them: short prefix rows and full-length rows in one call.
    return [SampleRequest(q, n, full if i % 3 == 0 else k) for i, q in enumerate(QUESTIONS)]


CFG = SamplingConfig(batch_size=4, seed=3, temperature=1.0)


def test_limits_counts_and_summary(model, tokenizer, tmp_path):
    samples = sample_solutions(model, _requests(), CFG, tmp_path / "s.jsonl", progress=False)
    assert [(s.question_id, s.index) for s in samples] == [(q.id, i) for q in QUESTIONS for i in range(2)]
    eos = end_of_turn_id(tokenizer)
    for s in samples:
        assert s.num_tokens <= s.max_new_tokens
        assert eos not in s.token_ids
        if s.finish_reason == "stop":
            assert s.num_tokens == len(s.token_ids) + 1  # the stop token was generated: it is counted
        else:
            assert s.finish_reason == "length" and s.num_tokens == len(s.token_ids) == s.max_new_tokens
        assert s.text == tokenizer.decode(s.token_ids, skip_special_tokens=True)
        question = next(q.question for q in QUESTIONS if q.id == s.question_id)
        assert s.prompt == "<|user|>" + question + "<|end|><|assistant|>"
    assert max(s.num_tokens for s in samples if s.max_new_tokens == 4) == 4
    assert any(s.num_tokens > 4 for s in samples)  # the full rows really ran longer
    summary = summarise(samples)
    assert summary["sampled_tokens"] == sum(s.num_tokens for s in samples)
    assert summary["samples"] == 12 and summary["questions"] == 6
    assert summary["stopped"] + summary["truncated"] == 12


def test_stop_token_ends_a_row(model, tokenizer, tmp_path, monkeypatch):
    """Force EOS at the 3rd step of every row: stop reason, ids without EOS, EOS counted."""
    eos = end_of_turn_id(tokenizer)
    real = sampling._pick
    steps = {"n": 0}

    def pick(logits, settings, generators):
        steps["n"] += 1
        out = real(logits, settings, generators)
        return out.fill_(eos) if steps["n"] == 3 else out

    monkeypatch.setattr(sampling, "_pick", pick)
    reqs = [SampleRequest(q, 1, 10) for q in QUESTIONS[:3]]
    samples = sample_solutions(model, reqs, SamplingConfig(batch_size=8), tmp_path / "s.jsonl", progress=False)
    for s in samples:
        assert s.finish_reason == "stop" and len(s.token_ids) == 2 and s.num_tokens == 3


def test_greedy_matches_transformers_generate(model, tokenizer, tmp_path):
    """Our KV-cache loop (left padding, rows leaving the batch) decodes exactly what `generate` decodes."""
    import torch
    from transformers import AutoModelForCausalLM

    from upft_bench.prompts import encode_prompt

    reqs = [SampleRequest(q, 1, 12) for q in QUESTIONS]
    ours = sample_solutions(model, reqs, SamplingConfig(temperature=0, batch_size=8), tmp_path / "g.jsonl",
                            progress=False)
    lm = AutoModelForCausalLM.from_pretrained(model)
    for q, s in zip(QUESTIONS, ours):
        ids = torch.tensor([encode_prompt(tokenizer, q.question)])
        ref = lm.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=12,
                          eos_token_id=end_of_turn_id(tokenizer), pad_token_id=tokenizer.pad_token_id)
        ref = ref[0, ids.shape[1]:].tolist()
        if ref and ref[-1] == end_of_turn_id(tokenizer):
            ref = ref[:-1]
        assert s.token_ids == ref, q.id


def test_seed_decides_samples(model, tmp_path):
    a = sample_solutions(model, _requests(), CFG, tmp_path / "a.jsonl", progress=False)
    b = sample_solutions(model, _requests(), CFG, tmp_path / "b.jsonl", progress=False)
    c = sample_solutions(model, _requests(), SamplingConfig(batch_size=4, seed=4, temperature=1.0),
                         tmp_path / "c.jsonl", progress=False)
    assert [s.token_ids for s in a] == [s.token_ids for s in b]
    assert [s.token_ids for s in a] != [s.token_ids for s in c]
    # samples of one question differ from each other (own generator per index)
    assert a[0].token_ids != a[1].token_ids


def test_resume_after_interruption_gives_identical_samples(model, tmp_path, monkeypatch):
    whole = sample_solutions(model, _requests(), CFG, tmp_path / "whole.jsonl", progress=False)

    real, calls = sampling._generate_hf, []

    def dies_on_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sampling, "_generate_hf", dies_on_third_batch)
    out = tmp_path / "resumed.jsonl"
    with pytest.raises(KeyboardInterrupt):
        sample_solutions(model, _requests(), CFG, out, progress=False)
    partial = out.with_name(out.name + ".partial")
    assert not out.exists() and partial.exists()
    lines = partial.read_text().splitlines()
    assert len(lines) == 1 + 8  # header + two batches of 4
    with open(partial, "a") as f:  # a write torn by the kill
        f.write('{"question_id": "q5", "ind')

    calls.clear()
    monkeypatch.setattr(sampling, "_generate_hf", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = sample_solutions(model, _requests(), CFG, out, progress=False)
    assert len(calls) == 1  # 12 rows in batches of 4: only the third batch was left
    assert [(s.question_id, s.index, s.token_ids, s.finish_reason, s.num_tokens) for s in resumed] == \
        [(s.question_id, s.index, s.token_ids, s.finish_reason, s.num_tokens) for s in whole]
    assert not partial.exists()
    assert read_samples(out) == resumed


def test_completed_file_is_reused_without_generation(model, tmp_path, monkeypatch):
    out = tmp_path / "s.jsonl"
    first = sample_solutions(model, _requests(), CFG, out, progress=False)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded although the samples were cached")

    monkeypatch.setattr(sampling, "_load_model", no_model)
    assert sample_solutions(model, _requests(), CFG, out, progress=False) == first


@pytest.mark.parametrize("change", ["config", "requests", "model"])
def test_mismatched_file_is_refused_not_mixed(model, tmp_path, change):
    out = tmp_path / "s.jsonl"
    first = sample_solutions(model, _requests(), CFG, out, progress=False)
    config, requests, model_path = CFG, _requests(), model
    if change == "config":
        config = SamplingConfig(batch_size=4, seed=3, temperature=0.7)
    elif change == "requests":
        requests = _requests(k=5)
    else:
        from upft_bench.tiny import save_random_model

        model_path = str(save_random_model(tmp_path / "other", size="test", seed=1))
    with pytest.raises(SamplesFileError, match="holds samples for different"):
        sample_solutions(model_path, requests, config, out, progress=False)
    assert read_samples(out) == first  # untouched
    fresh = sample_solutions(model_path, requests, config, out, progress=False, overwrite=True)
    assert read_samples(out) == fresh != first


def test_bad_lines_are_named(model, tmp_path):
    out = tmp_path / "s.jsonl"
    sample_solutions(model, _requests()[:1], CFG, out, progress=False)
    lines = out.read_text().splitlines()
    lines[2] = '{"question_id": "q0"}'
    out.write_text("\n".join(lines) + "\n")
    with pytest.raises(SamplesFileError, match=r"s\.jsonl line 3: expected fields"):
        read_samples(out)


def test_bad_config_and_requests():
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=-1)
    with pytest.raises(ValueError, match="prompt style"):
        SamplingConfig(system="chatty")
    with pytest.raises(ValueError, match="requested twice"):
        sample_solutions("unused", [SampleRequest(QUESTIONS[0], 1, 4)] * 2, CFG, "unused.jsonl")


def test_cli_samples_synthetic_questions(model, tmp_path):
    from upft_bench.commands.sample import sample_cli

    out = tmp_path / "cli.jsonl"
    args = ["--model", model, "--dataset", "synth", "--split", "train", "--n", "2", "--max-new-tokens", "8",
            "--limit", "3", "--output", str(out), "--seed", "1"]
    result = CliRunner().invoke(sample_cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    samples = read_samples(out)
    assert summary["samples"] == 6 == len(samples) and summary["questions"] == 3
    assert summary["sampled_tokens"] == sum(s.num_tokens for s in samples) <= 6 * 8
    again = CliRunner().invoke(sample_cli, args[:-2] + ["--seed", "2"])
    assert again.exit_code != 0 and "holds samples for different settings" in again.output


def test_build_cli_turns_a_pool_into_the_examples_compare_would_build_and_train_reads_them(model, tokenizer,
                                                                                          tmp_path):
    """sample -> build -> train from the command line, each step's file the next one's input."""
    from upft_bench.cli import main
    from upft_bench.data import load_questions
    from upft_bench.examples import read_examples
    from upft_bench.methods import METHODS, MethodConfig

    pool, examples = tmp_path / "pool.jsonl", tmp_path / "ex.jsonl"
    where = ["--dataset", "synth", "--split", "train", "--limit", "6"]
    sampled = CliRunner().invoke(main, ["sample", "--model", model, *where, "--n", "1", "--max-new-tokens", "16",
                                        "--output", str(pool), "--temperature", "1.0"])
    assert sampled.exit_code == 0, sampled.output
    built = CliRunner().invoke(main, ["build", "--method", "upft", "--model", model, *where, "--samples", str(pool),
                                      "--output", str(examples), "--set", "prefix_tokens=4",
                                      "--set", "structure_ratio=0.5", "--set", "max_new_tokens=16"])
    assert built.exit_code == 0, built.output
    cfg = MethodConfig(prefix_tokens=4, structure_ratio=0.5, max_new_tokens=16)
    expected = METHODS["upft"].build(load_questions("synth", "train", limit=6), read_samples(pool), tokenizer, cfg)
    assert read_examples(examples) == expected and f"upft: {len(expected)} examples" in built.output
    assert all(len(e.response_ids) <= 5 for e in expected if e.kind == "prefix")
    trained = CliRunner().invoke(main, ["train", "--model", model, "--examples", str(examples), "--output",
                                        str(tmp_path / "run"), "--set", "batch_size=2", "--set", "micro_batch_size=2"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((tmp_path / "run" / "train_stats.json").read_text())["examples"] == len(expected)
    # sft needs no pool; rft does, and says so; a pool sampled with another prompt is refused, naming the file.
    sft = CliRunner().invoke(main, ["build", "--method", "sft", "--model", model, *where, "--output",
                                    str(tmp_path / "sft.jsonl")])
    assert sft.exit_code == 0 and "6 examples (6 gold)" in sft.output
    rft = CliRunner().invoke(main, ["build", "--method", "rft", "--model", model, *where, "--output", str(examples)])
    assert rft.exit_code != 0 and "give --samples" in rft.output
    other = CliRunner().invoke(main, ["build", "--method", "sft_self", "--model", model, *where, "--samples",
                                      str(pool), "--output", str(examples), "--set", "system=qwen_boxed"])
    assert other.exit_code != 0 and str(pool) in other.output and "must agree" in other.output
